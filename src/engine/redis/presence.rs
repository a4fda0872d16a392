//! Who is online, across nodes. Each user has a presence hash (node id ->
//! live connections); each node a hash of its own counts, a liveness key
//! refreshed by a heartbeat and a place in the node set. When a node dies
//! its liveness key expires and any other node's reaper removes its
//! connections, publishing `disconnect` for users left with none.
//!
//! This node also keeps its counts in memory, the truth about its own
//! connections: when a presence update may not have reached Redis, or the
//! node finds it was reaped while alive (a long pause), the heartbeat
//! rewrites the node's share of presence from it (`sync_node`).

use super::scripts::Script;
use super::store::{Store, OP_TIMEOUT};
use crate::domain::{Origin, PresenceKind, UserId};
use crate::engine::{EngineError, EngineResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// This node's presence bookkeeping.
pub struct Presence {
    store: Arc<Store>,
    node: String,
    ttl_ms: u64,
    /// A tokio mutex, held across the script call, so the in-memory counts
    /// and the store change in the same order and a resync never races an
    /// update.
    local: Mutex<Local>,
}

#[derive(Default)]
struct Local {
    /// Live connections per user on this node.
    counts: HashMap<String, u64>,
    /// A presence update failed in a way that may or may not have changed
    /// the store: resync at the next heartbeat.
    dirty: bool,
    /// After `shutdown`: nothing more is written.
    closed: bool,
}

impl Presence {
    pub fn new(store: Arc<Store>, node: String, ttl_ms: u64) -> Self {
        Self {
            store,
            node,
            ttl_ms,
            local: Mutex::new(Local::default()),
        }
    }

    /// Lifetime of the liveness key: two thirds of the TTL, so that with
    /// the reaper's period a dead node is noticed within the TTL
    /// (2/3 + 1/6 = 5/6 of it, worst case).
    fn alive_ms(&self) -> u64 {
        (self.ttl_ms * 2 / 3).max(100)
    }

    /// Heartbeat period: a quarter of the TTL, leaving a late heartbeat
    /// 5/12 of the TTL before the key expires.
    pub fn heartbeat_every(&self) -> Duration {
        Duration::from_millis((self.ttl_ms / 4).max(25))
    }

    /// Reaper period.
    pub fn reap_every(&self) -> Duration {
        Duration::from_millis((self.ttl_ms / 6).max(25))
    }

    async fn lock(&self) -> EngineResult<tokio::sync::MutexGuard<'_, Local>> {
        tokio::time::timeout(OP_TIMEOUT, self.local.lock())
            .await
            .map_err(|_| EngineError::Unavailable("presence busy".into()))
    }

    /// Counts a new connection of `user` here (publishing `login` when it is
    /// the user's first anywhere).
    pub async fn up(&self, user: &UserId, origin: &Origin) -> EngineResult<()> {
        let mut local = self.lock().await?;
        let args = [user.to_string(), self.node.clone(), origin.to_string()];
        match self
            .store
            .eval_ok(&self.store.scripts.connection_up, &args)
            .await
        {
            Ok(_) => {
                *local.counts.entry(user.to_string()).or_insert(0) += 1;
                Ok(())
            }
            Err(e) => {
                local.dirty = true;
                Err(e)
            }
        }
    }

    /// Counts a connection of `user` gone (publishing `kind` when it was
    /// the user's last anywhere).
    pub async fn down(&self, user: &UserId, kind: PresenceKind) -> EngineResult<()> {
        let mut local = self.lock().await?;
        if let Some(n) = local.counts.get_mut(user.as_str()) {
            *n -= 1;
            if *n == 0 {
                local.counts.remove(user.as_str());
            }
        }
        if local.closed {
            return Ok(());
        }
        let kind = match kind {
            PresenceKind::Login => "login",
            PresenceKind::Logout => "logout",
            PresenceKind::Disconnect => "disconnect",
        };
        let args = [user.to_string(), self.node.clone(), kind.to_owned()];
        let r = self
            .store
            .eval_ok(&self.store.scripts.connection_down, &args)
            .await;
        if r.is_err() {
            local.dirty = true;
        }
        r.map(|_| ())
    }

    /// Rewrites this node's share of presence from the in-memory counts and
    /// refreshes the liveness key.
    async fn sync(&self, local: &mut Local) -> EngineResult<()> {
        let mut args = vec![self.node.clone(), self.alive_ms().to_string()];
        for (u, n) in &local.counts {
            args.push(u.clone());
            args.push(n.to_string());
        }
        self.store
            .eval_ok(&self.store.scripts.sync_node, &args)
            .await?;
        local.dirty = false;
        Ok(())
    }

    /// One heartbeat: refresh the liveness key; resync when it had expired
    /// (this node may have been reaped) or an update was uncertain.
    pub async fn heartbeat(&self) -> EngineResult<()> {
        let mut local = self.lock().await?;
        if local.closed {
            return Ok(());
        }
        if local.dirty {
            return self.sync(&mut local).await;
        }
        let args = [self.node.clone(), self.alive_ms().to_string()];
        let existed = self
            .store
            .eval_ok(&self.store.scripts.heartbeat, &args)
            .await?;
        let existed = existed
            .into_iter()
            .next()
            .map(super::decode::int)
            .transpose()?
            .unwrap_or(0);
        if existed == 0 {
            tracing::info!(node = %self.node, "liveness key had expired; resyncing presence");
            self.sync(&mut local).await?;
        }
        Ok(())
    }

    /// Registers the node at start: forgets what an earlier process with
    /// the same node id left behind and sets the liveness key.
    pub async fn register(&self) -> EngineResult<()> {
        let mut local = self.lock().await?;
        let live: bool = self
            .store
            .query(deadpool_redis::redis::cmd("EXISTS").arg(super::keys::alive(&self.node)))
            .await?;
        if live {
            tracing::warn!(node = %self.node, "node id already alive: another node with this id, or a restart within the TTL");
        }
        self.sync(&mut local).await
    }

    /// Reaps every node whose liveness key has expired. Returns how many
    /// users went offline.
    pub async fn reap(&self) -> EngineResult<u64> {
        self.store
            .eval_ok(&self.store.scripts.expire_grace, &[])
            .await?;
        let nodes: Vec<String> = self
            .store
            .query(deadpool_redis::redis::cmd("SMEMBERS").arg(super::keys::nodes()))
            .await?;
        let others: Vec<&String> = nodes.iter().filter(|n| **n != self.node).collect();
        if others.is_empty() {
            return Ok(0);
        }
        let mut pipe = deadpool_redis::redis::pipe();
        for n in &others {
            pipe.exists(super::keys::alive(n));
        }
        let alive: Vec<bool> = self.store.pipe(&pipe).await?;
        let mut gone = 0;
        for (n, alive) in others.into_iter().zip(alive) {
            if !alive {
                gone += self
                    .reap_one(&self.store.scripts.reap_node, n, false, 0)
                    .await?;
            }
        }
        Ok(gone)
    }

    async fn reap_one(
        &self,
        script: &Script,
        node: &str,
        force: bool,
        grace_ms: u64,
    ) -> EngineResult<u64> {
        let args = [
            node.to_owned(),
            if force { "1" } else { "0" }.to_owned(),
            grace_ms.to_string(),
        ];
        let out = self.store.eval_ok(script, &args).await?;
        let n = out
            .into_iter()
            .next()
            .map(super::decode::int)
            .transpose()?
            .unwrap_or(0);
        if n > 0 {
            tracing::info!(node, users = n, "reaped a dead node's connections");
        }
        Ok(n.max(0) as u64)
    }

    /// Removes this node's presence (clean shutdown): users left with no
    /// connection anywhere get `disconnect`, after `grace_ms` unless they
    /// reconnect first.
    pub async fn shutdown(&self, grace_ms: u64) -> EngineResult<()> {
        let mut local = self.lock().await?;
        if local.closed {
            return Ok(());
        }
        local.closed = true;
        local.counts.clear();
        self.reap_one(&self.store.scripts.reap_node, &self.node, true, grace_ms)
            .await
            .map(|_| ())
    }
}

/// Runs the heartbeat and the reaper until `cancel`.
pub fn spawn_tasks(presence: Arc<Presence>, cancel: CancellationToken) {
    let p = presence.clone();
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(p.heartbeat_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = p.heartbeat().await {
                tracing::warn!(error = %e, "presence heartbeat failed");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(presence.reap_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = presence.reap().await {
                tracing::debug!(error = %e, "presence reaper failed");
            }
        }
    });
}
