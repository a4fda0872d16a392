//! `lobbyd-bench`: a load generator that speaks protocol v1 (and, for the
//! side-by-side comparison, the Socket.IO 4 wire protocol).
//!
//! Modes:
//!
//! - `fanout`: N logged-in clients in L lobbies, S of them senders at a fixed
//!   open-loop schedule; receivers measure end-to-end latency; with
//!   `--server-pids` the CPU and RSS of the server processes.
//! - `idle`: N logged-in connections held open (answering pings); reports
//!   connect rate and server RSS per connection. Spreads the connections
//!   over child processes (the per-process fd limit) and over several
//!   127.0.0.x source addresses (the ephemeral port range).
//!
//! Only loopback (127.0.0.0/8) targets are accepted.

mod fanout;
mod fanout_report;
mod idle;
mod net;
mod proc_stats;
mod proto;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "lobbyd load generator (fan-out latency/CPU and idle-connection RSS)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Fan-out workload: senders publish at a fixed total rate, every lobby
    /// member receives.
    Fanout(fanout::FanoutArgs),
    /// Idle connections: open, log in, join, hold, measure server RSS.
    Idle(idle::IdleArgs),
    /// Internal: one child process of `idle`.
    #[command(hide = true)]
    IdleWorker(idle::WorkerArgs),
}

fn main() {
    let cli = Cli::parse();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async move {
        match cli.mode {
            Mode::Fanout(a) => fanout::run(a).await,
            Mode::Idle(a) => idle::run(a).await,
            Mode::IdleWorker(a) => idle::worker(a).await,
        }
    });
    // Do not wait for thousands of connection tasks to wind down.
    rt.shutdown_background();
    std::process::exit(code);
}

/// Writes a run's report: as JSON to `json_out` when given, and to stdout
/// as JSON or as the mode's table.
pub fn emit<R: serde::Serialize>(
    rep: &R,
    json_out: Option<&str>,
    json: bool,
    print_table: fn(&R),
) -> Result<(), String> {
    let text = serde_json::to_string_pretty(rep).expect("json");
    if let Some(path) = json_out {
        std::fs::write(path, format!("{text}\n")).map_err(|e| format!("{path}: {e}"))?;
    }
    if json {
        println!("{text}");
    } else {
        print_table(rep);
    }
    Ok(())
}
