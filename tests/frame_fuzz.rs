//! Property-based fuzzing of the frame decoder and the request parser.
//!
//! Every input, however hostile, must parse or fail with `bad_request`
//! (or `payload_too_large` for over-long content); nothing may panic, and
//! every request that parses must satisfy the limits the protocol states.
//!
//! The default run tries a few thousand inputs per property. The long mode
//! is for a run by hand, outside CI:
//!
//! ```sh
//! LOBBYD_FUZZ_CASES=1000000 cargo test --release --test frame_fuzz -- --nocapture
//! ```
//!
//! Each property then tries that many inputs; the total is printed.

use lobbyd::protocol::frame::{IncomingFrame, MAX_ACK};
use lobbyd::protocol::request::{
    Action, Limits, PageStart, MAX_DESCRIPTION_BYTES, MAX_ID_BYTES, MAX_PAGE, MAX_USERNAME_CHARS,
};
use lobbyd::protocol::{ErrorCode, ObjectType, Request, Target};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Number, Value};
use std::cell::Cell;
use std::time::Instant;

const LIMITS: Limits = Limits {
    max_content_bytes: 16384,
};

/// Cases per property: `LOBBYD_FUZZ_CASES` or the default.
fn cases(default: u32) -> u32 {
    std::env::var("LOBBYD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

thread_local! {
    /// Parser calls on this thread (each property runs on its own thread).
    static CHECKED: Cell<u64> = const { Cell::new(0) };
    /// Of those, requests that parsed successfully.
    static PARSED: Cell<u64> = const { Cell::new(0) };
}

fn bump(c: &'static std::thread::LocalKey<Cell<u64>>) {
    c.with(|n| n.set(n.get() + 1));
}

const EVENTS: &[&str] = &[
    "login",
    "logout",
    "connect_lobby",
    "disconnect_lobby",
    "send_message",
    "received_message",
    "viewed_message",
    "typing_message",
    "get_data",
    "get_all_data",
    "update_data",
    "use_action",
    "roll_dice",
    "",
    "error",
    "__proto__",
];

const KEYS: &[&str] = &[
    "event",
    "data",
    "ack",
    "lobby",
    "id",
    "token",
    "username",
    "everywhere",
    "visibility",
    "sizeLimit",
    "description",
    "content",
    "replied",
    "message",
    "type",
    "limit",
    "cursor",
    "after",
    "action",
    "actionArgs",
    "owner",
    "users",
    "seq",
];

const WORDS: &[&str] = &[
    "users",
    "lobbys",
    "messages",
    "setOwner",
    "setToken",
    "setVisibility",
    "addUser",
    "addUsers",
    "deleteUser",
    "deleteUsers",
    "update",
    "room-1",
    "u1",
    "",
    "null",
    "true",
    "\u{0}",
    "\u{FEFF}",
    "é",
    "🦀",
    "\\",
    "\"",
];

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Strings: protocol words, short random text, and runs whose byte or
/// character length sits on either side of a limit.
fn string() -> impl Strategy<Value = String> {
    let near_limits = (
        select(vec![
            0usize, 1, 127, 128, 129, 255, 256, 257, 4095, 4096, 4097, 16383, 16384, 16385,
        ]),
        select(vec!['a', 'é', '🦀', '\u{0}']),
    )
        .prop_map(|(n, c)| {
            // `n` bytes when the character fits, else as many as fit.
            let per = c.len_utf8();
            std::iter::repeat_n(c, n.div_ceil(per).max(usize::from(n > 0))).collect()
        });
    prop_oneof![
        4 => select(EVENTS).prop_map(str::to_owned),
        4 => select(WORDS).prop_map(str::to_owned),
        4 => select(KEYS).prop_map(str::to_owned),
        6 => "\\PC{0,12}",
        2 => any::<String>(),
        1 => near_limits,
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(500),
            json!(501),
            json!(MAX_ACK),
            json!(MAX_ACK + 1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.5),
            json!(-0.0),
            json!(1e300),
        ]),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => number(),
        4 => string().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => select(KEYS).prop_map(str::to_owned), 1 => string()]
}

/// Any JSON value, nested up to 6 levels, objects mostly keyed by
/// protocol field names so that parsing gets past the first checks.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), json_value()), 0..7).prop_map(|kv| kv.into_iter().collect())
}

/// A frame-shaped object: `event`, maybe `data`, maybe `ack`, maybe junk.
fn frame_value() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            6 => select(EVENTS).prop_map(|e| json!(e)),
            1 => json_value(),
        ],
        prop::option::of(prop_oneof![
            6 => json_object().prop_map(Value::Object),
            1 => json_value(),
        ]),
        prop::option::of(prop_oneof![3 => (0..1000u64).prop_map(|n| json!(n)), 1 => json_value()]),
        prop::collection::vec((key(), json_value()), 0..2),
    )
        .prop_map(|(event, data, ack, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("event".into(), event);
            if let Some(d) = data {
                m.insert("data".into(), d);
            }
            if let Some(a) = ack {
                m.insert("ack".into(), a);
            }
            Value::Object(m)
        })
}

/// Valid frames of every event, the seeds of the mutation properties.
fn corpus() -> Vec<Value> {
    let l = json!({"id": "room-1"});
    let mut v = vec![
        json!({"event":"login","data":{"username":"ann"},"ack":1}),
        json!({"event":"login","data":{"token":"0123456789abcdef0123456789abcdef"},"ack":2}),
        json!({"event":"logout","data":{"everywhere":true},"ack":3}),
        json!({"event":"connect_lobby","data":{"lobby":{"id":"room-1","visibility":true,"sizeLimit":3,"description":"d","token":"t"}},"ack":4}),
        json!({"event":"connect_lobby","data":{"lobby":{}}}),
        json!({"event":"disconnect_lobby","data":{"lobby":l},"ack":5}),
        json!({"event":"send_message","data":{"lobby":l,"content":"hi","replied":"m1"},"ack":6}),
        json!({"event":"received_message","data":{"lobby":l,"message":{"id":"m1"}},"ack":7}),
        json!({"event":"viewed_message","data":{"lobby":l,"message":{"id":"m1"}}}),
        json!({"event":"typing_message","data":{"lobby":l,"message":{"id":"m1"}},"ack":8}),
        json!({"event":"get_data","data":{"type":"users","id":"u1","token":"t"},"ack":9}),
        json!({"event":"get_data","data":{"type":"messages","id":"m1","lobby":l},"ack":10}),
        json!({"event":"get_all_data","data":{"type":"lobbys","limit":10,"cursor":"x"},"ack":11}),
        json!({"event":"get_all_data","data":{"type":"messages","lobby":l,"after":3},"ack":12}),
        json!({"event":"update_data","data":{"type":"lobbys","id":"room-1","data":{"description":null,"sizeLimit":2,"visibility":false}},"ack":13}),
        json!({"event":"update_data","data":{"type":"users","id":"u1","data":{"username":"bob"}},"ack":14}),
        json!({"event":"update_data","data":{"type":"messages","id":"m1","lobby":l,"data":{"content":"x"}},"ack":15}),
        json!({"event":"roll_dice","data":{"n":1},"ack":16}),
    ];
    for (action, arg) in [
        ("setOwner", json!("u2")),
        ("setToken", json!(null)),
        ("setToken", json!("tok")),
        ("setVisibility", json!(true)),
        ("addUser", json!("u2")),
        ("addUsers", json!(["u2", "u3"])),
        ("deleteUser", json!("u2")),
        ("deleteUsers", json!(["u2"])),
        ("update", json!({"description": "x"})),
    ] {
        v.push(json!({"event":"use_action","data":{"type":"lobbys","id":"room-1","action":action,"actionArgs":[arg]},"ack":20}));
    }
    v
}

#[derive(Debug, Clone)]
enum TextEdit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    let ch = prop_oneof![
        select(vec![
            '{', '}', '[', ']', '"', ':', ',', '\\', '0', '-', 'e', '.', ' ', 'n', '\u{0}', 'é',
            '\u{FFFF}',
        ]),
        any::<char>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(TextEdit::Delete),
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| TextEdit::Insert(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| TextEdit::Replace(i, c)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| TextEdit::Duplicate(i, n)),
        any::<usize>().prop_map(TextEdit::Truncate),
    ]
}

fn apply_text_edits(text: &str, edits: &[TextEdit]) -> String {
    let mut cs: Vec<char> = text.chars().collect();
    for e in edits {
        let n = cs.len();
        match *e {
            TextEdit::Delete(i) if n > 0 => {
                cs.remove(i % n);
            }
            TextEdit::Insert(i, c) => cs.insert(i % (n + 1), c),
            TextEdit::Replace(i, c) if n > 0 => cs[i % n] = c,
            TextEdit::Duplicate(i, len) if n > 0 => {
                let start = i % n;
                let end = (start + len).min(n);
                let piece: Vec<char> = cs[start..end].to_vec();
                cs.splice(end..end, piece);
            }
            TextEdit::Truncate(i) => cs.truncate(i % (n + 1)),
            _ => {}
        }
    }
    cs.into_iter().collect()
}

#[derive(Debug, Clone)]
enum TreeEdit {
    /// Replace the node reached by the path with a value.
    Replace(Vec<usize>, Value),
    /// Remove the key reached by the path (objects only).
    Remove(Vec<usize>),
    /// Add a key to the object reached by the path.
    Add(Vec<usize>, String, Value),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    let path = prop::collection::vec(any::<usize>(), 0..5);
    prop_oneof![
        (path.clone(), json_value()).prop_map(|(p, v)| TreeEdit::Replace(p, v)),
        path.clone().prop_map(TreeEdit::Remove),
        (path, key(), json_value()).prop_map(|(p, k, v)| TreeEdit::Add(p, k, v)),
    ]
}

/// Follows `path` (indices taken modulo the children) as far as it goes.
fn walk<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    let Some((&i, rest)) = path.split_first() else {
        return v;
    };
    let has_children = match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    };
    if !has_children {
        return v;
    }
    match v {
        Value::Array(a) => {
            let n = a.len();
            walk(&mut a[i % n], rest)
        }
        Value::Object(o) => {
            let n = o.len();
            let (_, child) = o.iter_mut().nth(i % n).expect("index in range");
            walk(child, rest)
        }
        _ => unreachable!("checked above"),
    }
}

fn apply_tree_edits(mut v: Value, edits: &[TreeEdit]) -> Value {
    for e in edits {
        match e {
            TreeEdit::Replace(p, x) => *walk(&mut v, p) = x.clone(),
            TreeEdit::Remove(p) => {
                let (last, parent) = p.split_last().map_or((0, &p[..]), |(l, r)| (*l, r));
                if let Value::Object(o) = walk(&mut v, parent) {
                    if !o.is_empty() {
                        let k = o.keys().nth(last % o.len()).cloned().expect("in range");
                        o.remove(&k);
                    }
                }
            }
            TreeEdit::Add(p, k, x) => {
                if let Value::Object(o) = walk(&mut v, p) {
                    o.insert(k.clone(), x.clone());
                }
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

fn id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

fn target_ok(t: &Target) {
    match t {
        Target::User(u) => assert!(id_ok(u.as_str()), "user id {u:?}"),
        Target::Lobby(l) => assert!(id_ok(l.as_str()), "lobby id {l:?}"),
        Target::Message(l, m) => {
            assert!(id_ok(l.as_str()), "lobby id {l:?}");
            assert!(id_ok(m.as_str()), "message id {m:?}");
        }
    }
}

fn fields_ok(target: &Target, fields: &Map<String, Value>) {
    assert!(!fields.is_empty(), "an update without fields parsed");
    for (k, v) in fields {
        let ok = match (target, k.as_str()) {
            (Target::User(_), "username") => v
                .as_str()
                .is_some_and(|s| (1..=MAX_USERNAME_CHARS).contains(&s.chars().count())),
            (Target::User(_) | Target::Lobby(_), "visibility") => v.is_boolean(),
            (Target::Lobby(_), "description") => {
                v.is_null() || v.as_str().is_some_and(|s| s.len() <= MAX_DESCRIPTION_BYTES)
            }
            (Target::Lobby(_), "sizeLimit") => v.is_null() || v.as_u64().is_some_and(|n| n >= 1),
            (Target::Message(..), "content") => v
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.len() <= LIMITS.max_content_bytes),
            _ => false,
        };
        assert!(ok, "update field {k} = {v} parsed for {target:?}");
    }
}

/// What a parsed request must satisfy: every limit PROTOCOL.md and
/// docs/protocol.md state.
fn request_ok(event: &str, req: &Request) {
    let token_ok = |t: &Option<String>| t.as_deref().is_none_or(id_ok);
    match req {
        Request::Login { token, username } => {
            assert_eq!(event, "login");
            assert!(token_ok(token), "login token {token:?}");
            if let Some(u) = username {
                assert!((1..=MAX_USERNAME_CHARS).contains(&u.chars().count()));
            }
        }
        Request::Logout { .. } => assert_eq!(event, "logout"),
        Request::ConnectLobby {
            id,
            token,
            size_limit,
            description,
            ..
        } => {
            assert_eq!(event, "connect_lobby");
            assert!(id.as_ref().is_none_or(|l| id_ok(l.as_str())));
            assert!(token_ok(token));
            assert_ne!(*size_limit, Some(0));
            assert!(description
                .as_ref()
                .is_none_or(|d| d.len() <= MAX_DESCRIPTION_BYTES));
        }
        Request::DisconnectLobby { lobby } => {
            assert_eq!(event, "disconnect_lobby");
            assert!(id_ok(lobby.as_str()));
        }
        Request::SendMessage {
            lobby,
            content,
            replied,
        } => {
            assert_eq!(event, "send_message");
            assert!(id_ok(lobby.as_str()));
            assert!(!content.is_empty() && content.len() <= LIMITS.max_content_bytes);
            assert!(replied.as_ref().is_none_or(|m| id_ok(m.as_str())));
        }
        Request::Receipt { lobby, message, .. } => {
            assert!(event == "received_message" || event == "viewed_message");
            assert!(id_ok(lobby.as_str()) && id_ok(message.as_str()));
        }
        Request::Typing { lobby, message } => {
            assert_eq!(event, "typing_message");
            assert!(id_ok(lobby.as_str()));
            assert!(message.as_ref().is_none_or(|m| id_ok(m.as_str())));
        }
        Request::GetData { target, .. } => {
            assert_eq!(event, "get_data");
            target_ok(target);
        }
        Request::GetAllData {
            kind,
            lobby,
            limit,
            start,
            ..
        } => {
            assert_eq!(event, "get_all_data");
            assert!((1..=MAX_PAGE).contains(limit), "limit {limit}");
            assert_eq!(lobby.is_some(), *kind == ObjectType::Messages);
            assert!(lobby.as_ref().is_none_or(|l| id_ok(l.as_str())));
            if let PageStart::After(_) = start {
                assert_eq!(*kind, ObjectType::Messages);
            }
        }
        Request::UpdateData { target, fields, .. } => {
            assert_eq!(event, "update_data");
            target_ok(target);
            fields_ok(target, fields);
        }
        Request::UseAction { target, action, .. } => {
            assert_eq!(event, "use_action");
            target_ok(target);
            match action {
                Action::SetOwner(u) | Action::AddUser(u) | Action::DeleteUser(u) => {
                    assert!(id_ok(u.as_str()))
                }
                Action::AddUsers(us) | Action::DeleteUsers(us) => {
                    assert!(us.iter().all(|u| id_ok(u.as_str())))
                }
                Action::SetToken(t) => assert!(token_ok(t)),
                Action::SetVisibility(_) => {}
                Action::Update(fields) => fields_ok(target, fields),
            }
        }
        Request::Custom { event: e, .. } => {
            assert_eq!(e, event);
            assert!(
                !EVENTS[..12].contains(&event),
                "protocol event {event} parsed as custom"
            );
        }
    }
}

/// Parses `data` of `event`: a request that keeps the limits, or
/// `bad_request` / `payload_too_large`.
fn check_request(event: &str, data: Map<String, Value>) {
    bump(&CHECKED);
    match Request::parse(event, data, &LIMITS) {
        Ok(req) => {
            bump(&PARSED);
            request_ok(event, &req)
        }
        Err(e) => match e.code {
            ErrorCode::BadRequest => {}
            ErrorCode::PayloadTooLarge => assert!(
                ["send_message", "update_data", "use_action"].contains(&event),
                "payload_too_large for {event}"
            ),
            other => panic!("{event}: unexpected error code {other:?} ({e})"),
        },
    }
}

/// Decodes one text message as the transport does, then parses the request.
fn check_text(text: &str) {
    bump(&CHECKED);
    match IncomingFrame::parse(text) {
        Ok(f) => {
            assert!(f.ack.is_none_or(|a| a <= MAX_ACK), "ack {:?}", f.ack);
            // The transport hands exactly this to the node.
            check_request(&f.event, f.data);
        }
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::BadRequest, "{text:?}: {:?}", e.error);
            assert!(e.ack.is_none_or(|a| a <= MAX_ACK));
            if e.event.is_none() {
                assert!(e.ack.is_none(), "an ack without an event: {text:?}");
            }
        }
    }
}

fn run<S: Strategy>(name: &str, default: u32, strategy: S, test: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let n = cases(default);
    let mut runner = TestRunner::new(Config {
        cases: n,
        // Counts are only meaningful without the forking/timeout machinery.
        failure_persistence: None,
        ..Config::default()
    });
    let before = (CHECKED.with(Cell::get), PARSED.with(Cell::get));
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        test(v);
        Ok(())
    });
    let checked = CHECKED.with(Cell::get) - before.0;
    let parsed = PARSED.with(Cell::get) - before.1;
    println!(
        "{name}: {n} cases, {checked} parser calls ({parsed} valid requests), {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[test]
fn arbitrary_text_never_panics() {
    let text = prop_oneof![
        3 => any::<String>(),
        3 => "\\PC{0,64}",
        // Text made of JSON's own punctuation and keywords.
        4 => prop::collection::vec(
            select(vec![
                "{", "}", "[", "]", ",", ":", "\"", "\"event\"", "\"data\"", "\"ack\"",
                "\"login\"", "null", "true", "1", "-0", "1e999", "9007199254740992", " ",
                "\\u0000", "\\ud800", "\"\\",
            ]),
            0..24,
        )
        .prop_map(|parts| parts.concat()),
    ];
    run("arbitrary text", 1500, text, |s| check_text(&s));
}

#[test]
fn arbitrary_json_frames_never_panic() {
    run(
        "arbitrary JSON frames",
        1500,
        prop_oneof![4 => frame_value(), 1 => json_value()],
        |v| check_text(&v.to_string()),
    );
}

#[test]
fn arbitrary_request_data_never_panics() {
    let strategy = (
        prop_oneof![6 => select(EVENTS).prop_map(str::to_owned), 1 => string()],
        json_object(),
    );
    run("arbitrary request data", 1500, strategy, |(event, data)| {
        check_request(&event, data)
    });
}

#[test]
fn mutated_valid_frames_never_panic() {
    let seeds = corpus();
    let strategy = (
        select(seeds),
        prop::collection::vec(tree_edit(), 0..4),
        prop::collection::vec(text_edit(), 0..6),
    );
    run(
        "mutated valid frames",
        1500,
        strategy,
        |(seed, tree, text)| {
            let v = apply_tree_edits(seed, &tree);
            let s = v.to_string();
            check_text(&s);
            check_text(&apply_text_edits(&s, &text));
        },
    );
}

/// The corpus itself parses: the mutation properties start from valid frames.
#[test]
fn corpus_frames_are_valid() {
    for v in corpus() {
        let f = IncomingFrame::parse(&v.to_string()).expect("corpus frame decodes");
        let event = f.event.clone();
        let r = Request::parse(&f.event, f.data, &LIMITS);
        assert!(r.is_ok(), "{event}: {r:?}");
    }
}

/// Deep nesting and huge inputs end in an error, not a stack overflow.
#[test]
fn deep_nesting_and_huge_inputs_are_refused_not_fatal() {
    for depth in [100, 127, 128, 129, 1_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        check_text(&arrays);
        check_text(&"[".repeat(depth));
        let nested = format!(
            r#"{{"event":"connect_lobby","data":{{"lobby":{}1{}}},"ack":1}}"#,
            "{\"id\":".repeat(depth),
            "}".repeat(depth)
        );
        check_text(&nested);
        let args = format!(
            r#"{{"event":"use_action","data":{{"type":"lobbys","id":"l","action":"addUsers","actionArgs":{}"u"{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        check_text(&args);
    }
    let many_users: Vec<String> = (0..20_000).map(|i| format!("u{i}")).collect();
    check_text(
        &json!({"event":"use_action","data":{"type":"lobbys","id":"l","action":"addUsers","actionArgs":[many_users]}})
            .to_string(),
    );
    let many_keys: Map<String, Value> = (0..20_000).map(|i| (format!("k{i}"), json!(i))).collect();
    check_text(&json!({"event":"get_data","data":many_keys}).to_string());
    check_text(
        &json!({"event":"send_message","data":{"lobby":{"id":"l"},"content":"x".repeat(1 << 20)}})
            .to_string(),
    );
}
