//! Turning Redis answers (hashes, sets, script results) into domain
//! records. Hash field names are the ones `lua/*.lua` writes.

use crate::domain::{LobbyId, LobbyRecord, MessageRecord, UserId, UserRecord};
use crate::engine::{EngineError, EngineResult};
use deadpool_redis::redis::Value;
use std::collections::HashMap;

fn bad(what: &str, v: &Value) -> EngineError {
    EngineError::Internal(format!("redis answer: expected {what}, got {v:?}"))
}

/// A string reply.
pub fn string(v: Value) -> EngineResult<String> {
    match v {
        Value::BulkString(b) => {
            String::from_utf8(b).map_err(|e| EngineError::Internal(format!("non-UTF-8 value: {e}")))
        }
        Value::SimpleString(s) => Ok(s),
        Value::Okay => Ok("OK".into()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(bad("a string", &other)),
    }
}

/// A string reply or nil.
pub fn opt_string(v: Value) -> EngineResult<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        v => string(v).map(Some),
    }
}

/// An integer reply (also from a decimal string).
pub fn int(v: Value) -> EngineResult<i64> {
    match v {
        Value::Int(i) => Ok(i),
        Value::Boolean(b) => Ok(b as i64),
        v => {
            let s = string(v)?;
            s.parse()
                .map_err(|_| EngineError::Internal(format!("not an integer: {s}")))
        }
    }
}

/// An array reply (`Set` too); nil is empty.
pub fn array(v: Value) -> EngineResult<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(bad("an array", &other)),
    }
}

/// An array of strings.
pub fn strings(v: Value) -> EngineResult<Vec<String>> {
    array(v)?.into_iter().map(string).collect()
}

/// A hash as `HGETALL` returns it (flat array in RESP2, map in RESP3).
pub fn hash(v: Value) -> EngineResult<HashMap<String, String>> {
    match v {
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((string(k)?, string(v)?)))
            .collect(),
        v => {
            let flat = array(v)?;
            if flat.len() % 2 != 0 {
                return Err(EngineError::Internal("odd hash reply".into()));
            }
            let mut out = HashMap::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.insert(string(k)?, string(v)?);
            }
            Ok(out)
        }
    }
}

fn field<'a>(h: &'a HashMap<String, String>, name: &str) -> EngineResult<&'a str> {
    h.get(name)
        .map(String::as_str)
        .ok_or_else(|| EngineError::Internal(format!("stored record lacks {name}")))
}

fn ts(h: &HashMap<String, String>, name: &str) -> EngineResult<i64> {
    let s = field(h, name)?;
    s.parse()
        .map_err(|_| EngineError::Internal(format!("bad {name}: {s}")))
}

/// A user record from its hash; `None` when the hash is empty (no user).
pub fn user_record(id: &UserId, h: HashMap<String, String>) -> EngineResult<Option<UserRecord>> {
    if h.is_empty() {
        return Ok(None);
    }
    Ok(Some(UserRecord {
        id: id.clone(),
        username: h.get("username").cloned(),
        visibility: field(&h, "visibility")? == "1",
        token_hash: field(&h, "token_hash")?.to_owned(),
        created_at: ts(&h, "created_at")?,
        updated_at: ts(&h, "updated_at")?,
    }))
}

/// A lobby record from its hash and member ids (sorted here).
pub fn lobby_record(
    id: &LobbyId,
    h: HashMap<String, String>,
    members: Vec<String>,
) -> EngineResult<LobbyRecord> {
    let size_limit = match h.get("size_limit") {
        Some(s) => Some(
            s.parse()
                .map_err(|_| EngineError::Internal(format!("bad size_limit: {s}")))?,
        ),
        None => None,
    };
    let mut members: Vec<UserId> = members.into_iter().map(UserId).collect();
    members.sort();
    Ok(LobbyRecord {
        id: id.clone(),
        owner: UserId(field(&h, "owner")?.to_owned()),
        token: field(&h, "token")?.to_owned(),
        visibility: field(&h, "visibility")? == "1",
        size_limit,
        description: h.get("description").cloned(),
        created_at: ts(&h, "created_at")?,
        updated_at: ts(&h, "updated_at")?,
        members,
    })
}

/// A message from its stored JSON and receipt lists.
pub fn message_record(
    json: &str,
    received: Vec<String>,
    viewed: Vec<String>,
) -> EngineResult<MessageRecord> {
    let mut m: MessageRecord = serde_json::from_str(json)
        .map_err(|e| EngineError::Internal(format!("stored message: {e}")))?;
    m.received = received.into_iter().map(UserId).collect();
    m.viewed = viewed.into_iter().map(UserId).collect();
    Ok(m)
}

/// A message from a `{json, received, viewed}` triple; `None` if the json is nil.
pub fn message_triple(v: Value) -> EngineResult<Option<MessageRecord>> {
    let mut it = array(v)?.into_iter();
    let (Some(json), Some(r), Some(w)) = (it.next(), it.next(), it.next()) else {
        return Err(EngineError::Internal("short message reply".into()));
    };
    match opt_string(json)? {
        None => Ok(None),
        Some(j) => message_record(&j, strings(r)?, strings(w)?).map(Some),
    }
}

/// The next value of a script's answer.
pub fn next(it: &mut impl Iterator<Item = Value>) -> EngineResult<Value> {
    it.next()
        .ok_or_else(|| EngineError::Internal("short script answer".into()))
}

/// A lobby record from a script's `{..., HGETALL, SMEMBERS}` tail.
pub fn lobby_from(id: &LobbyId, it: &mut impl Iterator<Item = Value>) -> EngineResult<LobbyRecord> {
    let h = hash(next(it)?)?;
    let members = strings(next(it)?)?;
    lobby_record(id, h, members)
}

/// A user record from a script's `HGETALL` answer.
pub fn user_from(id: &UserId, v: Value) -> EngineResult<UserRecord> {
    user_record(id, hash(v)?)?.ok_or_else(|| EngineError::Internal("user vanished".into()))
}

/// Sorted, deduplicated, after the cursor, at most `limit`: the paging
/// rule of the memory engine (bytewise order, as Rust compares strings).
pub fn page(mut ids: Vec<String>, after: Option<&str>, limit: usize) -> Vec<String> {
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter(|i| after.is_none_or(|a| i.as_str() > a))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn decodes_flat_hashes_into_records() {
        let flat = Value::Array(
            [
                "owner",
                "u1",
                "token",
                "t",
                "visibility",
                "1",
                "size_limit",
                "3",
                "created_at",
                "5",
                "updated_at",
                "6",
            ]
            .into_iter()
            .map(bulk)
            .collect(),
        );
        let rec = lobby_record(
            &LobbyId::from("l"),
            hash(flat).unwrap(),
            vec!["b".into(), "a".into()],
        )
        .unwrap();
        assert_eq!(rec.owner, UserId::from("u1"));
        assert!(rec.visibility);
        assert_eq!(rec.size_limit, Some(3));
        assert_eq!(rec.description, None);
        assert_eq!(rec.members, vec![UserId::from("a"), UserId::from("b")]);
        assert_eq!((rec.created_at, rec.updated_at), (5, 6));
    }

    #[test]
    fn empty_user_hash_is_no_user() {
        assert!(user_record(&UserId::from("u"), HashMap::new())
            .unwrap()
            .is_none());
    }

    #[test]
    fn decodes_the_stored_message_json() {
        let json = r#"{"id":"m","lobby":"l","author":"u","author_username":null,"content":"hi\/x","replied":null,"seq":3,"created_at":1764000000000,"updated_at":1764000000001}"#;
        let m = message_record(json, vec!["a".into()], vec![]).unwrap();
        assert_eq!(m.seq, 3);
        assert_eq!(m.content, "hi/x");
        assert_eq!(m.created_at, 1_764_000_000_000);
        assert_eq!(m.received, vec![UserId::from("a")]);
        assert!(m.viewed.is_empty() && m.replied.is_none());
    }

    #[test]
    fn pages_bytewise() {
        let ids = vec!["b".into(), "a".into(), "B".into(), "a".into(), "c".into()];
        assert_eq!(page(ids.clone(), None, 10), vec!["B", "a", "b", "c"]);
        assert_eq!(page(ids, Some("a"), 1), vec!["b"]);
    }
}
