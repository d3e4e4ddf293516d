//! Cash-out (issue 18): the offer for an open bet (`GET /bets/{id}/cash-out`), taking it in
//! full or in part (`POST`), and the automatic cash-out armed at a threshold (`PUT`/`DELETE
//! /bets/{id}/auto-cash-out`, fired by [`watch`] on price changes).
//!
//! Taking a cash-out: the bet's open legs are priced by their market actors in one turn
//! each (in play: held for the bet delay and checked again at expiry); a value below the
//! one quoted answers `cash_out_changed` with the new offer, one at or above it pays the
//! quoted value. The payment is one Postgres transaction through the bettor's wallet shard
//! (the bet's parts and status, a `bet_cash_outs` row, a `bet_credit`, the balance); only
//! then is the liability released in the markets, the bettor told (`bet`, `balance`) and
//! the 201 sent.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::actors::market::{CashOutPrice, LegPrice, ReleaseExposure};
use crate::actors::{LegRejection, Registry};
use crate::broadcast::Hub;
use crate::db::cashout::{self as cdb, CashOutBet, CashOutWrite, CashOutWriteError, CashedOutBet};
use crate::domain::cashout::{self as value, CashOutLeg};
use crate::domain::ids::{BetId, UserId};
use crate::domain::{LegOutcome, LegResult, Money, Odds};
use crate::wallet::cashout::PayCashOut;
use crate::wallet::Wallet;

pub mod watch;

/// `[cash_out]` in config.
#[derive(Debug, Clone, Deserialize)]
pub struct CashOutSettings {
    /// The house's margin on the bet's value, in basis points (500 = 5 %).
    pub margin_bps: u32,
    /// Per-sport margins (sport slug → bps) overriding `margin_bps`; a parlay over several
    /// sports takes the highest of its legs'.
    #[serde(default)]
    pub margin_bps_by_sport: HashMap<String, u32>,
    /// How long a quote may be taken after it was given.
    pub quote_ttl_ms: u64,
    /// Quotes kept at once (expired ones are dropped first; beyond it, 503 busy).
    pub quotes_max: usize,
    /// Whether a bet staked with a free bet may be cashed out.
    pub free_bet_stakes_allowed: bool,
    /// Cash-outs being taken at once on this node (beyond it, 503 busy).
    pub inflight_max: usize,
    /// Price changes queued for the watcher (automatic cash-out, pushed offers).
    pub watch_queue_max: usize,
    /// The watcher gathers price changes this long before looking at the bets they touch.
    pub watch_batch_ms: u64,
    /// Bets the watcher looks at per gathering (the rest wait for the next change).
    pub watch_bets_max: i64,
    /// At most one pushed `cash_out` offer per bet in this interval.
    pub offer_push_interval_ms: u64,
    /// Longest wait for a leg held for its in-play bet delay (above the longest delay).
    pub hold_wait_max_ms: u64,
}

/// What `GET /bets/{id}/cash-out` answers.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Offer {
    #[schema(value_type = uuid::Uuid)]
    pub bet_id: BetId,
    /// The value of the whole remaining stake now (a partial cash-out of `fraction` pays
    /// this times the fraction, rounded down to the cent).
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub quote_id: Uuid,
    pub expires_at: DateTime<Utc>,
    #[schema(value_type = String)]
    pub remaining_stake: Decimal,
}

/// `POST /bets/{id}/cash-out`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeRequest {
    /// A quote from `GET /bets/{id}/cash-out` (or `amount`).
    pub quote_id: Option<Uuid>,
    /// The offer amount the bettor accepts (the whole remaining stake's value, as quoted).
    #[schema(value_type = Option<String>)]
    pub amount: Option<Money>,
    /// Share of the remaining stake to cash out, a decimal string, 0 < f ≤ 1 with at most
    /// 4 places (default `"1"`).
    pub fraction: Option<String>,
    pub idempotency_key: String,
}

/// Why no cash-out.
#[derive(Debug, thiserror::Error)]
pub enum CashOutError {
    #[error("bet not found")]
    NotFound,
    /// 409 `cash_out_unavailable`; `reason` is a stable word for clients.
    #[error("cash-out unavailable: {message}")]
    Unavailable {
        reason: &'static str,
        message: String,
    },
    /// 409 `cash_out_changed`: the value moved against the bettor (or the quote expired).
    #[error("the cash-out value changed ({reason})")]
    Changed { reason: &'static str, offer: Offer },
    #[error("another cash-out of this bet is being taken")]
    InProgress,
    #[error("idempotency key already used with another request")]
    KeyReused,
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is busy")]
    Busy(&'static str),
    #[error("database: {0}")]
    Db(String),
}

crate::db_error_from!(CashOutError);

impl CashOutError {
    /// A short label of the refusal (metrics).
    pub fn code(&self) -> &'static str {
        match self {
            CashOutError::NotFound => "not_found",
            CashOutError::Unavailable { .. } => "cash_out_unavailable",
            CashOutError::Changed { .. } => "cash_out_changed",
            CashOutError::InProgress => "cash_out_in_progress",
            CashOutError::KeyReused => "idempotency_key_reused",
            CashOutError::Invalid(_) => "validation_failed",
            CashOutError::Busy(_) => "busy",
            CashOutError::Db(_) => "unavailable",
        }
    }
}

fn unavailable(reason: &'static str, message: impl Into<String>) -> CashOutError {
    CashOutError::Unavailable {
        reason,
        message: message.into(),
    }
}

/// A quote given and not yet expired.
#[derive(Debug, Clone)]
struct Quote {
    bet_id: BetId,
    user_id: UserId,
    amount: Money,
    cashed_out_stake: Decimal,
    expires_at: DateTime<Utc>,
}

/// The handles cash-out needs, and nothing else.
#[derive(Clone)]
pub struct CashOutService {
    pub registry: Arc<Registry>,
    pub wallet: Wallet,
    pub hub: Arc<Hub>,
    pub db: deadpool_postgres::Pool,
    pub settings: Arc<CashOutSettings>,
    /// Cash-outs by trigger and outcome; those held for a bet delay.
    pub metrics: Arc<crate::metrics::Metrics>,
    quotes: Arc<Mutex<HashMap<Uuid, Quote>>>,
    /// Bets with a cash-out being taken (one at a time per bet).
    inflight: Arc<Mutex<HashSet<BetId>>>,
}

/// Who asked: the bettor, or the watcher for an armed threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Manual,
    Auto,
}

impl Trigger {
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Auto => "auto",
        }
    }
}

impl CashOutService {
    pub fn new(
        registry: Arc<Registry>,
        wallet: Wallet,
        hub: Arc<Hub>,
        db: deadpool_postgres::Pool,
        settings: CashOutSettings,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        CashOutService {
            registry,
            wallet,
            hub,
            db,
            settings: Arc::new(settings),
            metrics,
            quotes: Arc::default(),
            inflight: Arc::default(),
        }
    }

    /// The offer for this user's bet, with a quote that may be taken until it expires.
    pub async fn offer(&self, user_id: UserId, bet_id: BetId) -> Result<Offer, CashOutError> {
        let bet = self.load(user_id, bet_id).await?;
        let amount = self.value_now(&bet, false).await?;
        self.quote(&bet, amount)
    }

    /// Takes a cash-out of `req.fraction` of the bet (see the module's doc).
    pub async fn take(
        &self,
        user_id: UserId,
        bet_id: BetId,
        req: TakeRequest,
    ) -> Result<CashedOutBet, CashOutError> {
        let fraction = validate(&req)?;
        let fingerprint = format!(
            "{bet_id}:{}:{}:{fraction}",
            req.quote_id.map(|q| q.to_string()).unwrap_or_default(),
            req.amount.map(|a| a.to_string()).unwrap_or_default()
        );
        if let Some(done) = self
            .previous(user_id, &req.idempotency_key, &fingerprint)
            .await?
        {
            return Ok(done);
        }
        let _claim = self.claim(bet_id)?;
        let bet = self.load(user_id, bet_id).await?;
        let expected = self.expected(&bet, &req).await?;
        let outcome = self
            .pay(
                &bet,
                expected,
                fraction,
                Trigger::Manual,
                Some((req.idempotency_key.clone(), fingerprint.clone())),
            )
            .await;
        match outcome {
            Err(CashOutError::KeyReused) => self
                .previous(user_id, &req.idempotency_key, &fingerprint)
                .await?
                .ok_or(CashOutError::KeyReused),
            other => other,
        }
    }

    /// The watcher's full cash-out of an armed bet whose offer reached its threshold: paid
    /// at the offer at the end of the delay, if that is still at or above the threshold.
    pub async fn take_auto(&self, bet: &CashOutBet, threshold: Money) -> Result<(), CashOutError> {
        let _claim = self.claim(bet.id)?;
        self.pay(bet, threshold, Decimal::ONE, Trigger::Auto, None)
            .await
            .map(|_| ())
    }

    /// Arms (`Some`) or disarms the automatic cash-out of an open bet.
    pub async fn set_auto(
        &self,
        user_id: UserId,
        bet_id: BetId,
        threshold: Option<Money>,
    ) -> Result<(), CashOutError> {
        if threshold.is_some_and(|t| !t.is_positive()) {
            return Err(CashOutError::Invalid("threshold must be above 0".into()));
        }
        let bet = self.load(user_id, bet_id).await?;
        if threshold.is_some() {
            self.eligible(&bet)?;
        }
        let client = self.db.get().await?;
        let t = threshold.map(Money::as_decimal);
        if !cdb::set_auto_threshold(&client, user_id, bet_id, t).await? {
            return Err(unavailable("bet_not_open", "the bet is no longer open"));
        }
        Ok(())
    }

    async fn load(&self, user_id: UserId, bet_id: BetId) -> Result<CashOutBet, CashOutError> {
        let client = self.db.get().await?;
        cdb::load_bet(&client, user_id, bet_id)
            .await?
            .ok_or(CashOutError::NotFound)
    }

    /// The first answer of a key used before (409 if it was another request).
    async fn previous(
        &self,
        user_id: UserId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<CashedOutBet>, CashOutError> {
        let client = self.db.get().await?;
        let Some(found) = cdb::find_by_key(&client, user_id, key).await? else {
            return Ok(None);
        };
        if found.fingerprint.as_deref() != Some(fingerprint) {
            return Err(CashOutError::KeyReused);
        }
        let bet = cdb::load_bet(&client, user_id, found.bet_id)
            .await?
            .ok_or(CashOutError::NotFound)?;
        tracing::debug!(bet = %found.bet_id, seq = found.seq, "cash-out answered again");
        Ok(Some(CashedOutBet::of(&bet, found.amount)))
    }

    fn claim(&self, bet_id: BetId) -> Result<Claim, CashOutError> {
        let mut set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= self.settings.inflight_max {
            return Err(CashOutError::Busy("cash-out"));
        }
        if !set.insert(bet_id) {
            return Err(CashOutError::InProgress);
        }
        Ok(Claim {
            set: self.inflight.clone(),
            bet_id,
        })
    }

    /// The value the bettor accepted: their quote's (still valid, for the bet as it is), or
    /// the amount they name.
    async fn expected(&self, bet: &CashOutBet, req: &TakeRequest) -> Result<Money, CashOutError> {
        let Some(quote_id) = req.quote_id else {
            return Ok(req.amount.unwrap_or(Money::ZERO));
        };
        let quote = {
            let quotes = self.quotes.lock().unwrap_or_else(|e| e.into_inner());
            quotes.get(&quote_id).cloned()
        };
        match quote {
            Some(q)
                if q.bet_id == bet.id
                    && q.user_id == bet.user_id
                    && q.cashed_out_stake == bet.cashed_out_stake
                    && q.expires_at > Utc::now() =>
            {
                Ok(q.amount)
            }
            _ => {
                let now = self.value_now(bet, false).await?;
                Err(CashOutError::Changed {
                    reason: "quote_expired",
                    offer: self.quote(bet, now)?,
                })
            }
        }
    }

    /// Prices the bet now (`hold`: a cash-out being taken waits the in-play delays), checks
    /// it against `expected`, pays and tells.
    async fn pay(
        &self,
        bet: &CashOutBet,
        expected: Money,
        fraction: Decimal,
        trigger: Trigger,
        key: Option<(String, String)>,
    ) -> Result<CashedOutBet, CashOutError> {
        let out = self.pay_now(bet, expected, fraction, trigger, key).await;
        let outcome = match &out {
            Ok(_) => "paid",
            Err(e) => e.code(),
        };
        self.metrics
            .cash_outs_total
            .with_label_values(&[trigger.as_str(), outcome])
            .inc();
        out
    }

    async fn pay_now(
        &self,
        bet: &CashOutBet,
        expected: Money,
        fraction: Decimal,
        trigger: Trigger,
        key: Option<(String, String)>,
    ) -> Result<CashedOutBet, CashOutError> {
        let held = self.metrics.cash_outs_held.clone();
        held.inc();
        let now = self.value_now(bet, true).await;
        held.dec();
        let now = now?;
        if now < expected || (trigger == Trigger::Manual && expected.is_zero()) {
            return Err(CashOutError::Changed {
                reason: "value_moved",
                offer: self.quote(bet, now)?,
            });
        }
        // The bettor is paid what they accepted (more is not offered back); the watcher
        // pays the value at expiry, which is at or above the threshold it was given.
        let paid = match trigger {
            Trigger::Manual => expected,
            Trigger::Auto => now,
        };
        let (stake, win) = remaining(bet)?;
        let scale = self.registry.currencies().scale_of(&bet.currency_code);
        let split = value::split(stake, win, paid, fraction, scale)
            .map_err(|e| CashOutError::Invalid(e.to_string()))?;
        let (key, fingerprint) = key.unzip();
        let write = CashOutWrite {
            bet_id: bet.id,
            user_id: bet.user_id,
            expected_cashed_out_stake: bet.cashed_out_stake,
            stake: split.stake.as_decimal(),
            potential_win: split.potential_win.as_decimal(),
            amount: split.amount.as_decimal(),
            fraction,
            full: split.full,
            trigger: trigger.as_str(),
            idempotency_key: key,
            fingerprint,
            currency_code: bet.currency_code.clone(),
        };
        let balance = self.write(write).await?;
        self.release(
            bet,
            split.stake.as_decimal(),
            split.potential_win.as_decimal(),
        )
        .await;
        let client = self.db.get().await?;
        let after = cdb::load_bet(&client, bet.user_id, bet.id)
            .await?
            .ok_or(CashOutError::NotFound)?;
        let answer = CashedOutBet::of(&after, split.amount.as_decimal());
        let topic = crate::broadcast::user_topic(bet.user_id);
        self.hub.publish(&topic, "bet", &answer);
        self.hub.publish(
            &topic,
            "balance",
            &json!({"balance": format!("{balance:.2}")}),
        );
        Ok(answer)
    }

    async fn write(&self, write: CashOutWrite) -> Result<Money, CashOutError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.wallet
            .shard_of(write.user_id)
            .try_send(PayCashOut { write, reply })
            .map_err(|_| CashOutError::Busy("the wallet"))?;
        let out = rx
            .await
            .map_err(|_| CashOutError::Db("wallet shard stopped".into()))?;
        match out {
            Ok((_, balance)) => Ok(balance),
            Err(CashOutWriteError::Moved) => Err(unavailable(
                "bet_not_open",
                "the bet was settled or cashed out meanwhile",
            )),
            Err(CashOutWriteError::DuplicateKey) => Err(CashOutError::KeyReused),
            Err(CashOutWriteError::Db(e)) => Err(e.into()),
            Err(CashOutWriteError::Pool(e)) => Err(CashOutError::Db(e)),
        }
    }

    /// The cashed-out part leaves every open leg's market liability (sent with
    /// `send().await`: it must not be lost to a full mailbox).
    async fn release(&self, bet: &CashOutBet, stake: Decimal, win: Decimal) {
        // The markets count in the base currency.
        let currency = self.registry.currencies().of(&bet.currency_code);
        let (stake, win) = (currency.to_base(stake), currency.to_base(win));
        for leg in bet.legs.iter().filter(|l| l.result.is_none()) {
            match self.registry.market_for_selection(leg.selection_id).await {
                Ok(Some(addr)) => {
                    let msg = ReleaseExposure {
                        legs: vec![(leg.selection_id, stake, win)],
                    };
                    if addr.send(msg).await.is_err() {
                        tracing::debug!(bet = %bet.id, "market stopped before a cash-out release");
                    }
                }
                _ => tracing::debug!(bet = %bet.id, "no live market for a cashed-out leg"),
            }
        }
    }

    /// Stores a quote for `amount` and answers the offer.
    pub(crate) fn quote(&self, bet: &CashOutBet, amount: Money) -> Result<Offer, CashOutError> {
        let now = Utc::now();
        let ttl = chrono::Duration::milliseconds(self.settings.quote_ttl_ms as i64);
        let q = Quote {
            bet_id: bet.id,
            user_id: bet.user_id,
            amount,
            cashed_out_stake: bet.cashed_out_stake,
            expires_at: now + ttl,
        };
        let quote_id = Uuid::new_v4();
        let mut quotes = self.quotes.lock().unwrap_or_else(|e| e.into_inner());
        if quotes.len() >= self.settings.quotes_max {
            quotes.retain(|_, q| q.expires_at > now);
            if quotes.len() >= self.settings.quotes_max {
                return Err(CashOutError::Busy("cash-out quotes"));
            }
        }
        quotes.insert(quote_id, q.clone());
        Ok(Offer {
            bet_id: bet.id,
            amount: amount.as_decimal(),
            quote_id,
            expires_at: q.expires_at,
            remaining_stake: bet.remaining_stake(),
        })
    }

    /// The bet's offer at live prices (`hold`: in play, after the bet delay).
    pub(crate) async fn value_now(
        &self,
        bet: &CashOutBet,
        hold: bool,
    ) -> Result<Money, CashOutError> {
        self.eligible(bet)?;
        let prices = self.prices(bet, hold).await?;
        let mut legs = Vec::with_capacity(bet.legs.len());
        let mut margin = 0;
        for leg in &bet.legs {
            let taken = odds(leg.odds)?;
            match &leg.result {
                None => {
                    let p = prices
                        .iter()
                        .find(|p| p.selection_id == leg.selection_id)
                        .ok_or_else(|| {
                            unavailable("market_closed", "a leg's market is not live")
                        })?;
                    margin = margin.max(self.margin_of(&p.sport));
                    legs.push(CashOutLeg::Open {
                        taken,
                        current: p.odds,
                    });
                }
                Some(result) => {
                    let result: LegResult = result
                        .parse()
                        .map_err(|_| CashOutError::Db(format!("bet {}: leg result", bet.id)))?;
                    let outcome = LegOutcome::new(result, leg.dead_heat_factor, leg.void_factor)
                        .map_err(|e| CashOutError::Db(e.to_string()))?;
                    legs.push(CashOutLeg::Settled { taken, outcome });
                }
            }
        }
        let (stake, win) = remaining(bet)?;
        let scale = self.registry.currencies().scale_of(&bet.currency_code);
        let amount = value::offer(stake, win, &legs, margin, scale)
            .map_err(|e| unavailable("not_offered", e.to_string()))?;
        // A value that rounds down to nothing is no offer (a cash-out of 0.00 would only
        // close the bet for nothing).
        if amount.as_decimal().is_zero() {
            return Err(unavailable(
                "no_value",
                "the bet's remaining value rounds down to nothing",
            ));
        }
        Ok(amount)
    }

    fn margin_of(&self, sport: &str) -> u32 {
        let s = &self.settings;
        s.margin_bps_by_sport
            .get(sport)
            .copied()
            .unwrap_or(s.margin_bps)
    }

    /// A bet that may be cashed out at all (whatever the markets say).
    fn eligible(&self, bet: &CashOutBet) -> Result<(), CashOutError> {
        if bet.status != "accepted" {
            return Err(unavailable(
                "bet_not_open",
                format!("the bet is {}", bet.status),
            ));
        }
        if bet.bet_type == "system" {
            return Err(unavailable(
                "system_bet",
                "system bets are not offered cash-out",
            ));
        }
        // The bet path records its funding (`app::bets::build_record`): `free_bet` (with
        // `free_bet_id`), `bonus` (part of the stake was bonus money) or `cash`.
        let free_bet = bet
            .metadata
            .get("free_bet_id")
            .is_some_and(|v| !v.is_null())
            || matches!(bet.metadata["funding"].as_str(), Some("free_bet" | "bonus"));
        if free_bet && !self.settings.free_bet_stakes_allowed {
            return Err(unavailable(
                "free_bet",
                "bets staked with a free bet or bonus money are not offered cash-out",
            ));
        }
        Ok(())
    }

    /// Every open leg's price from its market actor (all asked at once).
    async fn prices(&self, bet: &CashOutBet, hold: bool) -> Result<Vec<LegPrice>, CashOutError> {
        let timeout = self.registry.ask_timeout();
        let wait = if hold {
            timeout + Duration::from_millis(self.settings.hold_wait_max_ms)
        } else {
            timeout
        };
        let asks = bet
            .legs
            .iter()
            .filter(|l| l.result.is_none())
            .map(|leg| async move {
                let addr = self
                    .registry
                    .market_for_selection(leg.selection_id)
                    .await
                    .map_err(|_| CashOutError::Busy("live markets"))?
                    .ok_or_else(|| unavailable("market_closed", "a leg's market is not live"))?;
                let selection_id = leg.selection_id;
                match self
                    .registry
                    .ask_within(&addr, wait, |reply| CashOutPrice {
                        selection_id,
                        hold,
                        reply,
                    })
                    .await
                {
                    Ok(Ok(p)) => Ok(p),
                    Ok(Err(r)) => Err(leg_refusal(r)),
                    Err(crate::actors::AskError::Busy) => Err(CashOutError::Busy("the market")),
                    Err(crate::actors::AskError::Gone) => {
                        Err(unavailable("market_closed", "a leg's market is not live"))
                    }
                }
            });
        join_all(asks).await.into_iter().collect()
    }
}

fn leg_refusal(r: LegRejection) -> CashOutError {
    match r {
        LegRejection::MarketSuspended => {
            unavailable("market_suspended", "a leg's market is suspended")
        }
        LegRejection::Busy => CashOutError::Busy("the market"),
        _ => unavailable("market_closed", "a leg's market is not open"),
    }
}

fn odds(v: Decimal) -> Result<Odds, CashOutError> {
    Odds::from_decimal(v, crate::domain::odds::ODDS_COLUMN_MAX)
        .map_err(|e| CashOutError::Db(format!("stored odds: {e}")))
}

fn remaining(bet: &CashOutBet) -> Result<(Money, Money), CashOutError> {
    let m = |d: Decimal| Money::from_decimal(d).map_err(|e| CashOutError::Db(e.to_string()));
    Ok((m(bet.remaining_stake())?, m(bet.remaining_win())?))
}

/// The fraction asked for (default 1), with the request's other rules.
fn validate(req: &TakeRequest) -> Result<Decimal, CashOutError> {
    let key = req.idempotency_key.as_str();
    if key.is_empty() || key.len() > 100 || key.chars().any(char::is_control) {
        return Err(CashOutError::Invalid(
            "idempotency_key must be 1 to 100 printable characters".into(),
        ));
    }
    if req.quote_id.is_none() == req.amount.is_none() {
        return Err(CashOutError::Invalid(
            "give exactly one of quote_id and amount".into(),
        ));
    }
    let fraction = match req.fraction.as_deref() {
        None => Decimal::ONE,
        Some(text) => crate::domain::money::parse_fixed_point(text, 4)
            .map_err(|e| CashOutError::Invalid(format!("fraction: {e}")))?,
    };
    if fraction <= Decimal::ZERO || fraction > Decimal::ONE {
        return Err(CashOutError::Invalid(
            "fraction must be above 0 and at most 1, with at most 4 places".into(),
        ));
    }
    Ok(fraction)
}

/// A bet's cash-out slot, freed when dropped.
struct Claim {
    set: Arc<Mutex<HashSet<BetId>>>,
    bet_id: BetId,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.bet_id);
    }
}
