-- ARGV: prefix. Returns {version, active, rollout JSON, {record JSON...}}.
local records = {}
for _, id in ipairs(redis.call('SMEMBERS', prefix .. ':deployments')) do
  local raw = redis.call('GET', dkey(id))
  if raw then table.insert(records, raw) end
end
return {
  redis.call('GET', prefix .. ':version') or '0',
  redis.call('GET', prefix .. ':active') or '',
  redis.call('GET', prefix .. ':rollout') or '',
  records,
}
