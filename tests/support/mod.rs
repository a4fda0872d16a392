//! Black-box test harness: real `redis-server` and `lobbyd` processes on free
//! ports, killed on Drop, readiness polled with deadlines; a WebSocket client
//! that speaks the `{event, data, ack}` framing of PROTOCOL.md.
//!
//! Every integration test file pulls this in with `mod support;`. Not every
//! file uses every item, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

/// How long a reply or an expected broadcast may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long `expect_no_event` listens by default.
pub const QUIET: Duration = Duration::from_millis(300);
/// How long a process may take to become ready.
const STARTUP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Ports and process plumbing
// ---------------------------------------------------------------------------

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that was free a moment ago and that this process has not handed
/// out before (so two tests of one binary never race for the same port).
pub fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        if port == 6379 {
            continue;
        }
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lobbyd-test-logs");
    std::fs::create_dir_all(&dir).expect("create log dir");
    dir
}

fn log_tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

/// A throwaway `redis-server` without persistence on a free port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
        };
        server.spawn_and_wait().await;
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL the server; the port stays reserved for `restart`.
    pub fn stop(&mut self) {
        kill_child(&mut self.child);
    }

    /// Start again on the same port (with empty data: there is no persistence).
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait().await;
    }

    async fn spawn_and_wait(&mut self) {
        let deadline = Instant::now() + STARTUP;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it installed?)");
        self.child = Some(child);
        loop {
            if redis_ping(self.port).await {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("redis-server on port {} exited early: {status}", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} not ready in time",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn redis_ping(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"+PONG"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(true))
    )
}

// ---------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------

/// How to start one `lobbyd` node.
#[derive(Clone, Debug, Default)]
pub struct GatewayOpts {
    pub redis_url: Option<String>,
    pub node_id: Option<String>,
    pub presence_ttl_ms: Option<u64>,
    pub extra_args: Vec<String>,
    /// Extra environment; `RUST_LOG` here overrides the default `warn`.
    pub env: Vec<(String, String)>,
}

impl GatewayOpts {
    pub fn redis(url: impl Into<String>) -> Self {
        GatewayOpts {
            redis_url: Some(url.into()),
            ..Default::default()
        }
    }
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }
    pub fn presence_ttl_ms(mut self, ms: u64) -> Self {
        self.presence_ttl_ms = Some(ms);
        self
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra_args.push(a.into());
        self
    }
}

/// One running `lobbyd` process.
pub struct Gateway {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Gateway {
    pub async fn start(opts: GatewayOpts) -> Gateway {
        let mut gw = Gateway::spawn(&opts);
        gw.wait_ready().await;
        gw
    }

    /// Spawn without waiting; pair with `wait_ready`.
    pub fn spawn(opts: &GatewayOpts) -> Gateway {
        let port = free_port();
        let log = log_dir().join(format!("lobbyd-{}-{port}.log", std::process::id()));
        let out = File::create(&log).expect("create gateway log");
        let err = out.try_clone().expect("clone log handle");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lobbyd"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        if let Some(url) = &opts.redis_url {
            cmd.args(["--redis-url", url]);
        }
        if let Some(id) = &opts.node_id {
            cmd.args(["--node-id", id]);
        }
        if let Some(ms) = opts.presence_ttl_ms {
            cmd.args(["--presence-ttl-ms", &ms.to_string()]);
        }
        cmd.args(&opts.extra_args);
        cmd.env("RUST_LOG", "warn");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().expect("spawn lobbyd");
        Gateway {
            child: Some(child),
            port,
            log,
        }
    }

    /// The child's process id (None once killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal by name (`TERM`, `INT`, `STOP`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("running gateway");
        let ok = Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -s {name} {pid} failed");
    }

    /// Waits for the child to exit by itself; its status, or None at the deadline.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Poll `GET /healthz` until it answers 200 (20 s deadline).
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "lobbyd on port {} exited before ready: {status}\n--- log {} ---\n{}",
                    self.port,
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            if http_status(self.port, "/healthz").await == Some(200) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "lobbyd on port {} not healthy within {STARTUP:?}\n--- log {} ---\n{}",
                    self.port,
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// SIGKILL: the node dies without any goodbye.
    pub fn kill(&mut self) {
        kill_child(&mut self.child);
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub async fn healthz(&self) -> Option<u16> {
        http_status(self.port, "/healthz").await
    }

    /// A new user named `username`, logged in over a connection to this
    /// node.
    pub async fn user(&self, username: &str) -> WsClient {
        let mut c = WsClient::connect(&self.ws_url()).await;
        c.login(username).await;
        c
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Status code of a raw HTTP/1.1 GET, or None if nothing sensible came back.
/// `GET path` on a loopback port: the whole response (status line,
/// headers, body) as text.
pub async fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .expect("response within 5 s")
        .expect("read response");
    out
}

pub async fn http_status(port: u16, path: &str) -> Option<u16> {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf);
        let mut parts = line.split_whitespace();
        let proto = parts.next()?;
        if !proto.starts_with("HTTP/1.") {
            return None;
        }
        parts.next()?.parse::<u16>().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
}

// ---------------------------------------------------------------------------
// Engines and clusters
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Memory,
    Redis,
}

/// Start `n_nodes` gateways on one engine (memory is always one node).
pub async fn cluster(engine: Engine, n_nodes: usize) -> (Option<RedisServer>, Vec<Gateway>) {
    cluster_with(engine, n_nodes, GatewayOpts::default()).await
}

/// Like `cluster`, with extra options for every node (redis url and node id are filled in).
pub async fn cluster_with(
    engine: Engine,
    n_nodes: usize,
    base: GatewayOpts,
) -> (Option<RedisServer>, Vec<Gateway>) {
    match engine {
        Engine::Memory => (None, vec![Gateway::start(base).await]),
        Engine::Redis => {
            let redis = RedisServer::start().await;
            let mut nodes: Vec<Gateway> = (0..n_nodes.max(1))
                .map(|i| {
                    let mut opts = base.clone();
                    opts.redis_url = Some(redis.url());
                    opts.node_id = Some(format!("node-{i}-{}", unique()));
                    Gateway::spawn(&opts)
                })
                .collect();
            for node in &mut nodes {
                node.wait_ready().await;
            }
            (Some(redis), nodes)
        }
    }
}

/// A started cluster plus round-robin client placement, so that consecutive
/// connections of one test land on different nodes when there are several.
pub struct TestEnv {
    // Field order matters: gateways are killed before Redis.
    pub nodes: Vec<Gateway>,
    pub redis: Option<RedisServer>,
    pub engine: Engine,
    next: AtomicUsize,
}

impl TestEnv {
    pub async fn new(engine: Engine, n_nodes: usize) -> TestEnv {
        TestEnv::with_opts(engine, n_nodes, GatewayOpts::default()).await
    }

    pub async fn with_opts(engine: Engine, n_nodes: usize, opts: GatewayOpts) -> TestEnv {
        let (redis, nodes) = cluster_with(engine, n_nodes, opts).await;
        TestEnv {
            nodes,
            redis,
            engine,
            next: AtomicUsize::new(0),
        }
    }

    pub fn url(&self, node: usize) -> String {
        self.nodes[node % self.nodes.len()].ws_url()
    }

    /// A fresh, not logged-in connection on the next node in turn.
    pub async fn client(&self) -> WsClient {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        WsClient::connect(&self.url(i)).await
    }

    pub async fn client_on(&self, node: usize) -> WsClient {
        WsClient::connect(&self.url(node)).await
    }

    /// A new user, logged in with `username`, on the next node in turn.
    pub async fn user(&self, username: &str) -> WsClient {
        let mut c = self.client().await;
        c.login(username).await;
        c
    }

    pub async fn user_on(&self, node: usize, username: &str) -> WsClient {
        let mut c = self.client_on(node).await;
        c.login(username).await;
        c
    }

    /// Another connection of the user logged in on `of` (next node in turn).
    pub async fn same_user(&self, of: &WsClient) -> WsClient {
        let mut c = self.client().await;
        c.login_token(of.token()).await;
        c
    }

    pub async fn same_user_on(&self, node: usize, of: &WsClient) -> WsClient {
        let mut c = self.client_on(node).await;
        c.login_token(of.token()).await;
        c
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A short string unique within this test process (for lobby ids, tokens, names).
pub fn unique() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{n:x}{nanos:x}", std::process::id())
}

// ---------------------------------------------------------------------------
// Token leak detection
// ---------------------------------------------------------------------------

/// Every token the suite has seen (in a reply or a request) and every string
/// that appeared in any broadcast; the two sets must never meet.
struct Secrets {
    tokens: HashSet<String>,
    broadcast_strings: HashSet<String>,
}

static SECRETS: Mutex<Option<Secrets>> = Mutex::new(None);

fn with_secrets<R>(f: impl FnOnce(&mut Secrets) -> R) -> R {
    let mut guard = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let s = guard.get_or_insert_with(|| Secrets {
        tokens: HashSet::new(),
        broadcast_strings: HashSet::new(),
    });
    f(s)
}

/// Remember a token; panics if it has already appeared in a broadcast.
pub fn register_token(token: &str) {
    if token.len() < 8 {
        return; // too short to be a meaningful secret (used only for bad_request probes)
    }
    let leaked = with_secrets(|s| {
        s.tokens.insert(token.to_string());
        s.broadcast_strings.contains(token)
    });
    assert!(!leaked, "token {token:?} appeared in a broadcast");
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Register every string under a "token" key (and setToken arguments).
fn register_tokens_in(v: &Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "token" {
                    if let Some(t) = x.as_str() {
                        register_token(t);
                    }
                }
                register_tokens_in(x);
            }
        }
        Value::Array(a) => a.iter().for_each(register_tokens_in),
        _ => {}
    }
}

fn has_token_key(v: &Value) -> bool {
    match v {
        Value::Object(o) => o
            .iter()
            .any(|(k, x)| (k == "token" && !x.is_null()) || has_token_key(x)),
        Value::Array(a) => a.iter().any(has_token_key),
        _ => false,
    }
}

/// Every broadcast passes through here: no token key, no known token value.
fn check_broadcast(frame: &Value) {
    assert!(
        !has_token_key(frame),
        "broadcast carries a token field: {frame}"
    );
    let mut strings = Vec::new();
    collect_strings(frame, &mut strings);
    let leaked = with_secrets(|s| {
        let leaked: Vec<String> = strings
            .iter()
            .filter(|x| s.tokens.contains(*x))
            .cloned()
            .collect();
        s.broadcast_strings.extend(strings);
        leaked
    });
    assert!(
        leaked.is_empty(),
        "broadcast leaks token(s) {leaked:?}: {frame}"
    );
}

// ---------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The reply to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The event of the request this answers.
    pub request_event: String,
    /// The whole frame as received.
    pub frame: Value,
}

impl Reply {
    pub fn event(&self) -> &str {
        self.frame["event"].as_str().unwrap_or("")
    }

    pub fn is_ok(&self) -> bool {
        self.event() == self.request_event && self.request_event != "error"
    }

    /// The error code, if this is an error reply.
    pub fn code(&self) -> Option<&str> {
        if self.event() == "error" {
            self.frame["data"]["code"].as_str()
        } else {
            None
        }
    }

    /// Assert success and return `data`.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.is_ok(),
            "expected a successful `{}` reply, got {}",
            self.request_event,
            self.frame
        );
        self.frame.get("data").cloned().unwrap_or(Value::Null)
    }

    /// Assert an error reply with this code, naming the request's event.
    #[track_caller]
    pub fn err(self, code: &str) -> Value {
        assert_eq!(
            self.code(),
            Some(code),
            "expected error `{code}` for `{}`, got {}",
            self.request_event,
            self.frame
        );
        let data = &self.frame["data"];
        assert_eq!(
            data["event"],
            json!(self.request_event),
            "error must name the request's event: {}",
            self.frame
        );
        assert!(
            data["message"].is_string(),
            "error without a message text: {}",
            self.frame
        );
        data.clone()
    }
}

/// A test WebSocket client. Ack-less frames (broadcasts, unparseable-frame
/// errors) are buffered in arrival order until a test asks for them.
pub struct WsClient {
    ws: Ws,
    url: String,
    next_ack: u64,
    events: VecDeque<Value>,
    replies: VecDeque<Value>,
    closed: Option<Option<u16>>,
    user_id: Option<String>,
    token: Option<String>,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _resp) = tokio::time::timeout(TIMEOUT, connect_async(url))
            .await
            .unwrap_or_else(|_| panic!("connect to {url} timed out"))
            .unwrap_or_else(|e| panic!("connect to {url} failed: {e}"));
        WsClient {
            ws,
            url: url.to_string(),
            next_ack: 1,
            events: VecDeque::new(),
            replies: VecDeque::new(),
            closed: None,
            user_id: None,
            token: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The logged-in user's id (panics before `login`).
    pub fn id(&self) -> &str {
        self.user_id.as_deref().expect("client is not logged in")
    }

    pub fn token(&self) -> &str {
        self.token.as_deref().expect("client is not logged in")
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    // -- sending --------------------------------------------------------

    pub async fn try_send_raw(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn send_raw(&mut self, text: &str) {
        if let Err(e) = self.ws.send(Message::text(text.to_string())).await {
            panic!("send failed: {e}");
        }
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send binary");
    }

    /// Send a WebSocket ping and wait for the matching pong (text frames
    /// arriving meanwhile are buffered as usual).
    pub async fn ping(&mut self, payload: &[u8]) {
        self.ws
            .send(Message::Ping(payload.to_vec().into()))
            .await
            .expect("send ping");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.closed.is_some() {
                panic!(
                    "connection closed while waiting for pong{}",
                    self.closed_note()
                );
            }
            let next = match timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("no pong within {TIMEOUT:?}"),
                Ok(n) => n,
            };
            match next {
                Some(Ok(Message::Pong(p))) if p.as_ref() == payload => return,
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    if frame.get("ack").is_some_and(|a| !a.is_null()) {
                        self.replies.push_back(frame);
                    } else {
                        check_broadcast(&frame);
                        self.events.push_back(frame);
                    }
                }
                Some(Ok(Message::Close(cf))) => self.closed = Some(cf.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => self.closed = Some(None),
            }
        }
    }

    /// Send a request with a fresh ack without waiting; returns the ack.
    pub async fn send_request(&mut self, event: &str, data: Value) -> u64 {
        let ack = self.next_ack;
        self.next_ack += 1;
        register_tokens_in(&data);
        if event == "use_action" && data["action"] == "setToken" {
            if let Some(t) = data["actionArgs"][0].as_str() {
                register_token(t);
            }
        }
        let frame = json!({"event": event, "data": data, "ack": ack});
        self.send_raw(&frame.to_string()).await;
        ack
    }

    /// Send a request and wait for its reply (broadcasts seen meanwhile are buffered).
    pub async fn request(&mut self, event: &str, data: Value) -> Reply {
        self.request_within(event, data, TIMEOUT).await
    }

    pub async fn request_within(&mut self, event: &str, data: Value, limit: Duration) -> Reply {
        let ack = self.send_request(event, data).await;
        self.wait_reply_within(ack, event, limit).await
    }

    /// Wait for the reply carrying `ack`.
    pub async fn wait_reply(&mut self, ack: u64, event: &str) -> Reply {
        self.wait_reply_within(ack, event, TIMEOUT).await
    }

    pub async fn wait_reply_within(&mut self, ack: u64, event: &str, limit: Duration) -> Reply {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.replies.iter().position(|f| f["ack"] == json!(ack)) {
                let frame = self.replies.remove(pos).unwrap();
                register_tokens_in(&frame);
                return Reply {
                    request_event: event.to_string(),
                    frame,
                };
            }
            if !self.read_one(deadline).await {
                panic!(
                    "no reply to `{event}` (ack {ack}) within {limit:?}{}; buffered broadcasts: {:?}",
                    self.closed_note(),
                    self.events
                );
            }
        }
    }

    /// The next ack-bearing frame, whatever its ack (for order checks).
    pub async fn next_reply_frame(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(frame) = self.replies.pop_front() {
                register_tokens_in(&frame);
                return frame;
            }
            if !self.read_one(deadline).await {
                panic!("no reply frame within {TIMEOUT:?}{}", self.closed_note());
            }
        }
    }

    // -- receiving ------------------------------------------------------

    fn closed_note(&self) -> String {
        match self.closed {
            Some(code) => format!(" (connection closed, close code {code:?})"),
            None => String::new(),
        }
    }

    /// Read one message into the buffers. Returns false on timeout or when
    /// the connection is (already) closed.
    async fn read_one(&mut self, deadline: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let next = match timeout_at(deadline, self.ws.next()).await {
            Err(_) => return false,
            Ok(n) => n,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("server sent non-JSON text ({e}): {text}"));
                assert!(frame.is_object(), "server sent a non-object frame: {frame}");
                assert!(
                    frame["event"].is_string(),
                    "server frame without event: {frame}"
                );
                if frame.get("ack").is_some_and(|a| !a.is_null()) {
                    self.replies.push_back(frame);
                } else {
                    check_broadcast(&frame);
                    self.events.push_back(frame);
                }
                true
            }
            Some(Ok(Message::Binary(b))) => {
                panic!("server sent a binary message ({} bytes)", b.len())
            }
            Some(Ok(Message::Close(cf))) => {
                self.closed = Some(cf.map(|f| u16::from(f.code)));
                false
            }
            Some(Ok(_)) => true, // ping/pong/raw frames: tungstenite answers pings itself
            Some(Err(_)) | None => {
                if self.closed.is_none() {
                    self.closed = Some(None);
                }
                false
            }
        }
    }

    /// The first buffered-or-arriving ack-less frame named `name` (whole frame).
    pub async fn expect_frame_within(&mut self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == name) {
                return self.events.remove(pos).unwrap();
            }
            if !self.read_one(deadline).await {
                panic!(
                    "expected broadcast `{name}` within {limit:?}{} (user {:?}); buffered: {:?}",
                    self.closed_note(),
                    self.user_id,
                    self.events
                );
            }
        }
    }

    pub async fn expect_frame(&mut self, name: &str) -> Value {
        self.expect_frame_within(name, TIMEOUT).await
    }

    /// Like `expect_event_within`, but returns None on timeout instead of panicking.
    pub async fn try_expect_event_within(&mut self, name: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == name) {
                let frame = self.events.remove(pos).unwrap();
                return Some(frame.get("data").cloned().unwrap_or(Value::Null));
            }
            if !self.read_one(deadline).await {
                return None;
            }
        }
    }

    /// `data` of the first broadcast named `name` (others stay buffered).
    pub async fn expect_event(&mut self, name: &str) -> Value {
        self.expect_event_within(name, TIMEOUT).await
    }

    pub async fn expect_event_within(&mut self, name: &str, limit: Duration) -> Value {
        let frame = self.expect_frame_within(name, limit).await;
        frame.get("data").cloned().unwrap_or(Value::Null)
    }

    /// Panics if a broadcast named `name` is buffered or arrives within `wait`.
    pub async fn expect_no_event(&mut self, name: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(f) = self.events.iter().find(|f| f["event"] == name) {
                panic!(
                    "unexpected broadcast `{name}` (user {:?}): {f}",
                    self.user_id
                );
            }
            if !self.read_one(deadline).await {
                return;
            }
        }
    }

    /// Waits for broadcast `barrier` and panics if a `forbidden` broadcast
    /// came before it. Within one lobby all connections see broadcasts in
    /// commit order, so this proves absence without a fixed wait.
    pub async fn expect_event_without(&mut self, barrier: &str, forbidden: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == barrier) {
                if let Some(f) = self
                    .events
                    .iter()
                    .take(pos)
                    .find(|f| f["event"] == forbidden)
                {
                    panic!(
                        "unexpected broadcast `{forbidden}` before `{barrier}` (user {:?}): {f}",
                        self.user_id
                    );
                }
                let frame = self.events.remove(pos).unwrap();
                return frame.get("data").cloned().unwrap_or(Value::Null);
            }
            if !self.read_one(deadline).await {
                panic!(
                    "expected broadcast `{barrier}`{}; buffered: {:?}",
                    self.closed_note(),
                    self.events
                );
            }
        }
    }

    /// Waits for broadcast `barrier` and returns (removing them) every
    /// broadcast buffered before it, in order; the barrier is consumed too.
    pub async fn take_events_before(&mut self, barrier: &str) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == barrier) {
                let before: Vec<Value> = self.events.drain(..pos).collect();
                self.events.pop_front();
                return before;
            }
            if !self.read_one(deadline).await {
                panic!(
                    "expected broadcast `{barrier}`{}; buffered: {:?}",
                    self.closed_note(),
                    self.events
                );
            }
        }
    }

    /// Broadcasts buffered so far (whole frames), without reading more.
    pub fn buffered(&self) -> Vec<Value> {
        self.events.iter().cloned().collect()
    }

    /// Drop every buffered broadcast and whatever arrives within a short quiet period.
    pub async fn drain(&mut self) {
        loop {
            self.events.clear();
            let deadline = Instant::now() + Duration::from_millis(100);
            if !self.read_one(deadline).await {
                self.events.clear();
                return;
            }
        }
    }

    /// Wait until the server closes the connection; returns the close code
    /// (None if the TCP connection ended without a close frame).
    pub async fn expect_closed(&mut self) -> Option<u16> {
        let deadline = Instant::now() + TIMEOUT;
        while self.closed.is_none() {
            if !self.read_one(deadline).await && self.closed.is_none() {
                panic!(
                    "connection was not closed within {TIMEOUT:?}; buffered: {:?}",
                    self.events
                );
            }
        }
        self.closed.unwrap()
    }

    /// Close cleanly (close handshake) and wait for the server's close.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.read_one(deadline).await {}
    }

    // -- conveniences ---------------------------------------------------

    /// Log in as a new user named `username`; returns (user id, token).
    pub async fn login(&mut self, username: &str) -> (String, String) {
        let data = self
            .request("login", json!({ "username": username }))
            .await
            .ok();
        self.remember_login(&data)
    }

    /// Joins the lobby `id`, creating it public if it does not exist;
    /// panics on a refusal.
    pub async fn join_public(&mut self, id: &str) {
        self.request(
            "connect_lobby",
            json!({"lobby": {"id": id, "visibility": true}}),
        )
        .await
        .ok();
    }

    /// Log in with an existing user's token; returns (user id, token).
    pub async fn login_token(&mut self, token: &str) -> (String, String) {
        let data = self.request("login", json!({ "token": token })).await.ok();
        self.remember_login(&data)
    }

    fn remember_login(&mut self, data: &Value) -> (String, String) {
        let id = data["user"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("login reply without user.id: {data}"));
        let token = data["user"]["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login reply without user.data.token: {data}"));
        self.user_id = Some(id.to_string());
        self.token = Some(token.to_string());
        (id.to_string(), token.to_string())
    }
}

// ---------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------

pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// A generated token: at least 32 hex digits.
pub fn is_generated_token(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The ids of an array of `{id}` objects, in order.
#[track_caller]
pub fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of {{id}}, got {v}"))
        .iter()
        .map(|x| {
            x["id"]
                .as_str()
                .unwrap_or_else(|| panic!("element without id in {v}"))
                .to_string()
        })
        .collect()
}

/// The ids of an array of `{id}` objects, sorted.
#[track_caller]
pub fn id_set(v: &Value) -> Vec<String> {
    let mut out = ids(v);
    out.sort();
    out
}

pub fn sorted(xs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = xs.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Assert an info object's `permissions` as a set.
#[track_caller]
pub fn assert_perms(info: &Value, expected: &[&str]) {
    let mut got: Vec<String> = info["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("info without permissions array: {info}"))
        .iter()
        .map(|p| p.as_str().expect("permission is a string").to_string())
        .collect();
    got.sort();
    assert_eq!(got, sorted(expected), "permissions of {info}");
}

/// A field that "may be left out when null": absent or null.
pub fn absent_or_null(v: &Value, key: &str) -> bool {
    v.get(key).is_none_or(|x| x.is_null())
}

pub const USER_SELF_PERMS: &[&str] = &["setToken", "setVisibility", "update"];
pub const LOBBY_OWNER_PERMS: &[&str] = &[
    "setOwner",
    "setToken",
    "setVisibility",
    "addUser",
    "addUsers",
    "deleteUser",
    "deleteUsers",
    "update",
];
pub const LOBBY_TOKEN_PERMS: &[&str] = &[
    "setVisibility",
    "addUser",
    "addUsers",
    "deleteUser",
    "deleteUsers",
    "update",
];
pub const LOBBY_MEMBER_PERMS: &[&str] = &["addUser", "addUsers"];
