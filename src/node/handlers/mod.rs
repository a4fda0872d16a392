//! Request handlers, one file per area. Each takes the typed request and
//! returns the reply's `data`; broadcasts come back through the engine.

mod auth;
mod data;
mod lobby;
mod message;

use super::extension::EventContext;
use super::session::Session;
use super::Node;
use crate::engine::Actor;
use crate::protocol::{ErrorCode, ProtocolError, Request};
use serde_json::Value;

/// Runs one request for a session (login is checked by the caller).
pub(super) async fn handle(
    node: &Node,
    s: &mut Session,
    req: Request,
) -> Result<Value, ProtocolError> {
    match req {
        Request::Login { token, username } => auth::login(node, s, token, username).await,
        Request::Logout { everywhere } => auth::logout(node, s, everywhere).await,
        Request::ConnectLobby {
            id,
            token,
            visibility,
            size_limit,
            description,
        } => lobby::connect(node, s, id, token, visibility, size_limit, description).await,
        Request::DisconnectLobby { lobby } => lobby::disconnect(node, s, lobby).await,
        Request::SendMessage {
            lobby,
            content,
            replied,
        } => message::send(node, s, lobby, content, replied).await,
        Request::Receipt {
            kind,
            lobby,
            message,
        } => message::receipt(node, s, kind, lobby, message).await,
        Request::Typing { lobby, message } => message::typing(node, s, lobby, message).await,
        Request::GetData { target, token } => data::get(node, s, target, token).await,
        Request::GetAllData {
            kind,
            token,
            lobby,
            limit,
            start,
        } => data::get_all(node, s, kind, token, lobby, limit, start).await,
        Request::UpdateData {
            target,
            token,
            fields,
        } => data::update(node, s, target, token, fields).await,
        Request::UseAction {
            target,
            token,
            action,
        } => data::action(node, s, target, token, action).await,
        Request::Custom { event, data } => match node.extensions.get(&event) {
            Some(h) => {
                h(
                    EventContext {
                        user: s.user().clone(),
                        event,
                    },
                    data,
                )
                .await
            }
            None => Err(ProtocolError::new(
                ErrorCode::UnknownEvent,
                format!("no handler for `{event}`"),
            )),
        },
    }
}

/// The actor for engine calls.
fn actor<'a>(s: &'a Session, token: Option<&'a str>) -> Actor<'a> {
    Actor {
        user: s.user(),
        token,
        origin: &s.origin,
    }
}
