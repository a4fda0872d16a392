-- connection_up: ARGV uid, node, origin. Counts a live connection of uid on
-- node; publishes Presence{login} when it is the user's first anywhere.
local uid, node, origin = ARGV[1], ARGV[2], ARGV[3]
local before = redis.call('HLEN', k_presence(uid))
redis.call('HINCRBY', k_presence(uid), node, 1)
redis.call('HINCRBY', k_conns(node), uid, 1)
-- Only a node with a live heartbeat joins the set the reapers scan: after
-- Redis lost its data, the next heartbeat resyncs and registers it.
if redis.call('EXISTS', k_alive(node)) == 1 then redis.call('SADD', K_NODES, node) end
-- Back within a drained node's grace period: co-members never saw the
-- user go, so they get no `login` either.
local returning = before == 0 and redis.call('ZREM', K_GRACE, uid) == 1
if before == 0 and not returning then publish(CH_USERS, origin, presence_event('login', uid)) end
return {'ok', (before == 0 and not returning) and 1 or 0}
