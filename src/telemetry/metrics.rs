//! The node's instruments, created once from the global meter. Hot paths
//! record once per event (a delivery count, one latency sample), never once
//! per recipient.

use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
use opentelemetry::KeyValue;
use std::sync::OnceLock;

/// Every instrument lobbyd records (names under `lobbyd.`).
pub struct Metrics {
    /// `lobbyd.connections.open`: WebSocket connections open now.
    pub connections_open: UpDownCounter<i64>,
    /// `lobbyd.users.logged_in`: users with a connection on this node.
    pub users_logged_in: UpDownCounter<i64>,
    /// `lobbyd.requests`: requests by `event` and `outcome` (ok or code).
    pub requests: Counter<u64>,
    /// `lobbyd.broadcast.deliveries`: frames queued to connections.
    pub deliveries: Counter<u64>,
    /// `lobbyd.fanout.latency` (s): message commit to frame queued here.
    pub fanout_latency: Histogram<f64>,
    /// `lobbyd.redis.command.latency` (s): one engine call against Redis.
    pub redis_latency: Histogram<f64>,
    /// `lobbyd.pubsub.reconnects`: pub/sub connection re-established.
    pub pubsub_reconnects: Counter<u64>,
    /// `lobbyd.slow_consumer.disconnects`: connections closed for not reading.
    pub slow_consumers: Counter<u64>,
    /// `lobbyd.lobby.subscriptions`: lobby channels this node holds.
    pub lobby_subscriptions: UpDownCounter<i64>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The instruments; no-ops until a meter provider is installed.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| {
        let m = opentelemetry::global::meter("lobbyd");
        let latency_buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5,
        ];
        Metrics {
            connections_open: m
                .i64_up_down_counter("lobbyd.connections.open")
                .with_description("WebSocket connections open")
                .build(),
            users_logged_in: m
                .i64_up_down_counter("lobbyd.users.logged_in")
                .with_description("Users with a connection on this node")
                .build(),
            requests: m
                .u64_counter("lobbyd.requests")
                .with_description("Requests by event and outcome")
                .build(),
            deliveries: m
                .u64_counter("lobbyd.broadcast.deliveries")
                .with_description("Broadcast frames queued to connections")
                .build(),
            fanout_latency: m
                .f64_histogram("lobbyd.fanout.latency")
                .with_unit("s")
                .with_description("Message commit to frame queued on the delivering node")
                .with_boundaries(latency_buckets.clone())
                .build(),
            redis_latency: m
                .f64_histogram("lobbyd.redis.command.latency")
                .with_unit("s")
                .with_description("Latency of one engine call against Redis")
                .with_boundaries(latency_buckets)
                .build(),
            pubsub_reconnects: m
                .u64_counter("lobbyd.pubsub.reconnects")
                .with_description("Pub/sub reconnections")
                .build(),
            slow_consumers: m
                .u64_counter("lobbyd.slow_consumer.disconnects")
                .with_description("Connections closed as slow consumers")
                .build(),
            lobby_subscriptions: m
                .i64_up_down_counter("lobbyd.lobby.subscriptions")
                .with_description("Lobby channels subscribed by this node")
                .build(),
        }
    })
}

/// Records one request's outcome.
pub fn request(event: &'static str, outcome: &'static str) {
    metrics().requests.add(
        1,
        &[
            KeyValue::new("event", event),
            KeyValue::new("outcome", outcome),
        ],
    );
}
