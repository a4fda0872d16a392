//! `login` and `logout`.

use super::super::session::Session;
use super::super::Node;
use crate::domain::access::{self, AccessLevel};
use crate::domain::{now_ms, token, PresenceKind, UserId};
use crate::engine::UserChange;
use crate::protocol::{ErrorCode, ProtocolError};
use serde_json::{json, Map, Value};

pub(super) async fn login(
    node: &Node,
    s: &mut Session,
    presented: Option<String>,
    username: Option<String>,
) -> Result<Value, ProtocolError> {
    let (user, known_token) = match &presented {
        None if s.login.user.is_some() => {
            return Err(ProtocolError::new(
                ErrorCode::Conflict,
                "already logged in; log out first",
            ));
        }
        None => {
            let id = UserId::generate();
            let t = token::generate();
            node.engine
                .create_user(&id, username.as_deref(), &token::hash(&t), now_ms())
                .await?;
            (id, t)
        }
        Some(t) => {
            let Some(id) = node.engine.user_by_token(&token::hash(t)).await? else {
                return Err(ProtocolError::new(
                    ErrorCode::Unauthenticated,
                    "unknown token",
                ));
            };
            if s.login.user.as_ref().is_some_and(|u| u != &id) {
                return Err(ProtocolError::new(
                    ErrorCode::Conflict,
                    "logged in as another user",
                ));
            }
            (id, t.clone())
        }
    };
    let first_here = s.login.user.is_none();
    if first_here {
        node.hub.attach(&user, s.id, s.outbox.clone());
        s.login.user = Some(user.clone());
    }
    s.login.token = Some(known_token.clone());
    let result = finish_login(node, s, &user, presented.is_some(), username, first_here).await;
    if result.is_err() && first_here {
        s.login.user = None;
        let delta = node.hub.detach(&user, s.id);
        node.apply(delta).await;
    }
    result
}

async fn finish_login(
    node: &Node,
    s: &mut Session,
    user: &UserId,
    existing: bool,
    username: Option<String>,
    first_here: bool,
) -> Result<Value, ProtocolError> {
    let mut snap = node
        .engine
        .user(user)
        .await?
        .ok_or_else(|| ProtocolError::new(ErrorCode::Unauthenticated, "unknown user"))?;
    if existing {
        if let Some(name) = username.filter(|n| snap.record.username.as_deref() != Some(n.as_str()))
        {
            let mut fields = Map::new();
            fields.insert("username".into(), json!(name));
            snap.record = node
                .engine
                .change_user(super::actor(s, None), UserChange::Update(fields), now_ms())
                .await?;
        }
    }
    if first_here {
        let delta = node.hub.add_memberships(user, &snap.lobbies);
        node.apply(delta).await;
        node.engine.connection_up(user, &s.origin).await?;
    }
    snap.online = true;
    let perms = access::user_permissions(&snap.record, user);
    let info = crate::domain::view::user_info(
        &snap,
        AccessLevel::Private,
        perms,
        &[],
        s.login.token.as_deref(),
    );
    Ok(json!({ "user": info }))
}

pub(super) async fn logout(
    node: &Node,
    s: &mut Session,
    everywhere: bool,
) -> Result<Value, ProtocolError> {
    let user = s.user().clone();
    if everywhere {
        node.engine.kick(&user, &s.origin).await?;
    }
    s.login = Default::default();
    node.end_login(&user, s.id, PresenceKind::Logout).await;
    Ok(json!({ "user": { "id": user } }))
}
