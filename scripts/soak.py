#!/usr/bin/env python3
"""Soak run of lobbyd: two nodes on one Redis (appendonly, fsync always), a
mixed WebSocket workload for N minutes, faults on a schedule, then a report.

Started by scripts/soak.sh (which builds the release binary and the venv).
Everything listens on 127.0.0.1 and everything it starts is stopped at the
end. Usage: soak.py BINARY MINUTES [--report FILE]
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

LOBBIES = 4
CLIENTS_PER_NODE = 6
TICK_S = 0.2  # one action per client per tick
# Fault periods in seconds (overridable for a short trial run).
PUBSUB_KILL_EVERY = int(os.environ.get("LOBBYD_SOAK_PUBSUB_EVERY", 45))
REDIS_RESTART_EVERY = int(os.environ.get("LOBBYD_SOAK_REDIS_EVERY", 180))
NODE_KILL_EVERY = int(os.environ.get("LOBBYD_SOAK_NODE_EVERY", 240))
PRESENCE_TTL_MS = 3000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Stats:
    def __init__(self):
        self.requests = 0
        self.ok = 0
        self.errors = {}
        self.timeouts = 0
        self.acked = {}  # lobby -> set(message id)
        self.broadcasts = 0
        self.disconnects = 0  # client connections lost
        self.reconnects = 0
        self.presence_disconnect_events = 0
        self.dup_or_reorder = 0
        self.gaps = 0
        self.faults = []


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def cli(self, *args):
        try:
            out = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                                 capture_output=True, text=True, timeout=5)
            return out.stdout.strip()
        except subprocess.TimeoutExpired:
            return None


class Node:
    def __init__(self, binary, redis_url, workdir, index):
        self.binary = binary
        self.redis_url = redis_url
        self.workdir = workdir
        self.index = index
        self.port = free_port()
        self.generation = 0
        self.proc = None
        self.ids = []
        self.rss = []  # (node id, first rss, last rss, max rss)

    @property
    def id(self):
        return self.ids[-1]

    def url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self):
        self.generation += 1
        node_id = f"soak-{self.index}-g{self.generation}"
        self.ids.append(node_id)
        logf = open(os.path.join(self.workdir, f"{node_id}.log"), "w")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", f"127.0.0.1:{self.port}",
             "--redis-url", self.redis_url, "--node-id", node_id,
             "--presence-ttl-ms", str(PRESENCE_TTL_MS)],
            stdout=logf, stderr=logf, env={**os.environ, "RUST_LOG": "warn"})
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(256):
                        self.rss.append([node_id, None, None, 0])
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node {node_id} did not start")

    def sample_rss(self):
        if self.proc is None:
            return
        r = rss_kib(self.proc.pid)
        if r is None:
            return
        cur = self.rss[-1]
        if cur[1] is None:
            cur[1] = r
        cur[2] = r
        cur[3] = max(cur[3], r)

    def kill(self):
        if self.proc:
            self.sample_rss()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc:
            self.sample_rss()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Client:
    """One user with one connection that reconnects (same token) when lost."""

    def __init__(self, name, node, lobbies, stats):
        self.name = name
        self.node = node
        self.lobbies = lobbies
        self.stats = stats
        self.token = None
        self.ack = 0
        self.pending = {}
        self.ws = None
        # Per connection: lobby -> (last broadcast seq, seen seqs incl. own)
        self.last = {}
        self.seen = {}
        self.last_msg = {}

    async def request(self, event, data, timeout=10):
        self.ack += 1
        ack = self.ack
        fut = asyncio.get_running_loop().create_future()
        self.pending[ack] = fut
        self.stats.requests += 1
        await self.ws.send(json.dumps({"event": event, "data": data, "ack": ack}))
        try:
            frame = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.stats.timeouts += 1
            self.pending.pop(ack, None)
            return None
        if frame["event"] == "error":
            code = frame["data"]["code"]
            self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
            return None
        self.stats.ok += 1
        return frame["data"]

    def on_broadcast(self, frame):
        self.stats.broadcasts += 1
        ev = frame.get("event")
        data = frame.get("data") or {}
        if ev == "disconnect":
            self.stats.presence_disconnect_events += 1
        if ev != "send_message":
            return
        m = data["message"]
        lobby, seq = m["data"]["lobby"]["id"], m["data"]["seq"]
        self.last_msg[lobby] = m["id"]
        last = self.last.get(lobby, 0)
        if seq <= last:
            self.stats.dup_or_reorder += 1
        self.last[lobby] = max(last, seq)
        self.seen.setdefault(lobby, set()).add(seq)

    def check_gaps(self):
        """Seqs between the first and last seen on this connection must all
        have arrived (broadcasts, or own replies)."""
        for lobby, seen in self.seen.items():
            if seen:
                lo, hi = min(seen), max(seen)
                self.stats.gaps += (hi - lo + 1) - len(seen)
        self.seen = {}
        self.last = {}

    async def reader(self):
        async for raw in self.ws:
            f = json.loads(raw)
            if f.get("ack") is not None:
                fut = self.pending.pop(f["ack"], None)
                if fut and not fut.done():
                    fut.set_result(f)
            else:
                self.on_broadcast(f)

    async def session(self, stop_at):
        async with connect(self.node.url(), max_size=1 << 20, open_timeout=5,
                           ping_interval=20, ping_timeout=20) as ws:
            self.ws = ws
            reader = asyncio.create_task(self.reader())
            try:
                login = await self.request(
                    "login", {"token": self.token} if self.token else {"username": self.name})
                if login is None:
                    return  # unavailable: reconnect
                self.token = login["user"]["data"]["token"]
                for lobby in self.lobbies:
                    if await self.request("connect_lobby",
                                          {"lobby": {"id": lobby, "visibility": True}}) is None:
                        return
                while time.time() < stop_at:
                    if reader.done():
                        return
                    await self.act()
                    await asyncio.sleep(TICK_S * random.uniform(0.5, 1.5))
            finally:
                reader.cancel()
                self.check_gaps()
                for fut in self.pending.values():
                    if not fut.done():
                        fut.cancel()
                self.pending = {}

    async def act(self):
        lobby = random.choice(self.lobbies)
        p = random.random()
        if p < 0.6:
            r = await self.request("send_message", {"lobby": {"id": lobby}, "content": f"{self.name} {time.time()}"})
            if r is not None:
                m = r["message"]
                self.stats.acked.setdefault(lobby, set()).add(m["id"])
                self.seen.setdefault(lobby, set()).add(m["data"]["seq"])
        elif p < 0.7:
            await self.request("typing_message", {"lobby": {"id": lobby}})
        elif p < 0.8 and self.last_msg.get(lobby):
            await self.request("received_message", {"lobby": {"id": lobby}, "message": {"id": self.last_msg[lobby]}})
        elif p < 0.9:
            await self.request("get_all_data", {"type": "messages", "lobby": {"id": lobby},
                                                "after": max(0, self.last.get(lobby, 0) - 5), "limit": 10})
        else:
            await self.request("get_data", {"type": "lobbys", "id": lobby})

    async def run(self, stop_at):
        first = True
        while time.time() < stop_at:
            try:
                if not first:
                    self.stats.reconnects += 1
                first = False
                await self.session(stop_at)
            except (ConnectionClosed, OSError, InvalidHandshake, asyncio.TimeoutError):
                pass
            if time.time() < stop_at:
                self.stats.disconnects += 1
                await asyncio.sleep(0.5)


async def faults(redis, nodes, stats, stop_at, started):
    next_pubsub = started + PUBSUB_KILL_EVERY
    next_redis = started + REDIS_RESTART_EVERY
    next_node = started + NODE_KILL_EVERY
    victim = 1
    while time.time() < stop_at:
        await asyncio.sleep(1)
        now = time.time()
        for n in nodes:
            n.sample_rss()
        if now >= next_pubsub:
            next_pubsub += PUBSUB_KILL_EVERY
            out = await asyncio.to_thread(redis.cli, "CLIENT", "KILL", "TYPE", "pubsub")
            stats.faults.append((round(now - started), "CLIENT KILL TYPE pubsub", out))
            log(f"fault: CLIENT KILL TYPE pubsub -> {out}")
        if now >= next_redis and now + 20 < stop_at:
            next_redis += REDIS_RESTART_EVERY
            redis.kill()
            await asyncio.sleep(1)
            await asyncio.to_thread(redis.start)
            stats.faults.append((round(now - started), "redis SIGKILL + restart", ""))
            log("fault: redis SIGKILL + restart")
        if now >= next_node and now + 20 < stop_at:
            next_node += NODE_KILL_EVERY
            n = nodes[victim]
            old = n.id
            n.kill()
            await asyncio.sleep(2)
            await asyncio.to_thread(n.start)
            stats.faults.append((round(now - started), f"node {old} SIGKILL, restarted as {n.id}", ""))
            log(f"fault: node {old} SIGKILL, restarted as {n.id}")
            victim = 1 - victim


def ttl_note(redis, key):
    try:
        ttl = int(redis.cli("PTTL", key))
    except (TypeError, ValueError):
        ttl = -1
    return f"{key} (expires in {ttl} ms)" if ttl > 0 else key


async def verify(nodes, lobbies, stats):
    """A fresh user joins every lobby and reads its whole history."""
    missing, total_history, gapless = 0, 0, True
    async with connect(nodes[0].url(), max_size=1 << 24) as ws:
        c = Client("verifier", nodes[0], lobbies, stats)
        c.ws = ws
        reader = asyncio.create_task(c.reader())
        await c.request("login", {"username": "verifier"})
        for lobby in lobbies:
            await c.request("connect_lobby", {"lobby": {"id": lobby}})
            ids, seqs, after = set(), [], 0
            while True:
                r = await c.request("get_all_data", {"type": "messages", "lobby": {"id": lobby}, "after": after, "limit": 500})
                if r is None:
                    raise RuntimeError("history read failed")
                for m in r["datas"]:
                    ids.add(m["id"])
                    seqs.append(m["data"]["seq"])
                    after = m["data"]["seq"]
                if r["cursor"] is None or not r["datas"]:
                    break
            total_history += len(ids)
            gapless &= seqs == list(range(1, len(seqs) + 1))
            missing += len(stats.acked.get(lobby, set()) - ids)
        reader.cancel()
    return missing, total_history, gapless


async def main_async(args):
    workdir = tempfile.mkdtemp(prefix="lobbyd-soak-")
    stats = Stats()
    redis = Redis(workdir)
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}"
    nodes = [Node(args.binary, url, workdir, i) for i in range(2)]
    try:
        for n in nodes:
            n.start()
        run_tag = f"{os.getpid()}-{int(time.time())}"
        lobbies = [f"soak-{run_tag}-{i}" for i in range(LOBBIES)]
        clients = [Client(f"c{n.index}-{i}", n, lobbies, stats)
                   for n in nodes for i in range(CLIENTS_PER_NODE)]
        started = time.time()
        stop_at = started + args.minutes * 60
        log(f"soak: {args.minutes} min, {len(clients)} clients, {LOBBIES} lobbies, "
            f"redis :{redis.port}, nodes :{nodes[0].port} :{nodes[1].port}, logs in {workdir}")
        await asyncio.sleep(0)

        async def progress():
            while time.time() < stop_at:
                await asyncio.sleep(60)
                acked = sum(len(s) for s in stats.acked.values())
                log(f"progress: {stats.requests} requests, {acked} acked messages, "
                    f"{stats.disconnects} client disconnects, errors {stats.errors}")

        await asyncio.gather(*(c.run(stop_at) for c in clients),
                             faults(redis, nodes, stats, stop_at, started), progress())
        elapsed = time.time() - started
        for n in nodes:
            n.sample_rss()
        # Let in-flight deliveries land, and presence of killed nodes expire.
        await asyncio.sleep(PRESENCE_TTL_MS / 1000 * 2)
        missing, total_history, gapless = await verify(nodes, lobbies, stats)
        live = {n.id for n in nodes}
        dead = [i for n in nodes for i in n.ids if i not in live]
        registered = set((redis.cli("SMEMBERS", "lobbyd:nodes") or "").split())
        left = {}
        for d in dead:
            keys = [k for k in (redis.cli("--scan", "--pattern", f"*{d}*") or "").split() if k]
            # A key with a TTL is reported with it; it is not left forever.
            keys = [ttl_note(redis, k) for k in keys]
            if keys or d in registered:
                left[d] = keys + (["(in lobbyd:nodes)"] if d in registered else [])
        for n in nodes:
            n.sample_rss()
        acked = sum(len(s) for s in stats.acked.values())
        report = {
            "minutes": round(elapsed / 60, 2),
            "clients": len(clients),
            "lobbies": LOBBIES,
            "requests_sent": stats.requests,
            "requests_ok": stats.ok,
            "request_errors": stats.errors,
            "request_timeouts": stats.timeouts,
            "messages_acked": acked,
            "acked_missing_from_history": missing,
            "messages_in_history": total_history,
            "history_gapless": gapless,
            "broadcasts_received": stats.broadcasts,
            "broadcast_duplicates_or_reorders": stats.dup_or_reorder,
            "broadcast_gaps_on_live_connections": stats.gaps,
            "client_disconnects": stats.disconnects,
            "presence_disconnect_events": stats.presence_disconnect_events,
            "faults": stats.faults,
            "rss_kib_per_node_process": [
                {"node": r[0], "start": r[1], "end": r[2], "max": r[3]} for n in nodes for r in n.rss],
            "dead_node_ids": dead,
            "keys_left_for_dead_nodes": left,
        }
        print(json.dumps(report, indent=2))
        if args.report:
            with open(args.report, "w") as f:
                json.dump(report, f, indent=2)
        forever = {d: [k for k in ks if "expires in" not in k] for d, ks in left.items()}
        forever = {d: ks for d, ks in forever.items() if ks}
        ok = missing == 0 and gapless and not forever and stats.dup_or_reorder == 0 and stats.gaps == 0
        log("soak: PASS" if ok else "soak: FAIL")
        return 0 if ok else 1
    finally:
        for n in nodes:
            n.stop()
        redis.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("minutes", type=float)
    p.add_argument("--report")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = p.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
