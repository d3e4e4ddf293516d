//! Property: random bets (singles and parlays), random price moves, random cash-outs (full
//! and partial, by quote or by amount), then random results and corrections (resettle,
//! market void, one-bet void). After the cash-outs the markets' liability equals the open
//! exposure of the bets left at risk; at the end money is conserved (deposit + payouts +
//! cash-outs = balance + stakes), no cash-out was paid twice and check-ledger is clean.
//!
//! Each case has its own bettor and its own market on each of two shared events, and
//! checks only its own money, so cases run [`WORKERS`] at a time (`common::property`).
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use bets_support::{place, single};
use markets_support::post;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use settle_support::cases::{run_cases, Env, Market};
use settle_support::*;
use uuid::Uuid;
use winzo::auth::Role;

const WORKERS: u32 = 4;
const RESULTS: [&str; 4] = ["win", "loss", "push", "void"];
const OVER_PRICES: [&str; 4] = ["2.0000", "2.5000", "3.0000", "4.0000"];
const FRACTIONS: [&str; 4] = ["0.25", "0.5", "0.9", "1"];

#[derive(Debug, Clone)]
enum Step {
    /// Over of the case's first market moves to `OVER_PRICES[i]`.
    Move(usize),
    /// Cash out bet `bet % bets` at `FRACTIONS[f]`, by quote (`true`) or by amount.
    CashOut { bet: usize, f: usize, quote: bool },
}

#[derive(Debug, Clone)]
struct Plan {
    bets: Vec<(usize, Option<usize>)>,
    steps: Vec<Step>,
    results: [[usize; 3]; 2],
    correction: [usize; 3],
    correction_kind: usize,
}

fn plan() -> impl Strategy<Value = Plan> {
    let step = prop_oneof![
        (0..4usize).prop_map(Step::Move),
        (0..8usize, 0..4usize, any::<bool>()).prop_map(|(bet, f, quote)| Step::CashOut {
            bet,
            f,
            quote
        }),
    ];
    (
        prop::collection::vec((0..3usize, prop::option::of(0..3usize)), 1..6),
        prop::collection::vec(step, 1..8),
        [
            [0..4usize, 0..4usize, 0..4usize],
            [0..4usize, 0..4usize, 0..4usize],
        ],
        [0..4usize, 0..4usize, 0..4usize],
        0..3usize,
    )
        .prop_map(|(bets, steps, results, correction, correction_kind)| Plan {
            bets,
            steps,
            results,
            correction,
            correction_kind,
        })
}

/// Stake and payout the market counts per selection, from its live liability.
async fn live_liability(env: &Env, m: Uuid) -> Vec<(Uuid, Decimal, Decimal)> {
    let v: Value = env
        .app
        .http
        .get(
            env.app
                .url(&format!("/api/v1/trading/markets/{m}/liability")),
        )
        .bearer_auth(&env.trader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = |v: &Value| -> Decimal { v.as_str().unwrap().parse().unwrap() };
    let mut out: Vec<_> = v["selections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let id = s["selection_id"].as_str().unwrap().parse().unwrap();
            (id, d(&s["stake"]), d(&s["payout"]))
        })
        .collect();
    out.sort();
    out
}

/// The open exposure of the market's bets: remaining stake and potential win per selection.
async fn open_exposure(env: &Env, m: &Market) -> Vec<(Uuid, Decimal, Decimal)> {
    let rows = env
        .app
        .db
        .client
        .query(
            "SELECT s.id, COALESCE(sum(b.stake - b.cashed_out_stake), 0),
                    COALESCE(sum(b.potential_win - b.cashed_out_win), 0)
             FROM selections s
             LEFT JOIN bet_selections bs ON bs.selection_id = s.id
             LEFT JOIN bets b ON b.id = bs.bet_id AND b.status = 'accepted'
             WHERE s.market_id = $1 GROUP BY s.id ORDER BY s.id",
            &[&m.id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn cash_out(env: &Env, token: &str, bet: Uuid, f: &str, quote: bool, key: &str) {
    let app = &env.app;
    let r = app
        .http
        .get(app.url(&format!("/api/v1/bets/{bet}/cash-out")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let offer: Value = r.json().await.unwrap();
    if status == 409 {
        // Closed by an earlier full cash-out, or a remainder worth less than a cent.
        let reason = offer["error"]["details"]["reason"].as_str();
        assert!(
            matches!(reason, Some("bet_not_open" | "no_value")),
            "{offer}"
        );
        return;
    }
    assert_eq!(status, 200, "{offer}");
    let body = if quote {
        json!({"quote_id": offer["quote_id"], "fraction": f, "idempotency_key": key})
    } else {
        json!({"amount": offer["amount"], "fraction": f, "idempotency_key": key})
    };
    let (s, b) = post(
        &app.http,
        app.url(&format!("/api/v1/bets/{bet}/cash-out")),
        token,
        body,
    )
    .await;
    // A part too small to split (less than a cent on a side) is refused; nothing else.
    assert!(s == 201 || s == 422, "{s} {b}");
}

async fn run(env: &Env, plan: Plan) {
    let (app, trader) = (&env.app, env.trader.as_str());
    let ((user, token), m0, m1) = tokio::join!(
        async {
            let id = common::fixtures::funded_users(&app.db.client, dec!(1000.00), 1).await[0];
            let (t, _) = winzo::auth::session::create(&env.redis, id.into(), Role::User, 3600)
                .await
                .unwrap();
            (id, t)
        },
        env.total_market(env.events[0]),
        env.total_market(env.events[1])
    );
    let books = [m0, m1];
    let odds = ["2.5000", "1.5000", "9.0000"];
    let mut over = "2.5000";
    let mut ids = Vec::new();
    for (n, (a, b)) in plan.bets.iter().enumerate() {
        // Over is placed at its current price; the others never move.
        let price = if *a == 0 { over } else { odds[*a] };
        let body = match b {
            None => single(books[0].selections[*a], price, "10.00", &format!("b{n}")),
            Some(b) => {
                json!({"type": "parlay", "stake": "10.00", "idempotency_key": format!("b{n}"),
                "legs": [{"selection_id": books[0].selections[*a], "odds": price},
                         {"selection_id": books[1].selections[*b], "odds": odds[*b]}]})
            }
        };
        let (s, bet) = place(app, &token, &body).await;
        assert_eq!(s, 201, "{bet}");
        ids.push(bet_id(&bet));
    }
    for (n, step) in plan.steps.iter().enumerate() {
        match step {
            Step::Move(i) => {
                over = OVER_PRICES[*i];
                let (s, b) = trade(
                    app,
                    trader,
                    books[0].id,
                    "prices",
                    json!({"prices": [{"selection_id": books[0].selections[0], "odds": over}]}),
                )
                .await;
                assert_eq!(s, 200, "{b}");
            }
            Step::CashOut { bet, f, quote } => {
                let bet = ids[bet % ids.len()];
                cash_out(env, &token, bet, FRACTIONS[*f], *quote, &format!("c{n}")).await;
            }
        }
    }
    // Liability equals the open exposure of what is still at risk, on both markets.
    for m in &books {
        assert_eq!(live_liability(env, m.id).await, open_exposure(env, m).await);
    }
    let rs = |book: usize, r: [usize; 3]| {
        let t = &books[book].selections;
        results(&[
            (t[0], RESULTS[r[0]], None, None),
            (t[1], RESULTS[r[1]], None, None),
            (t[2], RESULTS[r[2]], None, None),
        ])
    };
    settle_ok(app, trader, books[0].id, "settle", rs(0, plan.results[0])).await;
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
            // A bet cashed out in full cannot be voided; any other can.
            let (s, b) = post(
                &app.http,
                app.url(&format!("/api/v1/trading/bets/{}/void", ids[0])),
                trader,
                json!({"reason": "p"}),
            )
            .await;
            let (status, _) = bet_row(app, ids[0]).await;
            assert!(s == 200 || status == "cashed_out", "{s} {b}");
        }
    }
    settle_ok(app, trader, books[1].id, "settle", rs(1, plan.results[1])).await;
    let row = app
        .db
        .client
        .query_one(
            "SELECT COALESCE(sum(stake), 0), COALESCE(sum(actual_win), 0),
                    COALESCE(sum(cashed_out_amount), 0),
                    COALESCE(sum(stake - cashed_out_stake) FILTER (WHERE status = 'accepted'), 0),
                    (SELECT COALESCE(sum(amount), 0) FROM user_debts WHERE user_id = $1)
             FROM bets WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap();
    let (staked, won, cashed, open, owed): (Decimal, Decimal, Decimal, Decimal, Decimal) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let bal = balance(app, user).await;
    assert_eq!(dec!(1000.00) + won + cashed + owed, bal + staked);
    assert_eq!(open, Decimal::ZERO, "every leg has a result");
    env.ledger_clean().await;
}

#[test]
fn cash_outs_conserve_money_pay_once_and_keep_liability_equal_to_open_exposure() {
    run_cases(WORKERS, &plan(), |env, p| Box::pin(run(env, p)));
}
