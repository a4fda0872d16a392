//! Typed identifiers, so a lobby id can never be passed where a user id is
//! expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh random id (UUID v4), for objects the server creates.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// The id as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A user: created by `login` without a token.
    UserId
);
string_id!(
    /// A lobby (room): created by the first `connect_lobby` naming it.
    LobbyId
);
string_id!(
    /// A message, unique within the whole deployment.
    MessageId
);
string_id!(
    /// The connection that caused an event (`<node>/<conn>`), so that the
    /// broadcast skips it: it already has the reply.
    Origin
);
