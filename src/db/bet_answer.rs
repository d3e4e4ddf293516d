//! What the engine answers for an accepted bet (REST 201 body and the private `bet`
//! message), built from the committed record or read back from Postgres.
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::ids::{BetId, SelectionId};

use super::ledger::BetRecord;

/// One leg of an accepted bet.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LegAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub selection_id: SelectionId,
    /// The decimal odds actually taken.
    #[schema(value_type = String)]
    pub odds: Decimal,
}

/// An accepted bet.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BetAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub id: BetId,
    pub status: String,
    #[serde(rename = "type")]
    pub bet_type: String,
    /// Total stake paid (lines × unit stake).
    #[schema(value_type = String)]
    pub stake: Decimal,
    #[schema(value_type = String)]
    pub total_odds: Decimal,
    #[schema(value_type = String)]
    pub potential_win: Decimal,
    pub currency_code: String,
    pub placed_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    pub legs: Vec<LegAnswer>,
    /// Request details kept with the bet: unit stake, lines, system size, policy.
    pub metadata: serde_json::Value,
    /// A referred bet (status `referred`, answered 202): why, and until when the desk
    /// decides (`reason`, `expires_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub referral: Option<serde_json::Value>,
}

impl BetAnswer {
    pub fn from_record(record: &BetRecord) -> BetAnswer {
        BetAnswer {
            id: record.bet_id,
            status: record.status().into(),
            bet_type: record.bet_type.as_str().into(),
            stake: record.stake.as_decimal(),
            total_odds: record.total_odds,
            potential_win: record.potential_win.as_decimal(),
            currency_code: record.currency_code.clone(),
            placed_at: record.placed_at,
            idempotency_key: record.idempotency_key.clone(),
            legs: record
                .legs
                .iter()
                .map(|l| LegAnswer {
                    selection_id: l.selection_id,
                    odds: l.odds,
                })
                .collect(),
            metadata: public_metadata(&record.metadata),
            referral: record.referral.as_ref().map(|r| {
                serde_json::json!({
                    "status": "pending",
                    "reason": r.reason,
                    "liability": format!("{:.2}", r.liability),
                    "expires_at": r.expires_at,
                })
            }),
        }
    }
}

/// The metadata a client may see (the fingerprint stays inside).
pub fn public_metadata(meta: &serde_json::Value) -> serde_json::Value {
    let mut meta = meta.clone();
    if let Some(obj) = meta.as_object_mut() {
        obj.remove("fingerprint");
    }
    meta
}
