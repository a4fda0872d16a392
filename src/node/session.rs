//! One client connection's state and its bounded outbound queue.

use crate::domain::{Origin, UserId};
use crate::protocol::OutFrame;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
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
///
/// A `VecDeque` behind a mutex rather than a channel: an idle connection's
/// empty queue allocates nothing (a tokio channel allocates a 32-slot block
/// up front, about 1 KiB per connection), and the frame and byte bounds
/// are checked under the same lock as the push.
#[derive(Clone, Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer after a push (a stored permit if it is not waiting).
    pushed: Notify,
    closer: CancellationToken,
    /// Set once, by the first close: it alone sets the code and counts a
    /// slow consumer.
    closed: AtomicBool,
    close_code: AtomicU16,
    /// Set by `logout everywhere`: the close counts as a logout.
    kicked: AtomicBool,
    max_frames: usize,
    /// Bound on queued bytes: large frames fill memory long before the
    /// frame count bound.
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<OutFrame>,
    /// Bytes of the frames in `frames`.
    bytes: usize,
    /// The writer is gone: frames are dropped, as nobody will write them.
    gone: bool,
}

/// Capacity an emptied queue may keep; a burst's larger buffer is freed.
const KEPT_CAPACITY: usize = 64;

/// The receiving half, owned by the connection's writer.
pub struct OutboxReceiver {
    pub closer: CancellationToken,
    shared: Arc<Shared>,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first close wins: its code stays, and a slow consumer is
    /// counted once however many paths notice it.
    fn close(&self, code: u16, slow: bool) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close_code.store(code, Ordering::Release);
        if slow {
            crate::telemetry::metrics::metrics()
                .slow_consumers
                .add(1, &[]);
        }
        self.closer.cancel();
    }
}

impl OutboxReceiver {
    /// The next frame, waiting for one (never None: the writer ends on
    /// its close token, not on an empty queue).
    pub async fn recv(&mut self) -> Option<OutFrame> {
        loop {
            if let Some(f) = self.try_recv() {
                return Some(f);
            }
            self.shared.pushed.notified().await;
        }
    }

    /// A frame already queued, if any.
    pub fn try_recv(&mut self) -> Option<OutFrame> {
        let mut q = self.shared.queue();
        let f = q.frames.pop_front()?;
        q.bytes -= f.0.len();
        if q.frames.is_empty() && q.frames.capacity() > KEPT_CAPACITY {
            q.frames = VecDeque::new();
        }
        Some(f)
    }

    /// Frames queued now: what a closing writer still writes, so frames
    /// pushed meanwhile cannot keep it from its close frame.
    pub fn queued(&self) -> usize {
        self.shared.queue().frames.len()
    }

    /// The close code asked for.
    pub fn code(&self) -> u16 {
        self.shared.close_code.load(Ordering::Acquire)
    }

    /// Closes from the writer's side (ping timeout, write error), waking
    /// the reader.
    pub fn close(&self, code: u16) {
        self.shared.close(code, false);
    }

    /// Closes a connection whose socket did not take a write in time: a
    /// slow consumer, like one whose queue overflowed.
    pub fn close_stalled(&self) {
        self.shared.close(CLOSE_SLOW_CONSUMER, true);
    }
}

impl Drop for OutboxReceiver {
    /// Frames queued or sent after the writer is gone are dropped, not
    /// held until the bound and then miscounted as a slow consumer.
    fn drop(&mut self) {
        let mut q = self.shared.queue();
        q.gone = true;
        q.frames = VecDeque::new();
        q.bytes = 0;
    }
}

impl Outbox {
    /// A queue of at most `max_frames` frames and `max_bytes` bytes.
    pub fn new(max_frames: usize, max_bytes: usize) -> (Self, OutboxReceiver) {
        let closer = CancellationToken::new();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            pushed: Notify::new(),
            closer: closer.clone(),
            closed: AtomicBool::new(false),
            close_code: AtomicU16::new(CLOSE_NORMAL),
            kicked: AtomicBool::new(false),
            max_frames,
            max_bytes,
        });
        (
            Self {
                shared: shared.clone(),
            },
            OutboxReceiver { closer, shared },
        )
    }

    #[cfg(test)]
    pub fn for_test() -> (Self, OutboxReceiver) {
        Self::new(16, 1 << 20)
    }

    /// Queues a frame; a full queue closes the connection as a slow consumer.
    /// Once the writer is gone, frames are dropped.
    pub fn send(&self, frame: OutFrame) {
        {
            let mut q = self.shared.queue();
            if q.gone {
                return;
            }
            let len = frame.0.len();
            if q.frames.len() < self.shared.max_frames && q.bytes + len <= self.shared.max_bytes {
                q.bytes += len;
                q.frames.push_back(frame);
                drop(q);
                self.shared.pushed.notify_one();
                return;
            }
        }
        self.shared.close(CLOSE_SLOW_CONSUMER, true);
    }

    /// Asks the writer to close the connection with `code`; the first
    /// code asked for wins.
    pub fn close(&self, code: u16) {
        self.shared.close(code, false);
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
        self.shared.close_code.load(Ordering::Acquire)
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
    async fn a_waiting_writer_wakes_for_a_push_and_a_push_before_waiting_is_kept() {
        let (outbox, mut rx) = Outbox::for_test();
        outbox.send(frame(3));
        assert_eq!(rx.recv().await.map(|f| f.0.len()), Some(3));
        let waiting = tokio::spawn(async move { rx.recv().await.map(|f| f.0.len()) });
        tokio::task::yield_now().await;
        outbox.send(frame(5));
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), waiting).await;
        assert_eq!(got.expect("woken").unwrap(), Some(5));
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_burst_frees_its_buffer() {
        let (outbox, mut rx) = Outbox::new(1000, 1 << 20);
        for n in 1..=500 {
            outbox.send(frame(n));
        }
        for n in 1..=500 {
            assert_eq!(rx.try_recv().map(|f| f.0.len()), Some(n));
        }
        assert!(rx.try_recv().is_none());
        assert!(rx.shared.queue().frames.capacity() <= KEPT_CAPACITY);
        assert_eq!(rx.shared.queue().bytes, 0);
    }

    #[tokio::test]
    async fn the_first_close_wins_and_a_gone_writer_drops_frames() {
        let (outbox, rx) = Outbox::new(2, 1 << 20);
        outbox.close(CLOSE_GOING_AWAY);
        rx.close_stalled();
        outbox.send(frame(1));
        outbox.send(frame(1));
        outbox.send(frame(1));
        assert_eq!(outbox.close_code(), CLOSE_GOING_AWAY);
        drop(rx);
        outbox.send(frame(1));
        assert_eq!(outbox.shared.queue().frames.len(), 0);
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
