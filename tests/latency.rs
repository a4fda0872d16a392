//! Delivery latency on an idle loopback connection: a broadcast that
//! follows a reply on the same connection must not wait for the client's
//! delayed ACK (Nagle's algorithm holds a small write while an earlier one
//! is unacknowledged; Linux delays ACKs by up to 40 ms). The server must
//! set TCP_NODELAY on its accepted sockets.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_right_after_a_reply_is_not_delayed() {
    let gw = Gateway::start(GatewayOpts::default()).await;
    let mut a = WsClient::connect(&gw.ws_url()).await;
    a.login("ann").await;
    let token = a.token().to_string();
    let mut b = WsClient::connect(&gw.ws_url()).await;
    b.login_token(&token).await;
    let lobby = a.request("connect_lobby", json!({"lobby": {}})).await.ok()["lobby"]["id"].clone();
    let mut rounds = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        // A reply to `a`, then a broadcast to `a` caused by `b`.
        a.request("get_data", json!({"type": "lobbys", "id": lobby}))
            .await
            .ok();
        b.request("typing_message", json!({"lobby": {"id": lobby}}))
            .await
            .ok();
        a.expect_event("typing_message").await;
        rounds.push(t.elapsed());
    }
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "request + broadcast round took {median:?} (median of {rounds:?}); \
         a 40 ms floor means the server's sockets lack TCP_NODELAY"
    );
}
