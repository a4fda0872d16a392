-- read_messages: ARGV lid, after (seq), limit. Messages with a greater seq, in
-- seq order, each as {json, received ids, viewed ids}.
local lid, after, limit = ARGV[1], ARGV[2], ARGV[3]
local ids = redis.call('ZRANGEBYSCORE', k_order(lid), '(' .. after, '+inf', 'LIMIT', 0, limit)
local out = {}
for i, mid in ipairs(ids) do
  out[i] = {
    redis.call('HGET', k_msgs(lid), mid),
    redis.call('ZRANGE', k_rcv(lid, mid), 0, -1),
    redis.call('ZRANGE', k_view(lid, mid), 0, -1),
  }
end
return out
