-- ARGV: prefix, first window, last window.
-- Returns {id, requests, errors_5xx, latency_ms_sum, ...}.
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', prefix .. ':deployments')) do
  local req, err, lat = 0, 0, 0
  for w = tonumber(ARGV[2]), tonumber(ARGV[3]) do
    local v = redis.call('HMGET', prefix .. ':stats:' .. id .. ':' .. w, 'requests', 'errors_5xx', 'latency_ms_sum')
    req = req + (tonumber(v[1]) or 0)
    err = err + (tonumber(v[2]) or 0)
    lat = lat + (tonumber(v[3]) or 0)
  end
  if req > 0 then
    table.insert(out, id); table.insert(out, tostring(req))
    table.insert(out, tostring(err)); table.insert(out, tostring(lat))
  end
end
return out
