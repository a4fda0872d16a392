//! use_action: every action, the role matrix, and its broadcasts.

use crate::common::*;

engine_tests!(
    set_owner,
    set_token_lobby,
    set_token_user,
    set_visibility,
    add_user,
    add_users,
    add_user_respects_size_limit,
    delete_user,
    delete_users,
    update_action,
    action_validation,
    role_matrix,
);

fn act(ty: &str, id: &str, action: &str, args: Value) -> Value {
    json!({"type": ty, "id": id, "action": action, "actionArgs": args})
}

fn act_tok(ty: &str, id: &str, token: &str, action: &str, args: Value) -> Value {
    json!({"type": ty, "id": id, "token": token, "action": action, "actionArgs": args})
}

#[track_caller]
fn assert_action_reply(r: &Value, ty: &str, id: &str, action: &str) {
    assert_eq!(r["type"], json!(ty), "{r}");
    assert_eq!(r["id"], json!(id), "{r}");
    assert_eq!(r["action"], json!(action), "{r}");
    assert_eq!(
        r["data"]["type"],
        json!(ty),
        "the reply carries an info object: {r}"
    );
    assert_eq!(r["data"]["id"], json!(id), "{r}");
}

/// Ann owns a visible lobby, Bob is a member, Cid is logged in elsewhere,
/// Tia holds the token but is not a member.
struct Setup {
    a: WsClient,
    b: WsClient,
    c: WsClient,
    tia: WsClient,
    lobby: String,
    token: String,
}

async fn setup(t: &TestEnv, visible: bool) -> Setup {
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let c = t.user("cid").await;
    let tia = t.user("tia").await;
    let (lobby, token) = new_lobby(&mut a, visible).await;
    let bid = b.id().to_string();
    a.request("use_action", act("lobbys", &lobby, "addUser", json!([bid])))
        .await
        .ok();
    let ev = b.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    Setup {
        a,
        b,
        c,
        tia,
        lobby,
        token,
    }
}

async fn set_owner(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        mut tia,
        lobby,
        token,
    } = setup(&t, false).await;
    let (aid, bid, cid) = (a.id().to_string(), b.id().to_string(), c.id().to_string());
    b.request(
        "use_action",
        act("lobbys", &lobby, "setOwner", json!([cid])),
    )
    .await
    .err("forbidden");
    tia.request(
        "use_action",
        act_tok("lobbys", &lobby, &token, "setOwner", json!([cid])),
    )
    .await
    .err("forbidden");
    a.request(
        "use_action",
        act("lobbys", &lobby, "setOwner", json!([unknown_uuid()])),
    )
    .await
    .err("not_found");

    let r = a
        .request(
            "use_action",
            act("lobbys", &lobby, "setOwner", json!([cid])),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "setOwner");
    assert_eq!(r["data"]["owner"]["id"], json!(cid), "{r}");
    let ev = b.expect_event("update_data").await;
    assert_eq!(ev["type"], "lobbys", "{ev}");
    assert_eq!(ev["id"], json!(lobby), "{ev}");
    assert_eq!(ev["data"]["owner"]["id"], json!(cid), "{ev}");
    assert!(ev["updatedAt"].as_u64().is_some(), "{ev}");

    // The new owner is not a member; the old owner still is.
    let g = c
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(
        g["data"]["level"], "private",
        "the owner has private access: {g}"
    );
    assert_perms(&g["data"], LOBBY_OWNER_PERMS);
    assert_eq!(
        id_set(&g["data"]["data"]["users"]),
        sorted(&[&aid, &bid]),
        "{g}"
    );
    c.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x"}),
    )
    .await
    .err("forbidden");
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "partial", "{g}");
    assert_perms(&g["data"], LOBBY_MEMBER_PERMS);
    a.request(
        "use_action",
        act("lobbys", &lobby, "setOwner", json!([aid])),
    )
    .await
    .err("forbidden");
    send(&mut a, &lobby, "still a member").await;
    // The owner may join its lobby.
    let l = join(&mut c, &lobby).await;
    assert_eq!(l["level"], "private", "{l}");
    assert_eq!(l["data"]["userCount"], json!(3), "{l}");
}

async fn set_token_lobby(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        mut tia,
        lobby,
        token,
    } = setup(&t, false).await;
    let new_token = format!("new-token-{}", unique());
    b.request(
        "use_action",
        act("lobbys", &lobby, "setToken", json!([new_token])),
    )
    .await
    .err("forbidden");
    tia.request(
        "use_action",
        act_tok("lobbys", &lobby, &token, "setToken", json!([new_token])),
    )
    .await
    .err("forbidden");
    for bad in [
        json!([5]),
        json!([""]),
        json!(["t".repeat(257)]),
        json!(true),
    ] {
        a.request("use_action", act("lobbys", &lobby, "setToken", bad))
            .await
            .err("bad_request");
    }

    let r = a
        .request(
            "use_action",
            act("lobbys", &lobby, "setToken", json!([new_token])),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "setToken");
    assert_eq!(r["data"]["data"]["token"], json!(new_token), "{r}");
    // Nothing is broadcast (proved in lobby order by a later typing).
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    b.expect_event_without("typing_message", "update_data")
        .await;
    c.request(
        "connect_lobby",
        json!({"lobby": {"id": lobby, "token": token}}),
    )
    .await
    .err("forbidden");
    c.request(
        "get_data",
        json!({"type": "lobbys", "id": lobby, "token": token}),
    )
    .await
    .err("not_found");
    let l = join_with_token(&mut c, &lobby, &new_token).await;
    assert_eq!(l["level"], "private", "{l}");

    let r = a
        .request(
            "use_action",
            act("lobbys", &lobby, "setToken", json!([null])),
        )
        .await
        .ok();
    let generated = r["data"]["data"]["token"].clone();
    assert!(
        is_generated_token(&generated),
        "setToken null generates: {r}"
    );
    assert_ne!(generated, json!(new_token));
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["token"], generated, "{g}");
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    b.expect_event_without("typing_message", "update_data")
        .await;
    c.expect_event_without("typing_message", "update_data")
        .await;
}

async fn set_token_user(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (aid, old) = (a.id().to_string(), a.token().to_string());
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b, &lobby).await;
    b.request(
        "use_action",
        act("users", &aid, "setToken", json!(["stolen-token-123"])),
    )
    .await
    .err("forbidden");
    b.request(
        "use_action",
        act_tok("users", &aid, &old, "setToken", json!(["stolen-token-123"])),
    )
    .await
    .err("forbidden");

    for bad in [json!([""]), json!(["u".repeat(257)]), json!([7])] {
        a.request("use_action", act("users", &aid, "setToken", bad))
            .await
            .err("bad_request");
    }
    let new_token = format!("user-token-{}", unique());
    let r = a
        .request(
            "use_action",
            act("users", &aid, "setToken", json!([new_token])),
        )
        .await
        .ok();
    assert_action_reply(&r, "users", &aid, "setToken");
    assert_eq!(r["data"]["data"]["token"], json!(new_token), "{r}");
    let mut x = t.client().await;
    x.request("login", json!({"token": old}))
        .await
        .err("unauthenticated");
    let (id, _) = x.login_token(&new_token).await;
    assert_eq!(id, aid);

    let r = a
        .request("use_action", act("users", &aid, "setToken", json!([null])))
        .await
        .ok();
    let generated = r["data"]["data"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(is_generated_token(&json!(generated)), "{r}");
    let mut y = t.client().await;
    y.request("login", json!({"token": new_token}))
        .await
        .err("unauthenticated");
    y.login_token(&generated).await;
    // Co-members were told nothing.
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    b.expect_event_without("typing_message", "update_data")
        .await;
}

async fn set_visibility(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        mut tia,
        lobby,
        token,
    } = setup(&t, false).await;
    b.request(
        "use_action",
        act("lobbys", &lobby, "setVisibility", json!([true])),
    )
    .await
    .err("forbidden");
    c.request(
        "use_action",
        act("lobbys", &lobby, "setVisibility", json!([true])),
    )
    .await
    .err("not_found");
    for bad in [json!(["yes"]), json!([]), json!([1]), json!(null)] {
        a.request("use_action", act("lobbys", &lobby, "setVisibility", bad))
            .await
            .err("bad_request");
    }
    let r = a
        .request(
            "use_action",
            act("lobbys", &lobby, "setVisibility", json!([true])),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "setVisibility");
    assert_eq!(r["data"]["visibility"], json!(true), "{r}");
    let ev = b.expect_event("update_data").await;
    assert_eq!(ev["type"], "lobbys", "{ev}");
    assert_eq!(ev["id"], json!(lobby), "{ev}");
    assert_eq!(ev["data"], json!({"visibility": true}), "{ev}");
    let g = c
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "public", "{g}");

    // The token holder may hide it again.
    let r = tia
        .request(
            "use_action",
            act_tok("lobbys", &lobby, &token, "setVisibility", json!([false])),
        )
        .await
        .ok();
    assert_eq!(r["data"]["visibility"], json!(false), "{r}");
    for x in [&mut a, &mut b] {
        let ev = x.expect_event("update_data").await;
        assert_eq!(ev["data"], json!({"visibility": false}), "{ev}");
    }
    c.request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .err("not_found");

    // Users.
    let aid = a.id().to_string();
    let bid = b.id().to_string();
    a.request(
        "use_action",
        act("users", &bid, "setVisibility", json!([true])),
    )
    .await
    .err("forbidden");
    let r = a
        .request(
            "use_action",
            act("users", &aid, "setVisibility", json!([true])),
        )
        .await
        .ok();
    assert_action_reply(&r, "users", &aid, "setVisibility");
    assert_eq!(r["data"]["visibility"], json!(true), "{r}");
    let ev = b.expect_event("update_data").await;
    assert_eq!(ev["type"], "users", "{ev}");
    assert_eq!(ev["id"], json!(aid), "{ev}");
    assert_eq!(ev["data"], json!({"visibility": true}), "{ev}");
    let g = c
        .request("get_data", json!({"type": "users", "id": aid}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "public", "{g}");
}

async fn add_user(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        c,
        mut tia,
        lobby,
        token,
    } = setup(&t, true).await;
    let mut c1 = c;
    let mut c2 = t.same_user(&c1).await;
    let mut stranger = t.user("sam").await;
    let cid = c1.id().to_string();

    // A plain member may add.
    let r = b
        .request("use_action", act("lobbys", &lobby, "addUser", json!([cid])))
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "addUser");
    assert_eq!(r["data"]["level"], "partial", "{r}");
    assert!(ids(&r["data"]["data"]["users"]).contains(&cid), "{r}");
    for x in [&mut a, &mut c1, &mut c2] {
        let ev = x.expect_event("connect_lobby").await;
        assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
        assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
        assert_eq!(ev["user"]["username"], "cid", "{ev}");
    }
    // Cid now gets the lobby's broadcasts on both connections.
    let m = send(&mut a, &lobby, "welcome").await;
    for x in [&mut c1, &mut c2] {
        let ev = x.expect_event("send_message").await;
        assert_eq!(ev["message"]["id"], m["id"], "{ev}");
    }
    // Re-adding is a no-op without broadcast.
    b.request("use_action", act("lobbys", &lobby, "addUser", json!([cid])))
        .await
        .ok();
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    for x in [&mut b, &mut c1] {
        x.expect_event_without("typing_message", "connect_lobby")
            .await;
    }
    b.expect_no_event("connect_lobby", Duration::ZERO).await;
    b.request(
        "use_action",
        act("lobbys", &lobby, "addUser", json!([unknown_uuid()])),
    )
    .await
    .err("not_found");
    // A stranger to the (visible) lobby may not add; the token holder may.
    let sid_ = stranger.id().to_string();
    stranger
        .request(
            "use_action",
            act("lobbys", &lobby, "addUser", json!([sid_])),
        )
        .await
        .err("forbidden");
    let tid = tia.id().to_string();
    tia.request(
        "use_action",
        act_tok("lobbys", &lobby, &token, "addUser", json!([tid])),
    )
    .await
    .ok();
    let ev = a.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(tid), "{ev}");
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["userCount"], json!(4), "{g}");
}

async fn add_users(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        mut tia,
        lobby,
        token: _,
    } = setup(&t, false).await;
    let mut d = t.user("dee").await;
    let (cid, did, tid) = (c.id().to_string(), d.id().to_string(), tia.id().to_string());
    let joins = |frames: Vec<Value>| -> Vec<String> {
        let mut out: Vec<String> = frames
            .iter()
            .filter(|f| f["event"] == "connect_lobby")
            .map(|f| f["data"]["user"]["id"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    // One unknown id fails the whole request.
    b.request(
        "use_action",
        act("lobbys", &lobby, "addUsers", json!([[cid, unknown_uuid()]])),
    )
    .await
    .err("not_found");
    c.expect_no_event("connect_lobby", QUIET).await;

    let r = b
        .request(
            "use_action",
            act("lobbys", &lobby, "addUsers", json!([[cid, did]])),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "addUsers");
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    assert_eq!(
        joins(b.take_events_before("typing_message").await),
        Vec::<String>::new(),
        "not to the requester"
    );
    for x in [&mut c, &mut d] {
        let me = x.id().to_string();
        let seen = joins(x.take_events_before("typing_message").await);
        assert!(
            seen.contains(&me),
            "an added user hears of its own join: {seen:?}"
        );
        assert!(seen.iter().all(|u| *u == cid || *u == did), "{seen:?}");
    }
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(
            a.expect_event("connect_lobby").await["user"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    seen.sort();
    assert_eq!(seen, sorted(&[&cid, &did]));

    // Adding members again plus one new: only the new one is announced.
    b.request(
        "use_action",
        act("lobbys", &lobby, "addUsers", json!([[cid, did, tid]])),
    )
    .await
    .ok();
    a.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    assert_eq!(
        joins(c.take_events_before("typing_message").await),
        vec![tid.clone()]
    );
    assert_eq!(
        joins(d.take_events_before("typing_message").await),
        vec![tid.clone()]
    );
    assert_eq!(
        joins(tia.take_events_before("typing_message").await),
        vec![tid.clone()]
    );
    let ev = a.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(tid), "{ev}");
    a.expect_no_event("connect_lobby", QUIET).await;
    for bad in [
        json!([]),
        json!([cid]),
        json!([[5]]),
        json!([["x", 5]]),
        json!(null),
    ] {
        b.request("use_action", act("lobbys", &lobby, "addUsers", bad))
            .await
            .err("bad_request");
    }
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["userCount"], json!(5), "{g}");
}

async fn add_user_respects_size_limit(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let b = t.user("bob").await;
    let c = t.user("cid").await;
    let d = t.user("dee").await;
    let (bid, cid, did) = (b.id().to_string(), c.id().to_string(), d.id().to_string());
    let lobby = sid(&create_lobby(&mut a, json!({"sizeLimit": 2})).await);
    a.request(
        "use_action",
        act("lobbys", &lobby, "addUsers", json!([[bid, cid]])),
    )
    .await
    .err("lobby_full");
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(
        g["data"]["data"]["userCount"],
        json!(1),
        "a failed addUsers adds nobody: {g}"
    );
    a.request("use_action", act("lobbys", &lobby, "addUser", json!([bid])))
        .await
        .ok();
    a.request("use_action", act("lobbys", &lobby, "addUser", json!([cid])))
        .await
        .err("lobby_full");
    a.request(
        "use_action",
        act("lobbys", &lobby, "addUsers", json!([[cid, did]])),
    )
    .await
    .err("lobby_full");
    // Re-adding a member when full is still a no-op success.
    a.request("use_action", act("lobbys", &lobby, "addUser", json!([bid])))
        .await
        .ok();
    a.request(
        "use_action",
        act("lobbys", &lobby, "addUsers", json!([[bid]])),
    )
    .await
    .ok();
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["userCount"], json!(2), "{g}");
}

async fn delete_user(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        c,
        mut tia,
        lobby,
        token,
    } = setup(&t, false).await;
    let mut c1 = c;
    let mut c2 = t.same_user(&c1).await;
    let (bid, cid) = (b.id().to_string(), c1.id().to_string());
    a.request("use_action", act("lobbys", &lobby, "addUser", json!([cid])))
        .await
        .ok();
    for x in [&mut b, &mut c1, &mut c2] {
        x.expect_event("connect_lobby").await;
    }
    b.request(
        "use_action",
        act("lobbys", &lobby, "deleteUser", json!([cid])),
    )
    .await
    .err("forbidden");

    let r = a
        .request(
            "use_action",
            act("lobbys", &lobby, "deleteUser", json!([cid])),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "deleteUser");
    assert!(!ids(&r["data"]["data"]["users"]).contains(&cid), "{r}");
    for x in [&mut b, &mut c1, &mut c2] {
        let ev = x.expect_event("disconnect_lobby").await;
        assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
        assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
    }
    send(&mut a, &lobby, "after cid left").await;
    b.expect_event("send_message").await;
    c1.expect_no_event("send_message", QUIET).await;
    c2.expect_no_event("send_message", Duration::ZERO).await;
    c1.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x"}),
    )
    .await
    .err("not_found");
    // Deleting a non-member: no-op, no broadcast.
    a.request(
        "use_action",
        act("lobbys", &lobby, "deleteUser", json!([cid])),
    )
    .await
    .ok();
    // The token holder may delete.
    tia.request(
        "use_action",
        act_tok("lobbys", &lobby, &token, "deleteUser", json!([bid])),
    )
    .await
    .ok();
    let ev = a.expect_event("disconnect_lobby").await;
    assert_eq!(
        ev["user"]["id"],
        json!(bid),
        "the no-op delete of cid broadcast nothing: {ev}"
    );
    let ev = b.expect_event("disconnect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    // A target user that does not exist is not_found (not a no-op "non-member").
    a.request(
        "use_action",
        act("lobbys", &lobby, "deleteUser", json!([unknown_uuid()])),
    )
    .await
    .err("not_found");
}

async fn delete_users(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        tia: _,
        lobby,
        token: _,
    } = setup(&t, false).await;
    let mut a2 = t.same_user(&a).await;
    let (bid, cid) = (b.id().to_string(), c.id().to_string());
    a.request("use_action", act("lobbys", &lobby, "addUser", json!([cid])))
        .await
        .ok();
    b.expect_event("connect_lobby").await;
    c.expect_event("connect_lobby").await;
    a2.expect_event("connect_lobby").await;
    b.request(
        "use_action",
        act("lobbys", &lobby, "deleteUsers", json!([[cid]])),
    )
    .await
    .err("forbidden");
    let r = a
        .request(
            "use_action",
            act("lobbys", &lobby, "deleteUsers", json!([[bid, cid]])),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "deleteUsers");
    assert_eq!(r["data"]["data"]["userCount"], json!(1), "{r}");
    let mut gone = Vec::new();
    for _ in 0..2 {
        let ev = a2.expect_event("disconnect_lobby").await;
        assert_eq!(ev["lobby"]["id"], json!(lobby), "{ev}");
        gone.push(ev["user"]["id"].as_str().unwrap().to_string());
    }
    gone.sort();
    assert_eq!(gone, sorted(&[&bid, &cid]));
    a.expect_no_event("disconnect_lobby", QUIET).await;
    // Each removed user hears of its own removal (and maybe of the other's first).
    for x in [&mut b, &mut c] {
        let me = x.id().to_string();
        let mut seen = Vec::new();
        while !seen.contains(&me) {
            let ev = x.expect_event("disconnect_lobby").await;
            seen.push(ev["user"]["id"].as_str().unwrap().to_string());
        }
    }
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["userCount"], json!(1), "{g}");
    for bad in [json!([]), json!([bid]), json!([[5]])] {
        a.request("use_action", act("lobbys", &lobby, "deleteUsers", bad))
            .await
            .err("bad_request");
    }
    // A target user that does not exist is not_found (not a no-op "non-member").
    a.request(
        "use_action",
        act(
            "lobbys",
            &lobby,
            "deleteUsers",
            json!([[bid, unknown_uuid()]]),
        ),
    )
    .await
    .err("not_found");
}

async fn update_action(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        c: _,
        mut tia,
        lobby,
        token,
    } = setup(&t, false).await;
    let r = a
        .request(
            "use_action",
            act(
                "lobbys",
                &lobby,
                "update",
                json!([{"description": "via action"}]),
            ),
        )
        .await
        .ok();
    assert_action_reply(&r, "lobbys", &lobby, "update");
    assert_eq!(r["data"]["data"]["description"], "via action", "{r}");
    let ev = b.expect_event("update_data").await;
    assert_eq!(ev["type"], "lobbys", "{ev}");
    assert_eq!(ev["data"], json!({"description": "via action"}), "{ev}");
    b.request(
        "use_action",
        act("lobbys", &lobby, "update", json!([{"description": "x"}])),
    )
    .await
    .err("forbidden");
    tia.request(
        "use_action",
        act_tok(
            "lobbys",
            &lobby,
            &token,
            "update",
            json!([{"sizeLimit": 4}]),
        ),
    )
    .await
    .ok();
    let ev = b.expect_event("update_data").await;
    assert_eq!(ev["data"], json!({"sizeLimit": 4}), "{ev}");
    for bad in [
        json!([{}]),
        json!([{"token": "abcdefgh12345678"}]),
        json!([{"users": []}]),
        json!([]),
        json!(["x"]),
    ] {
        a.request("use_action", act("lobbys", &lobby, "update", bad))
            .await
            .err("bad_request");
    }
    // Users.
    let aid = a.id().to_string();
    let r = a
        .request(
            "use_action",
            act("users", &aid, "update", json!([{"username": "annie"}])),
        )
        .await
        .ok();
    assert_eq!(r["data"]["data"]["username"], "annie", "{r}");
    let ev = b.expect_event("update_data").await;
    assert_eq!(ev["type"], "users", "{ev}");
    assert_eq!(ev["id"], json!(aid), "{ev}");
    assert_eq!(ev["data"], json!({"username": "annie"}), "{ev}");
    let bid = b.id().to_string();
    a.request(
        "use_action",
        act("users", &bid, "update", json!([{"username": "x"}])),
    )
    .await
    .err("forbidden");
    a.request(
        "use_action",
        act("users", &aid, "update", json!([{"online": false}])),
    )
    .await
    .err("bad_request");
}

async fn action_validation(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        tia: _,
        lobby,
        token: _,
    } = setup(&t, false).await;
    let (aid, cid) = (a.id().to_string(), c.id().to_string());
    for data in [
        act("lobbys", &lobby, "fly", json!([])),
        act("lobbys", &lobby, "", json!([])),
        json!({"type": "lobbys", "id": lobby, "actionArgs": [true]}),
        json!({"type": "lobbys", "id": lobby, "action": "setVisibility"}),
        json!({"type": "lobbys", "id": lobby, "action": "setVisibility", "actionArgs": true}),
        json!({"type": "lobbys", "id": lobby, "action": 5, "actionArgs": []}),
        json!({"type": "lobby", "id": lobby, "action": "setVisibility", "actionArgs": [true]}),
        json!({"id": lobby, "action": "setVisibility", "actionArgs": [true]}),
        json!({"type": "lobbys", "action": "setVisibility", "actionArgs": [true]}),
        act("lobbys", &lobby, "setOwner", json!([5])),
        act("lobbys", &lobby, "setOwner", json!([])),
        act("lobbys", &lobby, "addUser", json!([[cid]])),
        act("lobbys", &lobby, "deleteUser", json!([null])),
        act("users", &aid, "fly", json!([])),
        act("users", &aid, "setVisibility", json!(["true"])),
    ] {
        a.request("use_action", data).await.err("bad_request");
    }
    // Validation comes before access: strangers and mere members get bad_request too.
    c.request("use_action", act("lobbys", &lobby, "fly", json!([])))
        .await
        .err("bad_request");
    c.request("use_action", act("lobbys", &lobby, "setOwner", json!([5])))
        .await
        .err("bad_request");
    b.request("use_action", act("lobbys", &lobby, "setOwner", json!([5])))
        .await
        .err("bad_request");
    c.request(
        "use_action",
        act("lobbys", "no-such-lobby", "fly", json!([])),
    )
    .await
    .err("bad_request");
    c.request(
        "use_action",
        act("lobbys", "no-such-lobby", "addUser", json!([cid])),
    )
    .await
    .err("not_found");
    b.expect_no_event("update_data", QUIET).await;
    b.expect_no_event("connect_lobby", Duration::ZERO).await;
}

/// Which lobby actions each role may perform (forbidden ones checked with a no-op-ish target).
async fn role_matrix(engine: Engine) {
    let t = env(engine).await;
    let Setup {
        mut a,
        mut b,
        mut c,
        mut tia,
        lobby,
        token,
    } = setup(&t, true).await;
    let (aid, bid, cid) = (a.id().to_string(), b.id().to_string(), c.id().to_string());
    // Permissions as shown in each role's view.
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_perms(&g["data"], LOBBY_OWNER_PERMS);
    let g = b
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_perms(&g["data"], LOBBY_MEMBER_PERMS);
    let g = c
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_perms(&g["data"], &[]);
    let g = tia
        .request(
            "get_data",
            json!({"type": "lobbys", "id": lobby, "token": token}),
        )
        .await
        .ok();
    assert_perms(&g["data"], LOBBY_TOKEN_PERMS);

    // Member: everything but addUser/addUsers is forbidden.
    for (action, args) in [
        ("setOwner", json!([bid])),
        ("setToken", json!([null])),
        ("setVisibility", json!([true])),
        ("deleteUser", json!([aid])),
        ("deleteUsers", json!([[aid]])),
        ("update", json!([{"description": "x"}])),
    ] {
        b.request("use_action", act("lobbys", &lobby, action, args))
            .await
            .err("forbidden");
    }
    // Other (can see the visible lobby): everything forbidden.
    for (action, args) in [
        ("setOwner", json!([cid])),
        ("setToken", json!([null])),
        ("setVisibility", json!([true])),
        ("addUser", json!([cid])),
        ("addUsers", json!([[cid]])),
        ("deleteUser", json!([bid])),
        ("deleteUsers", json!([[bid]])),
        ("update", json!([{"description": "x"}])),
    ] {
        c.request("use_action", act("lobbys", &lobby, action, args))
            .await
            .err("forbidden");
    }
    // Users: only the user itself.
    for (action, args) in [
        ("setToken", json!([null])),
        ("setVisibility", json!([true])),
        ("update", json!([{"username": "x"}])),
    ] {
        b.request("use_action", act("users", &aid, action, args.clone()))
            .await
            .err("forbidden");
        c.request("use_action", act("users", &aid, action, args.clone()))
            .await
            .err("not_found");
    }
    b.expect_no_event("update_data", QUIET).await;
    let g = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["userCount"], json!(2), "{g}");
    assert_eq!(g["data"]["owner"]["id"], json!(aid), "{g}");
}
