//! Encoding of change requests as script arguments: the operation-specific
//! tail of `change_user` / `change_lobby` (see the headers of
//! `lua/change_user.lua` and `lua/change_lobby.lua`). Field values are
//! validated here, before anything runs, so a bad field changes nothing.

use super::scripts::flag;
use crate::domain::{token, DomainError, Permission};
use crate::engine::{EngineError, EngineResult, LobbyChange, UserChange};
use serde_json::{Map, Value as Json};

fn bad_request<T>(msg: String) -> EngineResult<T> {
    Err(DomainError::BadRequest(msg).into())
}

fn invalid<T>(k: &str) -> EngineResult<T> {
    bad_request(format!("`{k}` has an invalid value"))
}

/// An optional-string update: `'-'` clears (null), `'=x'` sets. (`''`,
/// the field's absence, keeps.)
fn text_op(k: &str, v: &Json) -> EngineResult<String> {
    match v {
        Json::Null => Ok("-".into()),
        Json::String(s) => Ok(format!("={s}")),
        _ => invalid(k),
    }
}

fn bool_op(k: &str, v: &Json) -> EngineResult<String> {
    match v {
        Json::Bool(b) => Ok(flag(*b)),
        _ => invalid(k),
    }
}

fn count_op(k: &str, v: &Json) -> EngineResult<String> {
    match v {
        Json::Null => Ok("-".into()),
        v => match v.as_u64() {
            Some(n) => Ok(format!("={n}")),
            None => invalid(k),
        },
    }
}

/// The fields as the event carries them, spliced into it by the script.
fn fields_json(fields: &Map<String, Json>) -> EngineResult<String> {
    serde_json::to_string(fields).map_err(|e| EngineError::Internal(e.to_string()))
}

/// `op, ...` for `change_user`.
pub fn user_change(change: &UserChange) -> EngineResult<Vec<String>> {
    match change {
        UserChange::SetTokenHash(hash) => Ok(vec!["token".into(), hash.clone()]),
        UserChange::Update(fields) => {
            let (mut name, mut vis) = (String::new(), String::new());
            for (k, v) in fields {
                match k.as_str() {
                    "username" => name = text_op(k, v)?,
                    "visibility" => vis = bool_op(k, v)?,
                    _ => return bad_request(format!("unknown field {k}")),
                }
            }
            Ok(vec!["update".into(), fields_json(fields)?, name, vis])
        }
    }
}

/// `needed permission, op, ...` for `change_lobby`.
pub fn lobby_change(change: LobbyChange) -> EngineResult<Vec<String>> {
    let need = match &change {
        LobbyChange::SetOwner(_) => Permission::SetOwner,
        LobbyChange::SetToken(_) => Permission::SetToken,
        LobbyChange::AddUsers(_) => Permission::AddUsers,
        LobbyChange::DeleteUsers(_) => Permission::DeleteUsers,
        LobbyChange::Update { needs, .. } => *needs,
    };
    let mut args = vec![need.as_str().to_owned()];
    match change {
        LobbyChange::SetOwner(target) => args.extend(["owner".into(), target.0]),
        LobbyChange::SetToken(t) => {
            let hash = token::hash(&t);
            args.extend(["token".into(), t, hash]);
        }
        LobbyChange::AddUsers(targets) => {
            args.push("add".into());
            args.extend(targets.into_iter().map(|t| t.0));
        }
        LobbyChange::DeleteUsers(targets) => {
            args.push("del".into());
            args.extend(targets.into_iter().map(|t| t.0));
        }
        LobbyChange::Update { fields, .. } => {
            let (mut desc, mut limit, mut vis) = (String::new(), String::new(), String::new());
            for (k, v) in &fields {
                match k.as_str() {
                    "description" => desc = text_op(k, v)?,
                    "sizeLimit" => limit = count_op(k, v)?,
                    "visibility" => vis = bool_op(k, v)?,
                    _ => return bad_request(format!("unknown field {k}")),
                }
            }
            args.extend(["update".into(), fields_json(&fields)?, desc, limit, vis]);
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn lobby_updates_encode_each_field() {
        let fields = map(json!({"description": null, "sizeLimit": 3, "visibility": true}));
        let args = lobby_change(LobbyChange::Update {
            fields,
            needs: Permission::Update,
        })
        .unwrap();
        assert_eq!(args[..2], ["update", "update"]);
        assert_eq!(args[3..], ["-", "=3", "1"]);
        let fields = map(json!({"description": "d"}));
        let args = lobby_change(LobbyChange::Update {
            fields,
            needs: Permission::SetVisibility,
        })
        .unwrap();
        assert_eq!(args[0], "setVisibility");
        assert_eq!(args[3..], ["=d", "", ""]);
    }

    #[test]
    fn bad_fields_are_refused_before_running() {
        let fields = map(json!({"owner": "x"}));
        let r = lobby_change(LobbyChange::Update {
            fields,
            needs: Permission::Update,
        });
        assert!(matches!(
            r,
            Err(EngineError::Refused(DomainError::BadRequest(_)))
        ));
        let r = user_change(&UserChange::Update(map(json!({"visibility": "yes"}))));
        assert!(matches!(
            r,
            Err(EngineError::Refused(DomainError::BadRequest(_)))
        ));
        let r = lobby_change(LobbyChange::Update {
            fields: map(json!({"sizeLimit": -1})),
            needs: Permission::Update,
        });
        assert!(r.is_err());
    }

    #[test]
    fn set_token_passes_the_token_and_its_hash() {
        let args = lobby_change(LobbyChange::SetToken("t".into())).unwrap();
        assert_eq!(
            args,
            vec![
                "setToken".to_owned(),
                "token".into(),
                "t".into(),
                token::hash("t")
            ]
        );
    }
}
