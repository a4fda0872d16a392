-- sync_node: ARGV node, ttl_ms, then pairs uid, count: this node's live
-- connections as it knows them. Makes the store agree: users it no longer
-- counts lose this node's presence (Presence{disconnect} when left with none),
-- users it counts get it back (Presence{login} when they had none and the
-- node had been reaped).
local node, ttl = ARGV[1], ARGV[2]
-- Users come back with `login` only if a reaper told co-members they had
-- gone; after Redis lost its data nobody was told, so they come back quietly.
local announce = redis.call('ZREM', K_REAPED, node) == 1
local want = {}
for i = 3, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
for _, uid in ipairs(redis.call('HKEYS', k_conns(node))) do
  if not want[uid] then
    redis.call('HDEL', k_presence(uid), node)
    if redis.call('EXISTS', k_presence(uid)) == 0 then
      publish(CH_USERS, '', presence_event('disconnect', uid))
    end
  end
end
redis.call('DEL', k_conns(node))
for i = 3, #ARGV, 2 do
  local uid, n = ARGV[i], ARGV[i + 1]
  local before = redis.call('HLEN', k_presence(uid))
  redis.call('HSET', k_presence(uid), node, n)
  redis.call('HSET', k_conns(node), uid, n)
  if before == 0 and announce then publish(CH_USERS, '', presence_event('login', uid)) end
end
redis.call('SET', k_alive(node), '1', 'PX', ttl)
redis.call('SADD', K_NODES, node)
return {'ok'}
