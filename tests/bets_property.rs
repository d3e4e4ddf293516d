//! Property test of the bet path against the real engine: random sequences of deposits,
//! bets, price moves and suspensions on a few markets never make a balance negative,
//! keep every market's live liability equal to its open bets, and conserve money.
//!
//! One engine serves every case; each case has its own event (with the book's two markets)
//! and its own three bettors, and checks only those, so cases stay independent and run
//! [`WORKERS`] at a time (`common::property`). `PROPTEST_CASES` sets the number of cases
//! (256 by default).
mod bets_support;
mod common;
mod markets_support;

use std::collections::HashMap;

use markets_support::{account, create_catalogue, create_event, post, Catalogue};
use proptest::prelude::*;
use proptest::test_runner::Config;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use winzo::auth::Role;

/// Cases run at a time (see `common::property`).
const WORKERS: u32 = 4;

#[derive(Debug, Clone)]
enum Op {
    Deposit {
        user: usize,
        units: u32,
    },
    Bet {
        user: usize,
        market: usize,
        sel: usize,
        cents: u32,
        any_price: bool,
    },
    Price {
        market: usize,
        sel: usize,
        hundredths: u32,
    },
    Suspend {
        market: usize,
    },
    Resume {
        market: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..50u32).prop_map(|(user, units)| Op::Deposit { user, units }),
        (0..3usize, 0..2usize, 0..2usize, 10..4000u32, any::<bool>()).prop_map(
            |(user, market, sel, cents, any_price)| Op::Bet {
                user,
                market,
                sel,
                cents,
                any_price
            }
        ),
        (0..2usize, 0..2usize, 120..400u32).prop_map(|(market, sel, hundredths)| Op::Price {
            market,
            sel,
            hundredths
        }),
        (0..2usize).prop_map(|market| Op::Suspend { market }),
        (0..2usize).prop_map(|market| Op::Resume { market }),
    ]
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// What every case shares: the engine, a trader, a sport with two teams, a Redis handle
/// for sessions, a pool for the ledger check.
struct Env {
    app: common::TestApp,
    trader: String,
    catalogue: Catalogue,
    redis: redis::aio::ConnectionManager,
    pool: deadpool_postgres::Pool,
}

/// `n` new bettors with `funds` each (backed by a deposit) and a session: (user id, token).
async fn bettors(env: &Env, funds: Decimal, n: usize) -> Vec<(Uuid, String)> {
    let ids = common::fixtures::funded_users(&env.app.db.client, funds, n).await;
    let sessions = ids.iter().map(|id| async move {
        let (token, _) = winzo::auth::session::create(&env.redis, (*id).into(), Role::User, 3600)
            .await
            .expect("session");
        (*id, token)
    });
    futures::future::join_all(sessions).await
}

async fn run(env: &Env, ops: Vec<Op>) {
    let (app, trader) = (&env.app, &env.trader);
    let (book, users) = tokio::join!(
        create_event(&app.http, &app.address, trader, &env.catalogue),
        bettors(env, Decimal::from(20), 3)
    );
    let user_ids: Vec<Uuid> = users.iter().map(|u| u.0).collect();
    let mut prices: HashMap<Uuid, String> = HashMap::new();
    prices.insert(book.selections[0][0], "1.9091".into());
    prices.insert(book.selections[0][1], "1.9091".into());
    prices.insert(book.selections[1][0], "2.5000".into());
    prices.insert(book.selections[1][1], "1.5000".into());
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Deposit { user, units } => {
                let r = app.http.post(app.url("/api/v1/wallet/deposits")).bearer_auth(&users[user].1)
                    .json(&json!({"amount": format!("{units}.00"), "idempotency_key": format!("d{i}")}))
                    .send().await.unwrap();
                assert!(
                    r.status() == 201 || r.status() == 200,
                    "deposit {}",
                    r.status()
                );
            }
            Op::Bet {
                user,
                market,
                sel,
                cents,
                any_price,
            } => {
                let s = book.selections[market][sel];
                let body = json!({"type": "single", "stake": format!("{}.{:02}", cents / 100, cents % 100),
                    "odds_change": if any_price { "any" } else { "none" }, "idempotency_key": format!("b{i}"),
                    "legs": [{"selection_id": s, "odds": prices[&s]}]});
                let (status, b) = bets_support::place(app, &users[user].1, &body).await;
                assert!(
                    status == 201 || status == 409 || status == 422,
                    "bet {status} {b}"
                );
            }
            Op::Price {
                market,
                sel,
                hundredths,
            } => {
                let s = book.selections[market][sel];
                let odds = format!("{}.{:02}00", hundredths / 100, hundredths % 100);
                let (status, _) = post(
                    &app.http,
                    app.url(&format!(
                        "/api/v1/trading/markets/{}/prices",
                        book.markets[market]
                    )),
                    trader,
                    json!({"prices": [{"selection_id": s, "odds": odds}]}),
                )
                .await;
                if status == 200 {
                    prices.insert(s, odds);
                }
            }
            Op::Suspend { market } | Op::Resume { market } => {
                let verb = if matches!(op, Op::Suspend { .. }) {
                    "suspend"
                } else {
                    "resume"
                };
                post(
                    &app.http,
                    app.url(&format!(
                        "/api/v1/trading/markets/{}/{verb}",
                        book.markets[market]
                    )),
                    trader,
                    json!({}),
                )
                .await;
            }
        }
    }
    let c = &app.db.client;
    let negative: i64 = c
        .query_one(
            "SELECT count(*) FROM user_balances WHERE balance < 0 AND user_id = ANY($1)",
            &[&user_ids],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(negative, 0);
    // Money: every balance is its deposits minus its stakes.
    let row = c
        .query_one(
            "SELECT (SELECT sum(balance) FROM user_balances WHERE user_id = ANY($1)),
                (SELECT coalesce(sum(amount), 0) FROM transactions
                  WHERE type = 'deposit' AND status = 'completed' AND user_id = ANY($1)),
                (SELECT coalesce(sum(stake), 0) FROM bets WHERE user_id = ANY($1))",
            &[&user_ids],
        )
        .await
        .unwrap();
    let (balances, deposits, stakes): (Decimal, Decimal, Decimal) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(balances, deposits - stakes, "money conserved");
    let violations = winzo::ledger_check::check(&env.pool.get().await.unwrap())
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    // Liability: each selection's live stake and payout equal its open bets.
    for m in &book.markets {
        let live: Value = app
            .http
            .get(app.url(&format!("/api/v1/trading/markets/{m}/liability")))
            .bearer_auth(trader)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in live["selections"].as_array().unwrap() {
            let id: Uuid = s["selection_id"].as_str().unwrap().parse().unwrap();
            let r = c
                .query_one(
                    "SELECT coalesce(sum(b.stake), 0), coalesce(sum(b.potential_win), 0)
                 FROM bets b JOIN bet_selections bs ON bs.bet_id = b.id
                 WHERE bs.selection_id = $1 AND b.status = 'accepted'",
                    &[&id],
                )
                .await
                .unwrap();
            assert_eq!(
                dec(s["stake"].as_str().unwrap()),
                r.get::<_, Decimal>(0),
                "stake on {id}: {s}"
            );
            assert_eq!(
                dec(s["payout"].as_str().unwrap()),
                r.get::<_, Decimal>(1),
                "payout on {id}: {s}"
            );
        }
    }
}

#[test]
fn random_books_keep_balances_liability_and_money_consistent() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = rt.block_on(async {
        let app = common::spawn_app().await;
        let (_, trader) = account(&app.db.client, Role::Moderator).await;
        let catalogue = create_catalogue(&app.http, &app.address, &trader).await;
        let redis = winzo::redis_client::connect(&app.settings.redis).unwrap();
        let mut db = app.settings.database.clone();
        db.pool_max_size = WORKERS as usize;
        let pool = winzo::db::build_pool(&db).unwrap();
        Env {
            app,
            trader,
            catalogue,
            redis,
            pool,
        }
    });
    let config = Config {
        cases: common::property::cases(),
        max_shrink_iters: 0,
        // Replays the seeds of bets_property.proptest-regressions first.
        source_file: Some(file!()),
        ..Config::default()
    };
    let ops = proptest::collection::vec(op(), 5..30);
    common::property::run(&rt, config, WORKERS, &ops, |ops| run(&env, ops));
    rt.block_on(env.app.stop());
}
