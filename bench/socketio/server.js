"use strict";
// Reference server for the lobbyd comparison: Socket.IO 4 with
// @socket.io/redis-adapter, the usual way to run Socket.IO on several
// processes. It implements just the three events the fan-out benchmark
// uses, with lobbyd's names and reply shapes:
//
//   login          {username}          -> ack {user}
//   connect_lobby  {lobby: {id}}       -> joins room id, ack {lobby, user},
//                                         broadcast connect_lobby to the room
//   send_message   {lobby: {id}, content}
//                                      -> broadcast send_message {message} to
//                                         the room except the sender (through
//                                         the Redis adapter, so other processes
//                                         deliver to their members), ack {message}
//
// Unlike lobbyd it stores nothing: no message history, no per-lobby seq in
// Redis (seq is a per-process counter), no access rules beyond "must have
// joined". It is a pure relay, the cheapest fair setup for Socket.IO.
//
// usage: node server.js --port 3001 --redis-url redis://127.0.0.1:6379 [--node-id a]

const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const port = Number(arg("port", "3001"));
const host = arg("host", "127.0.0.1");
const redisUrl = arg("redis-url", "redis://127.0.0.1:6379");
const nodeId = arg("node-id", `sio-${process.pid}`);

function reply(ack, data) {
  if (typeof ack === "function") ack(data);
}

function error(ack, code) {
  reply(ack, { error: { code } });
}

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error(`${nodeId} redis pub: ${e.message}`));
  sub.on("error", (e) => console.error(`${nodeId} redis sub: ${e.message}`));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer((req, res) => {
    res.writeHead(req.url === "/healthz" ? 200 : 404);
    res.end();
  });
  const io = new Server(httpServer, {
    transports: ["websocket"],
    serveClient: false,
    perMessageDeflate: false,
    adapter: createAdapter(pub, sub),
  });

  let seq = 0;
  io.on("connection", (socket) => {
    socket.on("login", (data, ack) => {
      const username = data && typeof data.username === "string" ? data.username : null;
      if (!socket.data.user) {
        socket.data.user = { id: crypto.randomUUID(), username };
      } else if (username) {
        socket.data.user.username = username;
      }
      const u = socket.data.user;
      reply(ack, {
        user: { type: "users", id: u.id, level: "private", owner: { id: u.id }, visibility: false, data: { username: u.username } },
      });
    });

    socket.on("connect_lobby", (data, ack) => {
      const u = socket.data.user;
      if (!u) return error(ack, "unauthenticated");
      const id = data && data.lobby && data.lobby.id;
      if (typeof id !== "string" || id.length === 0) return error(ack, "bad_request");
      socket.join(id);
      socket.to(id).emit("connect_lobby", { lobby: { id }, user: { id: u.id, username: u.username } });
      reply(ack, { lobby: { type: "lobbys", id, level: "partial" }, user: { id: u.id } });
    });

    socket.on("send_message", (data, ack) => {
      const u = socket.data.user;
      if (!u) return error(ack, "unauthenticated");
      const id = data && data.lobby && data.lobby.id;
      const content = data && data.content;
      if (typeof id !== "string" || typeof content !== "string" || content.length === 0) {
        return error(ack, "bad_request");
      }
      if (!socket.rooms.has(id)) return error(ack, "forbidden");
      const now = Date.now();
      seq += 1;
      const message = {
        type: "messages",
        id: crypto.randomUUID(),
        level: "partial",
        owner: { id: u.id, username: u.username },
        visibility: false,
        createdAt: now,
        data: { lobby: { id }, content, replied: null, seq, received: [], viewed: [], updatedAt: now },
        permissions: [],
      };
      socket.to(id).emit("send_message", { message });
      reply(ack, { message });
    });
  });

  httpServer.listen(port, host, () => {
    console.error(`socket.io ${nodeId} listening on ${host}:${port}, redis ${redisUrl}`);
  });

  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(`${nodeId}: ${e.stack || e}`);
  process.exit(1);
});
