//! Verification (KYC): `VerificationStatus` of a profile, what can happen to it, and the
//! one exhaustive transition table between them; the document types a bettor may submit.

use thiserror::Error;

wire_enum! {
    /// A profile's verification (Postgres `verification_status`).
    pub enum VerificationStatus: "verification_status" {
        Unverified = "unverified",
        Pending = "pending",
        Verified = "verified",
        Rejected = "rejected",
    }
}

wire_enum! {
    /// What can happen to a profile's verification.
    pub enum VerificationCommand: "verification_command" {
        /// The bettor submits a document.
        Submit = "submit",
        /// Support accepts the documents.
        Verify = "verify",
        /// Support refuses them (with a reason).
        Reject = "reject",
    }
}

wire_enum! {
    /// Documents a bettor may submit (their reference is the upload's id at the store).
    pub enum DocumentType: "document_type" {
        Passport = "passport",
        IdCard = "id_card",
        DrivingLicence = "driving_licence",
        ProofOfAddress = "proof_of_address",
    }
}

/// A command that does not apply to the profile's status (409 at the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("cannot {command} a profile whose verification is {from}")]
pub struct InvalidVerificationTransition {
    pub from: VerificationStatus,
    pub command: VerificationCommand,
}

/// The verification state machine, the only place `verification_status` changes:
///
/// | from \ command | submit  | verify   | reject   |
/// |----------------|---------|----------|----------|
/// | unverified     | pending | -        | -        |
/// | pending        | pending | verified | rejected |
/// | verified       | -       | -        | -        |
/// | rejected       | pending | -        | -        |
///
/// Decisions: a pending profile may receive more documents (an identity document and a
/// proof of address are often both asked for) and stays in the queue at its first place;
/// only a pending profile is decided; a rejected one goes back to the queue by submitting
/// again; a verified profile takes no more documents (nothing would review them).
pub fn transition(
    from: VerificationStatus,
    command: VerificationCommand,
) -> Result<VerificationStatus, InvalidVerificationTransition> {
    use VerificationCommand as C;
    use VerificationStatus as S;
    match (from, command) {
        (S::Unverified | S::Pending | S::Rejected, C::Submit) => Ok(S::Pending),
        (S::Pending, C::Verify) => Ok(S::Verified),
        (S::Pending, C::Reject) => Ok(S::Rejected),
        (S::Unverified | S::Verified | S::Rejected, C::Verify | C::Reject)
        | (S::Verified, C::Submit) => Err(InvalidVerificationTransition { from, command }),
    }
}

impl VerificationStatus {
    /// Actions listed in `[kyc] required_before` are allowed only in this state.
    pub const fn is_verified(self) -> bool {
        matches!(self, VerificationStatus::Verified)
    }
}

/// Verification codes are this many decimal digits.
pub const CODE_DIGITS: usize = 6;

/// Is `code` shaped like a verification code (exactly [`CODE_DIGITS`] ASCII digits)?
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use VerificationCommand as C;
    use VerificationStatus as S;

    /// Every allowed pair; every other pair of `ALL × ALL` must be refused.
    const ALLOWED: &[(VerificationStatus, VerificationCommand, VerificationStatus)] = &[
        (S::Unverified, C::Submit, S::Pending),
        (S::Pending, C::Submit, S::Pending),
        (S::Pending, C::Verify, S::Verified),
        (S::Pending, C::Reject, S::Rejected),
        (S::Rejected, C::Submit, S::Pending),
    ];

    #[test]
    fn every_pair_follows_the_table() {
        for &from in VerificationStatus::ALL {
            for &command in VerificationCommand::ALL {
                let expected = ALLOWED
                    .iter()
                    .find(|(f, c, _)| *f == from && *c == command)
                    .map(|(_, _, to)| *to)
                    .ok_or(InvalidVerificationTransition { from, command });
                assert_eq!(transition(from, command), expected, "{from} + {command}");
            }
        }
        assert_eq!(
            VerificationStatus::ALL.len() * VerificationCommand::ALL.len(),
            12
        );
    }

    #[test]
    fn only_verified_is_verified() {
        let verified: Vec<_> = VerificationStatus::ALL
            .iter()
            .filter(|s| s.is_verified())
            .collect();
        assert_eq!(verified, vec![&S::Verified]);
    }

    #[test]
    fn codes_are_six_ascii_digits() {
        assert!(is_code_shaped("012345"));
        for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", "", " 12345"] {
            assert!(!is_code_shaped(bad), "{bad:?}");
        }
    }
}
