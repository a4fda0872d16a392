//! Why a domain operation was refused. Every engine reports refusals with
//! this enum so the protocol layer maps them to wire codes in one place.

/// A request the domain rules refuse; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The object does not exist or the caller may not see it.
    #[error("not found")]
    NotFound,
    /// The caller can see the object but may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Joining or adding would exceed the lobby's size limit.
    #[error("lobby is full")]
    LobbyFull,
    /// The request is well-formed JSON but not a valid request.
    #[error("{0}")]
    BadRequest(String),
}
