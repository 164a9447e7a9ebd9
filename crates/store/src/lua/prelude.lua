-- Shared by every script (prepended at load time). ARGV[1] is the key prefix.
-- Records are JSON so pulse-railway's readers keep working; cjson keeps
-- fields we do not know about.
local prefix = ARGV[1]
local function dkey(id) return prefix .. ':deployment:' .. id end
local function is_null(x) return x == nil or x == cjson.null end
local function load(id)
  local raw = redis.call('GET', dkey(id))
  if not raw then return nil end
  return cjson.decode(raw)
end
local function save(rec)
  redis.call('SET', dkey(rec.deployment_id), cjson.encode(rec))
end
-- Every routing-relevant change bumps the version and tells the routers.
local function bump()
  local v = redis.call('INCR', prefix .. ':version')
  redis.call('PUBLISH', prefix .. ':events', cjson.encode({kind = 'changed', version = v}))
  return v
end
local function rollout_candidate()
  local raw = redis.call('GET', prefix .. ':rollout')
  if not raw then return nil end
  return cjson.decode(raw).deployment_id
end
-- Make `id` active; the previous active one, and a rollout candidate that
-- had a share of unpinned traffic, drain. Other pending deployments are
-- previews and stay pending. Returns status and the previous active id
-- ('' when none).
local function do_promote(id, now)
  local rec = load(id)
  if not rec then return 'missing', '' end
  if rec.state == 'revoked' then return 'revoked', '' end
  local previous = redis.call('GET', prefix .. ':active') or ''
  local candidate = rollout_candidate()
  for _, other in ipairs(redis.call('SMEMBERS', prefix .. ':deployments')) do
    if other ~= id then
      local o = load(other)
      if o and (o.state == 'active' or (o.state == 'pending' and other == candidate)) then
        o.state = 'draining'
        o.drain_started_at = now
        save(o)
      end
    end
  end
  rec.state = 'active'
  rec.drain_started_at = cjson.null
  save(rec)
  redis.call('SET', prefix .. ':active', id)
  redis.call('DEL', prefix .. ':rollout')
  return 'promoted', previous
end
