//! lobbyd: a horizontally scalable real-time chat and data gateway that
//! speaks protocol v1 (the events of `websocketserver-base`).
//!
//! # Architecture
//!
//! ```text
//!  WebSocket ─ transport::ws ─ protocol (frames, typed requests, errors)
//!                                  │
//!                        node (sessions, hub, handlers, fanout)
//!                                  │  Arc<dyn Engine>
//!              engine::memory  ────┴────  engine::redis (Lua + pub/sub)
//! ```
//!
//! - `domain` holds ids, records, the access rules and views: pure code.
//! - `engine` stores state and fans events out; every state change and the
//!   publish of its event are one atomic step, so every node delivers a
//!   lobby's events in one order.
//! - `node` owns local connections: which of them see which event, and the
//!   request handlers. It never sees Redis.
//!
//! Embed a gateway with [`Gateway`] and add application events with
//! [`Gateway::on_event`].

pub mod config;
pub mod domain;
pub mod engine;
pub mod node;
pub mod protocol;
pub mod server;
pub mod telemetry;
pub mod transport;

use axum::serve::ListenerExt;
use config::Config;
use engine::{Engine, EngineError};
use node::extension::{EventContext, EventHandler, Extensions};
use node::Node;
use protocol::ProtocolError;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a gateway could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A gateway to run in a process: configuration plus the application's
/// own events.
pub struct Gateway {
    config: Config,
    extensions: Extensions,
}

impl Gateway {
    /// A gateway with this configuration and no application events.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            extensions: Extensions::default(),
        }
    }

    /// Registers a handler for an application event. It gets the caller
    /// (always logged in) and the request's `data`, and returns the
    /// reply's `data` or a protocol error.
    pub fn on_event<F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        F: Fn(EventContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ProtocolError>> + Send + 'static,
    {
        let h: EventHandler = Arc::new(move |ctx, data| Box::pin(handler(ctx, data)));
        self.extensions.insert(event, h);
        self
    }

    /// Serves on `listener` until `shutdown` resolves, then closes every
    /// connection with 1001 and removes this node's presence.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        // rediss:// needs a TLS crypto provider (ring: builds with a C
        // compiler alone). Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = Arc::new(self.config);
        let node_id = config
            .node_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
        let (sink, events) = tokio::sync::mpsc::unbounded_channel();
        let engine: Arc<dyn Engine> = match &config.redis_url {
            None => Arc::new(engine::memory::MemoryEngine::new(sink)),
            Some(url) => {
                engine::redis::RedisEngine::connect(url, &node_id, config.presence_ttl_ms, sink)
                    .await?
            }
        };
        let node = Node::new(
            engine.clone(),
            node_id.clone(),
            config.clone(),
            self.extensions,
        );
        tokio::spawn(node::run_dispatcher(node.clone(), events));
        let state = server::AppState {
            node,
            shutdown: CancellationToken::new(),
            closing: CancellationToken::new(),
            connections: TaskTracker::new(),
            admission: server::Admission::default(),
        };
        let app = server::router(state.clone());
        tracing::info!(
            addr = %listener.local_addr()?,
            node = %node_id,
            engine = if config.redis_url.is_some() { "redis" } else { "memory" },
            "lobbyd listening"
        );
        let draining = state.shutdown.clone();
        let drain = Duration::from_millis(config.shutdown_drain_ms);
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(drain_ms = drain.as_millis() as u64, "draining");
            draining.cancel();
        });
        let draining = state.shutdown.clone();
        // Frames are small and latency matters: no Nagle delay.
        let lowat = config.tcp_notsent_lowat;
        let listener = listener.tap_io(move |tcp| {
            let _ = tcp.set_nodelay(true);
            // Linux only (the option does not exist elsewhere).
            #[cfg(any(target_os = "linux", target_os = "android"))]
            if lowat > 0 {
                let _ = socket2::SockRef::from(&*tcp).set_tcp_notsent_lowat(lowat);
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = lowat;
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                draining.cancelled().await;
                tokio::time::sleep(drain).await;
            })
            .await?;
        // Presence first, so the closing connections do not publish
        // `disconnect` to co-members of users who reconnect elsewhere.
        engine.shutdown(config.presence_grace_ms).await;
        state.closing.cancel();
        state.connections.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), state.connections.wait()).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Runs a gateway without application events: what the binary does.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    Gateway::new(config).serve(listener, shutdown).await
}
