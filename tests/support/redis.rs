//! `redis-server` processes on free ports, for tests that need Redis or
//! stop and restart it.

use super::*;

/// A throwaway `redis-server` without persistence on a free port.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Arguments after the defaults (later ones win in redis-server), kept
    /// for `restart`.
    extra: Vec<String>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        Self::start_with(&[]).await
    }

    /// With more arguments, e.g. `--requirepass` or `--appendonly yes`.
    pub async fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
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

    /// The process id, for signals (SIGSTOP to make Redis hang).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the server; the port stays reserved for `restart`.
    pub fn stop(&mut self) {
        kill_child(&mut self.child);
    }

    /// Start again on the same port (with empty data, unless the extra
    /// arguments turned persistence on).
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
            .args(&self.extra)
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

/// Whether a server answers on `port` (a PING answered `-NOAUTH` counts:
/// the server is up and wants a password).
pub(super) async fn redis_ping(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(true))
    )
}
