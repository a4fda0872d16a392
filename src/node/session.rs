//! One client connection's state and its bounded outbound queue.

use crate::domain::{Origin, UserId};
use crate::protocol::OutFrame;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
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
    /// Bytes of the frames waiting in the queue.
    queued_bytes: AtomicUsize,
    /// Bound on `queued_bytes`: large frames fill memory long before the
    /// frame count bound.
    max_bytes: usize,
}

/// The receiving half, owned by the connection's writer.
pub struct OutboxReceiver {
    rx: mpsc::Receiver<OutFrame>,
    pub closer: CancellationToken,
    shared: Arc<Shared>,
}

impl OutboxReceiver {
    /// The next frame; None once every sender is gone.
    pub async fn recv(&mut self) -> Option<OutFrame> {
        let f = self.rx.recv().await?;
        self.shared
            .queued_bytes
            .fetch_sub(f.0.len(), Ordering::Relaxed);
        Some(f)
    }

    /// A frame already queued, if any.
    pub fn try_recv(&mut self) -> Option<OutFrame> {
        let f = self.rx.try_recv().ok()?;
        self.shared
            .queued_bytes
            .fetch_sub(f.0.len(), Ordering::Relaxed);
        Some(f)
    }

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

    /// Closes a connection whose socket took nothing for too long: a slow
    /// consumer, like one whose queue overflowed.
    pub fn close_stalled(&self) {
        if !self.closer.is_cancelled() {
            count_slow_consumer();
        }
        self.close(CLOSE_SLOW_CONSUMER);
    }
}

impl Outbox {
    /// A queue of at most `capacity` frames and `max_bytes` bytes.
    pub fn new(capacity: usize, max_bytes: usize) -> (Self, OutboxReceiver) {
        let (tx, rx) = mpsc::channel(capacity);
        let closer = CancellationToken::new();
        let shared = Arc::new(Shared {
            closer: closer.clone(),
            close_code: AtomicU16::new(CLOSE_NORMAL),
            kicked: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
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
        Self::new(16, 1 << 20)
    }

    /// Queues a frame; a full queue closes the connection as a slow consumer.
    pub fn send(&self, frame: OutFrame) {
        let len = frame.0.len();
        let queued = self.shared.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        let refused = if queued > self.shared.max_bytes {
            Some(true)
        } else {
            match self.tx.try_send(frame) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some(true),
                Err(mpsc::error::TrySendError::Closed(_)) => Some(false),
            }
        };
        let Some(slow) = refused else { return };
        self.shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        if slow {
            if !self.shared.closer.is_cancelled() {
                count_slow_consumer();
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

fn count_slow_consumer() {
    crate::telemetry::metrics::metrics()
        .slow_consumers
        .add(1, &[]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> OutFrame {
        OutFrame(axum::extract::ws::Utf8Bytes::from("x".repeat(n)))
    }

    #[tokio::test]
    async fn byte_bound_closes_a_slow_consumer_and_reading_frees_room() {
        let (outbox, mut rx) = Outbox::new(100, 1000);
        outbox.send(frame(400));
        outbox.send(frame(400));
        assert!(!rx.closer.is_cancelled());
        // Reading one frees its bytes.
        assert_eq!(rx.recv().await.map(|f| f.0.len()), Some(400));
        outbox.send(frame(400));
        assert!(!rx.closer.is_cancelled());
        // Over 1000 queued bytes: closed as a slow consumer.
        outbox.send(frame(400));
        assert!(rx.closer.is_cancelled());
        assert_eq!(rx.code(), CLOSE_SLOW_CONSUMER);
    }

    #[tokio::test]
    async fn frame_bound_closes_a_slow_consumer() {
        let (outbox, rx) = Outbox::new(2, 1 << 20);
        outbox.send(frame(1));
        outbox.send(frame(1));
        assert!(!rx.closer.is_cancelled());
        outbox.send(frame(1));
        assert_eq!(rx.code(), CLOSE_SLOW_CONSUMER);
    }
}
