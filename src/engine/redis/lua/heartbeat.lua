-- heartbeat: ARGV node, ttl_ms. Refreshes the node's alive key; returns
-- whether it still existed (0 means the node may have been reaped: resync).
local node, ttl = ARGV[1], ARGV[2]
local existed = redis.call('EXISTS', k_alive(node))
redis.call('SET', k_alive(node), '1', 'PX', ttl)
redis.call('SADD', K_NODES, node)
return {'ok', existed}
