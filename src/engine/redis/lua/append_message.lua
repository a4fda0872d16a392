-- append_message: ARGV lid, uid, mid, content, opt replied, now, origin.
local lid, uid, mid, content, replied, now, origin =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], opt(ARGV[5]), ARGV[6], ARGV[7]
local l = lobby_get(lid)
if not l then return {'not_found'} end
if not is_member(lid, uid) then return {non_member_refusal(l, uid)} end
if replied and redis.call('HEXISTS', k_msgs(lid), replied) == 0 then return {'not_found'} end
if redis.call('HEXISTS', k_msgs(lid), mid) == 1 then return {'conflict'} end
local seq = redis.call('INCR', k_seq(lid))
local rec = message_json({
  id = mid, lobby = lid, author = uid, author_username = username(uid), content = content,
  replied = replied, seq = seq, created_at = now, updated_at = now,
})
redis.call('HSET', k_msgs(lid), mid, rec)
redis.call('ZADD', k_order(lid), seq, mid)
publish(ch_lobby(lid), origin, '{"t":"message","message":' .. rec .. '}')
return {'ok', rec}
