//! One client connection's state and its bounded outbound queue.

use crate::domain::{Origin, UserId};
use crate::protocol::OutFrame;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A connection's number, unique within the node.
pub type ConnId = u64;

/// WebSocket close code for a client that does not keep up (policy).
pub const CLOSE_SLOW_CONSUMER: u16 = 1008;
/// WebSocket close code for a normal close (kicked by `logout everywhere`).
pub const CLOSE_NORMAL: u16 = 1000;
/// WebSocket close code while the node shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The sending half of a connection: frames queue here and the writer
/// task writes them. Bounded, so a client that stops reading is closed
/// instead of growing memory or delaying anyone else.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<OutFrame>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    closer: CancellationToken,
    close_code: AtomicU16,
    /// Set by `logout everywhere`: the close counts as a logout.
    kicked: AtomicBool,
}

/// The receiving half, owned by the connection's writer.
pub struct OutboxReceiver {
    pub rx: mpsc::Receiver<OutFrame>,
    pub closer: CancellationToken,
    shared: Arc<Shared>,
}

impl OutboxReceiver {
    /// The close code asked for.
    pub fn code(&self) -> u16 {
        self.shared.close_code.load(Ordering::Relaxed)
    }

    /// Closes from the writer's side (ping timeout), waking the reader.
    pub fn close(&self, code: u16) {
        if !self.closer.is_cancelled() {
            self.shared.close_code.store(code, Ordering::Relaxed);
            self.closer.cancel();
        }
    }
}

impl Outbox {
    /// A queue of `capacity` frames.
    pub fn new(capacity: usize) -> (Self, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(capacity);
        let closer = CancellationToken::new();
        let shared = Arc::new(Shared {
            closer: closer.clone(),
            close_code: AtomicU16::new(CLOSE_NORMAL),
            kicked: AtomicBool::new(false),
        });
        (
            Self {
                tx,
                shared: shared.clone(),
            },
            OutboxReceiver { rx, closer, shared },
        )
    }

    #[cfg(test)]
    pub fn for_test() -> (Self, OutboxReceiver) {
        Self::new(16)
    }

    /// Queues a frame; a full queue closes the connection as a slow consumer.
    pub fn send(&self, frame: OutFrame) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame) {
            if !self.shared.closer.is_cancelled() {
                crate::telemetry::metrics::metrics()
                    .slow_consumers
                    .add(1, &[]);
            }
            self.close(CLOSE_SLOW_CONSUMER);
        }
    }

    /// Asks the writer to close the connection with `code`; the first
    /// code asked for wins.
    pub fn close(&self, code: u16) {
        if !self.shared.closer.is_cancelled() {
            self.shared.close_code.store(code, Ordering::Relaxed);
            self.shared.closer.cancel();
        }
    }

    /// Sends the ack-less `logout` and closes: `logout everywhere`.
    pub fn kick(&self, frame: OutFrame) {
        self.shared.kicked.store(true, Ordering::Relaxed);
        self.send(frame);
        self.close(CLOSE_NORMAL);
    }

    /// Whether the connection was closed by `logout everywhere`.
    pub fn was_kicked(&self) -> bool {
        self.shared.kicked.load(Ordering::Relaxed)
    }

    /// The close code asked for.
    pub fn close_code(&self) -> u16 {
        self.shared.close_code.load(Ordering::Relaxed)
    }

    /// Resolves when the connection is asked to close.
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.shared.closer.cancelled()
    }
}

/// What the connection knows about its login.
#[derive(Debug, Default)]
pub struct Login {
    pub user: Option<UserId>,
    /// The user's token as this connection last learned it (login or
    /// setToken), to show in its own private view; users' tokens are
    /// stored hashed.
    pub token: Option<String>,
}

/// A connection as the request handlers see it.
pub struct Session {
    pub id: ConnId,
    pub origin: Origin,
    pub outbox: Outbox,
    pub login: Login,
}

impl Session {
    /// The logged-in user; handlers run only after login.
    pub fn user(&self) -> &UserId {
        self.login.user.as_ref().expect("handlers run after login")
    }
}
