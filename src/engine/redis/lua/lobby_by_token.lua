-- lobby_by_token: ARGV token hash, token. Ids of the lobbies whose token it is.
local th, token = ARGV[1], ARGV[2]
local out = {}
for _, l in ipairs(redis.call('SMEMBERS', k_ltoken(th))) do
  if redis.call('HGET', k_lobby(l), 'token') == token then out[#out + 1] = l end
end
return out
