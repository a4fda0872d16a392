"use strict";
// Fan-out load generator for the Socket.IO reference server (server.js),
// the same workload and the same numbers as `lobbyd-bench fanout`:
//
//   clients connect round-robin over --urls within each lobby's member
//   sequence (client i joins lobby i % lobbies on url (i / lobbies) % urls),
//   clients 0..senders-1 send; global message k is scheduled at
//   start + k / rate (open loop, never waits for acks) and sent by sender
//   k % senders. Content is "LB1:<sched_ns>:<send_ns>:" padded with "x" to
//   --payload bytes; receivers compute end-to-end latency from send_ns.
//   Messages scheduled in [warmup, warmup + duration) are counted; receivers
//   keep reading for --drain seconds after the window.
//
// It runs in one Node process (one core at most), so at high rates it can be
// the bottleneck itself: its own CPU use is printed. `lobbyd-bench fanout
// --proto socketio` runs the same workload against the same server from the
// multi-threaded Rust generator.
//
// usage: node load.js --urls http://127.0.0.1:3001,http://127.0.0.1:3002
//          [--clients 1000 --lobbies 10 --senders 20 --rate 2000 --payload 100
//           --duration 20 --warmup 5 --drain 3 --server-pids 1,2 --redis-pids 3
//           --json | --json-out FILE]

const fs = require("fs");
const { io } = require("socket.io-client");

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const flag = (name) => process.argv.includes(`--${name}`);

const urls = arg("urls", "http://127.0.0.1:3001").split(",").filter(Boolean);
const clients = Number(arg("clients", "1000"));
const lobbies = Number(arg("lobbies", "10"));
const senders = Number(arg("senders", "20"));
const rate = Number(arg("rate", "2000"));
const payload = Number(arg("payload", "100"));
const duration = Number(arg("duration", "20"));
const warmup = Number(arg("warmup", "5"));
const drain = Number(arg("drain", "3"));
const settle = Number(arg("settle", "1"));
const concurrency = Number(arg("connect-concurrency", "100"));
const serverPids = arg("server-pids", "").split(",").filter(Boolean);
const redisPids = arg("redis-pids", "").split(",").filter(Boolean);
const runId = arg("run-id", `${Math.floor(Date.now() / 1000)}-${process.pid}`);
const label = arg("label", null);
const asJson = flag("json");
const jsonOut = arg("json-out", null);

for (const u of urls) {
  const h = new URL(u.replace(/^ws/, "http")).hostname;
  if (!/^127\.\d+\.\d+\.\d+$/.test(h)) {
    console.error(`refusing non-loopback target ${u}`);
    process.exit(2);
  }
}
if (!(clients > 0 && lobbies > 0 && senders > 0 && senders <= clients && lobbies <= clients)) {
  console.error("need clients > 0, lobbies > 0, 0 < senders <= clients, lobbies <= clients");
  process.exit(2);
}

const T0 = process.hrtime.bigint();
const nowNs = () => Number(process.hrtime.bigint() - T0);

// ------------------------------------------------------------ /proc
let clkTck = 100;
try {
  clkTck = Number(require("child_process").execSync("getconf CLK_TCK").toString().trim()) || 100;
} catch (_) {}
function cpuSeconds(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 1).trim().split(/\s+/);
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch (_) {
    return null;
  }
}
function rssKib(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch (_) {
    return null;
  }
}
const snapshot = (pids) => ({ cpu: pids.map(cpuSeconds), rss: pids.map(rssKib) });
function procReport(pids, a, b, wall, delivered) {
  const cpu = pids.map((_, i) => (a.cpu[i] != null && b.cpu[i] != null ? b.cpu[i] - a.cpu[i] : null));
  const total = cpu.reduce((s, c) => s + (c || 0), 0);
  return {
    pids,
    cpu_s: cpu,
    cpu_s_total: total,
    cores_busy: wall > 0 ? total / wall : 0,
    rss_kib_end: b.rss,
    rss_kib_total: b.rss.reduce((s, r) => s + (r || 0), 0),
    cpu_us_per_delivery: delivered > 0 ? (total * 1e6) / delivered : null,
  };
}

// ------------------------------------------------------------ latency
function summarize(arr) {
  if (arr.length === 0) return { count: 0, p50_ms: 0, p90_ms: 0, p99_ms: 0, p999_ms: 0, max_ms: 0, mean_ms: 0 };
  const a = Float64Array.from(arr).sort();
  const q = (p) => a[Math.min(a.length - 1, Math.max(0, Math.ceil(p * a.length) - 1))] / 1e6;
  let sum = 0;
  for (const v of a) sum += v;
  return {
    count: a.length,
    p50_ms: q(0.5),
    p90_ms: q(0.9),
    p99_ms: q(0.99),
    p999_ms: q(0.999),
    max_ms: a[a.length - 1] / 1e6,
    mean_ms: sum / a.length / 1e6,
  };
}
const fmtLat = (l) =>
  `p50 ${l.p50_ms.toFixed(3)}  p90 ${l.p90_ms.toFixed(3)}  p99 ${l.p99_ms.toFixed(3)}  p99.9 ${l.p999_ms.toFixed(3)}  max ${l.max_ms.toFixed(3)} ms  (n=${l.count})`;

// ------------------------------------------------------------ state
const lobbyName = (l) => `bench-${runId}-${l}`;
const sockets = new Array(clients).fill(null);
const members = new Array(lobbies).fill(0);
let winStart = Infinity;
let winEnd = -Infinity;
const inWin = (s) => s >= winStart && s < winEnd;
const latSend = [];
const latSched = [];
const latAck = [];
const sendLag = [];
const counts = { sent: 0, acked: 0, expected: 0, delivered: 0, deliveredOther: 0 };
const errors = {};
const setupErrors = {};
const dropReasons = {};
let dropped = 0;
let running = false;

function parseStamp(c) {
  if (typeof c !== "string" || !c.startsWith("LB1:")) return null;
  const a = c.indexOf(":", 4);
  const b = c.indexOf(":", a + 1);
  if (a < 0 || b < 0) return null;
  return [Number(c.slice(4, a)), Number(c.slice(a + 1, b))];
}

function content(sched, send) {
  const head = `LB1:${sched}:${send}:`;
  return head.length >= payload ? head : head + "x".repeat(payload - head.length);
}

async function setupClient(i) {
  const url = urls[Math.floor(i / lobbies) % urls.length];
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 30000 });
  await new Promise((res, rej) => {
    socket.once("connect", res);
    socket.once("connect_error", rej);
  });
  const r1 = await socket.timeout(30000).emitWithAck("login", { username: `b${i}` });
  if (r1 && r1.error) throw new Error(`login: ${r1.error.code}`);
  const r2 = await socket.timeout(30000).emitWithAck("connect_lobby", { lobby: { id: lobbyName(i % lobbies), visibility: true } });
  if (r2 && r2.error) throw new Error(`connect_lobby: ${r2.error.code}`);
  socket.on("send_message", (d) => {
    const st = parseStamp(d && d.message && d.message.data && d.message.data.content);
    if (!st) return;
    const now = nowNs();
    if (inWin(st[0])) {
      counts.delivered++;
      latSend.push(now - st[1]);
      latSched.push(now - st[0]);
    } else {
      counts.deliveredOther++;
    }
  });
  socket.on("disconnect", (reason) => {
    if (!running) return;
    dropped++;
    dropReasons[reason] = (dropReasons[reason] || 0) + 1;
  });
  return socket;
}

async function main() {
  // ---- setup, `concurrency` at a time
  let next = 0;
  let connected = 0;
  async function worker() {
    while (next < clients) {
      const i = next++;
      try {
        sockets[i] = await setupClient(i);
        members[i % lobbies]++;
        connected++;
      } catch (e) {
        const m = String((e && e.message) || e).slice(0, 120);
        setupErrors[m] = (setupErrors[m] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, clients) }, worker));
  const setupS = nowNs() / 1e9;
  console.error(`setup: ${connected}/${clients} clients logged in and joined in ${setupS.toFixed(1)} s`);
  if (connected === 0) process.exit(1);
  await new Promise((r) => setTimeout(r, settle * 1000));

  // ---- plan
  running = true;
  const startNs = nowNs() + 200e6;
  winStart = startNs + warmup * 1e9;
  winEnd = winStart + duration * 1e9;
  const drainEnd = winEnd + drain * 1e9;
  const schedNs = (k) => startNs + Math.floor((k * 1e9) / rate);
  let offered = 0;
  for (let k = 0; schedNs(k) < winEnd; k++) if (schedNs(k) >= winStart) offered++;
  console.error(`running: warmup ${warmup} s, window ${duration} s, drain ${drain} s`);

  let k = 0;
  function send(k) {
    const sched = schedNs(k);
    const j = k % senders;
    const s = sockets[j];
    if (!s || !s.connected) return;
    const l = j % lobbies;
    const now = nowNs();
    const win = inWin(sched);
    s.emit("send_message", { lobby: { id: lobbyName(l) }, content: content(sched, now) }, (r) => {
      if (r && r.error) {
        errors[r.error.code] = (errors[r.error.code] || 0) + 1;
        return;
      }
      if (win) {
        counts.acked++;
        latAck.push(nowNs() - now);
      }
    });
    if (win) {
      counts.sent++;
      counts.expected += members[l] - 1;
      sendLag.push(now - sched);
    }
  }
  function tick() {
    const now = nowNs();
    while (schedNs(k) < winEnd && schedNs(k) <= now) send(k++);
    if (schedNs(k) < winEnd) setTimeout(tick, Math.max(0, (schedNs(k) - nowNs()) / 1e6));
  }
  setTimeout(tick, Math.max(0, (startNs - nowNs()) / 1e6));

  const at = (ns) => new Promise((r) => setTimeout(r, Math.max(0, (ns - nowNs()) / 1e6)));
  const self = [String(process.pid)];
  await at(winStart);
  const w0 = nowNs();
  const s0 = snapshot(serverPids), r0 = snapshot(redisPids), g0 = snapshot(self);
  await at(winEnd);
  const wall = (nowNs() - w0) / 1e9;
  const s1 = snapshot(serverPids), r1 = snapshot(redisPids), g1 = snapshot(self);
  await at(drainEnd);
  running = false;

  const rep = {
    mode: "fanout",
    label,
    proto: "socketio",
    generator_kind: "node socket.io-client",
    urls,
    clients,
    connected,
    setup_s: setupS,
    lobbies,
    senders,
    rate,
    payload,
    warmup_s: warmup,
    duration_s: duration,
    window_s: wall,
    drain_s: drain,
    offered,
    sent: counts.sent,
    acked: counts.acked,
    expected: counts.expected,
    delivered: counts.delivered,
    lost: Math.max(0, counts.expected - counts.delivered),
    loss_pct: counts.expected > 0 ? (100 * Math.max(0, counts.expected - counts.delivered)) / counts.expected : 0,
    deliveries_per_s: counts.delivered / duration,
    latency: summarize(latSend),
    latency_from_schedule: summarize(latSched),
    ack_latency: summarize(latAck),
    send_lag: summarize(sendLag),
    errors,
    dropped_connections: dropped,
    drop_reasons: dropReasons,
    setup_errors: setupErrors,
    server: serverPids.length ? procReport(serverPids, s0, s1, wall, counts.delivered) : null,
    redis: redisPids.length ? procReport(redisPids, r0, r1, wall, counts.delivered) : null,
    generator: procReport(self, g0, g1, wall, counts.delivered),
  };
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(rep, null, 2) + "\n");
  if (asJson) {
    console.log(JSON.stringify(rep, null, 2));
  } else {
    const p = (name, r) =>
      r &&
      console.log(
        `  ${name.padEnd(10)} pids ${r.pids.join(",")}  cpu ${r.cpu_s.map((c) => (c == null ? "?" : c.toFixed(2))).join("+")} s = ${r.cpu_s_total.toFixed(2)} s (${r.cores_busy.toFixed(2)} cores)  rss ${r.rss_kib_end.map((x) => (x == null ? "?" : (x / 1024).toFixed(1))).join("+")} MiB  cpu/delivery ${r.cpu_us_per_delivery == null ? "-" : r.cpu_us_per_delivery.toFixed(3) + " us"}`
      );
    console.log(
      `fanout ${label ? `[${label}] ` : ""}socketio (node generator): ${clients} clients (${connected} connected, setup ${setupS.toFixed(1)} s), ${lobbies} lobbies, ${senders} senders, ${rate} msg/s, ${payload} B, window ${wall.toFixed(1)} s (+${warmup} s warmup, ${drain} s drain)`
    );
    for (const key of ["offered", "sent", "acked", "expected", "delivered"]) console.log(`  ${key.padEnd(12)} ${String(rep[key]).padStart(12)}`);
    console.log(`  ${"lost".padEnd(12)} ${String(rep.lost).padStart(12)}  (${rep.loss_pct.toFixed(3)} %)`);
    console.log(`  deliveries/s ${rep.deliveries_per_s.toFixed(0).padStart(12)}`);
    console.log(`  latency      ${fmtLat(rep.latency)}`);
    console.log(`  (from sched) ${fmtLat(rep.latency_from_schedule)}`);
    console.log(`  ack rtt      ${fmtLat(rep.ack_latency)}`);
    console.log(`  send lag     ${fmtLat(rep.send_lag)}`);
    if (Object.keys(errors).length) console.log(`  errors       ${JSON.stringify(errors)}`);
    if (dropped) console.log(`  dropped      ${dropped} connections: ${JSON.stringify(dropReasons)}`);
    if (Object.keys(setupErrors).length) console.log(`  setup errors ${JSON.stringify(setupErrors)}`);
    p("server", rep.server);
    p("redis", rep.redis);
    p("generator", rep.generator);
  }
  for (const s of sockets) if (s) s.disconnect();
  setTimeout(() => process.exit(0), 100);
}

main().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
