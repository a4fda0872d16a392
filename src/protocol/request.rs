//! Typed requests: each event's `data` is validated here, at the edge, so
//! handlers never see an ill-typed field.

use super::error::{ErrorCode, ProtocolError};
use crate::domain::{LobbyId, MessageId, Permission, ReceiptKind, UserId};
use serde_json::{Map, Value};

/// Limits that decide whether a request is well-formed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message content in UTF-8 bytes.
    pub max_content_bytes: usize,
}

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 128;
/// Longest client-chosen id (lobby ids) or token, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest lobby description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Largest `limit` of `get_all_data`.
pub const MAX_PAGE: usize = 500;
/// `limit` of `get_all_data` when absent.
pub const DEFAULT_PAGE: usize = 100;

/// Every event name the protocol defines.
pub const EVENTS: &[&str] = &[
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
];

/// A bounded label for an event name (metrics, spans): the protocol's
/// names as they are, anything else `other`, so clients cannot grow the
/// label set.
pub fn event_label(event: &str) -> &'static str {
    EVENTS
        .iter()
        .find(|e| **e == event)
        .copied()
        .unwrap_or("other")
}

/// The three object types, with their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Users,
    Lobbys,
    Messages,
}

impl ObjectType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Users => "users",
            ObjectType::Lobbys => "lobbys",
            ObjectType::Messages => "messages",
        }
    }
}

/// The object a `get_data` / `update_data` / `use_action` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(UserId),
    Lobby(LobbyId),
    Message(LobbyId, MessageId),
}

/// Where a `get_all_data` page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    First,
    /// An opaque cursor from a previous page.
    Cursor(String),
    /// Messages with a greater seq.
    After(u64),
}

/// A `use_action`, with its arguments typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SetOwner(UserId),
    /// `None`: generate one.
    SetToken(Option<String>),
    SetVisibility(bool),
    AddUser(UserId),
    AddUsers(Vec<UserId>),
    DeleteUser(UserId),
    DeleteUsers(Vec<UserId>),
    Update(Map<String, Value>),
}

impl Action {
    /// The wire name.
    pub fn name(&self) -> &'static str {
        self.permission().as_str()
    }

    /// The permission the action needs (also its wire name).
    pub fn permission(&self) -> Permission {
        match self {
            Action::SetOwner(_) => Permission::SetOwner,
            Action::SetToken(_) => Permission::SetToken,
            Action::SetVisibility(_) => Permission::SetVisibility,
            Action::AddUser(_) => Permission::AddUser,
            Action::AddUsers(_) => Permission::AddUsers,
            Action::DeleteUser(_) => Permission::DeleteUser,
            Action::DeleteUsers(_) => Permission::DeleteUsers,
            Action::Update(_) => Permission::Update,
        }
    }
}

/// One client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Login {
        token: Option<String>,
        username: Option<String>,
    },
    Logout {
        everywhere: bool,
    },
    ConnectLobby {
        id: Option<LobbyId>,
        token: Option<String>,
        visibility: bool,
        size_limit: Option<u64>,
        description: Option<String>,
    },
    DisconnectLobby {
        lobby: LobbyId,
    },
    SendMessage {
        lobby: LobbyId,
        content: String,
        replied: Option<MessageId>,
    },
    Receipt {
        kind: ReceiptKind,
        lobby: LobbyId,
        message: MessageId,
    },
    Typing {
        lobby: LobbyId,
        message: Option<MessageId>,
    },
    GetData {
        target: Target,
        token: Option<String>,
    },
    GetAllData {
        kind: ObjectType,
        token: Option<String>,
        lobby: Option<LobbyId>,
        limit: usize,
        start: PageStart,
    },
    UpdateData {
        target: Target,
        token: Option<String>,
        fields: Map<String, Value>,
    },
    UseAction {
        target: Target,
        token: Option<String>,
        action: Action,
    },
    /// An event the protocol does not define: an application handler's.
    Custom {
        event: String,
        data: Map<String, Value>,
    },
}

impl Request {
    /// Whether this request only reads (it can be served while event
    /// delivery is down).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Request::GetData { .. } | Request::GetAllData { .. } | Request::Custom { .. }
        )
    }

    /// Whether this is `login` (the only request allowed before login).
    pub fn is_login(&self) -> bool {
        matches!(self, Request::Login { .. })
    }

    /// Parses `data` of `event`.
    pub fn parse(
        event: &str,
        data: Map<String, Value>,
        limits: &Limits,
    ) -> Result<Self, ProtocolError> {
        let d = Data(&data);
        Ok(match event {
            "login" => Request::Login {
                token: d
                    .opt_str("token")?
                    .map(|t| check_token(&t).map(|_| t))
                    .transpose()?,
                username: d.opt_str("username")?.map(check_username).transpose()?,
            },
            "logout" => Request::Logout {
                everywhere: d.opt_bool("everywhere")?.unwrap_or(false),
            },
            "connect_lobby" => {
                let lobby = d.object("lobby")?;
                let l = Data(lobby);
                let size_limit = match l.opt_u64("sizeLimit")? {
                    Some(0) => {
                        return Err(ProtocolError::bad_request("`sizeLimit` must be at least 1"))
                    }
                    n => n,
                };
                Request::ConnectLobby {
                    id: l
                        .opt_str("id")?
                        .map(|s| check_id(&s, "lobby.id").map(|_| LobbyId(s)))
                        .transpose()?,
                    token: l
                        .opt_str("token")?
                        .map(|t| check_token(&t).map(|_| t))
                        .transpose()?,
                    visibility: l.opt_bool("visibility")?.unwrap_or(false),
                    size_limit,
                    description: l
                        .opt_str("description")?
                        .map(check_description)
                        .transpose()?,
                }
            }
            "disconnect_lobby" => Request::DisconnectLobby {
                lobby: d.lobby_ref("lobby")?,
            },
            "send_message" => {
                let lobby = d.lobby_ref("lobby")?;
                let content = d.req_str("content")?;
                check_content(&content, limits)?;
                let replied = d
                    .opt_str("replied")?
                    .map(|s| check_id(&s, "replied").map(|_| MessageId(s)))
                    .transpose()?;
                Request::SendMessage {
                    lobby,
                    content,
                    replied,
                }
            }
            "received_message" | "viewed_message" => Request::Receipt {
                kind: if event == "received_message" {
                    ReceiptKind::Received
                } else {
                    ReceiptKind::Viewed
                },
                lobby: d.lobby_ref("lobby")?,
                message: MessageId(d.ref_id("message")?),
            },
            "typing_message" => Request::Typing {
                lobby: d.lobby_ref("lobby")?,
                message: match data.get("message") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(MessageId(d.ref_id("message")?)),
                },
            },
            "get_data" => Request::GetData {
                target: d.target()?,
                token: d.opt_str("token")?,
            },
            "get_all_data" => {
                let kind = d.object_type()?;
                let lobby = match kind {
                    ObjectType::Messages => Some(d.lobby_ref("lobby")?),
                    _ => None,
                };
                let limit = match d.opt_u64("limit")? {
                    None => DEFAULT_PAGE,
                    Some(n) if (1..=MAX_PAGE as u64).contains(&n) => n as usize,
                    Some(_) => return Err(ProtocolError::bad_request("`limit` must be in 1..500")),
                };
                let start = match (d.opt_str("cursor")?, d.opt_u64("after")?) {
                    (Some(_), Some(_)) => {
                        return Err(ProtocolError::bad_request(
                            "`after` and `cursor` exclude each other",
                        ))
                    }
                    (Some(c), None) => PageStart::Cursor(c),
                    (None, Some(a)) if kind == ObjectType::Messages => PageStart::After(a),
                    (None, Some(_)) => {
                        return Err(ProtocolError::bad_request(
                            "`after` applies to messages only",
                        ))
                    }
                    (None, None) => PageStart::First,
                };
                Request::GetAllData {
                    kind,
                    token: d.opt_str("token")?,
                    lobby,
                    limit,
                    start,
                }
            }
            "update_data" => {
                let target = d.target()?;
                let fields = d.object("data")?.clone();
                check_fields(&target, &fields, limits)?;
                Request::UpdateData {
                    target,
                    token: d.opt_str("token")?,
                    fields,
                }
            }
            "use_action" => {
                let target = d.target()?;
                let action = parse_action(
                    &target,
                    &d.req_str("action")?,
                    d.0.get("actionArgs"),
                    limits,
                )?;
                Request::UseAction {
                    target,
                    token: d.opt_str("token")?,
                    action,
                }
            }
            _ => Request::Custom {
                event: event.to_owned(),
                data,
            },
        })
    }
}

/// Typed access to a request's `data` object.
struct Data<'a>(&'a Map<String, Value>);

fn ill_typed(field: &str, what: &str) -> ProtocolError {
    ProtocolError::bad_request(format!("`{field}` must be {what}"))
}

impl<'a> Data<'a> {
    fn opt_str(&self, f: &str) -> Result<Option<String>, ProtocolError> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ill_typed(f, "a string")),
        }
    }
    fn req_str(&self, f: &str) -> Result<String, ProtocolError> {
        self.opt_str(f)?
            .ok_or_else(|| ProtocolError::bad_request(format!("`{f}` is required")))
    }
    fn opt_bool(&self, f: &str) -> Result<Option<bool>, ProtocolError> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ill_typed(f, "a boolean")),
        }
    }
    fn opt_u64(&self, f: &str) -> Result<Option<u64>, ProtocolError> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| ill_typed(f, "a non-negative integer")),
            Some(_) => Err(ill_typed(f, "a non-negative integer")),
        }
    }
    fn object(&self, f: &str) -> Result<&'a Map<String, Value>, ProtocolError> {
        match self.0.get(f) {
            Some(Value::Object(m)) => Ok(m),
            None | Some(Value::Null) => {
                Err(ProtocolError::bad_request(format!("`{f}` is required")))
            }
            Some(_) => Err(ill_typed(f, "an object")),
        }
    }
    /// `{"id": "..."}` at field `f`.
    fn ref_id(&self, f: &str) -> Result<String, ProtocolError> {
        let id = Data(self.object(f)?)
            .req_str("id")
            .map_err(|_| ill_typed(f, "an object with a string `id`"))?;
        check_id(&id, f)?;
        Ok(id)
    }
    fn lobby_ref(&self, f: &str) -> Result<LobbyId, ProtocolError> {
        self.ref_id(f).map(LobbyId)
    }
    fn object_type(&self) -> Result<ObjectType, ProtocolError> {
        match self.req_str("type")?.as_str() {
            "users" => Ok(ObjectType::Users),
            "lobbys" => Ok(ObjectType::Lobbys),
            "messages" => Ok(ObjectType::Messages),
            _ => Err(ill_typed("type", "one of users, lobbys, messages")),
        }
    }
    fn target(&self) -> Result<Target, ProtocolError> {
        let kind = self.object_type()?;
        let id = self.req_str("id")?;
        check_id(&id, "id")?;
        Ok(match kind {
            ObjectType::Users => Target::User(UserId(id)),
            ObjectType::Lobbys => Target::Lobby(LobbyId(id)),
            ObjectType::Messages => Target::Message(self.lobby_ref("lobby")?, MessageId(id)),
        })
    }
}

fn check_id(id: &str, field: &str) -> Result<(), ProtocolError> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(ill_typed(field, "a non-empty id of at most 256 bytes"));
    }
    Ok(())
}

fn check_token(t: &str) -> Result<(), ProtocolError> {
    if t.is_empty() || t.len() > MAX_ID_BYTES {
        return Err(ill_typed(
            "token",
            "a non-empty string of at most 256 bytes",
        ));
    }
    Ok(())
}

fn check_username(u: String) -> Result<String, ProtocolError> {
    let n = u.chars().count();
    if n == 0 || n > MAX_USERNAME_CHARS {
        return Err(ill_typed("username", "a string of 1..128 characters"));
    }
    Ok(u)
}

fn check_description(d: String) -> Result<String, ProtocolError> {
    if d.len() > MAX_DESCRIPTION_BYTES {
        return Err(ill_typed("description", "at most 4096 bytes"));
    }
    Ok(d)
}

fn check_content(c: &str, limits: &Limits) -> Result<(), ProtocolError> {
    if c.is_empty() {
        return Err(ProtocolError::bad_request("`content` must not be empty"));
    }
    if c.len() > limits.max_content_bytes {
        return Err(ProtocolError::new(
            ErrorCode::PayloadTooLarge,
            format!("`content` is over {} bytes", limits.max_content_bytes),
        ));
    }
    Ok(())
}

/// Checks an update's fields against what the type allows.
fn check_fields(
    target: &Target,
    fields: &Map<String, Value>,
    limits: &Limits,
) -> Result<(), ProtocolError> {
    if fields.is_empty() {
        return Err(ProtocolError::bad_request(
            "`data` must set at least one field",
        ));
    }
    for (k, v) in fields {
        let ok = match (target, k.as_str()) {
            (Target::User(_), "username") => match v {
                Value::String(s) => check_username(s.clone()).is_ok(),
                _ => false,
            },
            (Target::User(_) | Target::Lobby(_), "visibility") => v.is_boolean(),
            (Target::Lobby(_), "description") => {
                v.is_null() || v.as_str().is_some_and(|s| s.len() <= MAX_DESCRIPTION_BYTES)
            }
            (Target::Lobby(_), "sizeLimit") => v.is_null() || v.as_u64().is_some_and(|n| n >= 1),
            (Target::Message(..), "content") => match v {
                Value::String(s) => {
                    check_content(s, limits)?;
                    true
                }
                _ => false,
            },
            _ => {
                return Err(ProtocolError::bad_request(format!(
                    "`{k}` is unknown or read-only"
                )))
            }
        };
        if !ok {
            return Err(ProtocolError::bad_request(format!(
                "`{k}` has an invalid value"
            )));
        }
    }
    Ok(())
}

fn parse_action(
    target: &Target,
    name: &str,
    args: Option<&Value>,
    limits: &Limits,
) -> Result<Action, ProtocolError> {
    let bad = || ProtocolError::bad_request(format!("ill-typed `actionArgs` for `{name}`"));
    // Every action takes exactly one argument.
    let args = match args {
        Some(Value::Array(a)) if a.len() == 1 => a,
        _ => return Err(bad()),
    };
    let user = |v: Option<&Value>| -> Result<UserId, ProtocolError> {
        match v {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_BYTES => {
                Ok(UserId(s.clone()))
            }
            _ => Err(bad()),
        }
    };
    let users = |v: Option<&Value>| -> Result<Vec<UserId>, ProtocolError> {
        match v {
            Some(Value::Array(a)) => a.iter().map(|x| user(Some(x))).collect(),
            _ => Err(bad()),
        }
    };
    let first = args.first();
    Ok(match name {
        "setOwner" => Action::SetOwner(user(first)?),
        "setToken" => match first {
            Some(Value::Null) => Action::SetToken(None),
            Some(Value::String(s)) if check_token(s).is_ok() => Action::SetToken(Some(s.clone())),
            _ => return Err(bad()),
        },
        "setVisibility" => match first {
            Some(Value::Bool(b)) => Action::SetVisibility(*b),
            _ => return Err(bad()),
        },
        "addUser" => Action::AddUser(user(first)?),
        "addUsers" => Action::AddUsers(users(first)?),
        "deleteUser" => Action::DeleteUser(user(first)?),
        "deleteUsers" => Action::DeleteUsers(users(first)?),
        "update" => match first {
            Some(Value::Object(m)) => {
                check_fields(target, m, limits)?;
                Action::Update(m.clone())
            }
            _ => return Err(bad()),
        },
        _ => {
            return Err(ProtocolError::bad_request(format!(
                "unknown action `{name}`"
            )))
        }
    })
}

#[cfg(test)]
mod tests;
