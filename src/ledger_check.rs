//! `winzo check-ledger`: the wallet's invariants, checked against Postgres.
//!
//! 1. For every user, `user_balances.balance` equals the sum of the `net_amount` (the
//!    signed `amount` less `fees`) of that user's `completed` transactions
//!    (docs/accounts.md, "Sign convention", "Fees").
//! 2. No balance (main, bonus, pending) is negative.
//! 3. Every bet has exactly one completed `bet_debit` and at most one completed
//!    `bet_credit` net of reversals (`adjustment` with reference `reverse:..`): one live
//!    settlement credit per settlement.
//! 4. Every bet's `actual_win` equals its settlement credits, reversals and refunds net
//!    of the debts recorded for it (docs/settlement.md); cash-out credits aside.
//! 5. No transaction carries a negative fee.
//! 6. Every cash-out was paid once: each `bet_cash_outs` row has its one `cashout:` credit
//!    of the same amount, and the bet's cashed-out parts are the sum of its rows.
//! 7. Every referral's money adds up: the held stake (the bet's debit) is the referral's
//!    stake; less its `referral:` refund it is the bet's stake (referred or accepted) or
//!    nothing (rejected); and a referral still open is a bet still `referred`.
//! 8. Bonus money (docs/accounts.md, "Bonuses and free bets"): `bonus_balance` equals the
//!    sum of the user's `bonus` transactions (1. counts every other type for `balance`); no
//!    free bet is held by two live bets; each bonus's wagering progress is the sum of the
//!    stakes counted for it, and while it is active those are exactly its settled
//!    qualifying bets.
//!
//! Every violation is listed; the command exits non-zero when there is any.
use std::fmt;

use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::db::bonus as bdb;
use crate::db::wallet as wdb;
use crate::domain::ids::{BetId, UserId};

/// One broken invariant.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    BalanceMismatch {
        user_id: UserId,
        balance: Option<Decimal>,
        ledger_sum: Decimal,
    },
    NegativeBalance {
        user_id: UserId,
        balance: Decimal,
        bonus_balance: Decimal,
    },
    BetLedger {
        bet_id: BetId,
        debits: i64,
        credits: i64,
    },
    PayoutMismatch {
        bet_id: BetId,
        actual_win: Decimal,
        credits_net: Decimal,
        debts: Decimal,
    },
    NegativeFee {
        transaction_id: Uuid,
        fees: Decimal,
    },
    CashOut {
        bet_id: BetId,
        detail: String,
    },
    Referral {
        bet_id: BetId,
        detail: String,
    },
    BonusBalanceMismatch {
        user_id: UserId,
        bonus_balance: Decimal,
        ledger_sum: Decimal,
    },
    FreeBetSpentTwice {
        free_bet_id: Uuid,
        bets: i64,
    },
    Wagering {
        bonus_id: Uuid,
        detail: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::BalanceMismatch {
                user_id,
                balance,
                ledger_sum,
            } => match balance {
                Some(b) => write!(
                    f,
                    "user {user_id}: balance {b} != sum of completed transactions {ledger_sum}"
                ),
                None => write!(
                    f,
                    "user {user_id}: no balance row but completed transactions sum to {ledger_sum}"
                ),
            },
            Violation::NegativeBalance {
                user_id,
                balance,
                bonus_balance,
            } => write!(
                f,
                "user {user_id}: negative balance (balance {balance}, bonus {bonus_balance})"
            ),
            Violation::BetLedger {
                bet_id,
                debits,
                credits,
            } => write!(
                f,
                "bet {bet_id}: {debits} stake debits (want one per funding part: cash, bonus; none for a free bet) and {credits} settlement credits (want at most 1)"
            ),
            Violation::PayoutMismatch {
                bet_id,
                actual_win,
                credits_net,
                debts,
            } => write!(
                f,
                "bet {bet_id}: actual_win {actual_win} != credits net of reversals {credits_net} - debts {debts}"
            ),
            Violation::NegativeFee {
                transaction_id,
                fees,
            } => write!(f, "transaction {transaction_id}: negative fee {fees}"),
            Violation::CashOut { bet_id, detail } => {
                write!(f, "bet {bet_id}: cash-outs not paid exactly once: {detail}")
            }
            Violation::Referral { bet_id, detail } => {
                write!(f, "bet {bet_id}: referral money does not add up: {detail}")
            }
            Violation::BonusBalanceMismatch {
                user_id,
                bonus_balance,
                ledger_sum,
            } => write!(
                f,
                "user {user_id}: bonus balance {bonus_balance} != sum of bonus transactions {ledger_sum}"
            ),
            Violation::FreeBetSpentTwice { free_bet_id, bets } => {
                write!(f, "free bet {free_bet_id}: held by {bets} live bets")
            }
            Violation::Wagering { bonus_id, detail } => {
                write!(f, "bonus {bonus_id}: wagering: {detail}")
            }
        }
    }
}

/// Runs every check (read-only) and answers every violation found.
pub async fn check<C: GenericClient>(client: &C) -> Result<Vec<Violation>, tokio_postgres::Error> {
    let mut out = Vec::new();
    for (user_id, balance, ledger_sum) in wdb::ledger_mismatches(client).await? {
        out.push(Violation::BalanceMismatch {
            user_id,
            balance,
            ledger_sum,
        });
    }
    for (user_id, balance, bonus_balance) in wdb::negative_balances(client).await? {
        out.push(Violation::NegativeBalance {
            user_id,
            balance,
            bonus_balance,
        });
    }
    for (bet_id, debits, credits) in wdb::bet_ledger_violations(client).await? {
        out.push(Violation::BetLedger {
            bet_id,
            debits,
            credits,
        });
    }
    for (bet_id, actual_win, credits_net, debts) in
        crate::db::settlement::payout_mismatches(client).await?
    {
        out.push(Violation::PayoutMismatch {
            bet_id,
            actual_win,
            credits_net,
            debts,
        });
    }
    for (transaction_id, fees) in wdb::negative_fees(client).await? {
        out.push(Violation::NegativeFee {
            transaction_id,
            fees,
        });
    }
    for (bet_id, detail) in crate::db::cashout::cash_out_violations(client).await? {
        out.push(Violation::CashOut { bet_id, detail });
    }
    for (bet_id, detail) in crate::db::referrals::violations(client).await? {
        out.push(Violation::Referral { bet_id, detail });
    }
    for (user_id, bonus_balance, ledger_sum) in bdb::bonus_balance_mismatches(client).await? {
        out.push(Violation::BonusBalanceMismatch {
            user_id,
            bonus_balance,
            ledger_sum,
        });
    }
    for (free_bet_id, bets) in bdb::free_bets_spent_twice(client).await? {
        out.push(Violation::FreeBetSpentTwice { free_bet_id, bets });
    }
    for (bonus_id, detail) in bdb::wagering_mismatches(client).await? {
        out.push(Violation::Wagering { bonus_id, detail });
    }
    Ok(out)
}

/// Connects to the database of `db` and runs [`check`] (the command and tests use this).
pub async fn check_database(db: &crate::db::DatabaseSettings) -> anyhow::Result<Vec<Violation>> {
    let mut db = db.clone();
    db.pool_max_size = 1;
    // A full scan of a large ledger may take longer than a request is allowed to.
    db.statement_timeout_ms = db.statement_timeout_ms.max(600_000);
    let pool = crate::db::build_pool(&db)?;
    let client = pool.get().await?;
    Ok(check(&client).await?)
}

/// The command: prints every violation; `Ok(false)` when there is any.
pub async fn run(database: &crate::db::DatabaseSettings) -> anyhow::Result<bool> {
    let violations = check_database(database).await?;
    for v in &violations {
        println!("VIOLATION {v}");
    }
    if violations.is_empty() {
        println!("ledger clean");
    } else {
        println!("{} violation(s)", violations.len());
    }
    Ok(violations.is_empty())
}
