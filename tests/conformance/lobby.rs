//! connect_lobby and disconnect_lobby.

use crate::common::*;

engine_tests!(
    create_lobby_with_generated_id,
    create_lobby_with_given_fields,
    join_visible_lobby,
    join_invisible_lobby_needs_token,
    lobby_full_respects_size_limit,
    rejoin_is_noop_without_broadcast,
    connect_lobby_validation,
    connect_lobby_broadcast_targets,
    concurrent_creators_one_owner,
    disconnect_lobby_leaves_and_broadcasts,
    disconnect_lobby_errors,
);

async fn create_lobby_with_generated_id(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.user("ann").await;
    let me = c.id().to_string();
    let d = c.request("connect_lobby", json!({"lobby": {}})).await.ok();
    assert_eq!(d["user"]["id"], json!(me), "{d}");
    let l = &d["lobby"];
    assert_eq!(l["type"], "lobbys", "{l}");
    assert!(
        l["id"].as_str().is_some_and(is_uuid),
        "generated lobby id must be a UUID: {l}"
    );
    assert_eq!(l["level"], "private", "{l}");
    assert_eq!(l["owner"]["id"], json!(me), "{l}");
    assert_eq!(l["visibility"], json!(false), "default visibility: {l}");
    assert!(
        l["createdAt"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{l}"
    );
    let data = &l["data"];
    assert!(
        is_generated_token(&data["token"]),
        "generated lobby token: {l}"
    );
    assert_eq!(data["userCount"], json!(1), "{l}");
    assert_eq!(
        data["users"],
        json!([{"id": me, "username": "ann", "online": true}]),
        "{l}"
    );
    assert!(
        absent_or_null(data, "sizeLimit"),
        "no size limit by default: {l}"
    );
    assert!(data["updatedAt"].as_u64().is_some(), "{l}");
    assert_perms(l, LOBBY_OWNER_PERMS);

    let l2 = create_lobby(&mut c, json!({})).await;
    assert_ne!(l2["id"], l["id"], "each {{}} creates a new lobby");
    assert_ne!(l2["data"]["token"], l["data"]["token"]);
    let u = c
        .request("get_data", json!({"type": "users", "id": me}))
        .await
        .ok();
    assert_eq!(
        id_set(&u["data"]["data"]["lobbys"]),
        sorted(&[l["id"].as_str().unwrap(), l2["id"].as_str().unwrap()])
    );
}

async fn create_lobby_with_given_fields(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.user("ann").await;
    let id = format!("room-{}", unique());
    let token = format!("tok-{}", unique());
    let l = create_lobby(
        &mut c,
        json!({"id": id, "token": token, "visibility": true, "sizeLimit": 3, "description": "hello"}),
    )
    .await;
    assert_eq!(l["id"], json!(id), "{l}");
    assert_eq!(l["visibility"], json!(true), "{l}");
    assert_eq!(l["data"]["token"], json!(token), "{l}");
    assert_eq!(l["data"]["sizeLimit"], json!(3), "{l}");
    assert_eq!(l["data"]["description"], "hello", "{l}");
    assert_eq!(l["data"]["userCount"], json!(1), "{l}");
    // Ids up to 256 bytes are fine; unicode ids too.
    let long = "x".repeat(256);
    let l = create_lobby(&mut c, json!({"id": long})).await;
    assert_eq!(l["id"], json!(long));
    let l = create_lobby(&mut c, json!({"id": "комната"})).await;
    assert_eq!(l["id"], "комната");
    let euros = "€".repeat(85); // 255 bytes
    let l = create_lobby(&mut c, json!({"id": euros})).await;
    assert_eq!(l["id"], json!(euros));
    let t256 = "t".repeat(256);
    let l = create_lobby(&mut c, json!({"token": t256})).await;
    assert_eq!(
        l["data"]["token"],
        json!(t256),
        "tokens up to 256 bytes: {l}"
    );
}

async fn join_visible_lobby(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (aid, bid) = (a.id().to_string(), b.id().to_string());
    let l = create_lobby(&mut a, json!({"visibility": true, "description": "open"})).await;
    let lobby = sid(&l);
    let d = b
        .request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    let l = &d["lobby"];
    assert_eq!(l["id"], json!(lobby));
    assert_eq!(l["level"], "partial", "{l}");
    assert_eq!(l["owner"]["id"], json!(aid), "{l}");
    assert!(
        absent_or_null(&l["data"], "token"),
        "a member must not see the token: {l}"
    );
    assert_eq!(l["data"]["userCount"], json!(2), "{l}");
    assert_eq!(l["data"]["description"], "open", "{l}");
    assert_eq!(id_set(&l["data"]["users"]), sorted(&[&aid, &bid]), "{l}");
    assert_perms(l, LOBBY_MEMBER_PERMS);

    let ev = a.expect_event("connect_lobby").await;
    assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
    assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    assert_eq!(ev["user"]["username"], "bob", "{ev}");
}

async fn join_invisible_lobby_needs_token(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (lobby, token) = new_lobby(&mut a, false).await;
    b.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .err("forbidden");
    b.request(
        "connect_lobby",
        json!({"lobby": {"id": lobby, "token": format!("wrong-{}", unique())}}),
    )
    .await
    .err("forbidden");
    a.expect_no_event("connect_lobby", QUIET).await;
    let l = join_with_token(&mut b, &lobby, &token).await;
    assert_eq!(
        l["level"], "private",
        "a token holder has private access: {l}"
    );
    assert_eq!(l["data"]["token"], json!(token), "{l}");
    assert_eq!(l["data"]["userCount"], json!(2), "{l}");
    assert_perms(&l, LOBBY_TOKEN_PERMS);
    let ev = a.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(b.id()), "{ev}");
    // Once a member, Bob rejoins without the token.
    let l = join(&mut b, &lobby).await;
    assert_eq!(l["level"], "partial", "{l}");
}

async fn lobby_full_respects_size_limit(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let l = create_lobby(&mut a, json!({"visibility": true, "sizeLimit": 2})).await;
    let (lobby, token) = (sid(&l), l["data"]["token"].as_str().unwrap().to_string());
    join(&mut b, &lobby).await;
    c.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .err("lobby_full");
    c.request(
        "connect_lobby",
        json!({"lobby": {"id": lobby, "token": token}}),
    )
    .await
    .err("lobby_full");
    // Rejoining when full is a no-op success.
    let l = join(&mut b, &lobby).await;
    assert_eq!(l["data"]["userCount"], json!(2), "{l}");
    let l = join(&mut a, &lobby).await;
    assert_eq!(l["data"]["userCount"], json!(2), "{l}");
    assert_eq!(l["data"]["sizeLimit"], json!(2), "{l}");
    // Bob leaves: there is room again.
    b.request("disconnect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    let l = join(&mut c, &lobby).await;
    assert_eq!(l["data"]["userCount"], json!(2), "{l}");
}

async fn rejoin_is_noop_without_broadcast(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b, &lobby).await;
    a.expect_event("connect_lobby").await;
    let l = join(&mut b, &lobby).await;
    assert_eq!(l["data"]["userCount"], json!(2), "{l}");
    let l = join(&mut a, &lobby).await;
    assert_eq!(l["level"], "private", "{l}");
    // Within one lobby broadcasts are ordered: the typing proves no join came first.
    b.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    a.expect_event_without("typing_message", "connect_lobby")
        .await;
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    b.expect_event_without("typing_message", "connect_lobby")
        .await;
}

async fn connect_lobby_validation(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (private_lobby, _) = new_lobby(&mut a, false).await;
    let bad = [
        json!({}),
        json!({"lobby": null}),
        json!({"lobby": 5}),
        json!({"lobby": "room"}),
        json!({"lobby": {"id": ""}}),
        json!({"lobby": {"id": 5}}),
        json!({"lobby": {"id": "x".repeat(257)}}),
        json!({"lobby": {"id": "€".repeat(86)}}), // 86 chars, 258 bytes
        json!({"lobby": {"sizeLimit": 0}}),
        json!({"lobby": {"sizeLimit": -1}}),
        json!({"lobby": {"sizeLimit": 1.5}}),
        json!({"lobby": {"sizeLimit": "2"}}),
        json!({"lobby": {"token": ""}}),
        json!({"lobby": {"token": "t".repeat(257)}}),
        json!({"lobby": {"token": 5}}),
        json!({"lobby": {"visibility": "yes"}}),
        json!({"lobby": {"description": 5}}),
        // Validation comes before access: these name an existing private lobby.
        json!({"lobby": {"id": private_lobby, "sizeLimit": 0}}),
        json!({"lobby": {"id": private_lobby, "token": ""}}),
    ];
    for data in bad {
        b.request("connect_lobby", data).await.err("bad_request");
    }
    // None of them created anything.
    let all = b
        .request("get_all_data", json!({"type": "lobbys"}))
        .await
        .ok();
    assert_eq!(all["datas"], json!([]), "{all}");
    a.expect_no_event("connect_lobby", QUIET).await;
}

async fn connect_lobby_broadcast_targets(engine: Engine) {
    let t = env(engine).await;
    let mut a1 = t.user("ann").await;
    let mut a2 = t.same_user(&a1).await;
    let mut b1 = t.user("bob").await;
    let mut b2 = t.same_user(&b1).await;
    let (aid, bid) = (a1.id().to_string(), b1.id().to_string());
    let (lobby, _) = new_lobby(&mut a1, true).await;
    // Creating joins the creator: the creator's other connection hears of it.
    let ev = a2.expect_event("connect_lobby").await;
    assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
    assert_eq!(ev["user"]["id"], json!(aid), "{ev}");

    join(&mut b1, &lobby).await;
    for c in [&mut a1, &mut a2, &mut b2] {
        let ev = c.expect_event("connect_lobby").await;
        assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
        assert_eq!(ev["user"]["username"], "bob", "{ev}");
    }
    // The requesting connection only got its reply (ordered proof via typing).
    a2.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    b1.expect_event_without("typing_message", "connect_lobby")
        .await;
    a1.expect_event_without("typing_message", "connect_lobby")
        .await;
    a1.expect_no_event("connect_lobby", Duration::ZERO).await;
    // Bob's other connection now gets the lobby's traffic too.
    let m = send(&mut a1, &lobby, "hello bob").await;
    for c in [&mut b1, &mut b2, &mut a2] {
        let ev = c.expect_event("send_message").await;
        assert_eq!(ev["message"]["id"], m["id"], "{ev}");
    }
}

async fn concurrent_creators_one_owner(engine: Engine) {
    let t = env(engine).await;
    for visible in [true, false] {
        let id = format!("race-{}", unique());
        let mut clients = Vec::new();
        for i in 0..6 {
            clients.push(t.user(&format!("u{i}")).await);
        }
        let mut tasks = Vec::new();
        for mut c in clients {
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let r = c
                    .request(
                        "connect_lobby",
                        json!({"lobby": {"id": id, "visibility": visible}}),
                    )
                    .await;
                (c.id().to_string(), r, c)
            }));
        }
        let mut owners = Vec::new();
        let mut owner_ids = Vec::new();
        let mut ok = 0;
        let mut clients = Vec::new();
        for task in tasks {
            let (me, r, c) = task.await.expect("task");
            clients.push(c);
            if r.is_ok() {
                ok += 1;
                let l = r.ok()["lobby"].clone();
                owner_ids.push(l["owner"]["id"].as_str().unwrap().to_string());
                if l["owner"]["id"] == json!(me) {
                    assert_eq!(l["level"], "private", "{l}");
                    owners.push(me);
                } else {
                    assert_eq!(l["level"], "partial", "{l}");
                }
            } else {
                assert!(
                    !visible,
                    "joining a visible lobby must succeed: {:?}",
                    r.frame
                );
                r.err("forbidden");
            }
        }
        assert_eq!(
            owners.len(),
            1,
            "exactly one creator becomes owner (visible={visible})"
        );
        owner_ids.dedup();
        assert_eq!(
            owner_ids.len(),
            1,
            "every reply names the same owner: {owner_ids:?}"
        );
        let expected = if visible { 6 } else { 1 };
        assert_eq!(ok, expected, "successful joins (visible={visible})");
        let owner = clients.iter_mut().find(|c| c.id() == owners[0]).unwrap();
        let l = owner
            .request("get_data", json!({"type": "lobbys", "id": id}))
            .await
            .ok();
        assert_eq!(l["data"]["data"]["userCount"], json!(expected), "{l}");
    }
}

async fn disconnect_lobby_leaves_and_broadcasts(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b1 = t.user("bob").await;
    let mut b2 = t.same_user(&b1).await;
    let mut c = t.user("cid").await;
    let bid = b1.id().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b1, &lobby).await;
    join(&mut c, &lobby).await;
    a.drain().await;
    b2.drain().await;

    let d = b1
        .request("disconnect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    assert_eq!(d["lobby"]["id"], json!(lobby), "{d}");
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    for x in [&mut a, &mut c, &mut b2] {
        let ev = x.expect_event("disconnect_lobby").await;
        assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    }
    b1.expect_no_event("disconnect_lobby", QUIET).await;

    let l = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert!(!ids(&l["data"]["data"]["users"]).contains(&bid), "{l}");
    assert_eq!(l["data"]["data"]["userCount"], json!(2), "{l}");
    let u = b1
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(u["data"]["data"]["lobbys"], json!([]), "{u}");
    // No longer a member: no lobby broadcasts, no sending.
    send(&mut a, &lobby, "bye bob").await;
    c.expect_event("send_message").await;
    b1.expect_no_event("send_message", QUIET).await;
    b2.expect_no_event("send_message", Duration::ZERO).await;
    b2.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "hey"}),
    )
    .await
    .err("forbidden");
    b2.request("disconnect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .err("forbidden");
}

async fn disconnect_lobby_errors(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (visible, _) = new_lobby(&mut a, true).await;
    let (hidden, _) = new_lobby(&mut a, false).await;
    b.request("disconnect_lobby", json!({"lobby": {"id": visible}}))
        .await
        .err("forbidden");
    b.request("disconnect_lobby", json!({"lobby": {"id": hidden}}))
        .await
        .err("not_found");
    b.request(
        "disconnect_lobby",
        json!({"lobby": {"id": "no-such-lobby"}}),
    )
    .await
    .err("not_found");
    b.request("disconnect_lobby", json!({}))
        .await
        .err("bad_request");
    b.request("disconnect_lobby", json!({"lobby": {}}))
        .await
        .err("bad_request");
    b.request("disconnect_lobby", json!({"lobby": {"id": ""}}))
        .await
        .err("bad_request");
    b.request("disconnect_lobby", json!({"lobby": {"id": 7}}))
        .await
        .err("bad_request");
    a.expect_no_event("disconnect_lobby", QUIET).await;
}
