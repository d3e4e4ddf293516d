//! Verification (KYC) beside the services: the `[kyc]` settings and the actions they may
//! gate ([`Gate`]), verification codes ([`codes`]) and the notifier that carries outgoing
//! messages ([`notifier`]). The use cases are `app::kyc`; the state machine is
//! `domain::verification`.
use serde::Deserialize;

pub mod codes;
pub mod notifier;

/// An action `[kyc] required_before` may reserve to verified profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Deposit,
    Bet,
    Withdrawal,
}

/// Verification settings (`[kyc]` in `config/`).
#[derive(Debug, Clone, Deserialize)]
pub struct KycSettings {
    /// A code is accepted for this long after it was sent.
    pub code_ttl_s: u64,
    /// Wrong codes tried against one code before it is dead (then 429 until a new one).
    pub code_attempts_max: i32,
    /// A new code for the same channel is sent at most this often (429 with Retry-After).
    pub code_resend_interval_s: u64,
    /// The actions that need `verification_status = verified` (any of `deposit`, `bet`,
    /// `withdrawal`). The environment form is comma-separated:
    /// `WINZO__KYC__REQUIRED_BEFORE=deposit,bet,withdrawal`.
    pub required_before: Vec<Gate>,
    /// Documents one profile may hold (submissions beyond are 422).
    pub documents_per_profile_max: usize,
    /// Longest document reference (the upload's id at the document store).
    pub reference_chars_max: usize,
    /// Longest rejection reason.
    pub reason_chars_max: usize,
    /// Largest page of the support queue.
    pub queue_page_max: i64,
}

impl KycSettings {
    /// Does `gate` need a verified profile?
    pub fn requires(&self, gate: Gate) -> bool {
        self.required_before.contains(&gate)
    }
}
