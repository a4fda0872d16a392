#!/usr/bin/env bash
# Soak test (not part of `cargo test`): builds the release binary, starts
# Redis (appendonly yes, appendfsync always) and two lobbyd nodes on
# 127.0.0.1, runs a mixed WebSocket workload for N minutes (default 10)
# while injecting faults on a schedule (CLIENT KILL TYPE pubsub every 45 s,
# a Redis SIGKILL + restart every 3 min, a node SIGKILL + restart every
# 4 min), then reports: requests served, messages acked vs found in the
# history, disconnects, RSS per node process at start and end, and Redis
# keys left for dead nodes. Exit status 0 when nothing was lost.
#
#   scripts/soak.sh [MINUTES] [--report FILE] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-10}"
shift || true

command -v redis-server >/dev/null || { echo "soak: redis-server is required" >&2; exit 2; }
command -v redis-cli >/dev/null || { echo "soak: redis-cli is required" >&2; exit 2; }

cargo build --release --locked --bin lobbyd

venv="${LOBBYD_SOAK_VENV:-target/soak-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "websockets>=13,<16"
fi

# Bounded in time: the driver stops by itself after MINUTES; this is a backstop.
timeout --signal=INT "$(( ${minutes%.*} * 60 + 300 ))" \
  "$venv/bin/python" scripts/soak.py target/release/lobbyd "$minutes" "$@"
