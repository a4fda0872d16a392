-- create_user: ARGV id, opt username, token_hash, now.
local id, name, th, now = ARGV[1], opt(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('EXISTS', k_user(id)) == 1 then return {'conflict'} end
local f = {'visibility', '0', 'token_hash', th, 'created_at', now, 'updated_at', now}
if name then
  f[#f + 1] = 'username'
  f[#f + 1] = name
end
redis.call('HSET', k_user(id), unpack(f))
redis.call('SET', k_utoken(th), id)
redis.call('SADD', K_USERS, id)
return {'ok', redis.call('HGETALL', k_user(id))}
