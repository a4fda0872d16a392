//! The WebSocket client: `{event, data, ack}` requests, replies and
//! broadcasts, buffered so a test can wait for the one it expects.

use super::*;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The reply to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The event of the request this answers.
    pub request_event: String,
    /// The whole frame as received.
    pub frame: Value,
}

impl Reply {
    pub fn event(&self) -> &str {
        self.frame["event"].as_str().unwrap_or("")
    }

    pub fn is_ok(&self) -> bool {
        self.event() == self.request_event && self.request_event != "error"
    }

    /// The error code, if this is an error reply.
    pub fn code(&self) -> Option<&str> {
        if self.event() == "error" {
            self.frame["data"]["code"].as_str()
        } else {
            None
        }
    }

    /// Assert success and return `data`.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.is_ok(),
            "expected a successful `{}` reply, got {}",
            self.request_event,
            self.frame
        );
        self.frame.get("data").cloned().unwrap_or(Value::Null)
    }

    /// Assert an error reply with this code, naming the request's event.
    #[track_caller]
    pub fn err(self, code: &str) -> Value {
        assert_eq!(
            self.code(),
            Some(code),
            "expected error `{code}` for `{}`, got {}",
            self.request_event,
            self.frame
        );
        let data = &self.frame["data"];
        assert_eq!(
            data["event"],
            json!(self.request_event),
            "error must name the request's event: {}",
            self.frame
        );
        assert!(
            data["message"].is_string(),
            "error without a message text: {}",
            self.frame
        );
        data.clone()
    }
}

/// A test WebSocket client. Ack-less frames (broadcasts, unparseable-frame
/// errors) are buffered in arrival order until a test asks for them.
pub struct WsClient {
    ws: Ws,
    url: String,
    next_ack: u64,
    events: VecDeque<Value>,
    replies: VecDeque<Value>,
    closed: Option<Option<u16>>,
    user_id: Option<String>,
    token: Option<String>,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _resp) = tokio::time::timeout(TIMEOUT, connect_async(url))
            .await
            .unwrap_or_else(|_| panic!("connect to {url} timed out"))
            .unwrap_or_else(|e| panic!("connect to {url} failed: {e}"));
        WsClient {
            ws,
            url: url.to_string(),
            next_ack: 1,
            events: VecDeque::new(),
            replies: VecDeque::new(),
            closed: None,
            user_id: None,
            token: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The logged-in user's id (panics before `login`).
    pub fn id(&self) -> &str {
        self.user_id.as_deref().expect("client is not logged in")
    }

    pub fn token(&self) -> &str {
        self.token.as_deref().expect("client is not logged in")
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    // -- sending --------------------------------------------------------

    pub async fn try_send_raw(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn send_raw(&mut self, text: &str) {
        if let Err(e) = self.ws.send(Message::text(text.to_string())).await {
            panic!("send failed: {e}");
        }
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send binary");
    }

    /// Send a WebSocket ping and wait for the matching pong (text frames
    /// arriving meanwhile are buffered as usual).
    pub async fn ping(&mut self, payload: &[u8]) {
        self.ws
            .send(Message::Ping(payload.to_vec().into()))
            .await
            .expect("send ping");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.closed.is_some() {
                panic!(
                    "connection closed while waiting for pong{}",
                    self.closed_note()
                );
            }
            let next = match timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("no pong within {TIMEOUT:?}"),
                Ok(n) => n,
            };
            match next {
                Some(Ok(Message::Pong(p))) if p.as_ref() == payload => return,
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    if frame.get("ack").is_some_and(|a| !a.is_null()) {
                        self.replies.push_back(frame);
                    } else {
                        check_broadcast(&frame);
                        self.events.push_back(frame);
                    }
                }
                Some(Ok(Message::Close(cf))) => self.closed = Some(cf.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => self.closed = Some(None),
            }
        }
    }

    /// Send a request with a fresh ack without waiting; returns the ack.
    pub async fn send_request(&mut self, event: &str, data: Value) -> u64 {
        let ack = self.next_ack;
        self.next_ack += 1;
        register_tokens_in(&data);
        if event == "use_action" && data["action"] == "setToken" {
            if let Some(t) = data["actionArgs"][0].as_str() {
                register_token(t);
            }
        }
        let frame = json!({"event": event, "data": data, "ack": ack});
        self.send_raw(&frame.to_string()).await;
        ack
    }

    /// Send a request and wait for its reply (broadcasts seen meanwhile are buffered).
    pub async fn request(&mut self, event: &str, data: Value) -> Reply {
        self.request_within(event, data, TIMEOUT).await
    }

    pub async fn request_within(&mut self, event: &str, data: Value, limit: Duration) -> Reply {
        let ack = self.send_request(event, data).await;
        self.wait_reply_within(ack, event, limit).await
    }

    /// Wait for the reply carrying `ack`.
    pub async fn wait_reply(&mut self, ack: u64, event: &str) -> Reply {
        self.wait_reply_within(ack, event, TIMEOUT).await
    }

    pub async fn wait_reply_within(&mut self, ack: u64, event: &str, limit: Duration) -> Reply {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.replies.iter().position(|f| f["ack"] == json!(ack)) {
                let frame = self.replies.remove(pos).unwrap();
                register_tokens_in(&frame);
                return Reply {
                    request_event: event.to_string(),
                    frame,
                };
            }
            if !self.read_one(deadline).await {
                panic!(
                    "no reply to `{event}` (ack {ack}) within {limit:?}{}; buffered broadcasts: {:?}",
                    self.closed_note(),
                    self.events
                );
            }
        }
    }

    /// The next ack-bearing frame, whatever its ack (for order checks).
    pub async fn next_reply_frame(&mut self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(frame) = self.replies.pop_front() {
                register_tokens_in(&frame);
                return frame;
            }
            if !self.read_one(deadline).await {
                panic!("no reply frame within {TIMEOUT:?}{}", self.closed_note());
            }
        }
    }

    // -- receiving ------------------------------------------------------

    fn closed_note(&self) -> String {
        match self.closed {
            Some(code) => format!(" (connection closed, close code {code:?})"),
            None => String::new(),
        }
    }

    /// Read one message into the buffers. Returns false on timeout or when
    /// the connection is (already) closed.
    async fn read_one(&mut self, deadline: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let next = match timeout_at(deadline, self.ws.next()).await {
            Err(_) => return false,
            Ok(n) => n,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("server sent non-JSON text ({e}): {text}"));
                assert!(frame.is_object(), "server sent a non-object frame: {frame}");
                assert!(
                    frame["event"].is_string(),
                    "server frame without event: {frame}"
                );
                if frame.get("ack").is_some_and(|a| !a.is_null()) {
                    self.replies.push_back(frame);
                } else {
                    check_broadcast(&frame);
                    self.events.push_back(frame);
                }
                true
            }
            Some(Ok(Message::Binary(b))) => {
                panic!("server sent a binary message ({} bytes)", b.len())
            }
            Some(Ok(Message::Close(cf))) => {
                self.closed = Some(cf.map(|f| u16::from(f.code)));
                false
            }
            Some(Ok(_)) => true, // ping/pong/raw frames: tungstenite answers pings itself
            Some(Err(_)) | None => {
                if self.closed.is_none() {
                    self.closed = Some(None);
                }
                false
            }
        }
    }

    /// The first buffered-or-arriving ack-less frame named `name` (whole frame).
    pub async fn expect_frame_within(&mut self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == name) {
                return self.events.remove(pos).unwrap();
            }
            if !self.read_one(deadline).await {
                panic!(
                    "expected broadcast `{name}` within {limit:?}{} (user {:?}); buffered: {:?}",
                    self.closed_note(),
                    self.user_id,
                    self.events
                );
            }
        }
    }

    pub async fn expect_frame(&mut self, name: &str) -> Value {
        self.expect_frame_within(name, TIMEOUT).await
    }

    /// Like `expect_event_within`, but returns None on timeout instead of panicking.
    pub async fn try_expect_event_within(&mut self, name: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == name) {
                let frame = self.events.remove(pos).unwrap();
                return Some(frame.get("data").cloned().unwrap_or(Value::Null));
            }
            if !self.read_one(deadline).await {
                return None;
            }
        }
    }

    /// `data` of the first broadcast named `name` (others stay buffered).
    pub async fn expect_event(&mut self, name: &str) -> Value {
        self.expect_event_within(name, TIMEOUT).await
    }

    pub async fn expect_event_within(&mut self, name: &str, limit: Duration) -> Value {
        let frame = self.expect_frame_within(name, limit).await;
        frame.get("data").cloned().unwrap_or(Value::Null)
    }

    /// Panics if a broadcast named `name` is buffered or arrives within `wait`.
    pub async fn expect_no_event(&mut self, name: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(f) = self.events.iter().find(|f| f["event"] == name) {
                panic!(
                    "unexpected broadcast `{name}` (user {:?}): {f}",
                    self.user_id
                );
            }
            if !self.read_one(deadline).await {
                return;
            }
        }
    }

    /// Waits for broadcast `barrier` and panics if a `forbidden` broadcast
    /// came before it. Within one lobby all connections see broadcasts in
    /// commit order, so this proves absence without a fixed wait.
    pub async fn expect_event_without(&mut self, barrier: &str, forbidden: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == barrier) {
                if let Some(f) = self
                    .events
                    .iter()
                    .take(pos)
                    .find(|f| f["event"] == forbidden)
                {
                    panic!(
                        "unexpected broadcast `{forbidden}` before `{barrier}` (user {:?}): {f}",
                        self.user_id
                    );
                }
                let frame = self.events.remove(pos).unwrap();
                return frame.get("data").cloned().unwrap_or(Value::Null);
            }
            if !self.read_one(deadline).await {
                panic!(
                    "expected broadcast `{barrier}`{}; buffered: {:?}",
                    self.closed_note(),
                    self.events
                );
            }
        }
    }

    /// Waits for broadcast `barrier` and returns (removing them) every
    /// broadcast buffered before it, in order; the barrier is consumed too.
    pub async fn take_events_before(&mut self, barrier: &str) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pos) = self.events.iter().position(|f| f["event"] == barrier) {
                let before: Vec<Value> = self.events.drain(..pos).collect();
                self.events.pop_front();
                return before;
            }
            if !self.read_one(deadline).await {
                panic!(
                    "expected broadcast `{barrier}`{}; buffered: {:?}",
                    self.closed_note(),
                    self.events
                );
            }
        }
    }

    /// Broadcasts buffered so far (whole frames), without reading more.
    pub fn buffered(&self) -> Vec<Value> {
        self.events.iter().cloned().collect()
    }

    /// Drop every buffered broadcast and whatever arrives within a short quiet period.
    pub async fn drain(&mut self) {
        loop {
            self.events.clear();
            let deadline = Instant::now() + Duration::from_millis(100);
            if !self.read_one(deadline).await {
                self.events.clear();
                return;
            }
        }
    }

    /// Wait until the server closes the connection; returns the close code
    /// (None if the TCP connection ended without a close frame).
    pub async fn expect_closed(&mut self) -> Option<u16> {
        let deadline = Instant::now() + TIMEOUT;
        while self.closed.is_none() {
            if !self.read_one(deadline).await && self.closed.is_none() {
                panic!(
                    "connection was not closed within {TIMEOUT:?}; buffered: {:?}",
                    self.events
                );
            }
        }
        self.closed.unwrap()
    }

    /// Close cleanly (close handshake) and wait for the server's close.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.read_one(deadline).await {}
    }

    // -- conveniences ---------------------------------------------------

    /// Log in as a new user named `username`; returns (user id, token).
    pub async fn login(&mut self, username: &str) -> (String, String) {
        let data = self
            .request("login", json!({ "username": username }))
            .await
            .ok();
        self.remember_login(&data)
    }

    /// Joins the lobby `id`, creating it public if it does not exist;
    /// panics on a refusal.
    pub async fn join_public(&mut self, id: &str) {
        self.request(
            "connect_lobby",
            json!({"lobby": {"id": id, "visibility": true}}),
        )
        .await
        .ok();
    }

    /// Log in with an existing user's token; returns (user id, token).
    pub async fn login_token(&mut self, token: &str) -> (String, String) {
        let data = self.request("login", json!({ "token": token })).await.ok();
        self.remember_login(&data)
    }

    fn remember_login(&mut self, data: &Value) -> (String, String) {
        let id = data["user"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("login reply without user.id: {data}"));
        let token = data["user"]["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login reply without user.data.token: {data}"));
        self.user_id = Some(id.to_string());
        self.token = Some(token.to_string());
        (id.to_string(), token.to_string())
    }
}
