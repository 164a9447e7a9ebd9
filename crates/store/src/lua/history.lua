-- ARGV: prefix, first window, last window.
-- Returns {id, window, requests, errors_5xx, latency_ms_sum, websockets, ...}
-- for every window that holds anything; websockets sums the replicas'
-- `ws:<replica>` counts.
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', prefix .. ':deployments')) do
  for w = tonumber(ARGV[2]), tonumber(ARGV[3]) do
    local flat = redis.call('HGETALL', prefix .. ':stats:' .. id .. ':' .. w)
    if #flat > 0 then
      local req, err, lat, ws = 0, 0, 0, 0
      for i = 1, #flat, 2 do
        local field, value = flat[i], tonumber(flat[i + 1]) or 0
        if field == 'requests' then req = value
        elseif field == 'errors_5xx' then err = value
        elseif field == 'latency_ms_sum' then lat = value
        elseif string.sub(field, 1, 3) == 'ws:' then ws = ws + value
        end
      end
      table.insert(out, id); table.insert(out, tostring(w))
      table.insert(out, tostring(req)); table.insert(out, tostring(err))
      table.insert(out, tostring(lat)); table.insert(out, tostring(ws))
    end
  end
end
return out
