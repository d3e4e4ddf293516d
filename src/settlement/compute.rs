//! What a bet should be given its legs' results: the desired status and payout, computed
//! with the domain's `settle_bet`, compared with what the bet is now. A settlement batch
//! books only the difference, so running it again changes nothing (convergence).
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::db::settlement::{BetState, LegState};
use crate::domain::bet_status::transition;
use crate::domain::currency::Scale;
use crate::domain::ids::BetId;
use crate::domain::settlement::BetChange;
use crate::domain::{settle_bet, BetStatus, BetType, LegOutcome, LegResult, Money, Odds};

/// The free bet a bet was placed with (recorded in its metadata at placement).
fn free_bet_of(bet: &BetState) -> Option<Uuid> {
    bet.metadata["free_bet_id"]
        .as_str()
        .and_then(|t| t.parse().ok())
}

/// What the bettor is paid for a gross payout: all of it, or for a free bet only the
/// winnings (its stake was never paid, so it is never returned: not by a void either).
fn paid(bet: &BetState, gross: Decimal) -> Decimal {
    match free_bet_of(bet) {
        Some(_) => crate::domain::bonus::free_bet_payout(gross, bet.stake),
        None => gross,
    }
}

/// Why a bet could not be computed (corrupt row): logged and skipped, never paid.
#[derive(Debug, thiserror::Error)]
#[error("bet {bet_id}: {reason}")]
pub struct ComputeError {
    pub bet_id: BetId,
    pub reason: String,
}

fn err(bet: &BetState, reason: impl ToString) -> ComputeError {
    ComputeError {
        bet_id: bet.id,
        reason: reason.to_string(),
    }
}

fn outcome(bet: &BetState, leg: &LegState) -> Result<Option<LegOutcome>, ComputeError> {
    let Some(result) = leg.result.as_deref() else {
        return Ok(None);
    };
    let result: LegResult = result.parse().map_err(|e| err(bet, e))?;
    LegOutcome::new(result, leg.dead_heat_factor, leg.void_factor)
        .map(Some)
        .map_err(|e| err(bet, e))
}

/// Unit stake and system size from the bet's metadata (written at placement); a single or
/// parlay without them stakes its whole stake on its one line.
fn unit_stake(bet: &BetState) -> Result<(Money, Option<usize>), ComputeError> {
    let system_size = bet.metadata["system_size"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok());
    let unit = match bet.metadata["unit_stake"].as_str() {
        // A single or parlay stakes its one line with the stake still at risk, which a
        // partial cash-out lowers below the unit stake it was placed with.
        Some(text) if system_size.is_some() => Money::parse(text).map_err(|e| err(bet, e))?,
        _ => Money::from_decimal(bet.stake).map_err(|e| err(bet, e))?,
    };
    Ok((unit, system_size))
}

/// The change the bet needs now, if any. `market_void`: the reason of a market void; a
/// bet whose every leg is then void becomes `voided` (stake refunded) rather than a push.
pub fn desired(
    bet: &BetState,
    market_void: Option<&str>,
    scale: Scale,
) -> Result<Option<BetChange>, ComputeError> {
    let status: BetStatus = bet.status.parse().map_err(|e| err(bet, e))?;
    if !(status == BetStatus::Accepted || status.is_settled()) {
        return Ok(None);
    }
    let bet_type: BetType = bet.bet_type.parse().map_err(|e| err(bet, e))?;
    let (unit, system_size) = unit_stake(bet)?;
    let mut legs = Vec::with_capacity(bet.legs.len());
    for leg in &bet.legs {
        let odds = Odds::from_decimal(leg.odds, crate::domain::odds::ODDS_COLUMN_MAX)
            .map_err(|e| err(bet, e))?;
        legs.push((odds, outcome(bet, leg)?));
    }
    let Some(settled) =
        settle_bet(bet_type, unit, &legs, system_size, scale).map_err(|e| err(bet, e))?
    else {
        // A leg is open again (its result was rolled back): a settled bet goes back to
        // `accepted` and its payout is taken back.
        if status.is_settled() {
            transition(status, BetStatus::Accepted).map_err(|e| err(bet, e))?;
            return Ok(Some(change(
                bet,
                status,
                BetStatus::Accepted,
                Decimal::ZERO,
                None,
                scale,
            )));
        }
        return Ok(None);
    };
    let all_void = legs
        .iter()
        .all(|(_, o)| o.is_some_and(|o| o.result() == LegResult::Void));
    let (new_status, new_win, reason) = match market_void {
        Some(reason) if all_void => (BetStatus::Voided, bet.stake, Some(reason.to_string())),
        _ => (settled.status, settled.payout.as_decimal(), None),
    };
    let new_win = paid(bet, new_win);
    if new_status == status && new_win == bet.actual_win {
        return Ok(None);
    }
    transition(status, new_status).map_err(|e| err(bet, e))?;
    Ok(Some(change(
        bet, status, new_status, new_win, reason, scale,
    )))
}

/// A trader's void of one bet: the stake comes back whatever happened before.
pub fn void_bet(bet: &BetState, reason: &str, scale: Scale) -> Result<BetChange, ComputeError> {
    let status: BetStatus = bet.status.parse().map_err(|e| err(bet, e))?;
    transition(status, BetStatus::Voided).map_err(|e| err(bet, e))?;
    Ok(change(
        bet,
        status,
        BetStatus::Voided,
        paid(bet, bet.stake),
        Some(reason.to_string()),
        scale,
    ))
}

fn change(
    bet: &BetState,
    old_status: BetStatus,
    new_status: BetStatus,
    new_win: Decimal,
    void_reason: Option<String>,
    scale: Scale,
) -> BetChange {
    BetChange {
        bet_id: bet.id,
        user_id: bet.user_id,
        currency_code: bet.currency_code.clone(),
        scale,
        expected_seq: bet.settlement_seq,
        old_status,
        new_status,
        old_win: bet.actual_win,
        new_win,
        void_reason,
        selections: bet.legs.iter().map(|l| l.selection_id).collect(),
        exposure: (bet.stake, bet.potential_win),
        free_bet: free_bet_of(bet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{SelectionId, UserId};
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn bet(status: &str, win: Decimal, results: &[Option<&str>]) -> BetState {
        BetState {
            id: BetId(Uuid::nil()),
            user_id: UserId(Uuid::nil()),
            bet_type: if results.len() == 1 {
                "single"
            } else {
                "parlay"
            }
            .into(),
            status: status.into(),
            stake: dec!(10.00),
            potential_win: dec!(20.00),
            actual_win: win,
            settlement_seq: 0,
            metadata: json!({"unit_stake": "10.00", "lines": 1}),
            currency_code: "USD".into(),
            legs: results
                .iter()
                .map(|r| LegState {
                    selection_id: SelectionId(Uuid::nil()),
                    odds: dec!(2.0),
                    result: r.map(str::to_string),
                    dead_heat_factor: None,
                    void_factor: None,
                })
                .collect(),
        }
    }

    #[test]
    fn an_unsettled_leg_leaves_the_bet_open() {
        assert_eq!(
            desired(
                &bet("accepted", dec!(0), &[Some("win"), None]),
                None,
                Scale::CENTS
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn a_settled_bet_with_the_same_result_needs_nothing() {
        let b = bet("settled_win", dec!(20.00), &[Some("win")]);
        assert_eq!(desired(&b, None, Scale::CENTS).unwrap(), None);
    }

    #[test]
    fn a_win_corrected_to_a_loss_books_the_difference() {
        let b = bet("settled_win", dec!(20.00), &[Some("loss")]);
        let c = desired(&b, None, Scale::CENTS).unwrap().unwrap();
        assert_eq!(c.new_status, BetStatus::SettledLoss);
        assert_eq!((c.old_win, c.new_win), (dec!(20.00), dec!(0)));
    }

    #[test]
    fn a_market_void_voids_a_single_and_reduces_a_parlay() {
        let single = desired(
            &bet("accepted", dec!(0), &[Some("void")]),
            Some("x"),
            Scale::CENTS,
        )
        .unwrap();
        assert_eq!(single.unwrap().new_status, BetStatus::Voided);
        let parlay = bet("accepted", dec!(0), &[Some("void"), Some("win")]);
        let c = desired(&parlay, Some("x"), Scale::CENTS).unwrap().unwrap();
        assert_eq!(
            (c.new_status, c.new_win),
            (BetStatus::SettledWin, dec!(20.00))
        );
    }

    #[test]
    fn a_free_bet_is_paid_its_winnings_only() {
        let mut b = bet("accepted", dec!(0), &[Some("win")]);
        b.metadata["free_bet_id"] = json!(Uuid::nil().to_string());
        let c = desired(&b, None, Scale::CENTS).unwrap().unwrap();
        assert_eq!(
            (c.new_status, c.new_win),
            (BetStatus::SettledWin, dec!(10.00))
        );
        assert_eq!(c.free_bet, Some(Uuid::nil()));
        let v = void_bet(&b, "x", Scale::CENTS).unwrap();
        assert_eq!((v.new_status, v.new_win), (BetStatus::Voided, dec!(0)));
        let mut won = bet("settled_win", dec!(10.00), &[Some("loss")]);
        won.metadata["free_bet_id"] = json!(Uuid::nil().to_string());
        let c = desired(&won, None, Scale::CENTS).unwrap().unwrap();
        assert_eq!((c.old_win, c.new_win), (dec!(10.00), dec!(0)));
    }

    #[test]
    fn a_voided_bet_is_final() {
        let b = bet("voided", dec!(10.00), &[Some("win")]);
        assert_eq!(desired(&b, None, Scale::CENTS).unwrap(), None);
        assert!(void_bet(&b, "again", Scale::CENTS).is_err());
    }
}
