//! `change_lobby` on the memory engine: who may make which change, and
//! the events each change publishes (the rules the Redis engine's
//! `change_lobby.lua` follows too).

use super::refused;
use super::state::State;
use crate::domain::access::{self, Permission};
use crate::domain::{DomainError, Event, LobbyId, LobbyRecord, UserId};
use crate::engine::{deliver, Actor, EngineResult, EventSink, LobbyChange};
use serde_json::{json, Value};
use std::collections::BTreeSet;

impl State {
    /// Applies `change` by `actor` and publishes its events, all under the
    /// engine's one lock, so they take commit order.
    pub(super) fn change_lobby(
        &mut self,
        sink: &EventSink,
        actor: Actor<'_>,
        lobby: &LobbyId,
        change: LobbyChange,
        now: i64,
    ) -> EngineResult<LobbyRecord> {
        let st = self;
        let rec = st.lobby(lobby).ok_or(DomainError::NotFound)?.clone();
        if access::lobby_level(&rec, actor.user, actor.token).is_none() {
            return refused(DomainError::NotFound);
        }
        let role = access::lobby_role(&rec, actor.user, actor.token);
        let needs = match &change {
            LobbyChange::SetOwner(_) => Permission::SetOwner,
            LobbyChange::SetToken(_) => Permission::SetToken,
            LobbyChange::AddUsers(_) => Permission::AddUsers,
            LobbyChange::DeleteUsers(_) => Permission::DeleteUsers,
            LobbyChange::Update { needs, .. } => *needs,
        };
        if !access::lobby_permissions(role).contains(&needs) {
            return refused(DomainError::Forbidden);
        }
        let origin = Some(actor.origin);
        match change {
            LobbyChange::SetOwner(target) => {
                if !st.users.contains_key(&target) {
                    return refused(DomainError::NotFound);
                }
                let l = st
                    .lobby_mut(lobby)
                    .and_then(|l| l.record.as_mut())
                    .expect("checked above");
                l.owner = target.clone();
                l.updated_at = now;
                let fields = json!({"owner": {"id": target}});
                deliver(sink, origin, lobby_updated(lobby, fields, now));
            }
            LobbyChange::SetToken(token) => {
                let l = st
                    .lobby_mut(lobby)
                    .and_then(|l| l.record.as_mut())
                    .expect("checked above");
                l.token = token;
                l.updated_at = now;
            }
            LobbyChange::AddUsers(targets) => {
                if targets.iter().any(|t| !st.users.contains_key(t)) {
                    return refused(DomainError::NotFound);
                }
                let mut new: BTreeSet<&UserId> = targets
                    .iter()
                    .filter(|t| rec.members.binary_search(t).is_err())
                    .collect();
                if rec
                    .size_limit
                    .is_some_and(|n| (rec.members.len() + new.len()) as u64 > n)
                {
                    return refused(DomainError::LobbyFull);
                }
                for t in &targets {
                    if !new.remove(t) {
                        continue;
                    }
                    st.add_member(lobby, t);
                    let username = st.username(t);
                    deliver(
                        sink,
                        origin,
                        Event::MemberJoined {
                            lobby: lobby.clone(),
                            user: t.clone(),
                            username,
                        },
                    );
                }
            }
            LobbyChange::DeleteUsers(targets) => {
                if targets.iter().any(|t| !st.users.contains_key(t)) {
                    return refused(DomainError::NotFound);
                }
                let mut seen = BTreeSet::new();
                for t in &targets {
                    if rec.members.binary_search(t).is_ok() && seen.insert(t) {
                        st.remove_member(lobby, t);
                        deliver(
                            sink,
                            origin,
                            Event::MemberLeft {
                                lobby: lobby.clone(),
                                user: t.clone(),
                            },
                        );
                    }
                }
            }
            LobbyChange::Update { fields, .. } => {
                if let Some(k) = fields
                    .keys()
                    .find(|k| !["description", "sizeLimit", "visibility"].contains(&k.as_str()))
                {
                    return refused(DomainError::BadRequest(format!("unknown field {k}")));
                }
                let l = st
                    .lobby_mut(lobby)
                    .and_then(|l| l.record.as_mut())
                    .expect("checked above");
                for (k, v) in &fields {
                    match k.as_str() {
                        "description" => l.description = v.as_str().map(str::to_owned),
                        "sizeLimit" => l.size_limit = v.as_u64(),
                        "visibility" => l.visibility = v.as_bool().unwrap_or(l.visibility),
                        _ => unreachable!("checked above"),
                    }
                }
                l.updated_at = now;
                deliver(
                    sink,
                    origin,
                    Event::LobbyUpdated {
                        lobby: lobby.clone(),
                        fields,
                        updated_at: now,
                    },
                );
            }
        }
        Ok(st.lobby(lobby).cloned().expect("exists"))
    }
}

fn lobby_updated(lobby: &LobbyId, fields: Value, now: i64) -> Event {
    let Value::Object(fields) = fields else {
        unreachable!("fields are built as objects")
    };
    Event::LobbyUpdated {
        lobby: lobby.clone(),
        fields,
        updated_at: now,
    }
}
