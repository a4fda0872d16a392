//! What the engines store and hand back. Records are plain data; views
//! (what a caller sees) are computed from them in `view`.

use super::ids::{LobbyId, MessageId, UserId};
use serde::{Deserialize, Serialize};

/// A stored user. The token is kept only as its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub username: Option<String>,
    pub visibility: bool,
    pub token_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user with what its views need besides the record.
#[derive(Debug, Clone)]
pub struct UserSnapshot {
    pub record: UserRecord,
    /// Every lobby the user is a member of, sorted by id.
    pub lobbies: Vec<LobbyId>,
    /// Whether the user has a live connection on any node.
    pub online: bool,
}

/// A stored lobby. Its token is stored as given: owners read it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyRecord {
    pub id: LobbyId,
    pub owner: UserId,
    pub token: String,
    pub visibility: bool,
    pub size_limit: Option<u64>,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Member ids, sorted.
    pub members: Vec<UserId>,
}

/// One lobby member as the lobby's partial view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: UserId,
    pub username: Option<String>,
    pub online: bool,
}

/// A lobby with its members' names and presence, for views.
#[derive(Debug, Clone)]
pub struct LobbySnapshot {
    pub record: LobbyRecord,
    /// Members sorted by id.
    pub members: Vec<Member>,
}

/// A stored message with its receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: MessageId,
    pub lobby: LobbyId,
    pub author: UserId,
    #[serde(default)]
    pub author_username: Option<String>,
    pub content: String,
    #[serde(default)]
    pub replied: Option<MessageId>,
    pub seq: u64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Users who received it, in the order they did.
    #[serde(default)]
    pub received: Vec<UserId>,
    /// Users who viewed it, in the order they did.
    #[serde(default)]
    pub viewed: Vec<UserId>,
}
