//! Delivery of engine events to local connections. Each event is decoded
//! once and encoded once per distinct view (at most two: a message's
//! author sees it at private level), then the bytes are shared by every
//! recipient.

use super::Node;
use crate::domain::access::{self, AccessLevel};
use crate::domain::view::message_info;
use crate::domain::{Envelope, Event, PresenceKind, ReceiptKind};
use crate::protocol::OutFrame;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Delivers every event from the engine, in order, until the engine's
/// sink closes.
pub async fn run_dispatcher(node: Arc<Node>, mut events: mpsc::UnboundedReceiver<Envelope>) {
    while let Some(env) = events.recv().await {
        node.deliver(env).await;
    }
}

impl Node {
    async fn deliver(&self, env: Envelope) {
        let origin = env
            .origin
            .as_ref()
            .and_then(|o| o.0.strip_prefix(self.id.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|c| c.parse::<u64>().ok());
        let skip = |c: u64| Some(c) == origin;
        match env.event {
            Event::Message { message } => {
                let mut mine: Option<OutFrame> = None;
                let mut theirs: Option<OutFrame> = None;
                self.hub.for_lobby(&message.lobby, |user, conn, outbox| {
                    if skip(conn) {
                        return;
                    }
                    let (slot, level) = if user == &message.author {
                        (&mut mine, AccessLevel::Private)
                    } else {
                        (&mut theirs, AccessLevel::Partial)
                    };
                    let frame = slot.get_or_insert_with(|| {
                        let info = message_info(
                            &message,
                            level,
                            access::message_permissions(&message, user),
                        );
                        OutFrame::new("send_message", json!({ "message": info }), None)
                    });
                    outbox.send(frame.clone());
                });
            }
            Event::Receipt {
                kind,
                lobby,
                message,
                user,
            } => {
                let name = match kind {
                    ReceiptKind::Received => "received_message",
                    ReceiptKind::Viewed => "viewed_message",
                };
                let frame = OutFrame::new(
                    name,
                    json!({ "lobby": { "id": lobby }, "message": { "id": message }, "user": { "id": user } }),
                    None,
                );
                self.hub.for_lobby(&lobby, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
            }
            Event::Typing {
                lobby,
                user,
                message,
            } => {
                let mut data = json!({ "lobby": { "id": lobby }, "user": { "id": user } });
                if let Some(m) = message {
                    data["message"] = json!({ "id": m });
                }
                let frame = OutFrame::new("typing_message", data, None);
                self.hub.for_lobby(&lobby, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
            }
            Event::LobbyUpdated {
                lobby,
                fields,
                updated_at,
            } => {
                let frame = OutFrame::new(
                    "update_data",
                    json!({ "type": "lobbys", "id": lobby, "data": fields, "updatedAt": updated_at }),
                    None,
                );
                self.hub.for_lobby(&lobby, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
            }
            Event::MessageUpdated {
                lobby,
                message,
                fields,
                updated_at,
            } => {
                let frame = OutFrame::new(
                    "update_data",
                    json!({ "type": "messages", "id": message, "data": fields, "updatedAt": updated_at }),
                    None,
                );
                self.hub.for_lobby(&lobby, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
            }
            Event::Presence {
                kind,
                user,
                username,
                lobbies,
            } => {
                let (name, data) = match kind {
                    PresenceKind::Login => (
                        "login",
                        json!({ "user": { "id": user, "username": username } }),
                    ),
                    PresenceKind::Logout => ("logout", json!({ "user": { "id": user } })),
                    PresenceKind::Disconnect => ("disconnect", json!({ "user": { "id": user } })),
                };
                let frame = OutFrame::new(name, data, None);
                self.hub.for_co_members(&user, &lobbies, false, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
            }
            Event::UserUpdated {
                user,
                lobbies,
                fields,
                updated_at,
            } => {
                let frame = OutFrame::new(
                    "update_data",
                    json!({ "type": "users", "id": user, "data": fields, "updatedAt": updated_at }),
                    None,
                );
                self.hub.for_co_members(&user, &lobbies, true, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
            }
            Event::MemberJoined {
                lobby,
                user,
                username,
            } => {
                let delta = self
                    .hub
                    .add_memberships(&user, std::slice::from_ref(&lobby));
                let frame = OutFrame::new(
                    "connect_lobby",
                    json!({ "lobby": { "id": lobby }, "user": { "id": user, "username": username } }),
                    None,
                );
                self.hub.for_lobby(&lobby, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
                self.apply(delta).await;
            }
            Event::MemberLeft { lobby, user } => {
                let frame = OutFrame::new(
                    "disconnect_lobby",
                    json!({ "lobby": { "id": lobby }, "user": { "id": user } }),
                    None,
                );
                self.hub.for_lobby(&lobby, |_, c, o| {
                    if !skip(c) {
                        o.send(frame.clone())
                    }
                });
                let delta = self.hub.remove_membership(&user, &lobby);
                self.apply(delta).await;
            }
            Event::Kick { user } => {
                let frame = OutFrame::new("logout", json!({ "user": { "id": user } }), None);
                self.hub.for_user(&user, |c, o| {
                    if !skip(c) {
                        o.kick(frame.clone())
                    }
                });
            }
        }
    }
}
