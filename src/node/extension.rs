//! Application-defined events (the original package's "handlers"): an
//! event name the protocol does not define goes to a registered handler.

use crate::domain::UserId;
use crate::protocol::ProtocolError;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What a handler gets besides the request data.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// The authenticated caller.
    pub user: UserId,
    /// The event name, for handlers registered under several names.
    pub event: String,
}

/// A handler: the reply's `data`, or a protocol error.
pub type EventHandler = Arc<
    dyn Fn(EventContext, Map<String, Value>) -> BoxFuture<'static, Result<Value, ProtocolError>>
        + Send
        + Sync,
>;

/// The registered handlers, by event name.
#[derive(Default, Clone)]
pub struct Extensions {
    handlers: HashMap<String, EventHandler>,
}

impl Extensions {
    /// Registers `handler` for `event`.
    pub fn insert(&mut self, event: impl Into<String>, handler: EventHandler) {
        self.handlers.insert(event.into(), handler);
    }

    /// The handler for an event, if any.
    pub fn get(&self, event: &str) -> Option<&EventHandler> {
        self.handlers.get(event)
    }
}
