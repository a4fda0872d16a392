//! The `lobbyd` binary: parse flags, load configuration, serve until
//! SIGINT or SIGTERM.

use clap::Parser;
use lobbyd::config::Config;

/// Command-line flags; each overrides the file and the environment.
#[derive(Parser, Debug)]
#[command(version, about = "lobbyd: real-time chat and data gateway")]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, env = "LOBBYD_CONFIG")]
    config: Option<String>,
    /// Address to listen on.
    #[arg(long)]
    listen: Option<String>,
    /// Redis URL; without it the in-memory engine serves one node.
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's id (default: random).
    #[arg(long)]
    node_id: Option<String>,
    #[arg(long)]
    presence_ttl_ms: Option<u64>,
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    #[arg(long)]
    max_content_bytes: Option<usize>,
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    #[arg(long)]
    ping_timeout_ms: Option<u64>,
    #[arg(long)]
    max_outbound_frames: Option<usize>,
    #[arg(long)]
    rate_limit_per_s: Option<u32>,
    #[arg(long)]
    rate_limit_burst: Option<u32>,
    #[arg(long)]
    max_outbound_bytes: Option<usize>,
    #[arg(long)]
    tcp_notsent_lowat: Option<u32>,
    #[arg(long)]
    write_linger_us: Option<u64>,
    #[arg(long)]
    max_connections: Option<usize>,
    /// Comma-separated allowed browser origins.
    #[arg(long)]
    allowed_origins: Option<String>,
    #[arg(long)]
    max_json_depth: Option<usize>,
    #[arg(long)]
    max_json_values: Option<usize>,
    #[arg(long)]
    shutdown_drain_ms: Option<u64>,
    #[arg(long)]
    presence_grace_ms: Option<u64>,
    /// Serve the chat page at `/` (true/false).
    #[arg(long)]
    serve_page: Option<bool>,
    /// `text` or `json`.
    #[arg(long)]
    log_format: Option<String>,
}

impl Args {
    fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut o = Vec::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                o.push((k, v));
            }
        };
        put("listen", self.listen.clone());
        put("redis_url", self.redis_url.clone());
        put("node_id", self.node_id.clone());
        put(
            "presence_ttl_ms",
            self.presence_ttl_ms.map(|v| v.to_string()),
        );
        put(
            "max_frame_bytes",
            self.max_frame_bytes.map(|v| v.to_string()),
        );
        put(
            "max_content_bytes",
            self.max_content_bytes.map(|v| v.to_string()),
        );
        put(
            "ping_interval_ms",
            self.ping_interval_ms.map(|v| v.to_string()),
        );
        put(
            "ping_timeout_ms",
            self.ping_timeout_ms.map(|v| v.to_string()),
        );
        put(
            "max_outbound_frames",
            self.max_outbound_frames.map(|v| v.to_string()),
        );
        put(
            "rate_limit_per_s",
            self.rate_limit_per_s.map(|v| v.to_string()),
        );
        put(
            "rate_limit_burst",
            self.rate_limit_burst.map(|v| v.to_string()),
        );
        put(
            "max_outbound_bytes",
            self.max_outbound_bytes.map(|v| v.to_string()),
        );
        put(
            "tcp_notsent_lowat",
            self.tcp_notsent_lowat.map(|v| v.to_string()),
        );
        put(
            "write_linger_us",
            self.write_linger_us.map(|v| v.to_string()),
        );
        put("serve_page", self.serve_page.map(|v| v.to_string()));
        put(
            "max_connections",
            self.max_connections.map(|v| v.to_string()),
        );
        put("allowed_origins", self.allowed_origins.clone());
        put("max_json_depth", self.max_json_depth.map(|v| v.to_string()));
        put(
            "max_json_values",
            self.max_json_values.map(|v| v.to_string()),
        );
        put(
            "shutdown_drain_ms",
            self.shutdown_drain_ms.map(|v| v.to_string()),
        );
        put(
            "presence_grace_ms",
            self.presence_grace_ms.map(|v| v.to_string()),
        );
        put("log_format", self.log_format.clone());
        o
    }
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref(), &args.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lobbyd: {e}");
            std::process::exit(2);
        }
    };
    let telemetry = lobbyd::telemetry::init(config.log_format);
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lobbyd: cannot listen on {}: {e}", config.listen);
            std::process::exit(1);
        }
    };
    let result = lobbyd::run(listener, config, signal()).await;
    telemetry.shutdown();
    if let Err(e) = result {
        eprintln!("lobbyd: {e}");
        std::process::exit(1);
    }
}
