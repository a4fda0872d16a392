//! The gateway node: local sessions, routing of engine events to them, and
//! request handling. Transport hands it parsed frames; the engine hands it
//! events; it never sees Redis or sockets.

pub mod extension;
mod fanout;
mod handlers;
pub mod hub;
pub mod session;

use crate::config::Config;
use crate::domain::{LobbyId, Origin, PresenceKind, UserId};
use crate::engine::Engine;
use crate::protocol::request::Limits;
use crate::protocol::{self, ErrorCode, IncomingFrame, OutFrame, ProtocolError, Request};
use extension::Extensions;
use hub::{Hub, SubscriptionDelta};
use session::{ConnId, Outbox, Session};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One gateway node: shared by every connection task and the event
/// dispatcher.
pub struct Node {
    pub engine: Arc<dyn Engine>,
    pub hub: Hub,
    /// This node's id, the prefix of every origin it stamps.
    pub id: String,
    pub limits: Limits,
    pub config: Arc<Config>,
    extensions: Extensions,
    next_conn: AtomicU64,
    /// Object reads of `get_all_data` pages in flight on this node: at
    /// most half of the Redis pool, however many pages are read at once.
    pub page_reads: tokio::sync::Semaphore,
}

/// See `Node::page_reads`; the Redis pool has 16 connections.
pub const PAGE_READS_IN_FLIGHT: usize = 8;

impl Node {
    /// A node over an engine; `extensions` are the application's events.
    pub fn new(
        engine: Arc<dyn Engine>,
        id: String,
        config: Arc<Config>,
        extensions: Extensions,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            hub: Hub::default(),
            id,
            limits: Limits {
                max_content_bytes: config.max_content_bytes,
            },
            config,
            extensions,
            page_reads: tokio::sync::Semaphore::new(PAGE_READS_IN_FLIGHT),
            next_conn: AtomicU64::new(1),
        })
    }

    /// A session for a new connection.
    pub fn open_session(&self, outbox: Outbox) -> Session {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        Session {
            id,
            origin: Origin(format!("{}/{}", self.id, id)),
            outbox,
            login: Default::default(),
        }
    }

    /// Handles one parsed frame and returns the reply.
    pub async fn handle(&self, session: &mut Session, frame: IncomingFrame) -> OutFrame {
        use tracing::Instrument;
        let label = protocol::request::event_label(&frame.event);
        let span = tracing::info_span!(
            "request",
            event = label,
            conn = session.id,
            user = tracing::field::Empty,
            lobby = tracing::field::Empty,
            outcome = tracing::field::Empty,
            error_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        crate::telemetry::record_ids(&span);
        if let Some(u) = &session.login.user {
            span.record("user", u.as_str());
        }
        if let Some(l) = frame
            .data
            .get("lobby")
            .and_then(|l| l.get("id"))
            .and_then(|v| v.as_str())
        {
            span.record("lobby", l);
        }
        let reply = self
            .handle_in_span(session, frame, label)
            .instrument(span.clone())
            .await;
        reply
    }

    async fn handle_in_span(
        &self,
        session: &mut Session,
        frame: IncomingFrame,
        label: &'static str,
    ) -> OutFrame {
        let IncomingFrame { event, data, ack } = frame;
        // Trace context rides in the origin so deliveries on other nodes
        // link to this request; only when spans are exported.
        match crate::telemetry::current_traceparent() {
            Some(tp) => session.origin = Origin(format!("{}/{};{tp}", self.id, session.id)),
            None if session.origin.0.contains(';') => {
                session.origin = Origin(format!("{}/{}", self.id, session.id))
            }
            None => {}
        }
        let result = self.dispatch(session, &event, data).await;
        let span = tracing::Span::current();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        span.record("outcome", outcome);
        crate::telemetry::metrics::request(label, outcome);
        match result {
            Ok(value) => OutFrame::new(&event, value, ack),
            Err(e) => {
                span.record("error_code", e.code.as_str());
                match e.code {
                    ErrorCode::Internal | ErrorCode::Unavailable => {
                        tracing::warn!(conn = session.id, event = %event, code = e.code.as_str(), "request failed")
                    }
                    _ => {
                        tracing::info!(conn = session.id, event = %event, code = e.code.as_str(), "request refused")
                    }
                }
                OutFrame::error(&e, Some(&event), ack)
            }
        }
    }

    async fn dispatch(
        &self,
        s: &mut Session,
        event: &str,
        data: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, ProtocolError> {
        if s.login.user.is_none() && event != "login" {
            return Err(ProtocolError::new(
                ErrorCode::Unauthenticated,
                "log in first",
            ));
        }
        let req = Request::parse(event, data, &self.limits)?;
        if !req.is_read() && !self.engine.fanout_live() {
            return Err(ProtocolError::new(
                ErrorCode::Unavailable,
                "event delivery is reconnecting; nothing was changed",
            ));
        }
        handlers::handle(self, s, req).await
    }

    /// Ends a connection: detaches it and counts its presence down.
    pub async fn close_session(&self, session: &mut Session) {
        if let Some(user) = session.login.user.take() {
            let kind = if session.outbox.was_kicked() {
                PresenceKind::Logout
            } else {
                PresenceKind::Disconnect
            };
            self.end_login(&user, session.id, kind).await;
        }
    }

    /// Detaches a logged-in connection and counts the user's presence down.
    async fn end_login(&self, user: &UserId, conn: ConnId, kind: PresenceKind) {
        let delta = self.hub.detach(user, conn);
        self.apply(delta).await;
        if let Err(e) = self.engine.connection_down(user, kind).await {
            tracing::warn!(error = %e, "presence update failed");
        }
    }

    /// Applies subscription changes the hub asked for.
    async fn apply(&self, delta: SubscriptionDelta) {
        for l in delta.subscribe {
            self.subscribe(&l).await;
        }
        // Re-checked: a join may have raced the leave that asked for this.
        for l in delta
            .unsubscribe
            .into_iter()
            .filter(|l| !self.hub.has_lobby(l))
        {
            crate::telemetry::metrics::metrics()
                .lobby_subscriptions
                .add(-1, &[]);
            if let Err(e) = self.engine.unsubscribe_lobby(&l).await {
                tracing::warn!(error = %e, "unsubscribe failed");
            }
        }
    }

    async fn subscribe(&self, lobby: &LobbyId) {
        crate::telemetry::metrics::metrics()
            .lobby_subscriptions
            .add(1, &[]);
        if let Err(e) = self.engine.subscribe_lobby(lobby).await {
            tracing::warn!(error = %e, "subscribe failed");
        }
    }
}

pub use fanout::run_dispatcher;
