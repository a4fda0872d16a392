//! Delivery of engine events to local connections. Each event is decoded
//! once and encoded once per distinct view (at most two: a message's
//! author sees it at private level), then the bytes are shared by every
//! recipient.

use super::hub::SeqCheck;
use super::Node;
use crate::domain::access::{self, AccessLevel};
use crate::domain::view::message_info;
use crate::domain::{Envelope, Event, LobbyId, MessageRecord, PresenceKind, ReceiptKind};
use crate::node::session::Outbox;
use crate::protocol::OutFrame;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Messages fetched per history read while catching up.
const CATCH_UP_PAGE: usize = 500;

/// Delivers every event from the engine, in order, until the engine's
/// sink closes. After the engine's fan-out lost events (a pub/sub
/// reconnect) it catches every local lobby up from history.
pub async fn run_dispatcher(node: Arc<Node>, mut events: mpsc::UnboundedReceiver<Envelope>) {
    let mut resubscribed = node.engine.resubscribed();
    loop {
        let lost = async {
            match resubscribed.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            env = events.recv() => match env {
                Some(env) => node.deliver(env).await,
                None => return,
            },
            ok = lost => {
                if !ok {
                    resubscribed = None;
                    continue;
                }
                // Membership changes published meanwhile were missed too:
                // reload the local users' lobbies.
                for user in node.hub.local_users() {
                    if let Ok(Some(snap)) = node.engine.user(&user).await {
                        let delta = node.hub.add_memberships(&user, &snap.lobbies);
                        node.apply(delta).await;
                    }
                }
                for (lobby, last) in node.hub.lobbies() {
                    match node.engine.last_seq(&lobby).await {
                        Ok(current) if current < last => node.hub.reset_seq(&lobby, current),
                        Ok(_) if last > 0 => node.catch_up(&lobby, last, u64::MAX).await,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, lobby = %lobby, "catch-up skipped"),
                    }
                }
            }
        }
    }
}

impl Node {
    /// Delivers the lobby's messages with seq in (last, before) from
    /// history, in order. Best effort: a failed read is retried by the next
    /// gap or reconnect.
    async fn catch_up(&self, lobby: &LobbyId, mut last: u64, before: u64) {
        while last + 1 < before {
            let page = match self.engine.messages_after(lobby, last, CATCH_UP_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, lobby = %lobby, "catch-up read failed");
                    return;
                }
            };
            let n = page.len();
            for m in page.into_iter().take_while(|m| m.seq < before) {
                last = m.seq;
                if self.hub.check_seq(lobby, m.seq) == SeqCheck::Next {
                    let n = self.send_message_frames(&m, None);
                    crate::telemetry::metrics::metrics().deliveries.add(n, &[]);
                }
            }
            if n < CATCH_UP_PAGE {
                return;
            }
        }
    }

    /// Sends a message broadcast to the lobby's local connections, except
    /// the one that sent it.
    fn send_message_frames(&self, message: &MessageRecord, origin: Option<u64>) -> u64 {
        let mut n = 0;
        let mut mine: Option<OutFrame> = None;
        let mut theirs: Option<OutFrame> = None;
        self.hub.for_lobby(&message.lobby, |user, conn, outbox| {
            if Some(conn) == origin {
                return;
            }
            let (slot, level) = if user == &message.author {
                (&mut mine, AccessLevel::Private)
            } else {
                (&mut theirs, AccessLevel::Partial)
            };
            let frame = slot.get_or_insert_with(|| {
                let info = message_info(message, level, access::message_permissions(message, user));
                OutFrame::new("send_message", json!({ "message": info }), None)
            });
            outbox.send(frame.clone());
            n += 1;
        });
        n
    }

    async fn deliver(&self, env: Envelope) {
        use tracing::Instrument;
        // Origin: `<node>/<conn>[;<traceparent>]`.
        let (who, traceparent) = match env.origin.as_ref() {
            Some(o) => match o.0.split_once(';') {
                Some((w, tp)) => (Some(w), Some(tp)),
                None => (Some(o.0.as_str()), None),
            },
            None => (None, None),
        };
        let origin = who
            .and_then(|o| o.strip_prefix(self.id.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|c| c.parse::<u64>().ok());
        let span = match traceparent {
            Some(tp) => {
                let span = tracing::info_span!("deliver", node = %self.id);
                crate::telemetry::set_remote_parent(&span, tp);
                span
            }
            None => tracing::Span::none(),
        };
        let sent = AtomicU64::new(0);
        self.deliver_event(env.event, origin, &sent)
            .instrument(span)
            .await;
        if sent.load(Relaxed) > 0 {
            crate::telemetry::metrics::metrics()
                .deliveries
                .add(sent.load(Relaxed), &[]);
        }
    }

    async fn deliver_event(&self, event: Event, origin: Option<u64>, sent: &AtomicU64) {
        let skip = |c: u64| Some(c) == origin;
        match event {
            Event::Message { message } => match self.hub.check_seq(&message.lobby, message.seq) {
                SeqCheck::Next => {
                    sent.fetch_add(self.send_message_frames(&message, origin), Relaxed);
                    record_fanout_latency(&message);
                }
                SeqCheck::Duplicate | SeqCheck::NotLocal => {}
                SeqCheck::Gap { last } => {
                    self.catch_up(&message.lobby, last, message.seq).await;
                    if self.hub.check_seq(&message.lobby, message.seq) == SeqCheck::Next {
                        sent.fetch_add(self.send_message_frames(&message, origin), Relaxed);
                    }
                }
            },
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
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
                        push(o, &frame, sent)
                    }
                });
                let delta = self.hub.remove_membership(&user, &lobby);
                self.apply(delta).await;
            }
            Event::Kick { user } => {
                let frame = OutFrame::new("logout", json!({ "user": { "id": user } }), None);
                self.hub.for_user(&user, |c, o| {
                    if !skip(c) {
                        {
                            sent.fetch_add(1, Relaxed);
                            o.kick(frame.clone())
                        }
                    }
                });
            }
        }
    }
}

/// Queues a shared frame and counts the delivery.
fn push(outbox: &Outbox, frame: &OutFrame, sent: &AtomicU64) {
    sent.fetch_add(1, Relaxed);
    outbox.send(frame.clone());
}

/// Commit (the message's creation time) to queued here, in seconds.
fn record_fanout_latency(message: &MessageRecord) {
    let ms = (crate::domain::now_ms() - message.created_at).max(0) as f64;
    crate::telemetry::metrics::metrics()
        .fanout_latency
        .record(ms / 1000.0, &[]);
}
