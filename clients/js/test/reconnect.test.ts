// Reconnect and catch-up: nodes on one Redis are killed (SIGKILL) under a
// client; it must come back logged in and deliver every message exactly
// once, in seq order.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { LobbydClient, MessageInfo } from "../src/index.js";
import { LobbydNode, Redis, client, closeAll, collect, sleep, uid, waitFor } from "./harness.js";

let redis: Redis;
let n1: LobbydNode;
let n2: LobbydNode;

beforeAll(async () => {
  redis = await Redis.start();
  n1 = await LobbydNode.start({ redis, nodeId: "n1" });
  n2 = await LobbydNode.start({ redis, nodeId: "n2" });
});
afterAll(async () => {
  await n1?.kill();
  await n2?.kill();
  await redis?.stop();
});
afterEach(async () => {
  closeAll();
  if (!n1.child) await n1.start();
  if (!n2.child) await n2.start();
});

/** The contents of the send_message events a client emitted for a lobby. */
function inbox(c: LobbydClient, lobbyId: string) {
  const seqs: number[] = [];
  const contents: string[] = [];
  c.on("send_message", ({ message }: { message: MessageInfo }) => {
    if (message.data.lobby.id !== lobbyId) return;
    seqs.push(message.data.seq);
    contents.push(message.data.content);
  });
  return { seqs, contents };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function pair(annUrl: string | string[], opts = {}) {
  const lobbyId = uid("room");
  const ann = client(annUrl, opts);
  const bob = client(n2.wsUrl);
  const annUser = (await ann.login({ username: "ann" })).user;
  await bob.login({ username: "bob" });
  await ann.connectLobby({ id: lobbyId, visibility: true });
  await bob.connectLobby({ id: lobbyId });
  return { lobbyId, ann, bob, annUser };
}

describe("reconnect", () => {
  it("after its node restarts: logs in again and catches up, in order, no duplicates", async () => {
    const { lobbyId, ann, bob, annUser } = await pair(n1.wsUrl);
    const box = inbox(ann, lobbyId);
    const readies = collect(ann, "ready");
    for (let i = 1; i <= 5; i++) await bob.sendMessage(lobbyId, `m${i}`);
    await waitFor(() => box.seqs.length === 5, "live messages");

    await n1.kill();
    await waitFor(() => ann.state === "reconnecting", "reconnecting state");
    for (let i = 6; i <= 15; i++) await bob.sendMessage(lobbyId, `m${i}`);
    await n1.start();
    // Bob keeps talking while Ann comes back.
    for (let i = 16; i <= 25; i++) {
      await bob.sendMessage(lobbyId, `m${i}`);
      await sleep(10);
    }
    await waitFor(() => box.seqs.length >= 25, "all 25 messages");
    await sleep(200);
    expect(box.seqs).toEqual(range(1, 25));
    expect(box.contents).toEqual(range(1, 25).map((i) => `m${i}`));
    expect(readies.at(-1)).toMatchObject({ reconnect: true });
    expect(ann.user?.id).toBe(annUser.id);
    expect(ann.lastSeq(lobbyId)).toBe(25);

    // Still a member without re-joining: a message from Ann reaches Bob.
    const bobBox = inbox(bob, lobbyId);
    await ann.sendMessage(lobbyId, "back");
    await waitFor(() => bobBox.contents.includes("back"), "Ann's message after reconnect");
  });

  it("moves to a second node while messages keep coming, and loses none", async () => {
    const { lobbyId, ann, bob } = await pair([n1.wsUrl, n2.wsUrl]);
    const box = inbox(ann, lobbyId);
    let sending = true;
    let sent = 0;
    const sender = (async () => {
      while (sending) {
        await bob.sendMessage(lobbyId, `m${++sent}`);
        await sleep(15); // under the per-connection rate limit
      }
    })();
    await waitFor(() => box.seqs.length >= 10, "first messages");
    await n1.kill(); // not restarted: the client has to move to n2
    await waitFor(() => ann.state === "open" && ann.url === n2.wsUrl, "reconnected to n2");
    const atMove = sent;
    await waitFor(() => box.seqs.length >= atMove + 10, "messages after the move");
    sending = false;
    await sender;
    await waitFor(() => box.seqs.length === sent, "every message");
    await sleep(200);
    expect(box.seqs).toEqual(range(1, sent));
    expect(box.contents).toEqual(range(1, sent).map((i) => `m${i}`));
  });

  it("follows cursors through a long catch-up, across several lobbies", async () => {
    const { lobbyId, ann, bob } = await pair(n1.wsUrl, { catchUpPageSize: 3 });
    const other = uid("room");
    await ann.connectLobby({ id: other, visibility: true });
    await bob.connectLobby({ id: other });
    const box = inbox(ann, lobbyId);
    const box2 = inbox(ann, other);
    await bob.sendMessage(lobbyId, "m1");
    await waitFor(() => box.seqs.length === 1, "first message");

    await n1.kill();
    for (let i = 2; i <= 20; i++) await bob.sendMessage(lobbyId, `m${i}`);
    for (let i = 1; i <= 7; i++) await bob.sendMessage(other, `o${i}`);
    await n1.start();
    await waitFor(() => box.seqs.length === 20 && box2.seqs.length === 7, "caught up");
    await sleep(200);
    expect(box.seqs).toEqual(range(1, 20));
    expect(box2.contents).toEqual(range(1, 7).map((i) => `o${i}`));
  });

  it("rejects in-flight requests with `disconnected` and sends the ones made while away", async () => {
    const { lobbyId, ann, bob } = await pair(n1.wsUrl);
    const bobBox = inbox(bob, lobbyId);
    await n1.kill();
    await waitFor(() => ann.state === "reconnecting", "reconnecting");
    const queued = ann.sendMessage(lobbyId, "written while offline");
    await sleep(300);
    await n1.start();
    const reply = await queued;
    expect(reply.message.data.content).toBe("written while offline");
    await waitFor(() => bobBox.contents.includes("written while offline"), "queued message delivered");

    // A request in flight when the node dies.
    const inflight = ann.request("get_all_data", { type: "users" }).catch((e) => e.code);
    await n1.kill();
    const code = await inflight;
    // Either the reply won the race or the request failed with `disconnected`.
    expect(typeof code === "string" ? code : "replied").toMatch(/^(disconnected|replied)$/);
  });

  it("own messages whose reply was lost are caught up, and nothing is doubled", async () => {
    const { lobbyId, ann, bob } = await pair(n1.wsUrl);
    const box = inbox(ann, lobbyId);
    await bob.sendMessage(lobbyId, "b1");
    await ann.sendMessage(lobbyId, "a2"); // Ann's own: a reply, not an event
    await bob.sendMessage(lobbyId, "b3");
    await waitFor(() => box.seqs.length === 2, "live");
    await n1.kill();
    await bob.sendMessage(lobbyId, "b4");
    await n1.start();
    await waitFor(() => box.seqs.length === 3, "caught up");
    await sleep(200);
    expect(box.contents).toEqual(["b1", "b3", "b4"]);
    expect(ann.lastSeq(lobbyId)).toBe(4);
  });
});

describe("session", () => {
  it("emits session_lost when the token no longer logs in (memory node restarted)", async () => {
    const mem = await LobbydNode.start();
    try {
      const c = client(mem.wsUrl);
      await c.login({ username: "ann" });
      const lost = collect(c, "session_lost");
      await mem.restart();
      await waitFor(() => lost.length === 1, "session_lost");
      expect(lost[0].code).toBe("unauthenticated");
      await c.ready();
      expect(c.user).toBeUndefined();
      expect((await c.login({ username: "ann again" })).user.data.username).toBe("ann again");
    } finally {
      await mem.kill();
    }
  });
});
