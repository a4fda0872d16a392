//! The HTTP router, connection tracking and drain. Handed its listener
//! and shutdown signal, so tests bind port 0.

use crate::node::Node;
use crate::transport::{http, page, ws};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every HTTP handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<Node>,
    /// Cancelled when the node starts draining: `/readyz` answers 503 and
    /// new WebSocket upgrades are refused.
    pub shutdown: CancellationToken,
    /// Cancelled when the drain period is over: open connections close
    /// with 1001 after their in-flight request.
    pub closing: CancellationToken,
    /// Upgraded WebSockets, which axum's own graceful shutdown does not
    /// wait for.
    pub connections: TaskTracker,
}

/// The router: `/ws`, `/healthz`, `/readyz`, `/metrics`, and the chat
/// page when enabled.
pub fn router(state: AppState) -> Router {
    let config = &state.node.config;
    let page = config.serve_page.unwrap_or(config.redis_url.is_none());
    let mut router = Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics));
    if page {
        router = router
            .route("/", get(page::index))
            .route("/app.js", get(page::script))
            .route("/app.css", get(page::style));
    }
    router.with_state(state)
}
