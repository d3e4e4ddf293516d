//! The group-commit ledger writer against a real Postgres: batches commit bets, legs,
//! debits and balances together; a bad bet is refused alone; a dead database refuses all.
mod common;

use std::sync::Arc;

use chrono::Utc;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;
use winzo::domain::BetType;
use winzo::ledger::{BetRecord, LedgerError, LedgerSettings, LedgerWriter, LegRecord};
use winzo::metrics::Metrics;

fn settings(batch_bets_max: usize) -> LedgerSettings {
    LedgerSettings {
        writers_count: 2,
        batch_bets_max,
        batch_age_max_us: 5_000,
        queue_bets_max: 10_000,
        commit_timeout_ms: 10_000,
        in_doubt_resolve_max_ms: 30_000,
        in_doubt_retry_interval_ms: 200,
    }
}

fn single(user_id: Uuid, selection_id: Uuid, stake: Decimal, key: &str) -> BetRecord {
    BetRecord {
        bet_id: Uuid::new_v4(),
        user_id,
        bet_type: BetType::Single,
        stake,
        total_odds: dec!(2.0000),
        potential_win: stake * dec!(2),
        currency_code: "USD".into(),
        placed_at: Utc::now(),
        idempotency_key: Some(key.to_string()),
        metadata: serde_json::json!({}),
        legs: vec![LegRecord {
            selection_id,
            odds: dec!(2.0000),
        }],
    }
}

fn writer_for(url: &str, batch: usize) -> LedgerWriter {
    let mut s = common::test_settings();
    s.database.url = url.to_string();
    let pool = winzo::db::build_pool(&s.database).unwrap();
    LedgerWriter::start(pool, &settings(batch), Arc::new(Metrics::new().unwrap()))
}

#[tokio::test]
async fn concurrent_bets_commit_in_batches_with_their_debits() {
    let db = common::TestDb::new().await;
    let book = common::fixtures::book(&db.client, &[dec!(2.0), dec!(1.8)], 60).await;
    let user = common::fixtures::funded_user(&db.client, dec!(1000.00)).await;
    let writer = writer_for(&db.url, 64);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let w = writer.clone();
        let bet = single(user, book.selection_ids[0], dec!(2.50), &format!("k{i}"));
        tasks.push(tokio::spawn(async move { w.commit_bet(bet).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(()));
    }
    let row = db
        .client
        .query_one(
            "SELECT (SELECT balance FROM user_balances WHERE user_id = $1),
                    (SELECT count(*) FROM bets WHERE user_id = $1),
                    (SELECT count(*) FROM bet_selections bs JOIN bets b ON b.id = bs.bet_id WHERE b.user_id = $1),
                    (SELECT coalesce(sum(amount), 0) FROM transactions WHERE user_id = $1 AND type = 'bet_debit')",
            &[&user],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Decimal>(0), dec!(750.00));
    assert_eq!(row.get::<_, i64>(1), 100);
    assert_eq!(row.get::<_, i64>(2), 100);
    assert_eq!(row.get::<_, Decimal>(3), dec!(-250.00));
}

#[tokio::test]
async fn an_overdrawing_bet_is_refused_alone_and_the_rest_of_its_batch_commits() {
    let db = common::TestDb::new().await;
    let book = common::fixtures::book(&db.client, &[dec!(2.0), dec!(1.8)], 60).await;
    let rich = common::fixtures::funded_user(&db.client, dec!(100.00)).await;
    let poor = common::fixtures::funded_user(&db.client, dec!(5.00)).await;
    let writer = writer_for(&db.url, 512);
    let good = writer.commit_bet(single(rich, book.selection_ids[0], dec!(10.00), "a"));
    let bad = writer.commit_bet(single(poor, book.selection_ids[0], dec!(10.00), "b"));
    let good2 = writer.commit_bet(single(rich, book.selection_ids[1], dec!(10.00), "c"));
    let (g, b, g2) = tokio::join!(good, bad, good2);
    assert_eq!(g, Ok(()));
    assert_eq!(g2, Ok(()));
    assert!(matches!(b, Err(LedgerError::Refused(_))), "{b:?}");
    let poor_bets: i64 = db
        .client
        .query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&poor])
        .await
        .unwrap()
        .get(0);
    assert_eq!(poor_bets, 0);
    let poor_balance: Decimal = db
        .client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&poor],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(poor_balance, dec!(5.00));
}

#[tokio::test]
async fn a_reused_idempotency_key_is_reported_as_duplicate() {
    let db = common::TestDb::new().await;
    let book = common::fixtures::book(&db.client, &[dec!(2.0)], 60).await;
    let user = common::fixtures::funded_user(&db.client, dec!(100.00)).await;
    let writer = writer_for(&db.url, 8);
    assert_eq!(
        writer
            .commit_bet(single(user, book.selection_ids[0], dec!(1.00), "same"))
            .await,
        Ok(())
    );
    assert_eq!(
        writer
            .commit_bet(single(user, book.selection_ids[0], dec!(1.00), "same"))
            .await,
        Err(LedgerError::DuplicateKey)
    );
}

#[tokio::test]
async fn an_unreachable_database_refuses_every_bet_as_unavailable() {
    let writer = writer_for("postgres://winzo@127.0.0.1:1/nowhere", 8);
    let out = writer
        .commit_bet(single(Uuid::new_v4(), Uuid::new_v4(), dec!(1.00), "x"))
        .await;
    assert!(matches!(out, Err(LedgerError::Unavailable(_))), "{out:?}");
}
