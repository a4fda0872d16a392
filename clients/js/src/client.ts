import { Emitter } from "./emitter.js";
import type {
  BroadcastMap,
  ConnectLobbyRequest,
  ErrorCode,
  ErrorData,
  Frame,
  GetAllDataReply,
  GetAllDataRequest,
  GetDataReply,
  LoginRequest,
  MessageInfo,
  ObjectType,
  RequestEvent,
  RequestMap,
  UpdatableFields,
  UseActionRequest,
  UserInfo,
} from "./protocol.js";

/** A failed request: `code` is a protocol error code or a client one. */
export class LobbydError extends Error {
  override name = "LobbydError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** the request's event, when known */
    readonly event: string | null = null,
  ) {
    super(message);
  }
}

/**
 * What the client needs of a WebSocket: the browser's, Node 22's, or `ws`.
 * (The handlers take `any` so that each of those classes fits as it is.)
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /** `ws://host:port/ws`; with several, each reconnect attempt moves on to the next. */
  url: string | string[];
  /** A WebSocket class; defaults to `globalThis.WebSocket` (browsers, Node >= 22). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect when the connection drops (default true). */
  reconnect?: boolean;
  /** First reconnect delay (default 250 ms); it doubles per attempt ... */
  backoffInitialMs?: number;
  /** ... up to this (default 10 s). */
  backoffMaxMs?: number;
  /** Random part of each delay, 0..1 (default 0.5: a delay d becomes d/2..d). */
  backoffJitter?: number;
  /** A request with no reply by then rejects with `timeout` (default 15 s). */
  requestTimeoutMs?: number;
  /** `limit` of the catch-up pages after a reconnect (default 500). */
  catchUpPageSize?: number;
}

/**
 * - `connecting`: first connection attempt
 * - `syncing`: connected; logging in again and catching up
 * - `open`: ready; requests go out at once
 * - `reconnecting`: waiting to reconnect; requests wait
 * - `closed`: `close()` was called
 */
export type ClientState = "connecting" | "syncing" | "open" | "reconnecting" | "closed";

/** Events of the client: every broadcast of the protocol, plus its own. */
export interface ClientEvents extends BroadcastMap {
  /** the state changed */
  state: ClientState;
  /** connected and, after a reconnect, logged in again and caught up */
  ready: { reconnect: boolean; url: string };
  /** the connection closed */
  close: { code: number; reason: string };
  /** a reconnect is scheduled */
  reconnecting: { attempt: number; delayMs: number; url: string };
  /** an `error` frame with no ack (a frame the server could not parse) */
  error: ErrorData;
  /** logging in again after a reconnect failed (e.g. the token is gone) */
  session_lost: LobbydError;
  /** every broadcast, including application events */
  broadcast: { event: string; data: unknown };
}

interface Pending {
  resolve: (data: unknown) => void;
  reject: (err: LobbydError) => void;
  event: string;
  data: Record<string, unknown>;
  timer: ReturnType<typeof setTimeout>;
  learn: boolean;
}

/**
 * What the client knows of one lobby's messages: every seq <= `last` has
 * been delivered, and so has every seq in `ahead` (seqs above `last` that
 * came out of order, e.g. the reply to your own send overtaking a
 * broadcast). `last` is unknown until the first broadcast or history page.
 */
interface Track {
  last?: number;
  ahead: Set<number>;
}

const OPEN = 1;

export class LobbydClient extends Emitter<ClientEvents> {
  readonly #urls: string[];
  readonly #WebSocket: WebSocketConstructor;
  readonly #opts: Required<Omit<ClientOptions, "url" | "WebSocket">>;

  #ws: WebSocketLike | null = null;
  #urlIndex = 0;
  #state: ClientState = "connecting";
  #attempt = 0;
  #everReady = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  #nextAck = 1;
  readonly #pending = new Map<number, Pending>();
  /** requests made while not `open`, sent when the client is ready */
  #queue: Array<() => void> = [];
  /** broadcasts held back while catching up (kept across failed attempts) */
  #held: Frame[] | null = null;

  #token: string | undefined;
  #user: UserInfo | undefined;
  #loggedIn = false;
  readonly #lobbies = new Map<string, Track>();

  constructor(options: ClientOptions) {
    super();
    this.#urls = Array.isArray(options.url) ? [...options.url] : [options.url];
    if (this.#urls.length === 0) throw new TypeError("lobbyd: no url");
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("lobbyd: no global WebSocket; pass options.WebSocket (e.g. the `ws` package)");
    this.#WebSocket = WS;
    this.#opts = {
      reconnect: options.reconnect ?? true,
      backoffInitialMs: options.backoffInitialMs ?? 250,
      backoffMaxMs: options.backoffMaxMs ?? 10_000,
      backoffJitter: options.backoffJitter ?? 0.5,
      requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
      catchUpPageSize: options.catchUpPageSize ?? 500,
    };
    this.#connect();
  }

  get state(): ClientState {
    return this.#state;
  }
  /** The logged-in user (the login reply), if any. */
  get user(): UserInfo | undefined {
    return this.#loggedIn ? this.#user : undefined;
  }
  /** The token the client logs in with again after a reconnect. */
  get token(): string | undefined {
    return this.#token;
  }
  /** The url of the current (or next) connection. */
  get url(): string {
    return this.#urls[this.#urlIndex]!;
  }
  /** Highest seq of a lobby up to which every message was delivered. */
  lastSeq(lobbyId: string): number | undefined {
    return this.#lobbies.get(lobbyId)?.last;
  }

  /** Resolves once the client is `open` (connected, logged in again, caught up). */
  ready(): Promise<void> {
    if (this.#state === "open") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new LobbydError("closed", "client closed"));
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
  close(): void {
    if (this.#state === "closed") return;
    this.#setState("closed");
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000, "client closed");
    this.#failPending("closed", "client closed");
    const queue = this.#queue;
    this.#queue = [];
    for (const send of queue) send();
  }

  // ---- Requests --------------------------------------------------------------

  /**
   * Sends a request and resolves with the reply's `data`, or rejects with a
   * `LobbydError`. Requests made while the client is reconnecting are sent
   * once it is ready again; a request in flight when the connection drops
   * rejects with `disconnected` (it may or may not have been applied).
   */
  request<E extends RequestEvent>(event: E, data: RequestMap[E][0]): Promise<RequestMap[E][1]>;
  request<R = unknown>(event: string, data?: object): Promise<R>;
  request(event: string, data: object = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const send = () => {
        if (this.#state === "closed") reject(new LobbydError("closed", "client closed", event));
        else this.#send(event, data as Record<string, unknown>, resolve, reject);
      };
      if (this.#state === "open" || this.#state === "closed") send();
      else this.#queue.push(send);
    });
  }

  login(data: LoginRequest = {}) {
    return this.request("login", data);
  }
  logout(everywhere = false) {
    return this.request("logout", everywhere ? { everywhere } : {});
  }
  /** Joins (or creates) a lobby; `{}` creates one with a generated id. */
  connectLobby(lobby: ConnectLobbyRequest["lobby"] = {}) {
    return this.request("connect_lobby", { lobby });
  }
  disconnectLobby(lobbyId: string) {
    return this.request("disconnect_lobby", { lobby: { id: lobbyId } });
  }
  sendMessage(lobbyId: string, content: string, replied?: string) {
    return this.request("send_message", { lobby: { id: lobbyId }, content, ...(replied ? { replied } : {}) });
  }
  received(lobbyId: string, messageId: string) {
    return this.request("received_message", { lobby: { id: lobbyId }, message: { id: messageId } });
  }
  viewed(lobbyId: string, messageId: string) {
    return this.request("viewed_message", { lobby: { id: lobbyId }, message: { id: messageId } });
  }
  typing(lobbyId: string, messageId?: string) {
    return this.request("typing_message", { lobby: { id: lobbyId }, ...(messageId ? { message: { id: messageId } } : {}) });
  }
  /** `lobby` is required for messages. */
  getData<T extends ObjectType>(type: T, id: string, opts: { token?: string; lobby?: string } = {}) {
    return this.request("get_data", { type, id, ...refs(opts) }) as Promise<GetDataReply<T>>;
  }
  /** One page; `lobby` is required for messages. */
  getAllData<T extends ObjectType>(
    type: T,
    opts: { token?: string; lobby?: string; limit?: number; cursor?: string; after?: number } = {},
  ) {
    return this.request("get_all_data", { type, ...refs(opts) }) as Promise<GetAllDataReply<T>>;
  }
  /** A lobby's messages in seq order (all of them, or those after `after`), following cursors. */
  async history(lobbyId: string, after?: number): Promise<MessageInfo[]> {
    const out: MessageInfo[] = [];
    let page = await this.getAllData("messages", { lobby: lobbyId, limit: 500, ...(after !== undefined ? { after } : {}) });
    out.push(...page.datas);
    while (page.cursor !== null && page.datas.length > 0) {
      page = await this.getAllData("messages", { lobby: lobbyId, limit: 500, cursor: page.cursor });
      out.push(...page.datas);
    }
    return out;
  }
  /** `lobby` is required for messages (`updateData("messages", id, {content}, {lobby})`). */
  updateData<T extends ObjectType>(type: T, id: string, data: UpdatableFields[T], opts: { token?: string; lobby?: string } = {}) {
    return this.request("update_data", { type, id, data, ...refs(opts) });
  }
  useAction(type: ObjectType, id: string, action: UseActionRequest["action"], actionArgs: unknown[], opts: { token?: string } = {}) {
    return this.request("use_action", { type, id, action, actionArgs, ...opts });
  }

  // ---- Connection ------------------------------------------------------------

  #setState(state: ClientState) {
    if (this.#state === state) return;
    this.#state = state;
    this.emit("state", state);
  }

  #connect() {
    const url = this.url;
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(url);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      this.#setState("syncing");
      this.#resync(url).catch(() => {
        // The connection failed during the resync; onclose reconnects.
        if (ws === this.#ws) ws.close(4000, "resync failed");
      });
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (ws === this.#ws) this.#onFrame(typeof ev.data === "string" ? ev.data : String(ev.data));
    };
    ws.onerror = () => {};
    ws.onclose = (ev: { code: number; reason: string }) => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      this.#failPending("disconnected", "the connection closed before the reply");
      this.emit("close", { code: ev.code, reason: ev.reason });
      this.#scheduleReconnect();
    };
  }

  #scheduleReconnect() {
    if (this.#state === "closed") return;
    if (!this.#opts.reconnect) {
      this.close();
      return;
    }
    this.#attempt++;
    const { backoffInitialMs, backoffMaxMs, backoffJitter } = this.#opts;
    const base = Math.min(backoffMaxMs, backoffInitialMs * 2 ** (this.#attempt - 1));
    const delayMs = Math.round(base * (1 - backoffJitter * Math.random()));
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#setState("reconnecting");
    this.emit("reconnecting", { attempt: this.#attempt, delayMs, url: this.url });
    this.#timer = setTimeout(() => this.#connect(), delayMs);
  }

  /** After (re)connecting: log in again, catch up every lobby, then release what waited. */
  async #resync(url: string) {
    const reconnect = this.#everReady;
    this.#held ??= [];
    if (this.#loggedIn && this.#token) {
      try {
        await this.#raw("login", { token: this.#token });
      } catch (err) {
        if (!(err instanceof LobbydError) || err.code !== "unauthenticated") throw err;
        this.#loggedIn = false;
        this.#lobbies.clear();
        this.emit("session_lost", err);
      }
    }
    if (this.#loggedIn) {
      for (const [lobbyId, track] of [...this.#lobbies]) await this.#catchUp(lobbyId, track);
    }
    const held = this.#held;
    this.#held = null;
    for (const frame of held) this.#deliver(frame);
    this.#attempt = 0;
    this.#everReady = true;
    this.#setState("open");
    this.emit("ready", { reconnect, url });
    const queue = this.#queue;
    this.#queue = [];
    for (const send of queue) send();
  }

  /** Emits, in seq order, the messages of a lobby after the last one delivered. */
  async #catchUp(lobbyId: string, track: Track) {
    if (track.last === undefined) settle(track, 0);
    const base = { type: "messages" as const, lobby: { id: lobbyId }, limit: this.#opts.catchUpPageSize };
    let req: GetAllDataRequest = { ...base, after: track.last };
    for (;;) {
      let page: GetAllDataReply<"messages">;
      try {
        page = (await this.#raw("get_all_data", req, false)) as GetAllDataReply<"messages">;
      } catch (err) {
        if (err instanceof LobbydError && (err.code === "forbidden" || err.code === "not_found")) {
          this.#lobbies.delete(lobbyId); // no longer a member
          return;
        }
        throw err;
      }
      for (const message of page.datas) {
        if (this.#markSeen(message, true)) this.#emitBroadcast("send_message", { message });
      }
      if (page.cursor === null || page.datas.length === 0) return;
      req = { ...base, cursor: page.cursor };
    }
  }

  /**
   * Sends on the current connection, whatever the state (used by the
   * resync). `learn: false` keeps the reply from counting its messages as
   * delivered (the catch-up does that itself, as it emits them).
   */
  #raw(event: string, data: object, learn = true): Promise<unknown> {
    return new Promise((resolve, reject) => this.#send(event, data as Record<string, unknown>, resolve, reject, learn));
  }

  #send(
    event: string,
    data: Record<string, unknown>,
    resolve: (d: unknown) => void,
    reject: (e: LobbydError) => void,
    learn = true,
  ) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) {
      reject(new LobbydError("disconnected", "not connected", event));
      return;
    }
    const ack = this.#nextAck++;
    const timer = setTimeout(() => {
      this.#pending.delete(ack);
      reject(new LobbydError("timeout", `no reply to ${event} within ${this.#opts.requestTimeoutMs} ms`, event));
    }, this.#opts.requestTimeoutMs);
    this.#pending.set(ack, { resolve, reject, event, data, timer, learn });
    ws.send(JSON.stringify({ event, data, ack }));
  }

  #failPending(code: ErrorCode, message: string) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(new LobbydError(code, message, p.event));
    }
  }

  // ---- Incoming frames -------------------------------------------------------

  #onFrame(text: string) {
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      return;
    }
    if (typeof frame !== "object" || frame === null || typeof frame.event !== "string") return;
    if (typeof frame.ack === "number") {
      const p = this.#pending.get(frame.ack);
      if (!p) return; // timed out already
      this.#pending.delete(frame.ack);
      clearTimeout(p.timer);
      if (frame.event === "error") {
        const e = (frame.data ?? {}) as Partial<ErrorData>;
        p.reject(new LobbydError(e.code ?? "internal", e.message ?? "error", e.event ?? p.event));
      } else {
        if (p.learn) this.#onReply(p.event, p.data, frame.data);
        p.resolve(frame.data);
      }
    } else if (frame.event === "error") {
      this.emit("error", frame.data as ErrorData);
    } else if (this.#held) {
      this.#held.push(frame);
    } else {
      this.#deliver(frame);
    }
  }

  /** Learns from replies: the session, the lobbies joined and the messages seen. */
  #onReply(event: string, req: Record<string, unknown>, data: unknown) {
    const d = data as Record<string, any>;
    switch (event) {
      case "login":
        this.#loggedIn = true;
        this.#user = d.user;
        this.#token = d.user?.data?.token ?? (req.token as string | undefined) ?? this.#token;
        break;
      case "logout":
        this.#loggedIn = false;
        this.#lobbies.clear();
        break;
      case "connect_lobby":
        this.#track(d.lobby.id);
        break;
      case "disconnect_lobby":
        this.#lobbies.delete(d.lobby.id);
        break;
      case "send_message":
        this.#markSeen(d.message, false);
        break;
      case "get_data":
        if (d.type === "messages") this.#markSeen(d.data, false);
        break;
      case "get_all_data":
        if (d.type === "messages" && d.datas.length > 0) {
          // A first page from the start of the history fixes where `last` starts.
          const track = this.#track(d.datas[0].data.lobby.id);
          if (track.last === undefined && req.cursor === undefined) settle(track, (req.after as number | undefined) ?? 0);
          for (const m of d.datas) this.#markSeen(m, false);
        }
        break;
    }
  }

  #deliver(frame: Frame) {
    const d = frame.data as Record<string, any>;
    const me = this.#user?.id;
    switch (frame.event) {
      case "send_message":
        if (!this.#markSeen(d.message, true)) return; // already delivered
        break;
      case "connect_lobby":
        if (d.user?.id === me) this.#track(d.lobby.id);
        break;
      case "disconnect_lobby":
        if (d.user?.id === me) this.#lobbies.delete(d.lobby.id);
        break;
      case "logout":
        if (d.user?.id === me) {
          // `logout everywhere` from another connection ended this one's login.
          this.#loggedIn = false;
          this.#lobbies.clear();
        }
        break;
    }
    this.#emitBroadcast(frame.event, frame.data);
  }

  #emitBroadcast(event: string, data: unknown) {
    this.emit(event as keyof BroadcastMap, data as never);
    this.emit("broadcast", { event, data });
  }

  #track(lobbyId: string): Track {
    let t = this.#lobbies.get(lobbyId);
    if (!t) this.#lobbies.set(lobbyId, (t = { ahead: new Set() }));
    return t;
  }

  /**
   * Records that a message was delivered; false when it had been already.
   * `ordered` is true for broadcasts and catch-up pages, which come in seq
   * order: the first of them fixes `last` when it is still unknown (what
   * came before was history from before this client joined).
   */
  #markSeen(message: MessageInfo, ordered: boolean): boolean {
    const seq = message.data.seq;
    const t = this.#track(message.data.lobby.id);
    if (t.last === undefined && ordered) settle(t, seq - 1);
    if ((t.last !== undefined && seq <= t.last) || t.ahead.has(seq)) return false;
    t.ahead.add(seq);
    if (t.last !== undefined) settle(t, t.last);
    return true;
  }
}

/** Sets where a lobby's delivered run ends and moves it over the seqs delivered ahead. */
function settle(t: Track, last: number) {
  t.last = last;
  for (const s of t.ahead) if (s <= last) t.ahead.delete(s);
  while (t.ahead.delete(t.last + 1)) t.last++;
}

function refs(opts: { token?: string; lobby?: string; [k: string]: unknown }) {
  const { lobby, ...rest } = opts;
  return lobby === undefined ? rest : { ...rest, lobby: { id: lobby } };
}

