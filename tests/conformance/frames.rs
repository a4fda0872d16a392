//! Framing: unparseable frames, acks, reply order, size limit, rate limit,
//! unknown events and the login gate.

use crate::common::*;

engine_tests!(
    non_json_frames,
    non_object_frames,
    missing_or_ill_typed_event,
    binary_frame_is_never_parsed,
    invalid_ack_is_bad_request_without_ack,
    ack_bounds_are_echoed,
    data_not_an_object,
    unknown_event_before_login,
    unknown_event_after_login,
    every_event_requires_login,
    replies_come_in_request_order,
    frame_of_exactly_max_bytes_is_accepted,
    frame_over_max_bytes_closes_with_1009,
    rate_limit_rejects_excess_requests,
    malformed_frames_disturb_nobody,
    client_ping_gets_pong,
);

/// The error for a frame that could not be parsed: bad_request, event null, no ack.
async fn expect_unparseable_error(c: &mut WsClient, sent: &str) {
    let f = c.expect_frame("error").await;
    assert!(
        f.get("ack").is_none(),
        "error for unparseable frame {sent:?} must carry no ack: {f}"
    );
    assert_eq!(f["data"]["code"], "bad_request", "frame {sent:?} got {f}");
    assert!(
        f["data"]["event"].is_null(),
        "frame {sent:?}: error.event must be null: {f}"
    );
    assert!(
        f["data"]["message"].is_string(),
        "error without message: {f}"
    );
}

/// The connection is alive, not logged in, and nothing was changed.
async fn assert_still_anonymous(c: &mut WsClient) {
    c.request("logout", json!({})).await.err("unauthenticated");
}

async fn non_json_frames(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    for text in [
        "not json",
        "{",
        "",
        "{\"event\":\"login\"",
        "{'event':'login'}",
        "\u{feff}{}",
    ] {
        c.send_raw(text).await;
        expect_unparseable_error(&mut c, text).await;
    }
    assert_still_anonymous(&mut c).await;
    c.login("ann").await;
    for text in ["garbage", "{\"event\":"] {
        c.send_raw(text).await;
        expect_unparseable_error(&mut c, text).await;
    }
    // Still logged in and working.
    let me = c.id().to_string();
    c.request("get_data", json!({"type": "users", "id": me}))
        .await
        .ok();
}

async fn non_object_frames(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    for text in [
        "[1,2]",
        "[{\"event\":\"login\"}]",
        "\"login\"",
        "42",
        "null",
        "true",
    ] {
        c.send_raw(text).await;
        expect_unparseable_error(&mut c, text).await;
    }
    assert_still_anonymous(&mut c).await;
}

async fn missing_or_ill_typed_event(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    for text in [
        "{}",
        "{\"data\":{}}",
        "{\"event\":5,\"data\":{}}",
        "{\"event\":null}",
        "{\"event\":[\"login\"]}",
        "{\"event\":{\"name\":\"login\"}}",
    ] {
        c.send_raw(text).await;
        expect_unparseable_error(&mut c, text).await;
    }
    assert_still_anonymous(&mut c).await;
}

async fn binary_frame_is_never_parsed(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    // A perfectly valid login request, but binary: must not log in.
    c.send_binary(br#"{"event":"login","data":{"username":"bin"},"ack":1}"#)
        .await;
    expect_unparseable_error(&mut c, "<binary login>").await;
    c.send_binary(&[0xff, 0x00, 0x13]).await;
    expect_unparseable_error(&mut c, "<binary garbage>").await;
    assert_still_anonymous(&mut c).await;
    c.login("ann").await;
    c.send_binary(b"{}").await;
    expect_unparseable_error(&mut c, "<binary after login>").await;
}

async fn invalid_ack_is_bad_request_without_ack(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    for ack in [
        "-1",
        "1.5",
        "\"7\"",
        "9007199254740992",
        "18446744073709551616",
        "true",
        "[1]",
        "{}",
    ] {
        let text = format!(r#"{{"event":"login","data":{{"username":"x"}},"ack":{ack}}}"#);
        c.send_raw(&text).await;
        let f = c.expect_frame("error").await;
        assert!(
            f.get("ack").is_none(),
            "ack {ack}: the error must not carry an ack: {f}"
        );
        assert_eq!(f["data"]["code"], "bad_request", "ack {ack}: {f}");
    }
    // None of those logins happened.
    assert_still_anonymous(&mut c).await;
}

async fn ack_bounds_are_echoed(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    c.send_raw(r#"{"event":"login","data":{"username":"edge"},"ack":0}"#)
        .await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["ack"], json!(0), "{f}");
    assert_eq!(f["event"], "login", "{f}");
    let me = f["data"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    let max = 9_007_199_254_740_991u64; // 2^53 - 1
    c.send_raw(
        &json!({"event": "get_data", "data": {"type": "users", "id": me}, "ack": max}).to_string(),
    )
    .await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["ack"], json!(max), "{f}");
    assert_eq!(f["event"], "get_data", "{f}");
    // An error reply carries the ack too.
    c.send_raw(
        &json!({"event": "get_data", "data": {"type": "nope", "id": me}, "ack": max}).to_string(),
    )
    .await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["ack"], json!(max), "{f}");
    assert_eq!(f["data"]["code"], "bad_request", "{f}");
    assert_eq!(f["data"]["event"], "get_data", "{f}");
    // A request without ack gets a reply without ack.
    c.send_raw(r#"{"event":"no_such_event","data":{}}"#).await;
    let f = c.expect_frame("error").await;
    assert!(f.get("ack").is_none(), "{f}");
    assert_eq!(f["data"]["code"], "unknown_event", "{f}");
    assert_eq!(f["data"]["event"], "no_such_event", "{f}");
}

async fn data_not_an_object(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    for data in ["[1]", "\"x\"", "5", "true"] {
        let text = format!(r#"{{"event":"login","data":{data},"ack":3}}"#);
        c.send_raw(&text).await;
        let f = c.next_reply_frame().await;
        assert_eq!(f["ack"], json!(3), "data {data}: {f}");
        assert_eq!(f["data"]["code"], "bad_request", "data {data}: {f}");
    }
    assert_still_anonymous(&mut c).await;
    // Absent data means {}: a new anonymous user.
    c.send_raw(r#"{"event":"login","ack":4}"#).await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["event"], "login", "login without data: {f}");
    let me = f["data"]["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    c.send_raw(r#"{"event":"get_data","data":[{"type":"users"}],"ack":5}"#)
        .await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["ack"], json!(5), "{f}");
    assert_eq!(f["data"]["code"], "bad_request", "{f}");
    c.request("get_data", json!({"type": "users", "id": me}))
        .await
        .ok();
}

async fn unknown_event_before_login(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    c.request("no_such_event", json!({}))
        .await
        .err("unauthenticated");
    c.request("LOGIN", json!({})).await.err("unauthenticated");
}

async fn unknown_event_after_login(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.user("ann").await;
    c.request("no_such_event", json!({"x": 1}))
        .await
        .err("unknown_event");
    c.request("LOGIN", json!({})).await.err("unknown_event");
    c.request("error", json!({})).await.err("unknown_event");
}

async fn every_event_requires_login(engine: Engine) {
    let t = env(engine).await;
    let mut owner = t.user("owner").await;
    let (lobby, _) = new_lobby(&mut owner, true).await;
    let msg = send(&mut owner, &lobby, "hi").await;
    let mid = sid(&msg);
    let uid = owner.id().to_string();
    let mut c = t.client().await;
    let requests = [
        ("logout", json!({})),
        ("connect_lobby", json!({"lobby": {"id": lobby}})),
        ("connect_lobby", json!({"lobby": {}})),
        ("disconnect_lobby", json!({"lobby": {"id": lobby}})),
        (
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "x"}),
        ),
        (
            "received_message",
            json!({"lobby": {"id": lobby}, "message": {"id": mid}}),
        ),
        (
            "viewed_message",
            json!({"lobby": {"id": lobby}, "message": {"id": mid}}),
        ),
        ("typing_message", json!({"lobby": {"id": lobby}})),
        ("get_data", json!({"type": "lobbys", "id": lobby})),
        ("get_all_data", json!({"type": "users"})),
        (
            "update_data",
            json!({"type": "lobbys", "id": lobby, "data": {"description": "x"}}),
        ),
        (
            "use_action",
            json!({"type": "users", "id": uid, "action": "setVisibility", "actionArgs": [true]}),
        ),
    ];
    for (event, data) in requests {
        c.request(event, data).await.err("unauthenticated");
    }
    // Nothing happened: the owner saw no broadcast and the lobby is unchanged.
    owner.expect_no_event("connect_lobby", QUIET).await;
    let l = owner
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(l["data"]["data"]["userCount"], json!(1), "{l}");
}

async fn replies_come_in_request_order(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.user("ann").await;
    let me = c.id().to_string();
    let (lobby, _) = new_lobby(&mut c, false).await;
    let mut acks = Vec::new();
    for i in 0..40 {
        let (event, data) = match i % 8 {
            0 => (
                "send_message",
                json!({"lobby": {"id": lobby}, "content": format!("m{i}")}),
            ),
            1 => ("get_data", json!({"type": "users", "id": me})),
            2 => ("get_data", json!({"type": "lobbys", "id": "missing"})),
            3 => ("typing_message", json!({"lobby": {"id": lobby}})),
            4 => ("no_such_event", json!({})),
            5 => (
                "get_all_data",
                json!({"type": "messages", "lobby": {"id": lobby}}),
            ),
            6 => (
                "send_message",
                json!({"lobby": {"id": lobby}, "content": ""}),
            ),
            _ => ("connect_lobby", json!({"lobby": {"id": lobby}})),
        };
        acks.push((c.send_request(event, data).await, event));
    }
    let mut seqs = Vec::new();
    for (ack, event) in acks {
        let f = c.next_reply_frame().await;
        assert_eq!(
            f["ack"],
            json!(ack),
            "replies out of order: expected ack {ack} ({event}), got {f}"
        );
        if event == "send_message" && f["event"] == "send_message" {
            seqs.push(f["data"]["message"]["data"]["seq"].as_u64().expect("seq"));
        }
    }
    assert_eq!(
        seqs,
        (1..=5).collect::<Vec<u64>>(),
        "seq of pipelined sends"
    );
}

/// A request of exactly `len` bytes: valid JSON padded with whitespace.
fn padded_request(me: &str, ack: u64, len: usize) -> String {
    let head = format!(r#"{{"event":"get_data","data":{{"type":"users","id":"{me}"}},"ack":{ack}"#);
    let pad = len - head.len() - 1;
    let s = format!("{head}{}}}", " ".repeat(pad));
    assert_eq!(s.len(), len);
    s
}

async fn frame_of_exactly_max_bytes_is_accepted(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.user("ann").await;
    let me = c.id().to_string();
    c.send_raw(&padded_request(&me, 77, 65536)).await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["ack"], json!(77), "{f}");
    assert_eq!(
        f["event"], "get_data",
        "a 65536-byte frame must be processed: {f}"
    );
    // A 65536-byte send_message whose content is too large: an error, not a close.
    let (lobby, _) = new_lobby(&mut c, false).await;
    let head = format!(
        r#"{{"event":"send_message","ack":78,"data":{{"lobby":{{"id":"{lobby}"}},"content":""#
    );
    let tail = "\"}}";
    let content = "a".repeat(65536 - head.len() - tail.len());
    let text = format!("{head}{content}{tail}");
    assert_eq!(text.len(), 65536);
    c.send_raw(&text).await;
    let f = c.next_reply_frame().await;
    assert_eq!(f["ack"], json!(78), "{f}");
    assert_eq!(f["data"]["code"], "payload_too_large", "{f}");
    // The connection is still open and usable; the failed send used no seq.
    let m = send(&mut c, &lobby, "after").await;
    assert_eq!(m["data"]["seq"], json!(1), "{m}");
    assert!(!c.is_closed());
}

async fn frame_over_max_bytes_closes_with_1009(engine: Engine) {
    let t = env(engine).await;
    let mut other = t.user("other").await;
    let mut c = t.user("ann").await;
    let me = c.id().to_string();
    // The send may race with the server's close; the close code is what counts.
    let _ = c.try_send_raw(&padded_request(&me, 1, 65537)).await;
    let code = c.expect_closed().await;
    assert_eq!(
        code,
        Some(1009),
        "a 65537-byte frame must close the connection with 1009"
    );
    // Nobody else is disturbed.
    let oid = other.id().to_string();
    other
        .request("get_data", json!({"type": "users", "id": oid}))
        .await
        .ok();
    for node in &t.nodes {
        assert_eq!(node.healthz().await, Some(200));
    }
}

async fn rate_limit_rejects_excess_requests(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.user("ann").await;
    let me = c.id().to_string();
    let mut acks = Vec::new();
    for _ in 0..400 {
        acks.push(
            c.send_request("get_data", json!({"type": "users", "id": me}))
                .await,
        );
    }
    let (mut ok, mut limited) = (0, 0);
    for ack in acks {
        let f = c.next_reply_frame().await;
        assert_eq!(f["ack"], json!(ack), "replies out of order: {f}");
        if f["event"] == "get_data" {
            ok += 1;
        } else {
            assert_eq!(f["data"]["code"], "rate_limited", "{f}");
            assert_eq!(f["data"]["event"], "get_data", "{f}");
            limited += 1;
        }
    }
    assert!(
        ok >= 199,
        "the burst of 200 (minus the login) must be served, got {ok} ok / {limited} limited"
    );
    assert!(
        limited >= 1,
        "400 back-to-back requests must hit the rate limit ({ok} ok)"
    );
    assert!(
        !c.is_closed(),
        "rate limiting must not close the connection"
    );
}

async fn malformed_frames_disturb_nobody(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b, &lobby).await;
    a.expect_event("connect_lobby").await;
    let deep = format!("{}{}", "[".repeat(30000), "]".repeat(30000));
    let deep_obj = format!(
        r#"{{"event":"login","data":{{"username":{}1{}}}}}"#,
        "[".repeat(20000),
        "]".repeat(20000)
    );
    // No acks here: whether these parse at all is the server's business,
    // either way the answer is an ack-less bad_request.
    let huge_num = format!(
        r#"{{"event":"get_data","data":{{"type":"users","id":1{}}}}}"#,
        "0".repeat(5000)
    );
    for text in [deep.as_str(), deep_obj.as_str(), huge_num.as_str()] {
        b.send_raw(text).await;
        let f = b.expect_frame("error").await;
        assert_eq!(f["data"]["code"], "bad_request", "{f}");
    }
    for text in [
        r#"{"event":"send_message","data":{"lobby":{"id":null},"content":null},"ack":10}"#,
        r#"{"event":"send_message","data":{"lobby":"x","content":["a"]},"ack":11}"#,
        r#"{"event":"get_all_data","data":{"type":"messages","lobby":{"id":{"$gt":""}}},"ack":12}"#,
        r#"{"event":"use_action","data":{"type":"lobbys","id":[],"action":{},"actionArgs":"x"},"ack":13}"#,
        r#"{"event":"update_data","data":{"type":"users","id":"x","data":[]},"ack":14}"#,
    ] {
        b.send_raw(text).await;
        let f = b.next_reply_frame().await;
        assert_eq!(f["event"], "error", "{text}: {f}");
    }
    // Both connections still work and see each other.
    let m = send(&mut b, &lobby, "still here").await;
    let got = a.expect_event("send_message").await;
    assert_eq!(got["message"]["id"], m["id"]);
    for node in &t.nodes {
        assert_eq!(node.healthz().await, Some(200));
    }
}

async fn client_ping_gets_pong(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    c.ping(b"before-login").await;
    c.login("ann").await;
    c.ping(b"after-login").await;
    c.ping(b"").await;
    let me = c.id().to_string();
    c.request("get_data", json!({"type": "users", "id": me}))
        .await
        .ok();
}
