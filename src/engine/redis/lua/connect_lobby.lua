-- connect_lobby: ARGV lid, uid, opt presented token, create token, create token hash,
-- visibility, size_limit ('' none), opt description, now, origin.
local lid, uid, presented = ARGV[1], ARGV[2], opt(ARGV[3])
local ctoken, cth, vis, limit, desc, now, origin =
  ARGV[4], ARGV[5], ARGV[6], ARGV[7], opt(ARGV[8]), ARGV[9], ARGV[10]
local key = k_lobby(lid)
local l = lobby_get(lid)
local created, joined = 0, 0
if not l then
  local f = {'owner', uid, 'token', ctoken, 'token_hash', cth, 'visibility', vis,
             'created_at', now, 'updated_at', now}
  if limit ~= '' then
    f[#f + 1] = 'size_limit'
    f[#f + 1] = limit
  end
  if desc then
    f[#f + 1] = 'description'
    f[#f + 1] = desc
  end
  redis.call('HSET', key, unpack(f))
  redis.call('SADD', k_ltoken(cth), lid)
  redis.call('SADD', k_user_owns(uid), lid)
  if vis == '1' then redis.call('ZADD', K_LOBBYS_PUBLIC, 0, lid) end
  created, joined = 1, 1
elseif not is_member(lid, uid) then
  -- access::may_join
  if not (l.visibility == '1' or lobby_role(l, lid, uid, presented) ~= 'none') then
    return {'forbidden'}
  end
  if l.size_limit and redis.call('SCARD', k_members(lid)) >= tonumber(l.size_limit) then
    return {'lobby_full'}
  end
  joined = 1
end
if joined == 1 then
  redis.call('SADD', k_members(lid), uid)
  redis.call('SADD', k_user_lobbys(uid), lid)
  publish(CH_USERS, origin, member_joined(lid, uid))
end
return {'ok', created, joined, redis.call('HGETALL', key), redis.call('SMEMBERS', k_members(lid))}
