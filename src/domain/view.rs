//! Info objects: what a caller sees of an object at its access level.
//! Tokens appear only in private views; broadcasts never use these with a
//! token.

use super::access::{AccessLevel, Permission};
use super::ids::LobbyId;
use super::records::{LobbySnapshot, MessageRecord, UserSnapshot};
use serde_json::{json, Map, Value};

// One flat builder for the shape every info object shares.
#[allow(clippy::too_many_arguments)]
fn info(
    kind: &str,
    id: &str,
    level: AccessLevel,
    owner: Value,
    visibility: bool,
    created_at: i64,
    data: Map<String, Value>,
    permissions: &[Permission],
) -> Value {
    json!({
        "type": kind,
        "id": id,
        "level": level.as_str(),
        "owner": owner,
        "visibility": visibility,
        "createdAt": created_at,
        "data": data,
        "permissions": permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
    })
}

fn id_list<'a, T: AsRef<str> + 'a>(ids: impl IntoIterator<Item = &'a T>) -> Value {
    Value::Array(ids.into_iter().map(|i| json!({"id": i.as_ref()})).collect())
}

impl AsRef<str> for super::UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
impl AsRef<str> for LobbyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A user's info. `shared` lists the lobbies the caller shares with it
/// (shown at partial level); `token` is shown at private level only, and
/// only when the caller knows it (users' tokens are stored hashed).
pub fn user_info(
    user: &UserSnapshot,
    level: AccessLevel,
    permissions: &[Permission],
    shared: &[LobbyId],
    token: Option<&str>,
) -> Value {
    let r = &user.record;
    let mut data = Map::new();
    if let Some(name) = &r.username {
        data.insert("username".into(), json!(name));
    }
    if level >= AccessLevel::Partial {
        data.insert("online".into(), json!(user.online));
        data.insert("updatedAt".into(), json!(r.updated_at));
        let lobbies = if level == AccessLevel::Private {
            &user.lobbies[..]
        } else {
            shared
        };
        data.insert("lobbys".into(), id_list(lobbies));
    }
    if level == AccessLevel::Private {
        if let Some(t) = token {
            data.insert("token".into(), json!(t));
        }
    }
    info(
        "users",
        r.id.as_str(),
        level,
        json!({"id": r.id}),
        r.visibility,
        r.created_at,
        data,
        permissions,
    )
}

/// A lobby's info at the caller's level.
pub fn lobby_info(lobby: &LobbySnapshot, level: AccessLevel, permissions: &[Permission]) -> Value {
    let r = &lobby.record;
    let mut data = Map::new();
    data.insert("userCount".into(), json!(r.members.len()));
    if let Some(d) = &r.description {
        data.insert("description".into(), json!(d));
    }
    if level >= AccessLevel::Partial {
        let users = lobby
            .members
            .iter()
            .map(|m| json!({"id": m.id, "username": m.username, "online": m.online}))
            .collect();
        data.insert("users".into(), Value::Array(users));
        data.insert("sizeLimit".into(), json!(r.size_limit));
        data.insert("updatedAt".into(), json!(r.updated_at));
    }
    if level == AccessLevel::Private {
        data.insert("token".into(), json!(r.token));
    }
    info(
        "lobbys",
        r.id.as_str(),
        level,
        json!({"id": r.owner}),
        r.visibility,
        r.created_at,
        data,
        permissions,
    )
}

/// A message's info; messages are never public, so `level` is partial or
/// private.
pub fn message_info(m: &MessageRecord, level: AccessLevel, permissions: &[Permission]) -> Value {
    let mut data = Map::new();
    data.insert("lobby".into(), json!({"id": m.lobby}));
    data.insert("content".into(), json!(m.content));
    data.insert("replied".into(), json!(m.replied));
    data.insert("seq".into(), json!(m.seq));
    data.insert("received".into(), id_list(&m.received));
    data.insert("viewed".into(), id_list(&m.viewed));
    data.insert("updatedAt".into(), json!(m.updated_at));
    let owner = json!({"id": m.author, "username": m.author_username});
    info(
        "messages",
        m.id.as_str(),
        level,
        owner,
        false,
        m.created_at,
        data,
        permissions,
    )
}
