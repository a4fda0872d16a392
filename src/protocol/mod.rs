//! The wire protocol v1: frames in and out, typed requests parsed at the
//! edge, and error codes. Event names exist only in this module.

pub mod error;
pub mod frame;
pub mod request;

pub use error::{ErrorCode, ProtocolError};
pub use frame::{IncomingFrame, OutFrame};
pub use request::{ObjectType, Request, Target};
