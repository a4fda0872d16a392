//! The chat domain: identifiers, stored records, access rules and the views
//! a caller may see. Pure code with no I/O, shared by every engine so that
//! memory and Redis decide access the same way.

pub mod access;
pub mod error;
pub mod event;
pub mod ids;
pub mod records;
pub mod token;
pub mod view;

pub use access::{AccessLevel, LobbyRole, Permission};
pub use error::DomainError;
pub use event::{Envelope, Event, PresenceKind, ReceiptKind};
pub use ids::{LobbyId, MessageId, Origin, UserId};
pub use records::{LobbyRecord, LobbySnapshot, Member, MessageRecord, UserRecord, UserSnapshot};

/// Milliseconds since the Unix epoch: the unit of every timestamp on the wire.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
