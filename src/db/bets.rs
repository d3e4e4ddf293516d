//! SQL of the bet path: idempotency look-ups and reading accepted bets back.
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bets::answer::{public_metadata, BetAnswer, LegAnswer};

/// A committed bet found by its idempotency key, with the fingerprint of its request.
pub struct KeyedBet {
    pub answer: BetAnswer,
    pub fingerprint: Option<String>,
}

const BET_BY_KEY: &str = "
SELECT b.id, b.status::text, b.type::text, b.stake, b.total_odds, b.potential_win,
       b.currency_code, b.placed_at, b.idempotency_key, b.metadata,
       array_agg(bs.selection_id ORDER BY bs.id), array_agg(bs.odds ORDER BY bs.id)
FROM bets b JOIN bet_selections bs ON bs.bet_id = b.id
WHERE b.user_id = $1 AND b.idempotency_key = $2
GROUP BY b.id";

/// The bet this user placed with this key, if any.
pub async fn find_by_key(
    client: &impl GenericClient,
    user_id: Uuid,
    key: &str,
) -> Result<Option<KeyedBet>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(BET_BY_KEY).await?;
    let Some(row) = client.query_opt(&stmt, &[&user_id, &key]).await? else {
        return Ok(None);
    };
    let metadata: serde_json::Value = row.get(9);
    let selections: Vec<Uuid> = row.get(10);
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
    };
    Ok(Some(KeyedBet {
        answer,
        fingerprint,
    }))
}
