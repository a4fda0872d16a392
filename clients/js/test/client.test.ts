// Requests, replies, errors and broadcasts against one real lobbyd node
// (memory engine).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { LobbydError, type MessageInfo } from "../src/index.js";
import { LobbydNode, client, closeAll, collect, uid, waitFor } from "./harness.js";

let node: LobbydNode;
beforeAll(async () => {
  node = await LobbydNode.start();
});
afterAll(async () => {
  await node?.kill();
});
afterEach(() => closeAll());

async function loggedIn(username: string) {
  const c = client(node.wsUrl);
  const { user } = await c.login({ username });
  return { c, user };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LobbydError);
    return (err as LobbydError).code;
  }
  throw new Error("expected the request to fail");
}

describe("request and reply", () => {
  it("login creates a user with a token, and the token logs in again", async () => {
    const a = client(node.wsUrl);
    const { user } = await a.login({ username: "ann" });
    expect(user.type).toBe("users");
    expect(user.level).toBe("private");
    expect(user.data.username).toBe("ann");
    expect(user.data.token).toMatch(/^[0-9a-f]{32}$/);
    expect(a.token).toBe(user.data.token);
    expect(a.user?.id).toBe(user.id);

    const again = client(node.wsUrl);
    const reply = await again.login({ token: user.data.token! });
    expect(reply.user.id).toBe(user.id);
    const out = await again.logout();
    expect(out.user.id).toBe(user.id);
    expect(again.user).toBeUndefined();
  });

  it("lobbies, messages and data through the typed methods", async () => {
    const { c, user } = await loggedIn("ann");
    const lobbyId = uid("room");
    const joined = await c.connectLobby({ id: lobbyId, visibility: true, description: "d" });
    expect(joined.lobby.id).toBe(lobbyId);
    expect(joined.lobby.owner.id).toBe(user.id);
    expect(joined.lobby.data.token).toBeTruthy();
    expect(joined.lobby.permissions).toContain("setOwner");

    const m1 = (await c.sendMessage(lobbyId, "hello")).message;
    const m2 = (await c.sendMessage(lobbyId, "reply", m1.id)).message;
    expect([m1.data.seq, m2.data.seq]).toEqual([1, 2]);
    expect(m2.data.replied).toBe(m1.id);
    expect(m1.owner).toEqual({ id: user.id, username: "ann" });
    // Only its own sends so far: where the lobby's history starts for this client is not known yet.
    expect(c.lastSeq(lobbyId)).toBeUndefined();

    const got = await c.getData("messages", m1.id, { lobby: lobbyId });
    expect(got.data.data.content).toBe("hello");
    const lobby = await c.getData("lobbys", lobbyId);
    expect(lobby.data.data.users?.map((u) => u.id)).toEqual([user.id]);

    const page = await c.getAllData("messages", { lobby: lobbyId, limit: 1 });
    expect(page.datas.map((m) => m.data.seq)).toEqual([1]);
    expect(page.cursor).not.toBeNull();
    const after = await c.getAllData("messages", { lobby: lobbyId, after: 1 });
    expect(after.datas.map((m) => m.data.seq)).toEqual([2]);
    expect((await c.history(lobbyId)).map((m) => m.data.content)).toEqual(["hello", "reply"]);
    expect(c.lastSeq(lobbyId)).toBe(2);

    const edit = await c.updateData("messages", m1.id, { content: "hello!" }, { lobby: lobbyId });
    expect(edit).toMatchObject({ type: "messages", id: m1.id, data: { content: "hello!" } });
    expect(typeof edit.updatedAt).toBe("number");

    const action = await c.useAction("lobbys", lobbyId, "setVisibility", [false]);
    expect(action.action).toBe("setVisibility");
    expect(action.data.visibility).toBe(false);

    await c.typing(lobbyId);
    expect(await c.received(lobbyId, m1.id)).toMatchObject({ message: { id: m1.id }, user: { id: user.id } });
    await c.viewed(lobbyId, m1.id);
    const left = await c.disconnectLobby(lobbyId);
    expect(left).toMatchObject({ lobby: { id: lobbyId }, user: { id: user.id } });
  });

  it("assigns its own acks: many requests at once each get their reply", async () => {
    const { c } = await loggedIn("ann");
    const lobbyId = uid("room");
    await c.connectLobby({ id: lobbyId });
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => c.sendMessage(lobbyId, `m${i}`)));
    replies.forEach((r, i) => expect(r.message.data.content).toBe(`m${i}`));
    expect(replies.map((r) => r.message.data.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it("custom request() reaches application events", async () => {
    const { c } = await loggedIn("ann");
    expect(await codeOf(c.request("roll_dice", { sides: 6 }))).toBe("unknown_event");
    const raw = await c.request("get_data", { type: "users", id: c.user!.id });
    expect(raw.data.id).toBe(c.user!.id);
  });
});

describe("errors", () => {
  it("reject with LobbydError carrying the protocol code", async () => {
    const anon = client(node.wsUrl);
    expect(await codeOf(anon.connectLobby({ id: "x" }))).toBe("unauthenticated");
    expect(await codeOf(anon.login({ token: "no-such-token" }))).toBe("unauthenticated");

    const { c } = await loggedIn("ann");
    const { c: other } = await loggedIn("bob");
    const lobbyId = uid("private");
    await c.connectLobby({ id: lobbyId });
    expect(await codeOf(other.connectLobby({ id: lobbyId }))).toBe("forbidden");
    expect(await codeOf(other.sendMessage(lobbyId, "hi"))).toBe("not_found");
    const open = uid("public");
    await c.connectLobby({ id: open, visibility: true });
    expect(await codeOf(other.sendMessage(open, "hi"))).toBe("forbidden");
    expect(await codeOf(c.sendMessage(lobbyId, ""))).toBe("bad_request");
    expect(await codeOf(c.getData("lobbys", uid("missing")))).toBe("not_found");
    expect(await codeOf(c.login({ token: other.token! }))).toBe("conflict");
    expect(await codeOf(c.getAllData("messages", { lobby: lobbyId, after: 1, cursor: "1" }))).toBe("bad_request");
    expect(await codeOf(c.sendMessage(lobbyId, "x".repeat(20_000)))).toBe("payload_too_large");

    const err = await c.getData("users", "nobody").catch((e: LobbydError) => e);
    expect(err).toBeInstanceOf(LobbydError);
    expect((err as LobbydError).event).toBe("get_data");
    expect((err as LobbydError).message).toBeTruthy();
  });

  it("a private lobby's token lets others join", async () => {
    const { c } = await loggedIn("ann");
    const { c: bob } = await loggedIn("bob");
    const joined = await c.connectLobby({ id: uid("private") });
    const token = joined.lobby.data.token!;
    const viaToken = await bob.connectLobby({ id: joined.lobby.id, token });
    expect(viaToken.lobby.data.users?.length).toBe(2);
  });
});

describe("broadcasts", () => {
  it("arrive as typed events: joins, messages, typing, receipts, edits, presence", async () => {
    const { c: ann, user: annUser } = await loggedIn("ann");
    const { c: bob, user: bobUser } = await loggedIn("bob");
    const lobbyId = uid("room");
    await ann.connectLobby({ id: lobbyId, visibility: true });

    const joins = collect(ann, "connect_lobby");
    await bob.connectLobby({ id: lobbyId });
    await waitFor(() => joins.length === 1, "connect_lobby broadcast");
    expect(joins[0]).toEqual({ lobby: { id: lobbyId }, user: { id: bobUser.id, username: "bob" } });

    const bobMsgs = collect<{ message: MessageInfo }>(bob, "send_message");
    const sent = (await ann.sendMessage(lobbyId, "hi bob")).message;
    await waitFor(() => bobMsgs.length === 1, "send_message broadcast");
    expect(bobMsgs[0]!.message).toMatchObject({ id: sent.id, level: "partial", data: { content: "hi bob", seq: 1 } });
    expect(bob.lastSeq(lobbyId)).toBe(1);

    const typing = collect(ann, "typing_message");
    const received = collect(ann, "received_message");
    const viewed = collect(ann, "viewed_message");
    await bob.typing(lobbyId);
    await bob.received(lobbyId, sent.id);
    await bob.viewed(lobbyId, sent.id);
    await waitFor(() => typing.length && received.length && viewed.length, "typing and receipts");
    expect(typing[0]).toEqual({ lobby: { id: lobbyId }, user: { id: bobUser.id } });
    expect(received[0]).toEqual({ lobby: { id: lobbyId }, message: { id: sent.id }, user: { id: bobUser.id } });
    expect(viewed[0]).toEqual({ lobby: { id: lobbyId }, message: { id: sent.id }, user: { id: bobUser.id } });

    const edits = collect(bob, "update_data");
    await ann.updateData("messages", sent.id, { content: "hi bob (edited)" }, { lobby: lobbyId });
    await waitFor(() => edits.length === 1, "update_data broadcast");
    expect(edits[0]).toMatchObject({ type: "messages", id: sent.id, data: { content: "hi bob (edited)" } });

    const all = collect(ann, "broadcast");
    const logouts = collect(ann, "logout");
    await bob.logout();
    await waitFor(() => logouts.length === 1, "logout broadcast");
    expect(logouts[0]).toEqual({ user: { id: bobUser.id } });
    expect(all.at(-1)).toEqual({ event: "logout", data: { user: { id: bobUser.id } } });

    const logins = collect(ann, "login");
    const bob2 = client(node.wsUrl);
    await bob2.login({ token: bob.token! });
    await waitFor(() => logins.length === 1, "login broadcast");
    expect(logins[0]).toEqual({ user: { id: bobUser.id, username: "bob" } });

    const gone = collect(ann, "disconnect");
    bob2.close();
    await waitFor(() => gone.length === 1, "disconnect broadcast");
    expect(gone[0]).toEqual({ user: { id: bobUser.id } });
    expect(annUser.id).not.toBe(bobUser.id);
  });

  it("logout everywhere ends the user's other connections", async () => {
    const { c: one, user } = await loggedIn("ann");
    const two = client(node.wsUrl);
    await two.login({ token: one.token! });
    const forced = collect(two, "logout");
    await one.logout(true);
    await waitFor(() => forced.length === 1, "forced logout");
    expect(forced[0]).toEqual({ user: { id: user.id } });
    expect(two.user).toBeUndefined();
  });
});

describe("lifecycle", () => {
  it("queues requests until connected, and close() rejects with `closed`", async () => {
    const c = client(node.wsUrl);
    expect(c.state).toBe("connecting");
    const login = c.login({ username: "early" }); // sent once the socket is open
    expect((await login).user.data.username).toBe("early");
    expect(c.state).toBe("open");
    c.close();
    expect(c.state).toBe("closed");
    expect(await codeOf(c.sendMessage("x", "y"))).toBe("closed");
  });

  it("a request with no reply in time rejects with `timeout`", async () => {
    // A WebSocket server that never answers.
    const silent = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => silent.once("listening", r));
    try {
      const { port } = silent.address() as { port: number };
      const c = client(`ws://127.0.0.1:${port}/ws`, { requestTimeoutMs: 200 });
      expect(await codeOf(c.login({ username: "ann" }))).toBe("timeout");
    } finally {
      closeAll();
      silent.close();
    }
  });
});
