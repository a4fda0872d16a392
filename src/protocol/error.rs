//! Wire error codes and the one place every layer's error maps to them.

use crate::domain::DomainError;
use crate::engine::EngineError;

/// An `error` frame's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    UnknownEvent,
    Unauthenticated,
    Conflict,
    NotFound,
    Forbidden,
    LobbyFull,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::LobbyFull => "lobby_full",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A request's failure as the client sees it: a code and human text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    /// An error with a code and text.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `bad_request` with a reason.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl From<DomainError> for ProtocolError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => Self::new(ErrorCode::NotFound, "no such object"),
            DomainError::Forbidden => Self::new(ErrorCode::Forbidden, "not allowed"),
            DomainError::LobbyFull => Self::new(ErrorCode::LobbyFull, "the lobby is full"),
            DomainError::BadRequest(m) => Self::bad_request(m),
        }
    }
}

impl From<EngineError> for ProtocolError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Refused(d) => d.into(),
            EngineError::Unavailable(_) => Self::new(
                ErrorCode::Unavailable,
                "the store is unavailable; nothing was changed",
            ),
            // Logged by the caller with the request; hidden from the client.
            EngineError::Internal(_) => Self::new(ErrorCode::Internal, "internal error"),
        }
    }
}
