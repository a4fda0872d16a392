//! The memory engine's data, and the membership invariant (a lobby's
//! member list and each user's lobby set change together).

use crate::domain::access;
use crate::domain::{
    DomainError, LobbyId, LobbyRecord, MessageId, MessageRecord, UserId, UserRecord,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One lobby's stored state.
#[derive(Default)]
pub(super) struct LobbyState {
    pub(super) record: Option<LobbyRecord>,
    /// Messages in seq order (index = seq - 1).
    pub(super) messages: Vec<MessageRecord>,
    /// Message id -> index in `messages`.
    pub(super) by_id: HashMap<MessageId, usize>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) users: BTreeMap<UserId, UserRecord>,
    pub(super) user_lobbies: HashMap<UserId, BTreeSet<LobbyId>>,
    pub(super) token_index: HashMap<String, UserId>,
    pub(super) lobbies: BTreeMap<LobbyId, LobbyState>,
    /// Live connections per user (this is the only node).
    pub(super) online: HashMap<UserId, usize>,
}

impl State {
    pub(super) fn lobby(&self, id: &LobbyId) -> Option<&LobbyRecord> {
        self.lobbies.get(id).and_then(|l| l.record.as_ref())
    }

    pub(super) fn lobby_mut(&mut self, id: &LobbyId) -> Option<&mut LobbyState> {
        self.lobbies.get_mut(id).filter(|l| l.record.is_some())
    }

    pub(super) fn lobbies_of(&self, user: &UserId) -> Vec<LobbyId> {
        self.user_lobbies
            .get(user)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Checks that `user` is a member; else the non-member refusal.
    pub(super) fn member_lobby(
        &self,
        lobby: &LobbyId,
        user: &UserId,
    ) -> Result<&LobbyRecord, DomainError> {
        let l = self.lobby(lobby).ok_or(DomainError::NotFound)?;
        if l.members.binary_search(user).is_ok() {
            Ok(l)
        } else {
            Err(access::non_member_refusal(l, user))
        }
    }

    pub(super) fn add_member(&mut self, lobby: &LobbyId, user: &UserId) {
        if let Some(rec) = self.lobby_mut(lobby).and_then(|l| l.record.as_mut()) {
            if let Err(pos) = rec.members.binary_search(user) {
                rec.members.insert(pos, user.clone());
            }
        }
        self.user_lobbies
            .entry(user.clone())
            .or_default()
            .insert(lobby.clone());
    }

    pub(super) fn remove_member(&mut self, lobby: &LobbyId, user: &UserId) {
        if let Some(rec) = self.lobby_mut(lobby).and_then(|l| l.record.as_mut()) {
            if let Ok(pos) = rec.members.binary_search(user) {
                rec.members.remove(pos);
            }
        }
        if let Some(set) = self.user_lobbies.get_mut(user) {
            set.remove(lobby);
        }
    }

    pub(super) fn username(&self, user: &UserId) -> Option<String> {
        self.users.get(user).and_then(|u| u.username.clone())
    }
}
