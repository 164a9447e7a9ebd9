-- ARGV: prefix, id, now
local status, previous = do_promote(ARGV[2], tonumber(ARGV[3]))
if status ~= 'promoted' then return {status, '', '0'} end
return {status, previous, tostring(bump())}
