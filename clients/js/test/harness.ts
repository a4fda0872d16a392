// Starts real lobbyd nodes (the binary cargo built) and redis-server
// processes on free loopback ports, for the tests and the e2e test.
import { spawn, type ChildProcess } from "node:child_process";
import { createConnection, createServer } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { WebSocket as WsWebSocket } from "ws";
import { LobbydClient, type ClientOptions, type WebSocketConstructor } from "../src/index.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const lobbydBin = process.env.LOBBYD_BIN ?? path.join(repoRoot, "target/debug/lobbyd");

/** Node >= 22 has a global WebSocket; on Node 20 the tests use `ws`. */
export const WebSocketImpl: WebSocketConstructor =
  ((globalThis as { WebSocket?: WebSocketConstructor }).WebSocket as WebSocketConstructor) ??
  (WsWebSocket as unknown as WebSocketConstructor);

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value. */
export async function waitFor<T>(check: () => T | Promise<T>, what = "condition", timeoutMs = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function tcpAnswers(port: number, send?: string, expect?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("error", () => done(false));
    sock.once("connect", () => (send ? sock.write(send) : done(true)));
    sock.on("data", (d) => {
      buf += d.toString();
      if (expect && buf.includes(expect)) done(true);
    });
  });
}

function track(child: ChildProcess, log: string[]) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  const keep = (d: Buffer) => {
    log.push(d.toString());
    if (log.length > 500) log.splice(0, log.length - 500);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

/** A redis-server on a free port that keeps nothing on disk. */
export class Redis {
  child!: ChildProcess;
  readonly log: string[] = [];
  constructor(readonly port: number) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  static async start(): Promise<Redis> {
    const r = new Redis(await freePort());
    r.child = spawn(
      "redis-server",
      ["--port", String(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "/tmp"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    track(r.child, r.log);
    await waitFor(() => tcpAnswers(r.port, "PING\r\n", "+PONG"), `redis-server on ${r.port}`);
    return r;
  }
  async stop() {
    this.child.kill("SIGKILL");
    await exited(this.child);
  }
}

export interface NodeOptions {
  redis?: Redis;
  port?: number;
  nodeId?: string;
  args?: string[];
}

/** One lobbyd process; `kill()` and `start()` again keep its port. */
export class LobbydNode {
  child: ChildProcess | null = null;
  readonly log: string[] = [];
  private constructor(readonly port: number, readonly opts: NodeOptions) {}

  static async start(opts: NodeOptions = {}): Promise<LobbydNode> {
    const node = new LobbydNode(opts.port ?? (await freePort()), opts);
    await node.start();
    return node;
  }
  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }
  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const args = ["--listen", `127.0.0.1:${this.port}`];
    if (this.opts.redis) args.push("--redis-url", this.opts.redis.url, "--presence-ttl-ms", "3000");
    if (this.opts.nodeId) args.push("--node-id", this.opts.nodeId);
    args.push(...(this.opts.args ?? []), ...(process.env.LOBBYD_ARGS?.split(" ").filter(Boolean) ?? []));
    const child = spawn(lobbydBin, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOBBYD_LOG: process.env.LOBBYD_LOG ?? "warn" },
    });
    this.child = child;
    track(child, this.log);
    let failed: Error | null = null;
    child.once("exit", (code, sig) => (failed = new Error(`lobbyd exited (${code ?? sig}): ${this.log.join("")}`)));
    await waitFor(async () => {
      if (failed) throw failed;
      try {
        return (await fetch(`${this.httpUrl}/readyz`)).ok;
      } catch {
        return false;
      }
    }, `lobbyd on ${this.port}`);
  }

  /** SIGKILL: the node dies without closing anything cleanly. */
  async kill() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    child.kill("SIGKILL");
    await exited(child);
  }

  async restart() {
    await this.kill();
    await this.start();
  }
}

/** A client with fast reconnects for tests; closed by `closeAll()`. */
const clients = new Set<LobbydClient>();
export function client(url: string | string[], opts: Partial<ClientOptions> = {}): LobbydClient {
  const c = new LobbydClient({ url, WebSocket: WebSocketImpl, backoffInitialMs: 50, backoffMaxMs: 500, ...opts });
  clients.add(c);
  return c;
}
export function closeAll() {
  for (const c of clients) c.close();
  clients.clear();
}

/** Collects the data of one event of a client, in order. */
export function collect<T = any>(c: LobbydClient, event: string): T[] {
  const out: T[] = [];
  c.on(event as "broadcast", (d) => out.push(d as T));
  return out;
}

let unique = 0;
export const uid = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${unique++}`;
