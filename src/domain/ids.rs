//! Typed ids: a user's id cannot be passed where a market's is expected. Each is a
//! `Uuid` underneath, the same on the wire (serde-transparent) and in Postgres (`uuid`).
use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use uuid::Uuid;

type SqlError = Box<dyn std::error::Error + Sync + Send>;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn new_random() -> $name {
                $name(Uuid::new_v4())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> $name {
                $name(u)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<$name, uuid::Error> {
                Uuid::parse_str(s).map($name)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, SqlError> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <Uuid as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<$name, SqlError> {
                Uuid::from_sql(ty, raw).map($name)
            }

            fn accepts(ty: &Type) -> bool {
                <Uuid as FromSql>::accepts(ty)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .build()
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// `users.id`.
    UserId
);
id_type!(
    /// `events.id`.
    EventId
);
id_type!(
    /// `markets.id`.
    MarketId
);
id_type!(
    /// `selections.id`.
    SelectionId
);
id_type!(
    /// `bets.id`.
    BetId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_uuids_on_the_wire() {
        let u = Uuid::new_v4();
        let id = MarketId(u);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            serde_json::to_string(&u).unwrap()
        );
        let back: MarketId = serde_json::from_str(&format!("\"{u}\"")).unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), u.to_string());
        assert_eq!(u.to_string().parse::<MarketId>().unwrap(), id);
        assert!("not-a-uuid".parse::<BetId>().is_err());
    }

    #[test]
    fn ids_take_the_uuid_type_in_postgres() {
        assert!(<UserId as ToSql>::accepts(&Type::UUID));
        assert!(!<UserId as ToSql>::accepts(&Type::TEXT));
        let id = BetId::new_random();
        let mut buf = BytesMut::new();
        id.to_sql(&Type::UUID, &mut buf).unwrap();
        assert_eq!(BetId::from_sql(&Type::UUID, &buf).unwrap(), id);
    }
}
