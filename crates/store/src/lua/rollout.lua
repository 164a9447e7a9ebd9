-- ARGV: prefix, candidate id ('' ends the rollout), percent
local id, percent = ARGV[2], tonumber(ARGV[3])
if id == '' then
  if redis.call('DEL', prefix .. ':rollout') == 1 then bump() end
  return {'ok', ''}
end
local rec = load(id)
if not rec then return {'missing', ''} end
if rec.state ~= 'pending' then return {'state', rec.state} end
if not redis.call('GET', prefix .. ':active') then return {'no_active', ''} end
redis.call('SET', prefix .. ':rollout', cjson.encode({deployment_id = id, percent = percent}))
bump()
return {'ok', ''}
