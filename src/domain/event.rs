//! Events that engines fan out to every node: what happened, not how it is
//! framed. A node turns each into wire frames once and shares them among
//! its local recipients. The JSON form is what the Redis Lua scripts
//! publish, so its field names are part of the Redis engine's format.

use super::ids::{LobbyId, MessageId, Origin, UserId};
use super::records::MessageRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An event with the connection that caused it, which gets a reply
/// instead of the broadcast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    pub event: Event,
}

/// Which receipt a member recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    Received,
    Viewed,
}

/// Why a user's presence changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceKind {
    /// First live connection anywhere.
    Login,
    /// Last connection ended by `logout`.
    Logout,
    /// Last connection closed without logout, or its node died.
    Disconnect,
}

/// Something that happened, routed by the lobby or user it concerns.
///
/// Lobby events go to the local connections of the lobby's members.
/// User events (presence, membership, profile) go to the local connections
/// of the user and of every member of the listed lobbies, each connection
/// once however many lobbies it shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// `send_message`: a message was appended with the next seq.
    Message { message: MessageRecord },
    /// `received_message` / `viewed_message`, the first time only.
    Receipt {
        kind: ReceiptKind,
        lobby: LobbyId,
        message: MessageId,
        user: UserId,
    },
    /// `typing_message`: nothing stored.
    Typing {
        lobby: LobbyId,
        user: UserId,
        #[serde(default)]
        message: Option<MessageId>,
    },
    /// `update_data` on a lobby (fields set, including `owner`).
    LobbyUpdated {
        lobby: LobbyId,
        fields: Map<String, Value>,
        updated_at: i64,
    },
    /// `update_data` on a message.
    MessageUpdated {
        lobby: LobbyId,
        message: MessageId,
        fields: Map<String, Value>,
        updated_at: i64,
    },
    /// `login` / `logout` / `disconnect` of a user, for its co-members.
    Presence {
        kind: PresenceKind,
        user: UserId,
        #[serde(default)]
        username: Option<String>,
        #[serde(default, deserialize_with = "lua_list")]
        lobbies: Vec<LobbyId>,
    },
    /// `update_data` on a user, for itself and its co-members.
    UserUpdated {
        user: UserId,
        #[serde(default, deserialize_with = "lua_list")]
        lobbies: Vec<LobbyId>,
        fields: Map<String, Value>,
        updated_at: i64,
    },
    /// `connect_lobby`: a user became a member (joined or was added).
    MemberJoined {
        lobby: LobbyId,
        user: UserId,
        #[serde(default)]
        username: Option<String>,
    },
    /// `disconnect_lobby`: a user stopped being a member.
    MemberLeft { lobby: LobbyId, user: UserId },
    /// `logout` with `everywhere`: every connection of the user logs out.
    Kick { user: UserId },
}

/// Lua's cjson encodes an empty table as `{}`; accept that as an empty list.
fn lua_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<LobbyId>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty {
        List(Vec<LobbyId>),
        Empty(#[allow(dead_code)] Map<String, Value>),
    }
    Ok(match ListOrEmpty::deserialize(d)? {
        ListOrEmpty::List(v) => v,
        ListOrEmpty::Empty(_) => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lua_empty_tables_as_empty_lists() {
        let e: Envelope = serde_json::from_str(
            r#"{"event":{"t":"presence","kind":"login","user":"u","lobbies":{}}}"#,
        )
        .unwrap();
        match e.event {
            Event::Presence { lobbies, kind, .. } => {
                assert!(lobbies.is_empty());
                assert_eq!(kind, PresenceKind::Login);
            }
            other => panic!("{other:?}"),
        }
    }
}
