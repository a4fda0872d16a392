-- leave_lobby: ARGV lid, uid, origin.
local lid, uid, origin = ARGV[1], ARGV[2], ARGV[3]
local l = lobby_get(lid)
if not l then return {'not_found'} end
if not is_member(lid, uid) then return {non_member_refusal(l, uid)} end
redis.call('SREM', k_members(lid), uid)
redis.call('SREM', k_user_lobbys(uid), lid)
publish(CH_USERS, origin, member_left(lid, uid))
return {'ok'}
