-- connection_down: ARGV uid, node, kind ('logout' | 'disconnect'). Counts a
-- connection gone; publishes Presence{kind} when it was the user's last
-- anywhere. A connection this node no longer counts (reaped) is a no-op.
local uid, node, kind = ARGV[1], ARGV[2], ARGV[3]
local n = tonumber(redis.call('HGET', k_presence(uid), node))
if not n then return {'ok', 0} end
if n <= 1 then
  redis.call('HDEL', k_presence(uid), node)
else
  redis.call('HINCRBY', k_presence(uid), node, -1)
end
local c = tonumber(redis.call('HGET', k_conns(node), uid))
if c and c <= 1 then
  redis.call('HDEL', k_conns(node), uid)
elseif c then
  redis.call('HINCRBY', k_conns(node), uid, -1)
end
if redis.call('EXISTS', k_presence(uid)) == 0 then
  publish(CH_USERS, '', presence_event(kind, uid))
  return {'ok', 1}
end
return {'ok', 0}
