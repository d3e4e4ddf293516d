//! Postgres stopped under load: bets answer 503 within a bounded time, nothing is
//! acknowledged that is not committed, and acceptance resumes by itself when it returns.
mod bets_support;
mod common;
mod markets_support;

use std::time::{Duration, Instant};

use bets_support::{place, single};
use markets_support::{account, create_book};
use rust_decimal_macros::dec;
use winzo::auth::Role;

#[tokio::test]
async fn bets_are_refused_while_postgres_is_down_and_accepted_again_after() {
    let pg = common::pgcluster::PrivateCluster::start();
    winzo::db::migrate(&pg.url()).await.expect("migrate");
    let app = common::spawn_app_at(&pg.url(), |s| {
        s.database.connect_timeout_ms = 500;
        s.database.pool_wait_timeout_ms = 1000;
        s.ledger.commit_timeout_ms = 3000;
    })
    .await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let book = create_book(&app.http, &app.address, &trader).await;
    let (user, token) = bets_support::bettor(&app.db.client, dec!(100.00)).await;
    let sel = book.selections[1][1];
    let (s, b) = place(&app, &token, &single(sel, "1.5000", "1.00", "before")).await;
    assert_eq!(s, 201, "{b}");

    pg.pg_stop();
    let mut acknowledged_while_down = 0;
    for i in 0..10 {
        let started = Instant::now();
        let (s, b) = place(
            &app,
            &token,
            &single(sel, "1.5000", "1.00", &format!("down-{i}")),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answer took {:?}",
            started.elapsed()
        );
        if s == 201 {
            acknowledged_while_down += 1;
        } else {
            assert_eq!(s, 503, "{b}");
        }
    }
    assert_eq!(
        acknowledged_while_down, 0,
        "nothing can be durable while Postgres is down"
    );

    pg.pg_start();
    // The bettor retries every 200 ms (a client's pace, not a guess at a delay) until three
    // bets are accepted again.
    let accepted = std::cell::Cell::new(0i64);
    let attempts = std::cell::Cell::new(0);
    common::wait_until_every(
        "acceptance to resume",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let i = attempts.replace(attempts.get() + 1);
            let (s, _) = place(
                &app,
                &token,
                &single(sel, "1.5000", "1.00", &format!("after-{i}")),
            )
            .await;
            if s == 201 {
                accepted.set(accepted.get() + 1);
            }
            accepted.get() >= 3
        },
    )
    .await;
    let accepted_after = accepted.get();
    let db = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(db.1);
    let bets: i64 =
        db.0.query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&user])
            .await
            .unwrap()
            .get(0);
    assert_eq!(
        bets,
        1 + accepted_after,
        "exactly the acknowledged bets are stored"
    );
    let balance: rust_decimal::Decimal =
        db.0.query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, dec!(100.00) - rust_decimal::Decimal::from(bets));
    let mut settings = common::test_settings();
    settings.database.url = pg.url();
    let violations = winzo::ledger_check::check_database(&settings.database)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    app.stop().await;
}
