//! The HTTP router, connection tracking and drain. Handed its listener
//! and shutdown signal, so tests bind port 0.

use crate::node::Node;
use crate::transport::{http, page, ws};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// WebSocket slots taken, for `max_connections`.
    pub admission: Admission,
}

/// Counts connections from the moment their upgrade is accepted: a slot
/// is reserved atomically before the upgrade, so concurrent upgrades
/// cannot together go over `max_connections`.
#[derive(Clone, Default)]
pub struct Admission(Arc<AtomicUsize>);

/// A taken slot; dropping it (the connection ended, or the upgrade never
/// completed) frees it.
pub struct Slot(Arc<AtomicUsize>);

impl Admission {
    /// A slot, unless `max` are taken.
    pub fn try_admit(&self, max: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.0.clone()))
    }

    /// Slots taken now.
    pub fn taken(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_stops_at_the_cap_and_a_dropped_slot_frees_room() {
        let a = Admission::default();
        let s1 = a.try_admit(2).expect("first");
        let _s2 = a.try_admit(2).expect("second");
        assert!(a.try_admit(2).is_none());
        assert_eq!(a.taken(), 2);
        drop(s1);
        assert!(a.try_admit(2).is_some());
    }

    #[test]
    fn concurrent_admissions_never_overshoot() {
        let a = Admission::default();
        let slots: Vec<Option<Slot>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| scope.spawn(|| (0..100).map(|_| a.try_admit(50)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(slots.iter().filter(|s| s.is_some()).count(), 50);
        assert_eq!(a.taken(), 50);
    }
}
