//! send_message, received_message / viewed_message, typing_message.

use crate::common::*;

engine_tests!(
    send_message_reply_and_broadcast_levels,
    seq_counts_per_lobby_without_gaps,
    content_limits_in_bytes,
    send_message_access,
    replied_must_name_a_message_of_the_lobby,
    received_and_viewed_broadcast_first_time_only,
    viewed_implies_received,
    receipt_errors,
    typing_message_broadcasts_every_time,
    typing_message_errors,
    concurrent_first_receipts_broadcast_once,
);

/// Ann (two connections) owns a private lobby that Bob joined with its token.
struct Room {
    a1: WsClient,
    a2: WsClient,
    b: WsClient,
    lobby: String,
}

async fn room(t: &TestEnv) -> Room {
    let mut a1 = t.user("ann").await;
    let mut a2 = t.same_user(&a1).await;
    let mut b = t.user("bob").await;
    let (lobby, token) = new_lobby(&mut a1, false).await;
    join_with_token(&mut b, &lobby, &token).await;
    let bid = b.id().to_string();
    // Ann's other connection may first hear of Ann's own join (checked in
    // lobby::connect_lobby_broadcast_targets); here we only wait for Bob's.
    loop {
        let ev = a2.expect_event("connect_lobby").await;
        if ev["user"]["id"] == json!(bid) {
            break;
        }
    }
    let ev = a1.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    Room { a1, a2, b, lobby }
}

async fn send_message_reply_and_broadcast_levels(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        mut a2,
        mut b,
        lobby,
    } = room(&t).await;
    let aid = a1.id().to_string();
    let m = send(&mut a1, &lobby, "hello").await;
    assert_eq!(m["type"], "messages", "{m}");
    let mid = sid(&m);
    assert!(is_uuid(&mid), "message id must be a UUID: {m}");
    assert_eq!(m["level"], "private", "the author's view: {m}");
    assert_eq!(m["owner"]["id"], json!(aid), "{m}");
    assert_eq!(m["owner"]["username"], "ann", "{m}");
    assert_eq!(m["visibility"], json!(false), "{m}");
    assert!(
        m["createdAt"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{m}"
    );
    let d = &m["data"];
    assert_eq!(d["lobby"]["id"], json!(lobby), "{m}");
    assert_eq!(d["content"], "hello", "{m}");
    assert_eq!(d["seq"], json!(1), "{m}");
    assert_eq!(d["received"], json!([]), "{m}");
    assert_eq!(d["viewed"], json!([]), "{m}");
    assert!(absent_or_null(d, "replied"), "{m}");
    assert!(d["updatedAt"].as_u64().is_some(), "{m}");
    assert_perms(&m, &["update"]);

    // Other members: partial, no permissions.
    let ev = b.expect_event("send_message").await;
    let bm = &ev["message"];
    assert_eq!(bm["id"], json!(mid), "{ev}");
    assert_eq!(bm["level"], "partial", "{ev}");
    assert_eq!(bm["owner"]["id"], json!(aid), "{ev}");
    assert_eq!(bm["owner"]["username"], "ann", "{ev}");
    assert_eq!(bm["data"]["content"], "hello", "{ev}");
    assert_eq!(bm["data"]["seq"], json!(1), "{ev}");
    assert_eq!(bm["data"]["lobby"]["id"], json!(lobby), "{ev}");
    assert_perms(bm, &[]);
    // The author's other connection: private, ["update"].
    let ev = a2.expect_event("send_message").await;
    assert_eq!(ev["message"]["id"], json!(mid), "{ev}");
    assert_eq!(ev["message"]["level"], "private", "{ev}");
    assert_perms(&ev["message"], &["update"]);
    // Not to the requesting connection.
    b.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    a1.expect_event_without("typing_message", "send_message")
        .await;
}

async fn seq_counts_per_lobby_without_gaps(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        a2: _,
        mut b,
        lobby,
    } = room(&t).await;
    let (other, _) = new_lobby(&mut a1, false).await;
    for expected in 1..=3 {
        let m = send(&mut a1, &lobby, &format!("m{expected}")).await;
        assert_eq!(m["data"]["seq"], json!(expected), "{m}");
    }
    // Failed sends use no seq.
    b.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": ""}),
    )
    .await
    .err("bad_request");
    b.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x".repeat(16385)}),
    )
    .await
    .err("payload_too_large");
    let m = send(&mut b, &lobby, "m4").await;
    assert_eq!(m["data"]["seq"], json!(4), "{m}");
    let m = send(&mut a1, &other, "first elsewhere").await;
    assert_eq!(m["data"]["seq"], json!(1), "seq counts per lobby: {m}");
    let m = send(&mut a1, &lobby, "m5").await;
    assert_eq!(m["data"]["seq"], json!(5), "{m}");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let ev = b.expect_event("send_message").await;
        seen.push(ev["message"]["data"]["seq"].as_u64().unwrap());
    }
    assert_eq!(
        seen,
        vec![1, 2, 3, 5],
        "Bob sees Ann's messages in seq order"
    );
}

async fn content_limits_in_bytes(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        a2: _,
        b: _,
        lobby,
    } = room(&t).await;
    let ok = [
        "a".to_string(),
        "a".repeat(16384),
        format!("{}a", "€".repeat(5461)), // 16383 + 1 bytes
    ];
    let mut seq = 0;
    for content in ok {
        seq += 1;
        let m = send(&mut a1, &lobby, &content).await;
        assert_eq!(m["data"]["seq"], json!(seq));
        assert_eq!(
            m["data"]["content"].as_str().map(str::len),
            Some(content.len())
        );
    }
    for content in [
        "a".repeat(16385),
        "€".repeat(5462), /* 16386 bytes, 5462 chars */
    ] {
        a1.request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": content}),
        )
        .await
        .err("payload_too_large");
    }
    let bad = [
        json!({"lobby": {"id": lobby}, "content": ""}),
        json!({"lobby": {"id": lobby}}),
        json!({"lobby": {"id": lobby}, "content": 5}),
        json!({"lobby": {"id": lobby}, "content": null}),
        json!({"lobby": {"id": lobby}, "content": ["hi"]}),
        json!({"content": "hi"}),
        json!({"lobby": lobby, "content": "hi"}),
        json!({"lobby": {"id": ""}, "content": "hi"}),
        json!({"lobby": {"id": lobby}, "content": "hi", "replied": 5}),
    ];
    for data in bad {
        a1.request("send_message", data).await.err("bad_request");
    }
    let m = send(&mut a1, &lobby, "after the failures").await;
    assert_eq!(
        m["data"]["seq"],
        json!(seq + 1),
        "failed sends use no seq: {m}"
    );
}

async fn send_message_access(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut c = t.user("cid").await;
    let (visible, _) = new_lobby(&mut a, true).await;
    let (hidden, hidden_token) = new_lobby(&mut a, false).await;
    c.request(
        "send_message",
        json!({"lobby": {"id": visible}, "content": "x"}),
    )
    .await
    .err("forbidden");
    c.request(
        "send_message",
        json!({"lobby": {"id": hidden}, "content": "x"}),
    )
    .await
    .err("not_found");
    c.request(
        "send_message",
        json!({"lobby": {"id": "nowhere"}, "content": "x"}),
    )
    .await
    .err("not_found");
    // Validation before access: an empty content is bad_request even for a stranger.
    c.request(
        "send_message",
        json!({"lobby": {"id": hidden}, "content": ""}),
    )
    .await
    .err("bad_request");
    // A token holder who is not a member can see the lobby but not send.
    let l = c
        .request(
            "get_data",
            json!({"type": "lobbys", "id": hidden, "token": hidden_token}),
        )
        .await
        .ok();
    assert_eq!(l["data"]["level"], "private", "{l}");
    a.expect_no_event("send_message", QUIET).await;
    let m = send(&mut a, &visible, "first").await;
    assert_eq!(
        m["data"]["seq"],
        json!(1),
        "the failed sends used no seq: {m}"
    );
}

async fn replied_must_name_a_message_of_the_lobby(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        a2: _,
        mut b,
        lobby,
    } = room(&t).await;
    let (other, _) = new_lobby(&mut a1, false).await;
    let m1 = send(&mut a1, &lobby, "question").await;
    let elsewhere = send(&mut a1, &other, "elsewhere").await;
    let d = b
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "answer", "replied": sid(&m1)}),
        )
        .await
        .ok();
    assert_eq!(
        replied_id(&d["message"]["data"]["replied"]),
        Some(sid(&m1)),
        "{d}"
    );
    assert_eq!(d["message"]["data"]["seq"], json!(2), "{d}");
    let ev = a1.expect_event("send_message").await;
    assert_eq!(
        replied_id(&ev["message"]["data"]["replied"]),
        Some(sid(&m1)),
        "{ev}"
    );
    b.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x", "replied": unknown_uuid()}),
    )
    .await
    .err("not_found");
    b.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x", "replied": "not-a-message"}),
    )
    .await
    .err("not_found");
    b.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x", "replied": sid(&elsewhere)}),
    )
    .await
    .err("not_found");
    let m = send(&mut a1, &lobby, "next").await;
    assert_eq!(m["data"]["seq"], json!(3), "{m}");
}

async fn received_and_viewed_broadcast_first_time_only(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        mut a2,
        mut b,
        lobby,
    } = room(&t).await;
    let bid = b.id().to_string();
    let m = send(&mut a1, &lobby, "read me").await;
    let mid = sid(&m);
    b.expect_event("send_message").await;
    a2.expect_event("send_message").await;
    let req = json!({"lobby": {"id": lobby}, "message": {"id": mid}});
    let expected = json!({"lobby": {"id": lobby}, "message": {"id": mid}, "user": {"id": bid}});

    let d = b.request("received_message", req.clone()).await.ok();
    assert_eq!(d["lobby"]["id"], expected["lobby"]["id"], "{d}");
    assert_eq!(d["message"]["id"], expected["message"]["id"], "{d}");
    assert_eq!(d["user"]["id"], expected["user"]["id"], "{d}");
    for a in [&mut a1, &mut a2] {
        let ev = a.expect_event("received_message").await;
        assert_eq!(ev["lobby"]["id"], expected["lobby"]["id"], "{ev}");
        assert_eq!(ev["message"]["id"], expected["message"]["id"], "{ev}");
        assert_eq!(ev["user"]["id"], expected["user"]["id"], "{ev}");
    }
    // Second time: reply, no broadcast.
    b.request("received_message", req.clone()).await.ok();
    b.request("viewed_message", req.clone()).await.ok();
    for a in [&mut a1, &mut a2] {
        let ev = a
            .expect_event_without("viewed_message", "received_message")
            .await;
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    }
    b.request("viewed_message", req.clone()).await.ok();
    b.request("received_message", req.clone()).await.ok();
    b.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    for a in [&mut a1, &mut a2] {
        a.expect_event_without("typing_message", "viewed_message")
            .await;
        a.expect_no_event("received_message", Duration::ZERO).await;
    }
    b.expect_no_event("received_message", Duration::ZERO).await;
    b.expect_no_event("viewed_message", Duration::ZERO).await;
    let g = a1
        .request(
            "get_data",
            json!({"type": "messages", "id": mid, "lobby": {"id": lobby}}),
        )
        .await
        .ok();
    assert_eq!(
        id_set(&g["data"]["data"]["received"]),
        vec![bid.clone()],
        "{g}"
    );
    assert_eq!(
        id_set(&g["data"]["data"]["viewed"]),
        vec![bid.clone()],
        "{g}"
    );
}

async fn viewed_implies_received(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        a2: _,
        mut b,
        lobby,
    } = room(&t).await;
    let bid = b.id().to_string();
    let m = send(&mut a1, &lobby, "look").await;
    let mid = sid(&m);
    let req = json!({"lobby": {"id": lobby}, "message": {"id": mid}});
    let d = b.request("viewed_message", req.clone()).await.ok();
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    let ev = a1
        .expect_event_without("viewed_message", "received_message")
        .await;
    assert_eq!(ev["message"]["id"], json!(mid), "{ev}");
    // Received after viewed is not a first time.
    b.request("received_message", req.clone()).await.ok();
    b.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    a1.expect_event_without("typing_message", "received_message")
        .await;
    let g = b
        .request(
            "get_data",
            json!({"type": "messages", "id": mid, "lobby": {"id": lobby}}),
        )
        .await
        .ok();
    assert_eq!(g["data"]["level"], "partial", "{g}");
    assert_eq!(
        id_set(&g["data"]["data"]["received"]),
        vec![bid.clone()],
        "viewing records received: {g}"
    );
    assert_eq!(
        id_set(&g["data"]["data"]["viewed"]),
        vec![bid.clone()],
        "{g}"
    );
}

async fn receipt_errors(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        a2: _,
        mut b,
        lobby,
    } = room(&t).await;
    let mut c = t.user("cid").await;
    let (visible, _) = new_lobby(&mut a1, true).await;
    let (other, _) = new_lobby(&mut a1, false).await;
    let m = send(&mut a1, &lobby, "x").await;
    let mid = sid(&m);
    let in_visible = sid(&send(&mut a1, &visible, "v").await);
    let elsewhere = sid(&send(&mut a1, &other, "y").await);
    for event in ["received_message", "viewed_message"] {
        b.request(
            event,
            json!({"lobby": {"id": lobby}, "message": {"id": elsewhere}}),
        )
        .await
        .err("not_found");
        b.request(
            event,
            json!({"lobby": {"id": lobby}, "message": {"id": unknown_uuid()}}),
        )
        .await
        .err("not_found");
        b.request(event, json!({"lobby": {"id": lobby}}))
            .await
            .err("bad_request");
        b.request(event, json!({"lobby": {"id": lobby}, "message": {}}))
            .await
            .err("bad_request");
        b.request(event, json!({"lobby": {"id": lobby}, "message": {"id": 5}}))
            .await
            .err("bad_request");
        b.request(event, json!({"lobby": {"id": lobby}, "message": mid}))
            .await
            .err("bad_request");
        b.request(event, json!({"message": {"id": mid}}))
            .await
            .err("bad_request");
        c.request(
            event,
            json!({"lobby": {"id": visible}, "message": {"id": in_visible}}),
        )
        .await
        .err("forbidden");
        c.request(
            event,
            json!({"lobby": {"id": lobby}, "message": {"id": mid}}),
        )
        .await
        .err("not_found");
        c.request(
            event,
            json!({"lobby": {"id": "nowhere"}, "message": {"id": mid}}),
        )
        .await
        .err("not_found");
    }
    a1.expect_no_event("received_message", QUIET).await;
    a1.expect_no_event("viewed_message", Duration::ZERO).await;
    let g = a1
        .request(
            "get_data",
            json!({"type": "messages", "id": elsewhere, "lobby": {"id": other}}),
        )
        .await
        .ok();
    assert_eq!(g["data"]["data"]["received"], json!([]), "{g}");
    assert_eq!(g["data"]["data"]["viewed"], json!([]), "{g}");
}

async fn typing_message_broadcasts_every_time(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        mut a2,
        mut b,
        lobby,
    } = room(&t).await;
    let bid = b.id().to_string();
    let m = send(&mut a1, &lobby, "x").await;
    let mid = sid(&m);
    let d = b
        .request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    assert_eq!(d["lobby"]["id"], json!(lobby), "{d}");
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    assert!(absent_or_null(&d, "message"), "{d}");
    for a in [&mut a1, &mut a2] {
        let ev = a.expect_event("typing_message").await;
        assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
        assert!(absent_or_null(&ev, "message"), "{ev}");
    }
    let d = b
        .request(
            "typing_message",
            json!({"lobby": {"id": lobby}, "message": {"id": mid}}),
        )
        .await
        .ok();
    assert_eq!(d["message"]["id"], json!(mid), "{d}");
    for a in [&mut a1, &mut a2] {
        let ev = a.expect_event("typing_message").await;
        assert_eq!(ev["message"]["id"], json!(mid), "{ev}");
    }
    // Own typing is not echoed to the requesting connection; Ann's other connection gets it.
    a1.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    let ev = a2.expect_event("typing_message").await;
    assert_eq!(ev["user"]["id"], json!(a1.id()), "{ev}");
    let ev = b.expect_event("typing_message").await;
    assert_eq!(ev["user"]["id"], json!(a1.id()), "{ev}");
    a1.expect_no_event("typing_message", QUIET).await;
}

async fn typing_message_errors(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        a2: _,
        mut b,
        lobby,
    } = room(&t).await;
    let mut c = t.user("cid").await;
    let (visible, _) = new_lobby(&mut a1, true).await;
    let (other, _) = new_lobby(&mut a1, false).await;
    let elsewhere = sid(&send(&mut a1, &other, "y").await);
    b.request(
        "typing_message",
        json!({"lobby": {"id": lobby}, "message": {"id": elsewhere}}),
    )
    .await
    .err("not_found");
    b.request(
        "typing_message",
        json!({"lobby": {"id": lobby}, "message": {"id": unknown_uuid()}}),
    )
    .await
    .err("not_found");
    b.request("typing_message", json!({}))
        .await
        .err("bad_request");
    b.request(
        "typing_message",
        json!({"lobby": {"id": lobby}, "message": {"id": 3}}),
    )
    .await
    .err("bad_request");
    c.request("typing_message", json!({"lobby": {"id": visible}}))
        .await
        .err("forbidden");
    c.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .err("not_found");
    a1.expect_no_event("typing_message", QUIET).await;
}

async fn concurrent_first_receipts_broadcast_once(engine: Engine) {
    let t = env(engine).await;
    let Room {
        mut a1,
        mut a2,
        b: mut b1,
        lobby,
    } = room(&t).await;
    let mut b2 = t.same_user(&b1).await;
    for round in 0..5 {
        let m = send(&mut a1, &lobby, &format!("race {round}")).await;
        let req = json!({"lobby": {"id": lobby}, "message": {"id": sid(&m)}});
        for event in ["received_message", "viewed_message"] {
            let (r1, r2) = tokio::join!(
                b1.request(event, req.clone()),
                b2.request(event, req.clone())
            );
            r1.ok();
            r2.ok();
        }
        a2.request("typing_message", json!({"lobby": {"id": lobby}}))
            .await
            .ok();
        let before = a1.take_events_before("typing_message").await;
        let count = |name: &str| before.iter().filter(|f| f["event"] == name).count();
        assert_eq!(count("viewed_message"), 1, "round {round}: {before:?}");
        assert_eq!(count("received_message"), 1, "round {round}: {before:?}");
    }
}
