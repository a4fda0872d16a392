//! The chat page: served at `/` by default with the memory engine, off by
//! default with Redis, switchable either way.

mod support;

use support::{Gateway, GatewayOpts, RedisServer};

async fn get(port: u16, path: &str) -> (u16, String) {
    let out = support::http_get(port, path).await;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_engine_serves_the_page_and_its_assets() {
    let node = Gateway::start(GatewayOpts::default()).await;
    let (status, body) = get(node.port(), "/").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("text/html") && body.contains("<title>lobbyd chat</title>"),
        "{body}"
    );
    assert!(body.contains("app.js"));
    let (status, body) = get(node.port(), "/app.js").await;
    assert_eq!(status, 200);
    assert!(body.contains("text/javascript"));
    assert_eq!(get(node.port(), "/app.css").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_engine_serves_the_page_only_when_switched_on() {
    let redis = RedisServer::start().await;
    let off = Gateway::start(GatewayOpts::redis(redis.url())).await;
    assert_eq!(get(off.port(), "/").await.0, 404);
    let on = Gateway::start(
        GatewayOpts::redis(redis.url())
            .arg("--serve-page")
            .arg("true"),
    )
    .await;
    assert_eq!(get(on.port(), "/").await.0, 200);
    let mem_off = Gateway::start(GatewayOpts::default().arg("--serve-page").arg("false")).await;
    assert_eq!(get(mem_off.port(), "/").await.0, 404);
}
