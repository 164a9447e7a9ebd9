-- ARGV: prefix. Returns, per live replica: its id, last beat, report (''
-- when none), lease count n, then (id, open websockets) * n. Forgets
-- replicas whose hash has expired.
local out = {}
for _, r in ipairs(redis.call('SMEMBERS', prefix .. ':replicas')) do
  local h = redis.call('HGETALL', prefix .. ':replica:' .. r)
  if #h == 0 then
    redis.call('SREM', prefix .. ':replicas', r)
  else
    local seen, report, leases = '0', '', {}
    for j = 1, #h, 2 do
      local field = h[j]
      if string.sub(field, 1, 6) == 'lease:' then
        table.insert(leases, string.sub(field, 7))
        table.insert(leases, h[j + 1])
      elseif field == 'seen' then
        seen = h[j + 1]
      elseif field == 'report' then
        report = h[j + 1]
      end
    end
    table.insert(out, r)
    table.insert(out, seen)
    table.insert(out, report)
    table.insert(out, tostring(math.floor(#leases / 2)))
    for _, v in ipairs(leases) do table.insert(out, v) end
  end
end
return out
