//! Payment processors: the `PaymentProcessor` trait the wallet charges deposits and pays
//! withdrawals through, and `SandboxProcessor`, the deterministic one shipped for
//! development and tests (no network, no real money).
//!
//! Sandbox rules (docs/accounts.md, "Sandbox processor"): every amount is approved except
//! amounts whose cents are `.13` (declined, `card_declined`) or `.51` (declined,
//! `insufficient_funds_at_issuer`). The reference is derived from the user and the
//! idempotency key, so a retried request gets the same reference, as real processors do
//! with their own idempotency keys.
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::ids::UserId;
use crate::domain::money::Money;

/// Which way the money goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Charge the customer's method (deposit).
    Charge,
    /// Pay out to the customer's method (withdrawal).
    Payout,
}

/// One request to a processor.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub user_id: UserId,
    pub direction: Direction,
    pub amount: Money,
    pub currency_code: String,
    pub payment_method_id: Option<Uuid>,
    /// The client's idempotency key, passed on so the processor dedupes retries.
    pub idempotency_key: String,
}

/// What the processor answered; `response` is stored in `transactions.processor_response`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentOutcome {
    pub approved: bool,
    /// The processor's reference (stored in `transactions.external_reference`).
    pub reference: String,
    /// Why it was declined (`None` when approved).
    pub decline_reason: Option<&'static str>,
    pub response: Value,
}

/// A payment processor. Implementations must be idempotent on `idempotency_key`.
pub trait PaymentProcessor: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn process(
        &self,
        request: PaymentRequest,
    ) -> BoxFuture<'static, anyhow::Result<PaymentOutcome>>;
}

/// The processors this build knows; `[payments] processor` picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorKind {
    /// Approves every amount but the documented test cents: development and tests only.
    Sandbox,
}

/// The `[payments]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentSettings {
    /// Which processor deposits and withdrawals go through.
    pub processor: ProcessorKind,
    /// The production profile refuses to start on the sandbox unless this is true (a
    /// staging deployment that must never move real money).
    pub sandbox_allowed: bool,
}

/// The processor `settings` name, behind its trait.
pub fn build(settings: &PaymentSettings) -> Arc<dyn PaymentProcessor> {
    match settings.processor {
        ProcessorKind::Sandbox => Arc::new(SandboxProcessor),
    }
}

/// The deterministic sandbox processor (see the module documentation for its rules).
#[derive(Debug, Clone, Default)]
pub struct SandboxProcessor;

/// Cents that the sandbox declines, with the reason it gives.
pub const SANDBOX_DECLINES: &[(i128, &str)] =
    &[(13, "card_declined"), (51, "insufficient_funds_at_issuer")];

impl SandboxProcessor {
    /// The sandbox's decision for an amount (pure; used by `process` and tests).
    pub fn decide(amount: Money) -> Option<&'static str> {
        let cents = amount.cents().rem_euclid(100);
        SANDBOX_DECLINES
            .iter()
            .find(|(c, _)| *c == cents)
            .map(|(_, reason)| *reason)
    }

    fn reference(request: &PaymentRequest) -> String {
        let mut h = Sha256::new();
        h.update(request.user_id.0.as_bytes());
        h.update(b":");
        h.update(request.idempotency_key.as_bytes());
        format!("sbx_{}", &hex::encode(h.finalize())[..40])
    }
}

impl PaymentProcessor for SandboxProcessor {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn process(
        &self,
        request: PaymentRequest,
    ) -> BoxFuture<'static, anyhow::Result<PaymentOutcome>> {
        let decline_reason = Self::decide(request.amount);
        let reference = Self::reference(&request);
        let direction = match request.direction {
            Direction::Charge => "charge",
            Direction::Payout => "payout",
        };
        let response = json!({
            "processor": "sandbox",
            "reference": reference,
            "operation": direction,
            "amount": request.amount.to_string(),
            "currency_code": request.currency_code,
            "status": if decline_reason.is_some() { "declined" } else { "approved" },
            "decline_reason": decline_reason,
        });
        Box::pin(async move {
            Ok(PaymentOutcome {
                approved: decline_reason.is_none(),
                reference,
                decline_reason,
                response,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_declines_only_the_documented_test_amounts() {
        let m = |s: &str| Money::parse(s).unwrap();
        assert_eq!(SandboxProcessor::decide(m("10.13")), Some("card_declined"));
        assert_eq!(
            SandboxProcessor::decide(m("7.51")),
            Some("insufficient_funds_at_issuer")
        );
        assert_eq!(SandboxProcessor::decide(m("10.00")), None);
        assert_eq!(SandboxProcessor::decide(m("13.00")), None);
        assert_eq!(SandboxProcessor::decide(m("0.31")), None);
    }
}
