-- ARGV: prefix, replica, ttl ms, now, stats window, stats ttl s,
--       n, (id, open websockets) * n,
--       n, (id, last seen) * n,
--       n, (id, requests, errors_5xx, latency_ms_sum) * n,
--       report (JSON, or '' for none)
local replica, ttl, window, stats_ttl = ARGV[2], ARGV[3], ARGV[5], ARGV[6]
local rkey = prefix .. ':replica:' .. replica
-- Open WebSockets also go into the window's statistics (the drain curve),
-- as this replica's latest count; a deployment whose last socket closed
-- since the previous beat is written as 0 rather than left at its old count.
local function ws_point(id, open)
  local skey = prefix .. ':stats:' .. id .. ':' .. window
  redis.call('HSET', skey, 'ws:' .. replica, open)
  redis.call('EXPIRE', skey, stats_ttl)
end
local before = {}
for _, field in ipairs(redis.call('HKEYS', rkey)) do
  if string.sub(field, 1, 6) == 'lease:' then before[string.sub(field, 7)] = true end
end
redis.call('DEL', rkey)
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  redis.call('HSET', rkey, 'lease:' .. ARGV[i], ARGV[i + 1])
  ws_point(ARGV[i], ARGV[i + 1])
  before[ARGV[i]] = nil
  i = i + 2
end
for id in pairs(before) do ws_point(id, 0) end
redis.call('HSET', rkey, 'seen', ARGV[4])
redis.call('PEXPIRE', rkey, ttl)
redis.call('SADD', prefix .. ':replicas', replica)

local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local rec, seen = load(ARGV[i]), tonumber(ARGV[i + 1])
  if rec and (is_null(rec.last_seen_at) or rec.last_seen_at < seen) then
    rec.last_seen_at = seen
    save(rec)
  end
  i = i + 2
end

n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local skey = prefix .. ':stats:' .. ARGV[i] .. ':' .. window
  redis.call('HINCRBY', skey, 'requests', ARGV[i + 1])
  redis.call('HINCRBY', skey, 'errors_5xx', ARGV[i + 2])
  redis.call('HINCRBY', skey, 'latency_ms_sum', ARGV[i + 3])
  redis.call('EXPIRE', skey, stats_ttl)
  i = i + 4
end
if ARGV[i] ~= '' then
  redis.call('HSET', rkey, 'report', ARGV[i])
end
return 1
