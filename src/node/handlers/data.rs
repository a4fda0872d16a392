//! `get_data`, `get_all_data`, `update_data` and `use_action`: graded
//! access to users, lobbys and messages.

use super::super::session::Session;
use super::super::{Node, PAGE_READS_IN_FLIGHT};
use crate::domain::access::{self, AccessLevel, Permission};
use crate::domain::view::{lobby_info, message_info, user_info};
use crate::domain::{now_ms, token, DomainError, LobbyId, MessageId, UserId, UserSnapshot};
use crate::engine::{LobbyChange, UserChange};
use crate::protocol::request::{Action, ObjectType, PageStart};
use crate::protocol::{ProtocolError, Target};
use futures::future::try_join_all;
use serde_json::{json, Map, Value};

/// Permits for `n` concurrent object reads of a page: a page of 100 costs
/// 13 rounds of Redis reads instead of 100, and all pages together hold
/// at most half of the Redis pool.
async fn page_reads(node: &Node, n: usize) -> tokio::sync::SemaphorePermit<'_> {
    node.page_reads
        .acquire_many(n as u32)
        .await
        .expect("the semaphore is never closed")
}

fn not_found() -> ProtocolError {
    DomainError::NotFound.into()
}

/// A user's info as the caller sees it, or None when it may not.
fn user_view(
    s: &Session,
    target: &UserSnapshot,
    caller_lobbies: &[LobbyId],
    presented: Option<&str>,
) -> Option<Value> {
    let caller = s.user();
    let shared: Vec<LobbyId> = target
        .lobbies
        .iter()
        .filter(|l| caller_lobbies.binary_search(l).is_ok())
        .cloned()
        .collect();
    let level = access::user_level(&target.record, caller, presented, !shared.is_empty())?;
    // Show a token only to someone who already knows it.
    let known = if &target.record.id == caller {
        s.login
            .token
            .as_deref()
            .filter(|t| token::matches(&token::hash(t), &target.record.token_hash))
    } else {
        presented.filter(|t| token::matches(&token::hash(t), &target.record.token_hash))
    };
    Some(user_info(
        target,
        level,
        access::user_permissions(&target.record, caller),
        &shared,
        known,
    ))
}

async fn caller_lobbies(node: &Node, s: &Session) -> Result<Vec<LobbyId>, ProtocolError> {
    Ok(node
        .engine
        .user(s.user())
        .await?
        .map(|u| u.lobbies)
        .unwrap_or_default())
}

async fn lobby_view(
    node: &Node,
    s: &Session,
    id: &LobbyId,
    presented: Option<&str>,
) -> Result<Option<Value>, ProtocolError> {
    let Some(snap) = node.engine.lobby(id).await? else {
        return Ok(None);
    };
    let caller = s.user();
    let Some(level) = access::lobby_level(&snap.record, caller, presented) else {
        return Ok(None);
    };
    let perms = access::lobby_permissions(access::lobby_role(&snap.record, caller, presented));
    Ok(Some(lobby_info(&snap, level, perms)))
}

/// A message's info for a member of its lobby; None for anyone else.
async fn message_view(
    node: &Node,
    s: &Session,
    lobby: &LobbyId,
    id: &MessageId,
) -> Result<Option<Value>, ProtocolError> {
    let Some(l) = node.engine.lobby(lobby).await? else {
        return Ok(None);
    };
    let caller = s.user();
    let member = l.record.members.binary_search(caller).is_ok();
    let Some(m) = node.engine.message(lobby, id).await? else {
        return Ok(None);
    };
    let Some(level) = access::message_level(&m, caller, member) else {
        return Ok(None);
    };
    Ok(Some(message_info(
        &m,
        level,
        access::message_permissions(&m, caller),
    )))
}

pub(super) async fn get(
    node: &Node,
    s: &mut Session,
    target: Target,
    presented: Option<String>,
) -> Result<Value, ProtocolError> {
    let t = presented.as_deref();
    let (kind, info) = match &target {
        Target::User(id) => {
            let snap = node.engine.user(id).await?.ok_or_else(not_found)?;
            let mine = caller_lobbies(node, s).await?;
            (ObjectType::Users, user_view(s, &snap, &mine, t))
        }
        Target::Lobby(id) => (ObjectType::Lobbys, lobby_view(node, s, id, t).await?),
        Target::Message(lobby, id) => (
            ObjectType::Messages,
            message_view(node, s, lobby, id).await?,
        ),
    };
    let info = info.ok_or_else(not_found)?;
    Ok(json!({ "type": kind.as_str(), "data": info }))
}

pub(super) async fn get_all(
    node: &Node,
    s: &mut Session,
    kind: ObjectType,
    presented: Option<String>,
    lobby: Option<LobbyId>,
    limit: usize,
    start: PageStart,
) -> Result<Value, ProtocolError> {
    let t = presented.as_deref();
    let caller = s.user().clone();
    let mut datas = Vec::new();
    let cursor: Option<String> = match kind {
        ObjectType::Users | ObjectType::Lobbys => {
            let after = match &start {
                PageStart::Cursor(c) => Some(c.as_str()),
                _ => None,
            };
            if kind == ObjectType::Users {
                let ids = node
                    .engine
                    .visible_users(&caller, t.map(token::hash).as_deref(), after, limit + 1)
                    .await?;
                let mine = caller_lobbies(node, s).await?;
                let page = &ids[..ids.len().min(limit)];
                for chunk in page.chunks(PAGE_READS_IN_FLIGHT) {
                    let _reads = page_reads(node, chunk.len()).await;
                    let snaps = try_join_all(chunk.iter().map(|id| node.engine.user(id))).await?;
                    for snap in snaps.iter().flatten() {
                        datas.extend(user_view(s, snap, &mine, t));
                    }
                }
                (ids.len() > limit).then(|| ids[limit - 1].to_string())
            } else {
                let ids = node
                    .engine
                    .visible_lobbies(&caller, t, after, limit + 1)
                    .await?;
                let page = &ids[..ids.len().min(limit)];
                for chunk in page.chunks(PAGE_READS_IN_FLIGHT) {
                    let _reads = page_reads(node, chunk.len()).await;
                    let views =
                        try_join_all(chunk.iter().map(|id| lobby_view(node, s, id, t))).await?;
                    datas.extend(views.into_iter().flatten());
                }
                (ids.len() > limit).then(|| ids[limit - 1].to_string())
            }
        }
        ObjectType::Messages => {
            let lobby = lobby.expect("parsed: messages need a lobby");
            let l = node.engine.lobby(&lobby).await?.ok_or_else(not_found)?;
            if l.record.members.binary_search(&caller).is_err() {
                return Err(access::non_member_refusal(&l.record, &caller).into());
            }
            let after = match start {
                PageStart::First => 0,
                PageStart::After(n) => n,
                PageStart::Cursor(c) => c
                    .parse()
                    .map_err(|_| ProtocolError::bad_request("invalid `cursor`"))?,
            };
            let msgs = node.engine.messages_after(&lobby, after, limit + 1).await?;
            for m in msgs.iter().take(limit) {
                let level = if m.author == caller {
                    AccessLevel::Private
                } else {
                    AccessLevel::Partial
                };
                datas.push(message_info(
                    m,
                    level,
                    access::message_permissions(m, &caller),
                ));
            }
            (msgs.len() > limit).then(|| msgs[limit - 1].seq.to_string())
        }
    };
    Ok(json!({ "type": kind.as_str(), "datas": datas, "cursor": cursor }))
}

/// Refusal for acting on a user that is not the caller: not_found when
/// the caller cannot see it, forbidden when it can.
async fn refuse_user(
    node: &Node,
    s: &Session,
    id: &UserId,
    presented: Option<&str>,
) -> ProtocolError {
    let target = match node.engine.user(id).await {
        Ok(Some(u)) => u,
        Ok(None) => return not_found(),
        Err(e) => return e.into(),
    };
    let mine = match caller_lobbies(node, s).await {
        Ok(l) => l,
        Err(e) => return e,
    };
    match user_view(s, &target, &mine, presented) {
        Some(_) => DomainError::Forbidden.into(),
        None => not_found(),
    }
}

/// Refusal for a forbidden message action: not_found unless visible.
async fn refuse_message(
    node: &Node,
    s: &Session,
    lobby: &LobbyId,
    id: &MessageId,
) -> ProtocolError {
    match message_view(node, s, lobby, id).await {
        Ok(Some(_)) => DomainError::Forbidden.into(),
        Ok(None) => not_found(),
        Err(e) => e,
    }
}

fn update_reply(kind: ObjectType, id: &str, fields: &Map<String, Value>, updated_at: i64) -> Value {
    json!({ "type": kind.as_str(), "id": id, "data": fields, "updatedAt": updated_at })
}

pub(super) async fn update(
    node: &Node,
    s: &mut Session,
    target: Target,
    presented: Option<String>,
    fields: Map<String, Value>,
) -> Result<Value, ProtocolError> {
    let t = presented.as_deref();
    match &target {
        Target::User(id) => {
            if id != s.user() {
                return Err(refuse_user(node, s, id, t).await);
            }
            let rec = node
                .engine
                .change_user(
                    super::actor(s, t),
                    UserChange::Update(fields.clone()),
                    now_ms(),
                )
                .await?;
            Ok(update_reply(
                ObjectType::Users,
                id.as_str(),
                &fields,
                rec.updated_at,
            ))
        }
        Target::Lobby(id) => {
            let change = LobbyChange::Update {
                fields: fields.clone(),
                needs: Permission::Update,
            };
            let rec = node
                .engine
                .change_lobby(super::actor(s, t), id, change, now_ms())
                .await?;
            Ok(update_reply(
                ObjectType::Lobbys,
                id.as_str(),
                &fields,
                rec.updated_at,
            ))
        }
        Target::Message(lobby, id) => {
            let content = fields
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let rec = node
                .engine
                .change_message(super::actor(s, t), lobby, id, &content, now_ms())
                .await?;
            Ok(update_reply(
                ObjectType::Messages,
                id.as_str(),
                &fields,
                rec.updated_at,
            ))
        }
    }
}

fn single(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

pub(super) async fn action(
    node: &Node,
    s: &mut Session,
    target: Target,
    presented: Option<String>,
    action: Action,
) -> Result<Value, ProtocolError> {
    let t = presented.as_deref();
    let name = action.name();
    let (kind, id, data) = match &target {
        Target::Lobby(id) => {
            let change = match action {
                Action::SetOwner(u) => LobbyChange::SetOwner(u),
                Action::SetToken(tok) => LobbyChange::SetToken(tok.unwrap_or_else(token::generate)),
                Action::SetVisibility(b) => LobbyChange::Update {
                    fields: single("visibility", json!(b)),
                    needs: Permission::SetVisibility,
                },
                Action::AddUser(u) => LobbyChange::AddUsers(vec![u]),
                Action::AddUsers(us) => LobbyChange::AddUsers(us),
                Action::DeleteUser(u) => LobbyChange::DeleteUsers(vec![u]),
                Action::DeleteUsers(us) => LobbyChange::DeleteUsers(us),
                Action::Update(fields) => LobbyChange::Update {
                    fields,
                    needs: Permission::Update,
                },
            };
            let new_token = match &change {
                LobbyChange::SetToken(tok) => Some(tok.clone()),
                _ => None,
            };
            node.engine
                .change_lobby(super::actor(s, t), id, change, now_ms())
                .await?;
            // A new token opens the lobby to the caller that set it.
            let view_token = new_token.as_deref().or(t);
            // The change is made; a caller that gave its access away
            // (setOwner) sees `data: null`.
            let info = lobby_view(node, s, id, view_token)
                .await?
                .unwrap_or(Value::Null);
            (ObjectType::Lobbys, id.as_str(), info)
        }
        Target::User(id) => {
            if id != s.user() {
                return Err(refuse_user(node, s, id, t).await);
            }
            let change = match action {
                Action::SetToken(tok) => {
                    let tok = tok.unwrap_or_else(token::generate);
                    let hash = token::hash(&tok);
                    if node
                        .engine
                        .user_by_token(&hash)
                        .await?
                        .is_some_and(|u| &u != id)
                    {
                        return Err(ProtocolError::bad_request("that token is taken"));
                    }
                    s.login.token = Some(tok);
                    UserChange::SetTokenHash(hash)
                }
                Action::SetVisibility(b) => UserChange::Update(single("visibility", json!(b))),
                Action::Update(fields) => UserChange::Update(fields),
                _ => return Err(DomainError::Forbidden.into()),
            };
            node.engine
                .change_user(super::actor(s, t), change, now_ms())
                .await?;
            let snap = node.engine.user(id).await?.ok_or_else(not_found)?;
            let mine = snap.lobbies.clone();
            let info = user_view(s, &snap, &mine, t).ok_or_else(not_found)?;
            (ObjectType::Users, id.as_str(), info)
        }
        Target::Message(lobby, id) => {
            let Action::Update(fields) = action else {
                return Err(refuse_message(node, s, lobby, id).await);
            };
            let content = fields
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            node.engine
                .change_message(super::actor(s, t), lobby, id, content, now_ms())
                .await?;
            let info = message_view(node, s, lobby, id)
                .await?
                .ok_or_else(not_found)?;
            (ObjectType::Messages, id.as_str(), info)
        }
    };
    Ok(json!({ "type": kind.as_str(), "id": id, "action": name, "data": data }))
}
