//! Placing a bet (the use case behind `POST /api/v1/bets` and the WebSocket `place_bet`):
//! the path of `docs/architecture.md`, from a validated request to a durable, acknowledged
//! bet — or a precise refusal ([`PlaceError`]) that leaves nothing behind.
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use chrono::Utc;
use futures::future::join_all;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use crate::actors::errors::LegRejection;
use crate::actors::market::{
    CheckAndReserve, ConfirmReservation, GetMarket, LegRequest as MarketLeg, MarketActor,
    ReleaseReservation, Reservation,
};
use crate::actors::Registry;
use crate::app::remote_legs::{self, LegAnswer, LegAsk, LegSettle};
use crate::bets::answer::BetAnswer;
use crate::bets::error::PlaceError;
use crate::bets::inflight::{self, Claim, Inflight};
use crate::bets::request::PlaceBetRequest;
use crate::bets::settings::BetSettings;
use crate::broadcast::Hub;
use crate::cluster::Route;
use crate::domain::currency::Rounding;
use crate::domain::ids::{BetId, EventId, SelectionId, UserId};
use crate::domain::{self, BetLimits, LegKey, Money, Odds};
use crate::ledger::LedgerWriter;
use crate::ledger::{BetRecord, LeaseFence, LedgerError, LegRecord, ReferralRecord};
use crate::wallet::stakes::{Funding, ReserveStake, SettleStake, StakeHold, StakeRefusal};
use crate::wallet::Wallet;

/// The handles the bet path needs, and nothing else.
#[derive(Clone)]
pub struct BetService {
    pub registry: Arc<Registry>,
    pub wallet: Wallet,
    pub ledger: LedgerWriter,
    pub hub: Arc<Hub>,
    /// With `bets.book_thread`: the thread the bet runs on once its key is claimed, with the
    /// actors and shards it passes through (`crate::book`).
    pub book: Option<crate::book::Book>,
    /// Bet requests in flight by idempotency key (concurrent retries wait for the first).
    pub inflight: Arc<Inflight>,
    /// Reads the first answer of a key used before.
    pub db: deadpool_postgres::Pool,
    pub bets: BetSettings,
    /// The highest decimal price a leg may ask for (`markets.odds_max`).
    pub odds_max: Decimal,
    /// Bets by channel and outcome, and their latency.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `[kyc] required_before` lists `bet`: only verified profiles may bet (checked by the
    /// wallet shard on its cached controls, no extra round trip).
    pub verification_required: bool,
    /// Where a bet that breaks a limit its market refers goes after its commit.
    pub referrals: crate::app::referrals::ReferralService,
}

/// The door a bet came through (a label of the bet metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Rest,
    WebSocket,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Rest => "rest",
            Channel::WebSocket => "websocket",
        }
    }
}

impl BetService {
    /// Places `req` for `user_id`; the same key answers the first outcome. Counted by
    /// channel and outcome, timed by channel.
    pub async fn place(
        &self,
        channel: Channel,
        user_id: UserId,
        req: PlaceBetRequest,
    ) -> Result<BetAnswer, PlaceError> {
        let started = std::time::Instant::now();
        let asked = Asked::of(&req);
        let answer = place(self, user_id, req).await;
        let (outcome, result) = match &answer {
            Ok(bet) if bet.status == "referred" => ("referred", "referred"),
            Ok(_) => ("accepted", "accepted"),
            Err(e) => (e.code(), "refused"),
        };
        self.publish_ticker(channel, user_id, &asked, &answer);
        let m = &self.metrics;
        m.bets_total
            .with_label_values(&[channel.as_str(), outcome])
            .inc();
        m.bet_seconds
            .with_label_values(&[channel.as_str(), result])
            .observe(started.elapsed().as_secs_f64());
        answer
    }
}

/// What a request asked for, kept for the trading ticker (the request itself is consumed).
struct Asked {
    bet_type: &'static str,
    unit_stake: Decimal,
    legs: Vec<(SelectionId, Decimal)>,
}

impl Asked {
    fn of(req: &PlaceBetRequest) -> Asked {
        Asked {
            bet_type: req.bet_type.as_str(),
            unit_stake: req.stake.as_decimal(),
            legs: req
                .legs
                .iter()
                .map(|l| (l.selection_id, l.odds.value()))
                .collect(),
        }
    }
}

impl BetService {
    /// A bet's stake and risk in the book's base currency, for the desk:
    /// `{currency_code, stake, risk}`.
    fn in_base(&self, bet: &BetAnswer) -> serde_json::Value {
        let book = self.registry.currencies();
        let c = book.of(&bet.currency_code);
        let base = |d: Decimal| format!("{:.2}", book.base_money(c.to_base(d)));
        json!({
            "currency_code": book.base(),
            "stake": base(bet.stake),
            "risk": base((bet.potential_win - bet.stake).max(Decimal::ZERO)),
        })
    }

    /// The staff-only `trading` topic's `bet` message (docs/websocket.md, "The trading
    /// topic"): every accepted or refused bet with the risk it added to the book (its
    /// potential win less its stake; nothing for a refusal), and each leg's market and event
    /// where they run here. One message per bet, serialized once, like every topic message.
    fn publish_ticker(
        &self,
        channel: Channel,
        user_id: UserId,
        asked: &Asked,
        answer: &Result<BetAnswer, PlaceError>,
    ) {
        // Built only when someone listens (the desk's console, or another node).
        self.hub
            .publish_with(crate::broadcast::TRADING_TOPIC, "bet", || {
                self.ticker_data(channel, user_id, asked, answer)
            });
    }

    /// The ticker's `bet` message.
    fn ticker_data(
        &self,
        channel: Channel,
        user_id: UserId,
        asked: &Asked,
        answer: &Result<BetAnswer, PlaceError>,
    ) -> serde_json::Value {
        let odds_taken: Vec<Decimal> = match answer {
            Ok(bet) => bet.legs.iter().map(|l| l.odds).collect(),
            Err(_) => Vec::new(),
        };
        let legs: Vec<_> = asked
            .legs
            .iter()
            .enumerate()
            .map(|(i, (selection_id, asked_odds))| {
                let market_id = self.registry.market_of_selection(*selection_id);
                let event_id = market_id.and_then(|m| self.registry.event_of_market(m));
                json!({
                    "selection_id": selection_id,
                    "market_id": market_id,
                    "event_id": event_id,
                    "odds": odds_taken.get(i).unwrap_or(asked_odds).to_string(),
                })
            })
            .collect();
        match answer {
            Ok(bet) => json!({
                "outcome": bet.status,
                "bet_id": bet.id,
                "user_id": user_id,
                "type": bet.bet_type,
                "stake": format!("{:.2}", bet.stake),
                "total_odds": bet.total_odds.to_string(),
                "potential_win": format!("{:.2}", bet.potential_win),
                "risk": format!("{:.2}", (bet.potential_win - bet.stake).max(Decimal::ZERO)),
                "currency_code": bet.currency_code,
                "base": self.in_base(bet),
                "channel": channel.as_str(),
                "legs": legs,
                "at": bet.placed_at,
            }),
            Err(e) => json!({
                "outcome": "refused",
                "code": e.code(),
                "message": e.to_string(),
                "user_id": user_id,
                "type": asked.bet_type,
                "unit_stake": format!("{:.2}", asked.unit_stake),
                "risk": "0.00",
                "channel": channel.as_str(),
                "legs": legs,
                "at": Utc::now(),
            }),
        }
    }
}

async fn place(
    state: &BetService,
    user_id: UserId,
    req: PlaceBetRequest,
) -> Result<BetAnswer, PlaceError> {
    let cfg = &state.bets;
    req.validate(cfg.legs_max, state.odds_max)?;
    let fingerprint = req.fingerprint();
    let guard = match state.inflight.claim(user_id, &req.idempotency_key) {
        Err(inflight::Full) => return Err(PlaceError::Busy("the bet path")),
        Ok(Claim::Follower(slot)) => {
            return match inflight::follow(slot).await {
                Some(settled) if settled.0 == fingerprint => settled.1.clone(),
                Some(_) => Err(key_reused()),
                None => Err(PlaceError::unavailable(
                    "a request with this key was interrupted; retry",
                )),
            };
        }
        Ok(Claim::Owner(guard)) => guard,
    };
    let service = state.clone();
    let owned = move || async move {
        let answer = place_owned(&service, user_id, &req, &fingerprint).await;
        guard.finish(fingerprint, &answer);
        answer
    };
    let Some(book) = &state.book else {
        return owned().await;
    };
    // One crossing into the book thread; every step after it is a local wake-up there. The
    // bet runs to its end there whether or not this request still waits (its holds are
    // confirmed or released, and followers of the key get its answer).
    match book.run(owned).await {
        Ok(answer) => answer,
        Err(crate::book::BookStopped) => Err(PlaceError::unavailable(
            "the engine is stopping; retry with the same idempotency key",
        )),
    }
}

fn key_reused() -> PlaceError {
    PlaceError::KeyReused
}

/// Optimistic about the key: a fresh key (the common case) costs no lookup. A key used
/// before is found either by the unique index at commit (`duplicate_key`) or, when this
/// attempt is refused (the first bet may have changed the balance, the market or the
/// price since), by looking up the first answer before refusing.
async fn place_owned(
    state: &BetService,
    user_id: UserId,
    req: &PlaceBetRequest,
    fingerprint: &str,
) -> Result<BetAnswer, PlaceError> {
    match attempt(state, user_id, req, fingerprint).await {
        Ok(answer) => Ok(answer),
        Err(PlaceError::DuplicateKey) => {
            previous_answer(state, user_id, &req.idempotency_key, fingerprint)
                .await?
                .ok_or_else(|| {
                    PlaceError::unavailable("bet outcome unknown; retry with the same key")
                })
        }
        Err(err) if err.is_transient() => Err(err),
        Err(err) => {
            match previous_answer(state, user_id, &req.idempotency_key, fingerprint).await {
                Ok(Some(answer)) => Ok(answer),
                Ok(None) => Err(err),
                Err(PlaceError::KeyReused) => Err(PlaceError::KeyReused),
                Err(_) => Err(err),
            }
        }
    }
}

async fn attempt(
    state: &BetService,
    user_id: UserId,
    req: &PlaceBetRequest,
    fingerprint: &str,
) -> Result<BetAnswer, PlaceError> {
    let lines = domain::check_shape(
        req.bet_type,
        req.legs.len(),
        req.system_size,
        state.bets.legs_max,
    )
    .map_err(bet_error)?;
    let total_stake = req
        .stake
        .checked_mul_count(lines)
        .ok_or_else(|| PlaceError::Invalid("stake too large".into()))?;
    // The partition is not given up by rebalancing while the bet is in flight.
    let (wallet_epoch, _in_flight) = wallet_epoch(state, user_id).await?;
    let markets = resolve_legs(state, req).await?;
    let min_leg_odds = req
        .legs
        .iter()
        .map(|l| l.odds.value())
        .min()
        .unwrap_or(Decimal::ONE);
    let (funding, floor) = funding(state, user_id, req, total_stake.as_decimal()).await?;
    let hold = reserve_stake(
        state,
        user_id,
        total_stake,
        funding,
        min_leg_odds,
        wallet_epoch,
    )
    .await?;
    if let Err(e) = stake_in_currency(state, req, &hold) {
        release(state, &Vec::new(), &hold, false).await;
        return Err(e);
    }
    take_legs_and_commit(state, user_id, req, fingerprint, &markets, &hold, floor).await
}

/// How the stake is funded, and the odds every leg must be taken at (a free bet's
/// minimum). A free bet is checked here (its token is the bettor's, available, unexpired,
/// of this stake, at these odds); the wallet shard keeps two bets in flight from holding it
/// and the ledger writer spends it in the bet's own transaction.
async fn funding(
    state: &BetService,
    user_id: UserId,
    req: &PlaceBetRequest,
    total_stake: Decimal,
) -> Result<(Funding, Option<Decimal>), PlaceError> {
    use crate::bets::request::FundingChoice;
    let Some(token) = req.free_bet_id else {
        return Ok(match req.funding {
            Some(FundingChoice::Bonus) => (Funding::Bonus, None),
            _ => (Funding::Cash, None),
        });
    };
    let client = state.db.get().await?;
    let refuse = |why: &str| Err(PlaceError::FreeBetNotEligible(why.to_string()));
    let Some(free) = crate::db::bonus::free_bet(&client, token).await? else {
        return refuse("no such free bet");
    };
    if free.user_id != user_id {
        return refuse("no such free bet");
    }
    match free.status.as_str() {
        "available" if free.expires_at > Utc::now() => {}
        "spent" => return refuse("the free bet is spent"),
        _ => return refuse("the free bet has expired"),
    }
    if free.stake != total_stake {
        return refuse("the stake must be the free bet's stake");
    }
    if req.legs.iter().any(|l| l.odds.value() < free.min_odds) {
        return refuse("a leg is below the free bet's minimum odds");
    }
    Ok((Funding::FreeBet(token), Some(free.min_odds)))
}

/// The bet already accepted with this key, if any (409 if its payload differs).
async fn previous_answer(
    state: &BetService,
    user_id: UserId,
    key: &str,
    fingerprint: &str,
) -> Result<Option<BetAnswer>, PlaceError> {
    let client = state.db.get().await?;
    match crate::db::bets::find_by_key(&client, user_id, key).await? {
        None => Ok(None),
        Some(found) if found.fingerprint.as_deref() == Some(fingerprint) => Ok(Some(found.answer)),
        Some(_) => Err(key_reused()),
    }
}

/// The market actor of every leg, with the checks that need no reservation: unknown
/// selections, two legs on one market (`duplicate_leg`), two on one event
/// (`correlated_legs`, unless the pair of market types is allowed).
async fn resolve_legs(state: &BetService, req: &PlaceBetRequest) -> Result<Vec<LegAt>, PlaceError> {
    if state.registry.cluster().enabled() {
        return resolve_legs_anywhere(state, req).await;
    }
    let mut addrs = Vec::with_capacity(req.legs.len());
    for leg in &req.legs {
        let addr = state
            .registry
            .market_for_selection(leg.selection_id)
            .await?
            .ok_or(PlaceError::Leg(LegRejection::UnknownSelection))?;
        addrs.push(addr);
    }
    if req.legs.len() > 1 {
        let timeout = state.registry.ask_timeout();
        let mut keys = Vec::with_capacity(req.legs.len());
        for (leg, addr) in req.legs.iter().zip(&addrs) {
            let view = state
                .registry
                .ask_within(addr, timeout, |reply| GetMarket { reply })
                .await?;
            keys.push(LegKey {
                selection_id: leg.selection_id,
                market_id: view.id,
                event_id: view.event_id,
                market_type: view.market_type,
            });
        }
        let cfg = &state.bets;
        domain::check_legs(&keys, |a, b| {
            cfg.correlation_allowed(a.market_type.as_str(), b.market_type.as_str())
        })
        .map_err(bet_error)?;
    }
    Ok(addrs.into_iter().map(LegAt::Here).collect())
}

/// Where a leg's market runs: here, or at the node owning its event.
#[derive(Clone)]
enum LegAt {
    Here(Addr<MarketActor>),
    There { addr: String },
}

/// The epoch under which this node writes the bettor's balance (0 with one node). A bet
/// reaches the node holding the bettor's wallet partition (`routes::forward`); if the
/// partition moved since, the bet is refused here rather than written by a second writer.
async fn wallet_epoch(
    state: &BetService,
    user_id: UserId,
) -> Result<(i64, crate::cluster::WalletFlight), PlaceError> {
    let cluster = state.registry.cluster();
    if let Some(entered) = cluster.enter_wallet(user_id) {
        return Ok(entered);
    }
    let moved = || PlaceError::unavailable("the bettor's wallet is served by another node; retry");
    match cluster.route_user(user_id).await {
        Ok(Route::Local) => cluster.enter_wallet(user_id).ok_or_else(moved),
        Ok(Route::Remote { .. }) => Err(moved()),
        Err(e) => {
            tracing::warn!(error = %e, "wallet partition lease unknown");
            Err(PlaceError::unavailable(
                "bets cannot be taken right now; retry shortly",
            ))
        }
    }
}

/// With several nodes: each leg's market, here or at its event's owner (taking a free
/// lease on the way), and the checks between legs from the catalogue in Postgres.
async fn resolve_legs_anywhere(
    state: &BetService,
    req: &PlaceBetRequest,
) -> Result<Vec<LegAt>, PlaceError> {
    let selections: Vec<SelectionId> = req.legs.iter().map(|l| l.selection_id).collect();
    let keys = {
        let client = state.db.get().await?;
        crate::db::bets::leg_keys(&client, &selections).await?
    };
    let mut out = Vec::with_capacity(req.legs.len());
    let mut found = Vec::with_capacity(req.legs.len());
    for leg in &req.legs {
        let key = keys
            .iter()
            .find(|k| k.selection_id == leg.selection_id)
            .ok_or(PlaceError::Leg(LegRejection::UnknownSelection))?;
        found.push(*key);
        let at = match state.registry.cluster().route(key.event_id).await {
            Ok(Route::Local) => LegAt::Here(
                state
                    .registry
                    .market_for_selection(leg.selection_id)
                    .await?
                    .ok_or(PlaceError::Leg(LegRejection::UnknownSelection))?,
            ),
            Ok(Route::Remote { addr, .. }) => LegAt::There { addr },
            Err(e) => {
                tracing::warn!(error = %e, "event owner unknown");
                return Err(PlaceError::unavailable(
                    "the event's owner is unknown; retry shortly",
                ));
            }
        };
        out.push(at);
    }
    if found.len() > 1 {
        let cfg = &state.bets;
        domain::check_legs(&found, |a, b| {
            cfg.correlation_allowed(a.market_type.as_str(), b.market_type.as_str())
        })
        .map_err(bet_error)?;
    }
    Ok(out)
}

async fn reserve_stake(
    state: &BetService,
    user_id: UserId,
    amount: Money,
    funding: Funding,
    min_leg_odds: Decimal,
    wallet_epoch: i64,
) -> Result<StakeHold, PlaceError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    state
        .wallet
        .shard_of(user_id)
        .try_send(ReserveStake {
            user_id,
            amount,
            funding,
            min_leg_odds,
            verification_required: state.verification_required,
            wallet_epoch,
            reply,
        })
        .map_err(|_| PlaceError::Busy("the wallet"))?;
    let out = tokio::time::timeout(state.registry.ask_timeout(), answer)
        .await
        .map_err(|_| PlaceError::Busy("the wallet"))?
        .map_err(|_| PlaceError::unavailable("wallet stopped"))?;
    out.map_err(|refusal| match refusal {
        StakeRefusal::Restricted(why) => PlaceError::Restricted(why),
        StakeRefusal::VerificationRequired => PlaceError::VerificationRequired,
        StakeRefusal::InsufficientFunds { available } => {
            PlaceError::InsufficientFunds { available }
        }
        StakeRefusal::LimitExceeded {
            period,
            cap,
            staked,
        } => PlaceError::LimitExceeded {
            period,
            cap,
            staked,
        },
        StakeRefusal::BonusNotEligible(why) => PlaceError::BonusNotEligible(why.to_string()),
        StakeRefusal::FreeBetNotEligible(why) => PlaceError::FreeBetNotEligible(why.to_string()),
        StakeRefusal::UnknownUser => PlaceError::Restricted("no wallet for this account"),
        StakeRefusal::Unavailable(e) => {
            tracing::warn!(error = %e, "wallet load failed");
            PlaceError::unavailable("wallet unavailable; retry shortly")
        }
    })
}

/// The stake is money of the bettor's currency: no more places than its scale (a stake of
/// 10.50 in yen is refused, never rounded).
fn stake_in_currency(
    state: &BetService,
    req: &PlaceBetRequest,
    hold: &StakeHold,
) -> Result<(), PlaceError> {
    let scale = state.registry.currencies().scale_of(&hold.currency_code);
    crate::domain::currency::check_scale(req.stake, scale)
        .map(|_| ())
        .map_err(|e| {
            PlaceError::Invalid(format!(
                "stake: {e} (the account's currency is {})",
                hold.currency_code
            ))
        })
}

/// Reserves every leg (holding in-play legs for their delay), prices the bet at the odds
/// taken, commits it, then confirms or releases everything it holds.
async fn take_legs_and_commit(
    state: &BetService,
    user_id: UserId,
    req: &PlaceBetRequest,
    fingerprint: &str,
    markets: &[LegAt],
    hold: &StakeHold,
    floor: Option<Decimal>,
) -> Result<BetAnswer, PlaceError> {
    let reservations = reserve_legs(state, req, markets, hold).await;
    let (taken, refusal) = split(reservations);
    if let Some(err) = refusal {
        release(state, &taken, hold, false).await;
        return Err(err);
    }
    let referred = match admit_taken(state, &taken, hold, floor) {
        Ok(referred) => referred,
        Err(err) => {
            release(state, &taken, hold, false).await;
            return Err(err);
        }
    };
    let give_back = |state: &BetService| {
        if referred.is_some() {
            state.referrals.give_back();
        }
    };
    let record = match build_record(state, user_id, req, fingerprint, &taken, hold, &referred) {
        Ok(r) => r,
        Err(e) => {
            give_back(state);
            release(state, &taken, hold, false).await;
            return Err(e);
        }
    };
    let referral_ends = record.referral.as_ref().map(|r| r.expires_at);
    let answer = BetAnswer::from_record(&record);
    let mut outcome = match state.ledger.submit_bet(record) {
        Ok(o) => o,
        Err(e) => {
            give_back(state);
            release(state, &taken, hold, false).await;
            return Err(ledger_error(e));
        }
    };
    match state.ledger.wait(&mut outcome).await {
        Ok(()) => {
            // A referred bet's stake is debited (held) and its legs count in the book like
            // an accepted bet's until the referral ends.
            release(state, &taken, hold, true).await;
            if let Some(expires_at) = referral_ends {
                state.referrals.opened(answer.id, expires_at);
            }
            publish_private(state, user_id, &answer);
            Ok(answer)
        }
        Err(LedgerError::Timeout) => {
            // The batch is still in flight: settle the holds when it ends, answer now.
            let (state, taken, hold) = (state.clone(), taken, hold.clone());
            let bet_id = answer.id;
            tokio::spawn(async move {
                let committed = outcome.finish().await.is_ok();
                release(&state, &taken, &hold, committed).await;
                match referral_ends {
                    Some(at) if committed => state.referrals.opened(bet_id, at),
                    Some(_) => state.referrals.give_back(),
                    None => {}
                }
            });
            Err(PlaceError::unavailable(
                "bet outcome not known yet; retry with the same idempotency key",
            ))
        }
        Err(e) => {
            give_back(state);
            release(state, &taken, hold, false).await;
            Err(ledger_error(e))
        }
    }
}

/// Whether the legs as taken may be committed: a free bet's minimum odds hold for the
/// odds taken, not only those asked; a leg that broke a limit its market refers sends the
/// bet to the desk if it is cash-funded and the desk has room (answers the referral).
fn admit_taken(
    state: &BetService,
    taken: &Taken,
    hold: &StakeHold,
    floor: Option<Decimal>,
) -> Result<Option<(LegRejection, u32)>, PlaceError> {
    if floor.is_some_and(|f| taken.iter().any(|(_, r, _)| r.odds.value() < f)) {
        return Err(PlaceError::FreeBetNotEligible(
            "a leg was taken below the free bet's minimum odds".into(),
        ));
    }
    let referred = referral_of(taken);
    if let Some((rejection, _)) = &referred {
        // A referral's refunds and counter-offers move cash only: a stake staked with bonus
        // money or a free bet is refused as its market would, never referred.
        let bonus_funded = !hold.bonus.is_zero() || hold.free_bet.is_some();
        if bonus_funded || !state.referrals.admit() {
            return Err(PlaceError::Leg(rejection.clone()));
        }
    }
    Ok(referred)
}

/// A taken leg: where, its reservation, and the event lease it was taken under (several
/// nodes: `(event, node, epoch)`, checked at commit).
type Taken = Vec<(LegAt, Reservation, Option<(EventId, String, i64)>)>;

type Reserved = Result<(Reservation, Option<(EventId, String, i64)>), PlaceError>;

/// The first referred leg's refusal, and the shortest referral window of the referred
/// legs (the desk decides within every market's window).
fn referral_of(taken: &Taken) -> Option<(LegRejection, u32)> {
    let mut out: Option<(LegRejection, u32)> = None;
    for (_, r, _) in taken {
        if let Some(why) = &r.referred {
            out = Some(match out {
                None => (why.clone(), r.referral_window_ms),
                Some((first, w)) => (first, w.min(r.referral_window_ms)),
            });
        }
    }
    out
}

async fn reserve_legs(
    state: &BetService,
    req: &PlaceBetRequest,
    markets: &[LegAt],
    hold: &StakeHold,
) -> Vec<(LegAt, Reserved)> {
    let wait = state.registry.ask_timeout() + Duration::from_millis(state.bets.leg_wait_extra_ms);
    // A multi-leg bet's exposure on each of its markets is its whole potential win, priced
    // the way the bet itself is (recovery rebuilds liability from `bets.potential_win`).
    let requested: Vec<Odds> = req.legs.iter().map(|l| l.odds).collect();
    let exposure = bet_limits(state, &hold.currency_code)
        .ok()
        .and_then(|limits| {
            domain::price_bet(
                req.bet_type,
                &requested,
                req.stake,
                req.system_size,
                &limits,
            )
            .ok()
        })
        .map_or(hold.amount.as_decimal(), |p| p.potential_win.as_decimal());
    let asks = req.legs.iter().zip(markets).map(|(leg, addr)| {
        let market_leg = MarketLeg {
            selection_id: leg.selection_id,
            odds: leg.odds,
            policy: req.policy(),
            stake: hold.amount.as_decimal(),
            payout: (req.legs.len() > 1).then_some(exposure),
            currency_code: hold.currency_code.clone(),
            stake_factor: hold.stake_factor,
            user_max_stake: hold.max_stake,
            referable: true,
        };
        let at = addr.clone();
        let registry = state.registry.clone();
        let origin = remote_legs::LegOrigin {
            user_id: hold.user_id,
            idempotency_key: req.idempotency_key.clone(),
            wallet_part: registry.cluster().partition_of(hold.user_id),
            wallet_epoch: hold.wallet_epoch,
        };
        async move {
            let out = match &at {
                LegAt::Here(addr) => reserve_here(&registry, addr, market_leg, wait).await,
                LegAt::There { addr } => {
                    let ask = LegAsk::of(&market_leg, wait, origin);
                    reserve_there(&registry, addr, ask, wait).await
                }
            };
            (at, out)
        }
    });
    join_all(asks).await
}

async fn reserve_here(
    registry: &Registry,
    addr: &Addr<MarketActor>,
    leg: MarketLeg,
    wait: Duration,
) -> Reserved {
    let out = registry
        .ask_within(addr, wait, |reply| CheckAndReserve { leg, reply })
        .await;
    let r = match out {
        Ok(Ok(r)) => r,
        Ok(Err(rejection)) => return Err(PlaceError::Leg(rejection)),
        Err(e) => return Err(PlaceError::from(e)),
    };
    let cluster = registry.cluster();
    if !cluster.enabled() {
        return Ok((r, None));
    }
    // The lease this reservation was taken under (the commit checks it is still so).
    let held = registry
        .event_of_market(r.market_id)
        .and_then(|e| cluster.epoch_of(e).map(|epoch| (e, epoch)));
    match held {
        Some((e, epoch)) => Ok((r, Some((e, cluster.node_id().to_string(), epoch)))),
        None => {
            addr.do_send(ReleaseReservation {
                reservation_id: r.id,
            });
            Err(PlaceError::unavailable(
                "this node no longer owns the leg's event; retry",
            ))
        }
    }
}

/// Reserves a leg at the node owning its event (`app::remote_legs`).
async fn reserve_there(registry: &Registry, addr: &str, ask: LegAsk, wait: Duration) -> Reserved {
    let cluster = registry.cluster();
    let deadline = wait + Duration::from_millis(cluster.settings.forward_timeout_ms);
    let answer: Result<LegAnswer, String> =
        crate::cluster::legs::call(cluster, addr, remote_legs::RESERVE_PATH, &ask, deadline).await;
    match answer {
        Ok(LegAnswer::Reserved {
            reservation,
            event_id,
            node_id,
            epoch,
        }) => Ok((reservation, Some((event_id, node_id, epoch)))),
        Ok(other) => Err(other.into_error()),
        Err(_) => Err(PlaceError::unavailable(
            "the leg's event owner did not answer; retry shortly",
        )),
    }
}

/// The taken legs, and the first refusal if any leg was refused.
fn split(results: Vec<(LegAt, Reserved)>) -> (Taken, Option<PlaceError>) {
    let mut taken = Vec::with_capacity(results.len());
    let mut refusal = None;
    for (addr, r) in results {
        match r {
            Ok((res, lease)) => taken.push((addr, res, lease)),
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    (taken, refusal)
}

fn build_record(
    state: &BetService,
    user_id: UserId,
    req: &PlaceBetRequest,
    fingerprint: &str,
    taken: &Taken,
    hold: &StakeHold,
    referred: &Option<(LegRejection, u32)>,
) -> Result<BetRecord, PlaceError> {
    let odds: Vec<Odds> = taken.iter().map(|(_, r, _)| r.odds).collect();
    let limits = bet_limits(state, &hold.currency_code)?;
    let priced = domain::price_bet(req.bet_type, &odds, req.stake, req.system_size, &limits)
        .map_err(bet_error)?;
    debug_assert_eq!(priced.total_stake, hold.amount);
    Ok(BetRecord {
        // Time-ordered: the bets' indexes grow at their right edge (fewer pages touched).
        bet_id: BetId(Uuid::now_v7()),
        user_id,
        bet_type: req.bet_type,
        stake: priced.total_stake,
        total_odds: priced.total_odds,
        potential_win: priced.potential_win,
        currency_code: hold.currency_code.clone(),
        placed_at: Utc::now(),
        idempotency_key: Some(req.idempotency_key.clone()),
        bonus_stake: hold.bonus,
        free_bet_id: hold.free_bet,
        metadata: json!({
            "funding": match (hold.free_bet, hold.bonus.is_zero()) {
                (Some(_), _) => "free_bet",
                (None, false) => "bonus",
                (None, true) => "cash",
            },
            "free_bet_id": hold.free_bet,
            "bonus_stake": format!("{:.2}", hold.bonus),
            "fingerprint": fingerprint,
            "unit_stake": req.stake.to_string(),
            "lines": priced.lines,
            "system_size": req.system_size,
            "odds_change": req.policy().as_str(),
            "in_play": taken.iter().any(|(_, r, _)| r.in_play),
        }),
        legs: taken
            .iter()
            .map(|(_, r, _)| LegRecord {
                selection_id: r.selection_id,
                odds: r.odds.value(),
            })
            .collect(),
        referral: referred.as_ref().map(|(why, window_ms)| ReferralRecord {
            reason: why.code(),
            liability: (priced.potential_win.as_decimal() - priced.total_stake.as_decimal())
                .max(Decimal::ZERO),
            expires_at: Utc::now() + chrono::Duration::milliseconds(i64::from(*window_ms)),
        }),
        fence: LeaseFence {
            events: taken.iter().filter_map(|(_, _, l)| l.clone()).collect(),
            wallet: state.registry.cluster().enabled().then(|| {
                (
                    state.registry.cluster().partition_of(user_id),
                    hold.wallet_epoch,
                )
            }),
        },
    })
}

/// The bet's limits; its potential win is rounded at the bettor's currency's scale, and
/// `bets.potential_win_max` (in the base currency) is converted, down, to that currency.
fn bet_limits(state: &BetService, currency_code: &str) -> Result<BetLimits, PlaceError> {
    let cfg = &state.bets;
    let currency = state.registry.currencies().of(currency_code);
    let max = currency.from_base(cfg.potential_win_max, Rounding::Down);
    Ok(BetLimits {
        legs_max: cfg.legs_max,
        system_lines_max: cfg.system_lines_max,
        total_odds_max: cfg.total_odds_max,
        potential_win_max: Money::from_decimal(max)
            .map_err(|e| PlaceError::Invalid(format!("bets.potential_win_max: {e}")))?,
        scale: currency.scale,
    })
}

/// Confirms (`committed`) or releases every leg reservation and the stake hold, all at
/// once (one round of messages, not one after another). Sent with `send().await`: these must
/// not be lost to a full mailbox, and the bettor's answer waits for them so that a balance or
/// liability read right after it already shows the bet.
async fn release(state: &BetService, taken: &Taken, hold: &StakeHold, committed: bool) {
    let legs = join_all(taken.iter().map(|(at, r, _)| async move {
        let addr = match at {
            LegAt::Here(addr) => addr,
            LegAt::There { addr } => {
                if state.registry.cluster().leg_settlements_dropped() {
                    // Test hook: as if this node died before settling the leg.
                    return;
                }
                let settle = LegSettle {
                    market_id: r.market_id,
                    reservation_id: r.id,
                    committed,
                };
                let cluster = state.registry.cluster();
                let wait = Duration::from_millis(cluster.settings.forward_timeout_ms);
                let done: Result<serde_json::Value, String> =
                    crate::cluster::legs::call(cluster, addr, remote_legs::SETTLE_PATH, &settle, wait)
                        .await;
                if done.is_err() {
                    // The owner keeps counting the leg (its liability errs high) until it
                    // loses the event; its next owner recovers the committed bets.
                    tracing::warn!(market = %r.market_id, committed, "a remote reservation was not settled");
                }
                return;
            }
        };
        let sent = if committed {
            addr.send(ConfirmReservation {
                reservation_id: r.id,
            })
            .await
        } else {
            addr.send(ReleaseReservation {
                reservation_id: r.id,
            })
            .await
        };
        if sent.is_err() {
            tracing::debug!(market = %r.market_id, "market stopped before its reservation was settled");
        }
    }));
    let settle = SettleStake {
        user_id: hold.user_id,
        hold: hold.clone(),
        committed,
    };
    let wallet = state.wallet.shard_of(hold.user_id).send(settle);
    let (_, settled) = futures::join!(legs, wallet);
    match settled {
        // The bettor's balance moved: the private channel hears it (a refused bet changed
        // nothing the bettor saw: its hold never showed).
        Ok(Some((balance, held))) if committed => {
            state.hub.publish_with(
                &crate::broadcast::user_topic(hold.user_id),
                "balance",
                || json!({"balance": format!("{balance:.2}"), "pending_balance": format!("{held:.2}")}),
            );
        }
        Ok(_) => {}
        Err(_) => {
            tracing::error!(user = %hold.user_id, "wallet shard stopped before a stake was settled")
        }
    }
}

fn publish_private(state: &BetService, user_id: UserId, answer: &BetAnswer) {
    let topic = crate::broadcast::user_topic(user_id);
    state.hub.publish(&topic, "bet", answer);
}

fn bet_error(e: domain::BetError) -> PlaceError {
    PlaceError::Rule(e)
}

fn ledger_error(e: LedgerError) -> PlaceError {
    match e {
        LedgerError::Busy => PlaceError::Busy("the ledger"),
        LedgerError::DuplicateKey => PlaceError::DuplicateKey,
        LedgerError::Refused(why) => {
            tracing::warn!(%why, "the database refused a bet the engine accepted");
            PlaceError::Refused
        }
        LedgerError::Unavailable(_) | LedgerError::Timeout => {
            PlaceError::unavailable("bets cannot be taken right now; retry shortly")
        }
    }
}
