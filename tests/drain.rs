//! Graceful drain with a real SIGTERM to a child process: `/readyz` turns
//! 503 at once, connections close with 1001 after the drain period, the
//! process exits cleanly, and users who reconnect elsewhere within the
//! presence grace period do not flap `disconnect`/`login` to co-members.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{http_status, Gateway, GatewayOpts, RedisServer, WsClient};

async fn two_nodes(redis: &RedisServer) -> (Gateway, Gateway) {
    let opts = |i: usize| {
        GatewayOpts::redis(redis.url())
            .node_id(format!("drain-{i}-{}", support::unique()))
            .presence_ttl_ms(1500)
            .arg("--shutdown-drain-ms")
            .arg("600")
            .arg("--presence-grace-ms")
            .arg("3000")
    };
    (Gateway::start(opts(0)).await, Gateway::start(opts(1)).await)
}

async fn pair(a: &Gateway, b: &Gateway) -> (WsClient, WsClient) {
    let mut u = WsClient::connect(&a.ws_url()).await;
    let mut v = WsClient::connect(&b.ws_url()).await;
    u.login("u").await;
    v.login("v").await;
    let lobby = format!("drain-{}", support::unique());
    u.request(
        "connect_lobby",
        json!({"lobby": {"id": lobby, "visibility": true}}),
    )
    .await
    .ok();
    v.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    u.expect_event("connect_lobby").await;
    (u, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_a_reconnect_within_grace_does_not_flap() {
    let redis = RedisServer::start().await;
    let (mut a, b) = two_nodes(&redis).await;
    let (mut u, mut v) = pair(&a, &b).await;
    let port = a.port();
    let sent = Instant::now();
    a.signal("TERM");
    let deadline = Instant::now() + Duration::from_millis(400);
    while http_status(port, "/readyz").await != Some(503) {
        assert!(
            Instant::now() < deadline,
            "/readyz did not turn 503 at once"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Still served during the drain period.
    u.request("typing_message", json!({"lobby": {"id": "nope"}}))
        .await
        .err("not_found");
    assert_eq!(u.expect_closed().await, Some(1001));
    assert!(
        sent.elapsed() >= Duration::from_millis(500),
        "closed before the drain period: {:?}",
        sent.elapsed()
    );
    let status = a
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("node exits after draining");
    assert!(status.success(), "{status:?}");
    // The user comes back on the other node within the grace period.
    let mut again = WsClient::connect(&b.ws_url()).await;
    again.login_token(u.token()).await;
    v.expect_no_event("disconnect", Duration::from_millis(4500))
        .await;
    v.expect_no_event("login", Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_stays_away_gets_disconnect_after_the_grace_period() {
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&redis).await;
    let (mut u, mut v) = pair(&a, &b).await;
    a.signal("TERM");
    assert_eq!(u.expect_closed().await, Some(1001));
    let closed = Instant::now();
    v.expect_no_event("disconnect", Duration::from_millis(2000))
        .await;
    let ev = v
        .expect_event_within("disconnect", Duration::from_secs(6))
        .await;
    assert_eq!(ev["user"]["id"], json!(u.id()));
    assert!(
        closed.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        closed.elapsed()
    );
}
