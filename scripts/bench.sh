#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds release, starts its own redis-server
# and gateway processes on free loopback ports, runs the workloads with
# target/release/lobbyd-bench, and the Socket.IO 4 + Redis adapter
# comparison (bench/socketio). Everything it starts is killed on exit.
#
#   scripts/bench.sh                    # everything (~32 minutes)
#   PARTS="fanout" scripts/bench.sh     # only workload A on lobbyd
#
# Parts (PARTS, space-separated, run in the order given; the idle parts
# last, because their tens of thousands of closed client sockets sit in
# TIME_WAIT for a minute afterwards):
#   fanout    workload A against 2 lobbyd nodes + 1 redis
#   idle      idle connections on ONE lobbyd node (IDLE_CONNS), RSS/conn
#   idle-multi IDLE_MULTI connections spread over as many nodes as the fd
#             limit needs (shows what the box holds when one node cannot)
#   socketio  workload A against 2 Socket.IO processes + 1 redis, with the
#             Node generator (bench/socketio/load.js) and with lobbyd-bench
#             --proto socketio; plus idle Socket.IO connections (SIO_IDLE)
#   profile   perf record of both lobbyd nodes during a workload-A run
#   sweep     workload A at each rate in RATES on lobbyd (latency vs load)
#   sweep-sio the same on Socket.IO (lobbyd-bench --proto socketio)
#   stalled   slow consumers: 1 lobbyd node + 1 redis, STALL_CLIENTS readers
#             at STALL_RATE msg/s, runs alternating without and with
#             STALLED members that never read (lobbyd-bench --stalled), once
#             per STALL_LOWATS value of tcp_notsent_lowat
#
# Settings (environment): CLIENTS LOBBIES SENDERS RATE PAYLOAD DURATION
# WARMUP DRAIN (workload A: 1000 10 20 2000 100 20 5 3), REPEAT (runs of
# workload A per server, 3), RATES ("250 500 1000"), IDLE_CONNS
# ("50000 100000"), IDLE_HOLD (60), IDLE_MULTI (100000), SIO_IDLE (10000),
# PROFILE_SECONDS (10), OUT (result directory, default target/bench/<time>),
# STALL_CLIENTS (500), STALL_RATE (500), STALLED (20), STALL_LOWATS ("16384
# 0"), LOBBYD_FLAGS (extra flags for every lobbyd node, e.g. "--write-linger-us
# 2000"), SKIP_BUILD=1, SKIP_NPM=1.
#
# File descriptors: the script raises the soft RLIMIT_NOFILE to the hard
# limit (`ulimit -n $(ulimit -Hn)`). Raising the hard limit needs root with
# CAP_SYS_RESOURCE (e.g. `ulimit -Hn 1048576` before running, or LimitNOFILE
# in a systemd unit); one node needs connections + ~100 descriptors. When a
# requested idle count does not fit, the run is capped at what fits and the
# report says so. lobbyd-bench itself spreads idle connections over child
# processes (15000 each) and, above 25000 connections, over source addresses
# 127.0.0.2, 127.0.0.3, ... (one address has ~28k ephemeral ports), bound
# with IP_BIND_ADDRESS_NO_PORT so they do not starve other connect()s.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

PARTS="${PARTS:-fanout socketio sweep sweep-sio profile stalled idle idle-multi}"
RATES="${RATES:-250 500 1000}"
CLIENTS="${CLIENTS:-1000}"
LOBBIES="${LOBBIES:-10}"
SENDERS="${SENDERS:-20}"
RATE="${RATE:-2000}"
PAYLOAD="${PAYLOAD:-100}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-5}"
DRAIN="${DRAIN:-3}"
REPEAT="${REPEAT:-3}"
LOBBYD_FLAGS="${LOBBYD_FLAGS:-}"
IDLE_CONNS="${IDLE_CONNS:-50000 100000}"
IDLE_HOLD="${IDLE_HOLD:-60}"
IDLE_MULTI="${IDLE_MULTI:-100000}"
SIO_IDLE="${SIO_IDLE:-10000}"
PROFILE_SECONDS="${PROFILE_SECONDS:-10}"
STALL_CLIENTS="${STALL_CLIENTS:-500}"
STALL_RATE="${STALL_RATE:-500}"
STALLED="${STALLED:-20}"
STALL_LOWATS="${STALL_LOWATS:-16384 0}"
OUT="${OUT:-target/bench/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

BIN="$ROOT/target/release"
BENCH="$BIN/lobbyd-bench"
SIO="$ROOT/bench/socketio"

log() { printf '\n== %s  [load %s]\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt" >&2; }

# ------------------------------------------------------------ processes
PIDS=()
cleanup() {
    # Gateways and generators first (newest first), Redis last, so nodes
    # do not log a storm of "store unavailable" while they drain.
    local p i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        p=${PIDS[$i]}
        if [[ " ${REDIS_PIDS_ALL[*]:-} " != *" $p "* ]]; then kill "$p" 2>/dev/null || true; fi
    done
    for p in "${PIDS[@]}"; do
        if [[ " ${REDIS_PIDS_ALL[*]:-} " != *" $p "* ]]; then wait "$p" 2>/dev/null || true; fi
    done
    for p in "${REDIS_PIDS_ALL[@]:-}"; do
        [ -n "$p" ] && { kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; }
    done
    PIDS=()
    REDIS_PIDS_ALL=()
}
REDIS_PIDS_ALL=()
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_all() { cleanup; sleep 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$port" >&2
    return 1
}

# start_redis NAME -> sets REDIS_PORT, REDIS_PID
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --maxclients 10000 >"$OUT/$1-redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    REDIS_PIDS_ALL+=("$REDIS_PID")
    wait_port "$REDIS_PORT"
}

# start_lobbyd NAME [flags...] -> sets NODE_PORT, NODE_PID
start_lobbyd() {
    local name=$1
    shift
    NODE_PORT=$(free_port)
    # shellcheck disable=SC2086 # LOBBYD_FLAGS is a list of flags
    LOBBYD_LOG=warn "$BIN/lobbyd" --listen "127.0.0.1:$NODE_PORT" \
        --redis-url "redis://127.0.0.1:$REDIS_PORT" --node-id "$name" "$@" $LOBBYD_FLAGS \
        >"$OUT/$name.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_port "$NODE_PORT"
}

# start_sio NAME -> sets NODE_PORT, NODE_PID
start_sio() {
    NODE_PORT=$(free_port)
    node "$SIO/server.js" --port "$NODE_PORT" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
        --node-id "$1" >"$OUT/$1.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_port "$NODE_PORT"
}

fanout_args() { # [rate]
    echo --clients "$CLIENTS" --lobbies "$LOBBIES" --senders "$SENDERS" --rate "${1:-$RATE}" \
        --payload "$PAYLOAD" --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN"
}

bounded() { # seconds command... : every load run is bounded in time
    local t=$1
    shift
    timeout --kill-after=10 "$t" "$@"
}

# ------------------------------------------------------------ setup
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "memory: $(free -g | awk '/Mem:/{print $2" GiB"}')"
    echo "kernel: $(uname -sr)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ulimit -n: $NOFILE (hard $(ulimit -Hn))"
    echo "lobbyd extra flags: ${LOBBYD_FLAGS:-none}"
    echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
    echo "redis: $(redis-server --version | head -1)"
    echo "node: $(node --version)"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git status --porcelain 2>/dev/null | grep -q . && echo '(dirty)')"
} | tee "$OUT/machine.txt" >&2

if [ "${SKIP_BUILD:-}" != 1 ]; then
    log "cargo build --release"
    cargo build --release --bin lobbyd --bin lobbyd-bench
fi
if [[ " $PARTS " == *" socketio "* ]] && [ "${SKIP_NPM:-}" != 1 ]; then
    log "npm install (bench/socketio)"
    (cd "$SIO" && npm install --no-audit --no-fund --loglevel=error)
fi

# ------------------------------------------------------------ parts
part_fanout() {
    log "workload A on lobbyd: 2 nodes, 1 redis ($CLIENTS clients, $LOBBIES lobbies, $SENDERS senders, $RATE msg/s, $PAYLOAD B), $REPEAT runs, fresh processes each"
    local i p1 p2 u1 u2
    for i in $(seq 1 "$REPEAT"); do
        start_redis "fanout-$i"
        # Senders send RATE/SENDERS msg/s each; raise the per-connection rate
        # limit (default 100/s, burst 200) so it never shapes the workload.
        start_lobbyd "n1-$i" --rate-limit-per-s 10000 --rate-limit-burst 20000
        p1=$NODE_PID u1="ws://127.0.0.1:$NODE_PORT/ws"
        start_lobbyd "n2-$i" --rate-limit-per-s 10000 --rate-limit-burst 20000
        p2=$NODE_PID u2="ws://127.0.0.1:$NODE_PORT/ws"
        log "  run $i"
        bounded $((WARMUP + DURATION + DRAIN + 180)) "$BENCH" fanout --urls "$u1,$u2" $(fanout_args) \
            --server-pids "$p1,$p2" --redis-pids "$REDIS_PID" --label "lobbyd-A-$i" --timeline \
            --json-out "$OUT/fanout-lobbyd-$i.json" | tee -a "$OUT/summary.txt"
        stop_all
    done
}

# idle_run LABEL N NODES
idle_run() {
    local label=$1 n=$2 nodes=$3 i urls="" pids=""
    start_redis "$label"
    for i in $(seq 1 "$nodes"); do
        start_lobbyd "$label-n$i" --max-connections 1000000
        urls+="${urls:+,}ws://127.0.0.1:$NODE_PORT/ws"
        pids+="${pids:+,}$NODE_PID"
    done
    sleep 1
    bounded $((IDLE_HOLD + 600)) "$BENCH" idle --url "$urls" --connections "$n" --hold "$IDLE_HOLD" \
        --server-pids "$pids" --label "$label" --json-out "$OUT/$label.json" | tee -a "$OUT/summary.txt"
    stop_all
    wait_timewait
}

# Waits (up to 75 s) until the sockets the last run closed leave TIME_WAIT.
wait_timewait() {
    local i
    for i in $(seq 1 75); do
        [ "$(ss -Htan state time-wait 2>/dev/null | wc -l)" -lt 2000 ] && return 0
        sleep 1
    done
}

part_idle() {
    local n cap=$((NOFILE - 200)) done_cap=0
    for n in $IDLE_CONNS; do
        if [ "$n" -gt "$cap" ]; then
            log "idle: $n connections on one node do not fit RLIMIT_NOFILE=$NOFILE (the node needs n + ~100 fds); running at $cap instead"
            [ "$done_cap" = 1 ] && continue
            done_cap=1
            n=$cap
        fi
        log "idle: $n connections on one lobbyd node, hold $IDLE_HOLD s"
        idle_run "idle-lobbyd-$n" "$n" 1
    done
}

part_idle_multi() {
    local per=$((NOFILE - 2000)) nodes
    nodes=$(( (IDLE_MULTI + per - 1) / per ))
    log "idle: $IDLE_MULTI connections over $nodes lobbyd node(s) (fd limit $NOFILE per process), hold $IDLE_HOLD s"
    idle_run "idle-lobbyd-multi-$IDLE_MULTI" "$IDLE_MULTI" "$nodes"
}

part_socketio() {
    log "workload A on Socket.IO 4 + @socket.io/redis-adapter: 2 processes, 1 redis, fresh processes each run"
    local i p1 p2 port1 port2
    # start_sio_pair: redis + two Socket.IO processes
    start_sio_pair() {
        start_redis "sio-$1"
        start_sio "sio-a-$1"
        p1=$NODE_PID port1=$NODE_PORT
        start_sio "sio-b-$1"
        p2=$NODE_PID port2=$NODE_PORT
        sleep 1
    }
    start_sio_pair node
    log "  generator: node bench/socketio/load.js"
    bounded $((WARMUP + DURATION + DRAIN + 180)) node "$SIO/load.js" \
        --urls "http://127.0.0.1:$port1,http://127.0.0.1:$port2" $(fanout_args) \
        --server-pids "$p1,$p2" --redis-pids "$REDIS_PID" --label socketio-A-node \
        --json-out "$OUT/fanout-socketio-node.json" | tee -a "$OUT/summary.txt"
    stop_all
    for i in $(seq 1 "$REPEAT"); do
        start_sio_pair "$i"
        log "  generator: lobbyd-bench --proto socketio, run $i"
        bounded $((WARMUP + DURATION + DRAIN + 180)) "$BENCH" fanout --proto socketio \
            --urls "ws://127.0.0.1:$port1,ws://127.0.0.1:$port2" $(fanout_args) \
            --server-pids "$p1,$p2" --redis-pids "$REDIS_PID" --label "socketio-A-rust-$i" --timeline \
            --json-out "$OUT/fanout-socketio-rust-$i.json" | tee -a "$OUT/summary.txt"
        stop_all
    done
    if [ "$SIO_IDLE" -gt 0 ]; then
        log "idle: $SIO_IDLE Socket.IO connections on one process, hold $IDLE_HOLD s"
        start_redis sio-idle
        start_sio sio-idle
        local p=$NODE_PID port=$NODE_PORT
        sleep 1
        bounded $((IDLE_HOLD + 600)) "$BENCH" idle --proto socketio --url "ws://127.0.0.1:$port" \
            --connections "$SIO_IDLE" --hold "$IDLE_HOLD" --server-pids "$p" --label idle-socketio \
            --json-out "$OUT/idle-socketio-$SIO_IDLE.json" | tee -a "$OUT/summary.txt"
        stop_all
        wait_timewait
    fi
}

part_profile() {
    if ! command -v perf >/dev/null; then
        log "profile: perf not installed, skipped (valgrind --tool=callgrind works too, see docs/benchmarks.md)"
        return
    fi
    log "profile: perf record -g of both nodes during workload A ($PROFILE_SECONDS s)"
    start_redis prof
    start_lobbyd p1 --rate-limit-per-s 10000 --rate-limit-burst 20000
    local p1=$NODE_PID u1="ws://127.0.0.1:$NODE_PORT/ws"
    start_lobbyd p2 --rate-limit-per-s 10000 --rate-limit-burst 20000
    local p2=$NODE_PID u2="ws://127.0.0.1:$NODE_PORT/ws"
    bounded $((PROFILE_SECONDS + 200)) "$BENCH" fanout --urls "$u1,$u2" \
        --clients "$CLIENTS" --lobbies "$LOBBIES" --senders "$SENDERS" --rate "$RATE" \
        --payload "$PAYLOAD" --duration "$((PROFILE_SECONDS + 4))" --warmup 3 --drain 2 \
        --server-pids "$p1,$p2" --label profile >"$OUT/profile-run.txt" &
    local gen=$!
    PIDS+=("$gen")
    # Wait for setup to finish, then sample during the sending phase.
    sleep 8
    # Syscall counts over the same seconds (syscalls per delivery), and
    # a CPU profile with DWARF call graphs (release has debug = 1).
    bounded $((PROFILE_SECONDS + 30)) perf stat -x, -o "$OUT/perf-syscalls.csv" \
        -e syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait \
        -p "$p1,$p2" -- sleep "$PROFILE_SECONDS" 2>/dev/null &
    local stat=$!
    bounded $((PROFILE_SECONDS + 30)) perf record -e cpu-clock -F 499 --call-graph dwarf,8192 -p "$p1,$p2" -o "$OUT/perf.data" \
        -- sleep "$PROFILE_SECONDS" 2>"$OUT/perf-record.log" || true
    wait "$stat" || true
    wait "$gen" || true
    perf report -i "$OUT/perf.data" --no-children --percent-limit 0.7 --stdio -g none \
        --sort dso,symbol 2>/dev/null | grep -v '^$' | head -80 >"$OUT/perf-top.txt" || true
    perf report -i "$OUT/perf.data" --children --percent-limit 2 --stdio -g none \
        --sort symbol 2>/dev/null | grep -v '^$' | head -80 >"$OUT/perf-children.txt" || true
    cat "$OUT/profile-run.txt" >>"$OUT/summary.txt"
    {
        echo "syscalls of both nodes in $PROFILE_SECONDS s (deliveries/s offered: $((RATE * (CLIENTS / LOBBIES - 1)))):"
        grep -v '^#' "$OUT/perf-syscalls.csv" | awk -F, -v s="$PROFILE_SECONDS" -v d="$((RATE * (CLIENTS / LOBBIES - 1)))" \
            'NF > 2 { printf "  %-32s %10d  %8.0f/s  %.3f per delivery\n", $3, $1, $1 / s, $1 / s / d }'
        echo "perf: $OUT/perf-top.txt, $OUT/perf-children.txt"
    } | tee -a "$OUT/summary.txt"
    stop_all
}

part_sweep() {
    local r
    log "sweep on lobbyd: workload A at rates $RATES msg/s"
    start_redis sweep
    start_lobbyd s1 --rate-limit-per-s 10000 --rate-limit-burst 20000
    local p1=$NODE_PID u1="ws://127.0.0.1:$NODE_PORT/ws"
    start_lobbyd s2 --rate-limit-per-s 10000 --rate-limit-burst 20000
    local p2=$NODE_PID u2="ws://127.0.0.1:$NODE_PORT/ws"
    for r in $RATES; do
        bounded $((WARMUP + DURATION + DRAIN + 180)) "$BENCH" fanout --urls "$u1,$u2" $(fanout_args "$r") \
            --server-pids "$p1,$p2" --redis-pids "$REDIS_PID" --label "lobbyd-rate-$r" \
            --json-out "$OUT/sweep-lobbyd-$r.json" | tee -a "$OUT/summary.txt"
        sleep 3
    done
    stop_all
}

part_sweep_sio() {
    local r
    log "sweep on Socket.IO (lobbyd-bench --proto socketio): rates $RATES msg/s"
    start_redis sweep-sio
    start_sio sweep-a
    local p1=$NODE_PID port1=$NODE_PORT
    start_sio sweep-b
    local p2=$NODE_PID port2=$NODE_PORT
    sleep 1
    for r in $RATES; do
        bounded $((WARMUP + DURATION + DRAIN + 180)) "$BENCH" fanout --proto socketio \
            --urls "ws://127.0.0.1:$port1,ws://127.0.0.1:$port2" $(fanout_args "$r") \
            --server-pids "$p1,$p2" --redis-pids "$REDIS_PID" --label "socketio-rate-$r" \
            --json-out "$OUT/sweep-socketio-$r.json" | tee -a "$OUT/summary.txt"
        sleep 3
    done
    stop_all
}

part_stalled() {
    local lw i s p1 u1
    for lw in $STALL_LOWATS; do
        log "slow consumers: tcp_notsent_lowat=$lw, $STALL_CLIENTS readers, $STALL_RATE msg/s, without and with $STALLED stalled members, $REPEAT each"
        start_redis "stalled-$lw"
        start_lobbyd "st-$lw" --rate-limit-per-s 10000 --rate-limit-burst 20000 \
            --tcp-notsent-lowat "$lw"
        p1=$NODE_PID u1="ws://127.0.0.1:$NODE_PORT/ws"
        for i in $(seq 1 "$REPEAT"); do
            for s in 0 "$STALLED"; do
                bounded 240 "$BENCH" fanout --urls "$u1" --clients "$STALL_CLIENTS" --lobbies 5 \
                    --senders 10 --rate "$STALL_RATE" --payload "$PAYLOAD" --duration 15 \
                    --warmup 3 --drain 2 --stalled "$s" --server-pids "$p1" \
                    --redis-pids "$REDIS_PID" --label "lowat-$lw-stalled-$s-$i" \
                    --json-out "$OUT/stalled-$lw-$s-$i.json" | tee -a "$OUT/summary.txt"
            done
        done
        stop_all
    done
}

for part in $PARTS; do
    case "$part" in
        fanout) part_fanout ;;
        idle) part_idle ;;
        idle-multi) part_idle_multi ;;
        socketio) part_socketio ;;
        profile) part_profile ;;
        sweep) part_sweep ;;
        sweep-sio) part_sweep_sio ;;
        stalled) part_stalled ;;
        *) echo "unknown part: $part" >&2; exit 2 ;;
    esac
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2
log "results in $OUT"
