//! login, logout, presence broadcasts (login / logout / disconnect) and renames.

use crate::common::*;

engine_tests!(
    login_creates_user_with_private_info,
    login_without_username_has_no_username,
    login_validates_fields,
    login_with_token_from_second_connection,
    login_with_unknown_token_is_unauthenticated,
    relogin_same_user_is_noop_other_user_conflicts,
    login_broadcast_once_per_comember_connection,
    logout_broadcast_when_last_connection_ends,
    logout_everywhere_closes_other_connections,
    disconnect_broadcast_on_close,
    login_with_token_and_username_renames,
    membership_outlives_connections,
    login_as_other_user_after_logout,
    concurrent_logins_and_closes_count_presence,
    tokens_never_appear_in_logs,
    tokens_never_appear_in_logs_at_global_trace,
);

/// The checks every fresh private user view must pass.
#[track_caller]
fn assert_fresh_private_user(u: &Value) {
    assert_eq!(u["type"], "users", "{u}");
    let id = u["id"]
        .as_str()
        .unwrap_or_else(|| panic!("user without id: {u}"));
    assert!(is_uuid(id), "user id must be a UUID: {u}");
    assert_eq!(u["level"], "private", "{u}");
    assert_eq!(u["owner"]["id"], json!(id), "a user owns itself: {u}");
    assert_eq!(u["visibility"], json!(false), "users start invisible: {u}");
    assert!(
        u["createdAt"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "createdAt in ms: {u}"
    );
    let d = &u["data"];
    assert!(
        is_generated_token(&d["token"]),
        "generated token of >= 32 hex chars: {u}"
    );
    assert_eq!(d["online"], json!(true), "{u}");
    assert_eq!(d["lobbys"], json!([]), "{u}");
    assert!(d["updatedAt"].as_u64().is_some(), "{u}");
    assert_perms(u, USER_SELF_PERMS);
}

async fn login_creates_user_with_private_info(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    let d = c.request("login", json!({"username": "ann"})).await.ok();
    let u = &d["user"];
    assert_fresh_private_user(u);
    assert_eq!(u["data"]["username"], "ann", "{u}");
    let mut c2 = t.client().await;
    let d2 = c2.request("login", json!({"username": "ann"})).await.ok();
    assert_ne!(
        d2["user"]["id"], u["id"],
        "every login without token is a new user"
    );
    assert_ne!(d2["user"]["data"]["token"], u["data"]["token"]);
    // get_data of oneself is the same private view.
    let me = sid(u);
    let g = c
        .request("get_data", json!({"type": "users", "id": me}))
        .await
        .ok();
    assert_eq!(g["type"], "users", "{g}");
    assert_eq!(g["data"]["level"], "private", "{g}");
    assert_eq!(g["data"]["data"]["token"], u["data"]["token"], "{g}");
}

async fn login_without_username_has_no_username(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    let d = c.request("login", json!({})).await.ok();
    assert_fresh_private_user(&d["user"]);
    assert!(
        absent_or_null(&d["user"]["data"], "username"),
        "no username given: {d}"
    );
}

async fn login_validates_fields(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    let bad = [
        json!({"username": ""}),
        json!({"username": "a".repeat(129)}),
        json!({"username": "é".repeat(129)}),
        json!({"username": 5}),
        json!({"username": ["ann"]}),
        json!({"token": 5}),
        json!({"token": {"t": "x"}}),
    ];
    for data in bad {
        c.request("login", data).await.err("bad_request");
    }
    // Nothing happened: still anonymous.
    c.request("logout", json!({})).await.err("unauthenticated");
    // Limits are inclusive and counted in characters.
    for name in ["a".repeat(128), "é".repeat(128), "x".to_string()] {
        let mut c = t.client().await;
        let d = c.request("login", json!({"username": name})).await.ok();
        assert_eq!(d["user"]["data"]["username"], json!(name));
    }
}

async fn login_with_token_from_second_connection(engine: Engine) {
    let t = env(engine).await;
    let mut c1 = t.client().await;
    let (id, token) = c1.login("ann").await;
    let mut c2 = t.client().await;
    let d = c2.request("login", json!({"token": token})).await.ok();
    let u = &d["user"];
    assert_eq!(u["id"], json!(id), "{u}");
    assert_eq!(u["level"], "private", "{u}");
    assert_eq!(u["data"]["token"], json!(token), "{u}");
    assert_eq!(u["data"]["username"], "ann", "{u}");
    assert_perms(u, USER_SELF_PERMS);
    // Both connections act as the same user.
    let (lobby, _) = new_lobby(&mut c2, false).await;
    let l = c1
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(
        l["data"]["level"], "private",
        "owner on another connection: {l}"
    );
}

async fn login_with_unknown_token_is_unauthenticated(engine: Engine) {
    let t = env(engine).await;
    let mut c = t.client().await;
    let bogus = format!("0123456789abcdef0123456789abcdef{}", unique());
    c.request("login", json!({"token": bogus}))
        .await
        .err("unauthenticated");
    c.request("login", json!({"token": bogus, "username": "x"}))
        .await
        .err("unauthenticated");
    c.request("logout", json!({})).await.err("unauthenticated");
    // The connection stays usable.
    c.login("ann").await;
}

async fn relogin_same_user_is_noop_other_user_conflicts(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.client().await;
    let (aid, atoken) = a.login("ann").await;
    let mut b = t.client().await;
    let (_bid, btoken) = b.login("bob").await;

    let d = a.request("login", json!({"token": atoken})).await.ok();
    assert_eq!(d["user"]["id"], json!(aid));
    assert_eq!(
        d["user"]["data"]["username"], "ann",
        "no-op keeps the name: {d}"
    );
    a.request("login", json!({"token": btoken}))
        .await
        .err("conflict");
    a.request("login", json!({"token": btoken, "username": "evil"}))
        .await
        .err("conflict");
    // Without token that would be a new user: another user.
    a.request("login", json!({})).await.err("conflict");
    a.request("login", json!({"username": "new"}))
        .await
        .err("conflict");
    // Still Ann, unchanged; Bob unchanged.
    let g = a
        .request("get_data", json!({"type": "users", "id": aid}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "private", "{g}");
    assert_eq!(g["data"]["data"]["username"], "ann", "{g}");
    let bid = b.id().to_string();
    let g = b
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["username"], "bob", "{g}");
}

async fn login_broadcast_once_per_comember_connection(engine: Engine) {
    let t = env(engine).await;
    let mut a1 = t.user("ann").await;
    let mut a2 = t.same_user(&a1).await;
    let mut b1 = t.user("bob").await;
    let (bid, btoken) = (b1.id().to_string(), b1.token().to_string());
    // Ann and Bob share two lobbies.
    let (l1, _) = new_lobby(&mut a1, true).await;
    let (l2, _) = new_lobby(&mut a1, true).await;
    join(&mut b1, &l1).await;
    join(&mut b1, &l2).await;
    for a in [&mut a1, &mut a2] {
        a.expect_event("connect_lobby").await;
        a.expect_event("connect_lobby").await;
    }
    b1.close().await;
    for a in [&mut a1, &mut a2] {
        let d = a.expect_event("disconnect").await;
        assert_eq!(d["user"]["id"], json!(bid), "{d}");
        a.expect_no_event("disconnect", QUIET).await;
    }

    // Bob's first live connection: one login broadcast per Ann connection.
    let mut b2 = t.client().await;
    b2.login_token(&btoken).await;
    for a in [&mut a1, &mut a2] {
        let d = a.expect_event("login").await;
        assert_eq!(d["user"]["id"], json!(bid), "{d}");
        assert_eq!(d["user"]["username"], "bob", "{d}");
    }
    for a in [&mut a1, &mut a2] {
        a.expect_no_event("login", QUIET).await;
    }
    // A second live connection, or a no-op relogin, is not a login.
    let mut b3 = t.client().await;
    b3.login_token(&btoken).await;
    b2.request("login", json!({"token": btoken})).await.ok();
    a1.expect_no_event("login", QUIET).await;
    a2.expect_no_event("login", QUIET).await;
    // The user's own connections do not get a login broadcast about themselves.
    b2.expect_no_event("login", Duration::ZERO).await;
}

async fn logout_broadcast_when_last_connection_ends(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b1 = t.user("bob").await;
    let mut b2 = t.same_user(&b1).await;
    let bid = b1.id().to_string();
    let btoken = b1.token().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b1, &lobby).await;
    a.expect_event("connect_lobby").await;

    let d = b1.request("logout", json!({})).await.ok();
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    a.expect_no_event("logout", QUIET).await; // Bob is still live on b2
    b1.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x"}),
    )
    .await
    .err("unauthenticated");
    b1.request("logout", json!({})).await.err("unauthenticated");

    b2.request("logout", json!({})).await.ok();
    let d = a.expect_event("logout").await;
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    a.expect_no_event("logout", QUIET).await;
    // Logged-out connections get no lobby broadcasts.
    send(&mut a, &lobby, "anyone?").await;
    b1.expect_no_event("send_message", QUIET).await;
    b2.expect_no_event("send_message", Duration::ZERO).await;
    // Logging in again is a first live connection.
    b1.login_token(&btoken).await;
    let d = a.expect_event("login").await;
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
}

async fn logout_everywhere_closes_other_connections(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b1 = t.user("bob").await;
    let mut b2 = t.same_user(&b1).await;
    let mut b3 = t.same_user(&b1).await;
    let bid = b1.id().to_string();
    let btoken = b1.token().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b1, &lobby).await;
    a.expect_event("connect_lobby").await;

    let d = b1.request("logout", json!({"everywhere": true})).await.ok();
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    for other in [&mut b2, &mut b3] {
        let f = other.expect_frame("logout").await;
        assert!(f.get("ack").is_none(), "{f}");
        assert_eq!(f["data"]["user"]["id"], json!(bid), "{f}");
        other.expect_closed().await;
    }
    let d = a.expect_event("logout").await;
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    a.expect_no_event("logout", QUIET).await;
    a.expect_no_event("disconnect", Duration::ZERO).await;
    // The requester got only its reply, stays open, and may log in again.
    b1.expect_no_event("logout", Duration::ZERO).await;
    assert!(!b1.is_closed());
    b1.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "x"}),
    )
    .await
    .err("unauthenticated");
    let (again, _) = b1.login_token(&btoken).await;
    assert_eq!(again, bid);
    let d = a.expect_event("login").await;
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
}

async fn disconnect_broadcast_on_close(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let b1 = t.user("bob").await;
    let mut b2 = t.same_user(&b1).await;
    let bid = b1.id().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b2, &lobby).await;
    a.expect_event("connect_lobby").await;

    b1.close().await; // clean close handshake, Bob still live on b2
    a.expect_no_event("disconnect", QUIET).await;
    let g = a
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["online"], json!(true), "{g}");

    drop(b2); // abrupt: no close frame
    let d = a.expect_event("disconnect").await;
    assert_eq!(d["user"]["id"], json!(bid), "{d}");
    a.expect_no_event("disconnect", QUIET).await;
    a.expect_no_event("logout", Duration::ZERO).await;
    let g = a
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(g["data"]["level"], "partial", "{g}");
    assert_eq!(g["data"]["data"]["online"], json!(false), "{g}");
    let l = a
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    let users = l["data"]["data"]["users"]
        .as_array()
        .expect("users")
        .clone();
    let bob = users
        .iter()
        .find(|u| u["id"] == json!(bid))
        .expect("Bob stays a member");
    assert_eq!(bob["online"], json!(false), "{l}");
}

async fn login_with_token_and_username_renames(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b1 = t.user("bob").await;
    let bid = b1.id().to_string();
    let btoken = b1.token().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b1, &lobby).await;
    a.expect_event("connect_lobby").await;

    let mut b2 = t.client().await;
    let d = b2
        .request("login", json!({"token": btoken, "username": "bobby"}))
        .await
        .ok();
    assert_eq!(d["user"]["id"], json!(bid));
    assert_eq!(d["user"]["data"]["username"], "bobby", "{d}");
    for c in [&mut a, &mut b1] {
        let u = c.expect_event("update_data").await;
        assert_eq!(u["type"], "users", "{u}");
        assert_eq!(u["id"], json!(bid), "{u}");
        assert_eq!(u["data"], json!({"username": "bobby"}), "{u}");
        assert!(u["updatedAt"].as_u64().is_some(), "{u}");
    }
    a.expect_no_event("login", Duration::ZERO).await; // Bob was already live
    b2.expect_no_event("update_data", QUIET).await;

    // A rename through a relogin on the same connection.
    let d = b1
        .request("login", json!({"token": btoken, "username": "robert"}))
        .await
        .ok();
    assert_eq!(d["user"]["data"]["username"], "robert", "{d}");
    for c in [&mut a, &mut b2] {
        let u = c.expect_event("update_data").await;
        assert_eq!(u["data"], json!({"username": "robert"}), "{u}");
    }
    let g = a
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["username"], "robert", "{g}");
    // An invalid new name fails and changes nothing.
    b1.request("login", json!({"token": btoken, "username": ""}))
        .await
        .err("bad_request");
    a.expect_no_event("update_data", QUIET).await;
}

async fn membership_outlives_connections(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let b = t.user("bob").await;
    let btoken = b.token().to_string();
    let bid = b.id().to_string();
    let (lobby, _) = new_lobby(&mut a, false).await;
    a.request(
        "use_action",
        json!({"type": "lobbys", "id": lobby, "action": "addUser", "actionArgs": [bid]}),
    )
    .await
    .ok();
    b.close().await;
    a.expect_event("disconnect").await;
    let m1 = send(&mut a, &lobby, "while you were away").await;

    let mut b = t.client().await;
    b.login_token(&btoken).await;
    a.expect_event("login").await;
    let m2 = send(&mut a, &lobby, "welcome back").await;
    let got = b.expect_event("send_message").await;
    assert_eq!(got["message"]["id"], m2["id"], "{got}");
    let all = b
        .request(
            "get_all_data",
            json!({"type": "messages", "lobby": {"id": lobby}}),
        )
        .await
        .ok();
    assert_eq!(ids(&all["datas"]), vec![sid(&m1), sid(&m2)], "{all}");
    let u = b
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(
        id_set(&u["data"]["data"]["lobbys"]),
        vec![lobby.clone()],
        "{u}"
    );
}

async fn login_as_other_user_after_logout(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut x = t.user("xena").await;
    let (l_a, _) = new_lobby(&mut a, true).await;
    let (l_b, _) = new_lobby(&mut b, true).await;
    join(&mut x, &l_a).await;
    a.expect_event("connect_lobby").await;
    x.request("logout", json!({})).await.ok();
    a.expect_event("logout").await;
    // The same connection logs in as a new user, Yuri.
    let (yid, _) = x.login("yuri").await;
    join(&mut x, &l_b).await;
    let ev = b.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], json!(yid), "{ev}");
    // Yuri's connection hears Bob's lobby, not Xena's old one.
    send(&mut a, &l_a, "for xena").await;
    send(&mut b, &l_b, "for yuri").await;
    let ev = x.expect_event("send_message").await;
    assert_eq!(ev["message"]["data"]["content"], "for yuri", "{ev}");
    x.expect_no_event("send_message", QUIET).await;
    a.expect_no_event("login", Duration::ZERO).await;
}

async fn concurrent_logins_and_closes_count_presence(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let b = t.user("bob").await;
    let (bid, btoken) = (b.id().to_string(), b.token().to_string());
    let (lobby, _) = new_lobby(&mut a, true).await;
    let mut b = b;
    join(&mut b, &lobby).await;
    a.expect_event("connect_lobby").await;
    b.close().await;
    let ev = a.expect_event("disconnect").await;
    assert_eq!(ev["user"]["id"], json!(bid), "{ev}");

    for round in 0..3 {
        // Six connections log in at once: one login broadcast.
        let mut tasks = Vec::new();
        for i in 0..6 {
            let url = t.url(i);
            let token = btoken.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = WsClient::connect(&url).await;
                c.login_token(&token).await;
                c
            }));
        }
        let mut conns = Vec::new();
        for task in tasks {
            conns.push(task.await.expect("login task"));
        }
        let ev = a.expect_event("login").await;
        assert_eq!(ev["user"]["id"], json!(bid), "round {round}: {ev}");
        // ... and closed at once: one disconnect, after the last one.
        let closes: Vec<_> = conns
            .into_iter()
            .map(|c| tokio::spawn(async move { c.close().await }))
            .collect();
        for c in closes {
            c.await.expect("close task");
        }
        let ev = a.expect_event("disconnect").await;
        assert_eq!(ev["user"]["id"], json!(bid), "round {round}: {ev}");
        a.expect_no_event("login", QUIET).await;
        a.expect_no_event("disconnect", Duration::ZERO).await;
        let g = a
            .request("get_data", json!({"type": "users", "id": bid}))
            .await
            .ok();
        assert_eq!(
            g["data"]["data"]["online"],
            json!(false),
            "round {round}: {g}"
        );
    }
}

/// Runs a gateway with verbose logging, exercises every token path, and
/// greps the log for the tokens (PROTOCOL: never in a log line or trace).
async fn tokens_never_appear_in_logs(engine: Engine) {
    tokens_not_logged_with(engine, "lobbyd=trace,info").await
}

/// Same with every crate at trace: dependency logs (e.g. frame dumps) are
/// log lines of the gateway too.
async fn tokens_never_appear_in_logs_at_global_trace(engine: Engine) {
    tokens_not_logged_with(engine, "trace").await
}

async fn tokens_not_logged_with(engine: Engine, filter: &str) {
    let opts = GatewayOpts {
        env: vec![("RUST_LOG".into(), filter.into())],
        ..Default::default()
    };
    let t = TestEnv::with_opts(engine, 2, opts).await;
    let mut tokens = Vec::new();
    let mut a = t.user("ann").await;
    tokens.push(a.token().to_string());
    let mut a2 = t.same_user(&a).await;
    let given = format!("given-lobby-token-{}", unique());
    tokens.push(given.clone());
    let l = create_lobby(
        &mut a,
        json!({"id": format!("logged-{}", unique()), "token": given}),
    )
    .await;
    let lobby = sid(&l);
    let (l2, l2_token) = new_lobby(&mut a2, false).await;
    tokens.push(l2_token.clone());
    let mut b = t.user("bob").await;
    tokens.push(b.token().to_string());
    join_with_token(&mut b, &lobby, &given).await;
    b.request(
        "connect_lobby",
        json!({"lobby": {"id": l2, "token": "wrong-token-for-the-log-test"}}),
    )
    .await
    .err("forbidden");
    tokens.push("wrong-token-for-the-log-test".to_string());
    let aid = a.id().to_string();
    b.request(
        "get_data",
        json!({"type": "users", "id": aid, "token": tokens[0]}),
    )
    .await
    .ok();
    let set = format!("set-user-token-{}", unique());
    tokens.push(set.clone());
    a.request(
        "use_action",
        json!({"type": "users", "id": aid, "action": "setToken", "actionArgs": [set]}),
    )
    .await
    .ok();
    let r = a
        .request(
            "use_action",
            json!({"type": "lobbys", "id": lobby, "action": "setToken", "actionArgs": [null]}),
        )
        .await
        .ok();
    tokens.push(r["data"]["data"]["token"].as_str().unwrap().to_string());
    let mut x = t.client().await;
    let bogus = format!("bogus-login-token-{}", unique());
    tokens.push(bogus.clone());
    x.request("login", json!({"token": bogus}))
        .await
        .err("unauthenticated");
    x.request("login", json!({"token": set})).await.ok();
    // A malformed frame that carries a token must not be echoed into the log either.
    let raw_secret = format!("raw-secret-token-{}", unique());
    tokens.push(raw_secret.clone());
    x.send_raw(&format!(
        r#"{{"event":"login","data":{{"token":"{raw_secret}"}},"ack":"bad"}}"#
    ))
    .await;
    x.expect_event("error").await;
    x.close().await;
    b.close().await;
    a.expect_event("disconnect").await;
    let logs: Vec<(String, String)> = t
        .nodes
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(n.log_path()).unwrap_or_default();
            (n.log_path().display().to_string(), text)
        })
        .collect();
    assert!(
        logs.iter().any(|(_, text)| !text.is_empty()),
        "trace logging produced no output at all; is RUST_LOG honoured?"
    );
    for (path, text) in &logs {
        for token in &tokens {
            if let Some(line) = text.lines().find(|l| l.contains(token.as_str())) {
                panic!("token {token:?} appears in {path}: {line}");
            }
        }
    }
}
