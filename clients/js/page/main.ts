// The chat page lobbyd serves at `/`, built on @lobbyd/client.
// `npm run build:page` bundles it into static/app.js.
import { LobbydClient, LobbydError, type LobbyInfo, type LobbyMember, type MessageInfo } from "../src/index.js";

const TOKEN_KEY = "lobbyd.token";
const LOBBY_KEY = "lobbyd.lobby";
const TYPING_SHOWN_MS = 3000;
const TYPING_EVERY_MS = 1500;

// ---- Connection -------------------------------------------------------------

const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const client = new LobbydClient({ url: wsUrl });
(window as unknown as { lobbyd: LobbydClient }).lobbyd = client; // for the console

// ---- State ------------------------------------------------------------------

interface Lobby {
  id: string;
  info?: LobbyInfo;
  members: Map<string, LobbyMember>;
  messages: Map<string, MessageInfo>;
  edited: Set<string>;
  typing: Map<string, ReturnType<typeof setTimeout>>;
  unread: number;
}
const lobbies = new Map<string, Lobby>();
let active: string | undefined;
let lastTypingSent = 0;
/** Receipts this page already sent, so that each goes out once. */
const sentReceipts = new Set<string>();

const me = () => client.user?.id;

// ---- DOM --------------------------------------------------------------------

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;
function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, unknown> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node: HTMLElementTagNameMap[K] = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}
const loginView = $("#login-view");
const chatView = $("#chat-view");
const loginForm = $<HTMLFormElement>("#login-form");
const joinForm = $<HTMLFormElement>("#join-form");
const composer = $<HTMLFormElement>("#composer");
const messagesEl = $<HTMLOListElement>("#messages");
const messageEls = new Map<string, HTMLLIElement>();

function field(form: HTMLFormElement, name: string) {
  return form.elements.namedItem(name) as HTMLInputElement;
}

function showError(id: string, err: unknown) {
  $(id).textContent = err instanceof LobbydError ? `${err.code}: ${err.message}` : err ? String(err) : "";
}

// ---- Status and session -------------------------------------------------------

const STATUS_TEXT = { connecting: "connecting…", syncing: "catching up…", open: "online", reconnecting: "reconnecting…", closed: "closed" };
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
  active = undefined;
}

async function enter() {
  const user = client.user!;
  localStorage.setItem(TOKEN_KEY, client.token!);
  loginView.hidden = true;
  chatView.hidden = false;
  $("#logout").hidden = false;
  $("#me").textContent = user.data.username ?? user.id;
  const saved = localStorage.getItem(LOBBY_KEY);
  for (const { id } of user.data.lobbys ?? []) await openLobby(id, id === saved);
  if (!active && lobbies.size) select(lobbies.keys().next().value!);
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
  await client.logout().catch(() => {});
  localStorage.removeItem(TOKEN_KEY);
  showLogin();
});

client.on("session_lost", () => {
  localStorage.removeItem(TOKEN_KEY);
  showLogin();
});

client.on("logout", ({ user }) => {
  if (client.user) return setOnline(user.id, false);
  // `logout everywhere` from another tab ended this one's login too.
  localStorage.removeItem(TOKEN_KEY);
  showLogin();
});

// After a reconnect, presence may have changed while we were away.
client.on("ready", ({ reconnect }) => {
  if (reconnect && client.user) for (const id of lobbies.keys()) void refreshInfo(id);
});

// ---- Lobbies ----------------------------------------------------------------

function lobbyState(id: string): Lobby {
  let l = lobbies.get(id);
  if (!l) {
    l = { id, members: new Map(), messages: new Map(), edited: new Set(), typing: new Map(), unread: 0 };
    lobbies.set(id, l);
  }
  return l;
}

async function refreshInfo(id: string) {
  const l = lobbies.get(id);
  if (!l) return;
  try {
    const { data } = await client.getData("lobbys", id);
    l.info = data;
    l.members = new Map((data.data.users ?? []).map((u) => [u.id, u]));
    render();
  } catch {
    /* gone or not visible any more */
  }
}

/** Loads a lobby's info and history, and sends the receipts it owes. */
async function openLobby(id: string, makeActive: boolean) {
  lobbyState(id);
  await refreshInfo(id);
  for (const m of await client.history(id)) addMessage(m, false);
  if (makeActive || !active) select(id);
}

function select(id: string) {
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
      ...(id ? { id } : {}),
      ...(token ? { token } : {}),
      visibility: field(joinForm, "public").checked,
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
  await client.disconnectLobby(id).catch(() => {});
  dropLobby(id);
});

function dropLobby(id: string) {
  lobbies.delete(id);
  if (active === id) {
    active = undefined;
    messagesEl.replaceChildren();
    messageEls.clear();
    if (lobbies.size) select(lobbies.keys().next().value!);
  }
  render();
}

client.on("connect_lobby", ({ lobby, user }) => {
  if (user.id === me()) void openLobby(lobby.id, false); // joined elsewhere, or added by someone
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

// ---- Presence ---------------------------------------------------------------

function setOnline(userId: string, online: boolean, username?: string | null) {
  for (const l of lobbies.values()) {
    const m = l.members.get(userId);
    if (m) {
      m.online = online;
      if (username !== undefined) m.username = username;
    }
  }
  render();
}
client.on("login", ({ user }) => setOnline(user.id, true, user.username));
client.on("disconnect", ({ user }) => setOnline(user.id, false));

// ---- Messages ---------------------------------------------------------------

function addMessage(m: MessageInfo, live: boolean) {
  if (!lobbies.has(m.data.lobby.id)) void openLobby(m.data.lobby.id, false); // a lobby this page had not loaded
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

function onReceipt(kind: "received" | "viewed") {
  return ({ lobby, message, user }: { lobby: { id: string }; message: { id: string }; user: { id: string } }) => {
    const l = lobbies.get(lobby.id);
    const m = l?.messages.get(message.id);
    if (!l || !m) return;
    const add = (list: { id: string }[]) => list.some((r) => r.id === user.id) || list.push({ id: user.id });
    add(m.data[kind]);
    if (kind === "viewed") add(m.data.received);
    if (l.id === active) renderMessage(l, m);
  };
}
client.on("received_message", onReceipt("received"));
client.on("viewed_message", onReceipt("viewed"));

/** Sends received_message / viewed_message once per message. */
function receipt(kind: "received" | "viewed", m: MessageInfo) {
  const my = me();
  if (!my || m.owner.id === my) return;
  const key = `${kind}:${m.id}`;
  const done = m.data[kind].some((r) => r.id === my) || (kind === "received" && m.data.viewed.some((r) => r.id === my));
  if (done || sentReceipts.has(key)) return;
  sentReceipts.add(key);
  const send = kind === "received" ? client.received(m.data.lobby.id, m.id) : client.viewed(m.data.lobby.id, m.id);
  send.catch(() => sentReceipts.delete(key));
}

// A message is viewed when its bubble is on screen in a visible tab.
const onScreen = new Set<string>();
const observer = new IntersectionObserver(
  (entries) => {
    for (const e of entries) {
      const id = (e.target as HTMLElement).dataset.id!;
      if (e.isIntersecting) onScreen.add(id);
      else onScreen.delete(id);
    }
    markViewed();
  },
  { threshold: 0.5 },
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

function ticks(m: MessageInfo): [state: string, text: string, title: string] {
  const others = (list: { id: string }[]) => list.filter((r) => r.id !== m.owner.id);
  const names = (list: { id: string }[]) => list.map((r) => nameOf(m.data.lobby.id, r.id)).join(", ");
  const viewed = others(m.data.viewed);
  const received = others(m.data.received);
  if (viewed.length) return ["viewed", "✓✓", `viewed by ${names(viewed)}`];
  if (received.length) return ["received", "✓✓", `received by ${names(received)}`];
  return ["sent", "✓", "sent"];
}

function nameOf(lobbyId: string, userId: string) {
  return lobbies.get(lobbyId)?.members.get(userId)?.username ?? userId.slice(0, 8);
}

function renderMessage(l: Lobby, m: MessageInfo) {
  const mine = m.owner.id === me();
  let li = messageEls.get(m.id);
  if (!li) {
    li = el("li", { className: mine ? "msg mine" : "msg" });
    li.dataset.id = m.id;
    li.dataset.seq = String(m.data.seq);
    li.dataset.mine = String(mine);
    // Keep seq order: insert before the first bubble with a greater seq.
    const stick = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 40;
    const next = [...messageEls.values()].find((e) => Number(e.dataset.seq) > m.data.seq);
    messagesEl.insertBefore(li, next ?? null);
    messageEls.set(m.id, li);
    if (!mine) observer.observe(li);
    if (stick || mine) messagesEl.scrollTop = messagesEl.scrollHeight;
  }
  if (li.querySelector("input")) return; // being edited
  const time = new Date(m.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const meta = el("div", { className: "meta" }, el("span", { className: "author" }, m.owner.username ?? nameOf(l.id, m.owner.id)), time);
  if (l.edited.has(m.id) || m.data.updatedAt > m.createdAt) meta.append(el("span", { className: "edited" }, "edited"));
  if (mine) {
    const edit = el("button", { className: "link edit", textContent: "edit", type: "button" });
    edit.addEventListener("click", () => startEdit(l, m, li!));
    const [state, text, title] = ticks(m);
    const t = el("span", { className: "ticks", textContent: text, title });
    t.dataset.state = state;
    t.dataset.testid = "ticks";
    meta.append(edit, t);
  }
  li.replaceChildren(meta, el("div", { className: "content", textContent: m.data.content }));
}

function startEdit(l: Lobby, m: MessageInfo, li: HTMLLIElement) {
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
  li.querySelector(".content")!.replaceChildren(input);
  input.focus();
}

// ---- Composer and typing ------------------------------------------------------

const contentInput = field(composer, "content");
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
    // `disconnected`: the node may have stored it; if so the catch-up shows it.
    if (!contentInput.value) contentInput.value = content;
    showError("#join-error", err);
  }
});

contentInput.addEventListener("input", () => {
  if (!active || !contentInput.value || Date.now() - lastTypingSent < TYPING_EVERY_MS) return;
  lastTypingSent = Date.now();
  client.typing(active).catch(() => {});
});

client.on("typing_message", ({ lobby, user }) => {
  const l = lobbies.get(lobby.id);
  if (!l || user.id === me()) return;
  clearTimeout(l.typing.get(user.id));
  l.typing.set(user.id, setTimeout(() => clearTyping(l, user.id), TYPING_SHOWN_MS));
  render();
});

function clearTyping(l: Lobby, userId: string) {
  if (!l.typing.has(userId)) return;
  clearTimeout(l.typing.get(userId));
  l.typing.delete(userId);
  render();
}

// ---- Sidebar, header, typing line -----------------------------------------------

function render() {
  const lobbyList = $("#lobbies");
  lobbyList.replaceChildren(
    ...[...lobbies.values()].map((l) => {
      const b = el("button", { type: "button", className: l.id === active ? "active" : "" }, el("span", {}, l.id));
      b.dataset.lobby = l.id;
      if (l.unread) b.append(el("span", { className: "unread" }, String(l.unread)));
      b.addEventListener("click", () => select(l.id));
      return el("li", {}, b);
    }),
  );
  const l = active ? lobbies.get(active) : undefined;
  $("#lobby-title").textContent = l ? l.id : "no lobby yet";
  const token = l?.info?.data.token;
  $("#lobby-token").textContent = token ? `token: ${token}` : "";
  $("#leave").hidden = !l;
  for (const input of composer.querySelectorAll<HTMLInputElement | HTMLButtonElement>("input, button")) input.disabled = !l;

  const members = [...(l?.members.values() ?? [])].sort((a, b) => Number(b.online) - Number(a.online) || (a.username ?? "").localeCompare(b.username ?? ""));
  $("#members").replaceChildren(
    ...members.map((m) => {
      const li = el("li", { className: m.online ? "online" : "offline" }, m.username ?? m.id.slice(0, 8));
      if (m.id === me()) li.append(" (you)");
      li.append(el("span", { className: "state" }, m.online ? "online" : "offline"));
      li.dataset.userId = m.id;
      li.dataset.online = String(m.online);
      return li;
    }),
  );

  const typing = l ? [...l.typing.keys()].map((id) => nameOf(l.id, id)) : [];
  $("#typing").textContent = typing.length ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…` : "";
}

// ---- Start ------------------------------------------------------------------

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
