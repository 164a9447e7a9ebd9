-- ARGV: prefix. Returns {id, total, id, total, ...} over live replicas and
-- forgets replicas whose lease hash has expired.
local totals, order = {}, {}
for _, r in ipairs(redis.call('SMEMBERS', prefix .. ':replicas')) do
  local h = redis.call('HGETALL', prefix .. ':replica:' .. r)
  if #h == 0 then
    redis.call('SREM', prefix .. ':replicas', r)
  else
    for j = 1, #h, 2 do
      if string.sub(h[j], 1, 6) == 'lease:' then
        local id = string.sub(h[j], 7)
        if not totals[id] then totals[id] = 0; table.insert(order, id) end
        totals[id] = totals[id] + tonumber(h[j + 1])
      end
    end
  end
end
local out = {}
for _, id in ipairs(order) do
  table.insert(out, id)
  table.insert(out, tostring(totals[id]))
end
return out
