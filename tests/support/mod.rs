//! Black-box test harness: real `redis-server` and `lobbyd` processes on free
//! ports, killed on Drop, readiness polled with deadlines; a WebSocket client
//! that speaks the `{event, data, ack}` framing of PROTOCOL.md.
//!
//! Every integration test file pulls this in with `mod support;`. Not every
//! file uses every item, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

/// How long a reply or an expected broadcast may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long `expect_no_event` listens by default.
pub const QUIET: Duration = Duration::from_millis(300);
/// How long a process may take to become ready.
const STARTUP: Duration = Duration::from_secs(20);

mod client;
mod cluster;
mod gateway;
mod redis;
mod secrets;

// Not every test file uses every part.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use cluster::*;
#[allow(unused_imports)]
pub use gateway::*;
#[allow(unused_imports)]
pub use redis::*;
#[allow(unused_imports)]
pub use secrets::*;

// ---------------------------------------------------------------------------
// Ports and process plumbing
// ---------------------------------------------------------------------------

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that was free a moment ago and that this process has not handed
/// out before (so two tests of one binary never race for the same port).
pub fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        if port == 6379 {
            continue;
        }
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lobbyd-test-logs");
    std::fs::create_dir_all(&dir).expect("create log dir");
    dir
}

fn log_tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ---------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------

pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// A generated token: at least 32 hex digits.
pub fn is_generated_token(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The ids of an array of `{id}` objects, in order.
#[track_caller]
pub fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array of {{id}}, got {v}"))
        .iter()
        .map(|x| {
            x["id"]
                .as_str()
                .unwrap_or_else(|| panic!("element without id in {v}"))
                .to_string()
        })
        .collect()
}

/// The ids of an array of `{id}` objects, sorted.
#[track_caller]
pub fn id_set(v: &Value) -> Vec<String> {
    let mut out = ids(v);
    out.sort();
    out
}

pub fn sorted(xs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = xs.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Assert an info object's `permissions` as a set.
#[track_caller]
pub fn assert_perms(info: &Value, expected: &[&str]) {
    let mut got: Vec<String> = info["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("info without permissions array: {info}"))
        .iter()
        .map(|p| p.as_str().expect("permission is a string").to_string())
        .collect();
    got.sort();
    assert_eq!(got, sorted(expected), "permissions of {info}");
}

/// A field that "may be left out when null": absent or null.
pub fn absent_or_null(v: &Value, key: &str) -> bool {
    v.get(key).is_none_or(|x| x.is_null())
}

pub const USER_SELF_PERMS: &[&str] = &["setToken", "setVisibility", "update"];
pub const LOBBY_OWNER_PERMS: &[&str] = &[
    "setOwner",
    "setToken",
    "setVisibility",
    "addUser",
    "addUsers",
    "deleteUser",
    "deleteUsers",
    "update",
];
pub const LOBBY_TOKEN_PERMS: &[&str] = &[
    "setVisibility",
    "addUser",
    "addUsers",
    "deleteUser",
    "deleteUsers",
    "update",
];
pub const LOBBY_MEMBER_PERMS: &[&str] = &["addUser", "addUsers"];
