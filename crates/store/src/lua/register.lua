-- ARGV: prefix, id, record JSON, service name
local id, record, service = ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', dkey(id)) == 1 then return {'exists', ''} end
local owner = redis.call('HGET', prefix .. ':services', service)
if owner then return {'service_taken', owner} end
redis.call('SET', dkey(id), record)
redis.call('SADD', prefix .. ':deployments', id)
redis.call('HSET', prefix .. ':services', service, id)
return {'ok', tostring(bump())}
