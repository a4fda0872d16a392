//! The node's one subscriber connection. All of the node's channels (the
//! global user channel and every wanted lobby channel) live on it, so the
//! node sees every event in one total order: Redis pushes messages to a
//! connection in publish order, and each script publishes as it commits.
//!
//! A task reads the connection, decodes each payload into an
//! [`Envelope`](crate::domain::Envelope) and hands it to the node's sink.
//! When the connection ends or stops answering pings, the task reconnects
//! with exponential backoff and subscribes every wanted channel again;
//! events published meanwhile are lost, which [`Subscriber::resubscribed`]
//! lets the node notice and recover from (messages carry `seq`).

use super::keys;
use super::store::{redis_error, OP_TIMEOUT};
use crate::domain::Envelope;
use crate::engine::{EngineError, EngineResult, EventSink};
use deadpool_redis::redis::{
    self,
    aio::{PubSubSink, PubSubStream},
    Value,
};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often the idle connection is pinged, to notice a dead peer that
/// never closed the TCP connection.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Channels per SUBSCRIBE command when resubscribing.
const CHUNK: usize = 512;
/// Bound of a (re)connect including resubscribing every wanted channel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle on the subscriber task; owned by the engine.
pub struct Subscriber {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    events: EventSink,
    /// A tokio mutex held across SUBSCRIBE / UNSUBSCRIBE round trips, so
    /// the server's subscriptions follow the order of the engine's calls
    /// and a reconnect never interleaves with them.
    state: Mutex<State>,
    /// Successful reconnects since start (for metrics).
    reconnects: AtomicU64,
    /// Bumped after each reconnect once every channel is subscribed again.
    resubscribed: watch::Sender<u64>,
    /// Whether the connection is up with every channel subscribed.
    live: std::sync::atomic::AtomicBool,
}

struct State {
    /// Lobby channels the node wants, subscribed again after a reconnect.
    wanted: BTreeSet<String>,
    /// The live connection's command half; `None` while reconnecting.
    sink: Option<PubSubSink>,
}

impl Subscriber {
    /// Connects, subscribes the global channel and starts the reader task,
    /// which stops when `cancel` fires.
    pub async fn start(
        url: &str,
        events: EventSink,
        cancel: CancellationToken,
    ) -> EngineResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| EngineError::Unavailable(format!("bad redis url: {e}")))?;
        let shared = Arc::new(Shared {
            client,
            events,
            state: Mutex::new(State {
                wanted: BTreeSet::new(),
                sink: None,
            }),
            reconnects: AtomicU64::new(0),
            resubscribed: watch::channel(0).0,
            live: std::sync::atomic::AtomicBool::new(false),
        });
        let first = shared.connect(OP_TIMEOUT).await?;
        tokio::spawn(run(shared.clone(), first, cancel));
        Ok(Self { shared })
    }

    /// Adds a channel and returns once the server confirmed it. While
    /// reconnecting it fails with `Unavailable` but stays wanted, so it is
    /// subscribed with the others when the connection is back.
    pub async fn subscribe(&self, channel: String) -> EngineResult<()> {
        let work = async {
            let mut st = self.shared.state.lock().await;
            st.wanted.insert(channel.clone());
            match st.sink.as_mut() {
                Some(sink) => sink.subscribe(&channel).await.map_err(redis_error),
                None => Err(EngineError::Unavailable(
                    "event subscription is reconnecting".into(),
                )),
            }
        };
        tokio::time::timeout(OP_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(EngineError::Unavailable("subscribe timed out".into())))
    }

    /// Drops a channel. While reconnecting it is simply no longer wanted.
    pub async fn unsubscribe(&self, channel: String) -> EngineResult<()> {
        let work = async {
            let mut st = self.shared.state.lock().await;
            st.wanted.remove(&channel);
            match st.sink.as_mut() {
                Some(sink) => sink.unsubscribe(&channel).await.map_err(redis_error),
                None => Ok(()),
            }
        };
        tokio::time::timeout(OP_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(EngineError::Unavailable("unsubscribe timed out".into())))
    }

    /// Whether events reach this node now: while not, publishes by anyone
    /// may be missed here.
    pub fn is_live(&self) -> bool {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// How many times the connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    /// Changes after every reconnect, once the node's channels are
    /// subscribed again: events published during the gap were missed.
    pub fn resubscribed(&self) -> watch::Receiver<u64> {
        self.shared.resubscribed.subscribe()
    }
}

impl Shared {
    /// Opens a connection and subscribes the global channel and every
    /// wanted one, holding the state lock so no (un)subscribe interleaves.
    async fn connect(&self, limit: Duration) -> EngineResult<PubSubStream> {
        let work = async {
            let (mut sink, stream) = self
                .client
                .get_async_pubsub()
                .await
                .map_err(redis_error)?
                .split();
            let mut st = self.state.lock().await;
            let mut channels = vec![keys::users_channel()];
            channels.extend(st.wanted.iter().cloned());
            for chunk in channels.chunks(CHUNK) {
                sink.subscribe(chunk).await.map_err(redis_error)?;
            }
            st.sink = Some(sink);
            self.live.store(true, Ordering::Relaxed);
            Ok(stream)
        };
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(EngineError::Unavailable(
                "redis pub/sub did not answer in time".into(),
            ))
        })
    }

    /// Reads one connection until it ends, fails a ping, or `cancel` fires.
    async fn pump(&self, mut stream: PubSubStream, cancel: &CancellationToken) {
        let Some(mut pinger) = self.state.lock().await.sink.clone() else {
            return;
        };
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(msg) => self.deliver(&msg),
                    None => return,
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(OP_TIMEOUT, pinger.ping::<Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "redis pub/sub ping failed");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!("redis pub/sub ping timed out");
                            return;
                        }
                    }
                }
            }
        }
    }

    fn deliver(&self, msg: &redis::Msg) {
        match serde_json::from_slice::<Envelope>(msg.get_payload_bytes()) {
            Ok(env) => {
                let _ = self.events.send(env);
            }
            Err(e) => {
                tracing::warn!(channel = msg.get_channel_name(), error = %e, "undecodable event skipped")
            }
        }
    }
}

/// The reader task: pump, and on loss reconnect with backoff.
async fn run(shared: Arc<Shared>, first: PubSubStream, cancel: CancellationToken) {
    let mut stream = Some(first);
    let mut backoff = BACKOFF_MIN;
    loop {
        if let Some(s) = stream.take() {
            shared.pump(s, &cancel).await;
            shared.live.store(false, Ordering::Relaxed);
            shared.state.lock().await.sink = None;
            if cancel.is_cancelled() {
                return;
            }
            tracing::warn!("redis pub/sub connection lost; reconnecting");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return,
            r = shared.connect(CONNECT_TIMEOUT) => r,
        };
        match attempt {
            Ok(s) => {
                backoff = BACKOFF_MIN;
                let n = shared.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
                crate::telemetry::metrics::metrics()
                    .pubsub_reconnects
                    .add(1, &[]);
                shared.resubscribed.send_replace(n);
                tracing::info!(reconnects = n, "redis pub/sub resubscribed");
                stream = Some(s);
            }
            Err(e) => {
                tracing::debug!(error = %e, "redis pub/sub reconnect failed");
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
