-- reap_node: ARGV node, force ('1' on the node's own clean shutdown),
-- grace_ms (clean shutdown: users left with no connection get their
-- `disconnect` only if they do not reconnect within it; 0 = at once).
-- Removes a dead node's connections from every user's presence, publishing
-- Presence{disconnect} for users left with none. Unless forced, does nothing
-- when the node's alive key exists (it came back, or another reaper won).
local node, force, grace = ARGV[1], ARGV[2], tonumber(ARGV[3] or '0')
local due = (force == '1' and grace > 0) and (now_ms() + grace) or nil
if force ~= '1' and redis.call('EXISTS', k_alive(node)) == 1 then return {'ok', -1} end
local users = redis.call('HKEYS', k_conns(node))
local gone = 0
for _, uid in ipairs(users) do
  redis.call('HDEL', k_presence(uid), node)
  if redis.call('EXISTS', k_presence(uid)) == 0 and due then
    redis.call('ZADD', K_GRACE, due, uid)
  elseif redis.call('EXISTS', k_presence(uid)) == 0 then
    publish(CH_USERS, '', presence_event('disconnect', uid))
    gone = gone + 1
  end
end
if force ~= '1' and #users > 0 then
  local now = now_ms()
  redis.call('ZADD', K_REAPED, now, node)
  redis.call('ZREMRANGEBYSCORE', K_REAPED, '-inf', now - REAPED_KEEP_MS)
end
redis.call('DEL', k_conns(node))
redis.call('SREM', K_NODES, node)
if force == '1' then redis.call('DEL', k_alive(node)) end
return {'ok', gone}
