-- ARGV: prefix, active id ('' for none), rollout JSON ('' for none),
-- version held by the source, then record JSONs. Refuses a store that has
-- any deployment or an active id: a restore never overwrites.
if redis.call('SCARD', prefix .. ':deployments') > 0 or redis.call('EXISTS', prefix .. ':active') == 1 then
  return {'not_empty', '0'}
end
for i = 5, #ARGV do
  local rec = cjson.decode(ARGV[i])
  redis.call('SET', dkey(rec.deployment_id), ARGV[i])
  redis.call('SADD', prefix .. ':deployments', rec.deployment_id)
  redis.call('HSET', prefix .. ':services', rec.service_name, rec.deployment_id)
end
if ARGV[2] ~= '' then redis.call('SET', prefix .. ':active', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('SET', prefix .. ':rollout', ARGV[3]) end
-- Past what the routers hold, so every one of them installs the restore.
local held = tonumber(ARGV[4])
local current = tonumber(redis.call('GET', prefix .. ':version') or '0')
if current < held then redis.call('SET', prefix .. ':version', held) end
return {'restored', tostring(bump())}
