//! Property of bonus money and free bets (issue 17): random deposits, bonus grants, bets
//! funded each way, free bets, settlements, voids and expiries. Cash and bonus money are
//! each exactly what their transactions say, neither is ever negative, and
//! `winzo check-ledger` (bonus balances, free bets spent once, wagering progress) is clean.
//!
//! One engine and one event serve every case; each case has its own bettor and its own
//! market on the event (a total on a line no other case uses), so cases stay independent
//! and run [`WORKERS`] at a time (`common::property`). `PROPTEST_CASES` sets the number of
//! cases (32 by default here: each case is some fifteen requests and a settlement).
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use std::sync::atomic::{AtomicU32, Ordering};

use bets_support::{place, single};
use markets_support::{account, post};
use proptest::prelude::*;
use proptest::test_runner::Config;
use rust_decimal::Decimal;
use serde_json::json;
use settle_support::*;
use uuid::Uuid;
use winzo::auth::Role;

const WORKERS: u32 = 4;
const ODDS: [&str; 3] = ["2.5000", "1.5000", "9.0000"];
const RESULTS: [&str; 4] = ["win", "loss", "push", "void"];

#[derive(Debug, Clone)]
enum Op {
    Deposit(u32),
    Grant {
        units: u32,
        multiplier: i32,
    },
    FreeBet(u32),
    /// A single on selection `sel` of `units`: cash first, or bonus first.
    Bet {
        sel: usize,
        units: u32,
        bonus: bool,
    },
    /// Spend the newest available free bet on selection `sel`.
    SpendFreeBet {
        sel: usize,
    },
    /// A trader voids the `n`th bet placed so far (modulo), if any.
    Void(usize),
    /// The active bonus's expiry passes (the maintenance timer retracts it).
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1..50u32).prop_map(Op::Deposit),
        2 => (1..40u32, 0..4i32).prop_map(|(units, multiplier)| Op::Grant { units, multiplier }),
        2 => (1..20u32).prop_map(Op::FreeBet),
        6 => (0..3usize, 1..30u32, any::<bool>()).prop_map(|(sel, units, bonus)| Op::Bet { sel, units, bonus }),
        2 => (0..3usize).prop_map(|sel| Op::SpendFreeBet { sel }),
        1 => (0..8usize).prop_map(Op::Void),
        1 => Just(Op::Expire),
    ]
}

struct Env {
    app: common::TestApp,
    trader: String,
    event: Uuid,
    redis: redis::aio::ConnectionManager,
    pool: deadpool_postgres::Pool,
    next_line: AtomicU32,
}

async fn total_market(env: &Env) -> (Uuid, Vec<Uuid>) {
    let line = env.next_line.fetch_add(1, Ordering::Relaxed);
    let (s, m) = post(
        &env.app.http,
        env.app.url(&format!("/api/v1/trading/events/{}/markets", env.event)),
        &env.trader,
        json!({"type": "total_points", "name": format!("Total goals {line}.5"),
               "total_points": format!("{line}.50"),
               "selections": [{"name": "Over", "odds": "2.5000"}, {"name": "Under", "odds": "1.5000"},
                              {"name": "Exactly", "odds": "9.0000"}]}),
    )
    .await;
    assert_eq!(s, 201, "{m}");
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().parse::<Uuid>().unwrap();
    (
        id(&m),
        m["selections"].as_array().unwrap().iter().map(id).collect(),
    )
}

/// The user's balances and what their transactions say of each.
async fn books_of(env: &Env, user: Uuid) -> (Decimal, Decimal, Decimal, Decimal) {
    let r = env
        .app
        .db
        .client
        .query_one(
            "SELECT b.balance, b.bonus_balance,
                    COALESCE((SELECT sum(net_amount) FROM transactions
                              WHERE user_id = $1 AND status = 'completed' AND type <> 'bonus'), 0),
                    COALESCE((SELECT sum(amount) FROM transactions
                              WHERE user_id = $1 AND status = 'completed' AND type = 'bonus'), 0)
             FROM user_balances b WHERE b.user_id = $1",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

async fn check(env: &Env, user: Uuid, when: &str) {
    let (cash, bonus, cash_tx, bonus_tx) = books_of(env, user).await;
    assert_eq!(cash, cash_tx, "{when}: cash is its transactions");
    assert_eq!(bonus, bonus_tx, "{when}: bonus money is its transactions");
    assert!(
        cash >= Decimal::ZERO && bonus >= Decimal::ZERO,
        "{when}: {cash} / {bonus}"
    );
}

async fn run(env: &Env, ops: Vec<Op>, outcome: [usize; 3]) {
    let (app, trader) = (&env.app, env.trader.as_str());
    let user = common::fixtures::funded_users(&app.db.client, Decimal::from(20), 1).await[0];
    let (token, _) = winzo::auth::session::create(&env.redis, user.into(), Role::User, 3600)
        .await
        .expect("session");
    let (market, sels) = total_market(env).await;
    let mut bets: Vec<Uuid> = Vec::new();
    let far = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    for (n, op) in ops.iter().enumerate() {
        let key = format!("k{n}");
        match op {
            Op::Deposit(units) => {
                let r = app
                    .http
                    .post(app.url("/api/v1/wallet/deposits"))
                    .bearer_auth(&token)
                    .json(&json!({"amount": format!("{units}.00"), "idempotency_key": key}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "deposit: {}", r.status());
            }
            Op::Grant { units, multiplier } => {
                let (s, b) = post(
                    &app.http,
                    app.url(&format!("/api/v1/trading/users/{user}/bonuses")),
                    trader,
                    json!({"amount": format!("{units}.00"), "wagering_multiplier": multiplier,
                           "min_odds": "2.0000", "expires_at": far, "idempotency_key": key}),
                )
                .await;
                // One active bonus at a time: a second grant is refused, changing nothing.
                assert!(
                    s == 201 || (s == 409 && b["error"]["code"] == "bonus_not_eligible"),
                    "{s} {b}"
                );
            }
            Op::FreeBet(units) => {
                let (s, b) = post(
                    &app.http,
                    app.url(&format!("/api/v1/trading/users/{user}/free-bets")),
                    trader,
                    json!({"stake": format!("{units}.00"), "min_odds": "1.5000",
                           "expires_at": far, "idempotency_key": key}),
                )
                .await;
                assert_eq!(s, 201, "{b}");
            }
            Op::Bet { sel, units, bonus } => {
                let mut body = single(sels[*sel], ODDS[*sel], &format!("{units}.00"), &key);
                if *bonus {
                    body["funding"] = json!("bonus");
                }
                let (s, b) = place(app, &token, &body).await;
                match s {
                    201 => bets.push(bet_id(&b)),
                    409 => assert!(
                        ["insufficient_funds", "bonus_not_eligible"]
                            .contains(&b["error"]["code"].as_str().unwrap_or("")),
                        "{b}"
                    ),
                    _ => panic!("bet: {s} {b}"),
                }
            }
            Op::SpendFreeBet { sel } => {
                let token_row = app
                    .db
                    .client
                    .query_opt(
                        "SELECT id, stake::text FROM free_bets WHERE user_id = $1
                         AND status = 'available' ORDER BY created_at DESC LIMIT 1",
                        &[&user],
                    )
                    .await
                    .unwrap();
                let Some(row) = token_row else { continue };
                let (fb, stake): (Uuid, String) = (row.get(0), row.get(1));
                let mut body = single(sels[*sel], ODDS[*sel], &stake, &key);
                body["free_bet_id"] = json!(fb);
                let (s, b) = place(app, &token, &body).await;
                assert_eq!(s, 201, "{b}");
                bets.push(bet_id(&b));
            }
            Op::Void(i) => {
                if bets.is_empty() {
                    continue;
                }
                let bet = bets[i % bets.len()];
                let (s, b) = post(
                    &app.http,
                    app.url(&format!("/api/v1/trading/bets/{bet}/void")),
                    trader,
                    json!({"reason": "p"}),
                )
                .await;
                assert!(s == 200 || s == 409, "{s} {b}");
            }
            Op::Expire => {
                let n = app
                    .db
                    .client
                    .execute(
                        "UPDATE bonuses SET expires_at = now() WHERE user_id = $1
                         AND status = 'active'",
                        &[&user],
                    )
                    .await
                    .unwrap();
                if n == 1 {
                    common::wait_until("bonus retracted", std::time::Duration::from_secs(20), || async {
                        app.db
                            .client
                            .query_one(
                                "SELECT count(*) FROM bonuses WHERE user_id = $1 AND status = 'active'",
                                &[&user],
                            )
                            .await
                            .unwrap()
                            .get::<_, i64>(0)
                            == 0
                    })
                    .await;
                }
            }
        }
        check(env, user, &format!("after {op:?}")).await;
    }
    let rs = results(&[
        (sels[0], RESULTS[outcome[0]], None, None),
        (sels[1], RESULTS[outcome[1]], None, None),
        (sels[2], RESULTS[outcome[2]], None, None),
    ]);
    settle_ok(app, trader, market, "settle", rs).await;
    check(env, user, "after settlement").await;
    let violations = winzo::ledger_check::check(&env.pool.get().await.unwrap())
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[test]
fn cash_and_bonus_money_are_their_transactions_and_never_negative() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(async {
        let app = common::spawn_app_with(|s| s.bonus.expiry_interval_ms = 50).await;
        let (_, trader) = account(&app.db.client, Role::Moderator).await;
        let b = book(&app, &trader).await;
        let redis = winzo::redis_client::connect(&app.settings.redis).unwrap();
        let mut db = app.settings.database.clone();
        db.pool_max_size = WORKERS as usize;
        let pool = winzo::db::build_pool(&db).unwrap();
        Env {
            event: b.event_id,
            app,
            trader,
            redis,
            pool,
            next_line: AtomicU32::new(3),
        }
    });
    let config = Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        failure_persistence: None,
        max_shrink_iters: 0,
        ..Config::default()
    };
    let plan = (
        prop::collection::vec(op(), 3..16),
        [0..4usize, 0..4usize, 0..4usize],
    );
    common::property::run(&rt, config, WORKERS, &plan, |(ops, r)| run(&env, ops, r));
    rt.block_on(env.app.stop());
}
