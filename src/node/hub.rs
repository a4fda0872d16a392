//! Local connections per user and local member users per lobby: who on
//! this node receives a lobby's or user's events. The node, not each
//! connection, holds a lobby subscription: the first local member
//! subscribes, the last one leaving unsubscribes.

use super::session::{ConnId, Outbox};
use crate::domain::{LobbyId, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// What the delivery of a lobby message with a given seq should do.
#[derive(Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next one (or the first seen): deliver it.
    Next,
    /// Already delivered: drop it.
    Duplicate,
    /// Messages after `last` and before this one were missed: fetch them
    /// from history first.
    Gap { last: u64 },
    /// No local member: nobody to deliver to.
    NotLocal,
}

/// A lobby with local members.
#[derive(Default)]
struct LocalLobby {
    members: HashSet<UserId>,
    /// Highest seq delivered here (0: none yet). Written only by the
    /// dispatcher task; it goes away with the subscription, so a later
    /// subscription starts fresh.
    last_seq: AtomicU64,
}

/// A change of the node's lobby subscriptions that the caller must apply.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubscriptionDelta {
    pub subscribe: Vec<LobbyId>,
    pub unsubscribe: Vec<LobbyId>,
}

#[derive(Default)]
struct LocalUser {
    conns: Vec<(ConnId, Outbox)>,
    lobbies: HashSet<LobbyId>,
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, LocalUser>,
    /// Local users that are members, per lobby.
    lobbies: HashMap<LobbyId, LocalLobby>,
}

/// The routing table of one node. Reads (deliveries) take a shared lock
/// and never await; writes happen on login, logout and membership changes.
#[derive(Default)]
pub struct Hub {
    state: RwLock<State>,
}

impl Hub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches a logged-in connection. Returns whether it is the user's
    /// first connection on this node.
    pub fn attach(&self, user: &UserId, conn: ConnId, outbox: Outbox) -> bool {
        let mut st = self.write();
        let u = st.users.entry(user.clone()).or_default();
        u.conns.push((conn, outbox));
        let first = u.conns.len() == 1;
        if first {
            crate::telemetry::metrics::metrics()
                .users_logged_in
                .add(1, &[]);
        }
        first
    }

    /// Detaches a connection; when it was the user's last one here, the
    /// user leaves every local lobby set.
    pub fn detach(&self, user: &UserId, conn: ConnId) -> SubscriptionDelta {
        let mut st = self.write();
        let mut delta = SubscriptionDelta::default();
        let Some(u) = st.users.get_mut(user) else {
            return delta;
        };
        u.conns.retain(|(c, _)| *c != conn);
        if !u.conns.is_empty() {
            return delta;
        }
        let u = st.users.remove(user).expect("present");
        crate::telemetry::metrics::metrics()
            .users_logged_in
            .add(-1, &[]);
        for l in u.lobbies {
            if remove_member(&mut st.lobbies, &l, user) {
                delta.unsubscribe.push(l);
            }
        }
        delta
    }

    /// Records that a local user is a member of these lobbies (no effect
    /// for users with no local connection).
    pub fn add_memberships(&self, user: &UserId, lobbies: &[LobbyId]) -> SubscriptionDelta {
        let mut st = self.write();
        let mut delta = SubscriptionDelta::default();
        let State {
            users,
            lobbies: map,
        } = &mut *st;
        let Some(u) = users.get_mut(user) else {
            return delta;
        };
        for l in lobbies {
            if u.lobbies.insert(l.clone()) {
                let local = map.entry(l.clone()).or_default();
                if local.members.is_empty() {
                    delta.subscribe.push(l.clone());
                }
                local.members.insert(user.clone());
            }
        }
        delta
    }

    /// Records that a local user left a lobby.
    pub fn remove_membership(&self, user: &UserId, lobby: &LobbyId) -> SubscriptionDelta {
        let mut st = self.write();
        let mut delta = SubscriptionDelta::default();
        let Some(u) = st.users.get_mut(user) else {
            return delta;
        };
        if u.lobbies.remove(lobby) && remove_member(&mut st.lobbies, lobby, user) {
            delta.unsubscribe.push(lobby.clone());
        }
        delta
    }

    /// Whether any local user is a member of the lobby (its subscription
    /// is wanted).
    pub fn has_lobby(&self, lobby: &LobbyId) -> bool {
        self.read().lobbies.contains_key(lobby)
    }

    /// Calls `f` once for every local connection of the lobby's members.
    pub fn for_lobby(&self, lobby: &LobbyId, mut f: impl FnMut(&UserId, ConnId, &Outbox)) {
        let st = self.read();
        if let Some(local) = st.lobbies.get(lobby) {
            for user in &local.members {
                if let Some(u) = st.users.get(user) {
                    for (c, o) in &u.conns {
                        f(user, *c, o);
                    }
                }
            }
        }
    }

    /// Calls `f` once for every local connection of the user itself (when
    /// `include_user`) and of every member of the given lobbies, each
    /// connection once however many lobbies it shares.
    pub fn for_co_members(
        &self,
        user: &UserId,
        lobbies: &[LobbyId],
        include_user: bool,
        mut f: impl FnMut(&UserId, ConnId, &Outbox),
    ) {
        let st = self.read();
        let mut seen: HashSet<&UserId> = HashSet::new();
        if !include_user {
            seen.insert(user);
        } else if let Some(u) = st.users.get(user) {
            seen.insert(user);
            for (c, o) in &u.conns {
                f(user, *c, o);
            }
        }
        for l in lobbies {
            let Some(local) = st.lobbies.get(l) else {
                continue;
            };
            for m in &local.members {
                if !seen.insert(m) {
                    continue;
                }
                if let Some(u) = st.users.get(m) {
                    for (c, o) in &u.conns {
                        f(m, *c, o);
                    }
                }
            }
        }
    }

    /// Calls `f` for every local connection of the user.
    pub fn for_user(&self, user: &UserId, mut f: impl FnMut(ConnId, &Outbox)) {
        if let Some(u) = self.read().users.get(user) {
            for (c, o) in &u.conns {
                f(*c, o);
            }
        }
    }

    /// Lobbies with local members and the last seq delivered in each
    /// (0: none yet), to catch up after the fan-out lost events.
    pub fn lobbies(&self) -> Vec<(LobbyId, u64)> {
        self.read()
            .lobbies
            .iter()
            .map(|(l, local)| (l.clone(), local.last_seq.load(Ordering::Relaxed)))
            .collect()
    }

    /// Forgets how far a lobby was delivered, setting it to `seq`: the
    /// store's history restarted below it (data loss or failover to a
    /// lagging replica), so later seqs are new messages, not duplicates.
    pub fn reset_seq(&self, lobby: &LobbyId, seq: u64) {
        if let Some(local) = self.read().lobbies.get(lobby) {
            local.last_seq.store(seq, Ordering::Relaxed);
        }
    }

    /// Decides what to do with message `seq` of a lobby, recording it as
    /// delivered when it is the next one.
    pub fn check_seq(&self, lobby: &LobbyId, seq: u64) -> SeqCheck {
        let st = self.read();
        let Some(local) = st.lobbies.get(lobby) else {
            return SeqCheck::NotLocal;
        };
        let last = local.last_seq.load(Ordering::Relaxed);
        if last == 0 || seq == last + 1 {
            local.last_seq.store(seq, Ordering::Relaxed);
            SeqCheck::Next
        } else if seq <= last {
            SeqCheck::Duplicate
        } else {
            SeqCheck::Gap { last }
        }
    }

    /// Users with a connection on this node.
    pub fn local_users(&self) -> Vec<UserId> {
        self.read().users.keys().cloned().collect()
    }
}

/// Removes a user from a lobby set; true when the set became empty.
fn remove_member(map: &mut HashMap<LobbyId, LocalLobby>, lobby: &LobbyId, user: &UserId) -> bool {
    if let Some(local) = map.get_mut(lobby) {
        local.members.remove(user);
        if local.members.is_empty() {
            map.remove(lobby);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::session::Outbox;

    fn ids(v: &[&str]) -> Vec<LobbyId> {
        v.iter().map(|s| LobbyId::from(*s)).collect()
    }

    #[test]
    fn first_member_subscribes_last_unsubscribes() {
        let hub = Hub::default();
        let (a, b) = (UserId::from("a"), UserId::from("b"));
        let (oa, _ra) = Outbox::for_test();
        let (ob, _rb) = Outbox::for_test();
        assert!(hub.attach(&a, 1, oa));
        assert!(hub.attach(&b, 2, ob));
        assert_eq!(
            hub.add_memberships(&a, &ids(&["l1", "l2"])).subscribe.len(),
            2
        );
        assert!(hub.add_memberships(&b, &ids(&["l1"])).subscribe.is_empty());
        assert_eq!(hub.detach(&a, 1).unsubscribe, ids(&["l2"]));
        assert_eq!(
            hub.remove_membership(&b, &LobbyId::from("l1")).unsubscribe,
            ids(&["l1"])
        );
        assert!(hub.lobbies().is_empty());
    }

    #[test]
    fn seq_checks_find_duplicates_and_gaps() {
        let hub = Hub::default();
        let a = UserId::from("a");
        let l = LobbyId::from("l");
        let (oa, _ra) = Outbox::for_test();
        assert_eq!(hub.check_seq(&l, 1), SeqCheck::NotLocal);
        hub.attach(&a, 1, oa);
        hub.add_memberships(&a, std::slice::from_ref(&l));
        assert_eq!(hub.check_seq(&l, 5), SeqCheck::Next);
        assert_eq!(hub.check_seq(&l, 6), SeqCheck::Next);
        assert_eq!(hub.check_seq(&l, 6), SeqCheck::Duplicate);
        assert_eq!(hub.check_seq(&l, 9), SeqCheck::Gap { last: 6 });
        assert_eq!(hub.check_seq(&l, 7), SeqCheck::Next);
        hub.detach(&a, 1);
        assert!(hub.lobbies().is_empty());
    }

    #[test]
    fn co_members_get_one_delivery_per_connection() {
        let hub = Hub::default();
        let (a, b) = (UserId::from("a"), UserId::from("b"));
        let (oa, _ra) = Outbox::for_test();
        let (ob, _rb) = Outbox::for_test();
        hub.attach(&a, 1, oa);
        hub.attach(&b, 2, ob);
        hub.add_memberships(&a, &ids(&["l1", "l2"]));
        hub.add_memberships(&b, &ids(&["l1", "l2"]));
        let mut got = Vec::new();
        hub.for_co_members(&a, &ids(&["l1", "l2"]), false, |_, c, _| got.push(c));
        assert_eq!(got, vec![2]);
    }
}
