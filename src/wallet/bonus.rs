//! The wallet shard's bonus messages (docs/accounts.md, "Bonuses and free bets"): a
//! trader's grant credits the bonus balance, an expiry retracts what is left. Both go
//! through the shard that owns the user, like every balance change, so its cached bonus
//! balance changes only by deltas of writes it knows of.
pub use crate::domain::bonus::ActiveBonus;

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, WrapFuture};
use rust_decimal::Decimal;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::shard::WalletShard;
use crate::db::audit::{self, Actor as AuditActor};
use crate::db::bonus::{self as bdb, BonusRow, NewBonus};
use crate::domain::ids::{BetId, UserId};
use crate::domain::money::Money;

/// Why a grant was refused.
#[derive(Debug)]
pub enum GrantRefusal {
    /// The user has an active bonus already (one at a time).
    ActiveBonus(Uuid),
    /// The key was used before for another grant.
    KeyReused,
    UnknownUser,
    Db(anyhow::Error),
}

/// A trader's grant: a `bonuses` row, its `bonus` transaction, the bonus balance; the same
/// key answers the first grant (`false`: not new).
#[derive(Message)]
#[rtype(result = "()")]
pub struct GrantBonus {
    pub user_id: UserId,
    pub amount: Money,
    pub wagering_multiplier: i32,
    pub min_odds: Decimal,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub idempotency_key: String,
    /// `[bonus] conversion_max` now: the most a met requirement moves to cash.
    pub conversion_cap: Money,
    pub actor: AuditActor,
    pub reply: oneshot::Sender<Result<(BonusRow, bool), GrantRefusal>>,
}

impl GrantBonus {
    fn same_as(&self, b: &BonusRow) -> bool {
        b.amount == self.amount.as_decimal()
            && b.wagering_multiplier == self.wagering_multiplier
            && b.min_odds == self.min_odds
            // Stored to the microsecond.
            && b.expires_at.timestamp_micros() == self.expires_at.timestamp_micros()
    }
}

impl Handler<GrantBonus> for WalletShard {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: GrantBonus, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let user_id = msg.user_id;
        AtomicResponse::new(Box::pin(
            async move {
                let out = grant(&pool, &msg).await;
                (out, msg)
            }
            .into_actor(self)
            .map(move |(out, msg), act, _| {
                if let Ok((bonus, true)) = &out {
                    if let Some(a) = act.accounts.get_mut(&user_id).filter(|a| a.bonus_loaded) {
                        // A new grant's row holds the message's amount.
                        a.bonus_balance += msg.amount;
                        a.bonus = Some(ActiveBonus {
                            id: bonus.id,
                            min_odds: bonus.min_odds,
                            expires_at: bonus.expires_at,
                        });
                    }
                }
                let _ = msg.reply.send(out);
            }),
        ))
    }
}

async fn grant(
    pool: &deadpool_postgres::Pool,
    msg: &GrantBonus,
) -> Result<(BonusRow, bool), GrantRefusal> {
    let db = |e: tokio_postgres::Error| GrantRefusal::Db(e.into());
    let mut client = pool.get().await.map_err(|e| GrantRefusal::Db(e.into()))?;
    let tx = client.transaction().await.map_err(db)?;
    audit::set_actor(&tx, msg.actor).await.map_err(db)?;
    let Some(_) = bdb::lock_bonus_balance(&tx, msg.user_id)
        .await
        .map_err(db)?
    else {
        return Err(GrantRefusal::UnknownUser);
    };
    if let Some(found) = bdb::bonus_by_key(&tx, msg.user_id, &msg.idempotency_key)
        .await
        .map_err(db)?
    {
        return if msg.same_as(&found) {
            Ok((found, false))
        } else {
            Err(GrantRefusal::KeyReused)
        };
    }
    if let Some(active) = bdb::lock_active(&tx, msg.user_id).await.map_err(db)? {
        return Err(GrantRefusal::ActiveBonus(active.id));
    }
    let bonus = bdb::insert_bonus(
        &tx,
        &NewBonus {
            user_id: msg.user_id,
            amount: msg.amount.as_decimal(),
            wagering_multiplier: msg.wagering_multiplier,
            min_odds: msg.min_odds,
            expires_at: msg.expires_at,
            idempotency_key: &msg.idempotency_key,
            granted_by: msg.actor.user_id,
            conversion_cap: msg.conversion_cap.as_decimal(),
        },
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok((bonus, true))
}

/// The bonus `bonus_id` of `user_id` has expired: retract the free bonus money (what bets
/// in flight hold is debited by them) and close it. Answers what was retracted (`None`:
/// it was not active any more).
#[derive(Message)]
#[rtype(result = "Result<Option<Money>, String>")]
pub struct ExpireBonus {
    pub user_id: UserId,
    pub bonus_id: Uuid,
}

impl Handler<ExpireBonus> for WalletShard {
    type Result = AtomicResponse<Self, Result<Option<Money>, String>>;

    fn handle(&mut self, msg: ExpireBonus, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let held = self
            .accounts
            .get(&msg.user_id)
            .map_or(Money::ZERO, |a| a.bonus_reserved);
        AtomicResponse::new(Box::pin(
            async move { expire(&pool, msg.user_id, msg.bonus_id, held).await }
                .into_actor(self)
                .map(move |out, act, _| {
                    if let Ok(Some(retracted)) = &out {
                        if let Some(a) = act.accounts.get_mut(&msg.user_id) {
                            a.bonus_balance -= *retracted;
                            a.bonus = None;
                        }
                    }
                    out
                }),
        ))
    }
}

async fn expire(
    pool: &deadpool_postgres::Pool,
    user_id: UserId,
    bonus_id: Uuid,
    held: Money,
) -> Result<Option<Money>, String> {
    let run = async {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, AuditActor::default()).await?;
        let Some((_, bonus_balance)) = bdb::lock_bonus_balance(&tx, user_id).await? else {
            return Ok(None);
        };
        let Some(active) = bdb::lock_active(&tx, user_id).await? else {
            return Ok(None);
        };
        if active.id != bonus_id || active.expires_at > chrono::Utc::now() {
            return Ok(None);
        }
        let retracted = (Money::from_decimal(bonus_balance)? - held).max(Money::ZERO);
        bdb::move_bonus(
            &tx,
            user_id,
            None,
            -retracted.as_decimal(),
            &format!("bonus:expire:{bonus_id}"),
            "bonus expired",
        )
        .await?;
        bdb::close_bonus(
            &tx,
            bonus_id,
            "expired",
            Decimal::ZERO,
            retracted.as_decimal(),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>(Some(retracted))
    };
    run.await.map_err(|e| format!("{e:#}"))
}

impl super::Wallet {
    /// Sends a grant to the user's shard and waits for the committed answer.
    pub async fn grant_bonus(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<(BonusRow, bool), GrantRefusal>>) -> GrantBonus,
        user_id: UserId,
    ) -> Result<(BonusRow, bool), GrantRefusal> {
        let (tx, rx) = oneshot::channel();
        self.shard_of(user_id)
            .send(msg(tx))
            .await
            .map_err(|_| GrantRefusal::Db(anyhow::anyhow!("wallet stopped")))?;
        rx.await
            .map_err(|_| GrantRefusal::Db(anyhow::anyhow!("wallet dropped the grant")))?
    }

    /// Expires one bonus through its user's shard.
    pub async fn expire_bonus(
        &self,
        user_id: UserId,
        bonus_id: Uuid,
    ) -> Result<Option<Money>, String> {
        self.shard_of(user_id)
            .send(ExpireBonus { user_id, bonus_id })
            .await
            .map_err(|e| format!("wallet shard: {e}"))?
    }
}

// ---- Settlement: the bonus part of a booking (called by `credits::book` in its transaction).

/// How one change divides between the balances.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Of the old payout, what comes back out of the bonus balance (the rest of the old
    /// bonus part, if the bonus balance no longer holds it, is taken from cash).
    pub bonus_taken_back: Decimal,
    /// Of the new payout, what goes to the bonus balance (the bonus-funded share while the
    /// user's bonus is active; otherwise all is cash).
    pub new_bonus: Decimal,
}

/// A bonus whose requirement a booking met: converted to cash (capped), the rest retracted.
#[derive(Debug, Clone)]
pub struct Closed {
    pub user_id: UserId,
    pub converted: Money,
    pub retracted: Money,
}

/// The split of each change (same order), and the bets' `bonus_win` recorded.
pub async fn split<C: deadpool_postgres::GenericClient>(
    c: &C,
    changes: &[crate::domain::settlement::BetChange],
    held: &std::collections::HashMap<UserId, (Money, Money)>,
) -> Result<Vec<Split>, tokio_postgres::Error> {
    let ids: Vec<BetId> = changes.iter().map(|c| c.bet_id).collect();
    let funding = bdb::funding(c, &ids).await?;
    if funding.values().all(|f| f.1.is_zero() && f.2.is_zero()) {
        return Ok(vec![Split::default(); changes.len()]);
    }
    let users: Vec<UserId> = changes.iter().map(|c| c.user_id).collect();
    let active = bdb::users_with_active(c, &users).await?;
    let mut free: std::collections::HashMap<UserId, Decimal> = bdb::lock_bonus_balances(c, &users)
        .await?
        .into_iter()
        .map(|(u, b)| {
            (
                u,
                b - held.get(&u).map_or(Decimal::ZERO, |h| h.1.as_decimal()),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    let (mut bets, mut wins) = (Vec::new(), Vec::new());
    for ch in changes {
        let (stake, bonus_stake, old_bonus) = funding.get(&ch.bet_id).copied().unwrap_or_default();
        let new_bonus = if active.contains(&ch.user_id) {
            crate::domain::bonus::bonus_share(ch.new_win, stake, bonus_stake, ch.scale)
        } else {
            Decimal::ZERO
        };
        let room = free.entry(ch.user_id).or_default();
        let taken = old_bonus.min((*room).max(Decimal::ZERO));
        *room -= taken;
        if new_bonus != old_bonus {
            bets.push(ch.bet_id);
            wins.push(new_bonus);
        }
        out.push(Split {
            bonus_taken_back: taken,
            new_bonus,
        });
    }
    bdb::set_bonus_wins(c, &bets, &wins).await?;
    Ok(out)
}

/// The `bonus` rows of one change's bonus part.
pub fn ledger_rows(
    c: &crate::domain::settlement::BetChange,
    s: &Split,
) -> Vec<crate::db::settlement::BookedTx> {
    let seq = c.expected_seq + 1;
    let mut rows = Vec::new();
    let row = |amount: Decimal, reference: String, description: &'static str| {
        crate::db::settlement::BookedTx {
            user_id: c.user_id,
            bet_id: c.bet_id,
            kind: "bonus",
            amount,
            currency_code: c.currency_code.clone(),
            reference,
            description,
        }
    };
    if s.bonus_taken_back > Decimal::ZERO {
        rows.push(row(
            -s.bonus_taken_back,
            format!("bonus:reverse:{}:{seq}", c.bet_id),
            "settlement reversed (bonus money)",
        ));
    }
    if s.new_bonus > Decimal::ZERO {
        let voided = c.new_status == crate::domain::BetStatus::Voided;
        rows.push(row(
            s.new_bonus,
            format!(
                "bonus:{}:{}:{seq}",
                if voided { "void" } else { "settle" },
                c.bet_id
            ),
            if voided {
                "bet voided (bonus money)"
            } else {
                "bet settled (bonus money)"
            },
        ));
    }
    rows
}

/// The free bets of voided bets come back while not expired.
pub async fn restore_free_bets<C: deadpool_postgres::GenericClient>(
    c: &C,
    changes: &[crate::domain::settlement::BetChange],
) -> Result<(), tokio_postgres::Error> {
    let (tokens, bets): (Vec<Uuid>, Vec<BetId>) = changes
        .iter()
        .filter(|c| c.new_status == crate::domain::BetStatus::Voided)
        .filter_map(|c| c.free_bet.map(|t| (t, c.bet_id)))
        .unzip();
    bdb::restore_free_bets(c, &tokens, &bets).await
}

/// Wagering of the booked changes; bonuses whose requirement is met are converted (capped
/// by their terms) and closed, each move a transaction row.
pub async fn count_wagering<C: deadpool_postgres::GenericClient>(
    c: &C,
    changes: &[crate::domain::settlement::BetChange],
    held: &std::collections::HashMap<UserId, (Money, Money)>,
) -> anyhow::Result<Vec<Closed>> {
    let (counting, uncounting): (Vec<_>, Vec<_>) = changes
        .iter()
        .partition(|c| crate::domain::bonus::counts_for_wagering(c.new_status));
    let counting: Vec<BetId> = counting.iter().map(|c| c.bet_id).collect();
    let uncounting: Vec<BetId> = uncounting.iter().map(|c| c.bet_id).collect();
    let met = bdb::count_wagers(c, &counting, &uncounting).await?;
    let mut closed = Vec::new();
    for (bonus_id, user_id, cap) in met {
        let Some((_, bonus_balance)) = bdb::lock_bonus_balance(c, user_id).await? else {
            continue;
        };
        let in_flight = held.get(&user_id).map_or(Money::ZERO, |h| h.1);
        let (converted, retracted) = crate::domain::bonus::conversion(
            (Money::from_decimal(bonus_balance)? - in_flight).as_decimal(),
            cap,
        );
        let (converted, retracted) = (
            Money::from_decimal(converted)?,
            Money::from_decimal(retracted)?,
        );
        bdb::move_bonus(
            c,
            user_id,
            None,
            -converted.as_decimal(),
            &format!("bonus:convert:{bonus_id}"),
            "wagering met: bonus money to cash",
        )
        .await?;
        bdb::move_cash(
            c,
            user_id,
            converted.as_decimal(),
            &format!("bonus-cash:{bonus_id}"),
            "wagering met: bonus money to cash",
        )
        .await?;
        bdb::move_bonus(
            c,
            user_id,
            None,
            -retracted.as_decimal(),
            &format!("bonus:forfeit:{bonus_id}"),
            "wagering met: bonus money above the conversion cap retracted",
        )
        .await?;
        let (stored_converted, stored_retracted) = (converted.as_decimal(), retracted.as_decimal());
        bdb::close_bonus(c, bonus_id, "completed", stored_converted, stored_retracted).await?;
        closed.push(Closed {
            user_id,
            converted,
            retracted,
        });
    }
    Ok(closed)
}
