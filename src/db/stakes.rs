//! SQL the wallet shard runs when it first loads an account for betting: its controls
//! (status, self-exclusion, caps, stake factor) and the stakes already placed in the
//! current day, week and month.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::ids::UserId;

/// What a bet needs to know about its bettor.
pub struct BettorRow {
    pub status: crate::domain::account::UserStatus,
    pub self_excluded_until: Option<DateTime<Utc>>,
    pub betting_limits: serde_json::Value,
    pub stake_factor: Decimal,
    pub max_stake: Option<Decimal>,
    pub balance: Decimal,
    pub currency_code: String,
    /// The profile's `verification_status` is `verified`.
    pub verified: bool,
    pub bonus_balance: Decimal,
    /// The user's active bonus, if any.
    pub bonus: Option<crate::domain::bonus::ActiveBonus>,
}

const BETTOR: &str = "
SELECT u.status::text, u.self_excluded_until,
       coalesce(p.betting_limits, '{}'::jsonb), u.stake_factor, u.max_stake,
       b.balance, b.currency_code,
       coalesce(pr.verification_status = 'verified', false),
       b.bonus_balance, bo.id, bo.min_odds, bo.expires_at
FROM users u
LEFT JOIN bonuses bo ON bo.user_id = u.id AND bo.status = 'active'
JOIN user_balances b ON b.user_id = u.id
LEFT JOIN user_preferences p ON p.user_id = u.id
LEFT JOIN user_profiles pr ON pr.user_id = u.id
WHERE u.id = $1";

pub async fn bettor(
    client: &impl GenericClient,
    user_id: UserId,
) -> Result<Option<BettorRow>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(BETTOR).await?;
    Ok(client
        .query_opt(&stmt, &[&user_id])
        .await?
        .map(|r| BettorRow {
            status: r.get(0),
            self_excluded_until: r.get(1),
            betting_limits: r.get(2),
            stake_factor: r.get(3),
            max_stake: r.get(4),
            balance: r.get(5),
            currency_code: r.get::<_, String>(6).trim().to_string(),
            verified: r.get(7),
            bonus_balance: r.get(8),
            bonus: r
                .get::<_, Option<Uuid>>(9)
                .map(|id| crate::domain::bonus::ActiveBonus {
                    id,
                    min_odds: r.get(10),
                    expires_at: r.get(11),
                }),
        }))
}

const STAKED: &str = "
SELECT coalesce(sum(stake) FILTER (WHERE placed_at >= $2), 0),
       coalesce(sum(stake) FILTER (WHERE placed_at >= $3), 0),
       coalesce(sum(stake) FILTER (WHERE placed_at >= $4), 0)
FROM bets
WHERE user_id = $1 AND placed_at >= least($2, $3, $4)
  AND status NOT IN ('rejected', 'cancelled', 'voided')";

/// Stakes placed since the starts of the current day, week and month.
pub async fn staked_since(
    client: &impl GenericClient,
    user_id: UserId,
    starts: [DateTime<Utc>; 3],
) -> Result<[Decimal; 3], tokio_postgres::Error> {
    let stmt = client.prepare_cached(STAKED).await?;
    let r = client
        .query_one(&stmt, &[&user_id, &starts[0], &starts[1], &starts[2]])
        .await?;
    Ok([r.get(0), r.get(1), r.get(2)])
}
