// The client's ordering rules against a scripted socket, where the test
// decides exactly which frame arrives when (the real-server tests cannot
// force these interleavings).
import { afterEach, describe, expect, it } from "vitest";
import { LobbydClient, type MessageInfo, type WebSocketLike } from "../src/index.js";
import { sleep, waitFor } from "./harness.js";

class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: { event: string; data: any; ack: number }[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame: object) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  answered = new Set<number>();
  /** Answers the first unanswered request named `event` (waiting for it). */
  async reply(event: string, data: object) {
    const req = await waitFor(() => this.sent.find((f) => f.event === event && !this.answered.has(f.ack)), `a ${event} request`);
    this.answered.add(req.ack);
    this.push({ event, data, ack: req.ack });
    return req;
  }
  static last() {
    return FakeSocket.all.at(-1)!;
  }
}

const LOBBY = "room";
const msg = (seq: number): MessageInfo => ({
  type: "messages",
  id: `m${seq}`,
  level: "partial",
  owner: { id: "bob", username: "bob" },
  visibility: false,
  createdAt: seq,
  data: { lobby: { id: LOBBY }, content: `m${seq}`, replied: null, seq, received: [], viewed: [], updatedAt: seq },
  permissions: [],
});
const user = { type: "users", id: "ann", level: "private", owner: { id: "ann" }, visibility: false, createdAt: 0, data: { token: "t0k" }, permissions: [] };

let c: LobbydClient | undefined;
afterEach(() => {
  c?.close();
  FakeSocket.all = [];
});

async function connected() {
  c = new LobbydClient({ url: ["ws://a/ws", "ws://b/ws"], WebSocket: FakeSocket, backoffInitialMs: 10, backoffMaxMs: 40 });
  const seqs: number[] = [];
  c.on("send_message", ({ message }) => seqs.push(message.data.seq));
  FakeSocket.last().open();
  const login = c.login({ username: "ann" });
  await FakeSocket.last().reply("login", { user });
  await login;
  const join = c.connectLobby({ id: LOBBY });
  await FakeSocket.last().reply("connect_lobby", { lobby: { id: LOBBY }, user: { id: "ann" } });
  await join;
  return { c, seqs };
}

describe("ordering and duplicates", () => {
  it("drops broadcasts it already delivered", async () => {
    const { seqs } = await connected();
    const s = FakeSocket.last();
    for (const seq of [1, 2, 2, 1, 3]) s.push({ event: "send_message", data: { message: msg(seq) } });
    expect(seqs).toEqual([1, 2, 3]);
  });

  it("after a reconnect: logs in with the token, catches up, then releases live broadcasts held meanwhile", async () => {
    const { c, seqs } = await connected();
    const first = FakeSocket.last();
    first.push({ event: "send_message", data: { message: msg(1) } });
    first.close(1006);
    expect(c.state).toBe("reconnecting");

    await waitFor(() => FakeSocket.all.length === 2, "a second socket");
    const second = FakeSocket.last();
    expect(second.url).toBe("ws://b/ws"); // moves on to the next url
    second.open();
    const login = await second.reply("login", { user });
    expect(login.data).toEqual({ token: "t0k" });

    // Live broadcasts arrive before the catch-up reply: held back.
    second.push({ event: "send_message", data: { message: msg(4) } });
    second.push({ event: "typing_message", data: { lobby: { id: LOBBY }, user: { id: "bob" } } });
    second.push({ event: "send_message", data: { message: msg(5) } });
    expect(seqs).toEqual([1]);

    const page1 = await second.reply("get_all_data", { type: "messages", datas: [msg(2), msg(3)], cursor: "3" });
    expect(page1.data).toMatchObject({ type: "messages", lobby: { id: LOBBY }, after: 1 });
    const page2 = await second.reply("get_all_data", { type: "messages", datas: [msg(4)], cursor: null });
    expect(page2.data).toMatchObject({ cursor: "3" });
    await c.ready();
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    expect(c.lastSeq(LOBBY)).toBe(5);
  });

  it("keeps a reply's seq that overtook an earlier broadcast, without skipping the broadcast", async () => {
    const { c, seqs } = await connected();
    const s = FakeSocket.last();
    s.push({ event: "send_message", data: { message: msg(1) } });
    const send = c.sendMessage(LOBBY, "mine");
    await s.reply("send_message", { message: { ...msg(3), owner: { id: "ann" } } });
    await send;
    s.push({ event: "send_message", data: { message: msg(2) } }); // committed before mine
    s.push({ event: "send_message", data: { message: msg(4) } });
    expect(seqs).toEqual([1, 2, 4]);
    expect(c.lastSeq(LOBBY)).toBe(4);
  });

  it("waits longer after each failed attempt, with jitter, up to the maximum", async () => {
    c = new LobbydClient({ url: "ws://a/ws", WebSocket: FakeSocket, backoffInitialMs: 10, backoffMaxMs: 40, backoffJitter: 0.5 });
    const delays: number[] = [];
    c.on("reconnecting", ({ delayMs }) => delays.push(delayMs));
    for (let i = 0; i < 5; i++) {
      const n = FakeSocket.all.length;
      FakeSocket.last().close(1006);
      await waitFor(() => FakeSocket.all.length === n + 1, "next attempt");
    }
    const caps = [10, 20, 40, 40, 40];
    delays.forEach((d, i) => {
      expect(d).toBeLessThanOrEqual(caps[i]!);
      expect(d).toBeGreaterThanOrEqual(caps[i]! / 2);
    });
    c.close();
    await sleep(60);
    expect(FakeSocket.all.length).toBe(6); // no attempt after close()
  });
});
