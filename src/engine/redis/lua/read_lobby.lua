-- read_lobby: ARGV lid. One consistent snapshot: the lobby hash, its members,
-- their usernames (nil for none) and whether each is online (0/1).
-- {} when the lobby does not exist.
local lid = ARGV[1]
local flat = redis.call('HGETALL', k_lobby(lid))
if #flat == 0 then return {} end
local members = redis.call('SMEMBERS', k_members(lid))
local names, online = {}, {}
for i, m in ipairs(members) do
  names[i] = username(m)
  online[i] = redis.call('EXISTS', k_presence(m))
end
return {flat, members, names, online}
