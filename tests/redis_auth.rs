//! Redis with authentication: a password (`requirepass`, URL
//! `redis://:pass@host:port`) and an ACL user (`redis://user:pass@…`). A
//! gateway with the right credentials serves across two nodes; one with
//! wrong credentials stops at start with a clear message and a non-zero
//! exit; the password never appears in the log.

mod support;

use serde_json::json;
use std::time::Duration;
use support::{Gateway, GatewayOpts, RedisServer, WsClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "s3cret-pa55";

/// A redis-server that requires a password.
struct AuthRedis {
    /// Killed on drop.
    _redis: RedisServer,
    port: u16,
}

impl AuthRedis {
    async fn start() -> AuthRedis {
        let redis = RedisServer::start_with(&["--requirepass", PASSWORD]).await;
        let port = redis.port();
        let r = AuthRedis {
            _redis: redis,
            port,
        };
        assert_eq!(
            r.command(Some(PASSWORD), &["PING"]).await.as_deref(),
            Some("+PONG\r\n"),
            "the password is required and works"
        );
        r
    }

    /// One command over RESP, after AUTH with `password` when given.
    async fn command(&self, password: Option<&str>, args: &[&str]) -> Option<String> {
        let attempt = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .ok()?;
            let mut out = String::new();
            let mut send = |args: &[&str]| {
                out.push_str(&format!("*{}\r\n", args.len()));
                for a in args {
                    out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
                }
            };
            if let Some(p) = password {
                send(&["AUTH", p]);
            }
            send(args);
            s.write_all(out.as_bytes()).await.ok()?;
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            // AUTH's +OK first (when sent), then the command's reply.
            let want_lines = if password.is_some() { 2 } else { 1 };
            while got.iter().filter(|&&b| b == b'\n').count() < want_lines {
                let n = s.read(&mut buf).await.ok()?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&got).into_owned();
            Some(match password {
                Some(_) => text.split_once("\r\n").map(|(_, r)| r.to_owned())?,
                None => text,
            })
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .ok()
            .flatten()
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}", self.port)
    }
}

/// Login on node 0 and node 1, one lobby, a message each way.
async fn round_trip(n0: &Gateway, n1: &Gateway) {
    let mut a = WsClient::connect(&n0.ws_url()).await;
    a.login("ann").await;
    let mut b = WsClient::connect(&n1.ws_url()).await;
    let (bid, _) = b.login("bob").await;
    let lobby = a
        .request("connect_lobby", json!({"lobby": {"visibility": true}}))
        .await
        .ok()["lobby"]["id"]
        .clone();
    b.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    assert_eq!(
        a.expect_event("connect_lobby").await["user"]["id"],
        json!(bid)
    );
    let m = a
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "over auth"}),
        )
        .await
        .ok();
    let ev = b.expect_event("send_message").await;
    assert_eq!(ev["message"]["id"], m["message"]["id"], "{ev}");
    b.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "back"}),
    )
    .await
    .ok();
    assert_eq!(
        a.expect_event("send_message").await["message"]["data"]["content"],
        "back"
    );
}

fn assert_log_hides(gw: &Gateway, secret: &str) {
    let log = std::fs::read_to_string(gw.log_path()).unwrap_or_default();
    assert!(
        !log.contains(secret),
        "the gateway log shows the Redis password:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_in_the_url_authenticates() {
    let redis = AuthRedis::start().await;
    // Without AUTH, Redis refuses: the server really requires the password.
    let refused = redis.command(None, &["PING"]).await.unwrap_or_default();
    assert!(refused.starts_with("-NOAUTH"), "{refused}");
    let opts = GatewayOpts::redis(redis.url("", PASSWORD))
        .arg("--log-format")
        .arg("text");
    let mut env = opts.env.clone();
    env.push(("RUST_LOG".into(), "debug".into()));
    let opts = GatewayOpts { env, ..opts };
    let n0 = Gateway::start(opts.clone().node_id("auth-0")).await;
    let n1 = Gateway::start(opts.node_id("auth-1")).await;
    round_trip(&n0, &n1).await;
    // Both nodes are registered in the authenticated Redis.
    let nodes = redis
        .command(Some(PASSWORD), &["SMEMBERS", "lobbyd:nodes"])
        .await
        .unwrap_or_default();
    assert!(
        nodes.contains("auth-0") && nodes.contains("auth-1"),
        "{nodes}"
    );
    assert_log_hides(&n0, PASSWORD);
    assert_log_hides(&n1, PASSWORD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_and_password_in_the_url_authenticate() {
    let redis = AuthRedis::start().await;
    let ok = redis
        .command(
            Some(PASSWORD),
            &[
                "ACL",
                "SETUSER",
                "lobby",
                "on",
                ">acl-pa55",
                "~*",
                "&*",
                "+@all",
            ],
        )
        .await
        .unwrap_or_default();
    assert!(ok.starts_with("+OK"), "{ok}");
    let opts = GatewayOpts::redis(redis.url("lobby", "acl-pa55"));
    let n0 = Gateway::start(opts.clone().node_id("acl-0")).await;
    let n1 = Gateway::start(opts.node_id("acl-1")).await;
    round_trip(&n0, &n1).await;
    assert_log_hides(&n0, "acl-pa55");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_password_stops_start_with_a_clear_message() {
    let redis = AuthRedis::start().await;
    let urls = [
        redis.url("", "wrong-pa55"),
        format!("redis://127.0.0.1:{}", redis.port),
        redis.url("nobody", "wrong-pa55"),
    ];
    for url in urls {
        let mut gw = Gateway::spawn(&GatewayOpts::redis(url.clone()));
        let status = gw
            .wait_exit(Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("{url}: the gateway kept running with bad credentials"));
        assert!(!status.success(), "{url}: exit status {status}");
        let log = std::fs::read_to_string(gw.log_path()).unwrap_or_default();
        let lower = log.to_lowercase();
        assert!(
            ["auth", "password", "wrongpass"]
                .iter()
                .any(|w| lower.contains(w)),
            "{url}: the message does not say that authentication failed:\n{log}"
        );
        assert!(
            !log.contains("wrong-pa55"),
            "{url}: the log shows the password:\n{log}"
        );
    }
}
