//! Who may see and do what: the graded access model of the protocol as pure
//! functions over records, used by both engines and by the views.

use super::records::{LobbyRecord, MessageRecord, UserRecord};
use super::{token, UserId};

/// How much of an object a caller sees; ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    Public,
    Partial,
    Private,
}

impl AccessLevel {
    /// The wire name (`level` of an info object).
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Public => "public",
            AccessLevel::Partial => "partial",
            AccessLevel::Private => "private",
        }
    }
}

/// A caller's strongest role on a lobby; it decides the permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LobbyRole {
    None,
    Member,
    TokenHolder,
    Owner,
}

/// Something `use_action` or `update_data` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    SetOwner,
    SetToken,
    SetVisibility,
    AddUser,
    AddUsers,
    DeleteUser,
    DeleteUsers,
    Update,
}

impl Permission {
    /// The wire name, as listed in `permissions` and used as `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SetOwner => "setOwner",
            Permission::SetToken => "setToken",
            Permission::SetVisibility => "setVisibility",
            Permission::AddUser => "addUser",
            Permission::AddUsers => "addUsers",
            Permission::DeleteUser => "deleteUser",
            Permission::DeleteUsers => "deleteUsers",
            Permission::Update => "update",
        }
    }
}

use Permission::*;
const LOBBY_OWNER: &[Permission] = &[
    SetOwner,
    SetToken,
    SetVisibility,
    AddUser,
    AddUsers,
    DeleteUser,
    DeleteUsers,
    Update,
];
const LOBBY_TOKEN_HOLDER: &[Permission] = &[
    SetVisibility,
    AddUser,
    AddUsers,
    DeleteUser,
    DeleteUsers,
    Update,
];
const LOBBY_MEMBER: &[Permission] = &[AddUser, AddUsers];
const USER_SELF: &[Permission] = &[SetToken, SetVisibility, Update];
const MESSAGE_AUTHOR: &[Permission] = &[Update];

/// The caller's role on a lobby, given the token it presented (if any).
pub fn lobby_role(lobby: &LobbyRecord, caller: &UserId, presented: Option<&str>) -> LobbyRole {
    if &lobby.owner == caller {
        LobbyRole::Owner
    } else if presented.is_some_and(|t| token::matches(t, &lobby.token)) {
        LobbyRole::TokenHolder
    } else if lobby.members.binary_search(caller).is_ok() {
        LobbyRole::Member
    } else {
        LobbyRole::None
    }
}

/// What a lobby role may do.
pub fn lobby_permissions(role: LobbyRole) -> &'static [Permission] {
    match role {
        LobbyRole::Owner => LOBBY_OWNER,
        LobbyRole::TokenHolder => LOBBY_TOKEN_HOLDER,
        LobbyRole::Member => LOBBY_MEMBER,
        LobbyRole::None => &[],
    }
}

/// The caller's access level to a lobby; `None` means not found.
pub fn lobby_level(
    lobby: &LobbyRecord,
    caller: &UserId,
    presented: Option<&str>,
) -> Option<AccessLevel> {
    match lobby_role(lobby, caller, presented) {
        LobbyRole::Owner | LobbyRole::TokenHolder => Some(AccessLevel::Private),
        LobbyRole::Member => Some(AccessLevel::Partial),
        LobbyRole::None if lobby.visibility => Some(AccessLevel::Public),
        LobbyRole::None => None,
    }
}

/// The refusal for a lobby-scoped request by a non-member: `Forbidden`
/// when the caller can see the lobby (owner or visible), else `NotFound`.
pub fn non_member_refusal(lobby: &LobbyRecord, caller: &UserId) -> super::DomainError {
    if &lobby.owner == caller || lobby.visibility {
        super::DomainError::Forbidden
    } else {
        super::DomainError::NotFound
    }
}

/// Whether a caller may join: member, owner, token holder or visible lobby.
pub fn may_join(lobby: &LobbyRecord, caller: &UserId, presented: Option<&str>) -> bool {
    lobby.visibility || lobby_role(lobby, caller, presented) != LobbyRole::None
}

/// The caller's access level to a user. `shares_lobby` says whether the two
/// have a lobby in common (the caller's partial access).
pub fn user_level(
    user: &UserRecord,
    caller: &UserId,
    presented: Option<&str>,
    shares_lobby: bool,
) -> Option<AccessLevel> {
    if &user.id == caller
        || presented.is_some_and(|t| token::matches(&token::hash(t), &user.token_hash))
    {
        Some(AccessLevel::Private)
    } else if shares_lobby {
        Some(AccessLevel::Partial)
    } else if user.visibility {
        Some(AccessLevel::Public)
    } else {
        None
    }
}

/// What a caller may do to a user: only the user itself acts on it.
pub fn user_permissions(user: &UserRecord, caller: &UserId) -> &'static [Permission] {
    if &user.id == caller {
        USER_SELF
    } else {
        &[]
    }
}

/// The caller's level on a message, given whether it is a member of the
/// message's lobby. Non-members never see messages, authors included.
pub fn message_level(
    message: &MessageRecord,
    caller: &UserId,
    is_member: bool,
) -> Option<AccessLevel> {
    match (is_member, &message.author == caller) {
        (false, _) => None,
        (true, true) => Some(AccessLevel::Private),
        (true, false) => Some(AccessLevel::Partial),
    }
}

/// What a caller may do to a message: its author may update it.
pub fn message_permissions(message: &MessageRecord, caller: &UserId) -> &'static [Permission] {
    if &message.author == caller {
        MESSAGE_AUTHOR
    } else {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LobbyId;

    fn lobby(visible: bool) -> LobbyRecord {
        LobbyRecord {
            id: LobbyId::from("l"),
            owner: UserId::from("owner"),
            token: "tok".into(),
            visibility: visible,
            size_limit: None,
            description: None,
            created_at: 0,
            updated_at: 0,
            members: vec![UserId::from("m"), UserId::from("owner")],
        }
    }

    #[test]
    fn lobby_roles_and_levels() {
        let l = lobby(false);
        let who = |s: &str| UserId::from(s);
        assert_eq!(lobby_role(&l, &who("owner"), None), LobbyRole::Owner);
        assert_eq!(
            lobby_role(&l, &who("x"), Some("tok")),
            LobbyRole::TokenHolder
        );
        assert_eq!(lobby_role(&l, &who("m"), Some("bad")), LobbyRole::Member);
        assert_eq!(lobby_level(&l, &who("x"), None), None);
        assert_eq!(
            lobby_level(&lobby(true), &who("x"), None),
            Some(AccessLevel::Public)
        );
        assert_eq!(lobby_level(&l, &who("m"), None), Some(AccessLevel::Partial));
        assert_eq!(
            lobby_level(&l, &who("x"), Some("tok")),
            Some(AccessLevel::Private)
        );
        assert_eq!(lobby_permissions(LobbyRole::Member), &[AddUser, AddUsers]);
        assert_eq!(lobby_permissions(LobbyRole::TokenHolder).len(), 6);
        assert_eq!(lobby_permissions(LobbyRole::Owner).len(), 8);
    }

    #[test]
    fn non_members_learn_existence_only_when_they_can_see() {
        let who = UserId::from("x");
        assert_eq!(
            non_member_refusal(&lobby(true), &who),
            crate::domain::DomainError::Forbidden
        );
        assert_eq!(
            non_member_refusal(&lobby(false), &who),
            crate::domain::DomainError::NotFound
        );
        assert!(may_join(&lobby(false), &who, Some("tok")));
        assert!(!may_join(&lobby(false), &who, None));
    }

    #[test]
    fn user_levels() {
        let u = UserRecord {
            id: UserId::from("u"),
            username: None,
            visibility: false,
            token_hash: token::hash("secret"),
            created_at: 0,
            updated_at: 0,
        };
        let x = UserId::from("x");
        assert_eq!(
            user_level(&u, &u.id, None, false),
            Some(AccessLevel::Private)
        );
        assert_eq!(
            user_level(&u, &x, Some("secret"), false),
            Some(AccessLevel::Private)
        );
        assert_eq!(user_level(&u, &x, None, true), Some(AccessLevel::Partial));
        assert_eq!(user_level(&u, &x, None, false), None);
        assert!(user_permissions(&u, &x).is_empty());
    }
}
