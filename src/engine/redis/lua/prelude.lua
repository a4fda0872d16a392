-- Shared by every lobbyd script (prepended at build time): key names, JSON
-- helpers and the access rules of src/domain/access.rs. Key names must match
-- src/engine/redis/keys.rs exactly.
--
-- Argument conventions: an optional string is '' for none and '=' .. value
-- for some (see `opt`); booleans are '0' / '1'; timestamps are decimal
-- strings spliced into JSON unchanged, so they stay exact integers.

local P = 'lobbyd:'
local function k_user(id) return P .. '{u:' .. id .. '}:user' end
local function k_user_lobbys(id) return P .. '{u:' .. id .. '}:lobbys' end
local function k_user_owns(id) return P .. '{u:' .. id .. '}:owns' end
local function k_presence(id) return P .. '{u:' .. id .. '}:presence' end
local function k_utoken(h) return P .. 'utoken:' .. h end
local K_USERS = P .. 'users'
local K_USERS_PUBLIC = P .. 'users:public'
local function k_lobby(id) return P .. '{l:' .. id .. '}:lobby' end
local function k_members(id) return P .. '{l:' .. id .. '}:members' end
local function k_seq(id) return P .. '{l:' .. id .. '}:seq' end
local function k_msgs(id) return P .. '{l:' .. id .. '}:msgs' end
local function k_order(id) return P .. '{l:' .. id .. '}:order' end
local function k_rcv(id, mid) return P .. '{l:' .. id .. '}:rcv:' .. mid end
local function k_view(id, mid) return P .. '{l:' .. id .. '}:view:' .. mid end
local K_LOBBYS_PUBLIC = P .. 'lobbys:public'
local function k_ltoken(h) return P .. 'ltoken:' .. h end
local K_NODES = P .. 'nodes'
-- Users whose last connection went with a draining node: score = when
-- their `disconnect` is due unless they reconnect first.
local K_GRACE = P .. 'presence:grace'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function k_alive(n) return P .. 'node:' .. n .. ':alive' end
-- Nodes a reaper declared dead (score: when), their users' `disconnect`
-- published: if one comes back, its resync publishes `login` again. Kept
-- ten minutes; a node paused longer than that comes back quietly.
local K_REAPED = P .. 'presence:reaped'
local REAPED_KEEP_MS = 600000
local function k_conns(n) return P .. 'node:' .. n .. ':conns' end
local CH_USERS = P .. 'users'
local function ch_lobby(id) return P .. 'lobby:' .. id end

-- '' -> nil, '=x' -> 'x'
local function opt(a)
  if a == nil or a == '' then return nil end
  return string.sub(a, 2)
end

-- A JSON string literal.
local function js(s) return cjson.encode(s) end
-- A JSON string literal, or null.
local function jsn(s)
  if s == nil or s == false then return 'null' end
  return cjson.encode(s)
end
-- A JSON integer (from a Lua number or a decimal string).
local function jint(n)
  if type(n) == 'string' then return n end
  return string.format('%d', n)
end
-- A JSON array of strings ('[]' when empty, unlike cjson's '{}').
local function jlist(ids)
  local parts = {}
  for i, v in ipairs(ids) do parts[i] = cjson.encode(v) end
  return '[' .. table.concat(parts, ',') .. ']'
end

-- Publishes the serde form of domain::Envelope.
local function publish(channel, origin, event)
  local env
  if origin ~= nil and origin ~= '' then
    env = '{"origin":' .. js(origin) .. ',"event":' .. event .. '}'
  else
    env = '{"event":' .. event .. '}'
  end
  redis.call('PUBLISH', channel, env)
end

local function hash_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- The lobby hash as a table, or nil when the lobby does not exist.
local function lobby_get(lid)
  local flat = redis.call('HGETALL', k_lobby(lid))
  if #flat == 0 then return nil end
  return hash_table(flat)
end

local function is_member(lid, uid)
  return redis.call('SISMEMBER', k_members(lid), uid) == 1
end

local function username(uid)
  return redis.call('HGET', k_user(uid), 'username')
end

-- access::lobby_role: 'owner' > 'token' > 'member' > 'none'.
local function lobby_role(l, lid, uid, presented)
  if l.owner == uid then return 'owner' end
  if presented ~= nil and presented == l.token then return 'token' end
  if is_member(lid, uid) then return 'member' end
  return 'none'
end

-- access::non_member_refusal.
local function non_member_refusal(l, uid)
  if l.owner == uid or l.visibility == '1' then return 'forbidden' end
  return 'not_found'
end

-- access::lobby_permissions.
local PERMS = {
  owner = { setOwner = true, setToken = true, setVisibility = true, addUser = true,
            addUsers = true, deleteUser = true, deleteUsers = true, update = true },
  token = { setVisibility = true, addUser = true, addUsers = true, deleteUser = true,
            deleteUsers = true, update = true },
  member = { addUser = true, addUsers = true },
  none = {},
}

local function member_joined(lid, uid)
  return '{"t":"member_joined","lobby":' .. js(lid) .. ',"user":' .. js(uid)
    .. ',"username":' .. jsn(username(uid)) .. '}'
end

local function member_left(lid, uid)
  return '{"t":"member_left","lobby":' .. js(lid) .. ',"user":' .. js(uid) .. '}'
end

local function presence_event(kind, uid)
  return '{"t":"presence","kind":' .. js(kind) .. ',"user":' .. js(uid)
    .. ',"username":' .. jsn(username(uid))
    .. ',"lobbies":' .. jlist(redis.call('SMEMBERS', k_user_lobbys(uid))) .. '}'
end

-- The stored JSON of a message (domain::MessageRecord without receipts).
local function message_json(m)
  return '{"id":' .. js(m.id) .. ',"lobby":' .. js(m.lobby) .. ',"author":' .. js(m.author)
    .. ',"author_username":' .. jsn(m.author_username) .. ',"content":' .. js(m.content)
    .. ',"replied":' .. jsn(m.replied) .. ',"seq":' .. jint(m.seq)
    .. ',"created_at":' .. jint(m.created_at) .. ',"updated_at":' .. jint(m.updated_at) .. '}'
end

-- Adds uid to a receipt zset (scored by arrival) unless present; true if added.
local function add_receipt(key, uid)
  if redis.call('ZSCORE', key, uid) then return false end
  redis.call('ZADD', key, redis.call('ZCARD', key) + 1, uid)
  return true
end

-- ---------------------------------------------------------------------------
