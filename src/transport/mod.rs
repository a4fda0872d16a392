//! Network edges: the WebSocket endpoint and the plain HTTP endpoints.

pub mod http;
pub mod page;
pub mod ws;
