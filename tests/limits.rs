//! Node limits: connection cap (503 before any work), Origin allow-list
//! (403), JSON shape limits and the per-connection rate limit.

mod support;

use serde_json::json;
use support::{Gateway, GatewayOpts, WsClient};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

/// The HTTP status of a refused upgrade, or None when it was accepted.
async fn upgrade_status(url: &str, origin: Option<&str>) -> Option<u16> {
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => None,
        Err(WsError::Http(resp)) => Some(resp.status().as_u16()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503() {
    let node = Gateway::start(GatewayOpts::default().arg("--max-connections").arg("2")).await;
    let mut a = WsClient::connect(&node.ws_url()).await;
    let _b = WsClient::connect(&node.ws_url()).await;
    a.login("ann").await;
    assert_eq!(upgrade_status(&node.ws_url(), None).await, Some(503));
    // The existing connections are unaffected.
    a.request("connect_lobby", json!({"lobby": {}})).await.ok();
    a.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while upgrade_status(&node.ws_url(), None).await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "slot not freed after a close"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Many upgrades at once against a cap of 5: exactly 5 get through, the
/// rest get 503. (The slot is reserved before the upgrade; the race this
/// closes is narrow and did not show over loopback with the old open-count
/// check, so `server::tests` holds the counter itself to the cap.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upgrades_never_exceed_the_cap() {
    let node = Gateway::start(GatewayOpts::default().arg("--max-connections").arg("5")).await;
    let url = node.ws_url();
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { tokio_tungstenite::connect_async(url).await })
        })
        .collect();
    let mut open = Vec::new();
    let mut refused = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok((ws, _)) => open.push(ws),
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503);
                refused += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(
        open.len(),
        5,
        "{} upgrades accepted over a cap of 5",
        open.len()
    );
    assert_eq!(refused, 35);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_outside_the_allow_list_get_403() {
    let node = Gateway::start(
        GatewayOpts::default()
            .arg("--allowed-origins")
            .arg("https://chat.example,https://b.example"),
    )
    .await;
    assert_eq!(
        upgrade_status(&node.ws_url(), Some("https://evil.example")).await,
        Some(403)
    );
    assert_eq!(
        upgrade_status(&node.ws_url(), Some("https://chat.example")).await,
        None
    );
    assert_eq!(
        upgrade_status(&node.ws_url(), Some("https://b.example")).await,
        None
    );
    // Non-browser clients send no Origin.
    assert_eq!(upgrade_status(&node.ws_url(), None).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_or_huge_json_is_bad_request() {
    let node = Gateway::start(GatewayOpts::default()).await;
    let mut c = WsClient::connect(&node.ws_url()).await;
    c.login("ann").await;
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "x": deep });
    }
    c.request(
        "get_data",
        json!({"type": "users", "id": "u", "extra": deep}),
    )
    .await
    .err("bad_request");
    let wide: Vec<u32> = (0..5000).collect();
    c.request(
        "get_data",
        json!({"type": "users", "id": "u", "extra": wide}),
    )
    .await
    .err("bad_request");
    c.request("get_data", json!({"type": "users", "id": c.id()}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_get_rate_limited() {
    let node = Gateway::start(
        GatewayOpts::default()
            .arg("--rate-limit-per-s")
            .arg("5")
            .arg("--rate-limit-burst")
            .arg("5"),
    )
    .await;
    let mut c = WsClient::connect(&node.ws_url()).await;
    c.login("ann").await;
    let mut limited = 0;
    for _ in 0..12 {
        let r = c
            .request("get_data", json!({"type": "users", "id": c.id()}))
            .await;
        if r.code() == Some("rate_limited") {
            limited += 1;
        }
    }
    assert!(limited >= 5, "only {limited} of 12 requests were limited");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    c.request("get_data", json!({"type": "users", "id": c.id()}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_linger_holds_frames_for_the_window() {
    let node = Gateway::start(GatewayOpts::default().arg("--write-linger-us").arg("80000")).await;
    let mut a = WsClient::connect(&node.ws_url()).await;
    let mut b = WsClient::connect(&node.ws_url()).await;
    a.login("ann").await;
    b.login("bob").await;
    a.request(
        "connect_lobby",
        json!({"lobby": {"id": "linger", "visibility": true}}),
    )
    .await
    .ok();
    b.request("connect_lobby", json!({"lobby": {"id": "linger"}}))
        .await
        .ok();
    a.drain().await;
    let sent = std::time::Instant::now();
    a.request("typing_message", json!({"lobby": {"id": "linger"}}))
        .await
        .ok();
    b.expect_event("typing_message").await;
    let waited = sent.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(60),
        "delivered after {waited:?}, before the linger"
    );
}
