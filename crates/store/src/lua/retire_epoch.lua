-- ARGV: prefix, epoch, now. Revokes every live deployment whose state epoch
-- (absent: 0) is below `epoch`, in one step; refuses, changing nothing,
-- when the active one is below it. Returns {status, detail, revoked ids...}.
local epoch, now = tonumber(ARGV[2]), tonumber(ARGV[3])
local function epoch_of(rec)
  if is_null(rec.state_epoch) then return 0 end
  return tonumber(rec.state_epoch)
end
local active = redis.call('GET', prefix .. ':active')
if active then
  local a = load(active)
  if a and epoch_of(a) < epoch then return {'active_below', active} end
end
local out = {'ok', ''}
local candidate = rollout_candidate()
for _, id in ipairs(redis.call('SMEMBERS', prefix .. ':deployments')) do
  local rec = load(id)
  if rec and rec.state ~= 'revoked' and epoch_of(rec) < epoch then
    rec.state = 'revoked'
    rec.revoked_at = now
    save(rec)
    table.insert(out, id)
    if candidate == id then redis.call('DEL', prefix .. ':rollout') end
  end
end
if #out > 2 then bump() end
return out
