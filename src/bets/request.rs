//! The body of `POST /api/v1/bets` (and the WebSocket `place_bet` op): shape validation
//! and the request fingerprint that binds an idempotency key to one payload.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::PlaceError;
use crate::domain::ids::SelectionId;
use crate::domain::{BetType, Money, Odds, OddsChangePolicy};

/// One leg as the client sends it: the selection and the decimal odds it saw.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LegRequest {
    #[schema(value_type = uuid::Uuid)]
    pub selection_id: SelectionId,
    /// Decimal odds as a string, 4 places at most (`"2.1000"`).
    #[schema(value_type = String, example = "2.1000")]
    pub odds: Odds,
}

/// `POST /api/v1/bets`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PlaceBetRequest {
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "single")]
    pub bet_type: BetType,
    /// Unit stake as a string with at most 2 places; for a system bet, per line.
    #[schema(value_type = String, example = "10.00")]
    pub stake: Money,
    pub legs: Vec<LegRequest>,
    /// `none` (default): exact price; `higher`: equal or better; `any`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "none")]
    pub odds_change: Option<OddsChangePolicy>,
    /// Client-chosen, unique per user: the same key returns the first answer.
    pub idempotency_key: String,
    /// Only for `system`: every combination of this many legs is a line.
    #[serde(default)]
    pub system_size: Option<usize>,
    /// `cash` (default): cash first, then bonus money; `bonus`: bonus money first (an
    /// active bonus whose minimum odds every leg meets), then cash.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "cash")]
    pub funding: Option<FundingChoice>,
    /// Spend this free bet (whole: the total stake must be its stake); no money moves.
    #[serde(default)]
    pub free_bet_id: Option<Uuid>,
}

/// How the bettor asks a stake to be funded (docs/accounts.md, "Bonuses and free bets").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FundingChoice {
    Cash,
    Bonus,
}

/// Longest idempotency key accepted (the column is VARCHAR(100)).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 100;

impl PlaceBetRequest {
    pub fn policy(&self) -> OddsChangePolicy {
        self.odds_change.unwrap_or(OddsChangePolicy::None)
    }

    /// Checks what needs no live state: key, stake sign, leg count bounds, odds ceiling.
    pub fn validate(
        &self,
        legs_max: usize,
        odds_max: rust_decimal::Decimal,
    ) -> Result<(), PlaceError> {
        let key = self.idempotency_key.as_str();
        if key.is_empty()
            || key.len() > IDEMPOTENCY_KEY_LEN_MAX
            || key.chars().any(char::is_control)
        {
            return Err(PlaceError::Invalid(format!(
                "idempotency_key must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} printable characters"
            )));
        }
        if !self.stake.is_positive() {
            return Err(PlaceError::Invalid(
                "stake must be greater than zero".into(),
            ));
        }
        if self.legs.is_empty() || self.legs.len() > legs_max {
            return Err(PlaceError::Invalid(format!(
                "a bet needs 1 to {legs_max} legs"
            )));
        }
        for leg in &self.legs {
            leg.odds
                .ensure_at_most(odds_max)
                .map_err(|e| PlaceError::Invalid(format!("leg odds: {e}")))?;
        }
        if self.free_bet_id.is_some() && self.funding == Some(FundingChoice::Bonus) {
            return Err(PlaceError::Invalid(
                "a free bet is the whole stake: it takes no funding".into(),
            ));
        }
        Ok(())
    }

    /// SHA-256 over the canonical payload without the key: two requests with one key are
    /// "the same bet" exactly when their fingerprints match.
    pub fn fingerprint(&self) -> String {
        let mut canonical = serde_json::json!({
            "type": self.bet_type.as_str(),
            "stake": self.stake.to_string(),
            "legs": self.legs.iter().map(|l| (l.selection_id, l.odds.to_string())).collect::<Vec<_>>(),
            "odds_change": self.policy().as_str(),
            "system_size": self.system_size,
        });
        // Only when asked: the fingerprints of bets placed before funding existed stay valid.
        if self.funding == Some(FundingChoice::Bonus) {
            canonical["funding"] = "bonus".into();
        }
        if let Some(token) = self.free_bet_id {
            canonical["free_bet_id"] = token.to_string().into();
        }
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> PlaceBetRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn fingerprint_ignores_the_key_and_sees_the_payload() {
        let sel = SelectionId::new_random();
        let a = request(&format!(
            r#"{{"type":"single","stake":"10.00","legs":[{{"selection_id":"{sel}","odds":"2.1"}}],"idempotency_key":"a"}}"#
        ));
        let b = request(&format!(
            r#"{{"type":"single","stake":"10","legs":[{{"selection_id":"{sel}","odds":"2.1000"}}],"odds_change":"none","idempotency_key":"b"}}"#
        ));
        let c = request(&format!(
            r#"{{"type":"single","stake":"10.01","legs":[{{"selection_id":"{sel}","odds":"2.1"}}],"idempotency_key":"a"}}"#
        ));
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn floats_for_money_or_odds_do_not_parse() {
        let sel = SelectionId::new_random();
        let float_stake = format!(
            r#"{{"type":"single","stake":10.5,"legs":[{{"selection_id":"{sel}","odds":"2.1"}}],"idempotency_key":"a"}}"#
        );
        assert!(serde_json::from_str::<PlaceBetRequest>(&float_stake).is_err());
        let float_odds = format!(
            r#"{{"type":"single","stake":"1.00","legs":[{{"selection_id":"{sel}","odds":2.1}}],"idempotency_key":"a"}}"#
        );
        assert!(serde_json::from_str::<PlaceBetRequest>(&float_odds).is_err());
    }

    #[test]
    fn validation_refuses_bad_keys_and_leg_counts() {
        let sel = SelectionId::new_random();
        let ok = request(&format!(
            r#"{{"type":"single","stake":"1.00","legs":[{{"selection_id":"{sel}","odds":"2.1"}}],"idempotency_key":"k"}}"#
        ));
        let max = rust_decimal_macros::dec!(1000);
        assert!(ok.validate(10, max).is_ok());
        let mut long_key = ok.clone();
        long_key.idempotency_key = "x".repeat(101);
        assert!(long_key.validate(10, max).is_err());
        let mut no_legs = ok.clone();
        no_legs.legs.clear();
        assert!(no_legs.validate(10, max).is_err());
        assert!(ok.validate(10, rust_decimal_macros::dec!(2.0)).is_err());
    }
}
