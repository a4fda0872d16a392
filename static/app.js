// Built from clients/js/page/main.ts by `npm run build:page`; do not edit.
"use strict";
(() => {
  var __defProp = Object.defineProperty;
  var __typeError = (msg) => {
    throw TypeError(msg);
  };
  var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
  var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);
  var __accessCheck = (obj, member, msg) => member.has(obj) || __typeError("Cannot " + msg);
  var __privateGet = (obj, member, getter) => (__accessCheck(obj, member, "read from private field"), getter ? getter.call(obj) : member.get(obj));
  var __privateAdd = (obj, member, value) => member.has(obj) ? __typeError("Cannot add the same private member more than once") : member instanceof WeakSet ? member.add(obj) : member.set(obj, value);
  var __privateSet = (obj, member, value, setter) => (__accessCheck(obj, member, "write to private field"), setter ? setter.call(obj, value) : member.set(obj, value), value);
  var __privateMethod = (obj, member, method) => (__accessCheck(obj, member, "access private method"), method);
  var __privateWrapper = (obj, member, setter, getter) => ({
    set _(value) {
      __privateSet(obj, member, value, setter);
    },
    get _() {
      return __privateGet(obj, member, getter);
    }
  });

  // src/emitter.ts
  var _listeners;
  var Emitter = class {
    constructor() {
      __privateAdd(this, _listeners, /* @__PURE__ */ new Map());
    }
    on(event, listener) {
      let set = __privateGet(this, _listeners).get(event);
      if (!set) __privateGet(this, _listeners).set(event, set = /* @__PURE__ */ new Set());
      set.add(listener);
      return () => this.off(event, listener);
    }
    once(event, listener) {
      const off = this.on(event, (data) => {
        off();
        listener(data);
      });
      return off;
    }
    off(event, listener) {
      __privateGet(this, _listeners).get(event)?.delete(listener);
    }
    emit(event, data) {
      for (const listener of [...__privateGet(this, _listeners).get(event) ?? []]) {
        try {
          listener(data);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    }
  };
  _listeners = new WeakMap();

  // src/client.ts
  var LobbydError = class extends Error {
    constructor(code, message, event = null) {
      super(message);
      __publicField(this, "code", code);
      __publicField(this, "event", event);
      __publicField(this, "name", "LobbydError");
    }
  };
  var OPEN = 1;
  var _urls, _WebSocket, _opts, _ws, _urlIndex, _state, _attempt, _everReady, _timer, _nextAck, _pending, _queue, _held, _token, _user, _loggedIn, _lobbies, _LobbydClient_instances, setState_fn, connect_fn, scheduleReconnect_fn, resync_fn, catchUp_fn, raw_fn, send_fn, failPending_fn, onFrame_fn, onReply_fn, deliver_fn, emitBroadcast_fn, track_fn, markSeen_fn;
  var LobbydClient = class extends Emitter {
    constructor(options) {
      super();
      __privateAdd(this, _LobbydClient_instances);
      __privateAdd(this, _urls);
      __privateAdd(this, _WebSocket);
      __privateAdd(this, _opts);
      __privateAdd(this, _ws, null);
      __privateAdd(this, _urlIndex, 0);
      __privateAdd(this, _state, "connecting");
      __privateAdd(this, _attempt, 0);
      __privateAdd(this, _everReady, false);
      __privateAdd(this, _timer);
      __privateAdd(this, _nextAck, 1);
      __privateAdd(this, _pending, /* @__PURE__ */ new Map());
      /** requests made while not `open`, sent when the client is ready */
      __privateAdd(this, _queue, []);
      /** broadcasts held back while catching up (kept across failed attempts) */
      __privateAdd(this, _held, null);
      __privateAdd(this, _token);
      __privateAdd(this, _user);
      __privateAdd(this, _loggedIn, false);
      __privateAdd(this, _lobbies, /* @__PURE__ */ new Map());
      __privateSet(this, _urls, Array.isArray(options.url) ? [...options.url] : [options.url]);
      if (__privateGet(this, _urls).length === 0) throw new TypeError("lobbyd: no url");
      const WS = options.WebSocket ?? globalThis.WebSocket;
      if (!WS) throw new TypeError("lobbyd: no global WebSocket; pass options.WebSocket (e.g. the `ws` package)");
      __privateSet(this, _WebSocket, WS);
      __privateSet(this, _opts, {
        reconnect: options.reconnect ?? true,
        backoffInitialMs: options.backoffInitialMs ?? 250,
        backoffMaxMs: options.backoffMaxMs ?? 1e4,
        backoffJitter: options.backoffJitter ?? 0.5,
        requestTimeoutMs: options.requestTimeoutMs ?? 15e3,
        catchUpPageSize: options.catchUpPageSize ?? 500
      });
      __privateMethod(this, _LobbydClient_instances, connect_fn).call(this);
    }
    get state() {
      return __privateGet(this, _state);
    }
    /** The logged-in user (the login reply), if any. */
    get user() {
      return __privateGet(this, _loggedIn) ? __privateGet(this, _user) : void 0;
    }
    /** The token the client logs in with again after a reconnect. */
    get token() {
      return __privateGet(this, _token);
    }
    /** The url of the current (or next) connection. */
    get url() {
      return __privateGet(this, _urls)[__privateGet(this, _urlIndex)];
    }
    /** Highest seq of a lobby up to which every message was delivered. */
    lastSeq(lobbyId) {
      return __privateGet(this, _lobbies).get(lobbyId)?.last;
    }
    /** Resolves once the client is `open` (connected, logged in again, caught up). */
    ready() {
      if (__privateGet(this, _state) === "open") return Promise.resolve();
      if (__privateGet(this, _state) === "closed") return Promise.reject(new LobbydError("closed", "client closed"));
      return new Promise((resolve, reject) => {
        const offState = this.on("state", (state) => {
          if (state !== "open" && state !== "closed") return;
          offState();
          if (state === "open") resolve();
          else reject(new LobbydError("closed", "client closed"));
        });
      });
    }
    /** Closes the connection for good; pending and queued requests reject with `closed`. */
    close() {
      if (__privateGet(this, _state) === "closed") return;
      __privateMethod(this, _LobbydClient_instances, setState_fn).call(this, "closed");
      clearTimeout(__privateGet(this, _timer));
      const ws = __privateGet(this, _ws);
      __privateSet(this, _ws, null);
      ws?.close(1e3, "client closed");
      __privateMethod(this, _LobbydClient_instances, failPending_fn).call(this, "closed", "client closed");
      const queue = __privateGet(this, _queue);
      __privateSet(this, _queue, []);
      for (const send of queue) send();
    }
    request(event, data = {}) {
      return new Promise((resolve, reject) => {
        const send = () => {
          if (__privateGet(this, _state) === "closed") reject(new LobbydError("closed", "client closed", event));
          else __privateMethod(this, _LobbydClient_instances, send_fn).call(this, event, data, resolve, reject);
        };
        if (__privateGet(this, _state) === "open" || __privateGet(this, _state) === "closed") send();
        else __privateGet(this, _queue).push(send);
      });
    }
    login(data = {}) {
      return this.request("login", data);
    }
    logout(everywhere = false) {
      return this.request("logout", everywhere ? { everywhere } : {});
    }
    /** Joins (or creates) a lobby; `{}` creates one with a generated id. */
    connectLobby(lobby = {}) {
      return this.request("connect_lobby", { lobby });
    }
    disconnectLobby(lobbyId) {
      return this.request("disconnect_lobby", { lobby: { id: lobbyId } });
    }
    sendMessage(lobbyId, content, replied) {
      return this.request("send_message", { lobby: { id: lobbyId }, content, ...replied ? { replied } : {} });
    }
    received(lobbyId, messageId) {
      return this.request("received_message", { lobby: { id: lobbyId }, message: { id: messageId } });
    }
    viewed(lobbyId, messageId) {
      return this.request("viewed_message", { lobby: { id: lobbyId }, message: { id: messageId } });
    }
    typing(lobbyId, messageId) {
      return this.request("typing_message", { lobby: { id: lobbyId }, ...messageId ? { message: { id: messageId } } : {} });
    }
    /** `lobby` is required for messages. */
    getData(type, id, opts = {}) {
      return this.request("get_data", { type, id, ...refs(opts) });
    }
    /** One page; `lobby` is required for messages. */
    getAllData(type, opts = {}) {
      return this.request("get_all_data", { type, ...refs(opts) });
    }
    /** A lobby's messages in seq order (all of them, or those after `after`), following cursors. */
    async history(lobbyId, after) {
      const out = [];
      let page = await this.getAllData("messages", { lobby: lobbyId, limit: 500, ...after !== void 0 ? { after } : {} });
      out.push(...page.datas);
      while (page.cursor !== null && page.datas.length > 0) {
        page = await this.getAllData("messages", { lobby: lobbyId, limit: 500, cursor: page.cursor });
        out.push(...page.datas);
      }
      return out;
    }
    /** `lobby` is required for messages (`updateData("messages", id, {content}, {lobby})`). */
    updateData(type, id, data, opts = {}) {
      return this.request("update_data", { type, id, data, ...refs(opts) });
    }
    useAction(type, id, action, actionArgs, opts = {}) {
      return this.request("use_action", { type, id, action, actionArgs, ...opts });
    }
  };
  _urls = new WeakMap();
  _WebSocket = new WeakMap();
  _opts = new WeakMap();
  _ws = new WeakMap();
  _urlIndex = new WeakMap();
  _state = new WeakMap();
  _attempt = new WeakMap();
  _everReady = new WeakMap();
  _timer = new WeakMap();
  _nextAck = new WeakMap();
  _pending = new WeakMap();
  _queue = new WeakMap();
  _held = new WeakMap();
  _token = new WeakMap();
  _user = new WeakMap();
  _loggedIn = new WeakMap();
  _lobbies = new WeakMap();
  _LobbydClient_instances = new WeakSet();
  // ---- Connection ------------------------------------------------------------
  setState_fn = function(state) {
    if (__privateGet(this, _state) === state) return;
    __privateSet(this, _state, state);
    this.emit("state", state);
  };
  connect_fn = function() {
    const url = this.url;
    let ws;
    try {
      ws = new (__privateGet(this, _WebSocket))(url);
    } catch {
      __privateMethod(this, _LobbydClient_instances, scheduleReconnect_fn).call(this);
      return;
    }
    __privateSet(this, _ws, ws);
    ws.onopen = () => {
      if (ws !== __privateGet(this, _ws)) return;
      __privateMethod(this, _LobbydClient_instances, setState_fn).call(this, "syncing");
      __privateMethod(this, _LobbydClient_instances, resync_fn).call(this, url).catch(() => {
        if (ws === __privateGet(this, _ws)) ws.close(4e3, "resync failed");
      });
    };
    ws.onmessage = (ev) => {
      if (ws === __privateGet(this, _ws)) __privateMethod(this, _LobbydClient_instances, onFrame_fn).call(this, typeof ev.data === "string" ? ev.data : String(ev.data));
    };
    ws.onerror = () => {
    };
    ws.onclose = (ev) => {
      if (ws !== __privateGet(this, _ws)) return;
      __privateSet(this, _ws, null);
      __privateMethod(this, _LobbydClient_instances, failPending_fn).call(this, "disconnected", "the connection closed before the reply");
      this.emit("close", { code: ev.code, reason: ev.reason });
      __privateMethod(this, _LobbydClient_instances, scheduleReconnect_fn).call(this);
    };
  };
  scheduleReconnect_fn = function() {
    if (__privateGet(this, _state) === "closed") return;
    if (!__privateGet(this, _opts).reconnect) {
      this.close();
      return;
    }
    __privateWrapper(this, _attempt)._++;
    const { backoffInitialMs, backoffMaxMs, backoffJitter } = __privateGet(this, _opts);
    const base = Math.min(backoffMaxMs, backoffInitialMs * 2 ** (__privateGet(this, _attempt) - 1));
    const delayMs = Math.round(base * (1 - backoffJitter * Math.random()));
    __privateSet(this, _urlIndex, (__privateGet(this, _urlIndex) + 1) % __privateGet(this, _urls).length);
    __privateMethod(this, _LobbydClient_instances, setState_fn).call(this, "reconnecting");
    this.emit("reconnecting", { attempt: __privateGet(this, _attempt), delayMs, url: this.url });
    __privateSet(this, _timer, setTimeout(() => __privateMethod(this, _LobbydClient_instances, connect_fn).call(this), delayMs));
  };
  resync_fn = async function(url) {
    const reconnect = __privateGet(this, _everReady);
    __privateGet(this, _held) ?? __privateSet(this, _held, []);
    if (__privateGet(this, _loggedIn) && __privateGet(this, _token)) {
      try {
        await __privateMethod(this, _LobbydClient_instances, raw_fn).call(this, "login", { token: __privateGet(this, _token) });
      } catch (err) {
        if (!(err instanceof LobbydError) || err.code !== "unauthenticated") throw err;
        __privateSet(this, _loggedIn, false);
        __privateGet(this, _lobbies).clear();
        this.emit("session_lost", err);
      }
    }
    if (__privateGet(this, _loggedIn)) {
      for (const [lobbyId, track] of [...__privateGet(this, _lobbies)]) await __privateMethod(this, _LobbydClient_instances, catchUp_fn).call(this, lobbyId, track);
    }
    const held = __privateGet(this, _held);
    __privateSet(this, _held, null);
    for (const frame of held) __privateMethod(this, _LobbydClient_instances, deliver_fn).call(this, frame);
    __privateSet(this, _attempt, 0);
    __privateSet(this, _everReady, true);
    __privateMethod(this, _LobbydClient_instances, setState_fn).call(this, "open");
    this.emit("ready", { reconnect, url });
    const queue = __privateGet(this, _queue);
    __privateSet(this, _queue, []);
    for (const send of queue) send();
  };
  catchUp_fn = async function(lobbyId, track) {
    if (track.last === void 0) settle(track, 0);
    const base = { type: "messages", lobby: { id: lobbyId }, limit: __privateGet(this, _opts).catchUpPageSize };
    let req = { ...base, after: track.last };
    for (; ; ) {
      let page;
      try {
        page = await __privateMethod(this, _LobbydClient_instances, raw_fn).call(this, "get_all_data", req, false);
      } catch (err) {
        if (err instanceof LobbydError && (err.code === "forbidden" || err.code === "not_found")) {
          __privateGet(this, _lobbies).delete(lobbyId);
          return;
        }
        throw err;
      }
      for (const message of page.datas) {
        if (__privateMethod(this, _LobbydClient_instances, markSeen_fn).call(this, message, true)) __privateMethod(this, _LobbydClient_instances, emitBroadcast_fn).call(this, "send_message", { message });
      }
      if (page.cursor === null || page.datas.length === 0) return;
      req = { ...base, cursor: page.cursor };
    }
  };
  /**
   * Sends on the current connection, whatever the state (used by the
   * resync). `learn: false` keeps the reply from counting its messages as
   * delivered (the catch-up does that itself, as it emits them).
   */
  raw_fn = function(event, data, learn = true) {
    return new Promise((resolve, reject) => __privateMethod(this, _LobbydClient_instances, send_fn).call(this, event, data, resolve, reject, learn));
  };
  send_fn = function(event, data, resolve, reject, learn = true) {
    const ws = __privateGet(this, _ws);
    if (!ws || ws.readyState !== OPEN) {
      reject(new LobbydError("disconnected", "not connected", event));
      return;
    }
    const ack = __privateWrapper(this, _nextAck)._++;
    const timer = setTimeout(() => {
      __privateGet(this, _pending).delete(ack);
      reject(new LobbydError("timeout", `no reply to ${event} within ${__privateGet(this, _opts).requestTimeoutMs} ms`, event));
    }, __privateGet(this, _opts).requestTimeoutMs);
    __privateGet(this, _pending).set(ack, { resolve, reject, event, data, timer, learn });
    ws.send(JSON.stringify({ event, data, ack }));
  };
  failPending_fn = function(code, message) {
    const pending = [...__privateGet(this, _pending).values()];
    __privateGet(this, _pending).clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(new LobbydError(code, message, p.event));
    }
  };
  // ---- Incoming frames -------------------------------------------------------
  onFrame_fn = function(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof frame !== "object" || frame === null || typeof frame.event !== "string") return;
    if (typeof frame.ack === "number") {
      const p = __privateGet(this, _pending).get(frame.ack);
      if (!p) return;
      __privateGet(this, _pending).delete(frame.ack);
      clearTimeout(p.timer);
      if (frame.event === "error") {
        const e = frame.data ?? {};
        p.reject(new LobbydError(e.code ?? "internal", e.message ?? "error", e.event ?? p.event));
      } else {
        if (p.learn) __privateMethod(this, _LobbydClient_instances, onReply_fn).call(this, p.event, p.data, frame.data);
        p.resolve(frame.data);
      }
    } else if (frame.event === "error") {
      this.emit("error", frame.data);
    } else if (__privateGet(this, _held)) {
      __privateGet(this, _held).push(frame);
    } else {
      __privateMethod(this, _LobbydClient_instances, deliver_fn).call(this, frame);
    }
  };
  /** Learns from replies: the session, the lobbies joined and the messages seen. */
  onReply_fn = function(event, req, data) {
    const d = data;
    switch (event) {
      case "login":
        __privateSet(this, _loggedIn, true);
        __privateSet(this, _user, d.user);
        __privateSet(this, _token, d.user?.data?.token ?? req.token ?? __privateGet(this, _token));
        break;
      case "logout":
        __privateSet(this, _loggedIn, false);
        __privateGet(this, _lobbies).clear();
        break;
      case "connect_lobby":
        __privateMethod(this, _LobbydClient_instances, track_fn).call(this, d.lobby.id);
        break;
      case "disconnect_lobby":
        __privateGet(this, _lobbies).delete(d.lobby.id);
        break;
      case "send_message":
        __privateMethod(this, _LobbydClient_instances, markSeen_fn).call(this, d.message, false);
        break;
      case "get_data":
        if (d.type === "messages") __privateMethod(this, _LobbydClient_instances, markSeen_fn).call(this, d.data, false);
        break;
      case "get_all_data":
        if (d.type === "messages" && d.datas.length > 0) {
          const track = __privateMethod(this, _LobbydClient_instances, track_fn).call(this, d.datas[0].data.lobby.id);
          if (track.last === void 0 && req.cursor === void 0) settle(track, req.after ?? 0);
          for (const m of d.datas) __privateMethod(this, _LobbydClient_instances, markSeen_fn).call(this, m, false);
        }
        break;
    }
  };
  deliver_fn = function(frame) {
    const d = frame.data;
    const me2 = __privateGet(this, _user)?.id;
    switch (frame.event) {
      case "send_message":
        if (!__privateMethod(this, _LobbydClient_instances, markSeen_fn).call(this, d.message, true)) return;
        break;
      case "connect_lobby":
        if (d.user?.id === me2) __privateMethod(this, _LobbydClient_instances, track_fn).call(this, d.lobby.id);
        break;
      case "disconnect_lobby":
        if (d.user?.id === me2) __privateGet(this, _lobbies).delete(d.lobby.id);
        break;
      case "logout":
        if (d.user?.id === me2) {
          __privateSet(this, _loggedIn, false);
          __privateGet(this, _lobbies).clear();
        }
        break;
    }
    __privateMethod(this, _LobbydClient_instances, emitBroadcast_fn).call(this, frame.event, frame.data);
  };
  emitBroadcast_fn = function(event, data) {
    this.emit(event, data);
    this.emit("broadcast", { event, data });
  };
  track_fn = function(lobbyId) {
    let t = __privateGet(this, _lobbies).get(lobbyId);
    if (!t) __privateGet(this, _lobbies).set(lobbyId, t = { ahead: /* @__PURE__ */ new Set() });
    return t;
  };
  /**
   * Records that a message was delivered; false when it had been already.
   * `ordered` is true for broadcasts and catch-up pages, which come in seq
   * order: the first of them fixes `last` when it is still unknown (what
   * came before was history from before this client joined).
   */
  markSeen_fn = function(message, ordered) {
    const seq = message.data.seq;
    const t = __privateMethod(this, _LobbydClient_instances, track_fn).call(this, message.data.lobby.id);
    if (t.last === void 0 && ordered) settle(t, seq - 1);
    if (t.last !== void 0 && seq <= t.last || t.ahead.has(seq)) return false;
    t.ahead.add(seq);
    if (t.last !== void 0) settle(t, t.last);
    return true;
  };
  function settle(t, last) {
    t.last = last;
    for (const s of t.ahead) if (s <= last) t.ahead.delete(s);
    while (t.ahead.delete(t.last + 1)) t.last++;
  }
  function refs(opts) {
    const { lobby, ...rest } = opts;
    return lobby === void 0 ? rest : { ...rest, lobby: { id: lobby } };
  }

  // page/main.ts
  var TOKEN_KEY = "lobbyd.token";
  var LOBBY_KEY = "lobbyd.lobby";
  var TYPING_SHOWN_MS = 3e3;
  var TYPING_EVERY_MS = 1500;
  var params = new URLSearchParams(location.search);
  var wsUrl = params.get("ws") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  var client = new LobbydClient({ url: wsUrl });
  window.lobbyd = client;
  var lobbies = /* @__PURE__ */ new Map();
  var active;
  var lastTypingSent = 0;
  var sentReceipts = /* @__PURE__ */ new Set();
  var me = () => client.user?.id;
  var $ = (sel) => document.querySelector(sel);
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props);
    node.append(...children);
    return node;
  }
  var loginView = $("#login-view");
  var chatView = $("#chat-view");
  var loginForm = $("#login-form");
  var joinForm = $("#join-form");
  var composer = $("#composer");
  var messagesEl = $("#messages");
  var messageEls = /* @__PURE__ */ new Map();
  function field(form, name) {
    return form.elements.namedItem(name);
  }
  function showError(id, err) {
    $(id).textContent = err instanceof LobbydError ? `${err.code}: ${err.message}` : err ? String(err) : "";
  }
  var STATUS_TEXT = { connecting: "connecting\u2026", syncing: "catching up\u2026", open: "online", reconnecting: "reconnecting\u2026", closed: "closed" };
  client.on("state", (state) => {
    const status = $("#status");
    status.dataset.state = state;
    status.textContent = STATUS_TEXT[state];
  });
  function showLogin() {
    loginView.hidden = false;
    chatView.hidden = true;
    $("#logout").hidden = true;
    $("#me").textContent = "";
    lobbies.clear();
    messageEls.clear();
    active = void 0;
  }
  async function enter() {
    const user = client.user;
    localStorage.setItem(TOKEN_KEY, client.token);
    loginView.hidden = true;
    chatView.hidden = false;
    $("#logout").hidden = false;
    $("#me").textContent = user.data.username ?? user.id;
    const saved = localStorage.getItem(LOBBY_KEY);
    for (const { id } of user.data.lobbys ?? []) await openLobby(id, id === saved);
    if (!active && lobbies.size) select(lobbies.keys().next().value);
    render();
  }
  loginForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("#login-error", "");
    try {
      await client.login({ username: field(loginForm, "username").value.trim() });
      await enter();
    } catch (err) {
      showError("#login-error", err);
    }
  });
  $("#logout").addEventListener("click", async () => {
    await client.logout().catch(() => {
    });
    localStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  client.on("session_lost", () => {
    localStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  client.on("logout", ({ user }) => {
    if (client.user) return setOnline(user.id, false);
    localStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  client.on("ready", ({ reconnect }) => {
    if (reconnect && client.user) for (const id of lobbies.keys()) void refreshInfo(id);
  });
  function lobbyState(id) {
    let l = lobbies.get(id);
    if (!l) {
      l = { id, members: /* @__PURE__ */ new Map(), messages: /* @__PURE__ */ new Map(), edited: /* @__PURE__ */ new Set(), typing: /* @__PURE__ */ new Map(), unread: 0 };
      lobbies.set(id, l);
    }
    return l;
  }
  async function refreshInfo(id) {
    const l = lobbies.get(id);
    if (!l) return;
    try {
      const { data } = await client.getData("lobbys", id);
      l.info = data;
      l.members = new Map((data.data.users ?? []).map((u) => [u.id, u]));
      render();
    } catch {
    }
  }
  async function openLobby(id, makeActive) {
    lobbyState(id);
    await refreshInfo(id);
    for (const m of await client.history(id)) addMessage(m, false);
    if (makeActive || !active) select(id);
  }
  function select(id) {
    active = id;
    localStorage.setItem(LOBBY_KEY, id);
    const l = lobbyState(id);
    l.unread = 0;
    observer.disconnect();
    onScreen.clear();
    messagesEl.replaceChildren();
    messageEls.clear();
    for (const m of [...l.messages.values()].sort((a, b) => a.data.seq - b.data.seq)) renderMessage(l, m);
    messagesEl.scrollTop = messagesEl.scrollHeight;
    render();
  }
  joinForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("#join-error", "");
    const id = field(joinForm, "lobby").value.trim();
    const token = field(joinForm, "token").value.trim();
    try {
      const { lobby } = await client.connectLobby({
        ...id ? { id } : {},
        ...token ? { token } : {},
        visibility: field(joinForm, "public").checked
      });
      joinForm.reset();
      field(joinForm, "public").checked = true;
      await openLobby(lobby.id, true);
    } catch (err) {
      showError("#join-error", err);
    }
  });
  $("#leave").addEventListener("click", async () => {
    if (!active) return;
    const id = active;
    await client.disconnectLobby(id).catch(() => {
    });
    dropLobby(id);
  });
  function dropLobby(id) {
    lobbies.delete(id);
    if (active === id) {
      active = void 0;
      messagesEl.replaceChildren();
      messageEls.clear();
      if (lobbies.size) select(lobbies.keys().next().value);
    }
    render();
  }
  client.on("connect_lobby", ({ lobby, user }) => {
    if (user.id === me()) void openLobby(lobby.id, false);
    else if (lobbies.has(lobby.id)) {
      lobbyState(lobby.id).members.set(user.id, { id: user.id, username: user.username ?? null, online: true });
      void refreshInfo(lobby.id);
      render();
    }
  });
  client.on("disconnect_lobby", ({ lobby, user }) => {
    if (user.id === me()) dropLobby(lobby.id);
    else {
      lobbies.get(lobby.id)?.members.delete(user.id);
      render();
    }
  });
  function setOnline(userId, online, username) {
    for (const l of lobbies.values()) {
      const m = l.members.get(userId);
      if (m) {
        m.online = online;
        if (username !== void 0) m.username = username;
      }
    }
    render();
  }
  client.on("login", ({ user }) => setOnline(user.id, true, user.username));
  client.on("disconnect", ({ user }) => setOnline(user.id, false));
  function addMessage(m, live) {
    if (!lobbies.has(m.data.lobby.id)) void openLobby(m.data.lobby.id, false);
    const l = lobbyState(m.data.lobby.id);
    l.messages.set(m.id, m);
    if (live && m.data.lobby.id !== active && m.owner.id !== me()) l.unread++;
    if (m.data.lobby.id === active) renderMessage(l, m);
    if (m.owner.id !== me()) {
      receipt("received", m);
      clearTyping(l, m.owner.id);
    }
    render();
  }
  client.on("send_message", ({ message }) => addMessage(message, true));
  client.on("update_data", (u) => {
    if (u.type === "messages") {
      for (const l of lobbies.values()) {
        const m = l.messages.get(u.id);
        if (!m) continue;
        m.data.content = String(u.data.content ?? m.data.content);
        m.data.updatedAt = u.updatedAt;
        l.edited.add(u.id);
        if (l.id === active) renderMessage(l, m);
      }
    } else if (u.type === "users" && typeof u.data.username === "string") {
      for (const l of lobbies.values()) {
        const member = l.members.get(u.id);
        if (member) member.username = u.data.username;
      }
      render();
    } else if (u.type === "lobbys") {
      void refreshInfo(u.id);
    }
  });
  function onReceipt(kind) {
    return ({ lobby, message, user }) => {
      const l = lobbies.get(lobby.id);
      const m = l?.messages.get(message.id);
      if (!l || !m) return;
      const add = (list) => list.some((r) => r.id === user.id) || list.push({ id: user.id });
      add(m.data[kind]);
      if (kind === "viewed") add(m.data.received);
      if (l.id === active) renderMessage(l, m);
    };
  }
  client.on("received_message", onReceipt("received"));
  client.on("viewed_message", onReceipt("viewed"));
  function receipt(kind, m) {
    const my = me();
    if (!my || m.owner.id === my) return;
    const key = `${kind}:${m.id}`;
    const done = m.data[kind].some((r) => r.id === my) || kind === "received" && m.data.viewed.some((r) => r.id === my);
    if (done || sentReceipts.has(key)) return;
    sentReceipts.add(key);
    const send = kind === "received" ? client.received(m.data.lobby.id, m.id) : client.viewed(m.data.lobby.id, m.id);
    send.catch(() => sentReceipts.delete(key));
  }
  var onScreen = /* @__PURE__ */ new Set();
  var observer = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        const id = e.target.dataset.id;
        if (e.isIntersecting) onScreen.add(id);
        else onScreen.delete(id);
      }
      markViewed();
    },
    { threshold: 0.5 }
  );
  function markViewed() {
    if (document.visibilityState !== "visible" || !active) return;
    const l = lobbies.get(active);
    for (const id of onScreen) {
      const m = l?.messages.get(id);
      if (m) receipt("viewed", m);
    }
  }
  document.addEventListener("visibilitychange", markViewed);
  function ticks(m) {
    const others = (list) => list.filter((r) => r.id !== m.owner.id);
    const names = (list) => list.map((r) => nameOf(m.data.lobby.id, r.id)).join(", ");
    const viewed = others(m.data.viewed);
    const received = others(m.data.received);
    if (viewed.length) return ["viewed", "\u2713\u2713", `viewed by ${names(viewed)}`];
    if (received.length) return ["received", "\u2713\u2713", `received by ${names(received)}`];
    return ["sent", "\u2713", "sent"];
  }
  function nameOf(lobbyId, userId) {
    return lobbies.get(lobbyId)?.members.get(userId)?.username ?? userId.slice(0, 8);
  }
  function renderMessage(l, m) {
    const mine = m.owner.id === me();
    let li = messageEls.get(m.id);
    if (!li) {
      li = el("li", { className: mine ? "msg mine" : "msg" });
      li.dataset.id = m.id;
      li.dataset.seq = String(m.data.seq);
      li.dataset.mine = String(mine);
      const stick = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 40;
      const next = [...messageEls.values()].find((e) => Number(e.dataset.seq) > m.data.seq);
      messagesEl.insertBefore(li, next ?? null);
      messageEls.set(m.id, li);
      if (!mine) observer.observe(li);
      if (stick || mine) messagesEl.scrollTop = messagesEl.scrollHeight;
    }
    if (li.querySelector("input")) return;
    const time = new Date(m.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const meta = el("div", { className: "meta" }, el("span", { className: "author" }, m.owner.username ?? nameOf(l.id, m.owner.id)), time);
    if (l.edited.has(m.id) || m.data.updatedAt > m.createdAt) meta.append(el("span", { className: "edited" }, "edited"));
    if (mine) {
      const edit = el("button", { className: "link edit", textContent: "edit", type: "button" });
      edit.addEventListener("click", () => startEdit(l, m, li));
      const [state, text, title] = ticks(m);
      const t = el("span", { className: "ticks", textContent: text, title });
      t.dataset.state = state;
      t.dataset.testid = "ticks";
      meta.append(edit, t);
    }
    li.replaceChildren(meta, el("div", { className: "content", textContent: m.data.content }));
  }
  function startEdit(l, m, li) {
    const input = el("input", { value: m.data.content, className: "edit-input" });
    const finish = () => {
      input.remove();
      renderMessage(l, m);
    };
    input.addEventListener("keydown", async (e) => {
      if (e.key === "Escape") finish();
      if (e.key !== "Enter") return;
      const content = input.value.trim();
      if (!content || content === m.data.content) return finish();
      try {
        const reply = await client.updateData("messages", m.id, { content }, { lobby: l.id });
        m.data.content = content;
        m.data.updatedAt = reply.updatedAt;
        l.edited.add(m.id);
      } catch (err) {
        showError("#join-error", err);
      }
      finish();
    });
    li.querySelector(".content").replaceChildren(input);
    input.focus();
  }
  var contentInput = field(composer, "content");
  composer.addEventListener("submit", async (e) => {
    e.preventDefault();
    const content = contentInput.value;
    if (!active || !content.trim()) return;
    contentInput.value = "";
    lastTypingSent = 0;
    try {
      const { message } = await client.sendMessage(active, content);
      addMessage(message, false);
    } catch (err) {
      if (!contentInput.value) contentInput.value = content;
      showError("#join-error", err);
    }
  });
  contentInput.addEventListener("input", () => {
    if (!active || !contentInput.value || Date.now() - lastTypingSent < TYPING_EVERY_MS) return;
    lastTypingSent = Date.now();
    client.typing(active).catch(() => {
    });
  });
  client.on("typing_message", ({ lobby, user }) => {
    const l = lobbies.get(lobby.id);
    if (!l || user.id === me()) return;
    clearTimeout(l.typing.get(user.id));
    l.typing.set(user.id, setTimeout(() => clearTyping(l, user.id), TYPING_SHOWN_MS));
    render();
  });
  function clearTyping(l, userId) {
    if (!l.typing.has(userId)) return;
    clearTimeout(l.typing.get(userId));
    l.typing.delete(userId);
    render();
  }
  function render() {
    const lobbyList = $("#lobbies");
    lobbyList.replaceChildren(
      ...[...lobbies.values()].map((l2) => {
        const b = el("button", { type: "button", className: l2.id === active ? "active" : "" }, el("span", {}, l2.id));
        b.dataset.lobby = l2.id;
        if (l2.unread) b.append(el("span", { className: "unread" }, String(l2.unread)));
        b.addEventListener("click", () => select(l2.id));
        return el("li", {}, b);
      })
    );
    const l = active ? lobbies.get(active) : void 0;
    $("#lobby-title").textContent = l ? l.id : "no lobby yet";
    const token = l?.info?.data.token;
    $("#lobby-token").textContent = token ? `token: ${token}` : "";
    $("#leave").hidden = !l;
    for (const input of composer.querySelectorAll("input, button")) input.disabled = !l;
    const members = [...l?.members.values() ?? []].sort((a, b) => Number(b.online) - Number(a.online) || (a.username ?? "").localeCompare(b.username ?? ""));
    $("#members").replaceChildren(
      ...members.map((m) => {
        const li = el("li", { className: m.online ? "online" : "offline" }, m.username ?? m.id.slice(0, 8));
        if (m.id === me()) li.append(" (you)");
        li.append(el("span", { className: "state" }, m.online ? "online" : "offline"));
        li.dataset.userId = m.id;
        li.dataset.online = String(m.online);
        return li;
      })
    );
    const typing = l ? [...l.typing.keys()].map((id) => nameOf(l.id, id)) : [];
    $("#typing").textContent = typing.length ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing\u2026` : "";
  }
  async function start() {
    const token = localStorage.getItem(TOKEN_KEY);
    if (!token) return showLogin();
    try {
      await client.login({ token });
      await enter();
    } catch (err) {
      if (err instanceof LobbydError && err.code === "unauthenticated") localStorage.removeItem(TOKEN_KEY);
      showLogin();
    }
  }
  void start();
})();
