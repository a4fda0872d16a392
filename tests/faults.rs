//! Faults injected for real: Redis pub/sub connections killed under
//! traffic, Redis stopped. Members must receive every acknowledged message
//! exactly once, in seq order, without reconnecting.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Engine, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one command to Redis over RESP and returns the raw reply.
async fn redis_command(port: u16, args: &[&str]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect redis");
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Collects `send_message` seqs until `n` arrived or the deadline passed.
async fn collect_seqs(c: &mut support::WsClient, n: usize, limit: Duration) -> Vec<u64> {
    let deadline = Instant::now() + limit;
    let mut seqs = Vec::new();
    while seqs.len() < n && Instant::now() < deadline {
        if let Some(ev) = c
            .try_expect_event_within(
                "send_message",
                deadline.saturating_duration_since(Instant::now()),
            )
            .await
        {
            seqs.push(ev["message"]["data"]["seq"].as_u64().expect("seq"));
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_kills_lose_no_message() {
    let env = TestEnv::new(Engine::Redis, 2).await;
    let port = env.redis.as_ref().unwrap().port();
    let mut sender = env.user_on(0, "sender").await;
    let mut near = env.user_on(0, "near").await;
    let mut far = env.user_on(1, "far").await;
    let lobby = format!("faults-{}", support::unique());
    for c in [&mut sender, &mut near, &mut far] {
        c.request(
            "connect_lobby",
            json!({"lobby": {"id": lobby, "visibility": true}}),
        )
        .await
        .ok();
    }
    const N: usize = 120;
    let mut acked = Vec::new();
    for i in 0..N {
        if i % 30 == 10 {
            let reply = redis_command(port, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
            assert!(reply.starts_with(':'), "CLIENT KILL answered {reply}");
        }
        let r = sender
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": format!("m{i}")}),
            )
            .await
            .ok();
        acked.push(r["message"]["data"]["seq"].as_u64().unwrap());
    }
    // A last break with no message after it: only the reconnect catch-up
    // can deliver what was published meanwhile.
    redis_command(port, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    for i in 0..5 {
        let r = sender
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": format!("tail{i}")}),
            )
            .await
            .ok();
        acked.push(r["message"]["data"]["seq"].as_u64().unwrap());
    }
    let want: Vec<u64> = (1..=(N as u64 + 5)).collect();
    assert_eq!(acked, want, "acked seqs are gapless");
    for (name, c) in [("near", &mut near), ("far", &mut far)] {
        let got = collect_seqs(c, want.len(), Duration::from_secs(15)).await;
        assert_eq!(got, want, "{name} got every message once, in order");
        c.expect_no_event("send_message", Duration::from_millis(300))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_answers_unavailable_fast_and_keeps_connections() {
    let mut env = TestEnv::new(Engine::Redis, 1).await;
    let mut c = env.user_on(0, "ann").await;
    let lobby = format!("down-{}", support::unique());
    c.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    env.redis.as_mut().unwrap().stop();
    let started = Instant::now();
    c.request_within(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x"}),
        Duration::from_secs(5),
    )
    .await
    .err("unavailable");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "answered in {:?}",
        started.elapsed()
    );
    assert!(!c.is_closed());
    assert_eq!(
        support::http_status(env.nodes[0].port(), "/readyz").await,
        Some(503)
    );
    assert_eq!(
        support::http_status(env.nodes[0].port(), "/healthz").await,
        Some(200)
    );
}
