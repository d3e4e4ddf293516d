//! Verification codes: six decimal digits from the operating system's CSPRNG, kept only as
//! a salted SHA-256 (bound to the account and the channel), compared in constant time.
//! A code is never logged: it leaves this module only in the message that carries it.
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::ids::UserId;
use crate::domain::verification::CODE_DIGITS;

/// Bytes of random salt per code.
pub const SALT_BYTES: usize = 16;

/// A fresh code and what is stored of it.
pub struct NewCode {
    /// The digits (only for the message; never stored, never logged).
    pub code: String,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for NewCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewCode { code: <redacted> }")
    }
}

/// Draws a code uniformly from `000000..=999999`.
pub fn generate(user_id: UserId, channel: &str) -> NewCode {
    let n: u32 = OsRng.gen_range(0..10u32.pow(CODE_DIGITS as u32));
    let code = format!("{n:0width$}", width = CODE_DIGITS);
    let mut salt = vec![0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    let hash = digest(&salt, user_id, channel, &code);
    NewCode { code, salt, hash }
}

/// Does `code` match the stored `salt` and `hash` of this account's channel?
pub fn matches(salt: &[u8], hash: &[u8], user_id: UserId, channel: &str, code: &str) -> bool {
    digest(salt, user_id, channel, code).ct_eq(hash).into()
}

fn digest(salt: &[u8], user_id: UserId, channel: &str, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(user_id.0.as_bytes());
    h.update(channel.as_bytes());
    h.update([0u8]);
    h.update(code.as_bytes());
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_only_its_account_channel_and_digits() {
        let user = UserId::new_random();
        let c = generate(user, "email");
        assert_eq!(c.code.len(), 6);
        assert!(c.code.bytes().all(|b| b.is_ascii_digit()));
        assert!(matches(&c.salt, &c.hash, user, "email", &c.code));
        assert!(!matches(&c.salt, &c.hash, user, "phone", &c.code));
        assert!(!matches(
            &c.salt,
            &c.hash,
            UserId::new_random(),
            "email",
            &c.code
        ));
        let other = if c.code == "000000" {
            "000001"
        } else {
            "000000"
        };
        assert!(!matches(&c.salt, &c.hash, user, "email", other));
        assert!(!format!("{c:?}").contains(&c.code));
    }

    #[test]
    fn codes_vary_and_keep_leading_zeros() {
        let user = UserId::new_random();
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| generate(user, "email").code).collect();
        assert!(codes.len() > 190, "a CSPRNG repeats rarely in 10^6");
        assert!(codes.iter().all(|c| c.len() == 6));
    }
}
