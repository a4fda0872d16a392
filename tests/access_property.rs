//! Property test of the access model, through real WebSocket connections to
//! one memory-engine gateway (so the handlers and the fan-out are covered,
//! not only the pure rules).
//!
//! Random sequences of actions by random users: create, join, leave,
//! setToken, setOwner, addUser, deleteUser, setVisibility, update (size
//! limit, description, username), send_message, get_data and get_all_data,
//! often presenting a lobby's or a user's token, a stale one or none. A
//! simple model in this file says what each action must answer and what
//! access level every caller has to every object. After every step:
//!
//! - the reply's success or error code is the model's;
//! - every info object in a reply is at exactly the caller's level, with
//!   exactly the caller's permissions, and shows nothing above that level
//!   (tokens only at private level; member lists only at partial and up; a
//!   user's lobbies only the shared ones at partial level);
//! - `get_all_data` lists exactly the objects the caller can see;
//! - every broadcast a connection received went to a member of the lobby
//!   it concerns (or a co-member of the user), at most at the recipient's
//!   level, and no broadcast carries a token (the harness also checks every
//!   broadcast against every token it has seen).
//!
//! Each user has two connections: `a` acts and is checked; `b` sends a
//! `typing_message` into a lobby only its user belongs to after each step,
//! a barrier: when `a` sees it, every broadcast of the step has arrived.
//!
//! `LOBBYD_ACCESS_CASES` sets the number of cases (default 40).

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{unique, Gateway, GatewayOpts, WsClient};

const USERS: usize = 4;

// ---------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------

/// A token a request presents.
#[derive(Debug, Clone)]
enum Tok {
    None,
    /// The current token of lobby n (mod count).
    Lobby(u8),
    /// The current token of user n.
    User(u8),
    /// A token that was replaced by setToken.
    Stale(u8),
}

#[derive(Debug, Clone)]
enum LobbyAct {
    /// setToken; `true` lets the server generate it.
    SetToken(bool),
    SetOwner(u8),
    AddUser(u8),
    DeleteUser(u8),
    SetVisibility(bool),
    /// update_data `sizeLimit` (None clears it).
    SizeLimit(Option<u8>),
    /// use_action `update` of the description.
    Describe,
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        actor: u8,
        visible: bool,
    },
    Join {
        actor: u8,
        lobby: u8,
        tok: Tok,
    },
    Leave {
        actor: u8,
        lobby: u8,
    },
    Lobby {
        actor: u8,
        lobby: u8,
        tok: Tok,
        act: LobbyAct,
    },
    UserToken {
        actor: u8,
        generate: bool,
    },
    UserVisible {
        actor: u8,
        visible: bool,
    },
    Rename {
        actor: u8,
    },
    Send {
        actor: u8,
        lobby: u8,
    },
    GetUser {
        actor: u8,
        target: u8,
        tok: Tok,
    },
    /// Any lobby, barrier lobbies included.
    GetLobby {
        actor: u8,
        lobby: u8,
        tok: Tok,
    },
    GetMessage {
        actor: u8,
        msg: u8,
    },
    GetAllUsers {
        actor: u8,
        tok: Tok,
    },
    GetAllLobbies {
        actor: u8,
        tok: Tok,
    },
    GetMessages {
        actor: u8,
        lobby: u8,
    },
}

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        3 => Just(Tok::None),
        2 => any::<u8>().prop_map(Tok::Lobby),
        2 => any::<u8>().prop_map(Tok::User),
        1 => any::<u8>().prop_map(Tok::Stale),
    ]
}

fn lobby_act() -> impl Strategy<Value = LobbyAct> {
    prop_oneof![
        1 => any::<bool>().prop_map(LobbyAct::SetToken),
        1 => any::<u8>().prop_map(LobbyAct::SetOwner),
        2 => any::<u8>().prop_map(LobbyAct::AddUser),
        1 => any::<u8>().prop_map(LobbyAct::DeleteUser),
        1 => any::<bool>().prop_map(LobbyAct::SetVisibility),
        1 => prop::option::of(1..4u8).prop_map(LobbyAct::SizeLimit),
        1 => Just(LobbyAct::Describe),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let a = any::<u8>();
    prop_oneof![
        2 => (a, any::<bool>()).prop_map(|(actor, visible)| Step::Create { actor, visible }),
        4 => (a, a, tok()).prop_map(|(actor, lobby, tok)| Step::Join { actor, lobby, tok }),
        2 => (a, a).prop_map(|(actor, lobby)| Step::Leave { actor, lobby }),
        6 => (a, a, tok(), lobby_act())
            .prop_map(|(actor, lobby, tok, act)| Step::Lobby { actor, lobby, tok, act }),
        1 => (a, any::<bool>()).prop_map(|(actor, generate)| Step::UserToken { actor, generate }),
        2 => (a, any::<bool>()).prop_map(|(actor, visible)| Step::UserVisible { actor, visible }),
        1 => a.prop_map(|actor| Step::Rename { actor }),
        2 => (a, a).prop_map(|(actor, lobby)| Step::Send { actor, lobby }),
        3 => (a, a, tok()).prop_map(|(actor, target, tok)| Step::GetUser { actor, target, tok }),
        3 => (a, a, tok()).prop_map(|(actor, lobby, tok)| Step::GetLobby { actor, lobby, tok }),
        2 => (a, a).prop_map(|(actor, msg)| Step::GetMessage { actor, msg }),
        2 => (a, tok()).prop_map(|(actor, tok)| Step::GetAllUsers { actor, tok }),
        2 => (a, tok()).prop_map(|(actor, tok)| Step::GetAllLobbies { actor, tok }),
        1 => (a, a).prop_map(|(actor, lobby)| Step::GetMessages { actor, lobby }),
    ]
}

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Public,
    Partial,
    Private,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Partial => "partial",
            Level::Private => "private",
        }
    }
}

const OWNER_PERMS: &[&str] = support::LOBBY_OWNER_PERMS;
const TOKEN_PERMS: &[&str] = support::LOBBY_TOKEN_PERMS;
const MEMBER_PERMS: &[&str] = support::LOBBY_MEMBER_PERMS;

#[derive(Debug, Clone)]
struct MUser {
    id: String,
    token: String,
    visible: bool,
}

#[derive(Debug, Clone)]
struct MLobby {
    id: String,
    owner: usize,
    token: String,
    visible: bool,
    members: BTreeSet<usize>,
    limit: Option<u64>,
    /// A user's barrier lobby: only read, never changed by steps.
    barrier: bool,
}

#[derive(Debug, Clone)]
struct MMsg {
    id: String,
    lobby: usize,
    author: usize,
}

#[derive(Debug, Clone, Default)]
struct Model {
    users: Vec<MUser>,
    lobbies: Vec<MLobby>,
    msgs: Vec<MMsg>,
    stale: Vec<String>,
}

impl Model {
    fn user_ix(&self, n: u8) -> usize {
        n as usize % self.users.len()
    }

    /// A lobby that steps may change (not a barrier); None if there is none.
    fn open_lobby(&self, n: u8) -> Option<usize> {
        let open: Vec<usize> = (0..self.lobbies.len())
            .filter(|&i| !self.lobbies[i].barrier)
            .collect();
        (!open.is_empty()).then(|| open[n as usize % open.len()])
    }

    fn present(&self, t: &Tok) -> Option<String> {
        match *t {
            Tok::None => None,
            Tok::Lobby(n) => {
                let i = self.open_lobby(n)?;
                Some(self.lobbies[i].token.clone())
            }
            Tok::User(n) => Some(self.users[self.user_ix(n)].token.clone()),
            Tok::Stale(n) => {
                (!self.stale.is_empty()).then(|| self.stale[n as usize % self.stale.len()].clone())
            }
        }
    }

    fn lobby_perms(&self, x: usize, l: usize, t: Option<&str>) -> &'static [&'static str] {
        let lob = &self.lobbies[l];
        if lob.owner == x {
            OWNER_PERMS
        } else if t == Some(lob.token.as_str()) {
            TOKEN_PERMS
        } else if lob.members.contains(&x) {
            MEMBER_PERMS
        } else {
            &[]
        }
    }

    fn lobby_level(&self, x: usize, l: usize, t: Option<&str>) -> Option<Level> {
        let lob = &self.lobbies[l];
        if lob.owner == x || t == Some(lob.token.as_str()) {
            Some(Level::Private)
        } else if lob.members.contains(&x) {
            Some(Level::Partial)
        } else if lob.visible {
            Some(Level::Public)
        } else {
            None
        }
    }

    fn lobbies_of(&self, y: usize) -> BTreeSet<String> {
        self.lobbies
            .iter()
            .filter(|l| l.members.contains(&y))
            .map(|l| l.id.clone())
            .collect()
    }

    fn shared(&self, x: usize, y: usize) -> BTreeSet<String> {
        self.lobbies
            .iter()
            .filter(|l| l.members.contains(&x) && l.members.contains(&y))
            .map(|l| l.id.clone())
            .collect()
    }

    fn user_level(&self, x: usize, y: usize, t: Option<&str>) -> Option<Level> {
        if x == y || t == Some(self.users[y].token.as_str()) {
            Some(Level::Private)
        } else if !self.shared(x, y).is_empty() {
            Some(Level::Partial)
        } else if self.users[y].visible {
            Some(Level::Public)
        } else {
            None
        }
    }

    /// The refusal for a lobby-scoped request by a non-member.
    fn non_member(&self, x: usize, l: usize) -> &'static str {
        let lob = &self.lobbies[l];
        if lob.owner == x || lob.visible {
            "forbidden"
        } else {
            "not_found"
        }
    }

    fn user_by_id(&self, id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.id == id)
    }

    fn lobby_by_id(&self, id: &str) -> Option<usize> {
        self.lobbies.iter().position(|l| l.id == id)
    }
}

// ---------------------------------------------------------------------------
// Checks of info objects
// ---------------------------------------------------------------------------

type R = Result<(), TestCaseError>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

fn perms_of(info: &Value) -> BTreeSet<String> {
    info["permissions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

fn id_list(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A lobby info seen by user `x` presenting `t`.
fn check_lobby_info(m: &Model, x: usize, t: Option<&str>, info: &Value) -> R {
    let id = info["id"].as_str().unwrap_or_default();
    let l = m
        .lobby_by_id(id)
        .ok_or_else(|| TestCaseError::fail(format!("unknown lobby in {info}")))?;
    let want = m.lobby_level(x, l, t);
    ensure!(
        want.map(Level::name) == info["level"].as_str(),
        "user {x} sees lobby {l} at {} but may see it at {want:?} (token {t:?}): {info}",
        info["level"]
    );
    let level = want.expect("checked");
    let lob = &m.lobbies[l];
    ensure!(
        perms_of(info) == set(m.lobby_perms(x, l, t)),
        "user {x} lobby {l} permissions: {info}"
    );
    ensure!(
        info["owner"]["id"] == json!(m.users[lob.owner].id),
        "owner of {info}"
    );
    ensure!(
        info["visibility"] == json!(lob.visible),
        "visibility of {info}"
    );
    let data = &info["data"];
    ensure!(
        data["userCount"] == json!(lob.members.len()),
        "userCount of {info}"
    );
    let has = |k: &str| data.get(k).is_some_and(|v| !v.is_null());
    if level == Level::Private {
        ensure!(
            data["token"] == json!(lob.token),
            "private lobby view without its token: {info}"
        );
    } else {
        ensure!(!has("token"), "token in a {level:?} lobby view: {info}");
    }
    if level >= Level::Partial {
        let members: BTreeSet<String> =
            lob.members.iter().map(|&u| m.users[u].id.clone()).collect();
        ensure!(id_list(&data["users"]) == members, "member list of {info}");
    } else {
        for k in ["users", "sizeLimit", "updatedAt"] {
            ensure!(!has(k), "`{k}` in a public lobby view: {info}");
        }
    }
    Ok(())
}

/// A user info seen by user `x` presenting `t`.
fn check_user_info(m: &Model, x: usize, t: Option<&str>, info: &Value) -> R {
    let id = info["id"].as_str().unwrap_or_default();
    let y = m
        .user_by_id(id)
        .ok_or_else(|| TestCaseError::fail(format!("unknown user in {info}")))?;
    let want = m.user_level(x, y, t);
    ensure!(
        want.map(Level::name) == info["level"].as_str(),
        "user {x} sees user {y} at {} but may see it at {want:?}: {info}",
        info["level"]
    );
    let level = want.expect("checked");
    let want_perms: &[&str] = if x == y {
        support::USER_SELF_PERMS
    } else {
        &[]
    };
    ensure!(
        perms_of(info) == set(want_perms),
        "user {x} on user {y} permissions: {info}"
    );
    ensure!(
        info["visibility"] == json!(m.users[y].visible),
        "visibility of {info}"
    );
    let data = &info["data"];
    let has = |k: &str| data.get(k).is_some_and(|v| !v.is_null());
    match level {
        Level::Private => {
            ensure!(
                id_list(&data["lobbys"]) == m.lobbies_of(y),
                "lobbys of private {info}"
            );
            // The acting connection always knows its own token; a presenter knows the one it presented.
            ensure!(
                data["token"] == json!(m.users[y].token),
                "private user view without the known token: {info}"
            );
        }
        Level::Partial => {
            ensure!(!has("token"), "token in a partial user view: {info}");
            ensure!(
                id_list(&data["lobbys"]) == m.shared(x, y),
                "a partial user view must list only the shared lobbies: {info}"
            );
        }
        Level::Public => {
            for k in ["token", "lobbys", "online", "updatedAt"] {
                ensure!(!has(k), "`{k}` in a public user view: {info}");
            }
        }
    }
    Ok(())
}

fn check_message_info(m: &Model, x: usize, info: &Value) -> R {
    let id = info["id"].as_str().unwrap_or_default();
    let Some(msg) = m.msgs.iter().find(|mm| mm.id == id) else {
        return Err(TestCaseError::fail(format!("unknown message {info}")));
    };
    ensure!(
        m.lobbies[msg.lobby].members.contains(&x),
        "user {x} got message {id} of a lobby it is not a member of: {info}"
    );
    let want = if msg.author == x {
        "private"
    } else {
        "partial"
    };
    ensure!(info["level"] == want, "message level for user {x}: {info}");
    let want_perms: &[&str] = if msg.author == x { &["update"] } else { &[] };
    ensure!(
        perms_of(info) == set(want_perms),
        "message permissions: {info}"
    );
    ensure!(
        info["data"].get("token").is_none(),
        "token in a message: {info}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

struct Conns {
    a: WsClient,
    b: WsClient,
}

struct Case {
    m: Model,
    conns: Vec<Conns>,
    /// For each user, the barrier lobby's index.
    barrier: Vec<usize>,
    /// Every token the case has seen, for the broadcast check.
    tokens: BTreeSet<String>,
}

/// Sends a request on `a` of user `x`.
async fn req(c: &mut Case, x: usize, event: &str, data: Value) -> Value {
    c.conns[x].a.request(event, data).await.frame
}

fn code(frame: &Value) -> Option<&str> {
    (frame["event"] == "error").then(|| frame["data"]["code"].as_str().unwrap_or("?"))
}

/// The reply must be a success (`None`) or carry this error code.
fn expect(frame: &Value, want: Option<&str>, what: &str) -> R {
    ensure!(
        code(frame) == want,
        "{what}: expected {}, got {frame}",
        want.unwrap_or("success")
    );
    Ok(())
}

/// `get_data` of one object by user `x`, presenting `token`: it must
/// succeed exactly when the model makes the object `visible` (else
/// `not_found`). Returns the info to check when it did.
async fn get_one(
    c: &mut Case,
    x: usize,
    kind: &str,
    id: &str,
    token: Option<&str>,
    visible: bool,
    what: &str,
) -> Result<Option<Value>, TestCaseError> {
    let mut data = json!({"type": kind, "id": id});
    if let Some(t) = token {
        data["token"] = json!(t);
    }
    let f = req(c, x, "get_data", data).await;
    expect(&f, if visible { None } else { Some("not_found") }, what)?;
    Ok(visible.then(|| f["data"]["data"].clone()))
}

async fn setup(gw: &Gateway) -> Case {
    let mut c = Case {
        m: Model::default(),
        conns: Vec::new(),
        barrier: Vec::new(),
        tokens: BTreeSet::new(),
    };
    for i in 0..USERS {
        let mut a = WsClient::connect(&gw.ws_url()).await;
        let (id, token) = a.login(&format!("u{i}")).await;
        let mut b = WsClient::connect(&gw.ws_url()).await;
        b.login_token(&token).await;
        let r = a
            .request(
                "connect_lobby",
                json!({"lobby": {"id": format!("bar-{i}-{}", unique())}}),
            )
            .await
            .ok();
        let lobby = &r["lobby"];
        c.tokens.insert(token.clone());
        c.tokens
            .insert(lobby["data"]["token"].as_str().unwrap().to_owned());
        c.m.users.push(MUser {
            id,
            token,
            visible: false,
        });
        c.barrier.push(c.m.lobbies.len());
        c.m.lobbies.push(MLobby {
            id: lobby["id"].as_str().unwrap().to_owned(),
            owner: i,
            token: lobby["data"]["token"].as_str().unwrap().to_owned(),
            visible: false,
            members: BTreeSet::from([i]),
            limit: None,
            barrier: true,
        });
        c.conns.push(Conns { a, b });
    }
    c
}

/// Waits until every `a` connection has every broadcast of the step, and
/// returns them per user.
async fn barrier(c: &mut Case) -> Vec<Vec<Value>> {
    let ids: Vec<String> = c
        .barrier
        .iter()
        .map(|&l| c.m.lobbies[l].id.clone())
        .collect();
    let futs = c.conns.iter_mut().zip(ids).map(|(conn, lobby)| async move {
        conn.b
            .request("typing_message", json!({"lobby": {"id": lobby}}))
            .await
            .ok();
        conn.a.take_events_before("typing_message").await
    });
    futures::future::join_all(futs).await
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                strings(x, out);
            }
        }
        _ => {}
    }
}

/// Every broadcast user `x` got in a step, given the model before and after.
fn check_broadcasts(c: &Case, before: &Model, x: usize, events: &[Value]) -> R {
    let after = &c.m;
    let member_then_or_now = |lobby_id: &str| -> bool {
        [before, after].iter().any(|m| {
            m.lobby_by_id(lobby_id)
                .is_some_and(|l| m.lobbies[l].members.contains(&x))
        })
    };
    for f in events {
        let mut all = Vec::new();
        strings(f, &mut all);
        for s in &all {
            ensure!(
                s != "token",
                "broadcast with a token field to user {x}: {f}"
            );
            ensure!(
                !c.tokens.contains(s),
                "broadcast leaks a token to user {x}: {f}"
            );
        }
        let d = &f["data"];
        let ev = f["event"].as_str().unwrap_or_default();
        match ev {
            "connect_lobby" | "disconnect_lobby" => {
                let l = d["lobby"]["id"].as_str().unwrap_or_default();
                ensure!(
                    member_then_or_now(l),
                    "user {x} is no member of {l} but got {f}"
                );
            }
            "send_message" => {
                let msg = &d["message"];
                let l = msg["data"]["lobby"]["id"].as_str().unwrap_or_default();
                ensure!(
                    member_then_or_now(l),
                    "user {x} is no member of {l} but got {f}"
                );
                check_message_info(after, x, msg)?;
            }
            "update_data" => match d["type"].as_str() {
                Some("lobbys") => {
                    let l = d["id"].as_str().unwrap_or_default();
                    ensure!(
                        member_then_or_now(l),
                        "user {x} is no member of {l} but got {f}"
                    );
                }
                Some("users") => {
                    let y = after
                        .user_by_id(d["id"].as_str().unwrap_or_default())
                        .ok_or_else(|| TestCaseError::fail(format!("unknown user in {f}")))?;
                    ensure!(
                        x == y || !before.shared(x, y).is_empty() || !after.shared(x, y).is_empty(),
                        "user {x} shares no lobby with user {y} but got {f}"
                    );
                }
                _ => return Err(TestCaseError::fail(format!("unexpected update_data {f}"))),
            },
            _ => {
                return Err(TestCaseError::fail(format!(
                    "unexpected broadcast to user {x}: {f}"
                )))
            }
        }
    }
    Ok(())
}

/// Pages through `get_all_data` and returns every info.
async fn get_all(
    c: &mut Case,
    x: usize,
    kind: &str,
    t: Option<&str>,
) -> Result<Vec<Value>, TestCaseError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut data = json!({"type": kind, "limit": 3});
        if let Some(t) = t {
            data["token"] = json!(t);
        }
        if let Some(cur) = &cursor {
            data["cursor"] = json!(cur);
        }
        let f = req(c, x, "get_all_data", data).await;
        expect(&f, None, "get_all_data")?;
        out.extend(f["data"]["datas"].as_array().cloned().unwrap_or_default());
        match f["data"]["cursor"].as_str() {
            Some(cur) => cursor = Some(cur.to_owned()),
            None => return Ok(out),
        }
        ensure!(out.len() < 1000, "get_all_data does not end");
    }
}

async fn run_step(c: &mut Case, s: &Step) -> R {
    let nu = c.m.users.len();
    match s {
        Step::Create { actor, visible } => {
            let x = *actor as usize % nu;
            if c.m.lobbies.len() >= USERS + 5 {
                return Ok(());
            }
            let f = req(
                c,
                x,
                "connect_lobby",
                json!({"lobby": {"visibility": visible}}),
            )
            .await;
            expect(&f, None, "create")?;
            let info = &f["data"]["lobby"];
            let token = info["data"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            c.tokens.insert(token.clone());
            c.m.lobbies.push(MLobby {
                id: info["id"].as_str().unwrap_or_default().to_owned(),
                owner: x,
                token,
                visible: *visible,
                members: BTreeSet::from([x]),
                limit: None,
                barrier: false,
            });
            check_lobby_info(&c.m, x, None, info)?;
        }
        Step::Join { actor, lobby, tok } => {
            let x = *actor as usize % nu;
            let Some(l) = c.m.open_lobby(*lobby) else {
                return Ok(());
            };
            let t = c.m.present(tok);
            let lob = &c.m.lobbies[l];
            let want = if lob.members.contains(&x) {
                None
            } else if !(lob.visible || lob.owner == x || t.as_deref() == Some(lob.token.as_str())) {
                Some("forbidden")
            } else if lob.limit.is_some_and(|n| lob.members.len() as u64 >= n) {
                Some("lobby_full")
            } else {
                None
            };
            let mut data = json!({"lobby": {"id": lob.id}});
            if let Some(t) = &t {
                data["lobby"]["token"] = json!(t);
            }
            let f = req(c, x, "connect_lobby", data).await;
            expect(&f, want, &format!("user {x} joins lobby {l} with {tok:?}"))?;
            if want.is_none() {
                c.m.lobbies[l].members.insert(x);
                check_lobby_info(&c.m, x, t.as_deref(), &f["data"]["lobby"])?;
            }
        }
        Step::Leave { actor, lobby } => {
            let x = *actor as usize % nu;
            let Some(l) = c.m.open_lobby(*lobby) else {
                return Ok(());
            };
            let want = (!c.m.lobbies[l].members.contains(&x)).then(|| c.m.non_member(x, l));
            let id = c.m.lobbies[l].id.clone();
            let f = req(c, x, "disconnect_lobby", json!({"lobby": {"id": id}})).await;
            expect(&f, want, &format!("user {x} leaves lobby {l}"))?;
            c.m.lobbies[l].members.remove(&x);
        }
        Step::Lobby {
            actor,
            lobby,
            tok,
            act,
        } => {
            let x = *actor as usize % nu;
            let Some(l) = c.m.open_lobby(*lobby) else {
                return Ok(());
            };
            let t = c.m.present(tok);
            lobby_action(c, x, l, t, act).await?;
        }
        Step::UserToken { actor, generate } => {
            let x = *actor as usize % nu;
            let new = (!generate).then(|| format!("usertok-{}-{}", x, unique()));
            let id = c.m.users[x].id.clone();
            let f = req(
                c,
                x,
                "use_action",
                json!({"type": "users", "id": id, "action": "setToken", "actionArgs": [new]}),
            )
            .await;
            expect(&f, None, "user setToken")?;
            let got = f["data"]["data"]["data"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(n) = &new {
                ensure!(&got == n, "setToken reply shows {got}, not the new token");
            }
            c.tokens.insert(got.clone());
            let old = std::mem::replace(&mut c.m.users[x].token, got);
            c.m.stale.push(old);
            check_user_info(&c.m, x, None, &f["data"]["data"])?;
        }
        Step::UserVisible { actor, visible } => {
            let x = *actor as usize % nu;
            let id = c.m.users[x].id.clone();
            let f = req(c, x, "use_action", json!({"type": "users", "id": id, "action": "setVisibility", "actionArgs": [visible]})).await;
            expect(&f, None, "user setVisibility")?;
            c.m.users[x].visible = *visible;
            check_user_info(&c.m, x, None, &f["data"]["data"])?;
        }
        Step::Rename { actor } => {
            let x = *actor as usize % nu;
            let id = c.m.users[x].id.clone();
            let f = req(
                c,
                x,
                "update_data",
                json!({"type": "users", "id": id, "data": {"username": format!("n{}", unique())}}),
            )
            .await;
            expect(&f, None, "rename")?;
        }
        Step::Send { actor, lobby } => {
            let x = *actor as usize % nu;
            let Some(l) = c.m.open_lobby(*lobby) else {
                return Ok(());
            };
            let want = (!c.m.lobbies[l].members.contains(&x)).then(|| c.m.non_member(x, l));
            let id = c.m.lobbies[l].id.clone();
            let f = req(
                c,
                x,
                "send_message",
                json!({"lobby": {"id": id}, "content": "hello"}),
            )
            .await;
            expect(&f, want, &format!("user {x} sends to lobby {l}"))?;
            if want.is_none() {
                let mid = f["data"]["message"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                c.m.msgs.push(MMsg {
                    id: mid,
                    lobby: l,
                    author: x,
                });
                check_message_info(&c.m, x, &f["data"]["message"])?;
            }
        }
        Step::GetUser { actor, target, tok } => {
            let x = *actor as usize % nu;
            let y = *target as usize % nu;
            let t = c.m.present(tok);
            let id = c.m.users[y].id.clone();
            let visible = c.m.user_level(x, y, t.as_deref()).is_some();
            let what = format!("user {x} gets user {y}");
            if let Some(info) = get_one(c, x, "users", &id, t.as_deref(), visible, &what).await? {
                check_user_info(&c.m, x, t.as_deref(), &info)?;
            }
        }
        Step::GetLobby { actor, lobby, tok } => {
            let x = *actor as usize % nu;
            let l = *lobby as usize % c.m.lobbies.len();
            let t = c.m.present(tok);
            let id = c.m.lobbies[l].id.clone();
            let visible = c.m.lobby_level(x, l, t.as_deref()).is_some();
            let what = format!("user {x} gets lobby {l}");
            if let Some(info) = get_one(c, x, "lobbys", &id, t.as_deref(), visible, &what).await? {
                check_lobby_info(&c.m, x, t.as_deref(), &info)?;
            }
        }
        Step::GetMessage { actor, msg } => {
            let x = *actor as usize % nu;
            if c.m.msgs.is_empty() {
                return Ok(());
            }
            let mm = c.m.msgs[*msg as usize % c.m.msgs.len()].clone();
            let lid = c.m.lobbies[mm.lobby].id.clone();
            let f = req(
                c,
                x,
                "get_data",
                json!({"type": "messages", "id": mm.id, "lobby": {"id": lid}}),
            )
            .await;
            let member = c.m.lobbies[mm.lobby].members.contains(&x);
            expect(
                &f,
                if member { None } else { Some("not_found") },
                &format!("user {x} gets a message of lobby {}", mm.lobby),
            )?;
            if member {
                check_message_info(&c.m, x, &f["data"]["data"])?;
            }
        }
        Step::GetAllUsers { actor, tok } => {
            let x = *actor as usize % nu;
            let t = c.m.present(tok);
            let infos = get_all(c, x, "users", t.as_deref()).await?;
            let got: BTreeSet<String> = infos
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect();
            ensure!(got.len() == infos.len(), "duplicates in get_all_data users");
            let want: BTreeSet<String> = (0..nu)
                .filter(|&y| c.m.user_level(x, y, t.as_deref()).is_some())
                .map(|y| c.m.users[y].id.clone())
                .collect();
            ensure!(
                got == want,
                "user {x} lists users {got:?}, may see {want:?} (token {t:?})"
            );
            for i in &infos {
                check_user_info(&c.m, x, t.as_deref(), i)?;
            }
        }
        Step::GetAllLobbies { actor, tok } => {
            let x = *actor as usize % nu;
            let t = c.m.present(tok);
            let infos = get_all(c, x, "lobbys", t.as_deref()).await?;
            let got: BTreeSet<String> = infos
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect();
            ensure!(
                got.len() == infos.len(),
                "duplicates in get_all_data lobbys"
            );
            let want: BTreeSet<String> = (0..c.m.lobbies.len())
                .filter(|&l| c.m.lobby_level(x, l, t.as_deref()).is_some())
                .map(|l| c.m.lobbies[l].id.clone())
                .collect();
            ensure!(
                got == want,
                "user {x} lists lobbies {got:?}, may see {want:?} (token {t:?})"
            );
            for i in &infos {
                check_lobby_info(&c.m, x, t.as_deref(), i)?;
            }
        }
        Step::GetMessages { actor, lobby } => {
            let x = *actor as usize % nu;
            let Some(l) = c.m.open_lobby(*lobby) else {
                return Ok(());
            };
            let id = c.m.lobbies[l].id.clone();
            let f = req(
                c,
                x,
                "get_all_data",
                json!({"type": "messages", "lobby": {"id": id}, "limit": 500}),
            )
            .await;
            let want = (!c.m.lobbies[l].members.contains(&x)).then(|| c.m.non_member(x, l));
            expect(&f, want, &format!("user {x} lists messages of lobby {l}"))?;
            if want.is_none() {
                let got: Vec<String> = f["data"]["datas"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect();
                let all: Vec<String> =
                    c.m.msgs
                        .iter()
                        .filter(|mm| mm.lobby == l)
                        .map(|mm| mm.id.clone())
                        .collect();
                ensure!(got == all, "history of lobby {l}: {got:?} != {all:?}");
                for i in f["data"]["datas"].as_array().cloned().unwrap_or_default() {
                    check_message_info(&c.m, x, &i)?;
                }
            }
        }
    }
    Ok(())
}

async fn lobby_action(c: &mut Case, x: usize, l: usize, t: Option<String>, act: &LobbyAct) -> R {
    let nu = c.m.users.len();
    let lob = c.m.lobbies[l].clone();
    let level = c.m.lobby_level(x, l, t.as_deref());
    let perms = c.m.lobby_perms(x, l, t.as_deref());
    let (event, mut data, needs) = match act {
        LobbyAct::SetToken(generate) => {
            let new = (!generate).then(|| format!("lobbytok-{}", unique()));
            (
                "use_action",
                json!({"action": "setToken", "actionArgs": [new]}),
                "setToken",
            )
        }
        LobbyAct::SetOwner(u) => (
            "use_action",
            json!({"action": "setOwner", "actionArgs": [c.m.users[*u as usize % nu].id]}),
            "setOwner",
        ),
        LobbyAct::AddUser(u) => (
            "use_action",
            json!({"action": "addUser", "actionArgs": [c.m.users[*u as usize % nu].id]}),
            "addUser",
        ),
        LobbyAct::DeleteUser(u) => (
            "use_action",
            json!({"action": "deleteUser", "actionArgs": [c.m.users[*u as usize % nu].id]}),
            "deleteUser",
        ),
        LobbyAct::SetVisibility(b) => (
            "use_action",
            json!({"action": "setVisibility", "actionArgs": [b]}),
            "setVisibility",
        ),
        LobbyAct::SizeLimit(n) => ("update_data", json!({"data": {"sizeLimit": n}}), "update"),
        LobbyAct::Describe => (
            "use_action",
            json!({"action": "update", "actionArgs": [{"description": format!("d{}", unique())}]}),
            "update",
        ),
    };
    data["type"] = json!("lobbys");
    data["id"] = json!(lob.id);
    if let Some(t) = &t {
        data["token"] = json!(t);
    }
    // What the model expects.
    let mut want: Option<&str> = if level.is_none() {
        Some("not_found")
    } else if !perms.contains(&needs) {
        Some("forbidden")
    } else {
        None
    };
    if want.is_none() {
        if let LobbyAct::AddUser(u) = act {
            let y = *u as usize % nu;
            if !lob.members.contains(&y) && lob.limit.is_some_and(|n| lob.members.len() as u64 >= n)
            {
                want = Some("lobby_full");
            }
        }
    }
    let what = format!("user {x} {act:?} on lobby {l} with token {t:?}");
    let f = req(c, x, event, data).await;
    expect(&f, want, &what)?;
    if want.is_some() {
        return Ok(());
    }
    // Apply to the model.
    let mut view_token = t.clone();
    {
        let lm = &mut c.m.lobbies[l];
        match act {
            LobbyAct::SetToken(_) => {
                let new = f["data"]["data"]["data"]["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                ensure!(
                    !new.is_empty(),
                    "{what}: the reply does not show the new token: {f}"
                );
                c.tokens.insert(new.clone());
                let old = std::mem::replace(&mut lm.token, new.clone());
                c.m.stale.push(old);
                view_token = Some(new);
            }
            LobbyAct::SetOwner(u) => lm.owner = *u as usize % nu,
            LobbyAct::AddUser(u) => {
                lm.members.insert(*u as usize % nu);
            }
            LobbyAct::DeleteUser(u) => {
                lm.members.remove(&(*u as usize % nu));
            }
            LobbyAct::SetVisibility(b) => lm.visible = *b,
            LobbyAct::SizeLimit(n) => lm.limit = n.map(u64::from),
            LobbyAct::Describe => {}
        }
    }
    if event == "use_action" {
        check_lobby_info(&c.m, x, view_token.as_deref(), &f["data"]["data"])?;
    }
    Ok(())
}

async fn run_case(steps: Vec<Step>) -> R {
    let mut gw = Gateway::start(
        GatewayOpts::default()
            .arg("--rate-limit-per-s")
            .arg("100000")
            .arg("--rate-limit-burst")
            .arg("100000"),
    )
    .await;
    let mut c = setup(&gw).await;
    barrier(&mut c).await;
    for (i, s) in steps.iter().enumerate() {
        let before = c.m.clone();
        run_step(&mut c, s)
            .await
            .map_err(|e| TestCaseError::fail(format!("step {i} {s:?}: {e}")))?;
        let got = barrier(&mut c).await;
        for (x, events) in got.iter().enumerate() {
            check_broadcasts(&c, &before, x, events)
                .map_err(|e| TestCaseError::fail(format!("step {i} {s:?}: {e}")))?;
        }
        // Every other member got each new message once.
        if let (Step::Send { actor, .. }, Some(mm)) = (s, c.m.msgs.last()) {
            if c.m.msgs.len() > before.msgs.len() {
                let author = *actor as usize % USERS;
                for &y in &c.m.lobbies[mm.lobby].members {
                    if y == author {
                        continue;
                    }
                    let n = got[y]
                        .iter()
                        .filter(|f| {
                            f["event"] == "send_message"
                                && f["data"]["message"]["id"] == json!(mm.id)
                        })
                        .count();
                    ensure!(
                        n == 1,
                        "step {i}: member {y} got message {} {n} times",
                        mm.id
                    );
                }
            }
        }
    }
    gw.kill();
    Ok(())
}

#[test]
fn random_action_sequences_respect_access_levels() {
    let cases: u32 = std::env::var("LOBBYD_ACCESS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let steps = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&prop::collection::vec(step(), 1..40), |s| {
        steps.fetch_add(s.len() as u64, std::sync::atomic::Ordering::Relaxed);
        rt.block_on(run_case(s))
    });
    println!(
        "access property: {cases} cases, {} steps, {:.1} s",
        steps.into_inner(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// An owner that is not a member of its private lobby hands it over. The
/// change is made, so the reply must be a success (a failed request
/// changes nothing; this one changed the owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_owner_by_an_owner_outside_its_private_lobby_succeeds() {
    let gw = Gateway::start(GatewayOpts::default()).await;
    let mut a = WsClient::connect(&gw.ws_url()).await;
    a.login("ann").await;
    let mut b = WsClient::connect(&gw.ws_url()).await;
    let (bob, _) = b.login("bob").await;
    let lobby = a.request("connect_lobby", json!({"lobby": {}})).await.ok()["lobby"]["id"].clone();
    a.request("disconnect_lobby", json!({"lobby": {"id": lobby}}))
        .await
        .ok();
    let r = a
        .request(
            "use_action",
            json!({"type": "lobbys", "id": lobby, "action": "setOwner", "actionArgs": [bob]}),
        )
        .await;
    // Whatever the reply, the owner changed: bob now owns the lobby.
    let info = b
        .request("get_data", json!({"type": "lobbys", "id": lobby}))
        .await
        .ok();
    assert_eq!(info["data"]["owner"]["id"], json!(bob), "{info}");
    assert!(r.is_ok(), "setOwner was applied but answered {}", r.frame);
}
