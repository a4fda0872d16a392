-- record_receipt: ARGV lid, uid, mid, kind ('received' | 'viewed'), origin.
local lid, uid, mid, kind, origin = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local l = lobby_get(lid)
if not l then return {'not_found'} end
if not is_member(lid, uid) then return {non_member_refusal(l, uid)} end
if redis.call('HEXISTS', k_msgs(lid), mid) == 0 then return {'not_found'} end
local first = add_receipt(k_rcv(lid, mid), uid)
if kind == 'viewed' then first = add_receipt(k_view(lid, mid), uid) end
if first then
  publish(ch_lobby(lid), origin, '{"t":"receipt","kind":' .. js(kind) .. ',"lobby":' .. js(lid)
    .. ',"message":' .. js(mid) .. ',"user":' .. js(uid) .. '}')
  return {'ok', 1}
end
return {'ok', 0}
