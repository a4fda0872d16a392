//! The Redis engine: the same behaviour as the memory engine, shared by
//! every gateway node through one Redis (standalone, or one primary).
//!
//! - **Atomicity.** Every mutation re-checks its access rule, applies its
//!   change and publishes its event inside one Lua script (`lua/`), so a
//!   refusal changes nothing and events are published in commit order.
//! - **Channels.** `lobbyd:lobby:<id>` carries a lobby's message, receipt,
//!   typing and update events; a node subscribes only to the lobbies its
//!   local users are members of. One global channel, `lobbyd:users`,
//!   carries every user event (presence, profile, membership, kick) and
//!   every node receives all of it: those events are rare next to messages,
//!   and routing them per user would mean a subscription per remote
//!   co-member. All of a node's channels share one connection
//!   ([`pubsub`]), so it sees all events in one total order.
//! - **Presence** ([`presence`]): per-user hashes of per-node connection
//!   counts, node liveness keys with a TTL, and reapers on every node.
//! - **Failures.** Every call is bounded by two seconds and reports a lost
//!   Redis as [`EngineError::Unavailable`]. A call that times out after
//!   Redis received it may still have been applied; presence repairs itself
//!   from the node's own counts, other requests are the client's to retry.

mod args;
mod decode;
mod keys;
mod presence;
mod pubsub;
mod scripts;
mod store;

use super::{
    Actor, Engine, EngineError, EngineResult, EventSink, JoinOutcome, LobbyChange, LobbySpec,
    UserChange,
};
use crate::domain::{
    token, LobbyId, LobbyRecord, LobbySnapshot, Member, MessageId, MessageRecord, Origin,
    PresenceKind, ReceiptKind, UserId, UserRecord, UserSnapshot,
};
use async_trait::async_trait;
use deadpool_redis::redis::{self, Value};
use presence::Presence;
use pubsub::Subscriber;
use scripts::{flag, opt};
use std::sync::Arc;
use store::Store;
use tokio_util::sync::CancellationToken;

/// The engine of a multi-node deployment.
pub struct RedisEngine {
    /// Commands and scripts (shared with the presence tasks).
    store: Arc<Store>,
    /// The subscriber connection and its reader task.
    subscriber: Subscriber,
    /// Connection counts, heartbeat and reaper.
    presence: Arc<Presence>,
    /// Stops the background tasks when the engine is dropped.
    cancel: CancellationToken,
}

impl RedisEngine {
    /// Connects (failing with `Unavailable` if Redis does not answer within
    /// about two seconds), loads the scripts, registers this node and
    /// starts the subscriber, heartbeat and reaper tasks.
    pub async fn connect(
        url: &str,
        node_id: &str,
        presence_ttl_ms: u64,
        sink: EventSink,
    ) -> EngineResult<Arc<RedisEngine>> {
        let store = Arc::new(Store::new(url)?);
        store.query::<String>(&redis::cmd("PING")).await?;
        store.scripts.load(&store).await?;
        let cancel = CancellationToken::new();
        // Stops whatever was started if a later step fails.
        let stop_on_error = cancel.clone().drop_guard();
        let subscriber = Subscriber::start(url, sink, cancel.clone()).await?;
        let presence = Arc::new(Presence::new(
            store.clone(),
            node_id.to_owned(),
            presence_ttl_ms,
        ));
        presence.register().await?;
        presence::spawn_tasks(presence.clone(), cancel.clone());
        stop_on_error.disarm();
        Ok(Arc::new(RedisEngine {
            store,
            subscriber,
            presence,
            cancel,
        }))
    }

    /// How many times the event subscription was re-established (metrics).
    pub fn reconnects(&self) -> u64 {
        self.subscriber.reconnects()
    }

    /// Changes after every re-established event subscription: events of
    /// the gap were missed and should be recovered (e.g. by `seq`).
    pub fn resubscribed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.subscriber.resubscribed()
    }

    /// Runs the reaper once now (tests; the task does it periodically).
    pub async fn reap_dead_nodes(&self) -> EngineResult<u64> {
        self.presence.reap().await
    }
}

/// A count argument Redis accepts (it parses counts as signed 64-bit).
fn redis_count(n: usize) -> String {
    n.min(i64::MAX as usize).to_string()
}

impl Drop for RedisEngine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[async_trait]
impl Engine for RedisEngine {
    async fn ping(&self) -> EngineResult<()> {
        if !self.subscriber.is_live() {
            return Err(EngineError::Unavailable(
                "event subscription is reconnecting".into(),
            ));
        }
        self.store
            .query::<String>(&redis::cmd("PING"))
            .await
            .map(|_| ())
    }

    // ---- users ----

    async fn create_user(
        &self,
        id: &UserId,
        username: Option<&str>,
        token_hash: &str,
        now: i64,
    ) -> EngineResult<UserRecord> {
        let s = &self.store.scripts.create_user;
        let args = [
            id.to_string(),
            opt(username),
            token_hash.to_owned(),
            now.to_string(),
        ];
        let mut it = self.store.eval_ok(s, &args).await?.into_iter();
        decode::user_from(id, decode::next(&mut it)?)
    }

    async fn user_by_token(&self, token_hash: &str) -> EngineResult<Option<UserId>> {
        let id: Option<String> = self
            .store
            .query(redis::cmd("GET").arg(keys::user_token(token_hash)))
            .await?;
        Ok(id.map(UserId))
    }

    async fn user(&self, id: &UserId) -> EngineResult<Option<UserSnapshot>> {
        let mut p = redis::pipe();
        p.atomic()
            .hgetall(keys::user(id))
            .smembers(keys::user_lobbys(id))
            .exists(keys::presence(id));
        let (h, lobbies, online): (Value, Vec<String>, bool) = self.store.pipe(&p).await?;
        let Some(record) = decode::user_record(id, decode::hash(h)?)? else {
            return Ok(None);
        };
        let mut lobbies: Vec<LobbyId> = lobbies.into_iter().map(LobbyId).collect();
        lobbies.sort();
        Ok(Some(UserSnapshot {
            record,
            lobbies,
            online,
        }))
    }

    async fn change_user(
        &self,
        actor: Actor<'_>,
        change: UserChange,
        now: i64,
    ) -> EngineResult<UserRecord> {
        let mut args = vec![
            actor.user.to_string(),
            now.to_string(),
            actor.origin.to_string(),
        ];
        args.extend(args::user_change(&change)?);
        let mut it = self
            .store
            .eval_ok(&self.store.scripts.change_user, &args)
            .await?
            .into_iter();
        decode::user_from(actor.user, decode::next(&mut it)?)
    }

    async fn visible_users(
        &self,
        caller: &UserId,
        token_hash: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> EngineResult<Vec<UserId>> {
        let args = [
            "users".into(),
            caller.to_string(),
            opt(token_hash),
            String::new(),
            after.unwrap_or("").to_owned(),
            redis_count(limit),
        ];
        let ids = decode::strings(self.store.eval(&self.store.scripts.visible, &args).await?)?;
        Ok(decode::page(ids, after, limit)
            .into_iter()
            .map(UserId)
            .collect())
    }

    // ---- lobbies ----

    async fn connect_lobby(
        &self,
        actor: Actor<'_>,
        spec: LobbySpec,
        now: i64,
    ) -> EngineResult<JoinOutcome> {
        let create_token = spec.token.clone().unwrap_or(spec.generated_token);
        let create_hash = token::hash(&create_token);
        let args = [
            spec.id.to_string(),
            actor.user.to_string(),
            opt(spec.token.as_deref()),
            create_token,
            create_hash,
            flag(spec.visibility),
            spec.size_limit.map(|n| n.to_string()).unwrap_or_default(),
            opt(spec.description.as_deref()),
            now.to_string(),
            actor.origin.to_string(),
        ];
        let mut it = self
            .store
            .eval_ok(&self.store.scripts.connect_lobby, &args)
            .await?
            .into_iter();
        let created = decode::int(decode::next(&mut it)?)? == 1;
        let joined = decode::int(decode::next(&mut it)?)? == 1;
        let lobby = decode::lobby_from(&spec.id, &mut it)?;
        Ok(JoinOutcome {
            lobby,
            created,
            joined,
        })
    }

    async fn leave_lobby(&self, actor: Actor<'_>, lobby: &LobbyId, _now: i64) -> EngineResult<()> {
        let args = [
            lobby.to_string(),
            actor.user.to_string(),
            actor.origin.to_string(),
        ];
        self.store
            .eval_ok(&self.store.scripts.leave_lobby, &args)
            .await
            .map(|_| ())
    }

    async fn lobby(&self, id: &LobbyId) -> EngineResult<Option<LobbySnapshot>> {
        let v = self
            .store
            .eval(&self.store.scripts.read_lobby, &[id.to_string()])
            .await?;
        let parts = decode::array(v)?;
        if parts.is_empty() {
            return Ok(None);
        }
        let mut it = parts.into_iter();
        let h = decode::hash(decode::next(&mut it)?)?;
        let ids = decode::strings(decode::next(&mut it)?)?;
        let names = decode::array(decode::next(&mut it)?)?;
        let online = decode::array(decode::next(&mut it)?)?;
        let mut members = Vec::with_capacity(ids.len());
        for ((id, name), on) in ids
            .iter()
            .zip(names.into_iter().chain(std::iter::repeat(Value::Nil)))
            .zip(online)
        {
            members.push(Member {
                id: UserId(id.clone()),
                username: decode::opt_string(name)?,
                online: decode::int(on)? == 1,
            });
        }
        members.sort_by(|a, b| a.id.cmp(&b.id));
        let record = decode::lobby_record(id, h, ids)?;
        Ok(Some(LobbySnapshot { record, members }))
    }

    async fn lobby_by_token(&self, token: &str) -> EngineResult<Option<LobbyId>> {
        let args = [token::hash(token), token.to_owned()];
        let ids = decode::strings(
            self.store
                .eval(&self.store.scripts.lobby_by_token, &args)
                .await?,
        )?;
        Ok(ids.into_iter().min().map(LobbyId))
    }

    async fn change_lobby(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        change: LobbyChange,
        now: i64,
    ) -> EngineResult<LobbyRecord> {
        let mut args = vec![
            lobby.to_string(),
            actor.user.to_string(),
            opt(actor.token),
            now.to_string(),
            actor.origin.to_string(),
        ];
        args.extend(args::lobby_change(change)?);
        let mut it = self
            .store
            .eval_ok(&self.store.scripts.change_lobby, &args)
            .await?
            .into_iter();
        decode::lobby_from(lobby, &mut it)
    }

    async fn visible_lobbies(
        &self,
        caller: &UserId,
        token: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> EngineResult<Vec<LobbyId>> {
        let th = token.map(token::hash);
        let args = [
            "lobbys".into(),
            caller.to_string(),
            opt(th.as_deref()),
            opt(token),
            after.unwrap_or("").to_owned(),
            redis_count(limit),
        ];
        let ids = decode::strings(self.store.eval(&self.store.scripts.visible, &args).await?)?;
        Ok(decode::page(ids, after, limit)
            .into_iter()
            .map(LobbyId)
            .collect())
    }

    // ---- messages ----

    async fn append_message(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        id: &MessageId,
        content: &str,
        replied: Option<&MessageId>,
        now: i64,
    ) -> EngineResult<MessageRecord> {
        let args = [
            lobby.to_string(),
            actor.user.to_string(),
            id.to_string(),
            content.to_owned(),
            opt(replied.map(MessageId::as_str)),
            now.to_string(),
            actor.origin.to_string(),
        ];
        let mut it = self
            .store
            .eval_ok(&self.store.scripts.append_message, &args)
            .await?
            .into_iter();
        decode::message_record(
            &decode::string(decode::next(&mut it)?)?,
            Vec::new(),
            Vec::new(),
        )
    }

    async fn message(
        &self,
        lobby: &LobbyId,
        id: &MessageId,
    ) -> EngineResult<Option<MessageRecord>> {
        let mut p = redis::pipe();
        p.atomic()
            .hget(keys::msgs(lobby), id.as_str())
            .zrange(keys::received(lobby, id.as_str()), 0, -1)
            .zrange(keys::viewed(lobby, id.as_str()), 0, -1);
        let v: Value = self.store.pipe(&p).await?;
        decode::message_triple(v)
    }

    async fn last_seq(&self, lobby: &LobbyId) -> EngineResult<u64> {
        let v: Option<u64> = self
            .store
            .query(redis::cmd("GET").arg(keys::seq(lobby)))
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn messages_after(
        &self,
        lobby: &LobbyId,
        after: u64,
        limit: usize,
    ) -> EngineResult<Vec<MessageRecord>> {
        let args = [lobby.to_string(), after.to_string(), redis_count(limit)];
        let v = self
            .store
            .eval(&self.store.scripts.read_messages, &args)
            .await?;
        let mut out = Vec::new();
        for triple in decode::array(v)? {
            if let Some(m) = decode::message_triple(triple)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    async fn record_receipt(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: &MessageId,
        kind: ReceiptKind,
    ) -> EngineResult<bool> {
        let kind = match kind {
            ReceiptKind::Received => "received",
            ReceiptKind::Viewed => "viewed",
        };
        let args = [
            lobby.to_string(),
            actor.user.to_string(),
            message.to_string(),
            kind.to_owned(),
            actor.origin.to_string(),
        ];
        let mut it = self
            .store
            .eval_ok(&self.store.scripts.record_receipt, &args)
            .await?
            .into_iter();
        Ok(decode::int(decode::next(&mut it)?)? == 1)
    }

    async fn typing(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: Option<&MessageId>,
    ) -> EngineResult<()> {
        let args = [
            lobby.to_string(),
            actor.user.to_string(),
            opt(message.map(MessageId::as_str)),
            actor.origin.to_string(),
        ];
        self.store
            .eval_ok(&self.store.scripts.typing, &args)
            .await
            .map(|_| ())
    }

    async fn change_message(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: &MessageId,
        content: &str,
        now: i64,
    ) -> EngineResult<MessageRecord> {
        let args = [
            lobby.to_string(),
            actor.user.to_string(),
            message.to_string(),
            content.to_owned(),
            now.to_string(),
            actor.origin.to_string(),
        ];
        let mut it = self
            .store
            .eval_ok(&self.store.scripts.change_message, &args)
            .await?
            .into_iter();
        let json = decode::string(decode::next(&mut it)?)?;
        let received = decode::strings(decode::next(&mut it)?)?;
        let viewed = decode::strings(decode::next(&mut it)?)?;
        decode::message_record(&json, received, viewed)
    }

    // ---- presence and fan-out ----

    async fn connection_up(&self, user: &UserId, origin: &Origin) -> EngineResult<()> {
        self.presence.up(user, origin).await
    }

    async fn connection_down(&self, user: &UserId, kind: PresenceKind) -> EngineResult<()> {
        self.presence.down(user, kind).await
    }

    async fn kick(&self, user: &UserId, origin: &Origin) -> EngineResult<()> {
        let env = crate::domain::Envelope {
            origin: Some(origin.clone()),
            event: crate::domain::Event::Kick { user: user.clone() },
        };
        let payload =
            serde_json::to_string(&env).map_err(|e| EngineError::Internal(e.to_string()))?;
        self.store
            .query::<i64>(
                redis::cmd("PUBLISH")
                    .arg(keys::users_channel())
                    .arg(payload),
            )
            .await
            .map(|_| ())
    }

    async fn subscribe_lobby(&self, lobby: &LobbyId) -> EngineResult<()> {
        self.subscriber.subscribe(keys::lobby_channel(lobby)).await
    }

    async fn unsubscribe_lobby(&self, lobby: &LobbyId) -> EngineResult<()> {
        self.subscriber
            .unsubscribe(keys::lobby_channel(lobby))
            .await
    }

    async fn shutdown(&self, presence_grace_ms: u64) {
        if let Err(e) = self.presence.shutdown(presence_grace_ms).await {
            tracing::warn!(error = %e, "could not remove this node's presence");
        }
        self.cancel.cancel();
    }

    fn resubscribed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(RedisEngine::resubscribed(self))
    }

    fn reconnects(&self) -> u64 {
        RedisEngine::reconnects(self)
    }

    fn fanout_live(&self) -> bool {
        self.subscriber.is_live()
    }
}
