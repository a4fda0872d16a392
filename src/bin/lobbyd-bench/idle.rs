//! Idle mode: N logged-in connections, each a member of one of `lobbies`
//! lobbies, held open for `hold` seconds while the server pings them.
//!
//! One process can hold only RLIMIT_NOFILE sockets, so the parent spawns
//! `idle-worker` children (`--per-process` connections each) and talks to
//! them over stdin/stdout: each prints `READY ok failed secs` when its
//! connections are set up, holds until the parent writes `STOP` (or closes
//! stdin), then prints `DONE alive dropped pings`. Above `--spread-above`
//! connections, connection i binds to source 127.0.0.(2 + i / per-ip).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Target};
use crate::proc_stats;
use crate::proto::{self, Proto};

#[derive(clap::Args, Debug, Clone)]
pub struct IdleArgs {
    /// WebSocket URL of the node under test (comma-separated for several
    /// nodes: connection i goes to url i % n).
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Number of lobbies (default: connections / 10, i.e. 10 members each;
    /// big lobbies make setup quadratic in join broadcasts).
    #[arg(long)]
    pub lobbies: Option<usize>,
    /// Seconds to hold the connections once all are up.
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
    /// Seconds to wait after the last connection before the RSS reading.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
    #[arg(long)]
    pub server_pids: Option<String>,
    /// Connections per child process (each child needs that many fds).
    #[arg(long, default_value_t = 15_000)]
    pub per_process: usize,
    /// Spread source addresses when there are more connections than this.
    #[arg(long, default_value_t = 25_000)]
    pub spread_above: usize,
    /// Connections per source address when spreading.
    #[arg(long, default_value_t = 25_000)]
    pub per_ip: usize,
    #[arg(long, value_enum, default_value = "lobbyd")]
    pub proto: Proto,
    #[arg(long)]
    pub run_id: Option<String>,
    /// Connections being set up at once, in total (split over the children).
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    #[arg(long, default_value_t = 60.0)]
    pub setup_timeout: f64,
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub start: usize,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub total: usize,
    #[arg(long)]
    pub lobbies: usize,
    #[arg(long)]
    pub spread_above: usize,
    #[arg(long)]
    pub per_ip: usize,
    #[arg(long, value_enum)]
    pub proto: Proto,
    #[arg(long)]
    pub run_id: String,
    #[arg(long)]
    pub connect_concurrency: usize,
    #[arg(long)]
    pub setup_timeout: f64,
    /// Safety bound: stop by itself after this many seconds.
    #[arg(long)]
    pub max_seconds: f64,
}

#[derive(Serialize, Debug, Default)]
pub struct IdleReport {
    pub mode: &'static str,
    pub label: Option<String>,
    pub proto: Option<Proto>,
    pub url: String,
    pub connections: usize,
    pub lobbies: usize,
    pub processes: usize,
    pub source_addresses: usize,
    pub connected: u64,
    pub failed: u64,
    pub setup_errors: BTreeMap<String, u64>,
    pub drop_reasons: BTreeMap<String, u64>,
    pub connect_s: f64,
    pub connects_per_s: f64,
    pub hold_s: f64,
    pub alive_at_end: u64,
    pub dropped_during_hold: u64,
    pub pings_seen: u64,
    pub server_pids: Vec<String>,
    pub server_rss_kib_before: u64,
    pub server_rss_kib_connected: u64,
    pub server_rss_kib_end: u64,
    pub server_rss_kib_peak: u64,
    pub rss_per_conn_bytes: Option<f64>,
    pub rss_per_conn_bytes_end: Option<f64>,
    pub server_cpu_s_hold: f64,
}

pub async fn run(a: IdleArgs) -> i32 {
    match run_inner(a).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lobbyd-bench idle: {e}");
            1
        }
    }
}

fn rss_sum(pids: &[String]) -> u64 {
    pids.iter().filter_map(|p| proc_stats::rss_kib(p)).sum()
}

fn cpu_sum(pids: &[String]) -> f64 {
    pids.iter().filter_map(|p| proc_stats::cpu_seconds(p)).sum()
}

async fn run_inner(a: IdleArgs) -> Result<(), String> {
    let urls: Vec<String> = a
        .url
        .split(',')
        .filter(|u| !u.is_empty())
        .map(|u| a.proto.url(u))
        .collect();
    for u in &urls {
        Target::parse(u)?;
    }
    let url = urls.join(",");
    if a.connections == 0 {
        return Err("need connections > 0".into());
    }
    let lobbies = a.lobbies.unwrap_or((a.connections / 10).max(1)).max(1);
    let run_id = a
        .run_id
        .clone()
        .unwrap_or_else(crate::fanout::default_run_id);
    let pids = proc_stats::parse_pids(&a.server_pids);
    let per = a.per_process.max(1);
    let nproc = a.connections.div_ceil(per);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let max_seconds = a.setup_timeout * 4.0 + a.hold + a.settle + 120.0;

    let mut rep = IdleReport {
        mode: "idle",
        label: a.label.clone(),
        proto: Some(a.proto),
        url: a.url.clone(),
        connections: a.connections,
        lobbies,
        processes: nproc,
        source_addresses: if a.connections > a.spread_above {
            a.connections.div_ceil(a.per_ip.max(1))
        } else {
            1
        },
        hold_s: a.hold,
        server_pids: pids.clone(),
        ..Default::default()
    };
    rep.server_rss_kib_before = rss_sum(&pids);

    let t0 = Instant::now();
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<(usize, String)>();
    let mut children = Vec::new();
    let mut stdins = Vec::new();
    for c in 0..nproc {
        let start = c * per;
        let count = per.min(a.connections - start);
        let mut child = Command::new(&exe)
            .arg("idle-worker")
            .args(["--url", &url])
            .args(["--start", &start.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--total", &a.connections.to_string()])
            .args(["--lobbies", &lobbies.to_string()])
            .args(["--spread-above", &a.spread_above.to_string()])
            .args(["--per-ip", &a.per_ip.to_string()])
            .args(["--proto", proto_name(a.proto)])
            .args(["--run-id", &run_id])
            .args([
                "--connect-concurrency",
                &a.connect_concurrency.div_ceil(nproc).to_string(),
            ])
            .args(["--setup-timeout", &a.setup_timeout.to_string()])
            .args(["--max-seconds", &max_seconds.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn worker: {e}"))?;
        stdins.push(child.stdin.take());
        let out = child.stdout.take().expect("piped stdout");
        let tx = line_tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let _ = tx.send((c, l));
            }
            let _ = tx.send((c, "EOF".into()));
        });
        children.push(child);
    }
    drop(line_tx);

    // Wait for READY from every child.
    let mut ready = vec![false; nproc];
    let mut done = vec![false; nproc];
    while ready.iter().any(|r| !r) {
        let Some((c, line)) = line_rx.recv().await else {
            break;
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            Some("READY") => {
                ready[c] = true;
                rep.connected += f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                rep.failed += f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
                let elapsed = t0.elapsed().as_secs_f64();
                eprintln!(
                    "worker {c}: {} up, {} failed ({elapsed:.1} s)",
                    f.get(1).unwrap_or(&"?"),
                    f.get(2).unwrap_or(&"?")
                );
            }
            Some("ERR") => {
                let (n, msg) = counted(&f[1..]);
                *rep.setup_errors.entry(msg).or_default() += n;
            }
            Some("EOF") => {
                ready[c] = true;
                done[c] = true;
                eprintln!("worker {c} exited early");
            }
            _ => eprintln!("worker {c}: {line}"),
        }
    }
    rep.connect_s = t0.elapsed().as_secs_f64();
    rep.connects_per_s = rep.connected as f64 / rep.connect_s.max(1e-9);
    eprintln!(
        "all workers ready: {} connected, {} failed in {:.1} s ({:.0}/s)",
        rep.connected, rep.failed, rep.connect_s, rep.connects_per_s
    );

    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    rep.server_rss_kib_connected = rss_sum(&pids);
    rep.server_rss_kib_peak = rep.server_rss_kib_connected;
    let cpu0 = cpu_sum(&pids);
    let hold_end = Instant::now() + Duration::from_secs_f64(a.hold);
    while Instant::now() < hold_end {
        let left = hold_end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(2))).await;
        rep.server_rss_kib_peak = rep.server_rss_kib_peak.max(rss_sum(&pids));
    }
    rep.server_cpu_s_hold = cpu_sum(&pids) - cpu0;
    rep.server_rss_kib_end = rss_sum(&pids);

    for s in stdins.iter_mut().flatten() {
        let _ = s.write_all(b"STOP\n").await;
        let _ = s.flush().await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while done.iter().any(|d| !d) {
        let Ok(Some((c, line))) = tokio::time::timeout_at(deadline, line_rx.recv()).await else {
            break;
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            Some("DONE") => {
                rep.alive_at_end += f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                rep.dropped_during_hold += f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
                rep.pings_seen += f.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
            }
            Some("EOF") => done[c] = true,
            Some("DROP") => {
                let (n, msg) = counted(&f[1..]);
                *rep.drop_reasons.entry(msg).or_default() += n;
            }
            _ => {}
        }
    }
    for mut c in children {
        let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        let _ = c.start_kill();
    }
    if rep.connected > 0 && !pids.is_empty() {
        let n = rep.connected as f64;
        rep.rss_per_conn_bytes = Some(
            (rep.server_rss_kib_connected as f64 - rep.server_rss_kib_before as f64) * 1024.0 / n,
        );
        rep.rss_per_conn_bytes_end =
            Some((rep.server_rss_kib_end as f64 - rep.server_rss_kib_before as f64) * 1024.0 / n);
    }
    crate::emit(&rep, a.json_out.as_deref(), a.json, print_table)
}

/// Parses `<n>x <message>` from a worker's ERR/DROP line.
fn counted(f: &[&str]) -> (u64, String) {
    match f
        .first()
        .and_then(|c| c.strip_suffix('x'))
        .and_then(|c| c.parse().ok())
    {
        Some(n) => (n, f[1..].join(" ")),
        None => (1, f.join(" ")),
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Lobbyd => "lobbyd",
        Proto::Socketio => "socketio",
    }
}

fn print_table(r: &IdleReport) {
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "idle {}{:?}: {} connections to {} ({} lobbies, {} processes, {} source addresses)",
        r.label
            .as_deref()
            .map(|l| format!("[{l}] "))
            .unwrap_or_default(),
        r.proto.unwrap_or(Proto::Lobbyd),
        r.connections,
        r.url,
        r.lobbies,
        r.processes,
        r.source_addresses
    );
    println!(
        "  connected    {:>10}  failed {}  in {:.1} s  ({:.0} connections/s, login + join included)",
        r.connected, r.failed, r.connect_s, r.connects_per_s
    );
    if !r.setup_errors.is_empty() {
        println!("  setup errors {:?}", r.setup_errors);
    }
    println!(
        "  hold         {:>10.0} s  alive at end {}  dropped {}  pings seen {}",
        r.hold_s, r.alive_at_end, r.dropped_during_hold, r.pings_seen
    );
    if !r.drop_reasons.is_empty() {
        println!("  dropped      {:?}", r.drop_reasons);
    }
    if !r.server_pids.is_empty() {
        println!(
            "  server rss   before {:.1} MiB  connected {:.1} MiB  end {:.1} MiB  peak {:.1} MiB",
            mib(r.server_rss_kib_before),
            mib(r.server_rss_kib_connected),
            mib(r.server_rss_kib_end),
            mib(r.server_rss_kib_peak)
        );
        if let (Some(a), Some(b)) = (r.rss_per_conn_bytes, r.rss_per_conn_bytes_end) {
            println!(
                "  rss/conn     {:.0} B ({:.2} KiB) after connect, {:.0} B ({:.2} KiB) at end of hold",
                a,
                a / 1024.0,
                b,
                b / 1024.0
            );
        }
        println!("  server cpu   {:.2} s during hold", r.server_cpu_s_hold);
    }
}

// ---------------------------------------------------------------- worker

pub async fn worker(a: WorkerArgs) -> i32 {
    let targets: Vec<Target> = match a.url.split(',').map(Target::parse).collect() {
        Ok(t) => t,
        Err(e) => {
            println!("ERR {e}");
            return 1;
        }
    };
    if let Some(lim) = proc_stats::nofile_soft_limit() {
        if (a.count as u64) + 32 > lim {
            eprintln!(
                "idle-worker: {} connections but RLIMIT_NOFILE is {lim}; raise `ulimit -n` or lower --per-process",
                a.count
            );
        }
    }
    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let pings = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let (drop_tx, mut drop_rx) = mpsc::unbounded_channel::<String>();
    let timeout = Duration::from_secs_f64(a.setup_timeout);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(a.count);
    for i in a.start..a.start + a.count {
        let src = net::source_ip(i, a.total, a.spread_above, a.per_ip);
        let lobby = format!("bench-idle-{}-{}", a.run_id, i % a.lobbies);
        let (target, sem, ready_tx, mut stop_rx, pings, dropped, drop_tx) = (
            targets[i % targets.len()].clone(),
            sem.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
            pings.clone(),
            dropped.clone(),
            drop_tx.clone(),
        );
        let proto = a.proto;
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore");
            let r = proto::setup(proto, &target, src, &format!("i{i}"), &lobby, timeout).await;
            drop(permit);
            let mut ws = match r {
                Ok(ws) => {
                    let _ = ready_tx.send(Ok(()));
                    ws
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            drop(ready_tx);
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    m = ws.next() => match m {
                        Some(Ok(Message::Ping(_))) => { pings.fetch_add(1, Ordering::Relaxed); }
                        Some(Ok(Message::Text(t))) => {
                            if proto == Proto::Socketio && t.as_str() == "2" {
                                pings.fetch_add(1, Ordering::Relaxed);
                                let _ = ws.send(Message::text("3")).await;
                            }
                        }
                        Some(Ok(Message::Close(c))) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            let _ = drop_tx.send(format!("closed {c:?}"));
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            let _ = drop_tx.send(e.to_string());
                            return;
                        }
                        None => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            let _ = drop_tx.send("ended".into());
                            return;
                        }
                    }
                }
            }
        }));
    }
    drop(ready_tx);
    drop(drop_tx);
    let mut ok = 0u64;
    let mut failed = 0u64;
    let mut errs: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                failed += 1;
                *errs.entry(e.chars().take(100).collect()).or_default() += 1;
            }
        }
    }
    for (e, n) in &errs {
        println!("ERR {n}x {e}");
    }
    println!("READY {ok} {failed} {:.3}", t0.elapsed().as_secs_f64());

    // Hold until STOP / EOF on stdin, or the safety bound.
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let bound = tokio::time::sleep(Duration::from_secs_f64(a.max_seconds));
    tokio::pin!(bound);
    loop {
        tokio::select! {
            l = stdin.next_line() => match l {
                Ok(Some(l)) if l.trim() != "STOP" => continue,
                _ => break,
            },
            _ = &mut bound => break,
        }
    }
    let d = dropped.load(Ordering::Relaxed);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    while let Ok(r) = drop_rx.try_recv() {
        *reasons.entry(r.chars().take(100).collect()).or_default() += 1;
    }
    for (r, n) in reasons {
        println!("DROP {n}x {r}");
    }
    println!(
        "DONE {} {} {}",
        ok.saturating_sub(d),
        d,
        pings.load(Ordering::Relaxed)
    );
    let _ = stop_tx.send(true);
    0
}
