-- ARGV: prefix, id, id to promote in the same step ('' for none), now
local id, successor, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local rec = load(id)
if not rec then return {'missing', ''} end
if successor == id then return {'self', ''} end
if successor ~= '' then
  local status = do_promote(successor, now)
  if status ~= 'promoted' then return {'successor_' .. status, successor} end
elseif redis.call('GET', prefix .. ':active') == id then
  return {'active', ''}
end
rec = load(id)
if rec.state == 'revoked' and successor == '' then return {'ok', ''} end
rec.state = 'revoked'
rec.revoked_at = now
save(rec)
if rollout_candidate() == id then redis.call('DEL', prefix .. ':rollout') end
bump()
return {'ok', ''}
