//! Property: random books (singles and parlays on random selections), random results,
//! random corrections (resettle, market void, one-bet void): money in equals money out
//! plus open stakes, and check-ledger is clean.
//!
//! One engine and one book (two events) serve every case; each case has its own bettor
//! and its own market on each event (a total on a line no other case uses), and checks
//! only its own money, so cases stay independent and run [`WORKERS`] at a time
//! (`common::property`). `PROPTEST_CASES` sets the number of cases (256 by default).
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use bets_support::{place, single};
use markets_support::post;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use settle_support::cases::{run_cases, Env};
use settle_support::*;

/// Cases run at a time (see `common::property`).
const WORKERS: u32 = 4;

const RESULTS: [&str; 4] = ["win", "loss", "push", "void"];

#[derive(Debug, Clone)]
struct Plan {
    /// (selection index 0..3 on book 0, selection index on book 1 or none: a parlay)
    bets: Vec<(usize, Option<usize>)>,
    first: [[usize; 3]; 2],
    correction: [usize; 3],
    /// 0: resettle book 0, 1: void book 0's market, 2: void the first bet.
    correction_kind: usize,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec((0..3usize, prop::option::of(0..3usize)), 1..8),
        [
            [0..4usize, 0..4usize, 0..4usize],
            [0..4usize, 0..4usize, 0..4usize],
        ],
        [0..4usize, 0..4usize, 0..4usize],
        0..3usize,
    )
        .prop_map(|(bets, first, correction, correction_kind)| Plan {
            bets,
            first,
            correction,
            correction_kind,
        })
}

async fn run(env: &Env, plan: Plan) {
    let (app, trader) = (&env.app, env.trader.as_str());
    let ((user, token), first, second) = tokio::join!(
        env.bettor(dec!(1000.00)),
        env.total_market(env.events[0]),
        env.total_market(env.events[1])
    );
    let books = [first, second];
    let odds = ["2.5000", "1.5000", "9.0000"];
    let mut ids = Vec::new();
    for (n, (a, b)) in plan.bets.iter().enumerate() {
        let body = match b {
            None => single(books[0].selections[*a], odds[*a], "10.00", &format!("k{n}")),
            Some(b) => {
                json!({"type": "parlay", "stake": "10.00", "idempotency_key": format!("k{n}"),
                "legs": [{"selection_id": books[0].selections[*a], "odds": odds[*a]},
                         {"selection_id": books[1].selections[*b], "odds": odds[*b]}]})
            }
        };
        let (s, bet) = place(app, &token, &body).await;
        assert_eq!(s, 201, "{bet}");
        ids.push(bet_id(&bet));
    }
    let rs = |book: usize, r: [usize; 3]| {
        let t = &books[book].selections;
        results(&[
            (t[0], RESULTS[r[0]], None, None),
            (t[1], RESULTS[r[1]], None, None),
            (t[2], RESULTS[r[2]], None, None),
        ])
    };
    settle_ok(app, trader, books[0].id, "settle", rs(0, plan.first[0])).await;
    match plan.correction_kind {
        0 => {
            let (s, b) = trade(app, trader, books[0].id, "resettle", rs(0, plan.correction)).await;
            assert_eq!(s, 200, "{b}");
        }
        1 => {
            let (s, b) = trade(app, trader, books[0].id, "void", json!({"reason": "p"})).await;
            assert_eq!(s, 200, "{b}");
        }
        _ => {
            let (s, b) = post(
                &app.http,
                app.url(&format!("/api/v1/trading/bets/{}/void", ids[0])),
                trader,
                json!({"reason": "p"}),
            )
            .await;
            assert_eq!(s, 200, "{b}");
        }
    }
    settle_ok(app, trader, books[1].id, "settle", rs(1, plan.first[1])).await;
    // Money in (deposit + payouts booked) = money out (stakes) + what the account holds.
    let row = app
        .db
        .client
        .query_one(
            "SELECT COALESCE(sum(stake), 0),
                    COALESCE(sum(stake) FILTER (WHERE status = 'accepted'), 0),
                    COALESCE(sum(actual_win), 0),
                    (SELECT COALESCE(sum(amount), 0) FROM user_debts WHERE user_id = $1)
             FROM bets WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap();
    let (staked, open, won, owed): (Decimal, Decimal, Decimal, Decimal) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let bal = balance(app, user).await;
    assert_eq!(
        dec!(1000.00) + won + owed,
        bal + staked,
        "open stakes {open}"
    );
    assert_eq!(
        open,
        Decimal::ZERO,
        "every leg has a result: nothing left open"
    );
    env.ledger_clean().await;
}

#[test]
fn money_in_equals_money_out_plus_open_stakes_and_the_ledger_is_clean() {
    run_cases(WORKERS, &plan(), |env, p| Box::pin(run(env, p)));
}
