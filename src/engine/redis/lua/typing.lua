-- typing: ARGV lid, uid, opt mid, origin. Stores nothing.
local lid, uid, mid, origin = ARGV[1], ARGV[2], opt(ARGV[3]), ARGV[4]
local l = lobby_get(lid)
if not l then return {'not_found'} end
if not is_member(lid, uid) then return {non_member_refusal(l, uid)} end
local ev = '{"t":"typing","lobby":' .. js(lid) .. ',"user":' .. js(uid)
if mid then
  if redis.call('HEXISTS', k_msgs(lid), mid) == 0 then return {'not_found'} end
  ev = ev .. ',"message":' .. js(mid)
end
publish(ch_lobby(lid), origin, ev .. '}')
return {'ok'}
