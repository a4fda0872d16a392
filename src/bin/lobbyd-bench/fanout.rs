//! Fan-out workload: `clients` connections (round-robin over `urls` within
//! each lobby, so every lobby spans every node), `lobbies` lobbies, the first
//! `senders` clients send at a fixed open-loop schedule totalling `rate`
//! messages/s. Every other member of the sender's lobby should receive each
//! message; receivers record end-to-end latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{sleep_until, Instant as TInstant};
use tokio_tungstenite::tungstenite::Message;

use crate::fanout_report::{print_table, proc_report, FanoutReport};
use crate::net::Target;
use crate::proc_stats;
use crate::proto::{self, Incoming, Proto};
use crate::stats::{self, Recorder, Sharded};

#[derive(clap::Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Comma-separated WebSocket URLs (ws://127.0.0.1:PORT/ws,...).
    #[arg(long, value_delimiter = ',', required = true)]
    pub urls: Vec<String>,
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    #[arg(long, default_value_t = 10)]
    pub lobbies: usize,
    /// Senders are clients 0..senders (one or more per lobby).
    #[arg(long, default_value_t = 20)]
    pub senders: usize,
    /// Total offered messages per second, over all senders.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Message content size in bytes.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Sending before the measured window, seconds (not counted).
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// After the window, how long receivers keep reading for late
    /// deliveries of window messages, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub drain: f64,
    /// Comma-separated server pids: CPU during the window and RSS at its end.
    #[arg(long)]
    pub server_pids: Option<String>,
    /// Comma-separated Redis pids, reported separately.
    #[arg(long)]
    pub redis_pids: Option<String>,
    #[arg(long, value_enum, default_value = "lobbyd")]
    pub proto: Proto,
    /// Lobby names are bench-<run-id>-<n> (default: time and pid).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Timeout for each setup step, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub setup_timeout: f64,
    /// Pause between setup and the first message, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// A name for this run in the output.
    #[arg(long)]
    pub label: Option<String>,
    /// Also report, per second of the window (by send time), the number of
    /// deliveries, the max latency and how many took over 10 ms.
    #[arg(long)]
    pub timeline: bool,
    /// Extra members (spread over the lobbies and urls) that join and then
    /// never read: the slow consumers whose effect on everyone else's
    /// latency the run measures. They are not counted in `expected`.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<String>,
}

struct Ctx {
    proto: Proto,
    t0: Instant,
    t0_tokio: TInstant,
    payload: usize,
    senders: usize,
    rate: f64,
    lobby_names: Vec<String>,
    lat_send: Sharded,
    lat_sched: Sharded,
    lat_ack: Sharded,
    send_lag: Sharded,
    /// Per window second: [deliveries, max latency ns, deliveries > 10 ms].
    timeline: Vec<[AtomicU64; 3]>,
}

impl Ctx {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
    fn at(&self, ns: u64) -> TInstant {
        self.t0_tokio + Duration::from_nanos(ns)
    }
    /// Scheduled time of global message `k`.
    fn sched_ns(&self, start_ns: u64, k: u64) -> u64 {
        start_ns + ((k as f64) * 1e9 / self.rate) as u64
    }
}

struct Plan {
    start_ns: u64,
    win_start_ns: u64,
    win_end_ns: u64,
    drain_end_ns: u64,
    members: Vec<u64>,
}

#[derive(Default)]
struct TaskOut {
    setup_err: Option<String>,
    dropped: Option<String>,
    sent_total: u64,
    sent_win: u64,
    expected_win: u64,
    acked_win: u64,
    delivered_win: u64,
    delivered_other: u64,
    other_frames: u64,
    errors: BTreeMap<String, u64>,
}

fn in_win(p: &Plan, sched: u64) -> bool {
    sched >= p.win_start_ns && sched < p.win_end_ns
}

#[allow(clippy::too_many_arguments)]
async fn client_task(
    ctx: Arc<Ctx>,
    i: usize,
    target: Target,
    lobby: usize,
    sem: Arc<Semaphore>,
    setup_timeout: Duration,
    ready: mpsc::UnboundedSender<(usize, bool)>,
    mut plan_rx: watch::Receiver<Option<Arc<Plan>>>,
) -> TaskOut {
    let mut out = TaskOut::default();
    let proto = ctx.proto;
    let permit = sem.acquire_owned().await.expect("semaphore");
    let res = proto::setup(
        proto,
        &target,
        None,
        &format!("b{i}"),
        &ctx.lobby_names[lobby],
        setup_timeout,
    )
    .await;
    drop(permit);
    let mut ws = match res {
        Ok(ws) => {
            let _ = ready.send((i, true));
            ws
        }
        Err(e) => {
            let _ = ready.send((i, false));
            out.setup_err = Some(e);
            return out;
        }
    };

    // Wait for the plan, reading (join/login broadcasts, pings) meanwhile.
    let plan = loop {
        if let Some(p) = plan_rx.borrow_and_update().clone() {
            break p;
        }
        tokio::select! {
            r = plan_rx.changed() => if r.is_err() { return out; },
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if proto == Proto::Socketio && t.as_str() == "2" {
                        let _ = ws.send(Message::text("3")).await;
                    }
                }
                Some(Ok(Message::Close(c))) => { out.dropped = Some(format!("closed before start: {c:?}")); return out; }
                Some(Ok(_)) => {}
                Some(Err(e)) => { out.dropped = Some(format!("before start: {e}")); return out; }
                None => { out.dropped = Some("ended before start".into()); return out; }
            }
        }
    };

    let is_sender = i < ctx.senders;
    let fan = plan.members[lobby].saturating_sub(1);
    let lobby_name = ctx.lobby_names[lobby].clone();
    let mut lat_send = Recorder::new(&ctx.lat_send, i);
    let mut lat_sched = Recorder::new(&ctx.lat_sched, i);
    let mut lat_ack = Recorder::new(&ctx.lat_ack, i);
    let mut send_lag = Recorder::new(&ctx.send_lag, i);
    let mut m: u64 = 0;
    let k_of = |m: u64| i as u64 + m * ctx.senders as u64;
    let mut sched = ctx.sched_ns(plan.start_ns, k_of(0));
    let mut sending = is_sender && sched < plan.win_end_ns;
    let send_timer = sleep_until(ctx.at(sched));
    tokio::pin!(send_timer);
    let stop = sleep_until(ctx.at(plan.drain_end_ns));
    tokio::pin!(stop);
    let mut content = String::with_capacity(ctx.payload + 64);

    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = &mut send_timer, if sending => {
                let now = ctx.now_ns();
                proto::content(sched, now, ctx.payload, &mut content);
                let frame = proto.send_message(&lobby_name, &content, 100 + m);
                if let Err(e) = ws.send(Message::text(frame)).await {
                    out.dropped = Some(format!("send: {e}"));
                    break;
                }
                out.sent_total += 1;
                if in_win(&plan, sched) {
                    out.sent_win += 1;
                    out.expected_win += fan;
                    send_lag.record(now.saturating_sub(sched));
                }
                m += 1;
                sched = ctx.sched_ns(plan.start_ns, k_of(m));
                if sched >= plan.win_end_ns {
                    sending = false;
                } else {
                    send_timer.as_mut().reset(ctx.at(sched));
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => match proto.classify(t.as_str()) {
                    Incoming::Msg { reply, sched_ns, send_ns } => {
                        let now = ctx.now_ns();
                        if reply {
                            if in_win(&plan, sched_ns) {
                                out.acked_win += 1;
                                lat_ack.record(now.saturating_sub(send_ns));
                            }
                        } else if in_win(&plan, sched_ns) {
                            out.delivered_win += 1;
                            let lat = now.saturating_sub(send_ns);
                            lat_send.record(lat);
                            lat_sched.record(now.saturating_sub(sched_ns));
                            if !ctx.timeline.is_empty() {
                                let sec = ((sched_ns - plan.win_start_ns) / 1_000_000_000) as usize;
                                if let Some(t) = ctx.timeline.get(sec) {
                                    t[0].fetch_add(1, Ordering::Relaxed);
                                    t[1].fetch_max(lat, Ordering::Relaxed);
                                    if lat > 10_000_000 {
                                        t[2].fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                        } else {
                            out.delivered_other += 1;
                        }
                    }
                    Incoming::Error(code) => *out.errors.entry(code).or_default() += 1,
                    Incoming::EioPing => {
                        if let Err(e) = ws.send(Message::text("3")).await {
                            out.dropped = Some(format!("pong: {e}"));
                            break;
                        }
                    }
                    Incoming::Other => out.other_frames += 1,
                },
                Some(Ok(Message::Close(c))) => { out.dropped = Some(format!("closed: {c:?}")); break; }
                Some(Ok(_)) => {}
                Some(Err(e)) => { out.dropped = Some(format!("read: {e}")); break; }
                None => { out.dropped = Some("ended".into()); break; }
            }
        }
    }
    drop(lat_send);
    drop(lat_sched);
    drop(lat_ack);
    drop(send_lag);
    drop(ws);
    out
}

pub async fn run(a: FanoutArgs) -> i32 {
    match run_inner(a).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lobbyd-bench fanout: {e}");
            1
        }
    }
}

async fn run_inner(a: FanoutArgs) -> Result<(), String> {
    if a.clients == 0 || a.lobbies == 0 || a.senders == 0 || a.senders > a.clients {
        return Err("need clients > 0, lobbies > 0, 0 < senders <= clients".into());
    }
    if a.lobbies > a.clients {
        return Err("need lobbies <= clients".into());
    }
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(a.rate) || !positive(a.duration) || a.warmup.is_nan() || a.warmup < 0.0 {
        return Err("need rate > 0, duration > 0, warmup >= 0".into());
    }
    let targets: Vec<Target> = a
        .urls
        .iter()
        .map(|u| Target::parse(&a.proto.url(u)))
        .collect::<Result<_, _>>()?;
    if let Some(lim) = proc_stats::nofile_soft_limit() {
        if (a.clients as u64) + 64 > lim {
            eprintln!(
                "warning: {} clients but RLIMIT_NOFILE is {lim}; raise it with `ulimit -n`",
                a.clients
            );
        }
    }
    let run_id = a.run_id.clone().unwrap_or_else(default_run_id);
    let server_pids = proc_stats::parse_pids(&a.server_pids);
    let redis_pids = proc_stats::parse_pids(&a.redis_pids);
    let self_pid = vec![std::process::id().to_string()];

    let t0 = Instant::now();
    let ctx = Arc::new(Ctx {
        proto: a.proto,
        t0,
        t0_tokio: TInstant::from_std(t0),
        payload: a.payload,
        senders: a.senders,
        rate: a.rate,
        lobby_names: (0..a.lobbies)
            .map(|l| format!("bench-{run_id}-{l}"))
            .collect(),
        lat_send: Sharded::new(),
        lat_sched: Sharded::new(),
        lat_ack: Sharded::new(),
        send_lag: Sharded::new(),
        timeline: if a.timeline {
            (0..a.duration.ceil() as usize)
                .map(|_| Default::default())
                .collect()
        } else {
            Vec::new()
        },
    });

    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (plan_tx, plan_rx) = watch::channel(None);
    let setup_timeout = Duration::from_secs_f64(a.setup_timeout);
    let mut handles = Vec::with_capacity(a.clients);
    let mut lobby_of = Vec::with_capacity(a.clients);
    for i in 0..a.clients {
        let lobby = i % a.lobbies;
        // Round-robin over the urls within each lobby's member sequence, so
        // every lobby (and the senders of each lobby) spans every node.
        let url = (i / a.lobbies) % targets.len();
        lobby_of.push(lobby);
        handles.push(tokio::spawn(client_task(
            ctx.clone(),
            i,
            targets[url].clone(),
            lobby,
            sem.clone(),
            setup_timeout,
            ready_tx.clone(),
            plan_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut rep_stalled_err: BTreeMap<String, u64> = BTreeMap::new();
    let mut members = vec![0u64; a.lobbies];
    let mut connected = 0usize;
    let mut reported = 0usize;
    while let Some((i, ok)) = ready_rx.recv().await {
        reported += 1;
        if ok {
            connected += 1;
            members[lobby_of[i]] += 1;
        }
        if reported == a.clients {
            break;
        }
    }
    let mut stalled = Vec::with_capacity(a.stalled);
    for j in 0..a.stalled {
        let lobby = j % a.lobbies;
        let target = &targets[(j / a.lobbies) % targets.len()];
        match proto::setup(
            a.proto,
            target,
            None,
            &format!("s{j}"),
            &ctx.lobby_names[lobby],
            setup_timeout,
        )
        .await
        {
            Ok(ws) => stalled.push(ws),
            Err(e) => *rep_stalled_err.entry(shorten(&e)).or_default() += 1,
        }
    }
    let setup_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "setup: {connected}/{} clients logged in and joined in {setup_s:.1} s",
        a.clients
    );
    if connected == 0 {
        return Err("no client could connect".into());
    }
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;

    let start_ns = ctx.now_ns() + 200_000_000;
    let win_start_ns = start_ns + (a.warmup * 1e9) as u64;
    let win_end_ns = win_start_ns + (a.duration * 1e9) as u64;
    let drain_end_ns = win_end_ns + (a.drain * 1e9) as u64;
    let plan = Arc::new(Plan {
        start_ns,
        win_start_ns,
        win_end_ns,
        drain_end_ns,
        members: members.clone(),
    });
    let _ = plan_tx.send(Some(plan.clone()));
    eprintln!(
        "running: warmup {:.0} s, window {:.0} s, drain {:.0} s",
        a.warmup, a.duration, a.drain
    );

    sleep_until(ctx.at(win_start_ns)).await;
    let w0 = Instant::now();
    let s0 = proc_stats::snapshot(&server_pids);
    let r0 = proc_stats::snapshot(&redis_pids);
    let g0 = proc_stats::snapshot(&self_pid);
    sleep_until(ctx.at(win_end_ns)).await;
    let wall = w0.elapsed().as_secs_f64();
    let s1 = proc_stats::snapshot(&server_pids);
    let r1 = proc_stats::snapshot(&redis_pids);
    let g1 = proc_stats::snapshot(&self_pid);

    let mut rep = FanoutReport {
        mode: "fanout",
        label: a.label.clone(),
        proto: Some(a.proto),
        urls: a.urls.clone(),
        clients: a.clients,
        connected,
        setup_s,
        lobbies: a.lobbies,
        senders: a.senders,
        rate: a.rate,
        payload: a.payload,
        warmup_s: a.warmup,
        duration_s: a.duration,
        window_s: wall,
        drain_s: a.drain,
        stalled: a.stalled,
        stalled_joined: stalled.len(),
        stalled_outcomes: rep_stalled_err,
        ..Default::default()
    };
    // Offered: every scheduled message of the window, whether or not its
    // sender managed to send it.
    let mut k = 0u64;
    loop {
        let s = ctx.sched_ns(start_ns, k);
        if s >= win_end_ns {
            break;
        }
        if s >= win_start_ns {
            rep.offered += 1;
        }
        k += 1;
    }
    for h in handles {
        let o = match h.await {
            Ok(o) => o,
            Err(e) => {
                *rep.drop_reasons.entry(format!("task: {e}")).or_default() += 1;
                continue;
            }
        };
        rep.sent += o.sent_win;
        rep.acked += o.acked_win;
        rep.expected += o.expected_win;
        rep.delivered += o.delivered_win;
        for (c, n) in o.errors {
            *rep.errors.entry(c).or_default() += n;
        }
        if let Some(e) = o.setup_err {
            *rep.setup_errors.entry(shorten(&e)).or_default() += 1;
        }
        if let Some(d) = o.dropped {
            rep.dropped_connections += 1;
            *rep.drop_reasons.entry(shorten(&d)).or_default() += 1;
        }
    }
    // The stalled members read now, after the drain: either the server cut
    // them off (a close frame after what their buffers held) or they are
    // still open.
    let outcomes = futures::future::join_all(stalled.into_iter().map(stalled_outcome)).await;
    for o in outcomes {
        *rep.stalled_outcomes.entry(o).or_default() += 1;
    }
    rep.lost = rep.expected.saturating_sub(rep.delivered);
    rep.loss_pct = if rep.expected > 0 {
        100.0 * rep.lost as f64 / rep.expected as f64
    } else {
        0.0
    };
    rep.deliveries_per_s = rep.delivered as f64 / a.duration;
    rep.latency = stats::summarize(&ctx.lat_send.merged());
    rep.latency_from_schedule = stats::summarize(&ctx.lat_sched.merged());
    rep.ack_latency = stats::summarize(&ctx.lat_ack.merged());
    rep.send_lag = stats::summarize(&ctx.send_lag.merged());
    if !server_pids.is_empty() {
        rep.server = Some(proc_report(&server_pids, &s0, &s1, wall, rep.delivered));
    }
    if !redis_pids.is_empty() {
        rep.redis = Some(proc_report(&redis_pids, &r0, &r1, wall, rep.delivered));
    }
    rep.generator = proc_report(&self_pid, &g0, &g1, wall, rep.delivered);
    rep.timeline = ctx
        .timeline
        .iter()
        .map(|t| {
            (
                t[0].load(Ordering::Relaxed),
                t[1].load(Ordering::Relaxed) as f64 / 1e6,
                t[2].load(Ordering::Relaxed),
            )
        })
        .collect();

    crate::emit(&rep, a.json_out.as_deref(), a.json, print_table)
}

/// Reads a stalled member to its end (bounded): "closed <code>" when the
/// server cut it off, "open" when it is still being served.
async fn stalled_outcome(mut ws: crate::net::Ws) -> String {
    let deadline = TInstant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return "open".into(),
            Ok(Some(Ok(Message::Close(c)))) => {
                return format!("closed {}", c.map(|c| u16::from(c.code)).unwrap_or(1005))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return format!("error: {}", shorten(&e.to_string())),
            Ok(None) => return "ended".into(),
        }
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(120).collect()
}

pub fn default_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{}", std::process::id())
}
