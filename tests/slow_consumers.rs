//! Slow consumers: a member that stops reading is cut off (its queue
//! overflows, or its socket takes nothing for a ping timeout) while it is
//! still stalled, without the node growing memory or delaying the members
//! that do read.

mod support;

use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Gateway, GatewayOpts, WsClient};
use tokio_tungstenite::tungstenite::Message;

type Stalled = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The latency comparison runs alone (write lock); the other tests of this
/// file share the machine with each other (read lock), never with it.
static ALONE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// `n` users that joined `lobby` and read what they are sent.
async fn readers_in(gw: &Gateway, lobby: &str, n: usize) -> Vec<WsClient> {
    let mut readers = Vec::with_capacity(n);
    for i in 0..n {
        let mut r = gw.user(&format!("reader{i}")).await;
        r.join_public(lobby).await;
        readers.push(r);
    }
    readers
}

/// Sends `n` messages of 8 KB, one at a time, each acknowledged.
async fn send_8kb(sender: &mut WsClient, lobby: &str, n: usize) {
    let content = "x".repeat(8000);
    for _ in 0..n {
        sender
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": content}),
            )
            .await
            .ok();
    }
}

/// Resident memory of a process in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A value from the node's `/metrics` (the first series of that name).
async fn metric(gw: &Gateway, name: &str) -> f64 {
    let text = support::http_get(gw.port(), "/metrics").await;
    text.lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `name` reaches `want`; its last value otherwise.
async fn wait_metric(gw: &Gateway, name: &str, want: f64, limit: Duration) -> f64 {
    let deadline = Instant::now() + limit;
    loop {
        let v = metric(gw, name).await;
        if v == want || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads a stalled member now: the node must already have ended it, so
/// the stream ends (a close frame or the socket's end) after what the
/// kernel buffers held. Returns the frames read before it.
async fn read_to_end(ws: &mut Stalled) -> usize {
    let mut got = 0;
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout(end.saturating_duration_since(Instant::now()), ws.next()).await {
            Err(_) => panic!("still open after {got} frames"),
            Ok(Some(Ok(Message::Text(_)))) => got += 1,
            Ok(Some(Ok(Message::Close(cf)))) => {
                let code = cf.map(|f| u16::from(f.code));
                assert!(
                    matches!(code, Some(1008) | Some(1013)),
                    "close code {code:?}"
                );
                return got;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => return got,
        }
    }
}

fn quick_sender() -> GatewayOpts {
    GatewayOpts::default()
        .arg("--rate-limit-per-s")
        .arg("100000")
        .arg("--rate-limit-burst")
        .arg("100000")
}

/// A member that stops reading: a WebSocket logged in and joined, then
/// never polled again. `rcvbuf` shrinks its socket's receive buffer (the
/// kernel default otherwise, as a real client would have).
async fn stalled_member(gw: &Gateway, lobby: &str, rcvbuf: Option<u32>) -> Stalled {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = rcvbuf {
        sock.set_recv_buffer_size(size).unwrap();
    }
    let stream = sock
        .connect(format!("127.0.0.1:{}", gw.port()).parse().unwrap())
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(gw.ws_url(), stream)
        .await
        .expect("handshake");
    for (ack, frame) in [
        json!({"event": "login", "data": {"username": "stalled"}, "ack": 1}),
        json!({"event": "connect_lobby", "data": {"lobby": {"id": lobby, "visibility": true}}, "ack": 2}),
    ]
    .into_iter()
    .enumerate()
    {
        ws.send(Message::text(frame.to_string())).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("reply")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["ack"] == json!(ack + 1) {
                    assert_ne!(v["event"], "error", "{v}");
                    break;
                }
            }
        }
    }
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_closed_and_memory_stays_bounded() {
    let _shared = ALONE.read().await;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    const MESSAGES: usize = 1500;
    const STALLED: usize = 4;
    const READERS: usize = 3;
    let gw = Gateway::start(
        GatewayOpts::default()
            .arg("--max-outbound-frames")
            .arg("64")
            .arg("--rate-limit-per-s")
            .arg("100000")
            .arg("--rate-limit-burst")
            .arg("100000"),
    )
    .await;
    let pid = gw.pid().expect("pid");
    let lobby = format!("slow-{}", support::unique());
    let mut sender = gw.user("sender").await;
    sender.join_public(&lobby).await;
    let mut readers = readers_in(&gw, &lobby, READERS).await;
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_member(&gw, &lobby, Some(4096)).await);
    }
    sender.drain().await;
    for r in &mut readers {
        r.drain().await;
    }
    let rss_before = rss_kib(pid);
    // The readers read all along.
    let reader_tasks: Vec<_> = readers
        .into_iter()
        .map(|mut r| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while seqs.len() < MESSAGES && Instant::now() < deadline {
                    match r
                        .try_expect_event_within("send_message", Duration::from_secs(10))
                        .await
                    {
                        Some(ev) => seqs.push(ev["message"]["data"]["seq"].as_u64().unwrap()),
                        None => break,
                    }
                }
                (r, seqs)
            })
        })
        .collect();
    let content = "x".repeat(8000);
    let mut peak = rss_before;
    for i in 0..MESSAGES {
        let ack = sender
            .send_request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": content}),
            )
            .await;
        // Keep a few requests in flight.
        if i % 8 == 7 {
            sender.wait_reply(ack, "send_message").await.ok();
        }
        if i % 100 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    // Readers got everything, in order.
    for t in reader_tasks {
        let (r, seqs) = t.await.unwrap();
        assert_eq!(
            seqs,
            (1..=MESSAGES as u64).collect::<Vec<_>>(),
            "a reading member missed messages while others stalled"
        );
        assert!(!r.is_closed());
    }
    peak = peak.max(rss_kib(pid));
    // Each stalled member was closed: reading it now ends with a 1008 /
    // 1013 close (or a dropped connection) long before all messages.
    for mut ws in stalled {
        let mut got = 0usize;
        let mut code = None;
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let next =
                tokio::time::timeout(end.saturating_duration_since(Instant::now()), ws.next())
                    .await;
            match next {
                Err(_) => panic!("stalled member still open after reading {got} frames"),
                Ok(Some(Ok(Message::Text(_)))) => got += 1,
                Ok(Some(Ok(Message::Close(cf)))) => {
                    code = cf.map(|f| u16::from(f.code));
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => break,
            }
        }
        assert!(
            got < MESSAGES,
            "the stalled member was never cut off ({got} frames)"
        );
        if let Some(c) = code {
            assert!(c == 1008 || c == 1013, "close code {c}");
        }
    }
    let grew_mib = peak.saturating_sub(rss_before) / 1024;
    // Unbounded queues would hold STALLED x MESSAGES x 8 KB = ~48 MB.
    assert!(
        grew_mib < 24,
        "RSS grew {grew_mib} MiB ({rss_before} KiB -> peak {peak} KiB)"
    );
    println!("RSS {rss_before} KiB -> peak {peak} KiB");
}

/// A member that never reads again is dropped by the node while it is
/// still stalled: its socket stops taking writes after a few kilobytes
/// (`tcp_notsent_lowat`), its queue overflows, and the write it waits on
/// is abandoned. Its connection is gone from the node without the client
/// ever reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_never_reads_is_dropped_while_stalled() {
    let _shared = ALONE.read().await;
    const MESSAGES: usize = 400;
    // A short ping timeout: a dropped slow consumer's socket is held that
    // long for its close frame.
    let gw = Gateway::start(
        quick_sender()
            .arg("--max-outbound-frames")
            .arg("64")
            .arg("--ping-timeout-ms")
            .arg("3000"),
    )
    .await;
    let lobby = format!("never-{}", support::unique());
    let mut sender = gw.user("sender").await;
    sender.join_public(&lobby).await;
    let mut reader = gw.user("reader").await;
    reader.join_public(&lobby).await;
    // Kernel-default receive buffers, as a real client has.
    let mut stalled = vec![
        stalled_member(&gw, &lobby, None).await,
        stalled_member(&gw, &lobby, None).await,
    ];
    assert_eq!(metric(&gw, "lobbyd_connections_open").await, 4.0);
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while n < MESSAGES {
            match reader
                .try_expect_event_within("send_message", Duration::from_secs(10))
                .await
            {
                Some(_) => n += 1,
                None => break,
            }
        }
        (reader, n)
    });
    // 400 x 8 KB: 3.2 MB to each member, far over what the kernel may hold
    // for one connection and over the 64-frame queue.
    send_8kb(&mut sender, &lobby, MESSAGES).await;
    let (_reader, n) = reading.await.unwrap();
    assert_eq!(n, MESSAGES, "the reader missed messages");
    let open = wait_metric(&gw, "lobbyd_connections_open", 2.0, Duration::from_secs(15)).await;
    assert_eq!(open, 2.0, "the stalled members' connections are still open");
    assert!(metric(&gw, "lobbyd_slow_consumer_disconnects_total").await >= 2.0);
    for ws in &mut stalled {
        let got = read_to_end(ws).await;
        assert!(got < MESSAGES / 2, "{got} frames reached a stalled member");
    }
}

/// A member that stops reading in a quiet lobby never overflows its queue,
/// but its socket takes nothing: after a ping timeout of waiting on one
/// write the node drops it (without this, the connection and its session
/// would stay until the client read again, and no ping could be sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_member_of_a_quiet_lobby_is_dropped_after_a_ping_timeout() {
    let _shared = ALONE.read().await;
    let gw = Gateway::start(quick_sender().arg("--ping-timeout-ms").arg("2000")).await;
    let lobby = format!("quiet-{}", support::unique());
    let mut sender = gw.user("sender").await;
    sender.join_public(&lobby).await;
    let mut stalled = stalled_member(&gw, &lobby, Some(4096)).await;
    // 20 x 8 KB: far under the queue bounds (1024 frames, 1 MiB), far over
    // what a 4 KB receive buffer and the unsent-bytes cap take.
    send_8kb(&mut sender, &lobby, 20).await;
    let started = Instant::now();
    let open = wait_metric(&gw, "lobbyd_connections_open", 1.0, Duration::from_secs(10)).await;
    assert_eq!(open, 1.0, "the stalled member is still connected");
    assert_eq!(
        metric(&gw, "lobbyd_slow_consumer_disconnects_total").await,
        1.0
    );
    println!("dropped {:?} after the last send", started.elapsed());
    // It learns why if it reads again within the ping timeout; here it
    // reads later, so the stream just ends after what the kernel held.
    let got = read_to_end(&mut stalled).await;
    assert!(got < 20, "all {got} frames reached the stalled member");
    // The sender, which reads, is untouched.
    let r = sender
        .request(
            "send_message",
            json!({"lobby": {"id": lobby}, "content": "still here"}),
        )
        .await;
    assert!(r.is_ok(), "{:?}", r.code());
}

/// p99 of the delivery latency (µs) seen by `readers` while the sender
/// sends `n` messages of 4 KB at `per_s`.
async fn readers_p99_us(
    sender: &mut WsClient,
    readers: Vec<WsClient>,
    lobby: &str,
    n: usize,
    per_s: u64,
) -> (Vec<WsClient>, u64) {
    let epoch = Instant::now();
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|mut r| {
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(n);
                while lat.len() < n {
                    let Some(ev) = r
                        .try_expect_event_within("send_message", Duration::from_secs(10))
                        .await
                    else {
                        break;
                    };
                    let now = epoch.elapsed().as_micros() as u64;
                    let content = ev["message"]["data"]["content"].as_str().unwrap_or("");
                    let sent: u64 = content[..20].parse().unwrap();
                    lat.push(now.saturating_sub(sent));
                }
                (r, lat)
            })
        })
        .collect();
    let pad = "x".repeat(4000);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_s));
    for _ in 0..n {
        tick.tick().await;
        let content = format!("{:020}{pad}", epoch.elapsed().as_micros());
        sender
            .request(
                "send_message",
                json!({"lobby": {"id": lobby}, "content": content}),
            )
            .await
            .ok();
    }
    let mut all = Vec::new();
    let mut readers = Vec::new();
    for t in tasks {
        let (r, lat) = t.await.unwrap();
        assert_eq!(lat.len(), n, "a reader missed messages");
        all.extend(lat);
        readers.push(r);
    }
    all.sort_unstable();
    (readers, all[all.len() * 99 / 100])
}

/// The members that read are not delayed by members that stopped: their
/// p99 with stalled members beside them stays within 2x of a run without
/// (plus 2 ms, for the scheduling noise of a shared 2-core machine at
/// these small values). The runs alternate, with and without, twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_members_do_not_delay_the_readers() {
    let _alone = ALONE.write().await;
    const READERS: usize = 20;
    const STALLED: usize = 5;
    let gw = Gateway::start(quick_sender()).await;
    let lobby = format!("p99-{}", support::unique());
    let mut sender = gw.user("sender").await;
    sender.join_public(&lobby).await;
    let mut readers = readers_in(&gw, &lobby, READERS).await;
    let mut results = Vec::new();
    let mut keep = Vec::new();
    for round in 0..4 {
        let with_stalled = round % 2 == 1;
        if with_stalled {
            for _ in 0..STALLED {
                keep.push(stalled_member(&gw, &lobby, None).await);
            }
        }
        let (back, p99) = readers_p99_us(&mut sender, readers, &lobby, 400, 100).await;
        readers = back;
        println!("stalled={with_stalled} readers' p99 {p99} us");
        results.push((with_stalled, p99));
    }
    let worst_without = results.iter().filter(|r| !r.0).map(|r| r.1).max().unwrap();
    let worst_with = results.iter().filter(|r| r.0).map(|r| r.1).max().unwrap();
    assert!(
        worst_with <= 2 * worst_without + 2_000,
        "readers' p99 {worst_with} us with stalled members, {worst_without} us without"
    );
    drop(keep);
}

/// The byte bound alone cuts a member off: 100 frames of 8 KB are far
/// under `max_outbound_frames` (1024) but over a 256 KiB
/// `max_outbound_bytes`. Its co-members learn it left (`disconnect`) within
/// seconds, long before a ping timeout could have done it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_cuts_off_a_member_under_the_frame_bound() {
    let _shared = ALONE.read().await;
    let gw = Gateway::start(
        quick_sender()
            .arg("--max-outbound-bytes")
            .arg("262144")
            .arg("--ping-timeout-ms")
            .arg("60000"),
    )
    .await;
    let lobby = format!("bytes-{}", support::unique());
    let mut sender = gw.user("sender").await;
    sender.join_public(&lobby).await;
    let mut stalled = stalled_member(&gw, &lobby, Some(4096)).await;
    sender.drain().await;
    let started = Instant::now();
    send_8kb(&mut sender, &lobby, 100).await;
    let gone = sender
        .try_expect_event_within("disconnect", Duration::from_secs(5))
        .await;
    assert!(gone.is_some(), "the stalled member was not cut off");
    println!("cut off {:?} after the first send", started.elapsed());
    assert_eq!(
        metric(&gw, "lobbyd_slow_consumer_disconnects_total").await,
        1.0
    );
    let got = read_to_end(&mut stalled).await;
    assert!(got < 100, "all {got} frames reached the stalled member");
}
