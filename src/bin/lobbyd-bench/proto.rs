//! The two wire protocols the generator speaks: lobbyd protocol v1 and, for
//! the comparison, Socket.IO 4 (Engine.IO v4 over a plain WebSocket, against
//! `bench/socketio/server.js`, which implements the same three events).
//!
//! Message content is `LB1:<sched_ns>:<send_ns>:` padded with `x` to the
//! payload size: the scheduled and the actual send time in nanoseconds since
//! the generator's shared start `Instant`. Incoming frames are classified by
//! substring search, not a full JSON decode: only our own message frames
//! contain the `LB1:` marker, and of those only a reply carries `"ack":`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::net::Ws;

pub const MARKER: &str = "LB1:";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// lobbyd protocol v1 (JSON frames with `event`/`data`/`ack`).
    Lobbyd,
    /// Socket.IO 4 / Engine.IO 4 over WebSocket (bench/socketio/server.js).
    Socketio,
}

/// What an incoming text frame is, as far as the benchmark cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// One of our messages: the sender's reply (`reply`) or a broadcast.
    Msg {
        reply: bool,
        sched_ns: u64,
        send_ns: u64,
    },
    /// An error reply with this code.
    Error(String),
    /// Engine.IO ping (`2`): must be answered with `3`.
    EioPing,
    Other,
}

impl Proto {
    /// The URL to connect to for a server base URL.
    pub fn url(self, base: &str) -> String {
        match self {
            Proto::Lobbyd => base.to_string(),
            Proto::Socketio if base.contains("/socket.io") => base.to_string(),
            Proto::Socketio => {
                let b = base.trim_end_matches('/');
                let b = b.strip_suffix("/ws").unwrap_or(b);
                format!("{b}/socket.io/?EIO=4&transport=websocket")
            }
        }
    }

    /// After the WebSocket handshake: Socket.IO needs its namespace connect.
    pub async fn handshake(self, ws: &mut Ws, timeout: Duration) -> Result<(), String> {
        if self == Proto::Lobbyd {
            return Ok(());
        }
        // Engine.IO open packet "0{...}", then Socket.IO CONNECT "40".
        let open = next_text(ws, timeout).await?;
        if !open.starts_with('0') {
            return Err(format!("expected engine.io open, got {open:.80}"));
        }
        ws.send(Message::text("40"))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let t = next_text(ws, timeout).await?;
            if t.starts_with("40") {
                return Ok(());
            }
            if t == "2" {
                ws.send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            return Err(format!("expected socket.io connect, got {t:.80}"));
        }
    }

    pub fn login(self, username: &str, ack: u64) -> String {
        match self {
            Proto::Lobbyd => {
                format!(r#"{{"event":"login","data":{{"username":"{username}"}},"ack":{ack}}}"#)
            }
            Proto::Socketio => format!(r#"42{ack}["login",{{"username":"{username}"}}]"#),
        }
    }

    pub fn join(self, lobby: &str, ack: u64) -> String {
        match self {
            Proto::Lobbyd => format!(
                r#"{{"event":"connect_lobby","data":{{"lobby":{{"id":"{lobby}","visibility":true}}}},"ack":{ack}}}"#
            ),
            Proto::Socketio => format!(
                r#"42{ack}["connect_lobby",{{"lobby":{{"id":"{lobby}","visibility":true}}}}]"#
            ),
        }
    }

    /// A `send_message` request; `content` must be plain ASCII without
    /// quotes or backslashes (ours is).
    pub fn send_message(self, lobby: &str, content: &str, ack: u64) -> String {
        match self {
            Proto::Lobbyd => format!(
                r#"{{"event":"send_message","data":{{"lobby":{{"id":"{lobby}"}},"content":"{content}"}},"ack":{ack}}}"#
            ),
            Proto::Socketio => format!(
                r#"42{ack}["send_message",{{"lobby":{{"id":"{lobby}"}},"content":"{content}"}}]"#
            ),
        }
    }

    /// Whether `text` is the reply to request `ack`; `Err` if it is an
    /// error reply to it.
    pub fn is_reply_to(self, text: &str, ack: u64) -> Option<Result<(), String>> {
        match self {
            Proto::Lobbyd => {
                let tail = format!("\"ack\":{ack}}}");
                if !text.ends_with(&tail) {
                    return None;
                }
                if text.contains(r#""event":"error""#) {
                    Some(Err(text.chars().take(300).collect()))
                } else {
                    Some(Ok(()))
                }
            }
            Proto::Socketio => {
                let head = format!("43{ack}[");
                if !text.starts_with(&head) {
                    return None;
                }
                if text.contains(r#""error""#) {
                    Some(Err(text.chars().take(300).collect()))
                } else {
                    Some(Ok(()))
                }
            }
        }
    }

    pub fn classify(self, text: &str) -> Incoming {
        if let Some(pos) = text.find(MARKER) {
            let reply = match self {
                Proto::Lobbyd => text.contains("\"ack\":"),
                Proto::Socketio => text.starts_with("43"),
            };
            return match parse_stamp(&text[pos + MARKER.len()..]) {
                Some((sched_ns, send_ns)) => Incoming::Msg {
                    reply,
                    sched_ns,
                    send_ns,
                },
                None => Incoming::Other,
            };
        }
        match self {
            Proto::Lobbyd => {
                if text.contains(r#""event":"error""#) {
                    Incoming::Error(error_code(text))
                } else {
                    Incoming::Other
                }
            }
            Proto::Socketio => {
                if text == "2" {
                    Incoming::EioPing
                } else if text.starts_with("44") {
                    Incoming::Error("socketio_connect_error".into())
                } else {
                    Incoming::Other
                }
            }
        }
    }
}

/// Builds message content: the marker, both stamps, padding to `payload`.
pub fn content(sched_ns: u64, send_ns: u64, payload: usize, buf: &mut String) {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "{MARKER}{sched_ns}:{send_ns}:");
    while buf.len() < payload {
        buf.push('x');
    }
}

fn parse_stamp(s: &str) -> Option<(u64, u64)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut a: u64 = 0;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        a = a.checked_mul(10)?.checked_add((b[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start || i >= b.len() || b[i] != b':' {
        return None;
    }
    i += 1;
    let start = i;
    let mut c: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        c = c.checked_mul(10)?.checked_add((b[i] - b'0') as u64)?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((a, c))
}

fn error_code(text: &str) -> String {
    const K: &str = r#""code":""#;
    match text.find(K) {
        Some(p) => {
            let rest = &text[p + K.len()..];
            rest.split('"').next().unwrap_or("?").to_string()
        }
        None => "?".to_string(),
    }
}

/// The next text frame (pings are answered by tungstenite while reading).
pub async fn next_text(ws: &mut Ws, timeout: Duration) -> Result<String, String> {
    loop {
        let m = tokio::time::timeout(timeout, ws.next())
            .await
            .map_err(|_| "timed out waiting for a frame".to_string())?;
        match m {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(c))) => return Err(format!("closed by server: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

/// Sends `frame` and waits for its reply (skipping broadcasts).
pub async fn request(
    proto: Proto,
    ws: &mut Ws,
    frame: String,
    ack: u64,
    timeout: Duration,
) -> Result<(), String> {
    ws.send(Message::text(frame))
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let t = next_text(ws, left).await?;
        if proto == Proto::Socketio && t == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(r) = proto.is_reply_to(&t, ack) {
            return r;
        }
    }
}

/// Connect, handshake, log in as `username`, join `lobby`.
pub async fn setup(
    proto: Proto,
    target: &crate::net::Target,
    src: Option<std::net::Ipv4Addr>,
    username: &str,
    lobby: &str,
    timeout: Duration,
) -> Result<Ws, String> {
    let mut ws = tokio::time::timeout(timeout, crate::net::connect(target, src))
        .await
        .map_err(|_| "connect timed out".to_string())??;
    proto.handshake(&mut ws, timeout).await?;
    request(proto, &mut ws, proto.login(username, 1), 1, timeout)
        .await
        .map_err(|e| format!("login: {e}"))?;
    request(proto, &mut ws, proto.join(lobby, 2), 2, timeout)
        .await
        .map_err(|e| format!("connect_lobby: {e}"))?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trip() {
        let mut s = String::new();
        content(123, 456, 100, &mut s);
        assert_eq!(s.len(), 100);
        let frame = format!(
            r#"{{"event":"send_message","data":{{"message":{{"data":{{"content":"{s}","seq":3}}}}}}}}"#
        );
        assert_eq!(
            Proto::Lobbyd.classify(&frame),
            Incoming::Msg {
                reply: false,
                sched_ns: 123,
                send_ns: 456
            }
        );
        let reply = format!("{},\"ack\":9}}", &frame[..frame.len() - 1]);
        assert!(matches!(
            Proto::Lobbyd.classify(&reply),
            Incoming::Msg { reply: true, .. }
        ));
        let err = r#"{"event":"error","data":{"code":"rate_limited","message":"x","event":"send_message"},"ack":4}"#;
        assert_eq!(
            Proto::Lobbyd.classify(err),
            Incoming::Error("rate_limited".into())
        );
        assert_eq!(
            Proto::Lobbyd.is_reply_to(err, 4),
            Some(Err(err.to_string()))
        );
        let sio = format!(r#"42["send_message",{{"message":{{"content":"{s}"}}}}]"#);
        assert!(matches!(
            Proto::Socketio.classify(&sio),
            Incoming::Msg { reply: false, .. }
        ));
        let sio_ack = format!(r#"4311[{{"message":{{"content":"{s}"}}}}]"#);
        assert!(matches!(
            Proto::Socketio.classify(&sio_ack),
            Incoming::Msg { reply: true, .. }
        ));
        assert_eq!(Proto::Socketio.is_reply_to("431[{}]", 1), Some(Ok(())));
        assert_eq!(Proto::Socketio.is_reply_to("4312[{}]", 1), None);
    }
}
