//! Storage and fan-out behind one trait, so one node works alone in memory
//! and many nodes work together through Redis with the same behaviour.
//!
//! # Guarantees every engine gives
//!
//! - Each mutating call checks its access rule and applies its change and
//!   the publish of the resulting [`Event`] atomically: either both happen
//!   or neither, and a refusal ([`EngineError::Refused`]) changed nothing.
//! - Events of one lobby reach every node in commit order; a node's sink
//!   receives all events in one total order consistent with commits.
//! - Messages get `seq` 1, 2, 3, … per lobby with no gaps.
//! - A node receives the events of a lobby once it has subscribed to it
//!   (`subscribe_lobby` returns only once the subscription is live) and
//!   every user event (presence, membership, profile, kick) always.
//! - While the store is unreachable calls fail with
//!   [`EngineError::Unavailable`] within about two seconds.

pub mod memory;
pub mod redis;

use crate::domain::{
    DomainError, Envelope, LobbyId, LobbyRecord, LobbySnapshot, MessageId, MessageRecord, Origin,
    PresenceKind, ReceiptKind, UserId, UserRecord, UserSnapshot,
};
use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// Where an engine delivers the events this node should see, in order.
pub type EventSink = mpsc::UnboundedSender<Envelope>;

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The domain rules refuse the request; nothing changed.
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// The backing store cannot be reached; nothing changed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data.
    #[error("internal: {0}")]
    Internal(String),
}

/// Shorthand for engine results.
pub type EngineResult<T> = Result<T, EngineError>;

/// Who performs a request: the user and the token it presented, if any.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user: &'a UserId,
    pub token: Option<&'a str>,
    /// The requesting connection, skipped by the broadcast.
    pub origin: &'a Origin,
}

/// What `connect_lobby` asks for; the creation fields apply only when the
/// lobby does not exist yet.
#[derive(Debug, Clone)]
pub struct LobbySpec {
    pub id: LobbyId,
    /// Presented to join; becomes the lobby token when creating.
    pub token: Option<String>,
    /// The token to use when creating and none was presented.
    pub generated_token: String,
    pub visibility: bool,
    pub size_limit: Option<u64>,
    pub description: Option<String>,
}

/// The result of `connect_lobby`.
#[derive(Debug, Clone)]
pub struct JoinOutcome {
    pub lobby: LobbyRecord,
    /// The caller created the lobby.
    pub created: bool,
    /// The caller was not a member before (a broadcast was published).
    pub joined: bool,
}

/// A lobby change by `use_action` / `update_data`.
#[derive(Debug, Clone)]
pub enum LobbyChange {
    /// Needs `setOwner`; the target must exist. Publishes `LobbyUpdated`
    /// with `{"owner": {"id"}}`.
    SetOwner(UserId),
    /// Needs `setToken`; publishes nothing.
    SetToken(String),
    /// Needs `addUser` / `addUsers`; every target must exist; all or
    /// nothing against `sizeLimit`; publishes `MemberJoined` per new member.
    AddUsers(Vec<UserId>),
    /// Needs `deleteUser` / `deleteUsers`; publishes `MemberLeft` per
    /// removed member; every target must exist (`NotFound`); non-members
    /// are skipped silently.
    DeleteUsers(Vec<UserId>),
    /// Needs `setVisibility` (when only visibility) or `update`; fields are
    /// wire names (`description`, `sizeLimit`, `visibility`) with validated
    /// values (null clears description / sizeLimit). Publishes
    /// `LobbyUpdated` with exactly these fields.
    Update {
        fields: Map<String, Value>,
        needs: crate::domain::Permission,
    },
}

/// A user change, by the user itself.
#[derive(Debug, Clone)]
pub enum UserChange {
    /// New token hash; publishes nothing.
    SetTokenHash(String),
    /// Fields `username`, `visibility` with validated values; publishes
    /// `UserUpdated` to the user and its co-members.
    Update(Map<String, Value>),
}

/// The engine: every state change and read the node needs, in domain
/// terms. Redis keys, scripts and channels never leave the implementation.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> EngineResult<()>;

    // ---- users ----

    /// Creates a user with the given token hash.
    async fn create_user(
        &self,
        id: &UserId,
        username: Option<&str>,
        token_hash: &str,
        now: i64,
    ) -> EngineResult<UserRecord>;
    /// The user whose token hashes to `token_hash`.
    async fn user_by_token(&self, token_hash: &str) -> EngineResult<Option<UserId>>;
    /// A user with its lobbies and presence.
    async fn user(&self, id: &UserId) -> EngineResult<Option<UserSnapshot>>;
    /// Applies a change by `actor` to its own user (refused with
    /// `Forbidden` for anyone else); returns the new record.
    async fn change_user(
        &self,
        actor: Actor<'_>,
        change: UserChange,
        now: i64,
    ) -> EngineResult<UserRecord>;
    /// Ids of every user the caller can see (itself, co-members, visible
    /// users, the user whose token hash is given), sorted, greater than `after`.
    async fn visible_users(
        &self,
        caller: &UserId,
        token_hash: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> EngineResult<Vec<UserId>>;

    // ---- lobbies ----

    /// Creates the lobby if absent (caller becomes its only owner) or joins
    /// it if allowed: refused `Forbidden` when not visible, not owner, not
    /// member and wrong/no token; `LobbyFull` past `sizeLimit` for a new
    /// member. Publishes `MemberJoined` when the caller was not a member.
    async fn connect_lobby(
        &self,
        actor: Actor<'_>,
        spec: LobbySpec,
        now: i64,
    ) -> EngineResult<JoinOutcome>;
    /// Removes the caller from the lobby; non-members are refused by
    /// `non_member_refusal`, unknown lobbies `NotFound`. Publishes `MemberLeft`.
    async fn leave_lobby(&self, actor: Actor<'_>, lobby: &LobbyId, now: i64) -> EngineResult<()>;
    /// A lobby with its members' names and presence.
    async fn lobby(&self, id: &LobbyId) -> EngineResult<Option<LobbySnapshot>>;
    /// The lobby a token opens, if any.
    async fn lobby_by_token(&self, token: &str) -> EngineResult<Option<LobbyId>>;
    /// Applies a lobby change after checking the actor's role on the lobby
    /// (`NotFound` if it cannot see it, `Forbidden` if it can but may not).
    async fn change_lobby(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        change: LobbyChange,
        now: i64,
    ) -> EngineResult<LobbyRecord>;
    /// Ids of every lobby the caller can see (member, owner, visible, the
    /// one the token opens), sorted, greater than `after`.
    async fn visible_lobbies(
        &self,
        caller: &UserId,
        token: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> EngineResult<Vec<LobbyId>>;

    // ---- messages ----

    /// Appends a message with the next seq; caller must be a member;
    /// `replied` must name a message of the same lobby (`NotFound`).
    /// Publishes `Message`.
    async fn append_message(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        id: &MessageId,
        content: &str,
        replied: Option<&MessageId>,
        now: i64,
    ) -> EngineResult<MessageRecord>;
    /// One message of a lobby (no access check; the node checks membership).
    async fn message(&self, lobby: &LobbyId, id: &MessageId)
        -> EngineResult<Option<MessageRecord>>;
    /// The lobby's highest message seq (0: none).
    async fn last_seq(&self, lobby: &LobbyId) -> EngineResult<u64>;
    /// Messages with seq greater than `after`, in seq order, at most `limit`.
    async fn messages_after(
        &self,
        lobby: &LobbyId,
        after: u64,
        limit: usize,
    ) -> EngineResult<Vec<MessageRecord>>;
    /// Records a receipt; caller must be a member; `viewed` also records
    /// `received`. Returns whether it was the first time (then publishes
    /// `Receipt`).
    async fn record_receipt(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: &MessageId,
        kind: ReceiptKind,
    ) -> EngineResult<bool>;
    /// Publishes `Typing`; caller must be a member; the message, if named,
    /// must be in the lobby.
    async fn typing(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: Option<&MessageId>,
    ) -> EngineResult<()>;
    /// Sets a message's content; caller must be a member and its author.
    /// Publishes `MessageUpdated`.
    async fn change_message(
        &self,
        actor: Actor<'_>,
        lobby: &LobbyId,
        message: &MessageId,
        content: &str,
        now: i64,
    ) -> EngineResult<MessageRecord>;

    // ---- presence and fan-out ----

    /// Counts a new live connection of the user on this node; publishes
    /// `Presence{Login}` when it is the user's first anywhere.
    async fn connection_up(&self, user: &UserId, origin: &Origin) -> EngineResult<()>;
    /// Counts a connection gone; publishes `Presence{kind}` when it was the
    /// user's last anywhere.
    async fn connection_down(&self, user: &UserId, kind: PresenceKind) -> EngineResult<()>;
    /// Publishes `Kick` so every connection of the user logs out.
    async fn kick(&self, user: &UserId, origin: &Origin) -> EngineResult<()>;
    /// Starts receiving the lobby's events; returns once live.
    async fn subscribe_lobby(&self, lobby: &LobbyId) -> EngineResult<()>;
    /// Stops receiving the lobby's events.
    async fn unsubscribe_lobby(&self, lobby: &LobbyId) -> EngineResult<()>;
    /// Removes this node's presence (clean shutdown). Users left with no
    /// connection get `disconnect` only if they have not reconnected
    /// elsewhere within `presence_grace_ms`, so a rolling restart does not
    /// flap their presence.
    async fn shutdown(&self, presence_grace_ms: u64);

    /// Changes each time the fan-out reconnected and re-subscribed: lobby
    /// events published meanwhile were lost, and the node catches up on
    /// messages from history. `None` for engines that never lose events.
    fn resubscribed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Whether this node receives events now. While it does not, requests
    /// that change state answer `unavailable`: their broadcasts, and
    /// others', could be missed here.
    fn fanout_live(&self) -> bool {
        true
    }

    /// Fan-out reconnects so far.
    fn reconnects(&self) -> u64 {
        0
    }
}

/// Deliver to the sink; a closed sink means the node is shutting down.
pub(crate) fn deliver(sink: &EventSink, origin: Option<&Origin>, event: crate::domain::Event) {
    let _ = sink.send(Envelope {
        origin: origin.cloned(),
        event,
    });
}
