//! `send_message`, `received_message` / `viewed_message`, `typing_message`.

use super::super::session::Session;
use super::super::Node;
use crate::domain::access::{self, AccessLevel};
use crate::domain::{now_ms, LobbyId, MessageId, ReceiptKind};
use crate::protocol::ProtocolError;
use serde_json::{json, Value};

pub(super) async fn send(
    node: &Node,
    s: &mut Session,
    lobby: LobbyId,
    content: String,
    replied: Option<MessageId>,
) -> Result<Value, ProtocolError> {
    let id = MessageId::generate();
    let msg = node
        .engine
        .append_message(
            super::actor(s, None),
            &lobby,
            &id,
            &content,
            replied.as_ref(),
            now_ms(),
        )
        .await?;
    let perms = access::message_permissions(&msg, s.user());
    Ok(json!({ "message": crate::domain::view::message_info(&msg, AccessLevel::Private, perms) }))
}

pub(super) async fn receipt(
    node: &Node,
    s: &mut Session,
    kind: ReceiptKind,
    lobby: LobbyId,
    message: MessageId,
) -> Result<Value, ProtocolError> {
    node.engine
        .record_receipt(super::actor(s, None), &lobby, &message, kind)
        .await?;
    Ok(
        json!({ "lobby": { "id": lobby }, "message": { "id": message }, "user": { "id": s.user() } }),
    )
}

pub(super) async fn typing(
    node: &Node,
    s: &mut Session,
    lobby: LobbyId,
    message: Option<MessageId>,
) -> Result<Value, ProtocolError> {
    node.engine
        .typing(super::actor(s, None), &lobby, message.as_ref())
        .await?;
    let mut reply = json!({ "lobby": { "id": lobby }, "user": { "id": s.user() } });
    if let Some(m) = message {
        reply["message"] = json!({ "id": m });
    }
    Ok(reply)
}
