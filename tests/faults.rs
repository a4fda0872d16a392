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

/// Sends until acked: while the node's pub/sub reconnects, state changes
/// answer `unavailable` (nothing changed) and are retried. Returns the seq.
async fn send_acked(c: &mut support::WsClient, lobby: &str, content: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": content}),
            )
            .await;
        if r.is_ok() {
            return r.ok()["message"]["data"]["seq"].as_u64().unwrap();
        }
        r.err("unavailable");
        assert!(Instant::now() < deadline, "unavailable for 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
        acked.push(send_acked(&mut sender, &lobby, &format!("m{i}")).await);
    }
    // A last break with no message after it: only the reconnect catch-up
    // can deliver what was published meanwhile.
    redis_command(port, &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    for i in 0..5 {
        acked.push(send_acked(&mut sender, &lobby, &format!("tail{i}")).await);
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

// ---------------------------------------------------------------------------
// Helpers for the faults below
// ---------------------------------------------------------------------------

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::{Gateway, GatewayOpts, WsClient};

/// A TCP proxy between the gateways and redis-server that can black-hole
/// traffic: in that mode it accepts and reads but never forwards or
/// answers, like a Redis that hangs or a network partition. Connections
/// that lost traffic to the black hole are reset when it ends (their byte
/// streams are no longer whole); new ones pass normally.
struct HangProxy {
    port: u16,
    black_hole: Arc<AtomicBool>,
    changed: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HangProxy {
    async fn start(upstream: u16) -> HangProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let black_hole = Arc::new(AtomicBool::new(false));
        let (changed, _) = tokio::sync::watch::channel(false);
        let bh = black_hole.clone();
        let ch = changed.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let bh = bh.clone();
                let rx = ch.subscribe();
                tokio::spawn(async move {
                    if let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        proxy_conn(client, server, bh, rx).await;
                    }
                });
            }
        });
        HangProxy {
            port,
            black_hole,
            changed,
            task,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn set_black_hole(&self, on: bool) {
        self.black_hole.store(on, Ordering::SeqCst);
        self.changed.send_replace(on);
    }
}

impl Drop for HangProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_conn(
    mut client: tokio::net::TcpStream,
    mut server: tokio::net::TcpStream,
    black_hole: Arc<AtomicBool>,
    mut changed: tokio::sync::watch::Receiver<bool>,
) {
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut a = vec![0u8; 16 * 1024];
    let mut b = vec![0u8; 16 * 1024];
    let mut tainted = false;
    loop {
        tokio::select! {
            n = cr.read(&mut a) => {
                let Ok(n) = n else { return };
                if n == 0 { return }
                if black_hole.load(Ordering::SeqCst) {
                    tainted = true;
                } else if sw.write_all(&a[..n]).await.is_err() {
                    return;
                }
            }
            n = sr.read(&mut b) => {
                let Ok(n) = n else { return };
                if n == 0 { return }
                if black_hole.load(Ordering::SeqCst) {
                    tainted = true;
                } else if cw.write_all(&b[..n]).await.is_err() {
                    return;
                }
            }
            r = changed.changed() => {
                if r.is_err() { return }
                if !*changed.borrow_and_update() && tainted {
                    // The hang ends: close what it broke.
                    return;
                }
            }
        }
    }
}

/// A redis-server with `appendonly yes`, `appendfsync always` in its own
/// temporary directory, restartable on the same port with its data.
struct DurableRedis {
    redis: support::RedisServer,
    dir: std::path::PathBuf,
}

impl DurableRedis {
    async fn start() -> DurableRedis {
        let dir = std::env::temp_dir().join(format!("lobbyd-aof-{}", support::unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let redis = support::RedisServer::start_with(&[
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
        ])
        .await;
        DurableRedis { redis, dir }
    }

    /// SIGKILL: whatever was fsynced survives.
    fn kill(&mut self) {
        self.redis.stop();
    }

    /// Starts again on the same port, from the AOF.
    async fn spawn(&mut self) {
        self.redis.restart().await;
    }

    fn url(&self) -> String {
        self.redis.url()
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.redis.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn two_nodes(url: &str, ttl_ms: Option<u64>) -> (Gateway, Gateway) {
    let mut opts = GatewayOpts::redis(url.to_string());
    opts.presence_ttl_ms = ttl_ms;
    let mut n0 = Gateway::spawn(&opts.clone().node_id(format!("f0-{}", support::unique())));
    let mut n1 = Gateway::spawn(&opts.node_id(format!("f1-{}", support::unique())));
    n0.wait_ready().await;
    n1.wait_ready().await;
    (n0, n1)
}

/// Every message of the lobby's history, in seq order: (seq, id).
async fn history(c: &mut WsClient, lobby: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let r = c
            .request(
                "get_all_data",
                json!({"type": "messages", "lobby": {"id": lobby}, "after": after, "limit": 500}),
            )
            .await
            .ok();
        let page = r["datas"].as_array().cloned().unwrap_or_default();
        for m in &page {
            let seq = m["data"]["seq"].as_u64().expect("seq");
            out.push((seq, m["id"].as_str().unwrap().to_string()));
            after = seq;
        }
        if r["cursor"].is_null() || page.is_empty() {
            return out;
        }
    }
}

/// Collects `send_message` broadcasts as (seq, id) until `quiet` passes
/// without one or `limit` is reached.
async fn collect_messages(
    c: &mut WsClient,
    quiet: Duration,
    limit: Duration,
) -> Vec<(u64, String)> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match c.try_expect_event_within("send_message", quiet).await {
            Some(ev) => out.push((
                ev["message"]["data"]["seq"].as_u64().expect("seq"),
                ev["message"]["id"].as_str().unwrap().to_string(),
            )),
            None => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------
// (a) Redis hangs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_hang_answers_unavailable_keeps_connections_and_recovers() {
    let redis = support::RedisServer::start().await;
    let proxy = HangProxy::start(redis.port()).await;
    let (n0, n1) = two_nodes(&proxy.url(), None).await;
    let mut a = n0.user("ann").await;
    let mut b = n1.user("bob").await;
    let lobby = format!("hang-{}", support::unique());
    a.join_public(&lobby).await;
    b.join_public(&lobby).await;
    a.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "before"}),
    )
    .await
    .ok();
    b.expect_event("send_message").await;

    proxy.set_black_hole(true);
    let hang_started = Instant::now();
    // Requests on both nodes answer `unavailable` within about two seconds.
    for (name, c) in [("node 0", &mut a), ("node 1", &mut b)] {
        let started = Instant::now();
        c.request_within(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "during"}),
            Duration::from_secs(10),
        )
        .await
        .err("unavailable");
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2600),
            "{name}: unavailable after {took:?}"
        );
        let started = Instant::now();
        c.request_within(
            "get_data",
            json!({"type": "lobbys", "id": lobby}),
            Duration::from_secs(10),
        )
        .await
        .err("unavailable");
        assert!(
            started.elapsed() < Duration::from_millis(2600),
            "{name}: read took {:?}",
            started.elapsed()
        );
    }
    // Hold the hang past the pub/sub ping timeout; connections stay open
    // and answer pings all along.
    while hang_started.elapsed() < Duration::from_secs(6) {
        a.ping(b"alive").await;
        b.ping(b"alive").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !a.is_closed() && !b.is_closed(),
        "a Redis hang closed WebSockets"
    );
    assert_eq!(n0.healthz().await, Some(200));
    // Not ready (503, or no answer within the probe's 1 s).
    let ready = support::http_status(n0.port(), "/readyz").await;
    assert_ne!(ready, Some(200), "ready during a Redis hang");

    // The hang ends: within 5 s a send is acked and reaches the other node.
    proxy.set_black_hole(false);
    let resumed = Instant::now();
    let acked = loop {
        let r = a
            .request_within(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": "after"}),
                Duration::from_secs(5),
            )
            .await;
        if r.is_ok() {
            break r.ok();
        }
        r.err("unavailable");
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "no service 5 s after the hang ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = acked["message"]["id"].clone();
    let left =
        Duration::from_secs(5).saturating_sub(resumed.elapsed()) + Duration::from_millis(500);
    let mut got = Vec::new();
    while let Some(ev) = b.try_expect_event_within("send_message", left).await {
        got.push(ev["message"]["id"].clone());
        if ev["message"]["id"] == id {
            break;
        }
    }
    assert!(
        got.contains(&id),
        "the other node did not deliver the message within 5 s of the hang ending (got {got:?})"
    );
    assert_eq!(support::http_status(n0.port(), "/readyz").await, Some(200));
    // Every acked message is in the history, in one gapless order.
    let h = history(&mut b, &lobby).await;
    let seqs: Vec<u64> = h.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=h.len() as u64).collect::<Vec<_>>());
    assert!(h.iter().any(|(_, i)| json!(i) == id));
}

// ---------------------------------------------------------------------------
// (b) Redis restarts (AOF, fsync always) under senders on two nodes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_loses_no_acked_message() {
    let mut redis = DurableRedis::start().await;
    let (n0, n1) = two_nodes(&redis.url(), None).await;
    let lobby = format!("aof-{}", support::unique());
    let mut s0 = n0.user("s0").await;
    let mut s1 = n1.user("s1").await;
    let mut near = n0.user("near").await;
    let mut far = n1.user("far").await;
    for c in [&mut s0, &mut s1, &mut near, &mut far] {
        c.join_public(&lobby).await;
    }
    let run_for = Duration::from_secs(9);
    let sender = |mut c: WsClient, tag: &'static str| {
        let lobby = lobby.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (mut acked, mut failed) = (Vec::new(), 0u32);
            let mut i = 0;
            while started.elapsed() < run_for {
                i += 1;
                let r = c
                    .request_within(
                        "send_message",
                        json!({"lobby": {"id": lobby}, "content": format!("{tag}-{i}")}),
                        Duration::from_secs(10),
                    )
                    .await;
                if r.is_ok() {
                    let m = r.ok();
                    acked.push(m["message"]["id"].as_str().unwrap().to_string());
                } else {
                    r.err("unavailable");
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (c, acked, failed)
        })
    };
    let t0 = sender(s0, "n0");
    let t1 = sender(s1, "n1");
    // Members keep reading while the senders run.
    let reader = |mut c: WsClient| {
        tokio::spawn(async move {
            let got =
                collect_messages(&mut c, Duration::from_secs(8), Duration::from_secs(40)).await;
            (c, got)
        })
    };
    let r_near = reader(near);
    let r_far = reader(far);
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.spawn().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.kill();
    redis.spawn().await;
    let (_s0, acked0, failed0) = t0.await.unwrap();
    let (_s1, acked1, failed1) = t1.await.unwrap();
    let (mut near, got_near) = r_near.await.unwrap();
    let (_far, got_far) = r_far.await.unwrap();
    assert!(
        failed0 + failed1 > 0,
        "the restarts were not noticed: no request failed"
    );
    assert!(
        acked0.len() > 10 && acked1.len() > 10,
        "too few acked messages"
    );

    let h = history(&mut near, &lobby).await;
    let seqs: Vec<u64> = h.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=h.len() as u64).collect::<Vec<_>>(),
        "history seqs are gapless"
    );
    let in_history: std::collections::HashSet<&String> = h.iter().map(|(_, i)| i).collect();
    for id in acked0.iter().chain(&acked1) {
        assert!(
            in_history.contains(id),
            "acked message {id} is not in the history"
        );
    }
    // Members that stayed connected got the whole history once, in order.
    for (name, got) in [("near", &got_near), ("far", &got_far)] {
        assert_eq!(
            got,
            &h,
            "{name} did not receive every message exactly once in seq order \
             ({} received, {} in history, acked {}+{}, failed {failed0}+{failed1})",
            got.len(),
            h.len(),
            acked0.len(),
            acked1.len()
        );
    }
}

// ---------------------------------------------------------------------------
// (c) A node is SIGKILLed under traffic
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_is_cleaned_up_while_the_other_serves() {
    const TTL_MS: u64 = 1500;
    let redis = support::RedisServer::start().await;
    let port = redis.port();
    let (n0, mut n1) = two_nodes(&redis.url(), Some(TTL_MS)).await;
    let dead = {
        // The node id is in the gateway's registration; read it from Redis.
        let members = redis_command(port, &["SMEMBERS", "lobbyd:nodes"]).await;
        members
            .split("\r\n")
            .find(|l| l.starts_with("f1-"))
            .unwrap_or_else(|| panic!("node 1 not registered: {members}"))
            .to_string()
    };
    let lobby = format!("kill-{}", support::unique());
    let mut sender = n0.user("sender").await;
    let mut watcher = n0.user("watcher").await;
    let mut victim = n1.user("victim").await;
    let victim_id = victim.id().to_string();
    // A second user of the dead node, with two connections there.
    let mut victim2 = n1.user("victim2").await;
    let token2 = victim2.token().to_string();
    let mut victim2b = WsClient::connect(&n1.ws_url()).await;
    victim2b.login_token(&token2).await;
    for c in [
        &mut sender,
        &mut watcher,
        &mut victim,
        &mut victim2,
        &mut victim2b,
    ] {
        c.join_public(&lobby).await;
    }
    watcher.drain().await;
    // Traffic on both nodes.
    let traffic = {
        let lobby = lobby.clone();
        tokio::spawn(async move {
            let mut acked = 0;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                sender
                    .request(
                        "send_message",
                        json!({"lobby": {"id": lobby}, "content": "tick"}),
                    )
                    .await
                    .ok();
                acked += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Keep the connection: its close would be a `disconnect` too.
            (sender, acked)
        })
    };
    for i in 0..20 {
        victim
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": format!("v{i}")}),
            )
            .await
            .ok();
    }
    n1.kill();
    let killed = Instant::now();
    // Co-members get `disconnect` for both users of the dead node, within the TTL.
    let mut gone = std::collections::HashSet::new();
    let want: std::collections::HashSet<String> =
        [victim_id.clone(), victim2.id().to_string()].into();
    while gone != want {
        let left = Duration::from_millis(TTL_MS + 1000).saturating_sub(killed.elapsed());
        let ev = watcher
            .try_expect_event_within("disconnect", left)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "co-members got `disconnect` for {gone:?} of {want:?} within {:?}",
                    killed.elapsed()
                )
            });
        gone.insert(ev["user"]["id"].as_str().unwrap().to_string());
    }
    let disconnect_after = killed.elapsed();
    // The surviving node served throughout.
    let (_sender, acked) = traffic.await.expect("sender on the surviving node failed");
    assert!(acked > 50, "only {acked} sends acked on the surviving node");
    // Each user got exactly one `disconnect`.
    watcher
        .expect_no_event("disconnect", Duration::from_millis(500))
        .await;
    // Nothing of the dead node is left in Redis.
    let keys = redis_command(port, &["KEYS", &format!("lobbyd:node:{dead}:*")]).await;
    assert_eq!(keys, "*0\r\n", "keys left for dead node {dead}: {keys}");
    let member = redis_command(port, &["SISMEMBER", "lobbyd:nodes", &dead]).await;
    assert_eq!(member, ":0\r\n", "dead node {dead} still in lobbyd:nodes");
    for u in &want {
        let p = redis_command(
            port,
            &["HGET", &format!("lobbyd:{{u:{u}}}:presence"), &dead],
        )
        .await;
        assert_eq!(p, "$-1\r\n", "presence of {u} still counts the dead node");
    }
    let all = redis_command(port, &["KEYS", &format!("*{dead}*")]).await;
    assert_eq!(all, "*0\r\n", "keys naming the dead node: {all}");
    println!("disconnect after {disconnect_after:?}");
}

// ---------------------------------------------------------------------------
// Data loss in Redis (no persistence, or a failover to a lagging replica)
// ---------------------------------------------------------------------------

/// Redis comes back without its data (appendonly no, or a replica promoted
/// before it had the last writes). Seqs of a lobby start again at 1 when
/// the lobby is created again. A node whose members stayed connected must
/// not take the new messages for duplicates of the old ones it delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_recreated_after_redis_data_loss_is_delivered() {
    let mut redis = support::RedisServer::start().await;
    let (n0, n1) = two_nodes(&redis.url(), Some(2000)).await;
    let lobby = format!("loss-{}", support::unique());
    let mut a = n0.user("ann").await;
    let mut b = n1.user("bob").await;
    let mut near = n0.user("near").await;
    for c in [&mut a, &mut b, &mut near] {
        c.join_public(&lobby).await;
    }
    for i in 0..5 {
        a.request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": format!("old{i}")}),
        )
        .await
        .ok();
    }
    assert_eq!(
        collect_messages(&mut b, Duration::from_millis(500), Duration::from_secs(5))
            .await
            .len(),
        5
    );
    assert_eq!(
        collect_messages(
            &mut near,
            Duration::from_millis(500),
            Duration::from_secs(5)
        )
        .await
        .len(),
        5
    );
    redis.restart().await; // empty: every key is gone
                           // The users log in again (their accounts are gone), the lobby is made again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let relogin = |gw: &Gateway, name: &'static str| {
        let url = gw.ws_url();
        async move {
            loop {
                let mut c = WsClient::connect(&url).await;
                let r = c.request("login", json!({"username": name})).await;
                if r.is_ok() {
                    return c;
                }
                assert!(Instant::now() < deadline, "no service after the restart");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut a2 = relogin(&n0, "ann2").await;
    let mut b2 = relogin(&n1, "bob2").await;
    let mut near2 = relogin(&n0, "near2").await;
    for c in [&mut a2, &mut b2, &mut near2] {
        loop {
            let r = c
                .request(
                    "connect_lobby",
                    json!({"lobby": {"id": lobby, "visibility": true}}),
                )
                .await;
            if r.is_ok() {
                break;
            }
            r.err("unavailable");
            assert!(Instant::now() < deadline, "cannot join after the restart");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for i in 0..3 {
        let m = a2
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": format!("new{i}")}),
            )
            .await
            .ok();
        assert_eq!(m["message"]["data"]["seq"], json!(i + 1));
    }
    for (name, c) in [("other node", &mut b2), ("same node", &mut near2)] {
        let got = collect_messages(c, Duration::from_secs(2), Duration::from_secs(10)).await;
        let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            vec![1, 2, 3],
            "{name}: messages of the re-created lobby"
        );
    }
}
