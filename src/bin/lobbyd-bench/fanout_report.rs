//! The fan-out run's report: its fields (also the `--json` output) and
//! the table printed otherwise.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::proc_stats::Snapshot;
use crate::proto::Proto;
use crate::stats::{self, Latency};

#[derive(Serialize, Debug, Default)]
pub struct ProcReport {
    pub pids: Vec<String>,
    pub cpu_s: Vec<Option<f64>>,
    pub cpu_s_total: f64,
    /// CPU seconds per wall second (1.0 = one core busy).
    pub cores_busy: f64,
    pub rss_kib_end: Vec<Option<u64>>,
    pub rss_kib_total: u64,
    pub cpu_us_per_delivery: Option<f64>,
}

pub fn proc_report(
    pids: &[String],
    a: &Snapshot,
    b: &Snapshot,
    wall: f64,
    delivered: u64,
) -> ProcReport {
    let cpu: Vec<Option<f64>> = a
        .cpu
        .iter()
        .zip(&b.cpu)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        })
        .collect();
    let total: f64 = cpu.iter().flatten().sum();
    ProcReport {
        pids: pids.to_vec(),
        cpu_s: cpu,
        cpu_s_total: total,
        cores_busy: if wall > 0.0 { total / wall } else { 0.0 },
        rss_kib_end: b.rss.clone(),
        rss_kib_total: b.rss.iter().flatten().sum(),
        cpu_us_per_delivery: (delivered > 0).then(|| total * 1e6 / delivered as f64),
    }
}

#[derive(Serialize, Debug, Default)]
pub struct FanoutReport {
    pub mode: &'static str,
    pub label: Option<String>,
    pub proto: Option<Proto>,
    pub urls: Vec<String>,
    pub clients: usize,
    pub connected: usize,
    pub setup_s: f64,
    pub lobbies: usize,
    pub senders: usize,
    pub rate: f64,
    pub payload: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub window_s: f64,
    pub drain_s: f64,
    pub offered: u64,
    pub sent: u64,
    pub acked: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub deliveries_per_s: f64,
    pub latency: Latency,
    pub latency_from_schedule: Latency,
    pub ack_latency: Latency,
    pub send_lag: Latency,
    pub errors: BTreeMap<String, u64>,
    pub dropped_connections: usize,
    pub drop_reasons: BTreeMap<String, u64>,
    /// Members that never read (`--stalled`), how many of them joined, and
    /// how the server had ended each one by the end of the drain.
    pub stalled: usize,
    pub stalled_joined: usize,
    pub stalled_outcomes: BTreeMap<String, u64>,
    pub setup_errors: BTreeMap<String, u64>,
    pub server: Option<ProcReport>,
    pub redis: Option<ProcReport>,
    pub generator: ProcReport,
    /// With --timeline: per window second, deliveries, max latency (ms),
    /// deliveries over 10 ms.
    pub timeline: Vec<(u64, f64, u64)>,
}

fn print_proc(name: &str, p: &ProcReport) {
    let cpus: Vec<String> = p
        .cpu_s
        .iter()
        .map(|c| c.map(|c| format!("{c:.2}")).unwrap_or("?".into()))
        .collect();
    let rss: Vec<String> = p
        .rss_kib_end
        .iter()
        .map(|r| {
            r.map(|r| format!("{:.1}", r as f64 / 1024.0))
                .unwrap_or("?".into())
        })
        .collect();
    println!(
        "  {name:<10} pids {}  cpu {} s = {:.2} s ({:.2} cores)  rss {} MiB  cpu/delivery {}",
        p.pids.join(","),
        cpus.join("+"),
        p.cpu_s_total,
        p.cores_busy,
        rss.join("+"),
        p.cpu_us_per_delivery
            .map(|v| format!("{v:.3} us"))
            .unwrap_or("-".into())
    );
}

pub fn print_table(r: &FanoutReport) {
    println!(
        "fanout {}{:?}: {} clients ({} connected, setup {:.1} s), {} lobbies, {} senders, {} msg/s, {} B, window {:.1} s (+{} s warmup, {} s drain)",
        r.label.as_deref().map(|l| format!("[{l}] ")).unwrap_or_default(),
        r.proto.unwrap_or(Proto::Lobbyd),
        r.clients, r.connected, r.setup_s, r.lobbies, r.senders, r.rate, r.payload,
        r.window_s, r.warmup_s, r.drain_s
    );
    println!("  offered      {:>12}", r.offered);
    println!("  sent         {:>12}", r.sent);
    println!("  acked        {:>12}", r.acked);
    println!("  expected     {:>12}", r.expected);
    println!("  delivered    {:>12}", r.delivered);
    println!("  lost         {:>12}  ({:.3} %)", r.lost, r.loss_pct);
    println!("  deliveries/s {:>12.0}", r.deliveries_per_s);
    println!("  latency      {}", stats::fmt_lat(&r.latency));
    println!(
        "  (from sched) {}",
        stats::fmt_lat(&r.latency_from_schedule)
    );
    println!("  ack rtt      {}", stats::fmt_lat(&r.ack_latency));
    println!("  send lag     {}", stats::fmt_lat(&r.send_lag));
    if !r.errors.is_empty() {
        println!("  errors       {:?}", r.errors);
    }
    if r.dropped_connections > 0 {
        println!(
            "  dropped      {} connections: {:?}",
            r.dropped_connections, r.drop_reasons
        );
    }
    if r.stalled > 0 {
        println!(
            "  stalled      {} ({} joined): {:?}",
            r.stalled, r.stalled_joined, r.stalled_outcomes
        );
    }
    if !r.setup_errors.is_empty() {
        println!("  setup errors {:?}", r.setup_errors);
    }
    if let Some(s) = &r.server {
        print_proc("server", s);
    }
    if let Some(s) = &r.redis {
        print_proc("redis", s);
    }
    print_proc("generator", &r.generator);
    if !r.timeline.is_empty() {
        println!("  timeline (window second: deliveries, max ms, over 10 ms)");
        for (i, (n, max, slow)) in r.timeline.iter().enumerate() {
            println!("    {i:>4}: {n:>8} {max:>9.3} {slow:>8}");
        }
    }
}
