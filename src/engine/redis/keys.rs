//! Redis key and channel names, in one place. `lua/prelude.lua` builds the
//! same names inside scripts; the two must agree.
//!
//! Per-object keys carry a hash tag (`{u:<id>}`, `{l:<id>}`) so that one
//! object's keys would share a slot; the scripts also touch other objects'
//! keys, so the engine targets a standalone Redis (or one primary).

use crate::domain::{LobbyId, UserId};

const P: &str = "lobbyd:";

/// A user's hash: username, visibility, token_hash, created_at, updated_at.
pub fn user(id: &UserId) -> String {
    format!("{P}{{u:{id}}}:user")
}

/// The set of lobbies a user is a member of.
pub fn user_lobbys(id: &UserId) -> String {
    format!("{P}{{u:{id}}}:lobbys")
}

/// A user's presence hash: node id -> live connections; online iff it exists.
pub fn presence(id: &UserId) -> String {
    format!("{P}{{u:{id}}}:presence")
}

/// A lobby's last message seq (INCR counter).
pub fn seq(id: &LobbyId) -> String {
    format!("{P}{{l:{id}}}:seq")
}

/// A lobby's messages: message id -> JSON record without receipts.
pub fn msgs(id: &LobbyId) -> String {
    format!("{P}{{l:{id}}}:msgs")
}

/// Who received a message, scored by arrival.
pub fn received(lobby: &LobbyId, message: &str) -> String {
    format!("{P}{{l:{lobby}}}:rcv:{message}")
}

/// Who viewed a message, scored by arrival.
pub fn viewed(lobby: &LobbyId, message: &str) -> String {
    format!("{P}{{l:{lobby}}}:view:{message}")
}

/// The user token index: SHA-256 hex of a user token -> user id.
pub fn user_token(hash: &str) -> String {
    format!("{P}utoken:{hash}")
}

/// The set of live-or-not-yet-reaped node ids.
pub fn nodes() -> String {
    format!("{P}nodes")
}

/// A node's liveness key, refreshed by its heartbeat (PX = presence TTL).
pub fn alive(node: &str) -> String {
    format!("{P}node:{node}:alive")
}

/// The channel of every user event (presence, profile, membership, kick).
pub fn users_channel() -> String {
    format!("{P}users")
}

/// The channel of one lobby's events (messages, receipts, typing, updates).
pub fn lobby_channel(id: &LobbyId) -> String {
    format!("{P}lobby:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shapes() {
        let u = UserId::from("u1");
        let l = LobbyId::from("room-1");
        assert_eq!(user(&u), "lobbyd:{u:u1}:user");
        assert_eq!(user_lobbys(&u), "lobbyd:{u:u1}:lobbys");
        assert_eq!(presence(&u), "lobbyd:{u:u1}:presence");
        assert_eq!(msgs(&l), "lobbyd:{l:room-1}:msgs");
        assert_eq!(received(&l, "m"), "lobbyd:{l:room-1}:rcv:m");
        assert_eq!(viewed(&l, "m"), "lobbyd:{l:room-1}:view:m");
        assert_eq!(user_token("ab"), "lobbyd:utoken:ab");
        assert_eq!(alive("n1"), "lobbyd:node:n1:alive");
        assert_eq!(nodes(), "lobbyd:nodes");
        assert_eq!(users_channel(), "lobbyd:users");
        assert_eq!(lobby_channel(&l), "lobbyd:lobby:room-1");
    }

    #[test]
    fn prelude_builds_the_same_names() {
        let prelude = include_str!("lua/prelude.lua");
        for needle in [
            "local P = 'lobbyd:'",
            "P .. '{u:' .. id .. '}:user'",
            "P .. '{u:' .. id .. '}:lobbys'",
            "P .. '{u:' .. id .. '}:presence'",
            "P .. '{l:' .. id .. '}:msgs'",
            "P .. '{l:' .. id .. '}:rcv:' .. mid",
            "P .. '{l:' .. id .. '}:view:' .. mid",
            "P .. 'utoken:' .. h",
            "P .. 'node:' .. n .. ':alive'",
            "K_NODES = P .. 'nodes'",
            "CH_USERS = P .. 'users'",
            "P .. 'lobby:' .. id",
        ] {
            assert!(prelude.contains(needle), "prelude.lua lacks {needle}");
        }
    }
}
