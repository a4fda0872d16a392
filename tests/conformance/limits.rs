//! Configurable limits (small values via flags): ping timeout, frame and
//! content size, request rate; and a join race against `sizeLimit`.

use crate::common::*;

engine_tests!(
    unresponsive_connection_is_closed_by_ping_timeout,
    configured_frame_and_content_limits,
    configured_rate_limit,
    concurrent_joins_never_exceed_size_limit,
);

async fn env_with(engine: Engine, args: &[&str]) -> TestEnv {
    let mut opts = GatewayOpts::default();
    for a in args {
        opts = opts.arg(*a);
    }
    TestEnv::with_opts(engine, 2, opts).await
}

async fn unresponsive_connection_is_closed_by_ping_timeout(engine: Engine) {
    let t = env_with(
        engine,
        &["--ping-interval-ms", "200", "--ping-timeout-ms", "300"],
    )
    .await;
    let mut a = t.user("ann").await;
    let mut c = t.user("cid").await; // will stop reading, so never answers pings
    let cid = c.id().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut c, &lobby).await;
    a.expect_event("connect_lobby").await;
    // Ann keeps reading (tungstenite answers pings while reading); Cid does not.
    let ev = a.expect_event("disconnect").await;
    assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
    c.expect_closed().await;
    // Ann, who answered every ping, is still connected well past the timeout.
    let aid = a.id().to_string();
    let g = a
        .request("get_data", json!({"type": "users", "id": aid}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "private");
    assert!(!a.is_closed());
}

async fn configured_frame_and_content_limits(engine: Engine) {
    let t = env_with(
        engine,
        &["--max-frame-bytes", "1024", "--max-content-bytes", "16"],
    )
    .await;
    let mut a = t.user("ann").await;
    let (lobby, _) = new_lobby(&mut a, false).await;
    let m = send(&mut a, &lobby, &"x".repeat(16)).await;
    assert_eq!(m["data"]["seq"], json!(1), "{m}");
    a.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x".repeat(17)}),
    )
    .await
    .err("payload_too_large");
    a.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "é".repeat(9)}),
    )
    .await
    .err("payload_too_large");
    // Exactly max_frame_bytes is fine, one more closes with 1009.
    let head = r#"{"event":"typing_message","data":{"lobby":{"id":""#.to_string()
        + &lobby
        + r#""}},"ack":99"#;
    let exact = format!("{head}{}}}", " ".repeat(1024 - head.len() - 1));
    assert_eq!(exact.len(), 1024);
    a.send_raw(&exact).await;
    let f = a.next_reply_frame().await;
    assert_eq!(f["ack"], json!(99), "{f}");
    assert_eq!(f["event"], "typing_message", "{f}");
    let over = format!("{head}{}}}", " ".repeat(1025 - head.len() - 1));
    let _ = a.try_send_raw(&over).await;
    assert_eq!(a.expect_closed().await, Some(1009));
}

async fn configured_rate_limit(engine: Engine) {
    let t = env_with(
        engine,
        &["--rate-limit-per-s", "2", "--rate-limit-burst", "3"],
    )
    .await;
    let mut c = t.client().await;
    c.login("ann").await; // 1 of the burst
    let me = c.id().to_string();
    let q = json!({"type": "users", "id": me});
    let mut acks = Vec::new();
    for _ in 0..6 {
        acks.push(c.send_request("get_data", q.clone()).await);
    }
    let mut codes = Vec::new();
    for ack in acks {
        let r = c.wait_reply(ack, "get_data").await;
        codes.push(r.code().unwrap_or("ok").to_string());
    }
    assert_eq!(
        &codes[..2],
        ["ok", "ok"],
        "burst of 3 minus the login: {codes:?}"
    );
    assert!(
        codes[2..].iter().all(|c| c == "rate_limited" || c == "ok"),
        "{codes:?}"
    );
    assert!(
        codes[2..].iter().filter(|c| *c == "rate_limited").count() >= 3,
        "at 2/s, at most one token can have come back meanwhile: {codes:?}"
    );
    // Tokens come back: poll until served (well within 3 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let r = c.request("get_data", q.clone()).await;
        if r.is_ok() {
            break;
        }
        r.err("rate_limited");
        assert!(
            tokio::time::Instant::now() < deadline,
            "rate limit never refills"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!c.is_closed());
}

async fn concurrent_joins_never_exceed_size_limit(engine: Engine) {
    let t = env(engine).await;
    let mut owner = t.user("owner").await;
    let l = create_lobby(&mut owner, json!({"visibility": true, "sizeLimit": 4})).await;
    let lobby = sid(&l);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let c = t.user(&format!("u{i}")).await;
        let lobby = lobby.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = c;
            let r = c
                .request("connect_lobby", json!({"lobby": {"id": lobby}}))
                .await;
            (r, c)
        }));
    }
    let (mut ok, mut full) = (0, 0);
    for task in tasks {
        let (r, _c) = task.await.expect("task");
        if r.is_ok() {
            ok += 1;
        } else {
            r.err("lobby_full");
            full += 1;
        }
    }
    assert_eq!(
        (ok, full),
        (3, 7),
        "owner + 3 joiners fill a sizeLimit of 4"
    );
    let g = owner
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["userCount"], json!(4), "{g}");
    let mut joined = 0;
    while owner
        .try_expect_event_within("connect_lobby", Duration::from_millis(500))
        .await
        .is_some()
    {
        joined += 1;
    }
    assert_eq!(joined, 3, "one connect_lobby broadcast per successful join");
}
