//! `WalletShard`: the single writer of the balances of the users hashed to it.
//!
//! Each message is handled atomically (`AtomicResponse`): the shard takes no other message
//! until the change is committed, so a user's balance has exactly one writer and the
//! idempotency check and the write cannot interleave. Balances are loaded from
//! `user_balances` on first use and kept; the write is a compare-and-set on the row, so a
//! stale cache (another node or an operator changed the row) is detected, reloaded and
//! retried once instead of overwriting.
//!
//! The bet path adds messages beside [`MoveMoney`] (`stakes`): `ReserveStake` (check the
//! account's controls, funds and responsible-gaming counters, hold the stake in
//! `Account::reserved`), `SettleStake` (the ledger writer committed the debit, or the bet
//! was refused), `HeldStake` and `InvalidateControls`; `credits` books payouts.
//! A withdrawal may take only the available balance: the balance less the stakes held for
//! bets in flight.
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, WrapFuture};
use deadpool_postgres::Pool;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::processor::{Direction, PaymentOutcome, PaymentProcessor, PaymentRequest};
use crate::db::audit::{self, Actor as AuditActor};
use crate::db::users;
use crate::db::wallet::{self as wdb, NewTx, TxRecord};
use crate::domain::account::UserStatus;
use crate::domain::ids::UserId;
use crate::domain::money::Money;

/// The state a shard keeps per user.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// The committed balance (mirrors `user_balances.balance`).
    pub balance: Money,
    /// Stakes held for bets in flight (the bet path): available = balance - reserved.
    pub reserved: Money,
    /// Responsible-gaming counters (stake placed today / this week / this month), kept by
    /// the bet path and checked against `user_preferences.betting_limits`.
    pub staked_day: Money,
    pub staked_week: Money,
    pub staked_month: Money,
    /// The bettor's controls for the bet path (`None`: read them on the next bet).
    pub controls: Option<super::stakes::Controls>,
    /// Stakes of the current day, week and month (`None`: not loaded yet).
    pub counters: Option<super::stakes::Counters>,
    /// The bonus money (mirrors `user_balances.bonus_balance`), the part of it held for
    /// bets in flight, the active bonus (`wallet::bonus`) and the free bets held by bets
    /// in flight. Valid once `bonus_loaded`.
    pub bonus_balance: Money,
    pub bonus_reserved: Money,
    pub bonus: Option<super::bonus::ActiveBonus>,
    pub free_bets_held: Vec<Uuid>,
    pub bonus_loaded: bool,
    /// Several nodes: the wallet partition's lease epoch the balance was read under.
    pub epoch: i64,
    /// Several nodes: the balance must be read again before the next stake is held.
    pub stale: bool,
    /// Cash-out payments of this user being written now (`wallet::cashout`): the shard
    /// goes on serving everyone else meanwhile, and adds each credit when its write commits.
    pub crediting: u32,
    /// Bumped whenever `balance` is set from the database rather than moved by a known
    /// amount: a credit whose write overlapped such a read cannot tell whether the read
    /// already held it, so the balance is read again instead.
    pub balance_version: u64,
}

impl Account {
    /// Something in flight depends on this cached account: it must not be forgotten.
    pub fn holds(&self) -> bool {
        !self.reserved.is_zero()
            || !self.bonus_reserved.is_zero()
            || !self.free_bets_held.is_empty()
            || self.crediting > 0
    }
}

/// Deposit or withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    Deposit,
    Withdrawal,
}

impl Movement {
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Deposit => "deposit",
            Movement::Withdrawal => "withdrawal",
        }
    }
}

/// Move money in or out of one account, idempotently on `(user_id, idempotency_key)`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MoveMoney {
    pub user_id: UserId,
    pub movement: Movement,
    pub amount: Money,
    pub idempotency_key: String,
    pub payment_method_id: Option<Uuid>,
    pub actor: AuditActor,
    /// Only a verified profile may make this movement (`[kyc] required_before`).
    pub verification_required: bool,
    /// What the book keeps (`wallet::fees`): the balance moves by the amount less this
    /// (deposit) or by the amount plus this (withdrawal).
    pub fees: Money,
    /// The currency the client named, if any: it must be the account's.
    pub currency_code: Option<String>,
    pub reply: oneshot::Sender<Result<MoveOutcome, WalletError>>,
}

/// A committed answer: the `transactions` row, `completed` or (declined) `failed`.
#[derive(Debug, Clone)]
pub enum MoveOutcome {
    Completed(TxRecord),
    Declined(TxRecord),
}

impl MoveOutcome {
    fn from_record(tx: TxRecord) -> MoveOutcome {
        if tx.status == "completed" {
            MoveOutcome::Completed(tx)
        } else {
            MoveOutcome::Declined(tx)
        }
    }
}

/// Why a movement was refused.
#[derive(Debug)]
pub enum WalletError {
    /// Withdrawal above the available balance.
    InsufficientFunds {
        available: Money,
    },
    /// The key was used before with another payload.
    KeyReused,
    /// Self-excluded, suspended or banned: the reason.
    Restricted(&'static str),
    /// The movement names a currency other than the account's.
    CurrencyMismatch {
        account: String,
    },
    /// `[kyc] required_before` lists the movement (`deposit`, `withdrawal`) and the
    /// profile is not verified.
    VerificationRequired(&'static str),
    UnknownUser,
    Db(anyhow::Error),
    /// The shard's mailbox is full: refused at once rather than queued without limit.
    Busy,
    /// The shard stopped or dropped the request.
    Unavailable(&'static str),
}

impl From<tokio_postgres::Error> for WalletError {
    fn from(err: tokio_postgres::Error) -> Self {
        WalletError::Db(err.into())
    }
}

impl From<deadpool_postgres::PoolError> for WalletError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        WalletError::Db(err.into())
    }
}

/// One shard: its users' accounts and the means to write them.
pub struct WalletShard {
    index: usize,
    pub(super) pool: Pool,
    processor: Arc<dyn PaymentProcessor>,
    pub(super) accounts: HashMap<UserId, Account>,
    accounts_cached_max: usize,
    /// True while control changes reach this node (see [`super::Wallet::start`]).
    pub(super) controls_live: Arc<AtomicBool>,
    /// The private channel: a committed deposit or withdrawal sends the new `balance`.
    hub: Arc<crate::broadcast::Hub>,
}

impl WalletShard {
    pub fn new(
        index: usize,
        pool: Pool,
        processor: Arc<dyn PaymentProcessor>,
        accounts_cached_max: usize,
        controls_live: Arc<AtomicBool>,
        hub: Arc<crate::broadcast::Hub>,
    ) -> Self {
        WalletShard {
            index,
            pool,
            processor,
            accounts: HashMap::new(),
            accounts_cached_max: accounts_cached_max.max(1),
            controls_live,
            hub,
        }
    }
}

impl WalletShard {
    /// Bounds the cache: when full, forgets every account that holds no stake (those with
    /// stakes in flight must stay, see `stakes`).
    pub(super) fn make_room(&mut self, user_id: UserId) {
        if self.accounts.len() >= self.accounts_cached_max && !self.accounts.contains_key(&user_id)
        {
            self.accounts.retain(|_, a| a.holds());
        }
    }
}

impl Handler<MoveMoney> for WalletShard {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: MoveMoney, _ctx: &mut Self::Context) -> Self::Result {
        let account = self.accounts.get(&msg.user_id);
        let cached = account.map(|a| a.balance);
        // Stakes held for bets in flight are not available to withdraw.
        let held = account.map_or(Money::ZERO, |a| a.reserved);
        let pool = self.pool.clone();
        let processor = self.processor.clone();
        let shard = self.index;
        let MoveMoney { reply, .. } = msg;
        let req = MoveRequest {
            user_id: msg.user_id,
            movement: msg.movement,
            amount: msg.amount,
            idempotency_key: msg.idempotency_key,
            payment_method_id: msg.payment_method_id,
            actor: msg.actor,
            verification_required: msg.verification_required,
            fees: msg.fees,
            currency_code: msg.currency_code,
        };
        let user_id = req.user_id;
        AtomicResponse::new(Box::pin(
            async move { move_money(&pool, processor.as_ref(), req, cached, held).await }
                .into_actor(self)
                .map(move |(result, balance), act, _| {
                    match balance {
                        Some(b) => {
                            act.make_room(user_id);
                            let account = act.accounts.entry(user_id).or_default();
                            account.balance = b;
                            account.balance_version += 1;
                            if matches!(result, Ok(MoveOutcome::Completed(_))) {
                                let held = account.reserved;
                                act.hub.publish(
                                    &crate::broadcast::user_topic(user_id),
                                    "balance",
                                    &serde_json::json!({"balance": format!("{b:.2}"),
                                                        "pending_balance": format!("{held:.2}")}),
                                );
                            }
                        }
                        None => {
                            // Forget a doubtful balance, never one with stakes in flight.
                            if act.accounts.get(&user_id).is_some_and(|a| !a.holds()) {
                                act.accounts.remove(&user_id);
                            }
                        }
                    }
                    if let Err(WalletError::Db(err)) = &result {
                        tracing::warn!(shard, error = %format!("{err:#}"), "wallet write failed");
                    }
                    let _ = reply.send(result);
                }),
        ))
    }
}

struct MoveRequest {
    user_id: UserId,
    movement: Movement,
    amount: Money,
    idempotency_key: String,
    payment_method_id: Option<Uuid>,
    actor: AuditActor,
    verification_required: bool,
    fees: Money,
    currency_code: Option<String>,
}

impl MoveRequest {
    /// Same payload as an earlier transaction with this key?
    fn matches(&self, tx: &TxRecord) -> bool {
        tx.kind == self.movement.as_str()
            && tx.amount.abs() == self.amount.as_decimal()
            && tx.payment_method_id == self.payment_method_id
    }

    fn replay(&self, tx: TxRecord) -> Result<MoveOutcome, WalletError> {
        if self.matches(&tx) {
            Ok(MoveOutcome::from_record(tx))
        } else {
            Err(WalletError::KeyReused)
        }
    }
}

/// The whole movement; answers the result and the balance to cache (`None`: forget it).
async fn move_money(
    pool: &Pool,
    processor: &dyn PaymentProcessor,
    req: MoveRequest,
    cached: Option<Money>,
    held: Money,
) -> (Result<MoveOutcome, WalletError>, Option<Money>) {
    match try_move(pool, processor, &req, cached, held).await {
        Ok((outcome, balance)) => (Ok(outcome), Some(balance)),
        Err(WalletError::Db(err)) => (Err(WalletError::Db(err)), None),
        Err(other) => (Err(other), cached),
    }
}

async fn try_move(
    pool: &Pool,
    processor: &dyn PaymentProcessor,
    req: &MoveRequest,
    cached: Option<Money>,
    held: Money,
) -> Result<(MoveOutcome, Money), WalletError> {
    let mut client = pool.get().await?;
    if let Some(existing) = wdb::find_by_key(&client, req.user_id, &req.idempotency_key).await? {
        let balance = current_balance(&client, req.user_id, cached).await?;
        return req.replay(existing).map(|o| (o, balance));
    }
    let currency = check_restrictions(&client, req).await?;
    let mut balance = current_balance(&client, req.user_id, cached).await?;
    for attempt in 0..2 {
        let available = balance - held;
        if req.movement == Movement::Withdrawal && available < req.amount + req.fees {
            return Err(WalletError::InsufficientFunds {
                available: available.max(Money::ZERO),
            });
        }
        let outcome = processor
            .process(PaymentRequest {
                user_id: req.user_id,
                direction: match req.movement {
                    Movement::Deposit => Direction::Charge,
                    Movement::Withdrawal => Direction::Payout,
                },
                amount: req.amount,
                currency_code: currency.clone(),
                payment_method_id: req.payment_method_id,
                idempotency_key: req.idempotency_key.clone(),
            })
            .await
            .map_err(WalletError::Db)?;
        match write(&mut client, req, balance, &currency, &outcome).await {
            Ok(Written::Done(record, new_balance)) => {
                let record = *record;
                return Ok((MoveOutcome::from_record(record), new_balance));
            }
            Ok(Written::Stale) if attempt == 0 => {
                balance = load_balance(&client, req.user_id).await?;
            }
            Ok(Written::Stale) => {
                return Err(WalletError::Db(anyhow::anyhow!(
                    "balance row changed twice under the shard"
                )))
            }
            Err(err) if is_unique_violation(&err) => {
                // Another node wrote this key first: the index is the final guard.
                let existing = wdb::find_by_key(&client, req.user_id, &req.idempotency_key)
                    .await?
                    .ok_or_else(|| WalletError::Db(err.into()))?;
                let balance = load_balance(&client, req.user_id).await?;
                return req.replay(existing).map(|o| (o, balance));
            }
            Err(err) => return Err(err.into()),
        }
    }
    unreachable!("the loop returns on its second attempt")
}

fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

enum Written {
    Done(Box<TxRecord>, Money),
    Stale,
}

/// Writes the balance and the ledger row in one transaction.
async fn write(
    client: &mut deadpool_postgres::Object,
    req: &MoveRequest,
    balance: Money,
    currency: &str,
    outcome: &PaymentOutcome,
) -> Result<Written, tokio_postgres::Error> {
    let signed = match req.movement {
        Movement::Deposit => req.amount,
        Movement::Withdrawal => -req.amount,
    };
    let tx = client.transaction().await?;
    audit::set_actor(&tx, req.actor).await?;
    let new_balance = if outcome.approved {
        // The balance moves by the row's net_amount (amount - fees).
        let new_balance = balance + signed - req.fees;
        let (expected, new) = (balance.as_decimal(), new_balance.as_decimal());
        if !wdb::set_balance(&tx, req.user_id, expected, new).await? {
            tx.rollback().await?;
            return Ok(Written::Stale);
        }
        new_balance
    } else {
        balance
    };
    let description = match (req.movement, outcome.decline_reason) {
        (m, None) => m.as_str().to_string(),
        (m, Some(reason)) => format!("{} declined: {reason}", m.as_str()),
    };
    let record = wdb::insert_tx(
        &tx,
        &NewTx {
            user_id: req.user_id,
            kind: req.movement.as_str(),
            amount: signed.as_decimal(),
            fees: req.fees.as_decimal(),
            currency_code: currency,
            status: if outcome.approved {
                "completed"
            } else {
                "failed"
            },
            reference: &format!("{}:{}", req.movement.as_str(), outcome.reference),
            external_reference: Some(&outcome.reference),
            description: &description,
            payment_method_id: req.payment_method_id,
            processor_response: Some(outcome.response.clone()),
            idempotency_key: Some(&req.idempotency_key),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Written::Done(Box::new(record), new_balance))
}

/// Refuses a movement the account's state forbids; answers the account's currency.
async fn check_restrictions(
    client: &deadpool_postgres::Client,
    req: &MoveRequest,
) -> Result<String, WalletError> {
    let r = users::restriction(client, req.user_id)
        .await?
        .ok_or(WalletError::UnknownUser)?;
    let (status, excluded_until, currency) = (r.status, r.self_excluded_until, r.currency_code);
    if req.verification_required && !r.verified {
        return Err(WalletError::VerificationRequired(req.movement.as_str()));
    }
    if req.currency_code.as_ref().is_some_and(|c| *c != currency) {
        return Err(WalletError::CurrencyMismatch { account: currency });
    }
    match (req.movement, status) {
        (_, UserStatus::Banned) => Err(WalletError::Restricted("account banned")),
        (Movement::Deposit, UserStatus::Suspended) => {
            Err(WalletError::Restricted("account suspended"))
        }
        (Movement::Deposit, _) if excluded_until.is_some_and(|t| t > chrono::Utc::now()) => {
            Err(WalletError::Restricted("account self-excluded"))
        }
        _ => Ok(currency),
    }
}

async fn current_balance(
    client: &deadpool_postgres::Client,
    user_id: UserId,
    cached: Option<Money>,
) -> Result<Money, WalletError> {
    match cached {
        Some(b) => Ok(b),
        None => load_balance(client, user_id).await,
    }
}

async fn load_balance(
    client: &deadpool_postgres::Client,
    user_id: UserId,
) -> Result<Money, WalletError> {
    wdb::ensure_balance_row(client, user_id).await?;
    let row = wdb::get_balance(client, user_id)
        .await?
        .ok_or(WalletError::UnknownUser)?;
    Money::from_decimal(row.balance).map_err(|e| WalletError::Db(stored_amount(e)))
}

/// A stored amount that is not money (more than two places): the row is not trusted.
pub(super) fn stored_amount(e: crate::domain::money::ValidationError) -> anyhow::Error {
    anyhow::anyhow!("a stored amount is not money: {e}")
}
