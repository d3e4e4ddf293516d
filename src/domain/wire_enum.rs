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
    };
}
