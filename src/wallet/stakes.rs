//! The bet path's messages to a wallet shard: reserve a stake (account state, funds,
//! responsible-gaming caps), then settle the hold once the ledger writer has committed
//! the bet (or refused it), and forget cached controls when they change.
//!
//! The shard's cached balance changes only by the deltas of writes it knows of: its own
//! deposits and withdrawals, and the stake debits the ledger writer commits (applied here
//! by [`SettleStake`]). An account holding stakes is never evicted or reloaded, so a
//! debit already in Postgres but not yet settled here can never be counted twice.
use actix::{ActorFutureExt, AtomicResponse, Handler, Message, WrapFuture};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::shard::WalletShard;
use crate::db::stakes as sdb;
use crate::domain::account::UserStatus;
use crate::domain::betting_limits::{BettingLimits, PERIODS};
use crate::domain::ids::UserId;
use crate::domain::money::Money;

/// What the bet path may do for this bettor, as of the last load.
#[derive(Debug, Clone)]
pub struct Controls {
    pub status: UserStatus,
    pub self_excluded_until: Option<DateTime<Utc>>,
    pub limits: BettingLimits,
    /// Multiplies the markets' max stake for this user.
    pub stake_factor: Decimal,
    pub max_stake: Option<Decimal>,
    pub currency_code: String,
    /// `user_profiles.verification_status = verified` (a decision reaches the shard as a
    /// control change).
    pub verified: bool,
}

/// Stakes placed (committed or held) in the current day, week and month.
#[derive(Debug, Clone)]
pub struct Counters {
    pub period_starts: [DateTime<Utc>; 3],
    pub staked: [Money; 3],
}

/// Starts of the current UTC day, ISO week (Monday) and month.
pub fn period_starts(now: DateTime<Utc>) -> [DateTime<Utc>; 3] {
    let day = now.date_naive();
    let week = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let month = day.with_day(1).unwrap_or(day);
    let at =
        |d: chrono::NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    [at(day), at(week), at(month)]
}

/// Where a stake comes from (docs/accounts.md, "Bonuses and free bets").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funding {
    /// Cash first, then bonus money for the rest.
    Cash,
    /// Bonus money first (an active bonus whose minimum odds every leg meets), then cash.
    Bonus,
    /// The whole stake is this free bet (checked by the bet path before the hold; the shard
    /// keeps two bets in flight from holding one token).
    FreeBet(Uuid),
}

/// A stake held for a bet in flight.
#[derive(Debug, Clone)]
pub struct StakeHold {
    pub user_id: UserId,
    /// The whole stake; `cash + bonus` of it is money (a free bet's is neither).
    pub amount: Money,
    pub cash: Money,
    pub bonus: Money,
    pub free_bet: Option<Uuid>,
    pub stake_factor: Decimal,
    pub max_stake: Option<Decimal>,
    pub currency_code: String,
    /// The wallet partition's lease epoch the stake was held under (0 with one node).
    pub wallet_epoch: i64,
}

/// Why a stake cannot be held.
#[derive(Debug, Clone, PartialEq)]
pub enum StakeRefusal {
    Restricted(&'static str),
    /// `[kyc] required_before` lists bets and the profile is not verified.
    VerificationRequired,
    InsufficientFunds {
        available: Money,
    },
    LimitExceeded {
        period: &'static str,
        cap: Money,
        staked: Money,
    },
    /// `funding: bonus` without an active bonus, bonus money, or legs at its minimum odds.
    BonusNotEligible(&'static str),
    /// The free bet is already held by a bet in flight.
    FreeBetNotEligible(&'static str),
    UnknownUser,
    Unavailable(String),
}

/// Check the account and hold `amount` of its balance.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReserveStake {
    pub user_id: UserId,
    pub amount: Money,
    pub funding: Funding,
    /// The lowest odds among the bet's legs (a bonus-funded stake needs the bonus's minimum).
    pub min_leg_odds: Decimal,
    /// Only a verified profile may bet (`[kyc] required_before` lists `bet`).
    pub verification_required: bool,
    /// With several nodes: the epoch of this node's lease on the user's wallet partition
    /// (0 with one node). See the handler.
    pub wallet_epoch: i64,
    pub reply: oneshot::Sender<Result<StakeHold, StakeRefusal>>,
}

/// The held stake's bet was committed (`committed`: the debit is in Postgres) or refused.
/// Answers the account's balance and held stakes afterwards (for the private channel).
#[derive(Message)]
#[rtype(result = "Option<(Money, Money)>")]
pub struct SettleStake {
    pub user_id: UserId,
    pub hold: StakeHold,
    pub committed: bool,
}

/// The account's controls changed (status, self-exclusion, caps, stake factor): read them
/// again before the next bet. `None`: every account's (a lost notice channel).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct InvalidateControls {
    pub user_id: Option<UserId>,
}

/// The account's bonus state changed elsewhere (a grant, an expiry, a conversion, a
/// settlement's bonus share, possibly on another node): read it again before the next
/// bet. `None`: every account's (a lost notice channel).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct InvalidateBonus {
    pub user_id: Option<UserId>,
}

impl Handler<InvalidateBonus> for WalletShard {
    type Result = ();

    fn handle(&mut self, msg: InvalidateBonus, _: &mut Self::Context) {
        let forget = |a: &mut super::shard::Account| {
            a.bonus_loaded = false;
            // A conversion moved cash too: without stakes in flight the balance is read
            // again as well (with some, the cache holds their debits and stays).
            if !a.holds() {
                a.stale = true;
            }
        };
        match msg.user_id {
            Some(user_id) => {
                if let Some(a) = self.accounts.get_mut(&user_id) {
                    forget(a);
                }
            }
            None => self.accounts.values_mut().for_each(forget),
        }
    }
}

impl WalletShard {
    /// Without the notice channel a bonus change on another node would not reach this
    /// cache: the bonus state is read again for every bet (fail closed, like controls).
    fn bonus_unless_told(&mut self, user_id: UserId) {
        let live = self
            .controls_live
            .load(std::sync::atomic::Ordering::Acquire);
        if let Some(a) = self.accounts.get_mut(&user_id).filter(|_| !live) {
            a.bonus_loaded = false;
        }
    }

    /// Several nodes: the cached balance is trusted only while this node has stakes of
    /// the user in flight under the same partition lease (its own debits not yet
    /// settled here); otherwise the row is read again, so credits, deposits and
    /// withdrawals booked by other nodes are seen. Stakes in flight under an earlier
    /// lease will be fenced at commit: nothing more is held until they end.
    fn follow_lease(&mut self, msg: &ReserveStake) -> Result<(), StakeRefusal> {
        if msg.wallet_epoch == 0 {
            return Ok(());
        }
        if let Some(a) = self.accounts.get_mut(&msg.user_id) {
            if !a.holds() {
                a.epoch = msg.wallet_epoch;
                a.stale = true;
                // Bonus money and free bets may have moved on another node too.
                a.bonus_loaded = false;
            } else if a.epoch != msg.wallet_epoch {
                return Err(StakeRefusal::Unavailable(
                    "stakes held under an earlier wallet lease are still in flight".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Handler<ReserveStake> for WalletShard {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: ReserveStake, _: &mut Self::Context) -> Self::Result {
        let now = Utc::now();
        let starts = period_starts(now);
        self.bonus_unless_told(msg.user_id);
        if let Err(refusal) = self.follow_lease(&msg) {
            let _ = msg.reply.send(Err(refusal));
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        }
        let account = self.accounts.get(&msg.user_id);
        let reload_balance = account.is_some_and(|a| a.stale);
        let balance_cached = account.filter(|a| !a.stale).map(|a| a.balance);
        // Without the notice channel a cached control may be stale: read it every time.
        let need_controls = account.is_none_or(|a| a.controls.is_none())
            || !self
                .controls_live
                .load(std::sync::atomic::Ordering::Acquire);
        let need_counters = account
            .and_then(|a| a.counters.as_ref())
            .is_none_or(|c| c.period_starts != starts)
            || account.is_none_or(|a| !a.bonus_loaded);
        if !need_controls && !need_counters && !reload_balance {
            let out = self.hold(&msg, now);
            let _ = msg.reply.send(out);
            return AtomicResponse::new(Box::pin(actix::fut::ready(())));
        }
        let pool = self.pool.clone();
        let user_id = msg.user_id;
        AtomicResponse::new(Box::pin(
            async move {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                let row = sdb::bettor(&client, user_id)
                    .await
                    .map_err(|e| e.to_string())?;
                let staked = if need_counters {
                    sdb::staked_since(&client, user_id, starts)
                        .await
                        .map_err(|e| e.to_string())?
                } else {
                    [Decimal::ZERO; 3]
                };
                row.map(|row| Loaded::of(row, staked)).transpose()
            }
            .into_actor(self)
            .map(move |loaded, act, _| {
                let out = match loaded {
                    Err(e) => Err(StakeRefusal::Unavailable(e)),
                    Ok(None) => Err(StakeRefusal::UnknownUser),
                    Ok(Some(loaded)) => {
                        act.install(
                            user_id,
                            loaded,
                            balance_cached,
                            starts,
                            need_controls,
                            need_counters,
                        );
                        if let Some(a) = act.accounts.get_mut(&user_id) {
                            a.epoch = msg.wallet_epoch;
                            a.stale = false;
                        }
                        act.hold(&msg, now)
                    }
                };
                let _ = msg.reply.send(out);
            }),
        ))
    }
}

impl Handler<SettleStake> for WalletShard {
    type Result = actix::MessageResult<SettleStake>;

    fn handle(&mut self, msg: SettleStake, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(self.settle_hold(msg))
    }
}

impl WalletShard {
    fn settle_hold(&mut self, msg: SettleStake) -> Option<(Money, Money)> {
        let a = self.accounts.get_mut(&msg.user_id)?;
        let h = &msg.hold;
        a.reserved -= h.cash;
        a.bonus_reserved -= h.bonus;
        if let Some(token) = h.free_bet {
            a.free_bets_held.retain(|t| *t != token);
        }
        if msg.committed {
            a.balance -= h.cash;
            a.bonus_balance -= h.bonus;
        } else if let Some(c) = a.counters.as_mut() {
            for s in c.staked.iter_mut() {
                *s -= h.amount;
            }
        }
        Some((a.balance, a.reserved))
    }
}

/// Stakes held now for a user's bets in flight (shown as pending in the wallet).
#[derive(Message)]
#[rtype(result = "Money")]
pub struct HeldStake {
    pub user_id: UserId,
}

impl Handler<HeldStake> for WalletShard {
    type Result = actix::MessageResult<HeldStake>;

    fn handle(&mut self, msg: HeldStake, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(
            self.accounts
                .get(&msg.user_id)
                .map_or(Money::ZERO, |a| a.reserved),
        )
    }
}

impl Handler<InvalidateControls> for WalletShard {
    type Result = ();

    fn handle(&mut self, msg: InvalidateControls, _: &mut Self::Context) {
        match msg.user_id {
            Some(user_id) => {
                if let Some(a) = self.accounts.get_mut(&user_id) {
                    a.controls = None;
                }
            }
            None => {
                for a in self.accounts.values_mut() {
                    a.controls = None;
                }
            }
        }
    }
}

/// A bettor as read for the bet path, its money taken into [`Money`] (two places, whatever
/// scale the database answered: a sum of no stakes is a bare `0`).
struct Loaded {
    row: sdb::BettorRow,
    balance: Money,
    bonus_balance: Money,
    staked: [Money; 3],
}

impl Loaded {
    fn of(row: sdb::BettorRow, staked: [Decimal; 3]) -> Result<Loaded, String> {
        let money = |d: Decimal| Money::from_decimal(d).map_err(|e| format!("{e}: {d}"));
        Ok(Loaded {
            balance: money(row.balance)?,
            bonus_balance: money(row.bonus_balance)?,
            staked: [money(staked[0])?, money(staked[1])?, money(staked[2])?],
            row,
        })
    }
}

impl WalletShard {
    fn install(
        &mut self,
        user_id: UserId,
        loaded: Loaded,
        balance_cached: Option<Money>,
        starts: [DateTime<Utc>; 3],
        controls: bool,
        counters: bool,
    ) {
        let Loaded {
            row,
            balance,
            bonus_balance,
            staked,
        } = loaded;
        self.make_room(user_id);
        let a = self.accounts.entry(user_id).or_default();
        // A cached balance is authoritative (it holds debits not yet visible to this read).
        if balance_cached.is_none() {
            a.balance_version += 1;
        }
        a.balance = balance_cached.unwrap_or(balance);
        if !a.bonus_loaded {
            a.bonus_balance = bonus_balance;
            a.bonus = row.bonus;
            a.bonus_loaded = true;
        }
        if controls {
            a.controls = Some(Controls {
                status: row.status,
                self_excluded_until: row.self_excluded_until,
                limits: BettingLimits::from_stored(&row.betting_limits),
                stake_factor: row.stake_factor,
                max_stake: row.max_stake,
                currency_code: row.currency_code,
                verified: row.verified,
            });
        }
        if counters {
            // Stakes held now are not in the database yet: keep counting them.
            let held = a.reserved;
            a.counters = Some(Counters {
                period_starts: starts,
                staked: staked.map(|s| s + held),
            });
        }
    }

    /// The checks and the hold, on a loaded account.
    fn hold(&mut self, msg: &ReserveStake, now: DateTime<Utc>) -> Result<StakeHold, StakeRefusal> {
        let (user_id, amount) = (msg.user_id, msg.amount);
        let a = self
            .accounts
            .get_mut(&user_id)
            .ok_or(StakeRefusal::UnknownUser)?;
        check_controls(a, msg, now)?;
        let (cash, bonus) = funding_split(a, msg, now)?;
        let (Some(controls), Some(counters)) = (a.controls.as_mut(), a.counters.as_mut()) else {
            return Err(StakeRefusal::UnknownUser);
        };
        controls.limits.promote_due(now);
        for (i, period) in PERIODS.iter().enumerate() {
            if let Some(&cap) = controls.limits.caps.get(period) {
                if counters.staked[i] + amount > cap {
                    return Err(StakeRefusal::LimitExceeded {
                        period,
                        cap,
                        staked: counters.staked[i],
                    });
                }
            }
        }
        a.reserved += cash;
        a.bonus_reserved += bonus;
        let free_bet = match msg.funding {
            Funding::FreeBet(token) => {
                a.free_bets_held.push(token);
                Some(token)
            }
            _ => None,
        };
        for s in counters.staked.iter_mut() {
            *s += amount;
        }
        Ok(StakeHold {
            user_id,
            amount,
            cash,
            bonus,
            free_bet,
            stake_factor: controls.stake_factor,
            max_stake: controls.max_stake,
            currency_code: controls.currency_code.clone(),
            wallet_epoch: a.epoch,
        })
    }
}

/// The account may bet at all: loaded, not restricted or self-excluded, verified when the
/// bet requires it.
fn check_controls(
    a: &super::shard::Account,
    msg: &ReserveStake,
    now: DateTime<Utc>,
) -> Result<(), StakeRefusal> {
    let (Some(controls), Some(_)) = (a.controls.as_ref(), a.counters.as_ref()) else {
        return Err(StakeRefusal::UnknownUser);
    };
    if let Some(why) = controls.status.restriction() {
        return Err(StakeRefusal::Restricted(why));
    }
    if controls.self_excluded_until.is_some_and(|t| t > now) {
        return Err(StakeRefusal::Restricted("account self-excluded"));
    }
    if msg.verification_required && !controls.verified {
        return Err(StakeRefusal::VerificationRequired);
    }
    Ok(())
}

/// The stake's (cash, bonus) parts by its funding, within what is free of each; a free
/// bet moves neither.
fn funding_split(
    a: &super::shard::Account,
    msg: &ReserveStake,
    now: DateTime<Utc>,
) -> Result<(Money, Money), StakeRefusal> {
    let amount = msg.amount;
    let cash_free = a.balance - a.reserved;
    let bonus_free = (a.bonus_balance - a.bonus_reserved).max(Money::ZERO);
    let short = || StakeRefusal::InsufficientFunds {
        available: cash_free.max(Money::ZERO) + bonus_free,
    };
    match msg.funding {
        Funding::FreeBet(token) => {
            if a.free_bets_held.contains(&token) {
                return Err(StakeRefusal::FreeBetNotEligible(
                    "the free bet is being spent",
                ));
            }
            Ok((Money::ZERO, Money::ZERO))
        }
        Funding::Cash => {
            let cash = amount.min(cash_free.max(Money::ZERO));
            if amount - cash > bonus_free {
                return Err(short());
            }
            Ok((cash, amount - cash))
        }
        Funding::Bonus => {
            let Some(active) = a.bonus.as_ref() else {
                return Err(StakeRefusal::BonusNotEligible("no active bonus"));
            };
            if active.expires_at <= now {
                return Err(StakeRefusal::BonusNotEligible("the bonus has expired"));
            }
            if msg.min_leg_odds < active.min_odds {
                return Err(StakeRefusal::BonusNotEligible(
                    "a leg is below the bonus's minimum odds",
                ));
            }
            if bonus_free.is_zero() {
                return Err(StakeRefusal::BonusNotEligible("no bonus money"));
            }
            let bonus = amount.min(bonus_free);
            if amount - bonus > cash_free {
                return Err(short());
            }
            Ok((amount - bonus, bonus))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_starts_are_day_monday_and_first_of_month() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 15, 4, 5).unwrap(); // a Thursday
        let [d, w, m] = period_starts(t);
        assert_eq!(d, Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap());
        assert_eq!(w, Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap());
        assert_eq!(m, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
    }
}
