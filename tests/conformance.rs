//! Protocol conformance: every event, error code and access rule of
//! /work/shared/PROTOCOL.md (v1), each test body run against both engines.
//!
//! Bodies are `async fn name(engine: Engine)` in the submodules below;
//! `engine_tests!` turns each into `<module>::memory::<name>` and
//! `<module>::redis::<name>`. The Redis variant runs two nodes on one Redis and
//! places consecutive connections on alternating nodes, so every rule is also
//! checked across nodes.
//!
//! Every broadcast any client receives is checked for tokens (see
//! `support::check_broadcast`): a token field or any token value seen in the
//! suite makes the test fail.

mod support;

/// Generates `mod memory` and `mod redis`, one `#[tokio::test]` per body.
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Engine::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Engine::Redis).await
                }
            )*
        }
    };
}

/// Shared imports and small request helpers for the conformance modules.
mod common {
    pub use crate::support::*;
    pub use serde_json::{json, Value};
    pub use std::time::Duration;

    /// The standard environment: memory = one node, Redis = two nodes.
    pub async fn env(engine: Engine) -> TestEnv {
        TestEnv::new(engine, 2).await
    }

    /// `v["id"]` as an owned string.
    #[track_caller]
    pub fn sid(v: &Value) -> String {
        v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no string id in {v}"))
            .to_string()
    }

    /// connect_lobby with the given `lobby` object; returns the reply's lobby info.
    pub async fn create_lobby(c: &mut WsClient, lobby: Value) -> Value {
        let d = c
            .request("connect_lobby", json!({ "lobby": lobby }))
            .await
            .ok();
        d["lobby"].clone()
    }

    /// A new lobby with a generated id; returns (id, token).
    pub async fn new_lobby(c: &mut WsClient, visible: bool) -> (String, String) {
        let l = create_lobby(c, json!({ "visibility": visible })).await;
        let token = l["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("owner view without token: {l}"));
        (sid(&l), token.to_string())
    }

    /// Join an existing lobby; returns the lobby info of the reply.
    pub async fn join(c: &mut WsClient, id: &str) -> Value {
        create_lobby(c, json!({ "id": id })).await
    }

    pub async fn join_with_token(c: &mut WsClient, id: &str, token: &str) -> Value {
        create_lobby(c, json!({ "id": id, "token": token })).await
    }

    /// send_message; returns the reply's message info.
    pub async fn send(c: &mut WsClient, lobby: &str, content: &str) -> Value {
        let d = c
            .request(
                "send_message",
                json!({ "lobby": {"id": lobby}, "content": content }),
            )
            .await
            .ok();
        d["message"].clone()
    }

    /// The id named by a `replied` field, whether sent as a string or as `{id}`.
    pub fn replied_id(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(_) => v["id"].as_str().map(str::to_string),
            _ => None,
        }
    }

    /// An id that is a well-formed UUID but names nothing.
    pub fn unknown_uuid() -> String {
        "00000000-0000-4000-8000-000000000000".to_string()
    }
}

#[path = "conformance/actions.rs"]
mod actions;
#[path = "conformance/auth.rs"]
mod auth;
#[path = "conformance/data.rs"]
mod data;
#[path = "conformance/frames.rs"]
mod frames;
#[path = "conformance/limits.rs"]
mod limits;
#[path = "conformance/lobby.rs"]
mod lobby;
#[path = "conformance/message.rs"]
mod message;
#[path = "conformance/update.rs"]
mod update;
