//! audit_log, bets and transactions partitioned by month and kept by pg_partman (V45-V49,
//! docs/operations.md "Partitions"): months exist ahead after migrate and after the daily
//! maintenance, months past the configured retention are detached (kept as plain tables),
//! rows written before the migration survive it, and the keys that must hold across
//! months (bet id, a user's idempotency key, a transaction's reference) still do.
mod common;

use rust_decimal_macros::dec;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use uuid::Uuid;
use winzo::maintenance::{run_maintenance_once, MaintenanceOutcome, MaintenanceSummary};

const PARTITIONED: [&str; 3] = ["audit_log", "bets", "transactions"];

/// The months (first instants, UTC) of `table`'s attached range partitions.
async fn months(c: &Client, table: &str) -> Vec<String> {
    c.query(
        "SELECT to_char(p.child_start_time AT TIME ZONE 'UTC', 'YYYY-MM')
         FROM partman.show_partitions('public.' || $1) s,
              partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                          p_parent_table => 'public.' || $1) p
         ORDER BY 1",
        &[&table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// `now()` shifted by `offset` months, as `YYYY-MM` (UTC).
async fn month(c: &Client, offset: i32) -> String {
    c.query_one(
        "SELECT to_char((now() + make_interval(months => $1)) AT TIME ZONE 'UTC', 'YYYY-MM')",
        &[&offset],
    )
    .await
    .unwrap()
    .get(0)
}

async fn assert_months_ahead(c: &Client, ahead: i32, when: &str) {
    for table in PARTITIONED {
        let have = months(c, table).await;
        for k in 0..=ahead {
            let m = month(c, k).await;
            assert!(
                have.contains(&m),
                "{when}: {table} has no partition for {m} (has {have:?})"
            );
        }
    }
}

fn settings(
    adjust: impl FnOnce(&mut winzo::maintenance::PartitionSettings),
) -> winzo::maintenance::MaintenanceSettings {
    let mut m = common::test_settings().maintenance;
    m.statement_timeout_ms = 60_000;
    adjust(&mut m.partitions);
    m
}

fn pool(db: &common::TestDb) -> deadpool_postgres::Pool {
    let mut s = common::test_settings();
    s.database.url = db.url.clone();
    winzo::db::build_pool(&s.database).expect("pool")
}

async fn maintain(
    db: &common::TestDb,
    m: &winzo::maintenance::MaintenanceSettings,
) -> MaintenanceSummary {
    let pool = pool(db);
    match run_maintenance_once(&pool, m)
        .await
        .expect("maintenance runs")
    {
        MaintenanceOutcome::Ran(summary) => summary,
        MaintenanceOutcome::Skipped => panic!("nobody else holds the maintenance lock"),
    }
}

/// Is `relation` a partition of some table now (false: detached or never attached)?
async fn attached(c: &Client, relation: &str) -> bool {
    c.query_one(
        "SELECT relispartition FROM pg_class WHERE oid = to_regclass($1)",
        &[&relation],
    )
    .await
    .unwrap()
    .get(0)
}

/// An open selection at 2.5 and a user with a balance of 100 (the deposit that explains
/// it is the caller's): what a bet needs.
async fn book(c: &Client) -> (Uuid, Uuid) {
    let book = common::fixtures::book(c, &[dec!(2.5)], 60).await;
    let user: Uuid = c
        .query_one(
            "WITH u AS (INSERT INTO users (username, email, password_hash)
                        VALUES ('punter', 'punter@example.com', 'x') RETURNING id)
             INSERT INTO user_balances (user_id, balance) SELECT id, 100 FROM u
             RETURNING user_id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (book.selection_ids[0], user)
}

/// bets, bet_selections, transactions, audit_log: how many rows each shows.
async fn counts(c: &Client) -> Vec<i64> {
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM bets), (SELECT count(*) FROM bet_selections),
                    (SELECT count(*) FROM transactions), (SELECT count(*) FROM audit_log)",
            &[],
        )
        .await
        .unwrap();
    (0..4).map(|i| r.get(i)).collect()
}

/// A bet of 10 with its leg, debit and balance update, placed (and debited) `age` ago, in
/// one transaction as the ledger writer writes it. Answers the bet's id.
async fn old_bet(c: &mut Client, user: Uuid, selection: Uuid, key: &str, age: &str) -> Uuid {
    let tx = c.transaction().await.unwrap();
    let bet: Uuid = tx
        .query_one(
            "INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win,
                               placed_at, idempotency_key)
             VALUES ($1, 'single', 'accepted', 10, 2.5, 25, now() - $2::text::interval, $3)
             RETURNING id",
            &[&user, &age, &key],
        )
        .await
        .unwrap()
        .get(0);
    tx.execute(
        "INSERT INTO bet_selections (bet_id, selection_id, odds) VALUES ($1, $2, 2.5)",
        &[&bet, &selection],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO transactions (user_id, type, amount, status, reference, related_bet_id,
                                   created_at)
         VALUES ($1, 'bet_debit', -10, 'completed', 'bet:' || $2::uuid::text,
                 $2::uuid, now() - $3::text::interval)",
        &[&user, &bet, &age],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE user_balances SET balance = balance - 10 WHERE user_id = $1",
        &[&user],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    bet
}

#[tokio::test]
async fn months_exist_ahead_after_migrate_and_after_maintenance() {
    let db = common::TestDb::new().await;
    let c = &db.client;
    let premake = common::test_settings()
        .maintenance
        .partitions
        .premake_months;
    assert!(premake >= 1);
    // The template was migrated today or earlier: at least the current month and the ones
    // the template's premake reached are there; maintenance brings the rest.
    let m = settings(|_| {});
    let summary = maintain(&db, &m).await;
    assert_months_ahead(c, premake, "after maintenance").await;
    assert_eq!(summary.partitions.len(), 3, "{summary:?}");
    for step in &summary.partitions {
        assert!(step.detached.is_empty(), "no retention reached: {step:?}");
    }
    // A longer premake in the configuration reaches pg_partman at the next run.
    let longer = settings(|p| p.premake_months = premake + 3);
    let summary = maintain(&db, &longer).await;
    assert_months_ahead(c, premake + 3, "after maintenance with a longer premake").await;
    for step in &summary.partitions {
        assert_eq!(step.created.len(), 3, "three more months of {step:?}");
    }
    // Rows of the months ahead land in their month, not in the default partition.
    let part: String = c
        .query_one(
            "WITH a AS (INSERT INTO audit_log (table_name, record_id, action, timestamp)
                        VALUES ('markets', gen_random_uuid(), 'UPDATE',
                                now() + interval '2 months') RETURNING tableoid)
             SELECT tableoid::regclass::text FROM a",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let expected = format!("audit_log_p{}", month(c, 2).await.replace('-', "_"));
    assert_eq!(part, expected);
}

#[tokio::test]
async fn a_fresh_database_is_partitioned_ahead_by_migrate_alone() {
    let db = common::TestDb::empty().await;
    winzo::db::migrate(&db.url).await.expect("migrate");
    // create_parent's premake (4) from today's month.
    assert_months_ahead(&db.client, 4, "after migrate").await;
    for table in PARTITIONED {
        let kind: String = db
            .client
            .query_one(
                "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(kind, "p", "{table} is a partitioned table");
    }
}

#[tokio::test]
async fn rows_written_before_the_migration_survive_it_and_old_months_are_detached() {
    let db = common::TestDb::empty().await;
    winzo::db::migrate_to(&db.url, Some(44))
        .await
        .expect("migrate to V44");
    let mut c = {
        let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    };
    let (selection, user) = book(&c).await;
    // The ledger as V44 left it: a deposit, then bets five months ago and today.
    c.execute(
        "INSERT INTO transactions (user_id, type, amount, status, reference, created_at)
         VALUES ($1, 'deposit', 100, 'completed', 'dep-1', now() - interval '5 months')",
        &[&user],
    )
    .await
    .unwrap();
    let old = old_bet(&mut c, user, selection, "k-old", "5 months").await;
    let new = old_bet(&mut c, user, selection, "k-new", "0 seconds").await;
    // A settlement-like update of the old bet (audited), and an audit row of last spring.
    c.execute(
        "UPDATE bets SET metadata = '{\"note\": \"before partitioning\"}' WHERE id = $1",
        &[&old],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO audit_log (table_name, record_id, action, timestamp)
         VALUES ('markets', gen_random_uuid(), 'UPDATE', now() - interval '5 months')",
        &[],
    )
    .await
    .unwrap();
    let before = counts(&c).await;
    assert_eq!(&before[..3], &[2, 2, 3]);

    let applied = winzo::db::migrate(&db.url)
        .await
        .expect("migrate to the head");
    assert!(applied >= 5, "V45..V49 applied: {applied}");

    let after = counts(&c).await;
    assert_eq!(
        after, before,
        "bets, legs, transactions, audit rows carried over"
    );
    // Each in its month: the old bet and its debit five months back, not in the default.
    let old_month = month(&c, -5).await.replace('-', "_");
    let (bet_part, debit_part, meta): (String, String, serde_json::Value) = {
        let r = c
            .query_one(
                "SELECT b.tableoid::regclass::text, t.tableoid::regclass::text, b.metadata
                 FROM bets b JOIN transactions t ON t.related_bet_id = b.id
                 WHERE b.id = $1",
                &[&old],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(bet_part, format!("bets_p{old_month}"));
    assert_eq!(debit_part, format!("transactions_p{old_month}"));
    assert_eq!(meta["note"], "before partitioning");
    let keyed: i64 = c
        .query_one(
            "SELECT count(*) FROM bet_keys WHERE id = ANY($1)",
            &[&vec![old, new]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keyed, 2, "every carried bet has its key");
    // The ledger still balances (what `winzo check-ledger` checks).
    let pooled = pool(&db).get().await.unwrap();
    assert!(winzo::db::wallet::ledger_mismatches(&pooled)
        .await
        .unwrap()
        .is_empty());
    assert!(winzo::db::wallet::bet_ledger_violations(&pooled)
        .await
        .unwrap()
        .is_empty());
    assert!(winzo::db::settlement::payout_mismatches(&pooled)
        .await
        .unwrap()
        .is_empty());
    drop(pooled);
    // The old bet's key still refuses a second bet, five months and a partition later.
    let err = c
        .execute(
            "INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win,
                               idempotency_key)
             VALUES ($1, 'single', 'accepted', 10, 2.5, 25, 'k-old')",
            &[&user],
        )
        .await
        .expect_err("a repeated key is refused");
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(
        err.as_db_error().and_then(|d| d.constraint()),
        Some("bets_user_idempotency_key")
    );

    // Retention of two months for every table: the month of five months ago leaves the
    // three tables, detached and kept; nothing is lost, this month stays.
    let m = settings(|p| {
        p.audit_log_retention = Some("2 months".into());
        p.bets_retention = Some("2 months".into());
        p.transactions_retention = Some("2 months".into());
        p.keep_detached = true;
    });
    let summary = maintain(&db, &m).await;
    for table in PARTITIONED {
        let step = summary
            .partitions
            .iter()
            .find(|s| s.table == table)
            .unwrap();
        let old_part = format!("{table}_p{old_month}");
        assert!(step.detached.contains(&old_part), "{step:?}");
        assert!(!attached(&c, &old_part).await, "{old_part} detached");
        assert!(
            months(&c, table).await.contains(&month(&c, 0).await),
            "this month of {table} stays"
        );
    }
    let kept: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM bets_p{old_month} WHERE id = $1"),
            &[&old],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "a detached month keeps its rows");
    let visible: i64 = c
        .query_one("SELECT count(*) FROM bets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 1, "only this month's bet is left in bets");
    // How to put it back (docs/operations.md): attach it again.
    c.batch_execute(&format!(
        "ALTER TABLE bets ATTACH PARTITION bets_p{old_month} FOR VALUES
           FROM (date_trunc('month', now() - interval '5 months'))
           TO (date_trunc('month', now() - interval '4 months'))"
    ))
    .await
    .unwrap();
    let visible: i64 = c
        .query_one("SELECT count(*) FROM bets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 2, "reattached");
}

#[tokio::test]
async fn keys_hold_across_months_and_the_ledger_still_refuses_deletes() {
    let mut db = common::TestDb::new().await;
    let (selection, user) = book(&db.client).await;
    let today = old_bet(&mut db.client, user, selection, "same", "0 seconds").await;
    // The same key on a bet dated two months back (another partition: the default one, as
    // the template's months start at its own migration) is refused by bet_keys.
    let err = db
        .client
        .execute(
            "INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win,
                               placed_at, idempotency_key)
             VALUES ($1, 'single', 'accepted', 10, 2.5, 25, now() - interval '2 months', 'same')",
            &[&user],
        )
        .await
        .expect_err("same key, other month");
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(
        err.as_db_error().and_then(|d| d.constraint()),
        Some("bets_user_idempotency_key")
    );
    // The same id in another month: refused by the key table's primary key.
    let err = db
        .client
        .execute(
            "INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win,
                               placed_at)
             VALUES ($1, $2, 'single', 'accepted', 10, 2.5, 25, now() + interval '1 month')",
            &[&today, &user],
        )
        .await
        .expect_err("same id, other month");
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    // A transaction's reference is unique across months.
    let err = db
        .client
        .execute(
            "INSERT INTO transactions (user_id, type, amount, status, reference, created_at)
             VALUES ($1, 'deposit', 5, 'completed', 'bet:' || $2::uuid::text,
                     now() + interval '1 month')",
            &[&user, &today],
        )
        .await
        .expect_err("same reference, other month");
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(
        err.as_db_error().and_then(|d| d.constraint()),
        Some("transactions_reference_key")
    );
    // Deletes of the ledger, and of its keys, are still refused.
    for sql in [
        "DELETE FROM bets",
        "DELETE FROM transactions",
        "DELETE FROM bet_keys",
        "DELETE FROM transaction_keys",
    ] {
        let err = db.client.execute(sql, &[]).await.expect_err(sql);
        assert_eq!(err.code(), Some(&SqlState::RESTRICT_VIOLATION), "{sql}");
    }
    // A bet cannot move to another month, nor change its key.
    let err = db
        .client
        .execute(
            "UPDATE bets SET placed_at = placed_at - interval '1 month' WHERE id = $1",
            &[&today],
        )
        .await
        .expect_err("placed_at is fixed");
    assert_eq!(err.code(), Some(&SqlState::RESTRICT_VIOLATION));
    // A lookup by key reads one partition (the key's placed_at prunes the others).
    let pooled = pool(&db).get().await.unwrap();
    let keyed = winzo::db::bets::find_by_key(&pooled, user.into(), "same")
        .await
        .unwrap()
        .expect("found by its key");
    assert_eq!(keyed.answer.id.as_uuid(), today);
    assert_eq!(keyed.answer.legs.len(), 1);
}

/// V71: the placement check reads a bet's debit only in the months between its placed_at
/// and its transaction's start, so a stake debit dated outside them is refused when written
/// (it would escape the check), while a bet loaded back in time with its debit dated like
/// it still commits.
#[tokio::test]
async fn a_stake_debit_is_dated_within_its_bets_months() {
    let mut db = common::TestDb::new().await;
    let (selection, user) = book(&db.client).await;
    let old = old_bet(&mut db.client, user, selection, "loaded", "3 months").await;
    let placed: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM bets b JOIN transactions t ON t.related_bet_id = b.id
             WHERE b.id = $1 AND t.type = 'bet_debit'",
            &[&old],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(placed, 1, "a bet placed back in time keeps its debit");

    // Today's bet with a second debit dated two months back: refused at the insert.
    for (age, what) in [("2 months", "back"), ("-2 months", "ahead")] {
        let tx = db.client.transaction().await.unwrap();
        let bet: Uuid = tx
            .query_one(
                "INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win,
                                   placed_at, idempotency_key)
                 VALUES ($1, 'single', 'accepted', 10, 2.5, 25, now(), $2) RETURNING id",
                &[&user, &format!("dated-{what}")],
            )
            .await
            .unwrap()
            .get(0);
        tx.execute(
            "INSERT INTO bet_selections (bet_id, selection_id, odds) VALUES ($1, $2, 2.5)",
            &[&bet, &selection],
        )
        .await
        .unwrap();
        tx.execute(
            "INSERT INTO transactions (user_id, type, amount, status, reference, related_bet_id)
             VALUES ($1, 'bet_debit', -10, 'completed', 'bet:' || $2::uuid::text, $2::uuid)",
            &[&user, &bet],
        )
        .await
        .unwrap();
        let err = tx
            .execute(
                "INSERT INTO transactions (user_id, type, amount, status, related_bet_id,
                                           created_at)
                 VALUES ($1, 'bet_debit', -10, 'completed', $2, now() - $3::text::interval)",
                &[&user, &bet, &age],
            )
            .await
            .expect_err(what);
        assert_eq!(
            err.code(),
            Some(&SqlState::CHECK_VIOLATION),
            "{what}: {err}"
        );
        assert_eq!(
            err.as_db_error().and_then(|d| d.constraint()),
            Some("transactions_bet_debit_dated_check"),
            "{what}"
        );
        tx.rollback().await.unwrap();
    }

    // Two debits of today for one bet are still found by the check at commit.
    let tx = db.client.transaction().await.unwrap();
    let bet: Uuid = tx
        .query_one(
            "INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win,
                               placed_at, idempotency_key)
             VALUES ($1, 'single', 'accepted', 10, 2.5, 25, now(), 'twice') RETURNING id",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    tx.execute(
        "INSERT INTO bet_selections (bet_id, selection_id, odds) VALUES ($1, $2, 2.5)",
        &[&bet, &selection],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO transactions (user_id, type, amount, status, related_bet_id)
         VALUES ($1, 'bet_debit', -10, 'completed', $2), ($1, 'bet_debit', -10, 'completed', $2)",
        &[&user, &bet],
    )
    .await
    .unwrap();
    let err = tx.commit().await.expect_err("two debits");
    assert_eq!(
        err.as_db_error().and_then(|d| d.constraint()),
        Some("bets_stake_debit_check"),
        "{err}"
    );
}
