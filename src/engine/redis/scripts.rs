//! The Lua scripts: every mutation and the publish of its event run as one
//! script, so they are atomic. Each script is `lua/prelude.lua` (keys, JSON,
//! access rules) followed by its own body; it is loaded once with
//! `SCRIPT LOAD` and run with `EVALSHA`, falling back to `EVAL` when the
//! server has forgotten it (restart, `SCRIPT FLUSH`).
//!
//! Mutating scripts answer `{'ok', ...}` or `{<refusal code>}`; see
//! [`expect_ok`].

use super::store::Store;
use crate::domain::DomainError;
use crate::engine::{EngineError, EngineResult};
use deadpool_redis::redis::{self, Value};

/// One script: its full source and the SHA1 the server gave it.
pub struct Script {
    pub name: &'static str,
    source: String,
    sha: std::sync::OnceLock<String>,
}

macro_rules! scripts {
    ($($field:ident),* $(,)?) => {
        /// Every script the engine runs.
        pub struct Scripts {
            $(pub $field: Script,)*
        }

        impl Scripts {
            pub fn new() -> Self {
                Self {
                    $($field: Script {
                        name: stringify!($field),
                        source: concat!(
                            include_str!("lua/prelude.lua"),
                            include_str!(concat!("lua/", stringify!($field), ".lua"))
                        )
                        .to_owned(),
                        sha: std::sync::OnceLock::new(),
                    },)*
                }
            }

            fn all(&self) -> Vec<&Script> {
                vec![$(&self.$field),*]
            }
        }
    };
}

scripts!(
    create_user,
    change_user,
    connect_lobby,
    leave_lobby,
    change_lobby,
    append_message,
    record_receipt,
    typing,
    change_message,
    connection_up,
    connection_down,
    reap_node,
    expire_grace,
    heartbeat,
    sync_node,
    read_lobby,
    read_messages,
    visible,
    lobby_by_token,
);

impl Scripts {
    /// Loads every script (a syntax error surfaces here, at start).
    pub async fn load(&self, store: &Store) -> EngineResult<()> {
        for s in self.all() {
            let sha: String = store
                .query(redis::cmd("SCRIPT").arg("LOAD").arg(&s.source))
                .await
                .map_err(|e| match e {
                    EngineError::Internal(m) => {
                        EngineError::Internal(format!("script {}: {m}", s.name))
                    }
                    other => other,
                })?;
            let _ = s.sha.set(sha);
        }
        Ok(())
    }
}

impl Script {
    /// `EVALSHA` with no keys (scripts build their key names from the
    /// arguments), falling back to `EVAL` on `NOSCRIPT`.
    pub async fn run<C>(&self, conn: &mut C, args: &[String]) -> redis::RedisResult<Value>
    where
        C: redis::aio::ConnectionLike + Send,
    {
        if let Some(sha) = self.sha.get() {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha).arg(0).arg(args);
            match cmd.query_async::<Value>(conn).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {}
                other => return other,
            }
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(&self.source).arg(0).arg(args);
        cmd.query_async::<Value>(conn).await
    }
}

/// Splits a mutating script's answer: the values after `'ok'`, or the
/// refusal it reported.
pub fn expect_ok(script: &Script, v: Value) -> EngineResult<Vec<Value>> {
    let Value::Array(mut items) = v else {
        return Err(EngineError::Internal(format!(
            "script {}: unexpected answer {v:?}",
            script.name
        )));
    };
    if items.is_empty() {
        return Err(EngineError::Internal(format!(
            "script {}: empty answer",
            script.name
        )));
    }
    let status = super::decode::string(items.remove(0))?;
    match status.as_str() {
        "ok" => Ok(items),
        "not_found" => Err(DomainError::NotFound.into()),
        "forbidden" => Err(DomainError::Forbidden.into()),
        "lobby_full" => Err(DomainError::LobbyFull.into()),
        other => Err(EngineError::Internal(format!(
            "script {}: {other}",
            script.name
        ))),
    }
}

/// Encodes an optional argument as the scripts expect: `''` for none,
/// `'=' .. value` for some.
pub fn opt(v: Option<&str>) -> String {
    v.map_or_else(String::new, |s| format!("={s}"))
}

/// Encodes a boolean argument.
pub fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_arguments_distinguish_none_from_empty() {
        assert_eq!(opt(None), "");
        assert_eq!(opt(Some("")), "=");
        assert_eq!(opt(Some("x")), "=x");
        assert_eq!(flag(true), "1");
    }

    #[test]
    fn every_script_starts_with_the_prelude() {
        let s = Scripts::new();
        for script in s.all() {
            assert!(
                script
                    .source
                    .starts_with("-- Shared by every lobbyd script"),
                "{}",
                script.name
            );
        }
    }

    #[test]
    fn refusals_map_to_domain_errors() {
        let s = Scripts::new();
        let v = Value::Array(vec![Value::BulkString(b"forbidden".to_vec())]);
        assert!(matches!(
            expect_ok(&s.typing, v),
            Err(EngineError::Refused(DomainError::Forbidden))
        ));
        let v = Value::Array(vec![Value::BulkString(b"ok".to_vec()), Value::Int(1)]);
        assert_eq!(expect_ok(&s.typing, v).unwrap(), vec![Value::Int(1)]);
    }
}
