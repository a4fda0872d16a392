//! `connect_lobby` and `disconnect_lobby`.

use super::super::session::Session;
use super::super::Node;
use crate::domain::access;
use crate::domain::{now_ms, token, LobbyId};
use crate::engine::LobbySpec;
use crate::protocol::{ErrorCode, ProtocolError};
use serde_json::{json, Value};

pub(super) async fn connect(
    node: &Node,
    s: &mut Session,
    id: Option<LobbyId>,
    presented: Option<String>,
    visibility: bool,
    size_limit: Option<u64>,
    description: Option<String>,
) -> Result<Value, ProtocolError> {
    let spec = LobbySpec {
        id: id.unwrap_or_else(LobbyId::generate),
        token: presented.clone(),
        generated_token: token::generate(),
        visibility,
        size_limit,
        description,
    };
    let lobby_id = spec.id.clone();
    node.engine
        .connect_lobby(super::actor(s, presented.as_deref()), spec, now_ms())
        .await?;
    // Subscribe before replying, so the client sees every later event.
    let delta = node
        .hub
        .add_memberships(s.user(), std::slice::from_ref(&lobby_id));
    node.apply(delta).await;
    let snap = node
        .engine
        .lobby(&lobby_id)
        .await?
        .ok_or_else(|| ProtocolError::new(ErrorCode::Internal, "lobby vanished after join"))?;
    let user = s.user();
    let level = access::lobby_level(&snap.record, user, presented.as_deref())
        .unwrap_or(access::AccessLevel::Partial);
    let perms =
        access::lobby_permissions(access::lobby_role(&snap.record, user, presented.as_deref()));
    Ok(json!({
        "lobby": crate::domain::view::lobby_info(&snap, level, perms),
        "user": { "id": user },
    }))
}

pub(super) async fn disconnect(
    node: &Node,
    s: &mut Session,
    lobby: LobbyId,
) -> Result<Value, ProtocolError> {
    node.engine
        .leave_lobby(super::actor(s, None), &lobby, now_ms())
        .await?;
    // The hub forgets the membership when the event comes back, after
    // delivering it to this user's other connections.
    Ok(json!({ "lobby": { "id": lobby }, "user": { "id": s.user() } }))
}
