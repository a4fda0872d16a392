//! update_data for users, lobbys and messages.

use crate::common::*;

engine_tests!(
    update_user,
    update_user_errors,
    update_lobby,
    update_lobby_errors,
    update_message
);

#[track_caller]
fn assert_update(ev: &Value, ty: &str, id: &str, data: Value) {
    assert_eq!(ev["type"], json!(ty), "{ev}");
    assert_eq!(ev["id"], json!(id), "{ev}");
    assert_eq!(ev["data"], data, "{ev}");
    assert!(
        ev["updatedAt"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{ev}"
    );
}

async fn update_user(engine: Engine) {
    let t = env(engine).await;
    let mut a1 = t.user("ann").await;
    let mut a2 = t.same_user(&a1).await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let aid = a1.id().to_string();
    let (lobby, _) = new_lobby(&mut a1, true).await;
    join(&mut b, &lobby).await;
    a1.drain().await;
    a2.drain().await;

    let before = a1
        .request("get_data", json!({"type": "users", "id": aid}))
        .await
        .ok();
    let r = a1
        .request(
            "update_data",
            json!({"type": "users", "id": aid, "data": {"username": "ann2"}}),
        )
        .await
        .ok();
    assert_update(&r, "users", &aid, json!({"username": "ann2"}));
    assert!(
        r["updatedAt"].as_u64() >= before["data"]["data"]["updatedAt"].as_u64(),
        "{r}"
    );
    for x in [&mut a2, &mut b] {
        let ev = x.expect_event("update_data").await;
        assert_update(&ev, "users", &aid, json!({"username": "ann2"}));
    }
    a1.expect_no_event("update_data", QUIET).await;
    c.expect_no_event("update_data", Duration::ZERO).await;

    let r = a1
        .request(
            "update_data",
            json!({"type": "users", "id": aid, "data": {"visibility": true, "username": "ann3"}}),
        )
        .await
        .ok();
    assert_update(
        &r,
        "users",
        &aid,
        json!({"visibility": true, "username": "ann3"}),
    );
    let ev = b.expect_event("update_data").await;
    assert_update(
        &ev,
        "users",
        &aid,
        json!({"visibility": true, "username": "ann3"}),
    );
    let g = c
        .request("get_data", json!({"type": "users", "id": aid}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "public", "{g}");
    assert_eq!(g["data"]["data"]["username"], "ann3", "{g}");
    c.expect_no_event("update_data", Duration::ZERO).await;
}

async fn update_user_errors(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let (aid, atoken) = (a.id().to_string(), a.token().to_string());
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b, &lobby).await;
    a.drain().await;

    let upd = |data: Value| json!({"type": "users", "id": aid, "data": data});
    for data in [
        json!({}),
        json!({"token": "abcdefgh12345678"}),
        json!({"id": "x"}),
        json!({"owner": {"id": "x"}}),
        json!({"createdAt": 1}),
        json!({"updatedAt": 1}),
        json!({"online": false}),
        json!({"lobbys": []}),
        json!({"favouriteColour": "blue"}),
        json!({"username": ""}),
        json!({"username": "a".repeat(129)}),
        json!({"username": 5}),
        json!({"visibility": "yes"}),
        json!({"username": "ok", "token": "abcdefgh12345678"}),
        json!("username"),
    ] {
        a.request("update_data", upd(data)).await.err("bad_request");
    }
    a.request("update_data", json!({"type": "users", "id": aid}))
        .await
        .err("bad_request");
    a.request("update_data", json!({"id": aid, "data": {"username": "x"}}))
        .await
        .err("bad_request");
    // Access: co-member forbidden, stranger not_found, user-token holder forbidden (no permissions).
    b.request("update_data", upd(json!({"username": "hacked"})))
        .await
        .err("forbidden");
    c.request("update_data", upd(json!({"username": "hacked"})))
        .await
        .err("not_found");
    let mut with_token = upd(json!({"username": "hacked"}));
    with_token["token"] = json!(atoken);
    c.request("update_data", with_token).await.err("forbidden");
    // Validation first, even for a stranger.
    c.request("update_data", upd(json!({"favouriteColour": "red"})))
        .await
        .err("bad_request");
    c.request(
        "update_data",
        json!({"type": "users", "id": unknown_uuid(), "data": {"username": "x"}}),
    )
    .await
    .err("not_found");
    // Nothing changed, nothing broadcast.
    b.expect_no_event("update_data", QUIET).await;
    let g = a
        .request("get_data", json!({"type": "users", "id": aid}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["username"], "ann", "{g}");
    assert_eq!(g["data"]["data"]["token"], json!(atoken), "{g}");
    assert_eq!(g["data"]["visibility"], json!(false), "{g}");
}

async fn update_lobby(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let l = create_lobby(&mut a, json!({"description": "old"})).await;
    let (lobby, token) = (sid(&l), l["data"]["token"].as_str().unwrap().to_string());
    join_with_token(&mut b, &lobby, &token).await;
    a.expect_event("connect_lobby").await;

    let r = a
        .request(
            "update_data",
            json!({"type": "lobbys", "id": lobby, "data": {"description": "new", "sizeLimit": 10}}),
        )
        .await
        .ok();
    assert_update(
        &r,
        "lobbys",
        &lobby,
        json!({"description": "new", "sizeLimit": 10}),
    );
    let ev = b.expect_event("update_data").await;
    assert_update(
        &ev,
        "lobbys",
        &lobby,
        json!({"description": "new", "sizeLimit": 10}),
    );
    a.expect_no_event("update_data", QUIET).await;

    // A non-member token holder may update; members are told, the holder only gets the reply.
    let r = c
        .request(
            "update_data",
            json!({"type": "lobbys", "id": lobby, "token": token, "data": {"visibility": true}}),
        )
        .await
        .ok();
    assert_update(&r, "lobbys", &lobby, json!({"visibility": true}));
    for x in [&mut a, &mut b] {
        let ev = x.expect_event("update_data").await;
        assert_update(&ev, "lobbys", &lobby, json!({"visibility": true}));
    }
    let g = c
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "public", "{g}");
    assert_eq!(g["data"]["data"]["description"], "new", "{g}");
    assert_eq!(g["data"]["visibility"], json!(true), "{g}");
    c.expect_no_event("update_data", Duration::ZERO).await;
    let g = b
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["sizeLimit"], json!(10), "{g}");
}

async fn update_lobby_errors(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let (visible, _) = new_lobby(&mut a, true).await;
    let (hidden, _) = new_lobby(&mut a, false).await;
    join(&mut b, &visible).await;
    a.drain().await;
    let upd = |id: &str, data: Value| json!({"type": "lobbys", "id": id, "data": data});
    for data in [
        json!({}),
        json!({"token": "abcdefgh12345678"}),
        json!({"users": []}),
        json!({"userCount": 3}),
        json!({"owner": {"id": "x"}}),
        json!({"id": "other"}),
        json!({"createdAt": 5}),
        json!({"topic": "x"}),
        json!({"sizeLimit": 0}),
        json!({"sizeLimit": -3}),
        json!({"sizeLimit": "5"}),
        json!({"visibility": 1}),
        json!({"description": 5}),
        json!({"description": "ok", "users": []}),
    ] {
        a.request("update_data", upd(&visible, data))
            .await
            .err("bad_request");
    }
    b.request("update_data", upd(&visible, json!({"description": "x"})))
        .await
        .err("forbidden");
    c.request("update_data", upd(&visible, json!({"description": "x"})))
        .await
        .err("forbidden");
    c.request("update_data", upd(&hidden, json!({"description": "x"})))
        .await
        .err("not_found");
    c.request(
        "update_data",
        upd("no-such-lobby", json!({"description": "x"})),
    )
    .await
    .err("not_found");
    c.request("update_data", upd(&hidden, json!({"topic": "x"})))
        .await
        .err("bad_request");
    b.expect_no_event("update_data", QUIET).await;
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": visible}))
        .await
        .ok();
    assert!(absent_or_null(&g["data"]["data"], "description"), "{g}");
    assert!(absent_or_null(&g["data"]["data"], "sizeLimit"), "{g}");
}

async fn update_message(engine: Engine) {
    let t = env(engine).await;
    let mut a1 = t.user("ann").await;
    let mut a2 = t.same_user(&a1).await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let (lobby, _) = new_lobby(&mut a1, true).await;
    let (other, _) = new_lobby(&mut a1, true).await;
    join(&mut b, &lobby).await;
    let mid = sid(&send(&mut a1, &lobby, "tpyo").await);
    a2.drain().await;
    b.drain().await;
    let upd = |lobby: &str, data: Value| json!({"type": "messages", "id": mid, "lobby": {"id": lobby}, "data": data});

    let r = a1
        .request("update_data", upd(&lobby, json!({"content": "typo"})))
        .await
        .ok();
    assert_update(&r, "messages", &mid, json!({"content": "typo"}));
    for x in [&mut a2, &mut b] {
        let ev = x.expect_event("update_data").await;
        assert_update(&ev, "messages", &mid, json!({"content": "typo"}));
    }
    a1.expect_no_event("update_data", QUIET).await;
    let g = b
        .request(
            "get_data",
            json!({"type": "messages", "id": mid, "lobby": {"id": lobby}}),
        )
        .await
        .ok();
    assert_eq!(g["data"]["data"]["content"], "typo", "{g}");
    assert_eq!(g["data"]["data"]["seq"], json!(1), "{g}");

    for data in [
        json!({}),
        json!({"content": ""}),
        json!({"content": 5}),
        json!({"seq": 9}),
        json!({"lobby": {"id": other}}),
        json!({"received": []}),
        json!({"replied": mid}),
        json!({"visibility": true}),
    ] {
        a1.request("update_data", upd(&lobby, data))
            .await
            .err("bad_request");
    }
    a1.request(
        "update_data",
        json!({"type": "messages", "id": mid, "data": {"content": "x"}}),
    )
    .await
    .err("bad_request");
    b.request("update_data", upd(&lobby, json!({"content": "mine now"})))
        .await
        .err("forbidden");
    c.request("update_data", upd(&lobby, json!({"content": "mine now"})))
        .await
        .err("not_found");
    a1.request("update_data", upd(&other, json!({"content": "x"})))
        .await
        .err("not_found");
    b.expect_no_event("update_data", QUIET).await;
}
