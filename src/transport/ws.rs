//! The WebSocket endpoint: upgrade with frame limits, then a reader loop
//! (parse, rate-limit, handle in order) and a writer task (batched writes,
//! pings, close codes) per connection.

use crate::node::session::{
    Outbox, OutboxReceiver, CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_SLOW_CONSUMER,
};
use crate::node::Node;
use crate::protocol::frame::{IncomingFrame, ShapeLimits};
use crate::protocol::{ErrorCode, OutFrame, ProtocolError};
use crate::server::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header::ORIGIN;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Close code for a message over `max_frame_bytes`.
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a client that stopped answering pings.
const CLOSE_PING_TIMEOUT: u16 = 1011;
/// How long a closing connection (other than a slow consumer) may take to
/// write its last frames and the close frame before its socket is dropped.
const CLOSE_WRITE_LIMIT: Duration = Duration::from_secs(2);

/// `GET /ws`.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    State(app): State<AppState>,
) -> Response {
    if app.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    let config = &app.node.config;
    if let (Some(allowed), Some(origin)) = (&config.allowed_origins, headers.get(ORIGIN)) {
        if !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) {
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    let Some(slot) = app.admission.try_admit(config.max_connections) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let max = app.node.config.max_frame_bytes;
    // A small read buffer: tungstenite's default costs 128 KiB per
    // connection. (Its write buffer is a threshold that grows on demand, so
    // the default lets a busy connection's queued frames go out in one write.)
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(1024)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let tracker = app.connections.clone();
            tracker.track_future(serve(app, socket)).await
        })
}

/// A token bucket: `rate` per second, up to `burst`.
struct RateLimit {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            tokens: burst as f64,
            rate: rate as f64,
            burst: burst as f64,
            last: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn millis_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

async fn serve(app: AppState, socket: WebSocket) {
    let node = app.node.clone();
    let (outbox, out_rx) = Outbox::new(
        node.config.max_outbound_frames,
        node.config.max_outbound_bytes,
    );
    let mut session = node.open_session(outbox.clone());
    tracing::info!(conn = session.id, "connection opened");
    let gauge = &crate::telemetry::metrics::metrics().connections_open;
    gauge.add(1, &[]);
    let (sink, stream) = socket.split();
    let epoch = Instant::now();
    let last_pong = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_loop(
        sink,
        out_rx,
        node.clone(),
        epoch,
        last_pong.clone(),
    ));
    read_loop(
        &node,
        &mut session,
        stream,
        &outbox,
        &app.closing,
        epoch,
        &last_pong,
    )
    .await;
    node.close_session(&mut session).await;
    outbox.close(crate::node::session::CLOSE_NORMAL);
    let _ = writer.await;
    gauge.add(-1, &[]);
    tracing::info!(
        conn = session.id,
        code = outbox.close_code(),
        "connection closed"
    );
}

async fn read_loop(
    node: &Node,
    session: &mut crate::node::session::Session,
    mut stream: SplitStream<WebSocket>,
    outbox: &Outbox,
    shutdown: &CancellationToken,
    epoch: Instant,
    last_pong: &AtomicU64,
) {
    let shape = ShapeLimits {
        max_depth: node.config.max_json_depth,
        max_values: node.config.max_json_values,
    };
    let mut limiter = RateLimit::new(node.config.rate_limit_per_s, node.config.rate_limit_burst);
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = outbox.closed() => return,
            _ = shutdown.cancelled() => {
                outbox.close(CLOSE_GOING_AWAY);
                return;
            }
        };
        let msg = match msg {
            None => return,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long") || text.contains("Space limit") {
                    outbox.close(CLOSE_TOO_BIG);
                }
                tracing::debug!(conn = session.id, error = %text, "read failed");
                return;
            }
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                let e = ProtocolError::bad_request("binary frames are not accepted");
                outbox.send(OutFrame::error(&e, None, None));
                continue;
            }
            Message::Pong(_) => {
                last_pong.store(millis_since(epoch).max(1), Ordering::Relaxed);
                continue;
            }
            Message::Ping(_) => continue,
            Message::Close(_) => return,
        };
        let reply = match IncomingFrame::parse_limited(text.as_str(), shape) {
            Err(e) => OutFrame::error(&e.error, e.event.as_deref(), e.ack),
            Ok(frame) if !limiter.allow() => {
                let e = ProtocolError::new(ErrorCode::RateLimited, "too many requests");
                OutFrame::error(&e, Some(&frame.event), frame.ack)
            }
            // Boxed: an idle connection's task stays small; the state of a
            // request lives only while it runs.
            Ok(frame) => Box::pin(node.handle(session, frame)).await,
        };
        outbox.send(reply);
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut out: OutboxReceiver,
    node: Arc<Node>,
    epoch: Instant,
    last_pong: Arc<AtomicU64>,
) {
    let interval = Duration::from_millis(node.config.ping_interval_ms);
    let timeout = Duration::from_millis(node.config.ping_timeout_ms);
    let linger = Duration::from_micros(node.config.write_linger_us);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut ping_sent: Option<(tokio::time::Instant, u64)> = None;
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let closer = out.closer.clone();
    let code = loop {
        let deadline = ping_sent.map(|(at, _)| at + timeout).unwrap_or(far);
        tokio::select! {
            biased;
            _ = closer.cancelled() => break None,
            f = out.recv() => {
                let Some(f) = f else { break None };
                // A write waits for the client to read. It must not wait
                // forever: a close (the queue overflowed, a kick, the node
                // drains) wins over it (a frame it was writing is then
                // dropped), and a client that does not take one batch
                // within a ping timeout is not keeping up.
                // (The write is polled before the timer, so a write that
                // completes at once never registers it.)
                tokio::select! {
                    biased;
                    _ = closer.cancelled() => break None,
                    ok = write_batch(&mut sink, &mut out, f, linger) => if !ok {
                        out.close(CLOSE_NORMAL);
                        return;
                    },
                    _ = tokio::time::sleep(timeout) => {
                        out.close_stalled();
                        break None;
                    }
                }
            }
            _ = ping.tick() => {
                // An answered ping no longer holds back the next one.
                if ping_sent.is_some_and(|(_, ms)| last_pong.load(Ordering::Relaxed) >= ms.max(1)) {
                    ping_sent = None;
                }
                if ping_sent.is_none() {
                    let at = millis_since(epoch);
                    ping_sent = Some((tokio::time::Instant::now(), at));
                    tokio::select! {
                        biased;
                        _ = closer.cancelled() => break None,
                        r = sink.send(Message::Ping(Default::default())) => if r.is_err() {
                            out.close(CLOSE_NORMAL);
                            return;
                        },
                        _ = tokio::time::sleep(timeout) => {
                            out.close_stalled();
                            break None;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline), if ping_sent.is_some() => {
                let sent_ms = ping_sent.map(|(_, ms)| ms).unwrap_or(0);
                if last_pong.load(Ordering::Relaxed) >= sent_ms.max(1) {
                    ping_sent = None;
                } else {
                    out.close(CLOSE_PING_TIMEOUT);
                    break Some(CLOSE_PING_TIMEOUT);
                }
            }
        }
    };
    // Closing: write what is already queued (a kick's `logout`), then the
    // close frame; bounded, since the client may not be reading. A slow
    // consumer gets a ping timeout for it, so one that resumes reading
    // still learns why (1008). Dropping the sink then closes the socket.
    let code = code.unwrap_or_else(|| out.code());
    let frame = CloseFrame {
        code,
        reason: Default::default(),
    };
    let limit = if code == CLOSE_SLOW_CONSUMER {
        timeout
    } else {
        CLOSE_WRITE_LIMIT
    };
    let _ = tokio::time::timeout(limit, async {
        for _ in 0..out.queued() {
            let Some(f) = out.try_recv() else { break };
            if sink.feed(Message::Text(f.0)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

/// Writes `first` and what is queued behind it when the batch begins, with
/// one flush: one write for many frames when the connection is busy. The
/// batch does not grow while it waits on the socket, so the stall timeout
/// measures one bounded batch. With a linger, also takes what arrives in
/// that window: fewer writes (the main cost per delivery) for a bounded
/// delay. False when the connection failed.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    out: &mut OutboxReceiver,
    first: OutFrame,
    linger: Duration,
) -> bool {
    let behind = out.queued();
    if sink.feed(Message::Text(first.0)).await.is_err() {
        return false;
    }
    for _ in 0..behind {
        let Some(f) = out.try_recv() else { break };
        if sink.feed(Message::Text(f.0)).await.is_err() {
            return false;
        }
    }
    if !linger.is_zero() {
        let until = tokio::time::Instant::now() + linger;
        while let Ok(Some(f)) = tokio::time::timeout_at(until, out.recv()).await {
            if sink.feed(Message::Text(f.0)).await.is_err() {
                return false;
            }
        }
    }
    sink.flush().await.is_ok()
}
