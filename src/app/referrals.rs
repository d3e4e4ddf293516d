//! Trader referral (issue 18, docs/bets.md "Referral"): a bet that breaks a limit its
//! market refers (`referral_window_ms` not 0, the refusal in `referable`) is written in
//! status `referred` by the bet path (stake debited and held, liability counted in the
//! markets), answered 202, and waits here for the desk: accept, reject, or counter with a
//! lower stake or other odds, which then waits for the bettor's answer. Either window
//! passing rejects the bet.
//!
//! Every ending is one Postgres transaction through the bettor's wallet shard
//! (`db::referrals::end`: the referral row's status is the guard, so exactly one ending
//! commits); only after it are the markets' liabilities changed and anyone told (the
//! `referral` message on the staff `trading` topic, `bet` and `balance` on the bettor's
//! private topic). Timers live in memory and are rebuilt from Postgres at start-up
//! ([`ReferralService::recover`]); an ending whose window passed while the engine was down
//! is written at once.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::actors::market::{AddExposure, ReleaseExposure};
use crate::actors::Registry;
use crate::broadcast::Hub;
use crate::db::referrals::{self as rdb, EndError, Ended, Ending, ReferralRow};
use crate::domain::ids::{BetId, UserId};
use crate::domain::{Money, Odds};
use crate::wallet::referral::EndReferral;
use crate::wallet::Wallet;

/// `[referral]` in config (the windows per sport and market type are market settings:
/// `[markets.defaults]`, `[markets.sports.<slug>]`, `[markets.market_types.<slug>.<type>]`).
#[derive(Debug, Clone, Deserialize)]
pub struct ReferralSettings {
    /// How long the bettor has to answer a counter-offer.
    pub counter_window_ms: u64,
    /// Referrals open at once on this node; beyond it a referable bet is refused as it
    /// would be without referral.
    pub open_max: usize,
    /// Most referrals `GET /trading/referrals` answers.
    pub list_max: i64,
}

/// Why a referral action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    #[error("no such referral")]
    NotFound,
    /// Decided already, or its window has passed (or, for the bettor, no counter-offer).
    #[error("the referral is {0}")]
    NotPending(String),
    /// An expiry before the window passed (by the database's clock): tried again later.
    #[error("the referral's window has not passed yet")]
    WindowOpen,
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is busy")]
    Busy(&'static str),
    #[error("database: {0}")]
    Db(String),
}

impl From<tokio_postgres::Error> for ReferralError {
    fn from(e: tokio_postgres::Error) -> Self {
        ReferralError::Db(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for ReferralError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ReferralError::Db(e.to_string())
    }
}

impl From<EndError> for ReferralError {
    fn from(e: EndError) -> Self {
        match e {
            EndError::NotFound => ReferralError::NotFound,
            EndError::Moved(status) => ReferralError::NotPending(status),
            EndError::NotYet => ReferralError::WindowOpen,
            EndError::Db(e) => ReferralError::Db(e.to_string()),
            EndError::Pool(e) => ReferralError::Db(e),
        }
    }
}

/// The desk's decision (`POST /trading/referrals/{bet_id}`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `accept`, `reject` or `counter`.
    pub decision: String,
    /// Counter: the stake offered (at most the stake asked; default the same).
    #[schema(value_type = Option<String>)]
    pub stake: Option<Money>,
    /// Counter: other odds for a single (default the odds taken).
    #[schema(value_type = Option<String>)]
    pub odds: Option<Odds>,
}

/// A referral with its bet, as the desk's queue and the `referral` message show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReferralView {
    #[serde(flatten)]
    pub referral: ReferralRow,
    /// The customer (the console links to the customer panel).
    #[schema(value_type = uuid::Uuid)]
    pub customer: UserId,
    /// The bet: type, stake, odds, potential win, legs with markets and events.
    #[schema(value_type = Object)]
    pub bet: serde_json::Value,
    /// The stake and the liability it would add in the book's base currency (the desk
    /// compares referrals across currencies): `{currency_code, stake, liability}`.
    #[schema(value_type = Object)]
    pub base: serde_json::Value,
}

/// The handles referral needs.
#[derive(Clone)]
pub struct ReferralService {
    registry: Arc<Registry>,
    wallet: Wallet,
    hub: Arc<Hub>,
    db: deadpool_postgres::Pool,
    settings: ReferralSettings,
    odds_max: Decimal,
    /// Referrals open (pending or countered) known to this engine.
    open: Arc<AtomicUsize>,
}

impl ReferralService {
    pub fn new(
        registry: Arc<Registry>,
        wallet: Wallet,
        hub: Arc<Hub>,
        db: deadpool_postgres::Pool,
        settings: ReferralSettings,
        odds_max: Decimal,
    ) -> ReferralService {
        ReferralService {
            registry,
            wallet,
            hub,
            db,
            settings,
            odds_max,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a place for one more open referral (false: `open_max` reached). The bet path
    /// gives it back with [`ReferralService::give_back`] if the bet is not written.
    pub fn admit(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.settings.open_max).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn give_back(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// A referred bet was committed (its place taken with [`ReferralService::admit`]):
    /// the desk's window starts now; the desk hears of it.
    pub fn opened(&self, bet_id: BetId, expires_at: DateTime<Utc>) {
        self.arm(bet_id, expires_at);
        let this = self.clone();
        // The bettor already has the bet (the bet path's `bet` message): the desk hears.
        tokio::spawn(async move { this.announce(bet_id, "referred", false).await });
    }

    /// Referrals waiting for the desk or the bettor, oldest first.
    pub async fn list(&self) -> Result<Vec<ReferralView>, ReferralError> {
        let client = self.db.get().await?;
        let rows = rdb::open(&client, self.settings.list_max).await?;
        let mut out = Vec::with_capacity(rows.len());
        for referral in rows {
            out.push(self.with_bet(&client, referral).await?);
        }
        Ok(out)
    }

    /// The desk decides: accept or reject (ends it), or counter (the bettor answers).
    pub async fn decide(
        &self,
        bet_id: BetId,
        req: DecisionRequest,
        staff: UserId,
    ) -> Result<ReferralView, ReferralError> {
        match req.decision.as_str() {
            "accept" | "reject" => {
                if req.stake.is_some() || req.odds.is_some() {
                    return Err(ReferralError::Invalid(
                        "stake and odds go with decision counter only".into(),
                    ));
                }
                let ending = if req.decision == "accept" {
                    Ending::DeskAccept
                } else {
                    Ending::DeskReject
                };
                self.end(bet_id, ending, Some(staff)).await?;
            }
            "counter" => self.counter(bet_id, req, staff).await?,
            other => {
                return Err(ReferralError::Invalid(format!(
                    "decision must be accept, reject or counter, not {other:?}"
                )))
            }
        }
        self.view(bet_id).await
    }

    async fn counter(
        &self,
        bet_id: BetId,
        req: DecisionRequest,
        staff: UserId,
    ) -> Result<(), ReferralError> {
        let mut client = self.db.get().await?;
        let current = rdb::find(&client, bet_id)
            .await?
            .ok_or(ReferralError::NotFound)?;
        let bet = rdb::bet_summary(&client, bet_id)
            .await?
            .ok_or(ReferralError::NotFound)?;
        let bet_type = bet["type"].as_str().unwrap_or_default();
        if current.status != "pending" {
            return Err(ReferralError::NotPending(current.status));
        }
        let stake = req.stake.map_or(current.stake, Money::as_decimal);
        // A counter stake is money of the bettor's currency: at most its scale's places.
        let currency_code = bet["currency_code"].as_str().unwrap_or_default();
        let scale = self.registry.currencies().scale_of(currency_code);
        if let Some(s) = req.stake {
            crate::domain::currency::check_scale(s, scale)
                .map_err(|e| ReferralError::Invalid(format!("stake: {e}")))?;
        }
        if stake <= Decimal::ZERO || stake > current.stake {
            return Err(ReferralError::Invalid(format!(
                "a counter stake must be above 0 and at most the stake asked ({})",
                current.stake
            )));
        }
        let odds = req.odds.map(|o| o.value());
        if let Some(o) = odds {
            if bet_type != "single" {
                return Err(ReferralError::Invalid(
                    "other odds may be offered for a single only".into(),
                ));
            }
            if o > self.odds_max {
                return Err(ReferralError::Invalid(format!(
                    "odds must be at most {}",
                    self.odds_max
                )));
            }
        } else if bet_type == "system" && stake != current.stake {
            return Err(ReferralError::Invalid(
                "a system bet is countered with other terms only by rejecting it".into(),
            ));
        }
        if req.stake.is_none() && req.odds.is_none() {
            return Err(ReferralError::Invalid(
                "a counter-offer names a lower stake, other odds or both".into(),
            ));
        }
        let expires_at = Utc::now()
            + chrono::Duration::milliseconds(
                i64::try_from(self.settings.counter_window_ms).unwrap_or(i64::MAX / 2),
            );
        if !rdb::counter(&mut client, bet_id, stake, odds, expires_at, staff).await? {
            let now = rdb::find(&client, bet_id).await?;
            return Err(ReferralError::NotPending(
                now.map_or_else(|| "gone".into(), |r| r.status),
            ));
        }
        self.arm(bet_id, expires_at);
        self.announce(bet_id, "countered", true).await;
        Ok(())
    }

    /// The bettor answers a counter-offer on their bet.
    pub async fn answer_offer(
        &self,
        user_id: UserId,
        bet_id: BetId,
        accept: bool,
    ) -> Result<(), ReferralError> {
        let client = self.db.get().await?;
        let found = rdb::find(&client, bet_id).await?;
        drop(client);
        match found {
            Some(r) if r.user_id == user_id => {
                if r.status != "countered" {
                    return Err(ReferralError::NotPending(r.status));
                }
            }
            _ => return Err(ReferralError::NotFound),
        }
        let ending = if accept {
            Ending::BettorAccept
        } else {
            Ending::BettorDecline
        };
        self.end(bet_id, ending, None).await.map(|_| ())
    }

    /// The timer of `bet_id` fired: ends it as expired if its window (the desk's, or the
    /// counter-offer's) has passed and it is still open.
    async fn expire(&self, bet_id: BetId) {
        let found = match self.db.get().await {
            Ok(c) => rdb::find(&c, bet_id).await,
            Err(e) => {
                tracing::warn!(%bet_id, error = %e, "referral expiry: no database; retrying");
                self.arm(bet_id, Utc::now() + chrono::Duration::seconds(1));
                return;
            }
        };
        let ending = match found {
            Ok(Some(r)) if r.status == "pending" => Ending::DeskExpired,
            Ok(Some(r)) if r.status == "countered" => Ending::CounterExpired,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(%bet_id, error = %e, "referral expiry: read failed; retrying");
                self.arm(bet_id, Utc::now() + chrono::Duration::seconds(1));
                return;
            }
        };
        match self.end(bet_id, ending, None).await {
            Ok(_) | Err(ReferralError::NotFound) => {}
            Err(ReferralError::WindowOpen) => {
                self.arm(bet_id, Utc::now() + chrono::Duration::milliseconds(100));
            }
            // Decided meanwhile, or a counter-offer restarted the clock (its own timer).
            Err(ReferralError::NotPending(_)) => {}
            Err(e) => {
                tracing::warn!(%bet_id, error = %e, "referral expiry failed; retrying");
                self.arm(bet_id, Utc::now() + chrono::Duration::seconds(1));
            }
        }
    }

    /// Writes an ending (through the bettor's wallet shard), then changes the book and
    /// tells the desk and the bettor.
    async fn end(
        &self,
        bet_id: BetId,
        ending: Ending,
        by: Option<UserId>,
    ) -> Result<Ended, ReferralError> {
        let client = self.db.get().await?;
        let user_id = rdb::find(&client, bet_id)
            .await?
            .ok_or(ReferralError::NotFound)?
            .user_id;
        drop(client);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.wallet
            .shard_of(user_id)
            .send(EndReferral {
                bet_id,
                user_id,
                ending,
                by,
                currencies: self.registry.currencies().clone(),
                reply,
            })
            .await
            .map_err(|_| ReferralError::Busy("the wallet"))?;
        let ended = answer
            .await
            .map_err(|_| ReferralError::Busy("the wallet"))??;
        self.give_back();
        self.apply_to_book(&ended).await;
        self.hub.publish(
            &crate::broadcast::user_topic(user_id),
            "balance",
            &json!({"balance": format!("{:.2}", ended.balance)}),
        );
        self.announce(bet_id, ended.referral_status, true).await;
        Ok(ended)
    }

    /// The markets' liability follows the ending: a rejected bet leaves the book; a
    /// counter-offer taken replaces the terms the referral counted with the new ones.
    async fn apply_to_book(&self, e: &Ended) {
        let changed = e.stake != e.old_stake || e.potential_win != e.old_potential_win;
        if e.bet_status == "accepted" && !changed {
            return;
        }
        let markets = join_all(
            e.selections
                .iter()
                .map(|s| self.registry.market_for_selection(*s)),
        )
        .await;
        // The markets count in the base currency.
        let c = self.registry.currencies().of(&e.currency_code);
        for (selection_id, market) in e.selections.iter().zip(markets) {
            let Ok(Some(addr)) = market else {
                // Not running here: its liability is rebuilt from the bets when it starts.
                continue;
            };
            let old = vec![(
                *selection_id,
                c.to_base(e.old_stake),
                c.to_base(e.old_potential_win),
            )];
            if addr.send(ReleaseExposure { legs: old }).await.is_err() {
                continue;
            }
            if e.bet_status == "accepted" {
                let new = vec![(
                    *selection_id,
                    c.to_base(e.stake),
                    c.to_base(e.potential_win),
                )];
                let _ = addr.send(AddExposure { legs: new }).await;
            }
        }
    }

    async fn view(&self, bet_id: BetId) -> Result<ReferralView, ReferralError> {
        let client = self.db.get().await?;
        let referral = rdb::find(&client, bet_id)
            .await?
            .ok_or(ReferralError::NotFound)?;
        self.with_bet(&client, referral).await
    }

    /// A referral as the desk sees it: with its bet and its figures in the base currency.
    async fn with_bet(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        referral: ReferralRow,
    ) -> Result<ReferralView, ReferralError> {
        let bet = rdb::bet_summary(client, referral.bet_id)
            .await?
            .unwrap_or(serde_json::Value::Null);
        let book = self.registry.currencies();
        let currency = book.of(bet["currency_code"].as_str().unwrap_or_default());
        let base = |d: Decimal| format!("{:.2}", book.base_money(currency.to_base(d)));
        let base = serde_json::json!({
            "currency_code": book.base(),
            "stake": base(referral.stake),
            "liability": base(referral.liability),
        });
        Ok(ReferralView {
            customer: referral.user_id,
            referral,
            bet,
            base,
        })
    }

    /// The `referral` message on the staff `trading` topic and (`bettor`) the `bet`
    /// message on the bettor's topic, read back after the change was committed.
    async fn announce(&self, bet_id: BetId, what: &str, bettor: bool) {
        let view = match self.view(bet_id).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%bet_id, error = %e, "referral: change not announced");
                return;
            }
        };
        let mut msg = serde_json::to_value(&view).unwrap_or_else(|_| json!({}));
        msg["change"] = json!(what);
        self.hub
            .publish(crate::broadcast::TRADING_TOPIC, "referral", &msg);
        if !bettor {
            return;
        }
        let mut bet = view.bet.clone();
        bet["referral"] = serde_json::to_value(&view.referral).unwrap_or_default();
        self.hub.publish(
            &crate::broadcast::user_topic(view.referral.user_id),
            "bet",
            &bet,
        );
    }

    /// Starts the timer that expires `bet_id` at `at` (at once if past).
    fn arm(&self, bet_id: BetId, at: DateTime<Utc>) {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let this = self.clone();
        tokio::spawn(async move {
            // A little after the deadline: the database's clock decides it has passed.
            tokio::time::sleep(wait + Duration::from_millis(20)).await;
            this.expire(bet_id).await;
        });
    }

    /// Start-up: every open referral gets its timer again (those whose window passed
    /// while the engine was down are ended at once). Answers how many were open.
    pub async fn recover(&self) -> Result<usize, ReferralError> {
        let client = self.db.get().await?;
        let rows = rdb::open(&client, i64::MAX).await?;
        for r in &rows {
            self.open.fetch_add(1, Ordering::AcqRel);
            let at = if r.status == "countered" {
                r.counter_expires_at.unwrap_or(r.expires_at)
            } else {
                r.expires_at
            };
            self.arm(r.bet_id, at);
        }
        Ok(rows.len())
    }
}
