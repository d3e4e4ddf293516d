//! SQL of the bet path: idempotency look-ups and reading accepted bets back. A key is
//! found in `bet_keys` (V47), whose `placed_at` names the one partition holding the bet.
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;

use crate::domain::ids::{BetId, SelectionId, UserId};

use super::bet_answer::{public_metadata, BetAnswer, LegAnswer};

/// A committed bet found by its idempotency key, with the fingerprint of its request.
pub struct KeyedBet {
    pub answer: BetAnswer,
    pub fingerprint: Option<String>,
}

const BET_BY_KEY: &str = "
SELECT b.id, b.status::text, b.type::text, b.stake, b.total_odds, b.potential_win,
       b.currency_code, b.placed_at, b.idempotency_key, b.metadata,
       array_agg(bs.selection_id ORDER BY bs.id), array_agg(bs.odds ORDER BY bs.id)
FROM bet_keys k
JOIN bets b ON b.id = k.id AND b.placed_at = k.placed_at
JOIN bet_selections bs ON bs.bet_id = b.id
WHERE k.user_id = $1 AND k.idempotency_key = $2
GROUP BY b.id, b.placed_at";

/// The bet this user placed with this key, if any.
pub async fn find_by_key(
    client: &impl GenericClient,
    user_id: UserId,
    key: &str,
) -> Result<Option<KeyedBet>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(BET_BY_KEY).await?;
    let Some(row) = client.query_opt(&stmt, &[&user_id, &key]).await? else {
        return Ok(None);
    };
    let metadata: serde_json::Value = row.get(9);
    let selections: Vec<SelectionId> = row.get(10);
    let odds: Vec<Decimal> = row.get(11);
    let fingerprint = metadata
        .get("fingerprint")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let answer = BetAnswer {
        id: row.get(0),
        status: row.get(1),
        bet_type: row.get(2),
        stake: row.get(3),
        total_odds: row.get(4),
        potential_win: row.get(5),
        currency_code: row.get::<_, String>(6).trim().to_string(),
        placed_at: row.get(7),
        idempotency_key: row.get(8),
        legs: selections
            .into_iter()
            .zip(odds)
            .map(|(selection_id, odds)| LegAnswer { selection_id, odds })
            .collect(),
        metadata: public_metadata(&metadata),
        referral: None,
    };
    Ok(Some(KeyedBet {
        answer,
        fingerprint,
    }))
}

/// One bet of a user's history, as `GET /api/v1/bets` answers it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryBet {
    #[schema(value_type = uuid::Uuid)]
    pub id: BetId,
    #[serde(rename = "type")]
    pub bet_type: String,
    #[schema(value_type = String)]
    pub stake: Decimal,
    #[schema(value_type = String)]
    pub total_odds: Decimal,
    #[schema(value_type = String)]
    pub potential_win: Decimal,
    /// What the bet paid (0 until settled).
    #[schema(value_type = String)]
    pub payout: Decimal,
    pub status: String,
    pub placed_at: chrono::DateTime<chrono::Utc>,
    pub settled_at: Option<chrono::DateTime<chrono::Utc>>,
    pub void_reason: Option<String>,
    pub metadata: serde_json::Value,
    /// Legs with selection and market names, odds taken and results.
    #[schema(value_type = Vec<Object>)]
    pub legs: serde_json::Value,
    /// What cash-outs paid so far (0.00 when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cashed_out_amount: Option<Decimal>,
    /// The stake still at risk (the stake less the part cashed out).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub remaining_stake: Option<Decimal>,
    /// The bet's referral to the trading desk, if it was referred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<super::referrals::ReferralRow>,
}

/// Fills in each bet's cash-out parts (`cashed_out_amount`, `remaining_stake`) and its
/// referral, if any: two statements for the whole page, whatever its size.
pub async fn attach_cash_out_and_referral(
    client: &impl GenericClient,
    user_id: UserId,
    bets: &mut [HistoryBet],
) -> Result<(), tokio_postgres::Error> {
    if bets.is_empty() {
        return Ok(());
    }
    let ids: Vec<BetId> = bets.iter().map(|b| b.id).collect();
    let parts = client
        .query(
            "SELECT id, cashed_out_amount, stake - cashed_out_stake FROM bets
             WHERE id = ANY($1) AND user_id = $2",
            &[&ids, &user_id],
        )
        .await?;
    let mut referrals = super::referrals::find_many(client, &ids).await?;
    for bet in bets.iter_mut() {
        if let Some(r) = parts.iter().find(|r| r.get::<_, BetId>(0) == bet.id) {
            bet.cashed_out_amount = Some(r.get(1));
            bet.remaining_stake = Some(r.get(2));
        }
        bet.referral = referrals
            .iter()
            .position(|r| r.bet_id == bet.id)
            .map(|i| referrals.swap_remove(i));
    }
    Ok(())
}

const HISTORY: &str = "
SELECT bet_id, bet_type::text, stake, total_odds, potential_win, actual_win, status::text,
       placed_at, settled_at, void_reason, metadata, selections::jsonb
FROM get_user_betting_history($1, $2, $3, $4, $5)";

/// A page of the user's bets (of `statuses`, or all), newest first, or one bet by id.
pub async fn history(
    client: &impl GenericClient,
    user_id: UserId,
    limit: i32,
    offset: i32,
    bet_id: Option<BetId>,
    statuses: Option<&[&str]>,
) -> Result<Vec<HistoryBet>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(HISTORY).await?;
    let rows = client
        .query(&stmt, &[&user_id, &limit, &offset, &bet_id, &statuses])
        .await?;
    Ok(rows
        .iter()
        .map(|r| HistoryBet {
            id: r.get(0),
            bet_type: r.get(1),
            stake: r.get(2),
            total_odds: r.get(3),
            potential_win: r.get(4),
            payout: r.get(5),
            status: r.get(6),
            placed_at: r.get(7),
            settled_at: r.get(8),
            void_reason: r.get(9),
            metadata: r.get(10),
            legs: r.get(11),
            cashed_out_amount: None,
            remaining_stake: None,
            referral: None,
        })
        .collect())
}

/// Each known selection's market, event and market type (the checks between a bet's legs
/// when their markets run on several nodes). Unknown selections are left out.
pub async fn leg_keys(
    client: &impl GenericClient,
    selection_ids: &[SelectionId],
) -> Result<Vec<crate::domain::LegKey>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT s.id, m.id, m.event_id, m.type::text FROM selections s
             JOIN markets m ON m.id = s.market_id WHERE s.id = ANY($1)",
            &[&selection_ids],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let market_type: String = r.get(3);
            Some(crate::domain::LegKey {
                selection_id: r.get(0),
                market_id: r.get(1),
                event_id: r.get(2),
                market_type: market_type.parse().ok()?,
            })
        })
        .collect())
}
