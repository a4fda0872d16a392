//! The Redis engine against a real `redis-server` on a free port, started
//! by the shared harness (a missing `redis-server` fails the tests).
//! Exercises the `Engine` trait directly: access rules, atomic creation,
//! gapless seq under concurrency, event order, receipts, presence across
//! nodes, reaping of a dead node, and failing fast when Redis dies.

use lobbyd::domain::{
    token, DomainError, Envelope, Event, LobbyId, MessageId, Origin, Permission, PresenceKind,
    ReceiptKind, UserId,
};
use lobbyd::engine::redis::RedisEngine;
use lobbyd::engine::{Actor, Engine, EngineError, LobbyChange, LobbySpec, UserChange};
use serde_json::{json, Map, Value};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::RedisServer;
use tokio::sync::mpsc;

mod support;

const NOW: i64 = 1_764_000_000_000;

type Events = mpsc::UnboundedReceiver<Envelope>;

async fn node(url: &str, id: &str, ttl_ms: u64) -> (Arc<RedisEngine>, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let e = RedisEngine::connect(url, id, ttl_ms, tx)
        .await
        .expect("connect");
    (e, rx)
}

/// The next event matching `pred`, skipping others; panics after `secs`.
async fn wait_for(rx: &mut Events, secs: u64, mut pred: impl FnMut(&Envelope) -> bool) -> Envelope {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(env)) if pred(&env) => return env,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event sink closed"),
            Err(_) => panic!("no matching event within {secs} s"),
        }
    }
}

/// Every event already delivered or arriving within `ms`.
async fn drain(rx: &mut Events, ms: u64) -> Vec<Envelope> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(e);
    }
    out
}

fn uid(s: &str) -> UserId {
    UserId::from(s)
}

fn lid(s: &str) -> LobbyId {
    LobbyId::from(s)
}

fn origin(s: &str) -> Origin {
    Origin(format!("test/{s}"))
}

fn spec(id: &str) -> LobbySpec {
    LobbySpec {
        id: lid(id),
        token: None,
        generated_token: token::generate(),
        visibility: false,
        size_limit: None,
        description: None,
    }
}

fn refused<T: std::fmt::Debug>(r: Result<T, EngineError>) -> DomainError {
    match r {
        Err(EngineError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn user(e: &RedisEngine, id: &str, name: &str) {
    e.create_user(
        &uid(id),
        Some(name),
        &token::hash(&format!("tok-{id}")),
        NOW,
    )
    .await
    .unwrap();
}

macro_rules! actor {
    ($u:expr, $o:expr) => {
        Actor {
            user: &$u,
            token: None,
            origin: &$o,
        }
    };
    ($u:expr, $o:expr, $t:expr) => {
        Actor {
            user: &$u,
            token: Some($t),
            origin: &$o,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_lobbies_and_access_rules() {
    let redis = RedisServer::start().await;
    let (e, mut rx) = node(&redis.url(), "n1", 3000).await;
    let (a, b, c, o) = (uid("a"), uid("b"), uid("c"), origin("1"));
    user(&e, "a", "ann").await;
    user(&e, "b", "bob").await;
    e.create_user(&c, None, &token::hash("tok-c"), NOW)
        .await
        .unwrap();

    assert_eq!(
        e.user_by_token(&token::hash("tok-b")).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(e.user_by_token(&token::hash("nope")).await.unwrap(), None);
    let snap = e.user(&a).await.unwrap().unwrap();
    assert_eq!(snap.record.username.as_deref(), Some("ann"));
    assert!(!snap.record.visibility && !snap.online && snap.lobbies.is_empty());
    assert_eq!(snap.record.created_at, NOW);
    assert!(e.user(&uid("zz")).await.unwrap().is_none());

    // Creation: the creator owns and joins; MemberJoined is published.
    let mut s = spec("room");
    s.token = Some("secret".into());
    s.size_limit = Some(2);
    s.description = Some("desc".into());
    let out = e.connect_lobby(actor!(a, o), s, NOW).await.unwrap();
    assert!(out.created && out.joined);
    assert_eq!(out.lobby.owner, a);
    assert_eq!(out.lobby.token, "secret");
    assert_eq!(out.lobby.size_limit, Some(2));
    assert_eq!(out.lobby.description.as_deref(), Some("desc"));
    assert_eq!(out.lobby.members, vec![a.clone()]);
    let env = wait_for(&mut rx, 2, |e| {
        matches!(e.event, Event::MemberJoined { .. })
    })
    .await;
    assert_eq!(env.origin, Some(o.clone()));
    match env.event {
        Event::MemberJoined {
            lobby,
            user,
            username,
        } => {
            assert_eq!(
                (lobby, user, username.as_deref()),
                (lid("room"), a.clone(), Some("ann"))
            );
        }
        _ => unreachable!(),
    }

    // Private lobby: no token is forbidden, the token admits; then it is full.
    assert_eq!(
        refused(e.connect_lobby(actor!(b, o), spec("room"), NOW).await),
        DomainError::Forbidden
    );
    let mut with_token = spec("room");
    with_token.token = Some("secret".into());
    let out = e
        .connect_lobby(actor!(b, o), with_token.clone(), NOW)
        .await
        .unwrap();
    assert!(!out.created && out.joined);
    assert_eq!(out.lobby.members, vec![a.clone(), b.clone()]);
    assert_eq!(
        refused(e.connect_lobby(actor!(c, o), with_token, NOW).await),
        DomainError::LobbyFull
    );
    // Rejoining is a no-op success even when full.
    let out = e
        .connect_lobby(actor!(a, o), spec("room"), NOW)
        .await
        .unwrap();
    assert!(!out.created && !out.joined);

    // Snapshots.
    let snap = e.lobby(&lid("room")).await.unwrap().unwrap();
    assert_eq!(snap.members.len(), 2);
    assert_eq!(snap.members[0].username.as_deref(), Some("ann"));
    assert!(!snap.members[0].online);
    assert!(e.lobby(&lid("nope")).await.unwrap().is_none());
    assert_eq!(
        e.user(&b).await.unwrap().unwrap().lobbies,
        vec![lid("room")]
    );
    assert_eq!(e.lobby_by_token("secret").await.unwrap(), Some(lid("room")));
    assert_eq!(e.lobby_by_token("other").await.unwrap(), None);

    // Non-members: not_found for a private lobby, forbidden when visible / owner.
    assert_eq!(
        refused(e.leave_lobby(actor!(c, o), &lid("room"), NOW).await),
        DomainError::NotFound
    );
    assert_eq!(
        refused(e.leave_lobby(actor!(c, o), &lid("none"), NOW).await),
        DomainError::NotFound
    );
    let mid = MessageId::from("m0");
    assert_eq!(
        refused(
            e.append_message(actor!(c, o), &lid("room"), &mid, "x", None, NOW)
                .await
        ),
        DomainError::NotFound
    );
    assert_eq!(
        refused(e.typing(actor!(c, o), &lid("room"), None).await),
        DomainError::NotFound
    );

    // change_lobby: roles and permissions.
    let add_c = || LobbyChange::AddUsers(vec![uid("c")]);
    assert_eq!(
        refused(
            e.change_lobby(actor!(c, o), &lid("room"), add_c(), NOW)
                .await
        ),
        DomainError::NotFound
    );
    assert_eq!(
        refused(
            e.change_lobby(actor!(b, o), &lid("room"), add_c(), NOW)
                .await
        ),
        DomainError::LobbyFull
    );
    let del = LobbyChange::DeleteUsers(vec![a.clone()]);
    assert_eq!(
        refused(e.change_lobby(actor!(b, o), &lid("room"), del, NOW).await),
        DomainError::Forbidden
    );
    let ghost = LobbyChange::AddUsers(vec![uid("ghost")]);
    assert_eq!(
        refused(e.change_lobby(actor!(a, o), &lid("room"), ghost, NOW).await),
        DomainError::NotFound
    );
    let update = |fields: Value, needs| LobbyChange::Update {
        fields: match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        needs,
    };
    let rec = e
        .change_lobby(
            actor!(a, o),
            &lid("room"),
            update(
                json!({"sizeLimit": null, "description": null, "visibility": true}),
                Permission::Update,
            ),
            NOW + 5,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            rec.size_limit,
            rec.description.as_deref(),
            rec.visibility,
            rec.updated_at
        ),
        (None, None, true, NOW + 5)
    );
    // Visible now: a non-member is forbidden, not not_found.
    assert_eq!(
        refused(e.leave_lobby(actor!(c, o), &lid("room"), NOW).await),
        DomainError::Forbidden
    );
    // A token holder may add and delete, not set the owner.
    let rec = e
        .change_lobby(actor!(c, o, "secret"), &lid("room"), add_c(), NOW)
        .await
        .unwrap();
    assert_eq!(rec.members.len(), 3);
    let set_owner = LobbyChange::SetOwner(b.clone());
    assert_eq!(
        refused(
            e.change_lobby(actor!(c, o, "secret"), &lid("room"), set_owner.clone(), NOW)
                .await
        ),
        DomainError::Forbidden
    );
    let rec = e
        .change_lobby(actor!(a, o), &lid("room"), set_owner, NOW + 6)
        .await
        .unwrap();
    assert_eq!(rec.owner, b);
    let rec = e
        .change_lobby(
            actor!(b, o),
            &lid("room"),
            LobbyChange::SetToken("new-secret".into()),
            NOW + 7,
        )
        .await
        .unwrap();
    assert_eq!(rec.token, "new-secret");
    assert_eq!(e.lobby_by_token("secret").await.unwrap(), None);
    assert_eq!(
        e.lobby_by_token("new-secret").await.unwrap(),
        Some(lid("room"))
    );
    // A target that does not exist refuses the whole change.
    assert!(matches!(
        e.change_lobby(
            actor!(b, o),
            &lid("room"),
            LobbyChange::DeleteUsers(vec![c.clone(), uid("ghost")]),
            NOW,
        )
        .await,
        Err(EngineError::Refused(DomainError::NotFound))
    ));
    let rec = e
        .change_lobby(
            actor!(b, o),
            &lid("room"),
            LobbyChange::DeleteUsers(vec![c.clone(), c.clone()]),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(rec.members, vec![a.clone(), b.clone()]);
    e.leave_lobby(actor!(a, o), &lid("room"), NOW)
        .await
        .unwrap();
    assert!(e.user(&a).await.unwrap().unwrap().lobbies.is_empty());

    // Events of the user channel arrive in commit order.
    let kinds: Vec<String> = drain(&mut rx, 300)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::MemberJoined { user, .. } => Some(format!("+{user}")),
            Event::MemberLeft { user, .. } => Some(format!("-{user}")),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["+b", "+c", "-c", "-a"]);

    // Users: update publishes UserUpdated; visibility makes them public.
    let fields = match json!({"username": "cee", "visibility": true}) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let rec = e
        .change_user(actor!(c, o), UserChange::Update(fields), NOW + 9)
        .await
        .unwrap();
    assert_eq!(
        (rec.username.as_deref(), rec.visibility, rec.updated_at),
        (Some("cee"), true, NOW + 9)
    );
    let env = wait_for(&mut rx, 2, |e| matches!(e.event, Event::UserUpdated { .. })).await;
    match env.event {
        Event::UserUpdated {
            user,
            fields,
            updated_at,
            lobbies,
        } => {
            assert_eq!((user, updated_at), (c.clone(), NOW + 9));
            assert_eq!(fields.get("username"), Some(&json!("cee")));
            assert!(lobbies.is_empty());
        }
        _ => unreachable!(),
    }
    let rec = e
        .change_user(
            actor!(c, o),
            UserChange::SetTokenHash(token::hash("tok-c2")),
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(rec.token_hash, token::hash("tok-c2"));
    assert_eq!(e.user_by_token(&token::hash("tok-c")).await.unwrap(), None);
    assert_eq!(
        e.user_by_token(&token::hash("tok-c2")).await.unwrap(),
        Some(c.clone())
    );

    // Visibility listings.
    assert_eq!(
        e.visible_users(&a, None, None, 10).await.unwrap(),
        vec![a.clone(), c.clone()]
    );
    assert_eq!(
        e.visible_users(&b, None, None, 10).await.unwrap(),
        vec![b.clone(), c.clone()]
    );
    assert_eq!(
        e.visible_users(&a, Some(&token::hash("tok-b")), Some("a"), 1)
            .await
            .unwrap(),
        vec![b.clone()]
    );
    e.connect_lobby(actor!(a, o), spec("priv"), NOW)
        .await
        .unwrap();
    assert_eq!(
        e.visible_lobbies(&a, None, None, 10).await.unwrap(),
        vec![lid("priv"), lid("room")]
    );
    assert_eq!(
        e.visible_lobbies(&c, None, None, 10).await.unwrap(),
        vec![lid("room")]
    );
    assert_eq!(
        e.visible_lobbies(&c, Some("new-secret"), Some("priv"), 10)
            .await
            .unwrap(),
        vec![lid("room")]
    );
    assert!(e
        .visible_lobbies(&c, None, Some("room"), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creators_make_exactly_one_owner() {
    let redis = RedisServer::start().await;
    let (e, _rx) = node(&redis.url(), "n1", 3000).await;
    for i in 0..8 {
        user(&e, &format!("u{i}"), &format!("user{i}")).await;
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let (u, o) = (uid(&format!("u{i}")), origin(&i.to_string()));
            let mut s = spec("race");
            s.visibility = true;
            e.connect_lobby(actor!(u, o), s, NOW).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        let out = t.await.unwrap();
        assert!(out.joined);
        created += out.created as usize;
    }
    assert_eq!(created, 1);
    let snap = e.lobby(&lid("race")).await.unwrap().unwrap();
    assert_eq!(snap.record.members.len(), 8);
    assert!(snap.record.members.contains(&snap.record.owner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_get_gapless_seq_and_arrive_in_order() {
    let redis = RedisServer::start().await;
    let (e, mut rx) = node(&redis.url(), "n1", 3000).await;
    let (other, mut other_rx) = node(&redis.url(), "n2", 3000).await;
    let o = origin("1");
    for i in 0..4 {
        user(&e, &format!("u{i}"), &format!("user{i}")).await;
    }
    let mut s = spec("chat");
    s.visibility = true;
    for i in 0..4 {
        let u = uid(&format!("u{i}"));
        e.connect_lobby(actor!(u, o), s.clone(), NOW).await.unwrap();
    }
    e.subscribe_lobby(&lid("chat")).await.unwrap();
    other.subscribe_lobby(&lid("chat")).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..4 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let (u, o) = (uid(&format!("u{i}")), origin(&i.to_string()));
            let mut seqs = Vec::new();
            for j in 0..50 {
                let id = MessageId(format!("m-{i}-{j}"));
                let m = e
                    .append_message(
                        actor!(u, o),
                        &lid("chat"),
                        &id,
                        &format!("hello {i}/{j} \"q\" ü"),
                        None,
                        NOW + j,
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    m.author_username.as_deref(),
                    Some(format!("user{i}").as_str())
                );
                seqs.push(m.seq);
            }
            seqs
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's seqs increase"
        );
        all.extend(seqs);
    }
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<u64>>());

    // Both nodes see the 200 messages in seq order.
    for rx in [&mut rx, &mut other_rx] {
        let mut seen = Vec::new();
        while seen.len() < 200 {
            let env = wait_for(rx, 5, |e| matches!(e.event, Event::Message { .. })).await;
            if let Event::Message { message } = env.event {
                seen.push(message.seq);
            }
        }
        assert_eq!(seen, (1..=200).collect::<Vec<u64>>());
    }

    let page = e.messages_after(&lid("chat"), 0, 500).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<u64>>()
    );
    let page = e.messages_after(&lid("chat"), 195, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![196, 197, 198]
    );
    assert!(e
        .messages_after(&lid("nope"), 0, 10)
        .await
        .unwrap()
        .is_empty());
    let m = e
        .message(&lid("chat"), &MessageId::from("m-2-7"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.content, "hello 2/7 \"q\" ü");
    assert_eq!(m.created_at, NOW + 7);

    // replied must be a message of the lobby; a failed send uses no seq.
    let u0 = uid("u0");
    let bad = e
        .append_message(
            actor!(u0, o),
            &lid("chat"),
            &MessageId::from("x"),
            "r",
            Some(&MessageId::from("nope")),
            NOW,
        )
        .await;
    assert_eq!(refused(bad), DomainError::NotFound);
    let r = e
        .append_message(
            actor!(u0, o),
            &lid("chat"),
            &MessageId::from("r"),
            "r",
            Some(&MessageId::from("m-1-1")),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!((r.seq, r.replied), (201, Some(MessageId::from("m-1-1"))));

    // Editing: author only; members get MessageUpdated.
    let u1 = uid("u1");
    assert_eq!(
        refused(
            e.change_message(
                actor!(u1, o),
                &lid("chat"),
                &MessageId::from("r"),
                "no",
                NOW
            )
            .await
        ),
        DomainError::Forbidden
    );
    let m = e
        .change_message(
            actor!(u0, o),
            &lid("chat"),
            &MessageId::from("r"),
            "edited",
            NOW + 99,
        )
        .await
        .unwrap();
    assert_eq!(
        (m.content.as_str(), m.updated_at, m.seq, m.created_at),
        ("edited", NOW + 99, 201, NOW)
    );
    let env = wait_for(&mut other_rx, 2, |e| {
        matches!(e.event, Event::MessageUpdated { .. })
    })
    .await;
    match env.event {
        Event::MessageUpdated {
            fields, updated_at, ..
        } => {
            assert_eq!(
                (fields.get("content"), updated_at),
                (Some(&json!("edited")), NOW + 99)
            );
        }
        _ => unreachable!(),
    }

    // Typing is published, not stored; a named message must exist.
    e.typing(actor!(u1, o), &lid("chat"), Some(&MessageId::from("r")))
        .await
        .unwrap();
    let env = wait_for(&mut other_rx, 2, |e| {
        matches!(e.event, Event::Typing { .. })
    })
    .await;
    assert!(matches!(
        env.event,
        Event::Typing {
            message: Some(_),
            ..
        }
    ));
    assert_eq!(
        refused(
            e.typing(actor!(u1, o), &lid("chat"), Some(&MessageId::from("zz")))
                .await
        ),
        DomainError::NotFound
    );

    // After unsubscribing, the lobby's events no longer arrive.
    other.unsubscribe_lobby(&lid("chat")).await.unwrap();
    drain(&mut other_rx, 100).await;
    e.typing(actor!(u1, o), &lid("chat"), None).await.unwrap();
    wait_for(&mut rx, 2, |e| {
        matches!(e.event, Event::Typing { message: None, .. })
    })
    .await;
    assert!(drain(&mut other_rx, 300)
        .await
        .iter()
        .all(|e| !matches!(e.event, Event::Typing { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_report_the_first_time_only() {
    let redis = RedisServer::start().await;
    let (e, mut rx) = node(&redis.url(), "n1", 3000).await;
    let (a, b, o) = (uid("a"), uid("b"), origin("1"));
    user(&e, "a", "ann").await;
    user(&e, "b", "bob").await;
    let mut s = spec("r");
    s.visibility = true;
    e.connect_lobby(actor!(a, o), s.clone(), NOW).await.unwrap();
    e.connect_lobby(actor!(b, o), s, NOW).await.unwrap();
    e.subscribe_lobby(&lid("r")).await.unwrap();
    let m = MessageId::from("m");
    e.append_message(actor!(a, o), &lid("r"), &m, "hi", None, NOW)
        .await
        .unwrap();

    assert!(e
        .record_receipt(actor!(b, o), &lid("r"), &m, ReceiptKind::Received)
        .await
        .unwrap());
    assert!(!e
        .record_receipt(actor!(b, o), &lid("r"), &m, ReceiptKind::Received)
        .await
        .unwrap());
    assert!(e
        .record_receipt(actor!(a, o), &lid("r"), &m, ReceiptKind::Viewed)
        .await
        .unwrap());
    assert!(
        !e.record_receipt(actor!(a, o), &lid("r"), &m, ReceiptKind::Received)
            .await
            .unwrap(),
        "viewing also records received"
    );
    assert!(!e
        .record_receipt(actor!(a, o), &lid("r"), &m, ReceiptKind::Viewed)
        .await
        .unwrap());
    let rec = e.message(&lid("r"), &m).await.unwrap().unwrap();
    assert_eq!(rec.received, vec![b.clone(), a.clone()]);
    assert_eq!(rec.viewed, vec![a.clone()]);
    let c = uid("c");
    user(&e, "c", "cee").await;
    assert_eq!(
        refused(
            e.record_receipt(actor!(c, o), &lid("r"), &m, ReceiptKind::Viewed)
                .await
        ),
        DomainError::Forbidden
    );
    assert_eq!(
        refused(
            e.record_receipt(
                actor!(b, o),
                &lid("r"),
                &MessageId::from("zz"),
                ReceiptKind::Viewed
            )
            .await
        ),
        DomainError::NotFound
    );

    let receipts: Vec<(ReceiptKind, UserId)> = drain(&mut rx, 300)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Receipt { kind, user, .. } => Some((kind, user)),
            _ => None,
        })
        .collect();
    assert_eq!(
        receipts,
        vec![(ReceiptKind::Received, b), (ReceiptKind::Viewed, a)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_across_nodes_reaping_and_shutdown() {
    let redis = RedisServer::start().await;
    let ttl = 600;
    let (n1, mut rx1) = node(&redis.url(), "n1", ttl).await;
    let (n2, mut rx2) = node(&redis.url(), "n2", ttl).await;
    let (a, b, o) = (uid("a"), uid("b"), origin("1"));
    user(&n1, "a", "ann").await;
    user(&n1, "b", "bob").await;
    n1.connect_lobby(actor!(a, o), spec("p"), NOW)
        .await
        .unwrap();

    // First connection anywhere: login, seen by the other node.
    n1.connection_up(&a, &o).await.unwrap();
    let env = wait_for(&mut rx2, 2, |e| matches!(e.event, Event::Presence { .. })).await;
    assert_eq!(env.origin, Some(o.clone()));
    match env.event {
        Event::Presence {
            kind,
            user,
            username,
            lobbies,
        } => {
            assert_eq!(
                (kind, user, username.as_deref(), lobbies),
                (PresenceKind::Login, a.clone(), Some("ann"), vec![lid("p")])
            );
        }
        _ => unreachable!(),
    }
    assert!(n2.user(&a).await.unwrap().unwrap().online);
    // Further connections and all but the last disconnect are silent.
    n2.connection_up(&a, &origin("2")).await.unwrap();
    n1.connection_up(&a, &origin("3")).await.unwrap();
    n1.connection_down(&a, PresenceKind::Disconnect)
        .await
        .unwrap();
    n1.connection_down(&a, PresenceKind::Disconnect)
        .await
        .unwrap();
    n2.connection_down(&a, PresenceKind::Logout).await.unwrap();
    let presence: Vec<PresenceKind> = drain(&mut rx1, 300)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Presence { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(presence, vec![PresenceKind::Login, PresenceKind::Logout]);
    assert!(!n1.user(&a).await.unwrap().unwrap().online);
    // A connection that is not counted any more is a no-op.
    n1.connection_down(&a, PresenceKind::Disconnect)
        .await
        .unwrap();

    // A node that dies (no shutdown): its users are reaped by another node.
    let (n3, _rx3) = node(&redis.url(), "n3", ttl).await;
    n3.connection_up(&b, &origin("b")).await.unwrap();
    wait_for(&mut rx1, 2, |e| {
        matches!(
            e.event,
            Event::Presence {
                kind: PresenceKind::Login,
                ..
            }
        )
    })
    .await;
    drop(n3);
    let started = Instant::now();
    let env = wait_for(&mut rx1, 5, |e| {
        matches!(
            e.event,
            Event::Presence {
                kind: PresenceKind::Disconnect,
                ..
            }
        )
    })
    .await;
    assert!(matches!(&env.event, Event::Presence { user, .. } if *user == b));
    // Within the TTL of the death (plus scheduling slack).
    assert!(
        started.elapsed() < Duration::from_millis(ttl + 200),
        "reaped after {:?}",
        started.elapsed()
    );
    assert!(!n1.user(&b).await.unwrap().unwrap().online);

    // A live node is never reaped; its heartbeat keeps it alive past the TTL.
    n2.connection_up(&b, &origin("b2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(ttl * 2)).await;
    assert_eq!(n1.reap_dead_nodes().await.unwrap(), 0);
    assert!(n1.user(&b).await.unwrap().unwrap().online);

    // Clean shutdown removes the node's presence at once.
    drain(&mut rx1, 50).await;
    n2.shutdown(0).await;
    let env = wait_for(&mut rx1, 2, |e| matches!(e.event, Event::Presence { .. })).await;
    assert!(matches!(
        env.event,
        Event::Presence {
            kind: PresenceKind::Disconnect,
            ..
        }
    ));
    assert!(!n1.user(&b).await.unwrap().unwrap().online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_repairs_itself() {
    let redis = RedisServer::start().await;
    let ttl = 600;
    let (n1, _rx1) = node(&redis.url(), "n1", ttl).await;
    let (n2, mut rx2) = node(&redis.url(), "n2", ttl).await;
    let (a, b) = (uid("a"), uid("b"));
    user(&n1, "a", "ann").await;
    user(&n1, "b", "bob").await;
    n1.connection_up(&a, &origin("a")).await.unwrap();
    wait_for(&mut rx2, 2, |e| {
        matches!(
            e.event,
            Event::Presence {
                kind: PresenceKind::Login,
                ..
            }
        )
    })
    .await;

    // n1 is reaped while alive (say, a long pause made its key expire):
    // its heartbeat notices and restores its users' presence.
    let client = deadpool_redis::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = deadpool_redis::redis::cmd("DEL")
        .arg("lobbyd:node:n1:alive")
        .query_async(&mut conn)
        .await
        .unwrap();
    n2.reap_dead_nodes().await.unwrap();
    wait_for(&mut rx2, 2, |e| {
        matches!(
            e.event,
            Event::Presence {
                kind: PresenceKind::Disconnect,
                ..
            }
        )
    })
    .await;
    wait_for(&mut rx2, 2, |e| {
        matches!(
            e.event,
            Event::Presence {
                kind: PresenceKind::Login,
                ..
            }
        )
    })
    .await;
    assert!(n2.user(&a).await.unwrap().unwrap().online);

    // A node restarted under the same id forgets its predecessor's connections.
    n1.connection_up(&b, &origin("b")).await.unwrap();
    wait_for(&mut rx2, 2, |e| matches!(&e.event, Event::Presence { kind: PresenceKind::Login, user, .. } if *user == b)).await;
    drop(n1);
    let (_n1, _rx) = node(&redis.url(), "n1", ttl).await;
    let mut gone = Vec::new();
    while gone.len() < 2 {
        let env = wait_for(&mut rx2, 2, |e| {
            matches!(
                e.event,
                Event::Presence {
                    kind: PresenceKind::Disconnect,
                    ..
                }
            )
        })
        .await;
        if let Event::Presence { user, .. } = env.event {
            gone.push(user);
        }
    }
    gone.sort();
    assert_eq!(gone, vec![a.clone(), b.clone()]);
    assert!(!n2.user(&a).await.unwrap().unwrap().online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kick_reaches_every_node() {
    let redis = RedisServer::start().await;
    let (n1, _rx1) = node(&redis.url(), "n1", 3000).await;
    let (_n2, mut rx2) = node(&redis.url(), "n2", 3000).await;
    n1.kick(&uid("a"), &origin("k")).await.unwrap();
    let env = wait_for(&mut rx2, 2, |e| matches!(e.event, Event::Kick { .. })).await;
    assert_eq!(env.origin, Some(origin("k")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unavailable_fast_when_redis_dies() {
    let mut redis = RedisServer::start().await;
    let (e, _rx) = node(&redis.url(), "n1", 3000).await;
    let (a, o) = (uid("a"), origin("1"));
    user(&e, "a", "ann").await;
    e.connect_lobby(actor!(a, o), spec("l"), NOW).await.unwrap();
    e.ping().await.unwrap();
    redis.stop();

    for _ in 0..2 {
        let started = Instant::now();
        let r = e
            .append_message(
                actor!(a, o),
                &lid("l"),
                &MessageId::from("m"),
                "x",
                None,
                NOW,
            )
            .await;
        assert!(matches!(r, Err(EngineError::Unavailable(_))), "{r:?}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(matches!(e.ping().await, Err(EngineError::Unavailable(_))));
        assert!(matches!(
            e.subscribe_lobby(&lid("l")).await,
            Err(EngineError::Unavailable(_))
        ));
        assert!(matches!(
            e.connection_up(&a, &o).await,
            Err(EngineError::Unavailable(_))
        ));
        assert!(started.elapsed() < Duration::from_millis(7500));
    }

    // Connecting to a dead Redis fails fast too.
    let (tx, _rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let r = RedisEngine::connect(&redis.url(), "n2", 3000, tx).await;
    assert!(matches!(r, Err(EngineError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unavailable_not_hanging_when_redis_stalls() {
    let redis = RedisServer::start().await;
    let (e, mut rx) = node(&redis.url(), "n1", 3000).await;
    let (a, o) = (uid("a"), origin("1"));
    user(&e, "a", "ann").await;
    let mut s = spec("l");
    s.visibility = true;
    e.connect_lobby(actor!(a, o), s, NOW).await.unwrap();
    e.subscribe_lobby(&lid("l")).await.unwrap();
    let pid = redis.pid().expect("running").to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());

    let started = Instant::now();
    let r = e.typing(actor!(a, o), &lid("l"), None).await;
    assert!(matches!(r, Err(EngineError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(matches!(e.user(&a).await, Err(EngineError::Unavailable(_))));
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );

    // Once Redis answers again, so does the engine, events included.
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while e.ping().await.is_err() {
        assert!(Instant::now() < deadline, "engine did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        e.typing(actor!(a, o), &lid("l"), Some(&MessageId::from("zz")))
            .await
            .unwrap_err();
        e.typing(actor!(a, o), &lid("l"), None).await.unwrap();
        let got = drain(&mut rx, 200)
            .await
            .iter()
            .any(|e| matches!(e.event, Event::Typing { .. }));
        if got {
            break;
        }
        assert!(Instant::now() < deadline, "events did not resume");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resubscribes_after_redis_restarts() {
    let mut redis = RedisServer::start().await;
    let (e, mut rx) = node(&redis.url(), "n1", 3000).await;
    let mut resubscribed = e.resubscribed();
    e.subscribe_lobby(&lid("l")).await.unwrap();
    redis.stop();
    // Same port again: the subscriber reconnects and resubscribes.
    redis.restart().await;
    tokio::time::timeout(Duration::from_secs(10), resubscribed.changed())
        .await
        .expect("resubscribed in time")
        .unwrap();
    assert!(e.reconnects() >= 1);

    let (a, o) = (uid("a"), origin("1"));
    user(&e, "a", "ann").await;
    let mut s = spec("l");
    s.visibility = true;
    e.connect_lobby(actor!(a, o), s, NOW).await.unwrap();
    e.typing(actor!(a, o), &lid("l"), None).await.unwrap();
    wait_for(&mut rx, 3, |e| matches!(e.event, Event::Typing { .. })).await;
}
