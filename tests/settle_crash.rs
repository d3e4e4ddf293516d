//! Kill the engine (SIGKILL) in the middle of a large settlement, start it again: the
//! unfinished settlement resumes on start-up and every bet is paid exactly once.
mod common;
mod markets_support;
mod settle_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use settle_support::{bulk_bets, ledger_clean, results};
use winzo::auth::Role;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn engine(db_url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_winzo"))
        .arg("serve")
        .env("WINZO_ENV", "test")
        .env("WINZO__DATABASE__URL", db_url)
        .env("WINZO__DATABASE__MIGRATE_ON_START", "false")
        .env("WINZO__SERVER__PORT", port.to_string())
        .env("WINZO__SETTLEMENT__BATCH_BETS_MAX", "20")
        .env("WINZO__SETTLEMENT__ANSWER_WAIT_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("engine binary starts")
}

async fn wait_ready(http: &reqwest::Client, port: u16) {
    common::engine::wait_ready(http, &format!("http://127.0.0.1:{port}")).await;
}

async fn progress(db: &tokio_postgres::Client, market: uuid::Uuid) -> (i32, bool) {
    let r = db
        .query_one(
            "SELECT bets_changed, completed_at IS NOT NULL FROM market_settlements WHERE market_id = $1",
            &[&market],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test]
async fn a_settlement_killed_half_way_resumes_and_pays_every_bet_exactly_once() {
    let db = common::TestDb::new().await;
    let book = common::fixtures::book(&db.client, &[dec!(2.5), dec!(1.6)], 60).await;
    let (_, trader) = markets_support::account(&db.client, Role::Moderator).await;
    let total = bulk_bets(&db.client, &book.selection_ids, 150, 20).await;
    let http = reqwest::Client::new();

    let port = free_port();
    let mut first = engine(&db.url, port);
    wait_ready(&http, port).await;
    let body = results(&[
        (book.selection_ids[0], "win", None, None),
        (book.selection_ids[1], "loss", None, None),
    ]);
    let r = http
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/trading/markets/{}/settle",
            book.market_id
        ))
        .bearer_auth(&trader)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        202,
        "a large settlement answers before it ends"
    );
    // Kill it once some, not all, bets are booked.
    common::wait_until(
        "progress of the settlement",
        Duration::from_secs(60),
        || async {
            let (changed, done) = progress(&db.client, book.market_id).await;
            assert!(
                !done,
                "the settlement finished before the kill; make it larger"
            );
            changed > 0
        },
    )
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let settled: i64 = db
        .client
        .query_one("SELECT count(*) FROM bets WHERE status <> 'accepted'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        settled > 0 && settled < total,
        "killed mid-way: {settled} of {total}"
    );

    let port = free_port();
    let mut second = engine(&db.url, port);
    wait_ready(&http, port).await;
    common::wait_until(
        "the resumed settlement to finish",
        Duration::from_secs(180),
        || async { progress(&db.client, book.market_id).await.1 },
    )
    .await;
    // Asking again changes nothing.
    let r = http
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/trading/markets/{}/settle",
            book.market_id
        ))
        .bearer_auth(&trader)
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["changed"], json!(false), "{answer}");
    second.kill().unwrap();
    second.wait().unwrap();

    let row = db
        .client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'accepted'),
                    count(*) FILTER (WHERE status = 'settled_win'),
                    (SELECT count(*) FROM transactions WHERE type = 'bet_credit'),
                    (SELECT COALESCE(sum(amount), 0) FROM transactions WHERE type = 'bet_credit')
             FROM bets",
            &[],
        )
        .await
        .unwrap();
    let (open, won, credits, paid): (i64, i64, i64, Decimal) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(open, 0);
    assert_eq!(won, total / 2);
    assert_eq!(credits, won, "one credit per winning bet");
    assert_eq!(paid, Decimal::from(won) * dec!(25));
    let violations = winzo::ledger_check::check_database(&{
        let mut s = common::test_settings().database;
        s.url = db.url.clone();
        s
    })
    .await
    .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let _ = ledger_clean; // the app-based helper is for spawned apps
}
