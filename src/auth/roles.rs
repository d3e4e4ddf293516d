//! Roles and the one table that says which role may use which class of route.
use serde::{Deserialize, Serialize};

/// The `user_role` enum of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Support,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Support => "support",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Place in the staff hierarchy: user < support < moderator < admin.
    pub fn rank(self) -> u8 {
        match self {
            Role::User => 0,
            Role::Support => 1,
            Role::Moderator => 2,
            Role::Admin => 3,
        }
    }

    /// May an account of this role change an account of role `target`? Only one whose
    /// role is strictly below its own (docs/accounts.md, "Who may change whom"), so no
    /// staff member can lock out a peer or a superior.
    pub fn may_change(self, target: Role) -> bool {
        target.rank() < self.rank()
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "support" => Some(Role::Support),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Classes of protected routes. Every protected handler names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// A signed-in account acting on itself (`/me`, wallet, bets).
    Account,
    /// Trading reads: liability, users, audit.
    TradingRead,
    /// Trading actions: create, price, suspend, settle.
    TradingWrite,
    /// Support work on customers' accounts: the verification queue and its decisions.
    Support,
    /// Operations reserved to administrators (db-health).
    Admin,
}

/// The single authorization table: may `role` use routes of `class`?
pub fn allowed(role: Role, class: RouteClass) -> bool {
    use RouteClass as C;
    match (class, role) {
        (C::Account, _) => true,
        (C::TradingRead, Role::Support | Role::Moderator | Role::Admin) => true,
        (C::TradingRead, Role::User) => false,
        (C::TradingWrite, Role::Moderator | Role::Admin) => true,
        (C::TradingWrite, Role::User | Role::Support) => false,
        (C::Support, Role::Support | Role::Moderator | Role::Admin) => true,
        (C::Support, Role::User) => false,
        (C::Admin, Role::Admin) => true,
        (C::Admin, Role::User | Role::Support | Role::Moderator) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_change_only_accounts_below_their_own_role() {
        let all = [Role::User, Role::Support, Role::Moderator, Role::Admin];
        for actor in all {
            for target in all {
                assert_eq!(actor.may_change(target), target.rank() < actor.rank());
            }
        }
        assert!(!Role::Moderator.may_change(Role::Admin));
        assert!(!Role::Admin.may_change(Role::Admin));
        assert!(Role::Admin.may_change(Role::Moderator));
    }

    #[test]
    fn role_table_matches_the_contract() {
        let all = [Role::User, Role::Support, Role::Moderator, Role::Admin];
        for r in all {
            assert!(allowed(r, RouteClass::Account));
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(!allowed(Role::User, RouteClass::TradingRead));
        assert!(allowed(Role::Support, RouteClass::TradingRead));
        assert!(!allowed(Role::Support, RouteClass::TradingWrite));
        assert!(allowed(Role::Moderator, RouteClass::TradingWrite));
        assert!(!allowed(Role::Moderator, RouteClass::Admin));
        assert!(allowed(Role::Admin, RouteClass::Admin));
        assert!(!allowed(Role::User, RouteClass::Support));
        assert!(allowed(Role::Support, RouteClass::Support));
        assert!(allowed(Role::Admin, RouteClass::Support));
    }
}
