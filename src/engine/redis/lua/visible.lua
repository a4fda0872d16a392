-- visible: ARGV kind ('users' | 'lobbys'), caller, opt token hash, opt token, after ('' none), limit.
-- Returns the unsorted candidate ids; Rust sorts bytewise and pages (Lua's
-- string order follows the server locale, Rust's does not).
local kind, caller, th, token, after, limit =
  ARGV[1], ARGV[2], opt(ARGV[3]), opt(ARGV[4]), ARGV[5], ARGV[6]
local out = {}
local function add(list) for _, v in ipairs(list) do out[#out + 1] = v end end
local min = '-'
if after ~= '' then min = '(' .. after end
local lobbies = redis.call('SMEMBERS', k_user_lobbys(caller))
if kind == 'users' then
  if redis.call('EXISTS', k_user(caller)) == 1 then out[#out + 1] = caller end
  for _, l in ipairs(lobbies) do add(redis.call('SMEMBERS', k_members(l))) end
  add(redis.call('ZRANGEBYLEX', K_USERS_PUBLIC, min, '+', 'LIMIT', 0, limit))
  if th then
    local id = redis.call('GET', k_utoken(th))
    if id then out[#out + 1] = id end
  end
else
  add(lobbies)
  add(redis.call('SMEMBERS', k_user_owns(caller)))
  add(redis.call('ZRANGEBYLEX', K_LOBBYS_PUBLIC, min, '+', 'LIMIT', 0, limit))
  if th then
    for _, l in ipairs(redis.call('SMEMBERS', k_ltoken(th))) do
      if redis.call('HGET', k_lobby(l), 'token') == token then out[#out + 1] = l end
    end
  end
end
return out
