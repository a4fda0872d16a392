// Data shapes of lobbyd's wire protocol, version 1 (shared/PROTOCOL.md).
// Requests carry the `*Request` shapes, replies the `*Reply` shapes and
// broadcasts the `*Broadcast` shapes.

/** `{id}`: an object reference with at least `id`. */
export interface Ref {
  id: string;
}

export type ObjectType = "users" | "lobbys" | "messages";
export type AccessLevel = "public" | "partial" | "private";

export type LobbyPermission =
  | "setOwner"
  | "setToken"
  | "setVisibility"
  | "addUser"
  | "addUsers"
  | "deleteUser"
  | "deleteUsers"
  | "update";
export type Permission = LobbyPermission;
export type ActionName = LobbyPermission;

/** Every info object has this shape; `data` depends on type and level. */
export interface Info<T extends ObjectType, D> {
  type: T;
  id: string;
  level: AccessLevel;
  owner: { id: string; username?: string | null };
  visibility: boolean;
  createdAt: number;
  data: D;
  permissions: Permission[];
}

export interface UserData {
  username?: string;
  /** partial and private */
  online?: boolean;
  /** partial: the lobbies you share; private: all of them */
  lobbys?: Ref[];
  updatedAt?: number;
  /** private, and only to a connection that knows it */
  token?: string;
}

export interface LobbyMember {
  id: string;
  username: string | null;
  online: boolean;
}

export interface LobbyData {
  userCount: number;
  description?: string | null;
  /** partial and private */
  users?: LobbyMember[];
  sizeLimit?: number | null;
  updatedAt?: number;
  /** private */
  token?: string;
}

export interface MessageData {
  lobby: Ref;
  content: string;
  replied: string | null;
  seq: number;
  received: Ref[];
  viewed: Ref[];
  updatedAt: number;
}

export type UserInfo = Info<"users", UserData>;
export type LobbyInfo = Info<"lobbys", LobbyData>;
export type MessageInfo = Info<"messages", MessageData>;
export type AnyInfo = UserInfo | LobbyInfo | MessageInfo;
export interface InfoByType {
  users: UserInfo;
  lobbys: LobbyInfo;
  messages: MessageInfo;
}

/** `{id, username}` as carried by login and connect_lobby broadcasts. */
export interface UserRef {
  id: string;
  username?: string | null;
}

// ---- Requests and replies -------------------------------------------------

export interface LoginRequest {
  token?: string;
  username?: string;
}
export interface LoginReply {
  user: UserInfo;
}

export interface LogoutRequest {
  everywhere?: boolean;
}
export interface LogoutReply {
  user: Ref;
}

export interface ConnectLobbyRequest {
  lobby: {
    id?: string;
    token?: string;
    visibility?: boolean;
    sizeLimit?: number;
    description?: string;
  };
}
export interface ConnectLobbyReply {
  lobby: LobbyInfo;
  user: Ref;
}

export interface DisconnectLobbyRequest {
  lobby: Ref;
}
export interface DisconnectLobbyReply {
  lobby: Ref;
  user: Ref;
}

export interface SendMessageRequest {
  lobby: Ref;
  content: string;
  replied?: string;
}
export interface SendMessageReply {
  message: MessageInfo;
}

export interface ReceiptRequest {
  lobby: Ref;
  message: Ref;
}
export interface ReceiptReply {
  lobby: Ref;
  message: Ref;
  user: Ref;
}

export interface TypingRequest {
  lobby: Ref;
  message?: Ref;
}
export interface TypingReply {
  lobby: Ref;
  user: Ref;
  message?: Ref;
}

export interface GetDataRequest<T extends ObjectType = ObjectType> {
  type: T;
  id: string;
  token?: string;
  /** required for messages */
  lobby?: Ref;
}
export interface GetDataReply<T extends ObjectType = ObjectType> {
  type: T;
  data: InfoByType[T];
}

export interface GetAllDataRequest<T extends ObjectType = ObjectType> {
  type: T;
  token?: string;
  /** required for messages */
  lobby?: Ref;
  /** 1..500, default 100 */
  limit?: number;
  cursor?: string;
  /** messages only: those with a greater seq */
  after?: number;
}
export interface GetAllDataReply<T extends ObjectType = ObjectType> {
  type: T;
  datas: InfoByType[T][];
  cursor: string | null;
}

export interface UpdatableFields {
  users: { username?: string; visibility?: boolean };
  lobbys: { description?: string | null; sizeLimit?: number | null; visibility?: boolean };
  messages: { content?: string };
}
export interface UpdateDataRequest<T extends ObjectType = ObjectType> {
  type: T;
  id: string;
  token?: string;
  /** required for messages */
  lobby?: Ref;
  data: UpdatableFields[T];
}
/** Reply to update_data, and its broadcast. `setOwner` broadcasts `{owner}`. */
export interface UpdateDataReply {
  type: ObjectType;
  id: string;
  data: Record<string, unknown>;
  updatedAt: number;
}

export interface UseActionRequest {
  type: ObjectType;
  id: string;
  token?: string;
  action: ActionName;
  actionArgs: unknown[];
}
export interface UseActionReply {
  type: ObjectType;
  id: string;
  action: ActionName;
  data: AnyInfo;
}

/** Request and reply data of every event of protocol v1. */
export interface RequestMap {
  login: [LoginRequest, LoginReply];
  logout: [LogoutRequest, LogoutReply];
  connect_lobby: [ConnectLobbyRequest, ConnectLobbyReply];
  disconnect_lobby: [DisconnectLobbyRequest, DisconnectLobbyReply];
  send_message: [SendMessageRequest, SendMessageReply];
  received_message: [ReceiptRequest, ReceiptReply];
  viewed_message: [ReceiptRequest, ReceiptReply];
  typing_message: [TypingRequest, TypingReply];
  get_data: [GetDataRequest, GetDataReply];
  get_all_data: [GetAllDataRequest, GetAllDataReply];
  update_data: [UpdateDataRequest, UpdateDataReply];
  use_action: [UseActionRequest, UseActionReply];
}
export type RequestEvent = keyof RequestMap;

// ---- Broadcasts -----------------------------------------------------------

/** Ack-less frames the server sends, by event name. */
export interface BroadcastMap {
  login: { user: UserRef };
  /** a co-member logged out; or, with your own id, `logout everywhere` ended this connection */
  logout: { user: Ref };
  disconnect: { user: Ref };
  connect_lobby: { lobby: Ref; user: UserRef };
  disconnect_lobby: { lobby: Ref; user: Ref };
  send_message: { message: MessageInfo };
  received_message: ReceiptReply;
  viewed_message: ReceiptReply;
  typing_message: TypingReply;
  update_data: UpdateDataReply;
}

// ---- Errors -----------------------------------------------------------------

/** Error codes of the protocol. */
export type ServerErrorCode =
  | "bad_request"
  | "unknown_event"
  | "unauthenticated"
  | "conflict"
  | "not_found"
  | "forbidden"
  | "lobby_full"
  | "payload_too_large"
  | "rate_limited"
  | "unavailable"
  | "internal";

/**
 * Codes the client itself produces: `disconnected` (the connection closed
 * before the reply came; the request may or may not have been applied),
 * `timeout` (no reply within `requestTimeoutMs`), `closed` (the client was
 * closed).
 */
export type ClientErrorCode = "disconnected" | "timeout" | "closed";
export type ErrorCode = ServerErrorCode | ClientErrorCode;

/** `data` of an `error` frame. */
export interface ErrorData {
  code: ServerErrorCode;
  message: string;
  event: string | null;
}

/** One frame on the wire. */
export interface Frame {
  event: string;
  data?: unknown;
  ack?: number;
}
