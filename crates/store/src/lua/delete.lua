-- ARGV: prefix, id. Deletes unless active: the check and the delete are one
-- step, so a promotion can never be lost to a racing janitor.
local id = ARGV[2]
if redis.call('GET', prefix .. ':active') == id then return 'active' end
local rec = load(id)
redis.call('SREM', prefix .. ':deployments', id)
if not rec then return 'missing' end
redis.call('DEL', dkey(id))
if redis.call('HGET', prefix .. ':services', rec.service_name) == id then
  redis.call('HDEL', prefix .. ':services', rec.service_name)
end
if rollout_candidate() == id then redis.call('DEL', prefix .. ':rollout') end
bump()
return 'deleted'
