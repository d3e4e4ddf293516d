//! `wire_enum!`: declares an enum whose values travel as fixed lowercase strings (a Postgres
//! enum type, a JSON field), with serde, `as_str`, `Display`, `FromStr` and `ALL` agreeing.

use thiserror::Error;

/// Longest part of an unknown input echoed back in [`UnknownVariant`]: errors stay small
/// whatever a client sends.
const ECHO_CHARS_MAX: usize = 32;

/// A string that is none of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {type_name} value {value:?}")]
pub struct UnknownVariant {
    /// The wire name of the type, e.g. `market_status`.
    pub type_name: &'static str,
    /// The refused input, cut to a bounded length.
    pub value: String,
}

impl UnknownVariant {
    pub(crate) fn new(type_name: &'static str, value: &str) -> Self {
        let value = value.chars().take(ECHO_CHARS_MAX).collect();
        UnknownVariant { type_name, value }
    }
}

/// `wire_enum! { /// doc  pub enum Name: "wire_type" { Variant = "spelling", ... } }`
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $wire:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order (for exhaustive tests and listings).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The name of the type on the wire and in Postgres.
            pub const WIRE_TYPE: &'static str = $wire;

            /// The value's spelling on the wire and in Postgres.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::wire_enum::UnknownVariant;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                match input {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::wire_enum::UnknownVariant::new($wire, input)),
                }
            }
        }

        // In SQL the value is its Postgres enum type (named like `WIRE_TYPE`) or text: a
        // row reads straight into the enum and an unknown label is a conversion error.
        impl tokio_postgres::types::ToSql for $name {
            fn to_sql(
                &self,
                _ty: &tokio_postgres::types::Type,
                out: &mut bytes::BytesMut,
            ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                out.extend_from_slice(self.as_str().as_bytes());
                Ok(tokio_postgres::types::IsNull::No)
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                $crate::domain::wire_enum::sql_accepts(ty, $wire)
            }

            tokio_postgres::types::to_sql_checked!();
        }

        impl<'a> tokio_postgres::types::FromSql<'a> for $name {
            fn from_sql(
                _ty: &tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(std::str::from_utf8(raw)?.parse()?)
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                $crate::domain::wire_enum::sql_accepts(ty, $wire)
            }
        }
    };
}

/// A wire enum travels in SQL as its own Postgres enum type or as text.
pub fn sql_accepts(ty: &tokio_postgres::types::Type, wire: &str) -> bool {
    use tokio_postgres::types::{Kind, Type};
    matches!(*ty, Type::TEXT | Type::VARCHAR)
        || (ty.name() == wire && matches!(ty.kind(), Kind::Enum(_)))
}
