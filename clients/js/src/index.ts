export { LobbydClient, LobbydError } from "./client.js";
export type { ClientEvents, ClientOptions, ClientState, WebSocketConstructor, WebSocketLike } from "./client.js";
export { Emitter } from "./emitter.js";
export type * from "./protocol.js";
