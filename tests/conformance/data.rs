//! get_data and get_all_data: the access matrix, levels, pagination.

use crate::common::*;

engine_tests!(
    get_data_users_by_level,
    get_data_lobbys_by_level,
    get_data_messages_by_level,
    get_data_validation,
    get_all_data_users_visible_set,
    get_all_data_users_pagination,
    get_all_data_lobbys_visible_set_and_pages,
    get_all_data_messages_history_pages_and_after,
    get_all_data_validation,
);

async fn get(c: &mut WsClient, ty: &str, id: &str) -> Value {
    let d = c
        .request("get_data", json!({"type": ty, "id": id}))
        .await
        .ok();
    assert_eq!(d["type"], json!(ty), "{d}");
    d["data"].clone()
}

/// Every page of a get_all_data listing; checks the paging rules on the way.
async fn all_pages(c: &mut WsClient, base: Value, limit: u64) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = base.clone();
        req["limit"] = json!(limit);
        if let Some(cur) = &cursor {
            req["cursor"] = json!(cur);
        }
        let d = c.request("get_all_data", req.clone()).await.ok();
        pages += 1;
        assert_eq!(d["type"], base["type"], "{d}");
        let page = d["datas"]
            .as_array()
            .unwrap_or_else(|| panic!("datas must be an array: {d}"))
            .clone();
        assert!(
            page.len() as u64 <= limit,
            "page larger than limit {limit}: {d}"
        );
        let next = &d["cursor"];
        assert!(
            next.is_null() || next.is_string(),
            "cursor is a string or null: {d}"
        );
        if page.is_empty() {
            assert!(
                next.is_null(),
                "a page is empty only if it is the last: {d}"
            );
        }
        items.extend(page);
        match next.as_str() {
            None => break,
            Some(s) => cursor = Some(s.to_string()),
        }
        assert!(pages < 200, "pagination does not end");
    }
    (items, pages)
}

fn assert_ascending_ids(items: &[Value]) {
    let got = ids(&json!(items));
    let mut want = got.clone();
    want.sort();
    want.dedup();
    assert_eq!(
        got, want,
        "listing must be in ascending id order without duplicates"
    );
}

fn level_of<'a>(items: &'a [Value], id: &str) -> &'a str {
    items
        .iter()
        .find(|x| x["id"] == json!(id))
        .unwrap_or_else(|| panic!("{id} missing from {items:?}"))["level"]
        .as_str()
        .unwrap()
}

async fn get_data_users_by_level(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let mut d = t.user("dee").await;
    let (aid, atoken, did) = (
        a.id().to_string(),
        a.token().to_string(),
        d.id().to_string(),
    );
    let (l1, l1_token) = new_lobby(&mut a, false).await;
    let (l2, _) = new_lobby(&mut a, true).await;
    join_with_token(&mut b, &l1, &l1_token).await;

    let me = get(&mut a, "users", &aid).await;
    assert_eq!(me["level"], "private", "{me}");
    assert_eq!(me["data"]["token"], json!(atoken), "{me}");
    assert_eq!(
        id_set(&me["data"]["lobbys"]),
        sorted(&[&l1, &l2]),
        "private: all lobbys: {me}"
    );
    assert_perms(&me, USER_SELF_PERMS);

    let p = get(&mut b, "users", &aid).await;
    assert_eq!(p["level"], "partial", "{p}");
    assert_eq!(p["owner"]["id"], json!(aid), "{p}");
    assert_eq!(p["visibility"], json!(false), "{p}");
    assert_eq!(p["data"]["username"], "ann", "{p}");
    assert_eq!(p["data"]["online"], json!(true), "{p}");
    assert_eq!(
        ids(&p["data"]["lobbys"]),
        vec![l1.clone()],
        "partial: only shared lobbys: {p}"
    );
    assert!(p["data"]["updatedAt"].as_u64().is_some(), "{p}");
    assert!(absent_or_null(&p["data"], "token"), "{p}");
    assert_perms(&p, &[]);

    c.request("get_data", json!({"type": "users", "id": aid}))
        .await
        .err("not_found");
    c.request("get_data", json!({"type": "users", "id": unknown_uuid()}))
        .await
        .err("not_found");
    c.request("get_data", json!({"type": "users", "id": "nobody"}))
        .await
        .err("not_found");
    c.request(
        "get_data",
        json!({"type": "users", "id": aid, "token": format!("nope-{}", unique())}),
    )
    .await
    .err("not_found");

    d.request(
        "use_action",
        json!({"type": "users", "id": did, "action": "setVisibility", "actionArgs": [true]}),
    )
    .await
    .ok();
    let public = get(&mut c, "users", &did).await;
    assert_eq!(public["level"], "public", "{public}");
    assert_eq!(public["visibility"], json!(true), "{public}");
    assert_eq!(public["data"]["username"], "dee", "{public}");
    for hidden in ["token", "online", "lobbys", "updatedAt"] {
        assert!(
            absent_or_null(&public["data"], hidden),
            "public view shows {hidden}: {public}"
        );
    }
    assert_perms(&public, &[]);

    // A user's token gives private level but no permissions.
    let r = c
        .request(
            "get_data",
            json!({"type": "users", "id": aid, "token": atoken}),
        )
        .await
        .ok();
    let tv = &r["data"];
    assert_eq!(tv["level"], "private", "{tv}");
    assert_eq!(tv["data"]["token"], json!(atoken), "{tv}");
    assert_eq!(id_set(&tv["data"]["lobbys"]), sorted(&[&l1, &l2]), "{tv}");
    assert_perms(tv, &[]);
}

async fn get_data_lobbys_by_level(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let (aid, bid) = (a.id().to_string(), b.id().to_string());
    let h = create_lobby(&mut a, json!({"sizeLimit": 5, "description": "h"})).await;
    let (hid, htoken) = (sid(&h), h["data"]["token"].as_str().unwrap().to_string());
    let v = create_lobby(&mut a, json!({"visibility": true, "description": "v"})).await;
    let (vid, vtoken) = (sid(&v), v["data"]["token"].as_str().unwrap().to_string());
    a.request(
        "use_action",
        json!({"type": "lobbys", "id": hid, "action": "addUser", "actionArgs": [bid]}),
    )
    .await
    .ok();

    let own = get(&mut a, "lobbys", &hid).await;
    assert_eq!(own["level"], "private", "{own}");
    assert_eq!(own["data"]["token"], json!(htoken), "{own}");
    assert_eq!(own["data"]["sizeLimit"], json!(5), "{own}");
    assert_perms(&own, LOBBY_OWNER_PERMS);

    let member = get(&mut b, "lobbys", &hid).await;
    assert_eq!(member["level"], "partial", "{member}");
    assert_eq!(member["owner"]["id"], json!(aid), "{member}");
    assert_eq!(member["visibility"], json!(false), "{member}");
    let md = &member["data"];
    assert_eq!(md["userCount"], json!(2), "{member}");
    assert_eq!(md["description"], "h", "{member}");
    assert_eq!(md["sizeLimit"], json!(5), "{member}");
    assert!(md["updatedAt"].as_u64().is_some(), "{member}");
    assert!(absent_or_null(md, "token"), "{member}");
    let users = md["users"].as_array().expect("users").clone();
    assert_eq!(id_set(&md["users"]), sorted(&[&aid, &bid]), "{member}");
    for u in &users {
        assert!(u["username"].is_string(), "users carry username: {member}");
        assert_eq!(u["online"], json!(true), "{member}");
    }
    assert_perms(&member, LOBBY_MEMBER_PERMS);

    c.request("get_data", json!({"type": "lobbys", "id": hid}))
        .await
        .err("not_found");
    c.request("get_data", json!({"type": "lobbys", "id": "no-such-lobby"}))
        .await
        .err("not_found");
    let public = get(&mut c, "lobbys", &vid).await;
    assert_eq!(public["level"], "public", "{public}");
    assert_eq!(public["owner"]["id"], json!(aid), "{public}");
    assert_eq!(public["data"]["userCount"], json!(1), "{public}");
    assert_eq!(public["data"]["description"], "v", "{public}");
    for hidden in ["token", "users", "sizeLimit", "updatedAt"] {
        assert!(
            absent_or_null(&public["data"], hidden),
            "public lobby view shows {hidden}: {public}"
        );
    }
    assert_perms(&public, &[]);

    // Token holders: private level, token-holder permissions, no membership.
    for (id, token) in [(&hid, &htoken), (&vid, &vtoken)] {
        let r = c
            .request(
                "get_data",
                json!({"type": "lobbys", "id": id, "token": token}),
            )
            .await
            .ok();
        assert_eq!(r["data"]["level"], "private", "{r}");
        assert_eq!(r["data"]["data"]["token"], json!(token), "{r}");
        assert_perms(&r["data"], LOBBY_TOKEN_PERMS);
    }
    let r = b
        .request(
            "get_data",
            json!({"type": "lobbys", "id": hid, "token": htoken}),
        )
        .await
        .ok();
    assert_eq!(r["data"]["level"], "private", "{r}");
    assert_perms(&r["data"], LOBBY_TOKEN_PERMS);
    let r = c
        .request(
            "get_data",
            json!({"type": "lobbys", "id": hid, "token": vtoken}),
        )
        .await;
    r.err("not_found");
    c.request(
        "send_message",
        json!({"lobby": {"id": vid}, "content": "x"}),
    )
    .await
    .err("forbidden");
    c.request(
        "get_all_data",
        json!({"type": "messages", "lobby": {"id": vid}}),
    )
    .await
    .err("forbidden");
}

async fn get_data_messages_by_level(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let (lobby, _) = new_lobby(&mut a, true).await;
    let (other, _) = new_lobby(&mut a, true).await;
    join(&mut b, &lobby).await;
    let m1 = sid(&send(&mut a, &lobby, "from ann").await);
    let m2 = sid(&send(&mut b, &lobby, "from bob").await);
    let q = |id: &str, lobby: &str| json!({"type": "messages", "id": id, "lobby": {"id": lobby}});

    let own = a.request("get_data", q(&m1, &lobby)).await.ok();
    assert_eq!(own["type"], "messages", "{own}");
    let own = &own["data"];
    assert_eq!(own["level"], "private", "{own}");
    assert_eq!(own["data"]["content"], "from ann", "{own}");
    assert_eq!(own["data"]["seq"], json!(1), "{own}");
    assert_eq!(own["visibility"], json!(false), "{own}");
    assert_perms(own, &["update"]);
    let other_msg = a.request("get_data", q(&m2, &lobby)).await.ok();
    assert_eq!(other_msg["data"]["level"], "partial", "{other_msg}");
    assert_eq!(other_msg["data"]["owner"]["username"], "bob", "{other_msg}");
    assert_perms(&other_msg["data"], &[]);

    // Never public: a stranger gets not_found even in a visible lobby.
    c.request("get_data", q(&m1, &lobby)).await.err("not_found");
    a.request("get_data", q(&m1, &other)).await.err("not_found");
    a.request("get_data", q(&unknown_uuid(), &lobby))
        .await
        .err("not_found");
    a.request("get_data", json!({"type": "messages", "id": m1}))
        .await
        .err("bad_request");
    // After leaving, even the author cannot read its message.
    b.request("disconnect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    b.request("get_data", q(&m2, &lobby)).await.err("not_found");
    b.request("get_data", q(&m1, &lobby)).await.err("not_found");
}

async fn get_data_validation(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let aid = a.id().to_string();
    let (lobby, _) = new_lobby(&mut a, false).await;
    let bad = [
        json!({"id": aid}),
        json!({"type": "user", "id": aid}),
        json!({"type": "nope", "id": "does-not-exist"}),
        json!({"type": 5, "id": aid}),
        json!({"type": "users"}),
        json!({"type": "users", "id": 5}),
        json!({"type": "users", "id": {"id": aid}}),
        json!({"type": "users", "id": aid, "token": 5}),
        json!({"type": "messages", "id": unknown_uuid(), "lobby": lobby}),
        json!({"type": "messages", "id": unknown_uuid(), "lobby": {"id": 5}}),
        json!({"type": "messages", "id": unknown_uuid()}),
    ];
    for data in bad {
        a.request("get_data", data).await.err("bad_request");
    }
}

async fn get_all_data_users_visible_set(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let mut d = t.user("dee").await;
    let e = t.user("eve").await;
    let ids_ = [a.id(), b.id(), c.id(), d.id(), e.id()].map(str::to_string);
    let [aid, bid, cid, did, eid] = ids_;
    let etoken = e.token().to_string();
    let (lobby, _) = new_lobby(&mut a, true).await;
    join(&mut b, &lobby).await;
    join(&mut c, &lobby).await;
    d.request(
        "use_action",
        json!({"type": "users", "id": did, "action": "setVisibility", "actionArgs": [true]}),
    )
    .await
    .ok();

    let r = a
        .request("get_all_data", json!({"type": "users"}))
        .await
        .ok();
    assert_eq!(r["type"], "users", "{r}");
    assert!(
        r["cursor"].is_null(),
        "one page of 4 with the default limit: {r}"
    );
    let items = r["datas"].as_array().unwrap().clone();
    assert_eq!(
        id_set(&r["datas"]),
        sorted(&[&aid, &bid, &cid, &did]),
        "{r}"
    );
    assert_ascending_ids(&items);
    assert_eq!(level_of(&items, &aid), "private");
    assert_eq!(level_of(&items, &bid), "partial");
    assert_eq!(level_of(&items, &cid), "partial");
    assert_eq!(level_of(&items, &did), "public");

    let r = a
        .request("get_all_data", json!({"type": "users", "token": etoken}))
        .await
        .ok();
    let items = r["datas"].as_array().unwrap().clone();
    assert_eq!(
        id_set(&r["datas"]),
        sorted(&[&aid, &bid, &cid, &did, &eid]),
        "{r}"
    );
    assert_eq!(level_of(&items, &eid), "private");
    assert_ascending_ids(&items);

    // Eve sees herself and Dee only.
    let mut e = t.same_user(&e).await;
    let r = e
        .request("get_all_data", json!({"type": "users"}))
        .await
        .ok();
    assert_eq!(id_set(&r["datas"]), sorted(&[&eid, &did]), "{r}");
}

async fn get_all_data_users_pagination(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let (lobby, _) = new_lobby(&mut a, true).await;
    let mut expected = vec![a.id().to_string()];
    for i in 0..7 {
        let mut c = t.user(&format!("u{i}")).await;
        join(&mut c, &lobby).await;
        expected.push(c.id().to_string());
    }
    expected.sort();
    let (items, pages) = all_pages(&mut a, json!({"type": "users"}), 3).await;
    assert_ascending_ids(&items);
    assert_eq!(
        ids(&json!(items)),
        expected,
        "all 8 users, each once, ascending"
    );
    assert!(
        pages >= 3,
        "8 users with limit 3 take at least 3 pages, got {pages}"
    );
    let (items, pages) = all_pages(&mut a, json!({"type": "users"}), 1).await;
    assert_eq!(ids(&json!(items)), expected);
    assert!(pages >= 8);
    let r = a
        .request("get_all_data", json!({"type": "users", "limit": 500}))
        .await
        .ok();
    assert_eq!(ids(&r["datas"]), expected, "{r}");
    assert!(r["cursor"].is_null(), "{r}");
}

async fn get_all_data_lobbys_visible_set_and_pages(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let (v1, _) = new_lobby(&mut a, true).await;
    let (h1, _) = new_lobby(&mut a, false).await;
    let (v2, _) = new_lobby(&mut b, true).await;
    let (_h2, _) = new_lobby(&mut b, false).await;
    let (h3, h3_token) = new_lobby(&mut b, false).await;
    let (h4, h4_token) = new_lobby(&mut b, false).await;
    join_with_token(&mut a, &h4, &h4_token).await;

    let r = a
        .request("get_all_data", json!({"type": "lobbys"}))
        .await
        .ok();
    assert_eq!(r["type"], "lobbys", "{r}");
    let items = r["datas"].as_array().unwrap().clone();
    assert_eq!(id_set(&r["datas"]), sorted(&[&v1, &h1, &v2, &h4]), "{r}");
    assert_ascending_ids(&items);
    assert_eq!(level_of(&items, &v1), "private");
    assert_eq!(level_of(&items, &h1), "private");
    assert_eq!(level_of(&items, &v2), "public");
    assert_eq!(level_of(&items, &h4), "partial");
    for item in &items {
        if item["level"] != "private" {
            assert!(absent_or_null(&item["data"], "token"), "{item}");
        }
    }

    let (items, pages) = all_pages(&mut a, json!({"type": "lobbys", "token": h3_token}), 2).await;
    assert_ascending_ids(&items);
    assert_eq!(id_set(&json!(items)), sorted(&[&v1, &h1, &v2, &h3, &h4]));
    assert_eq!(level_of(&items, &h3), "private");
    assert!(pages >= 3, "5 lobbys with limit 2: {pages} pages");
}

async fn get_all_data_messages_history_pages_and_after(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let mut b = t.user("bob").await;
    let mut c = t.user("cid").await;
    let (lobby, _) = new_lobby(&mut a, true).await;
    let (hidden, _) = new_lobby(&mut a, false).await;
    join(&mut b, &lobby).await;
    let mut expected = Vec::new();
    for i in 1..=7 {
        let who = if i % 2 == 1 { &mut a } else { &mut b };
        expected.push(sid(&send(who, &lobby, &format!("m{i}")).await));
    }
    let base = json!({"type": "messages", "lobby": {"id": lobby}});
    let seqs = |items: &[Value]| {
        items
            .iter()
            .map(|m| m["data"]["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };

    let r = b.request("get_all_data", base.clone()).await.ok();
    assert_eq!(r["type"], "messages", "{r}");
    assert!(r["cursor"].is_null(), "{r}");
    let items = r["datas"].as_array().unwrap().clone();
    assert_eq!(ids(&r["datas"]), expected, "history in seq order: {r}");
    assert_eq!(seqs(&items), (1..=7).collect::<Vec<_>>());
    for m in &items {
        let mine = m["owner"]["id"] == json!(b.id());
        assert_eq!(m["level"], if mine { "private" } else { "partial" }, "{m}");
        assert_eq!(m["data"]["lobby"]["id"], json!(lobby), "{m}");
    }

    let (items, pages) = all_pages(&mut b, base.clone(), 3).await;
    assert_eq!(ids(&json!(items)), expected);
    assert!(pages >= 3, "{pages}");

    let mut after = base.clone();
    after["after"] = json!(2);
    let r = b.request("get_all_data", after.clone()).await.ok();
    assert_eq!(
        seqs(r["datas"].as_array().unwrap()),
        vec![3, 4, 5, 6, 7],
        "{r}"
    );
    assert!(r["cursor"].is_null(), "{r}");
    after["limit"] = json!(2);
    let r = b.request("get_all_data", after.clone()).await.ok();
    assert_eq!(seqs(r["datas"].as_array().unwrap()), vec![3, 4], "{r}");
    let cursor = r["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("more to come, so a cursor: {r}"))
        .to_string();
    let (rest, _) = {
        // Continue from that cursor (without `after`).
        let mut items = Vec::new();
        let mut cur = Some(cursor.clone());
        let mut pages = 0;
        while let Some(c0) = cur {
            let mut req = base.clone();
            req["limit"] = json!(2);
            req["cursor"] = json!(c0);
            let r = b.request("get_all_data", req).await.ok();
            items.extend(r["datas"].as_array().unwrap().clone());
            cur = r["cursor"].as_str().map(str::to_string);
            pages += 1;
            assert!(pages < 20);
        }
        (items, pages)
    };
    assert_eq!(
        seqs(&rest),
        vec![5, 6, 7],
        "the cursor continues after seq 4"
    );
    for (n, want) in [(0, 7usize), (7, 0), (100, 0)] {
        let mut req = base.clone();
        req["after"] = json!(n);
        let r = b.request("get_all_data", req).await.ok();
        assert_eq!(r["datas"].as_array().unwrap().len(), want, "after {n}: {r}");
        assert!(r["cursor"].is_null(), "after {n}: {r}");
    }

    let mut both = base.clone();
    both["after"] = json!(2);
    both["cursor"] = json!(cursor);
    b.request("get_all_data", both).await.err("bad_request");
    for (k, v) in [
        ("after", json!(-1)),
        ("after", json!("2")),
        ("after", json!(1.5)),
        ("limit", json!(0)),
        ("limit", json!(501)),
        ("limit", json!(-1)),
        ("limit", json!("3")),
        ("limit", json!(2.5)),
        ("cursor", json!(5)),
    ] {
        let mut req = base.clone();
        req[k] = v.clone();
        b.request("get_all_data", req).await.err("bad_request");
    }
    let mut req = base.clone();
    req["limit"] = json!(500);
    let r = b.request("get_all_data", req).await.ok();
    assert_eq!(ids(&r["datas"]), expected);
    b.request("get_all_data", json!({"type": "messages"}))
        .await
        .err("bad_request");
    b.request(
        "get_all_data",
        json!({"type": "messages", "lobby": {"id": "nowhere"}}),
    )
    .await
    .err("not_found");
    c.request("get_all_data", base.clone())
        .await
        .err("forbidden");
    c.request(
        "get_all_data",
        json!({"type": "messages", "lobby": {"id": hidden}}),
    )
    .await
    .err("not_found");
}

async fn get_all_data_validation(engine: Engine) {
    let t = env(engine).await;
    let mut a = t.user("ann").await;
    let bad = [
        json!({}),
        json!({"type": "user"}),
        json!({"type": 1}),
        json!({"type": "users", "limit": 0}),
        json!({"type": "users", "limit": 501}),
        json!({"type": "lobbys", "limit": 0}),
        json!({"type": "lobbys", "limit": 501}),
        json!({"type": "lobbys", "cursor": 5}),
        json!({"type": "users", "token": 5}),
    ];
    for data in bad {
        a.request("get_all_data", data).await.err("bad_request");
    }
    for ty in ["users", "lobbys"] {
        for limit in [1, 500] {
            a.request("get_all_data", json!({"type": ty, "limit": limit}))
                .await
                .ok();
        }
    }
}
