//! Application events: a gateway embedded in process with a registered
//! handler answers it; unregistered names stay `unknown_event`; the
//! handler sees the authenticated user and can refuse with a protocol
//! error.

mod support;

use lobbyd::config::Config;
use lobbyd::protocol::{ErrorCode, ProtocolError};
use lobbyd::Gateway;
use serde_json::json;
use support::WsClient;

async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = Gateway::new(Config::default()).on_event("echo_user", |ctx, data| async move {
        if data.get("fail").is_some() {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "the application said no",
            ));
        }
        Ok(json!({ "user": ctx.user, "event": ctx.event, "got": data }))
    });
    tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));
    (format!("ws://{addr}/ws"), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_handler_answers_with_the_caller() {
    let (url, _stop) = start().await;
    let mut c = WsClient::connect(&url).await;
    c.request("echo_user", json!({"x": 1}))
        .await
        .err("unauthenticated");
    c.login("ann").await;
    let id = c.id().to_owned();
    let r = c.request("echo_user", json!({"x": 1})).await.ok();
    assert_eq!(r["user"], json!(id));
    assert_eq!(r["event"], json!("echo_user"));
    assert_eq!(r["got"], json!({"x": 1}));
    c.request("echo_user", json!({"fail": true}))
        .await
        .err("forbidden");
    c.request("not_registered", json!({}))
        .await
        .err("unknown_event");
}
