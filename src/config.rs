//! Configuration: defaults < file (`--config` / `LOBBYD_CONFIG`) <
//! environment (`LOBBYD_*`) < command-line flags. Read once at start,
//! validated as a whole, then passed in; nothing reads the environment later.

use serde::Deserialize;
use std::net::SocketAddr;

/// Every setting of a node. Field docs give the default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address of HTTP + WebSocket (`127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Redis URL (`redis://`, `rediss://`); absent means the memory engine.
    pub redis_url: Option<String>,
    /// This node's id in presence keys; random when absent.
    pub node_id: Option<String>,
    /// TTL of this node's heartbeat; a dead node's users get `disconnect`
    /// within about this long (15000).
    pub presence_ttl_ms: u64,
    /// Largest WebSocket message; larger closes with 1009 (65536).
    pub max_frame_bytes: usize,
    /// Largest message content in bytes (16384).
    pub max_content_bytes: usize,
    /// Interval between server pings (25000).
    pub ping_interval_ms: u64,
    /// A connection that has not answered a ping within this is closed (20000).
    pub ping_timeout_ms: u64,
    /// Frames queued for one connection before it counts as a slow
    /// consumer and is closed with 1008 (1024).
    pub max_outbound_frames: usize,
    /// Bytes queued for one connection before it counts as a slow
    /// consumer and is closed with 1008 (1048576).
    pub max_outbound_bytes: usize,
    /// Unsent bytes the kernel may hold for one connection
    /// (`TCP_NOTSENT_LOWAT`; 0: the kernel's default, unbounded up to the
    /// send buffer) (16384). Beyond it the socket stops taking writes, so a
    /// client that stops reading fills its own outbound queue and is cut
    /// off, instead of the node copying megabytes into its kernel buffer.
    pub tcp_notsent_lowat: u32,
    /// How long a connection's writer waits for more frames before it
    /// writes, in µs (0: write at once). Fewer writes per delivery for up
    /// to this much added latency; see docs/benchmarks.md.
    pub write_linger_us: u64,
    /// Sustained requests per second per connection (100).
    pub rate_limit_per_s: u32,
    /// Burst of requests per connection (200).
    pub rate_limit_burst: u32,
    /// WebSocket connections this node accepts; over it, upgrades get
    /// HTTP 503 before any work is done (100000).
    pub max_connections: usize,
    /// Browser `Origin`s allowed to open a WebSocket; absent allows all.
    /// Requests without an `Origin` header (non-browser clients) are
    /// always allowed. Refused with HTTP 403.
    pub allowed_origins: Option<Vec<String>>,
    /// Deepest nesting of arrays/objects in a frame (32).
    pub max_json_depth: usize,
    /// Most JSON values (objects, arrays, scalars) in one frame (4096).
    pub max_json_values: usize,
    /// On SIGTERM/SIGINT: `/readyz` turns 503 and upgrades are refused at
    /// once; connections are closed with 1001 after this long (1000).
    pub shutdown_drain_ms: u64,
    /// After a drain, users whose last connection was here get
    /// `disconnect` only if they do not reconnect within this (5000).
    pub presence_grace_ms: u64,
    /// Serve the chat page at `/`; default: on with the memory engine,
    /// off with Redis.
    pub serve_page: Option<bool>,
    /// `text` or `json` log lines (`text`).
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default"),
            redis_url: None,
            node_id: None,
            presence_ttl_ms: 15_000,
            max_frame_bytes: 65_536,
            max_content_bytes: 16_384,
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_outbound_frames: 1024,
            max_outbound_bytes: 1 << 20,
            tcp_notsent_lowat: 16_384,
            write_linger_us: 0,
            rate_limit_per_s: 100,
            rate_limit_burst: 200,
            max_connections: 100_000,
            allowed_origins: None,
            max_json_depth: 32,
            max_json_values: 4096,
            shutdown_drain_ms: 1000,
            presence_grace_ms: 5000,
            serve_page: None,
            log_format: LogFormat::Text,
        }
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Loads from an optional file, the `LOBBYD_*` environment and the
    /// given overrides (flag name, value), then validates.
    pub fn load(file: Option<&str>, overrides: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut b = config::Config::builder();
        if let Some(f) = file {
            b = b.add_source(config::File::with_name(f));
        }
        b = b.add_source(
            config::Environment::with_prefix("LOBBYD")
                .prefix_separator("_")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("allowed_origins"),
        );
        for (k, v) in overrides {
            b = if *k == "allowed_origins" {
                let list: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                b.set_override(*k, list)?
            } else {
                b.set_override(*k, v.clone())?
            };
        }
        let cfg: Config = b.build()?.try_deserialize()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if self.presence_ttl_ms < 300 {
            return bad("presence_ttl_ms", "must be at least 300");
        }
        if self.max_frame_bytes < 1024 {
            return bad("max_frame_bytes", "must be at least 1024");
        }
        if self.max_content_bytes == 0 || self.max_content_bytes >= self.max_frame_bytes {
            return bad(
                "max_content_bytes",
                "must be at least 1 and below max_frame_bytes",
            );
        }
        if self.ping_interval_ms < 100 {
            return bad("ping_interval_ms", "must be at least 100");
        }
        if self.ping_timeout_ms < 100 {
            return bad("ping_timeout_ms", "must be at least 100");
        }
        if self.max_outbound_frames < 16 {
            return bad("max_outbound_frames", "must be at least 16");
        }
        if self.max_outbound_bytes < 2 * self.max_frame_bytes {
            return bad(
                "max_outbound_bytes",
                "must be at least twice max_frame_bytes",
            );
        }
        if self.tcp_notsent_lowat != 0 && self.tcp_notsent_lowat < 1024 {
            return bad("tcp_notsent_lowat", "must be 0 or at least 1024");
        }
        if self.write_linger_us > 100_000 {
            return bad("write_linger_us", "must be at most 100000");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if !(2..=128).contains(&self.max_json_depth) {
            return bad("max_json_depth", "must be in 2..128");
        }
        if self.max_json_values < 16 {
            return bad("max_json_values", "must be at least 16");
        }
        if self.rate_limit_per_s == 0 || self.rate_limit_burst == 0 {
            return bad("rate_limit_per_s", "rate limits must be at least 1");
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://"))
            {
                return bad(
                    "redis_url",
                    "must start with redis://, rediss:// or redis+unix://",
                );
            }
        }
        if let Some(id) = &self.node_id {
            if id.is_empty() || id.len() > 64 || id.contains(['/', ' ']) {
                return bad("node_id", "must be 1..64 characters without '/' or spaces");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn overrides_win_and_bad_values_name_the_key() {
        let c = Config::load(None, &[("presence_ttl_ms", "2000".into())]).unwrap();
        assert_eq!(c.presence_ttl_ms, 2000);
        let e = Config::load(None, &[("presence_ttl_ms", "5".into())]).unwrap_err();
        assert!(e.to_string().contains("presence_ttl_ms"), "{e}");
        let e = Config::load(None, &[("max_frame_bytes", "lots".into())]).unwrap_err();
        assert!(e.to_string().contains("max_frame_bytes"), "{e}");
    }
}
