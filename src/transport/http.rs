//! `/healthz` (the process serves) and `/readyz` (the engine answers and
//! the node is not draining).

use crate::server::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use std::time::Duration;

/// 200 while the process serves HTTP at all.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus text exposition of every `lobbyd.` instrument.
pub async fn metrics() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::prometheus_text(),
    )
}

/// 200 when the engine answers within a second and the node is not
/// shutting down; 503 otherwise, so a load balancer stops sending here.
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, &'static str) {
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    match tokio::time::timeout(Duration::from_secs(1), app.node.engine.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "engine unavailable"),
    }
}
