-- change_lobby: ARGV lid, uid, opt presented token, now, origin, needed permission, op, ...
--   'owner':  target
--   'token':  new token, new token hash
--   'add':    target ids...
--   'del':    target ids...
--   'update': fields JSON, description ('' keep, '-' clear, '=x' set),
--             size_limit ('' keep, '-' clear, '=n' set), visibility ('' keep, '0', '1')
local lid, uid, presented, now, origin, need, op =
  ARGV[1], ARGV[2], opt(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = k_lobby(lid)
local l = lobby_get(lid)
if not l then return {'not_found'} end
local role = lobby_role(l, lid, uid, presented)
if role == 'none' and l.visibility ~= '1' then return {'not_found'} end
if not PERMS[role][need] then return {'forbidden'} end

if op == 'owner' then
  local target = ARGV[8]
  if redis.call('EXISTS', k_user(target)) == 0 then return {'not_found'} end
  redis.call('SREM', k_user_owns(l.owner), lid)
  redis.call('SADD', k_user_owns(target), lid)
  redis.call('HSET', key, 'owner', target, 'updated_at', now)
  publish(ch_lobby(lid), origin, '{"t":"lobby_updated","lobby":' .. js(lid)
    .. ',"fields":{"owner":{"id":' .. js(target) .. '}},"updated_at":' .. jint(now) .. '}')
elseif op == 'token' then
  local token, th = ARGV[8], ARGV[9]
  if l.token_hash then redis.call('SREM', k_ltoken(l.token_hash), lid) end
  redis.call('SADD', k_ltoken(th), lid)
  redis.call('HSET', key, 'token', token, 'token_hash', th, 'updated_at', now)
elseif op == 'add' then
  local new, seen = {}, {}
  for i = 8, #ARGV do
    local t = ARGV[i]
    if redis.call('EXISTS', k_user(t)) == 0 then return {'not_found'} end
    if not seen[t] and not is_member(lid, t) then new[#new + 1] = t end
    seen[t] = true
  end
  if l.size_limit and redis.call('SCARD', k_members(lid)) + #new > tonumber(l.size_limit) then
    return {'lobby_full'}
  end
  for _, t in ipairs(new) do
    redis.call('SADD', k_members(lid), t)
    redis.call('SADD', k_user_lobbys(t), lid)
    publish(CH_USERS, origin, member_joined(lid, t))
  end
elseif op == 'del' then
  for i = 8, #ARGV do
    if redis.call('EXISTS', k_user(ARGV[i])) == 0 then return {'not_found'} end
  end
  for i = 8, #ARGV do
    local t = ARGV[i]
    if redis.call('SREM', k_members(lid), t) == 1 then
      redis.call('SREM', k_user_lobbys(t), lid)
      publish(CH_USERS, origin, member_left(lid, t))
    end
  end
elseif op == 'update' then
  local fields, desc, limit, vis = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
  if desc == '-' then
    redis.call('HDEL', key, 'description')
  elseif desc ~= '' then
    redis.call('HSET', key, 'description', opt(desc))
  end
  if limit == '-' then
    redis.call('HDEL', key, 'size_limit')
  elseif limit ~= '' then
    redis.call('HSET', key, 'size_limit', opt(limit))
  end
  if vis ~= '' then
    redis.call('HSET', key, 'visibility', vis)
    if vis == '1' then
      redis.call('ZADD', K_LOBBYS_PUBLIC, 0, lid)
    else
      redis.call('ZREM', K_LOBBYS_PUBLIC, lid)
    end
  end
  redis.call('HSET', key, 'updated_at', now)
  publish(ch_lobby(lid), origin, '{"t":"lobby_updated","lobby":' .. js(lid)
    .. ',"fields":' .. fields .. ',"updated_at":' .. jint(now) .. '}')
else
  return redis.error_reply('unknown op ' .. op)
end
return {'ok', redis.call('HGETALL', key), redis.call('SMEMBERS', k_members(lid))}
