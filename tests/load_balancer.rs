//! The project's load balancer config (`deploy/nginx/`) run for real: nginx
//! on loopback in front of two lobbyd nodes on one Redis, with the same
//! `lobbyd-proxy.conf` the compose file uses.
//!
//! The test renders a copy of `deploy/nginx/nginx.conf` in a temp dir: the
//! `server` lines of `upstream lobbyd` point at the test's nodes (keeping
//! their parameters), `listen` is a free loopback port, the logs go to
//! files, and temp paths live in the temp dir. Everything else, including
//! every proxy setting, is the project's file as it is.
//!
//! nginx must be installed (`bash .ci/run` installs it from Debian when it
//! is missing); without it these tests fail rather than skip.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio::time::Instant;

const NGINX_STARTUP: Duration = Duration::from_secs(15);

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `LOBBYD_TEST_NGINX`, `/usr/sbin/nginx`, or `nginx` on PATH.
fn nginx_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LOBBYD_TEST_NGINX") {
        return PathBuf::from(p);
    }
    let mut candidates = vec![PathBuf::from("/usr/sbin/nginx")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nginx")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed: the load balancer test needs it \
                 (`apt-get install nginx-light`; `bash .ci/run` does this)"
            )
        })
}

/// Replace the second whitespace-separated word of a directive line (the
/// path of `error_log` / `access_log`, the address of an upstream `server`),
/// keeping its indentation and the rest of the line.
fn replace_second_word(line: &str, with: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut words: Vec<&str> = line.split_whitespace().collect();
    assert!(words.len() >= 2, "directive without argument: {line:?}");
    let last_had_semicolon = words.len() == 2 && words[1].ends_with(';');
    words[1] = with;
    let mut out = format!("{indent}{}", words.join(" "));
    if last_had_semicolon {
        out.push(';');
    }
    out
}

/// The project's nginx.conf adapted to loopback, as described in the module
/// docs. Panics when the file no longer has the lines this relies on, so a
/// changed layout is noticed instead of testing something else.
fn render_nginx_conf(src: &str, dir: &Path, listen: u16, nodes: &[u16]) -> String {
    let d = dir.display();
    let mut out = Vec::new();
    let (mut in_upstream, mut servers, mut listens, mut error_logs, mut access_logs, mut http) =
        (false, 0usize, 0, 0, 0, 0);
    for line in src.lines() {
        let t = line.trim_start();
        let first = t.split_whitespace().next().unwrap_or("");
        if in_upstream {
            if t.starts_with('}') {
                in_upstream = false;
            } else if first == "server" {
                if let Some(port) = nodes.get(servers) {
                    out.push(replace_second_word(line, &format!("127.0.0.1:{port}")));
                }
                servers += 1;
                continue;
            }
        } else if t.starts_with("upstream lobbyd ") || t.starts_with("upstream lobbyd{") {
            in_upstream = true;
        }
        match first {
            "listen" => {
                listens += 1;
                out.push(format!("        listen 127.0.0.1:{listen};"));
            }
            "error_log" => {
                error_logs += 1;
                out.push(replace_second_word(line, &format!("{d}/error.log")));
            }
            "access_log" => {
                access_logs += 1;
                out.push(format!("    access_log {d}/access.log lobbyd_test;"));
            }
            "http" if t.trim_end().ends_with('{') => {
                http += 1;
                out.push(line.to_string());
                out.push(format!(
                    "    log_format lobbyd_test '$request $status upstream=$upstream_addr';\n    \
                     client_body_temp_path {d}/client_body;\n    \
                     proxy_temp_path {d}/proxy;\n    \
                     fastcgi_temp_path {d}/fastcgi;\n    \
                     uwsgi_temp_path {d}/uwsgi;\n    \
                     scgi_temp_path {d}/scgi;"
                ));
            }
            _ => out.push(line.to_string()),
        }
    }
    assert_eq!(
        http, 1,
        "deploy/nginx/nginx.conf: expected one `http {{` block"
    );
    assert_eq!(
        listens, 1,
        "deploy/nginx/nginx.conf: expected one `listen` line"
    );
    assert_eq!(
        error_logs, 1,
        "deploy/nginx/nginx.conf: expected one `error_log` line"
    );
    assert_eq!(
        access_logs, 1,
        "deploy/nginx/nginx.conf: expected one `access_log` line"
    );
    assert!(
        servers >= nodes.len(),
        "deploy/nginx/nginx.conf: `upstream lobbyd` has {servers} server lines, the test needs {}",
        nodes.len()
    );
    out.join("\n") + "\n"
}

/// A running nginx with the project's config; stopped on Drop.
struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nginx {
    fn args(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            "-p".into(),
            format!("{d}/"),
            "-c".into(),
            format!("{d}/nginx.conf"),
            "-e".into(),
            format!("{d}/error.log"),
            "-g".into(),
            format!("daemon off; pid {d}/nginx.pid;"),
        ]
    }

    fn run(&self, extra: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(self.args())
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()))
    }

    fn error_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let out = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        format!("{log}{out}")
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    async fn start(nodes: &[u16]) -> Nginx {
        let bin = nginx_binary();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nginx-{}", unique()));
        std::fs::create_dir_all(&dir).expect("create nginx dir");
        // Worker processes may run as an unprivileged user when the test runs
        // as root: let them reach their temp paths.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        }

        let src_dir = repo_path("deploy/nginx");
        let src = std::fs::read_to_string(src_dir.join("nginx.conf"))
            .expect("read deploy/nginx/nginx.conf");
        // Relative includes (lobbyd-proxy.conf) resolve against the config's
        // directory: copy them verbatim beside the rendered config.
        for line in src.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("include ") {
                let name = rest.trim_end_matches(';').trim();
                if !name.starts_with('/') {
                    std::fs::copy(src_dir.join(name), dir.join(name))
                        .unwrap_or_else(|e| panic!("copy deploy/nginx/{name}: {e}"));
                }
            }
        }
        let port = free_port();
        let conf = render_nginx_conf(&src, &dir, port, nodes);
        std::fs::write(dir.join("nginx.conf"), &conf).expect("write nginx.conf");

        let mut nginx = Nginx {
            bin,
            dir,
            port,
            child: None,
        };

        let test = nginx.run(&["-t"]);
        assert!(
            test.status.success(),
            "nginx -t rejects the rendered config:\n{}{}\n--- config ---\n{conf}",
            String::from_utf8_lossy(&test.stdout),
            String::from_utf8_lossy(&test.stderr)
        );

        let stderr = std::fs::File::create(nginx.dir.join("stderr.log")).expect("stderr log");
        let child = Command::new(&nginx.bin)
            .args(nginx.args())
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("clone"))
            .stderr(stderr)
            .spawn()
            .expect("spawn nginx");
        nginx.child = Some(child);

        let deadline = Instant::now() + NGINX_STARTUP;
        loop {
            if let Some(Ok(Some(status))) = nginx.child.as_mut().map(|c| c.try_wait()) {
                panic!("nginx exited at start: {status}\n{}", nginx.error_log());
            }
            if http_status(nginx.port, "/healthz").await == Some(200) {
                return nginx;
            }
            assert!(
                Instant::now() < deadline,
                "nginx on port {} did not proxy /healthz within {NGINX_STARTUP:?}\n{}",
                nginx.port,
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// The upstream address of every finished `/ws` request (nginx writes
    /// the access log line when the proxied connection ends).
    async fn ws_upstreams(&self, expected: usize) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.access_log();
            let found: Vec<String> = log
                .lines()
                .filter(|l| l.starts_with("GET /ws"))
                .map(|l| {
                    assert!(l.contains(" 101 "), "WebSocket request not upgraded: {l}");
                    l.rsplit("upstream=")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect();
            if found.len() >= expected || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // A fast shutdown through the master, so no worker outlives it.
        let _ = self.run(&["-s", "stop"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                if !std::thread::panicking() {
                    let _ = std::fs::remove_dir_all(&self.dir);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Redis, two nodes, nginx in front of both. Field order: nginx stops first.
struct Stack {
    nginx: Nginx,
    nodes: Vec<Gateway>,
    _redis: RedisServer,
}

async fn stack() -> Stack {
    let redis = RedisServer::start().await;
    let mut nodes: Vec<Gateway> = ["a", "b"]
        .iter()
        .map(|n| {
            Gateway::spawn(&GatewayOpts::redis(redis.url()).node_id(format!("lb-{n}-{}", unique())))
        })
        .collect();
    for n in &mut nodes {
        n.wait_ready().await;
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.port()).collect();
    let nginx = Nginx::start(&ports).await;
    Stack {
        nginx,
        nodes,
        _redis: redis,
    }
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_pass_through_the_load_balancer() {
    let s = stack().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            http_status(s.nginx.port, path).await,
            Some(200),
            "GET {path} through nginx\n{}",
            s.nginx.error_log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_across_two_nodes_through_nginx() {
    let s = stack().await;
    let url = s.nginx.ws_url();

    // least_conn over a shared zone: the second connection goes to the node
    // that does not hold the first one (checked in the access log below).
    let mut ann = WsClient::connect(&url).await;
    let mut bob = WsClient::connect(&url).await;
    ann.login("ann").await;
    bob.login("bob").await;
    let bob_id = bob.id().to_string();

    let lobby = id_of(
        &ann.request("connect_lobby", json!({"lobby": {"visibility": true}}))
            .await
            .ok()["lobby"],
    );
    bob.request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    let joined = ann.expect_event("connect_lobby").await;
    assert_eq!(joined["user"]["id"], json!(bob_id));

    let sent = bob
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "hello through nginx"}),
        )
        .await
        .ok();
    let got = ann.expect_event("send_message").await;
    assert_eq!(got["message"]["id"], sent["message"]["id"]);
    assert_eq!(
        got["message"]["data"]["content"],
        json!("hello through nginx")
    );

    // A larger frame and a ping both make it through the proxy unchanged.
    let big = "x".repeat(16_000);
    ann.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": big}),
    )
    .await
    .ok();
    let got = bob.expect_event("send_message").await;
    assert_eq!(got["message"]["data"]["content"], json!(big));
    bob.ping(b"through-nginx").await;

    ann.close().await;
    bob.close().await;

    let expected: BTreeSet<String> = s
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let used: BTreeSet<String> = s.nginx.ws_upstreams(2).await.into_iter().collect();
    assert_eq!(
        used,
        expected,
        "the two WebSocket connections must be spread over both nodes\n--- access log ---\n{}",
        s.nginx.access_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_skipped() {
    let mut s = stack().await;
    s.nodes[0].kill();
    let url = s.nginx.ws_url();

    // Every new connection lands on the live node, whichever peer nginx
    // tries first.
    let mut clients = Vec::new();
    for i in 0..4 {
        let mut c = WsClient::connect(&url).await;
        c.login(&format!("user{i}")).await;
        clients.push(c);
    }
    let lobby = id_of(
        &clients[0]
            .request("connect_lobby", json!({"lobby": {"visibility": true}}))
            .await
            .ok()["lobby"],
    );
    clients[1]
        .request("connect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    clients[1]
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "still here"}),
        )
        .await
        .ok();
    let got = clients[0].expect_event("send_message").await;
    assert_eq!(got["message"]["data"]["content"], json!("still here"));
    assert_eq!(http_status(s.nginx.port, "/readyz").await, Some(200));
}
