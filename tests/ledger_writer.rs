//! The group-commit ledger writer against a real Postgres: batches commit bets, legs,
//! debits and balances together; a bad bet is refused alone; a dead database refuses all;
//! a batch whose COMMIT lost its connection is found (or not) before it is answered.
mod common;

use std::sync::Arc;

use chrono::Utc;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;
use winzo::domain::ids::BetId;
use winzo::domain::{BetType, Money};
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
        bet_id: BetId::new_random(),
        user_id: user_id.into(),
        bet_type: BetType::Single,
        stake: Money::from_decimal(stake).unwrap(),
        total_odds: dec!(2.0000),
        potential_win: Money::from_decimal(stake * dec!(2)).unwrap(),
        currency_code: "USD".into(),
        placed_at: Utc::now(),
        idempotency_key: Some(key.to_string()),
        metadata: serde_json::json!({}),
        bonus_stake: Money::ZERO,
        free_bet_id: None,
        legs: vec![LegRecord {
            selection_id: selection_id.into(),
            odds: dec!(2.0000),
        }],
        referral: None,
        fence: Default::default(),
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

// A ledger batch whose COMMIT loses its connection is in doubt: the writer finds out
// whether it committed before answering, and a bet that waited in the queue past the
// commit timeout (its caller already answered 503) is dropped unwritten. A private
// cluster with a synchronous standby that never comes holds a COMMIT waiting, the way a
// primary waits for its standby when it dies (docs/operations.md, "High availability").

async fn connect_to(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The writer's backend waiting for the synchronous standby, once there is one.
async fn waiting_commit(admin: &Client) -> Option<i32> {
    admin
        .query_opt(
            "SELECT pid FROM pg_stat_activity
             WHERE application_name = 'winzo' AND wait_event = 'SyncRep' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// Sets (or resets) `synchronous_standby_names` and reloads the configuration.
async fn set_standby(db: &Client, name: Option<&str>) {
    let sql = match name {
        Some(n) => format!("ALTER SYSTEM SET synchronous_standby_names = '{n}'"),
        None => "ALTER SYSTEM RESET synchronous_standby_names".to_string(),
    };
    db.simple_query(&sql).await.unwrap();
    db.simple_query("SELECT pg_reload_conf()").await.unwrap();
}

async fn bets_of(db: &Client, user: Uuid) -> Vec<String> {
    db.query(
        "SELECT idempotency_key FROM bets WHERE user_id = $1 ORDER BY idempotency_key",
        &[&user],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn a_commit_that_lost_its_connection_is_found_and_a_bet_queued_too_long_is_dropped() {
    let pg = common::pgcluster::PrivateCluster::start();
    winzo::db::migrate(&pg.url()).await.expect("migrate");
    let db = connect_to(&pg.url()).await;
    let book = common::fixtures::book(&db, &[dec!(2.0), dec!(1.8)], 60).await;
    let user = common::fixtures::funded_user(&db, dec!(100.00)).await;
    // From now on every COMMIT that writes waits for a standby named `nobody`.
    set_standby(&db, Some("nobody")).await;

    let mut s = common::test_settings();
    s.database.url = pg.url();
    let pool = winzo::db::build_pool(&s.database).unwrap();
    let metrics = Arc::new(Metrics::new().unwrap());
    let writer = LedgerWriter::start(
        pool,
        &LedgerSettings {
            writers_count: 1,
            batch_bets_max: 1,
            commit_timeout_ms: 1000,
            in_doubt_retry_interval_ms: 50,
            ..settings(1)
        },
        metrics.clone(),
    );

    // Bet a's COMMIT waits for the standby; bet b queues behind it.
    let mut a = writer
        .submit_bet(single(user, book.selection_ids[0], dec!(5.00), "a"))
        .unwrap();
    let pid = {
        let found = std::cell::Cell::new(None);
        common::wait_until("bet a's COMMIT to wait", Duration::from_secs(20), || {
            let (db, found) = (&db, &found);
            async move {
                found.set(waiting_commit(db).await);
                found.get().is_some()
            }
        })
        .await;
        found.get().unwrap()
    };
    let mut b = writer
        .submit_bet(single(user, book.selection_ids[1], dec!(5.00), "b"))
        .unwrap();
    // Both callers give up after commit_timeout_ms and would answer 503 "retry with the
    // same key"; b has now waited past it in the queue.
    assert_eq!(writer.wait(&mut a).await, Err(LedgerError::Timeout));
    assert_eq!(writer.wait(&mut b).await, Err(LedgerError::Timeout));

    // The connection of a's COMMIT is cut. Postgres had committed it locally (it only
    // waited for the standby): the writer must find it, not call it lost.
    // Cut first, then let commits through again: in the other order the waiting COMMIT may
    // be released and answered before the cut (a race under load), leaving nothing in doubt.
    db.execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    set_standby(&db, None).await;
    assert_eq!(
        a.finish().await,
        Ok(()),
        "the batch in doubt was found committed"
    );
    let b_outcome = b.finish().await;
    assert!(
        matches!(b_outcome, Err(LedgerError::Unavailable(_))),
        "a bet that waited past the commit timeout is not written: {b_outcome:?}"
    );
    assert_eq!(bets_of(&db, user).await, vec!["a".to_string()]);
    assert_eq!(
        common::fixtures::balance(&db, user).await,
        dec!(95.00),
        "one stake debited"
    );
    let text = metrics.render();
    assert!(
        text.contains("winzo_ledger_in_doubt_batches_total{outcome=\"committed\"} 1"),
        "{text}"
    );
    assert!(text.contains("winzo_ledger_expired_bets_total 1"), "{text}");

    // The writer goes on: a new bet commits at once.
    assert_eq!(
        writer
            .commit_bet(single(user, book.selection_ids[0], dec!(5.00), "c"))
            .await,
        Ok(())
    );
    assert_eq!(bets_of(&db, user).await, vec!["a", "c"]);
}
