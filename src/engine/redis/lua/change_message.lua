-- change_message: ARGV lid, uid, mid, content, now, origin.
-- A non-member gets not_found whatever the lobby's visibility (as the memory engine).
local lid, uid, mid, content, now, origin = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', k_lobby(lid)) == 0 or not is_member(lid, uid) then return {'not_found'} end
local stored = redis.call('HGET', k_msgs(lid), mid)
if not stored then return {'not_found'} end
local m = cjson.decode(stored)
if m.author ~= uid then return {'forbidden'} end
m.content = content
m.updated_at = now
local rec = message_json(m)
redis.call('HSET', k_msgs(lid), mid, rec)
publish(ch_lobby(lid), origin, '{"t":"message_updated","lobby":' .. js(lid) .. ',"message":' .. js(mid)
  .. ',"fields":{"content":' .. js(content) .. '},"updated_at":' .. jint(now) .. '}')
return {'ok', rec, redis.call('ZRANGE', k_rcv(lid, mid), 0, -1), redis.call('ZRANGE', k_view(lid, mid), 0, -1)}
