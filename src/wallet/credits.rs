//! Settlement bookings through the wallet shard that owns the users: payouts
//! (`bet_credit`), reversals of earlier payouts (`adjustment`, reference `reverse:..`),
//! refunds of voided bets (`refund`) and debts.
//!
//! One [`SettleCredits`] message is one Postgres transaction: the bets move to their new
//! status and payout only if they still have the expected status and settlement count
//! (so a retried or resumed batch books nothing twice), their ledger rows are inserted
//! with references unique per bet and settlement count, and balances change by relative
//! updates. Then the shard applies the same deltas to its cache (it changes balances only
//! by deltas of writes it knows of, see `stakes`). A correction that would take a balance
//! below what it holds free takes what it can and records the rest in `user_debts`, with
//! `users.debt_flag` set: never an overdraft.
use std::collections::{BTreeMap, HashMap};

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, WrapFuture};
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use super::bonus;
use super::shard::WalletShard;
use crate::db::audit::{self, Actor as AuditActor};
use crate::db::settlement::{self as sdb, BetUpdate, BookedTx};
use crate::domain::ids::{BetId, UserId};
use crate::domain::money::Money;
use crate::domain::settlement::BetChange;
use crate::domain::BetStatus;

/// Book these bets' changes (all of users of this shard) atomically.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SettleCredits {
    pub changes: Vec<BetChange>,
    pub actor: AuditActor,
    /// The settlement's own pool (bookings never take the request pool's connections).
    pub pool: deadpool_postgres::Pool,
    pub reply: oneshot::Sender<Result<Vec<Booked>, String>>,
}

/// A change that was booked now (others had been booked before, or moved meanwhile).
#[derive(Debug, Clone)]
pub struct Booked {
    pub change: BetChange,
    /// What the balance moved by (the new payout minus the old, less any debt).
    pub delta: Money,
    /// What the bonus balance moved by (the bonus-funded part of the payout).
    pub bonus_delta: Money,
    /// The balance after the booking (the shard's view when it holds the account, else
    /// the database's when the booking moved it; `None`: neither, e.g. a lost bet of an
    /// account this shard does not hold, whose balance did not move).
    pub balance: Option<Money>,
    /// The account's bonus state moved (a bonus share, or a bonus this booking converted):
    /// every node's cached bonus state of the user must be read again.
    pub bonus_changed: bool,
}

impl Handler<SettleCredits> for WalletShard {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: SettleCredits, _: &mut Self::Context) -> Self::Result {
        // Stakes held for bets in flight stay available to them: a correction never takes
        // money a held stake is about to debit.
        let held: HashMap<UserId, (Money, Money)> = msg
            .changes
            .iter()
            .filter_map(|c| {
                self.accounts
                    .get(&c.user_id)
                    .map(|a| (c.user_id, (a.reserved, a.bonus_reserved)))
            })
            .collect();
        let SettleCredits {
            changes,
            actor,
            pool,
            reply,
        } = msg;
        AtomicResponse::new(Box::pin(
            async move {
                let mut client = pool.get().await.map_err(|e| e.to_string())?;
                book(&mut client, changes, actor, &held)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
            .into_actor(self)
            .map(move |out, act, _| {
                let out = out.map(|(booked, closed)| {
                    // Conversions of bonuses whose requirement this booking met.
                    for c in &closed {
                        if let Some(a) = act.accounts.get_mut(&c.user_id) {
                            a.balance += c.converted;
                            a.bonus_balance -= c.converted + c.retracted;
                            a.bonus = None;
                        }
                    }
                    booked
                        .into_iter()
                        .map(|mut b| {
                            b.bonus_changed |= closed.iter().any(|c| c.user_id == b.change.user_id);
                            if let Some(a) = act.accounts.get_mut(&b.change.user_id) {
                                a.balance += b.delta;
                                a.bonus_balance += b.bonus_delta;
                                b.balance = Some(a.balance);
                            }
                            b
                        })
                        .collect()
                });
                let _ = reply.send(out);
            }),
        ))
    }
}

fn reference(prefix: &str, c: &BetChange) -> String {
    format!("{prefix}:{}:{}", c.bet_id, c.expected_seq + 1)
}

/// The ledger rows of one change: the reversal of the old payout (short by `debt`) and the
/// new payout or refund.
fn ledger_rows(c: &BetChange, debt: Decimal) -> Vec<BookedTx> {
    let mut rows = Vec::with_capacity(2);
    let reversal = c.old_win - debt;
    if reversal > Decimal::ZERO {
        rows.push(BookedTx {
            user_id: c.user_id,
            bet_id: c.bet_id,
            kind: "adjustment",
            amount: -reversal,
            currency_code: c.currency_code.clone(),
            reference: reference("reverse", c),
            description: "settlement reversed",
        });
    }
    if c.new_win > Decimal::ZERO {
        let voided = c.new_status == BetStatus::Voided;
        rows.push(BookedTx {
            user_id: c.user_id,
            bet_id: c.bet_id,
            kind: if voided { "refund" } else { "bet_credit" },
            amount: c.new_win,
            currency_code: c.currency_code.clone(),
            reference: reference(if voided { "void" } else { "settle" }, c),
            description: if voided { "bet voided" } else { "bet settled" },
        });
    }
    rows
}

async fn book(
    client: &mut deadpool_postgres::Object,
    changes: Vec<BetChange>,
    actor: AuditActor,
    held: &HashMap<UserId, (Money, Money)>,
) -> anyhow::Result<(Vec<Booked>, Vec<bonus::Closed>)> {
    // Durable like every money write: the shards' cached balances move by these deltas as
    // soon as the commit returns, so the commit must not be one a crash of Postgres undoes.
    let tx = client.transaction().await?;
    audit::set_actor(&tx, actor).await?;
    let applied = move_bets(&tx, changes).await?;
    if applied.is_empty() {
        tx.commit().await?;
        return Ok((Vec::new(), Vec::new()));
    }
    let (mut booked, per_user) = write_bookings(&tx, applied, held).await?;
    let balances = add_balances(&tx, per_user).await?;
    let changes: Vec<BetChange> = booked.iter().map(|b| b.change.clone()).collect();
    bonus::restore_free_bets(&tx, &changes).await?;
    let closed = bonus::count_wagering(&tx, &changes, held).await?;
    tx.commit().await?;
    for b in &mut booked {
        b.balance = balances.get(&b.change.user_id).copied();
        if let Some(c) = closed.iter().find(|c| c.user_id == b.change.user_id) {
            b.balance = b.balance.map(|v| v + c.converted);
        }
    }
    Ok((booked, closed))
}

/// Moves the bets as the changes say; answers the changes that applied (a bet another
/// writer moved first is left out).
async fn move_bets(
    tx: &deadpool_postgres::Transaction<'_>,
    changes: Vec<BetChange>,
) -> anyhow::Result<Vec<BetChange>> {
    let updates: Vec<BetUpdate> = changes
        .iter()
        .map(|c| BetUpdate {
            bet_id: c.bet_id,
            expected_seq: c.expected_seq,
            old_status: c.old_status.as_str().to_string(),
            new_status: c.new_status.as_str().to_string(),
            new_win: c.new_win,
            void_reason: c.void_reason.clone(),
        })
        .collect();
    let moved: std::collections::HashSet<BetId> =
        sdb::update_bets(tx, &updates).await?.into_iter().collect();
    Ok(changes
        .into_iter()
        .filter(|c| moved.contains(&c.bet_id))
        .collect())
}

/// The ledger rows and debts of the applied changes; answers them booked (balance still
/// zero) and the cash and bonus deltas per user.
async fn write_bookings(
    tx: &deadpool_postgres::Transaction<'_>,
    applied: Vec<BetChange>,
    held: &HashMap<UserId, (Money, Money)>,
) -> anyhow::Result<(Vec<Booked>, BTreeMap<UserId, (Money, Money)>)> {
    // Each change in its cash part and its bonus part (docs/accounts.md): the cash view of
    // a change goes through the debts of the cash balance as before.
    let splits = bonus::split(tx, &applied, held).await?;
    let cash_views: Vec<BetChange> = applied
        .iter()
        .zip(&splits)
        .map(|(c, s)| BetChange {
            old_win: c.old_win - s.bonus_taken_back,
            new_win: c.new_win - s.new_bonus,
            ..c.clone()
        })
        .collect();
    let cash_held: HashMap<UserId, Decimal> =
        held.iter().map(|(u, h)| (*u, h.0.as_decimal())).collect();
    let debts = shortfalls(tx, &cash_views, &cash_held).await?;
    let mut rows = Vec::new();
    let mut per_user: BTreeMap<UserId, (Money, Money)> = BTreeMap::new();
    let mut debt_rows = Vec::new();
    let mut booked = Vec::with_capacity(applied.len());
    for ((c, cash), split) in applied.into_iter().zip(cash_views).zip(splits) {
        let debt = debts.get(&c.bet_id).copied().unwrap_or_default();
        rows.extend(ledger_rows(&cash, debt));
        rows.extend(bonus::ledger_rows(&c, &split));
        if debt > Decimal::ZERO {
            debt_rows.push((c.user_id, c.bet_id, debt, reference("debt", &c)));
        }
        let delta = Money::from_decimal(cash.new_win - cash.old_win + debt)?;
        let bonus_delta = Money::from_decimal(split.new_bonus - split.bonus_taken_back)?;
        let totals = per_user.entry(c.user_id).or_default();
        totals.0 += delta;
        totals.1 += bonus_delta;
        booked.push(Booked {
            change: c,
            delta,
            bonus_delta,
            balance: None,
            bonus_changed: !bonus_delta.is_zero(),
        });
    }
    sdb::insert_txs(tx, &rows).await?;
    sdb::insert_debts(tx, &debt_rows).await?;
    Ok((booked, per_user))
}

/// Moves the balances by the non-zero (cash, bonus) deltas; answers the balances now.
async fn add_balances(
    tx: &deadpool_postgres::Transaction<'_>,
    mut per_user: BTreeMap<UserId, (Money, Money)>,
) -> anyhow::Result<HashMap<UserId, Money>> {
    per_user.retain(|_, d| !d.0.is_zero() || !d.1.is_zero());
    let users: Vec<UserId> = per_user.keys().copied().collect();
    let deltas: Vec<Decimal> = per_user.values().map(|d| d.0.as_decimal()).collect();
    let bonus_deltas: Vec<Decimal> = per_user.values().map(|d| d.1.as_decimal()).collect();
    sdb::add_balances(tx, &users, &deltas, &bonus_deltas)
        .await?
        .into_iter()
        .map(|(user, balance)| Ok((user, Money::from_decimal(balance)?)))
        .collect()
}

/// For users whose bookings take money back: what each bet's reversal cannot take from the
/// free balance (balance less held stakes), allocated bet by bet.
async fn shortfalls(
    tx: &deadpool_postgres::Transaction<'_>,
    applied: &[BetChange],
    held: &HashMap<UserId, Decimal>,
) -> anyhow::Result<HashMap<BetId, Decimal>> {
    let mut net: BTreeMap<UserId, Decimal> = BTreeMap::new();
    for c in applied {
        *net.entry(c.user_id).or_default() += c.new_win - c.old_win;
    }
    let takers: Vec<UserId> = net
        .iter()
        .filter(|(_, d)| d.is_sign_negative() && !d.is_zero())
        .map(|(u, _)| *u)
        .collect();
    let mut out = HashMap::new();
    if takers.is_empty() {
        return Ok(out);
    }
    for (user, balance) in sdb::lock_balances(tx, &takers).await? {
        let free = (balance - held.get(&user).copied().unwrap_or_default()).max(Decimal::ZERO);
        let need = -net[&user];
        let mut short = (need - free).max(Decimal::ZERO);
        for c in applied.iter().filter(|c| c.user_id == user) {
            if short.is_zero() {
                break;
            }
            let taken_back = c.old_win - c.new_win;
            if taken_back > Decimal::ZERO {
                let part = short.min(taken_back);
                out.insert(c.bet_id, part);
                short -= part;
            }
        }
    }
    Ok(out)
}

/// How a settlement has its changes booked.
#[derive(Clone)]
pub struct Booking {
    /// Connections for the bookings (the settlement's own pool).
    pub pool: deadpool_postgres::Pool,
    /// Shards booking at once: a shard books one transaction per turn.
    pub turns: std::sync::Arc<tokio::sync::Semaphore>,
    pub actor: AuditActor,
}

impl super::Wallet {
    /// Sends each shard the changes of its users and gathers what was booked. A shard is
    /// sent its part only with a turn (`booking.turns`), so at most that many shards are
    /// busy with a settlement at once and each finds a free connection; the message waits
    /// for mailbox room (settlement is internal and bounded by its batch size). Any
    /// shard's failure fails the call; the bookings that did commit are never repeated.
    pub async fn settle_credits(
        &self,
        changes: Vec<BetChange>,
        booking: Booking,
    ) -> Result<Vec<Booked>, String> {
        let mut per_shard: BTreeMap<usize, Vec<BetChange>> = BTreeMap::new();
        for c in changes {
            let i = (c.user_id.as_uuid().as_u128() % self.shards.len() as u128) as usize;
            per_shard.entry(i).or_default().push(c);
        }
        let waits = per_shard.into_iter().map(|(i, changes)| {
            let shard = self.shards[i].clone();
            let booking = booking.clone();
            async move {
                let _turn = booking
                    .turns
                    .acquire()
                    .await
                    .map_err(|_| "settlement stopped".to_string())?;
                let (reply, rx) = oneshot::channel();
                shard
                    .send(SettleCredits {
                        changes,
                        actor: booking.actor,
                        pool: booking.pool.clone(),
                        reply,
                    })
                    .await
                    .map_err(|e| format!("wallet shard: {e}"))?;
                rx.await
                    .map_err(|_| "wallet shard dropped the booking".to_string())?
            }
        });
        let mut booked = Vec::new();
        let mut failure = None;
        for out in futures::future::join_all(waits).await {
            match out {
                Ok(b) => booked.extend(b),
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(booked),
        }
    }
}
