//! The single-node engine: all state in one process behind one mutex, for a
//! developer's laptop and for tests. It follows the same rules as the Redis
//! engine (see the trait's guarantees); events go straight to the node's
//! sink while the state lock is held, which gives them commit order.

use super::{
    deliver, Actor, Engine, EngineError, EngineResult, EventSink, JoinOutcome, LobbyChange,
    LobbySpec, UserChange,
};
use crate::domain::access;
use crate::domain::{
    DomainError, Event, LobbyId, LobbyRecord, LobbySnapshot, Member, MessageId, MessageRecord,
    Origin, PresenceKind, ReceiptKind, UserId, UserRecord, UserSnapshot,
};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;

mod lobby_change;
mod state;

use state::{LobbyState, State};

/// In-process engine. Cheap to create; nothing survives the process.
pub struct MemoryEngine {
    /// A std mutex: critical sections are short and never await.
    state: Mutex<State>,
    sink: EventSink,
}

impl MemoryEngine {
    /// An empty engine delivering events to `sink`.
    pub fn new(sink: EventSink) -> Self {
        Self {
            state: Mutex::new(State::default()),
            sink,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn refused<T>(e: DomainError) -> EngineResult<T> {
    Err(EngineError::Refused(e))
}

#[async_trait]
impl Engine for MemoryEngine {
    async fn ping(&self) -> EngineResult<()> {
        Ok(())
    }

    async fn create_user(
        &self,
        id: &UserId,
        username: Option<&str>,
        token_hash: &str,
        now: i64,
    ) -> EngineResult<UserRecord> {
        let mut st = self.state();
        let rec = UserRecord {
            id: id.clone(),
            username: username.map(str::to_owned),
            visibility: false,
            token_hash: token_hash.to_owned(),
            created_at: now,
            updated_at: now,
        };
        st.users.insert(id.clone(), rec.clone());
        st.token_index.insert(token_hash.to_owned(), id.clone());
        Ok(rec)
    }

    async fn user_by_token(&self, token_hash: &str) -> EngineResult<Option<UserId>> {
        Ok(self.state().token_index.get(token_hash).cloned())
    }

    async fn user(&self, id: &UserId) -> EngineResult<Option<UserSnapshot>> {
        let st = self.state();
        Ok(st.users.get(id).map(|r| UserSnapshot {
            record: r.clone(),
            lobbies: st.lobbies_of(id),
            online: st.online.get(id).copied().unwrap_or(0) > 0,
        }))
    }

    async fn change_user(
        &self,
        actor: Actor<'_>,
        change: UserChange,
        now: i64,
    ) -> EngineResult<UserRecord> {
        let mut st = self.state();
        let Some(mut rec) = st.users.get(actor.user).cloned() else {
            return refused(DomainError::NotFound);
        };
        match change {
            UserChange::SetTokenHash(hash) => {
                st.token_index.remove(&rec.token_hash);
                st.token_index.insert(hash.clone(), rec.id.clone());
                rec.token_hash = hash;
                rec.updated_at = now;
            }
            UserChange::Update(fields) => {
                for (k, v) in &fields {
                    match k.as_str() {
                        "username" => rec.username = v.as_str().map(str::to_owned),
                        "visibility" => rec.visibility = v.as_bool().unwrap_or(rec.visibility),
                        _ => return refused(DomainError::BadRequest(format!("unknown field {k}"))),
                    }
                }
                rec.updated_at = now;
                let lobbies = st.lobbies_of(&rec.id);
                deliver(
                    &self.sink,
                    Some(actor.origin),
                    Event::UserUpdated {
                        user: rec.id.clone(),
                        lobbies,
                        fields,
                        updated_at: now,
                    },
                );
            }
        }
        st.users.insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    async fn visible_users(
        &self,
        caller: &UserId,
        token_hash: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> EngineResult<Vec<UserId>> {
        let st = self.state();
        let mut ids: BTreeSet<UserId> = BTreeSet::new();
        if st.users.contains_key(caller) {
            ids.insert(caller.clone());
        }
        for l in st.lobbies_of(caller) {
            if let Some(rec) = st.lobby(&l) {
                ids.extend(rec.members.iter().cloned());
            }
        }
        ids.extend(
            st.users
                .values()
                .filter(|u| u.visibility)
                .map(|u| u.id.clone()),
        );
        if let Some(id) = token_hash.and_then(|h| st.token_index.get(h)) {
            ids.insert(id.clone());
        }
        Ok(page(ids, after, limit))
    }

    async fn connect_lobby(
        &self,
        actor: Actor<'_>,
        spec: LobbySpec,
        now: i64,
    ) -> EngineResult<JoinOutcome> {
        let mut st = self.state();
        let user = actor.user;
        let (created, joined) = match st.lobby(&spec.id) {
            None => {
                let rec = LobbyRecord {
                    id: spec.id.clone(),
                    owner: user.clone(),
                    token: spec.token.clone().unwrap_or(spec.generated_token),
                    visibility: spec.visibility,
                    size_limit: spec.size_limit,
                    description: spec.description,
                    created_at: now,
                    updated_at: now,
                    members: Vec::new(),
                };
                st.lobbies.insert(
                    spec.id.clone(),
                    LobbyState {
                        record: Some(rec),
                        ..Default::default()
                    },
                );
                (true, true)
            }
            Some(l) if l.members.binary_search(user).is_ok() => (false, false),
            Some(l) => {
                if !access::may_join(l, user, spec.token.as_deref()) {
                    return refused(DomainError::Forbidden);
                }
                if l.size_limit.is_some_and(|n| l.members.len() as u64 >= n) {
                    return refused(DomainError::LobbyFull);
                }
                (false, true)
            }
        };
        if joined {
            st.add_member(&spec.id, user);
            let username = st.username(user);
            deliver(
                &self.sink,
                Some(actor.origin),
                Event::MemberJoined {
                    lobby: spec.id.clone(),
                    user: user.clone(),
                    username,
                },
            );
        }
        let lobby = st
            .lobby(&spec.id)
            .cloned()
            .ok_or_else(|| EngineError::Internal("lobby vanished".into()))?;
        Ok(JoinOutcome {
            lobby,
            created,
            joined,
        })
    }

    async fn leave_lobby(&self, actor: Actor<'_>, lobby: &LobbyId, _now: i64) -> EngineResult<()> {
        let mut st = self.state();
        st.member_lobby(lobby, actor.user)?;
        st.remove_member(lobby, actor.user);
        deliver(
            &self.sink,
            Some(actor.origin),
            Event::MemberLeft {
                lobby: lobby.clone(),
                user: actor.user.clone(),
            },
        );
        Ok(())
    }

    async fn lobby(&self, id: &LobbyId) -> EngineResult<Option<LobbySnapshot>> {
        let st = self.state();
        Ok(st.lobby(id).map(|rec| LobbySnapshot {
            members: rec
                .members
                .iter()
                .map(|m| Member {
                    id: m.clone(),
                    username: st.username(m),
                    online: st.online.get(m).copied().unwrap_or(0) > 0,
                })
                .collect(),
            record: rec.clone(),
        }))
    }

    async fn lobby_by_token(&self, token: &str) -> EngineResult<Option<LobbyId>> {
        let st = self.state();
        Ok(st
            .lobbies
            .values()
            .filter_map(|l| l.record.as_ref())
            .find(|r| crate::domain::token::matches(token, &r.token))
            .map(|r| r.id.clone()))
    }

    async fn change_lobby(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        change: LobbyChange,
        now: i64,
    ) -> EngineResult<LobbyRecord> {
        self.state()
            .change_lobby(&self.sink, actor, lobby, change, now)
    }

    async fn visible_lobbies(
        &self,
        caller: &UserId,
        token: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> EngineResult<Vec<LobbyId>> {
        let st = self.state();
        let ids: BTreeSet<LobbyId> = st
            .lobbies
            .values()
            .filter_map(|l| l.record.as_ref())
            .filter(|r| access::lobby_level(r, caller, token).is_some())
            .map(|r| r.id.clone())
            .collect();
        Ok(page(ids, after, limit))
    }

    async fn append_message(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        id: &MessageId,
        content: &str,
        replied: Option<&MessageId>,
        now: i64,
    ) -> EngineResult<MessageRecord> {
        let mut st = self.state();
        st.member_lobby(lobby, actor.user)?;
        let author_username = st.username(actor.user);
        let l = st.lobby_mut(lobby).expect("checked above");
        if replied.is_some_and(|r| !l.by_id.contains_key(r)) {
            return refused(DomainError::NotFound);
        }
        let msg = MessageRecord {
            id: id.clone(),
            lobby: lobby.clone(),
            author: actor.user.clone(),
            author_username,
            content: content.to_owned(),
            replied: replied.cloned(),
            seq: l.messages.len() as u64 + 1,
            created_at: now,
            updated_at: now,
            received: Vec::new(),
            viewed: Vec::new(),
        };
        l.by_id.insert(id.clone(), l.messages.len());
        l.messages.push(msg.clone());
        deliver(
            &self.sink,
            Some(actor.origin),
            Event::Message {
                message: msg.clone(),
            },
        );
        Ok(msg)
    }

    async fn message(
        &self,
        lobby: &LobbyId,
        id: &MessageId,
    ) -> EngineResult<Option<MessageRecord>> {
        let st = self.state();
        Ok(st
            .lobbies
            .get(lobby)
            .and_then(|l| l.by_id.get(id).map(|&i| l.messages[i].clone())))
    }

    async fn last_seq(&self, lobby: &LobbyId) -> EngineResult<u64> {
        Ok(self
            .state()
            .lobbies
            .get(lobby)
            .map_or(0, |l| l.messages.len() as u64))
    }

    async fn messages_after(
        &self,
        lobby: &LobbyId,
        after: u64,
        limit: usize,
    ) -> EngineResult<Vec<MessageRecord>> {
        let st = self.state();
        Ok(st
            .lobbies
            .get(lobby)
            .map(|l| {
                l.messages
                    .iter()
                    .skip(after as usize)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn record_receipt(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: &MessageId,
        kind: ReceiptKind,
    ) -> EngineResult<bool> {
        let mut st = self.state();
        st.member_lobby(lobby, actor.user)?;
        let l = st.lobby_mut(lobby).expect("checked above");
        let Some(&i) = l.by_id.get(message) else {
            return refused(DomainError::NotFound);
        };
        let m = &mut l.messages[i];
        let user = actor.user;
        let first_received = !m.received.contains(user);
        if first_received {
            m.received.push(user.clone());
        }
        let first = match kind {
            ReceiptKind::Received => first_received,
            ReceiptKind::Viewed => {
                let first_viewed = !m.viewed.contains(user);
                if first_viewed {
                    m.viewed.push(user.clone());
                }
                first_viewed
            }
        };
        if first {
            deliver(
                &self.sink,
                Some(actor.origin),
                Event::Receipt {
                    kind,
                    lobby: lobby.clone(),
                    message: message.clone(),
                    user: user.clone(),
                },
            );
        }
        Ok(first)
    }

    async fn typing(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: Option<&MessageId>,
    ) -> EngineResult<()> {
        let st = self.state();
        st.member_lobby(lobby, actor.user)?;
        if let Some(m) = message {
            if !st
                .lobbies
                .get(lobby)
                .is_some_and(|l| l.by_id.contains_key(m))
            {
                return refused(DomainError::NotFound);
            }
        }
        deliver(
            &self.sink,
            Some(actor.origin),
            Event::Typing {
                lobby: lobby.clone(),
                user: actor.user.clone(),
                message: message.cloned(),
            },
        );
        Ok(())
    }

    async fn change_message(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: &MessageId,
        content: &str,
        now: i64,
    ) -> EngineResult<MessageRecord> {
        let mut st = self.state();
        st.member_lobby(lobby, actor.user)
            .map_err(|_| DomainError::NotFound)?;
        let l = st.lobby_mut(lobby).expect("checked above");
        let Some(&i) = l.by_id.get(message) else {
            return refused(DomainError::NotFound);
        };
        let m = &mut l.messages[i];
        if &m.author != actor.user {
            return refused(DomainError::Forbidden);
        }
        m.content = content.to_owned();
        m.updated_at = now;
        let out = m.clone();
        let fields = json!({"content": content});
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        deliver(
            &self.sink,
            Some(actor.origin),
            Event::MessageUpdated {
                lobby: lobby.clone(),
                message: message.clone(),
                fields,
                updated_at: now,
            },
        );
        Ok(out)
    }

    async fn connection_up(&self, user: &UserId, origin: &Origin) -> EngineResult<()> {
        let mut st = self.state();
        let n = st.online.entry(user.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            let event = Event::Presence {
                kind: PresenceKind::Login,
                user: user.clone(),
                username: st.username(user),
                lobbies: st.lobbies_of(user),
            };
            deliver(&self.sink, Some(origin), event);
        }
        Ok(())
    }

    async fn connection_down(&self, user: &UserId, kind: PresenceKind) -> EngineResult<()> {
        let mut st = self.state();
        let Some(n) = st.online.get_mut(user) else {
            return Ok(());
        };
        *n -= 1;
        if *n == 0 {
            st.online.remove(user);
            let event = Event::Presence {
                kind,
                user: user.clone(),
                username: st.username(user),
                lobbies: st.lobbies_of(user),
            };
            deliver(&self.sink, None, event);
        }
        Ok(())
    }

    async fn kick(&self, user: &UserId, origin: &Origin) -> EngineResult<()> {
        let _st = self.state();
        deliver(&self.sink, Some(origin), Event::Kick { user: user.clone() });
        Ok(())
    }

    async fn subscribe_lobby(&self, _lobby: &LobbyId) -> EngineResult<()> {
        Ok(())
    }

    async fn unsubscribe_lobby(&self, _lobby: &LobbyId) -> EngineResult<()> {
        Ok(())
    }

    async fn shutdown(&self, _presence_grace_ms: u64) {}
}

/// Ids after the cursor, at most `limit`.
fn page<T: Ord + AsRef<str>>(ids: BTreeSet<T>, after: Option<&str>, limit: usize) -> Vec<T> {
    ids.into_iter()
        .filter(|i| after.is_none_or(|a| i.as_ref() > a))
        .take(limit)
        .collect()
}
