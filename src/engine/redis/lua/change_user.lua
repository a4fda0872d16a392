-- change_user: ARGV uid, now, origin, op.
--   op 'token':  ARGV[5] new token hash
--   op 'update': ARGV[5] fields JSON, ARGV[6] username ('' keep, '-' clear, '=x' set),
--                ARGV[7] visibility ('' keep, '0', '1')
local uid, now, origin, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = k_user(uid)
if redis.call('EXISTS', key) == 0 then return {'not_found'} end
if op == 'token' then
  local new = ARGV[5]
  local old = redis.call('HGET', key, 'token_hash')
  if old and redis.call('GET', k_utoken(old)) == uid then redis.call('DEL', k_utoken(old)) end
  redis.call('SET', k_utoken(new), uid)
  redis.call('HSET', key, 'token_hash', new, 'updated_at', now)
elseif op == 'update' then
  local fields, name, vis = ARGV[5], ARGV[6], ARGV[7]
  if name == '-' then
    redis.call('HDEL', key, 'username')
  elseif name ~= '' then
    redis.call('HSET', key, 'username', opt(name))
  end
  if vis ~= '' then
    redis.call('HSET', key, 'visibility', vis)
    if vis == '1' then
      redis.call('ZADD', K_USERS_PUBLIC, 0, uid)
    else
      redis.call('ZREM', K_USERS_PUBLIC, uid)
    end
  end
  redis.call('HSET', key, 'updated_at', now)
  publish(CH_USERS, origin, '{"t":"user_updated","user":' .. js(uid)
    .. ',"lobbies":' .. jlist(redis.call('SMEMBERS', k_user_lobbys(uid)))
    .. ',"fields":' .. fields .. ',"updated_at":' .. jint(now) .. '}')
else
  return redis.error_reply('unknown op ' .. op)
end
return {'ok', redis.call('HGETALL', key)}
