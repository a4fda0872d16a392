//! Token leak detection: every token a test sees is remembered, and any
//! broadcast that carries one fails the test.

use super::*;

/// Every token the suite has seen (in a reply or a request) and every string
/// that appeared in any broadcast; the two sets must never meet.
struct Secrets {
    tokens: HashSet<String>,
    broadcast_strings: HashSet<String>,
}

static SECRETS: Mutex<Option<Secrets>> = Mutex::new(None);

fn with_secrets<R>(f: impl FnOnce(&mut Secrets) -> R) -> R {
    let mut guard = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let s = guard.get_or_insert_with(|| Secrets {
        tokens: HashSet::new(),
        broadcast_strings: HashSet::new(),
    });
    f(s)
}

/// Remember a token; panics if it has already appeared in a broadcast.
pub fn register_token(token: &str) {
    if token.len() < 8 {
        return; // too short to be a meaningful secret (used only for bad_request probes)
    }
    let leaked = with_secrets(|s| {
        s.tokens.insert(token.to_string());
        s.broadcast_strings.contains(token)
    });
    assert!(!leaked, "token {token:?} appeared in a broadcast");
}

pub(super) fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Register every string under a "token" key (and setToken arguments).
pub(super) fn register_tokens_in(v: &Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "token" {
                    if let Some(t) = x.as_str() {
                        register_token(t);
                    }
                }
                register_tokens_in(x);
            }
        }
        Value::Array(a) => a.iter().for_each(register_tokens_in),
        _ => {}
    }
}

pub(super) fn has_token_key(v: &Value) -> bool {
    match v {
        Value::Object(o) => o
            .iter()
            .any(|(k, x)| (k == "token" && !x.is_null()) || has_token_key(x)),
        Value::Array(a) => a.iter().any(has_token_key),
        _ => false,
    }
}

/// Every broadcast passes through here: no token key, no known token value.
pub(super) fn check_broadcast(frame: &Value) {
    assert!(
        !has_token_key(frame),
        "broadcast carries a token field: {frame}"
    );
    let mut strings = Vec::new();
    collect_strings(frame, &mut strings);
    let leaked = with_secrets(|s| {
        let leaked: Vec<String> = strings
            .iter()
            .filter(|x| s.tokens.contains(*x))
            .cloned()
            .collect();
        s.broadcast_strings.extend(strings);
        leaked
    });
    assert!(
        leaked.is_empty(),
        "broadcast leaks token(s) {leaked:?}: {frame}"
    );
}
