//! An account's standing (`users.status`) and what it allows.

wire_enum! {
    /// `users.status`: a trader's or the registration's word on the account.
    pub enum UserStatus: "user_status" {
        Active = "active",
        Suspended = "suspended",
        Banned = "banned",
        /// Registered, not yet activated (the seed's state; bets are allowed unless the
        /// verification gate says otherwise).
        Pending = "pending",
    }
}

impl UserStatus {
    /// Why the account may neither bet nor log in, if it may not.
    pub const fn restriction(self) -> Option<&'static str> {
        match self {
            UserStatus::Banned => Some("account banned"),
            UserStatus::Suspended => Some("account suspended"),
            UserStatus::Active | UserStatus::Pending => None,
        }
    }

    /// Suspended or banned: no bets, no sessions, no deposits.
    pub const fn is_restricted(self) -> bool {
        self.restriction().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_suspended_and_banned_accounts_are_restricted() {
        let restricted: Vec<_> = UserStatus::ALL
            .iter()
            .filter(|s| s.is_restricted())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(restricted, ["suspended", "banned"]);
        assert_eq!("banned".parse(), Ok(UserStatus::Banned));
        assert!("closed".parse::<UserStatus>().is_err());
    }

    #[test]
    fn the_enum_reads_from_its_postgres_type_and_text_only() {
        use tokio_postgres::types::{FromSql, Kind, Type};
        let pg = Type::new(
            "user_status".into(),
            0,
            Kind::Enum(vec!["active".into()]),
            "public".into(),
        );
        assert!(<UserStatus as FromSql>::accepts(&pg));
        assert!(<UserStatus as FromSql>::accepts(&Type::TEXT));
        assert!(!<UserStatus as FromSql>::accepts(&Type::INT4));
        assert_eq!(
            UserStatus::from_sql(&Type::TEXT, b"suspended").unwrap(),
            UserStatus::Suspended
        );
        assert!(UserStatus::from_sql(&Type::TEXT, b"closed").is_err());
    }
}
