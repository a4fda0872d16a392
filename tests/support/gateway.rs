//! `lobbyd` processes on free ports, their options, and plain HTTP
//! requests to them.

use super::*;

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
