-- expire_grace: no ARGV. Publishes the postponed `disconnect` of users
-- whose grace period (after their node drained) ran out while they stayed
-- offline. Atomic, so racing reapers publish each once.
local due = redis.call('ZRANGEBYSCORE', K_GRACE, '-inf', now_ms())
local gone = 0
for _, uid in ipairs(due) do
  redis.call('ZREM', K_GRACE, uid)
  if redis.call('EXISTS', k_presence(uid)) == 0 then
    publish(CH_USERS, '', presence_event('disconnect', uid))
    gone = gone + 1
  end
end
return {'ok', gone}
