//! Several gateway nodes on one Redis: cross-node fan-out, one global seq
//! order per lobby, presence across nodes, node death, Redis outage.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// Nodes started with a short presence TTL, so node death is noticed fast.
const PRESENCE_TTL_MS: u64 = 2000;

async fn three_nodes() -> TestEnv {
    TestEnv::with_opts(
        Engine::Redis,
        3,
        GatewayOpts::default().presence_ttl_ms(PRESENCE_TTL_MS),
    )
    .await
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

async fn new_visible_lobby(c: &mut WsClient) -> String {
    let d = c
        .request("connect_lobby", json!({"lobby": {"visibility": true}}))
        .await
        .ok();
    id_of(&d["lobby"])
}

async fn join(c: &mut WsClient, lobby: &str) {
    c.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_different_nodes_see_each_other() {
    let t = three_nodes().await;
    let mut a = t.user_on(0, "ann").await;
    let mut b = t.user_on(1, "bob").await;
    let mut c = t.user_on(2, "cid").await;
    let (bid, cid) = (b.id().to_string(), c.id().to_string());
    let ctoken = c.token().to_string();
    let lobby = new_visible_lobby(&mut a).await;

    // Joins.
    join(&mut b, &lobby).await;
    assert_eq!(
        a.expect_event("connect_lobby").await["user"]["id"],
        json!(bid)
    );
    join(&mut c, &lobby).await;
    for x in [&mut a, &mut b] {
        let ev = x.expect_event("connect_lobby").await;
        assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
        assert_eq!(ev["user"]["username"], "cid", "{ev}");
    }

    // Messages.
    let m = a
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "hi all"}),
        )
        .await
        .ok();
    let mid = id_of(&m["message"]);
    for x in [&mut b, &mut c] {
        let ev = x.expect_event("send_message").await;
        assert_eq!(ev["message"]["id"], json!(mid), "{ev}");
        assert_eq!(ev["message"]["data"]["seq"], json!(1), "{ev}");
        assert_eq!(ev["message"]["level"], "partial", "{ev}");
        assert_eq!(ev["message"]["data"]["content"], "hi all", "{ev}");
    }

    // Receipts and typing.
    let req = json!({"lobby": {"id": lobby}, "message": {"id": mid}});
    b.request("received_message", req.clone()).await.ok();
    for x in [&mut a, &mut c] {
        let ev = x.expect_event("received_message").await;
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
        assert_eq!(ev["message"]["id"], json!(mid), "{ev}");
    }
    c.request("viewed_message", req.clone()).await.ok();
    for x in [&mut a, &mut b] {
        let ev = x
            .expect_event_without("viewed_message", "received_message")
            .await;
        assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
    }
    b.request(
        "typing_message",
        json!({"lobby": {"id": lobby}, "message": {"id": mid}}),
    )
    .await
    .ok();
    for x in [&mut a, &mut c] {
        let ev = x.expect_event("typing_message").await;
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
        assert_eq!(ev["message"]["id"], json!(mid), "{ev}");
    }
    let g = a
        .request(
            "get_data",
            json!({"type": "messages", "id": mid, "lobby": {"id": lobby}}),
        )
        .await
        .ok();
    assert_eq!(
        id_set(&g["data"]["data"]["received"]),
        sorted(&[&bid, &cid]),
        "{g}"
    );
    assert_eq!(
        id_set(&g["data"]["data"]["viewed"]),
        vec![cid.clone()],
        "{g}"
    );

    // Updates.
    a.request(
        "update_data",
        json!({"type": "lobbys", "id": lobby, "data": {"description": "x"}}),
    )
    .await
    .ok();
    for x in [&mut b, &mut c] {
        let ev = x.expect_event("update_data").await;
        assert_eq!(ev["data"], json!({"description": "x"}), "{ev}");
    }

    // Presence: close on node 2, log in again on node 0, log out on node 1.
    c.close().await;
    for x in [&mut a, &mut b] {
        let ev = x.expect_event("disconnect").await;
        assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
    }
    let mut c = t.client_on(0).await;
    c.login_token(&ctoken).await;
    for x in [&mut a, &mut b] {
        let ev = x.expect_event("login").await;
        assert_eq!(ev["user"]["id"], json!(cid), "{ev}");
    }
    b.request("logout", json!({})).await.ok();
    for x in [&mut a, &mut c] {
        let ev = x.expect_event("logout").await;
        assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    }
    let g = c
        .request("get_data", json!({"type": "users", "id": bid}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["online"], json!(false), "{g}");
    for x in [&mut a, &mut c] {
        x.expect_no_event("login", QUIET).await;
        x.expect_no_event("logout", Duration::ZERO).await;
        x.expect_no_event("disconnect", Duration::ZERO).await;
    }
}

/// What one connection observed: replies to its own sends and the
/// send_message broadcasts, each as (seq, message id), in arrival order.
struct Observed {
    own: Vec<(u64, String)>,
    broadcasts: Vec<(u64, String)>,
}

fn seq_and_id(message: &Value) -> (u64, String) {
    let seq = message["data"]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("message without seq: {message}"));
    (seq, id_of(message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_on_three_nodes_share_one_gapless_order() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 50;
    const TOTAL: u64 = (SENDERS * PER_SENDER) as u64;
    let t = three_nodes().await;
    let mut owner = t.user_on(0, "owner").await;
    let lobby = new_visible_lobby(&mut owner).await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let mut s = t.user_on(i % 3, &format!("sender{i}")).await;
        join(&mut s, &lobby).await;
        senders.push(s);
    }
    // Sender 0's other connection (private view of its own messages) and a silent observer.
    let mut twin = t.same_user_on(2, &senders[0]).await;
    let mut observer = t.user_on(1, "observer").await;
    join(&mut observer, &lobby).await;
    // Settle: the observer's typing is ordered after every join broadcast.
    observer
        .request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    for c in senders.iter_mut().chain([&mut owner, &mut twin]) {
        c.take_events_before("typing_message").await;
    }

    let mut tasks = Vec::new();
    for (i, mut s) in senders.into_iter().enumerate() {
        let lobby = lobby.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for k in 0..PER_SENDER {
                let data = json!({"lobby": {"id": lobby}, "content": format!("s{i}-{k}")});
                acks.push(s.send_request("send_message", data).await);
            }
            let mut own = Vec::new();
            for ack in acks {
                let m = s.wait_reply(ack, "send_message").await.ok();
                own.push(seq_and_id(&m["message"]));
            }
            let mut broadcasts = Vec::new();
            for _ in 0..(TOTAL as usize - PER_SENDER) {
                broadcasts.push(seq_and_id(&s.expect_event("send_message").await["message"]));
            }
            s.expect_no_event("send_message", QUIET).await;
            Observed { own, broadcasts }
        }));
    }
    let mut watchers = Vec::new();
    for (name, mut c) in [("owner", owner), ("twin", twin), ("observer", observer)] {
        watchers.push(tokio::spawn(async move {
            let mut broadcasts = Vec::new();
            for _ in 0..TOTAL {
                let ev = c.expect_event("send_message").await;
                broadcasts.push(seq_and_id(&ev["message"]));
            }
            c.expect_no_event("send_message", QUIET).await;
            (name, broadcasts, c)
        }));
    }

    // One global numbering from the replies.
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    let mut results = Vec::new();
    for task in tasks {
        let o = task.await.expect("sender task");
        for (seq, id) in &o.own {
            assert!(
                by_seq.insert(*seq, id.clone()).is_none(),
                "seq {seq} handed out twice"
            );
        }
        results.push(o);
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=TOTAL).collect::<Vec<_>>(),
        "seq must be 1..={TOTAL} without gaps"
    );
    let distinct: HashSet<&String> = by_seq.values().collect();
    assert_eq!(distinct.len(), TOTAL as usize, "message ids are unique");

    // Every sender saw everyone else's messages in seq order, with the same ids.
    for (i, o) in results.iter().enumerate() {
        let seqs: Vec<u64> = o.broadcasts.iter().map(|(s, _)| *s).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "sender {i} saw broadcasts out of order: {seqs:?}"
        );
        for (seq, id) in o.broadcasts.iter().chain(&o.own) {
            assert_eq!(
                by_seq.get(seq),
                Some(id),
                "sender {i}: seq {seq} names another message"
            );
        }
        let mut all: Vec<u64> = o.broadcasts.iter().chain(&o.own).map(|(s, _)| *s).collect();
        all.sort();
        assert_eq!(
            all,
            (1..=TOTAL).collect::<Vec<_>>(),
            "sender {i} observed every message once"
        );
    }
    // Watchers saw exactly 1, 2, ..., 200 in that order.
    let expected: Vec<(u64, String)> = by_seq.iter().map(|(s, id)| (*s, id.clone())).collect();
    let mut last = None;
    for w in watchers {
        let (name, seen, c) = w.await.expect("watcher task");
        assert_eq!(seen, expected, "{name} must observe the one commit order");
        last = Some(c);
    }
    // History agrees, read through yet another node.
    let mut observer = last.unwrap();
    let r = observer
        .request(
            "get_all_data",
            json!({"type": "messages", "lobby": {"id": lobby}, "limit": 500}),
        )
        .await
        .ok();
    let history: Vec<(u64, String)> = r["datas"]
        .as_array()
        .expect("datas")
        .iter()
        .map(seq_and_id)
        .collect();
    assert_eq!(history, expected, "history in seq order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_users_get_disconnect_after_presence_ttl() {
    let mut t = three_nodes().await;
    let mut a = t.user_on(0, "ann").await;
    let mut b = t.user_on(2, "bob").await;
    let mut x = t.user_on(1, "xavier").await; // only connection: on node 1
    let mut y1 = t.user_on(1, "yvonne").await; // on node 1 and node 2
    let y2 = t.same_user_on(2, &y1).await;
    let (xid, yid) = (x.id().to_string(), y1.id().to_string());
    let lobby = new_visible_lobby(&mut a).await;
    join(&mut b, &lobby).await;
    join(&mut x, &lobby).await;
    join(&mut y1, &lobby).await;
    y1.request("typing_message", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    a.take_events_before("typing_message").await;
    b.take_events_before("typing_message").await;

    t.nodes[1].kill();
    let limit = Duration::from_millis(PRESENCE_TTL_MS) + Duration::from_secs(6);
    for c in [&mut a, &mut b] {
        let ev = c.expect_event_within("disconnect", limit).await;
        assert_eq!(
            ev["user"]["id"],
            json!(xid),
            "only X lost its last connection: {ev}"
        );
    }
    for c in [&mut a, &mut b] {
        c.expect_no_event("disconnect", Duration::from_secs(1))
            .await;
    }
    let g = a
        .request("get_data", json!({"type": "users", "id": xid}))
        .await
        .ok();
    assert_eq!(g["data"]["data"]["online"], json!(false), "{g}");
    let g = a
        .request("get_data", json!({"type": "users", "id": yid}))
        .await
        .ok();
    assert_eq!(
        g["data"]["data"]["online"],
        json!(true),
        "Y is still live on node 2: {g}"
    );
    // The survivors keep working together.
    let m = a
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "still here"}),
        )
        .await
        .ok();
    let mut y2 = y2;
    let ev = y2.expect_event("send_message").await;
    assert_eq!(ev["message"]["id"], m["message"]["id"], "{ev}");
    let ev = b.expect_event("send_message").await;
    assert_eq!(ev["message"]["id"], m["message"]["id"], "{ev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_reaches_every_node() {
    let t = three_nodes().await;
    let mut a = t.user_on(1, "ann").await;
    let mut b0 = t.user_on(0, "bob").await;
    let mut b1 = t.same_user_on(1, &b0).await;
    let mut b2 = t.same_user_on(2, &b0).await;
    let bid = b0.id().to_string();
    let lobby = new_visible_lobby(&mut a).await;
    join(&mut b0, &lobby).await;
    a.expect_event("connect_lobby").await;
    b0.request("logout", json!({"everywhere": true})).await.ok();
    for other in [&mut b1, &mut b2] {
        let f = other.expect_frame("logout").await;
        assert_eq!(f["data"]["user"]["id"], json!(bid), "{f}");
        other.expect_closed().await;
    }
    let ev = a.expect_event("logout").await;
    assert_eq!(ev["user"]["id"], json!(bid), "{ev}");
    a.expect_no_event("logout", QUIET).await;
    a.expect_no_event("disconnect", Duration::ZERO).await;
    assert!(!b0.is_closed());
}

/// Logs in a new user on `node`, retrying while the node answers `unavailable`.
async fn login_when_available(
    t: &TestEnv,
    node: usize,
    name: &str,
    deadline: tokio::time::Instant,
) -> WsClient {
    loop {
        let mut c = t.client_on(node).await;
        let r = c
            .request_within(
                "login",
                json!({ "username": name }),
                Duration::from_secs(10),
            )
            .await;
        if r.is_ok() {
            return c;
        }
        assert_eq!(r.code(), Some("unavailable"), "{:?}", r.frame);
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {node} did not recover from the Redis restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops Redis, checks `unavailable`, restarts it (empty: no persistence).
async fn redis_outage(t: &mut TestEnv) {
    let mut a = t.user_on(0, "ann").await;
    let lobby = new_visible_lobby(&mut a).await;
    let mut fresh = t.client_on(1).await;
    t.redis.as_mut().unwrap().stop();
    a.request_within(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "lost?"}),
        Duration::from_secs(15),
    )
    .await
    .err("unavailable");
    fresh
        .request_within("login", json!({"username": "x"}), Duration::from_secs(15))
        .await
        .err("unavailable");
    for node in &t.nodes {
        assert!(
            node.healthz().await.is_some(),
            "the node keeps answering HTTP while Redis is down"
        );
    }
    t.redis.as_mut().unwrap().restart().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_unavailable_then_recovers() {
    let mut t = TestEnv::new(Engine::Redis, 2).await;
    redis_outage(&mut t).await;
    // Within 20 s, users on both nodes work together again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut u0 = login_when_available(&t, 0, "u0", deadline).await;
        let mut u1 = login_when_available(&t, 1, "u1", deadline).await;
        let lobby = new_visible_lobby(&mut u0).await;
        join(&mut u1, &lobby).await;
        let m = u0
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": "back"}),
            )
            .await
            .ok();
        assert_eq!(m["message"]["data"]["seq"], json!(1), "{m}");
        if let Some(ev) = u1
            .try_expect_event_within("send_message", Duration::from_secs(2))
            .await
        {
            assert_eq!(ev["message"]["id"], m["message"]["id"], "{ev}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cross-node broadcasts did not resume after the Redis restart"
        );
    }
}

/// Once a node answers requests again after a Redis restart, no broadcast of a
/// successful request may be lost (PROTOCOL rule 3): either the request fails
/// with `unavailable`, or every member connection gets the broadcast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broadcast_lost_right_after_redis_restart() {
    let mut t = TestEnv::new(Engine::Redis, 2).await;
    redis_outage(&mut t).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut u0 = login_when_available(&t, 0, "u0", deadline).await;
    let mut u1 = login_when_available(&t, 1, "u1", deadline).await;
    let u1_id = u1
        .request("get_all_data", json!({"type": "users"}))
        .await
        .ok()["datas"][0]["id"]
        .clone();
    let lobby = loop {
        let r = u0
            .request("connect_lobby", json!({"lobby": {"visibility": true}}))
            .await;
        if r.is_ok() {
            break id_of(&r.ok()["lobby"]);
        }
        r.err("unavailable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    loop {
        let r = u1
            .request("connect_lobby", json!({"lobby": {"id": lobby}}))
            .await;
        if r.is_ok() {
            break;
        }
        r.err("unavailable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = u0.expect_event("connect_lobby").await;
    assert_eq!(ev["user"]["id"], u1_id, "{ev}");
}

/// A Redis restart (which loses every key: no persistence) must not make
/// live users look disconnected: `disconnect` means "no live connection left".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spurious_presence_events_after_redis_restart() {
    // Default presence TTL (15 s): heartbeats are slower than reaper sweeps,
    // which is when a wiped Redis makes live nodes look dead.
    let mut t = TestEnv::new(Engine::Redis, 2).await;
    redis_outage(&mut t).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Wait until cross-node broadcasts flow again, then watch presence.
    let (mut u0, mut u1) = loop {
        let mut u0 = login_when_available(&t, 0, "u0", deadline).await;
        let mut u1 = login_when_available(&t, 1, "u1", deadline).await;
        let lobby = new_visible_lobby(&mut u0).await;
        join(&mut u1, &lobby).await;
        u0.request("typing_message", json!({"lobby": {"id": lobby}}))
            .await
            .ok();
        if u1
            .try_expect_event_within("typing_message", Duration::from_secs(2))
            .await
            .is_some()
        {
            break (u0, u1);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broadcasts did not resume"
        );
    };
    // Longer than one heartbeat period (TTL/4) plus one reaper period (TTL/6).
    let watch = Duration::from_secs(7);
    tokio::join!(
        async {
            u0.expect_no_event("disconnect", watch).await;
            u0.expect_no_event("login", Duration::ZERO).await;
        },
        async {
            u1.expect_no_event("disconnect", watch).await;
            u1.expect_no_event("login", Duration::ZERO).await;
        }
    );
}
