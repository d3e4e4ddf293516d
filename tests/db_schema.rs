//! The migrated schema holds everything the seed design names (types, tables, indexes,
//! functions, named constraints), and its functions and search documents answer correctly on
//! data the tests insert. See docs/schema.md.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_postgres::Client;
use uuid::Uuid;

/// Every enum of the seed, with its labels in declaration order.
const ENUM_TYPES: &[(&str, &[&str])] = &[
    ("user_role", &["user", "admin", "moderator", "support"]),
    ("user_status", &["active", "suspended", "banned", "pending"]),
    (
        "verification_status",
        &["unverified", "pending", "verified", "rejected"],
    ),
    ("odds_format", &["american", "decimal", "fractional"]),
    (
        "event_status",
        &[
            "scheduled",
            "live",
            "halftime",
            "finished",
            "postponed",
            "cancelled",
            "suspended",
        ],
    ),
    (
        "market_type",
        &[
            "moneyline",
            "point_spread",
            "total_points",
            "first_half",
            "prop_bet",
            "futures",
        ],
    ),
    (
        "market_status",
        &["open", "suspended", "closed", "settled", "voided"],
    ),
    ("bet_type", &["single", "parlay", "system"]),
    (
        "bet_status",
        &[
            "pending",
            "accepted",
            "rejected",
            "settled_win",
            "settled_loss",
            "settled_push",
            "cancelled",
            "voided",
            // Not in the seed: the engine's cash-out (V60) and trader referral (V61).
            "cashed_out",
            "referred",
        ],
    ),
    ("selection_result", &["win", "loss", "push", "void"]),
    (
        "transaction_type",
        &[
            "deposit",
            "withdrawal",
            "bet_debit",
            "bet_credit",
            "bonus",
            "adjustment",
            "fee",
            "refund",
        ],
    ),
    (
        "transaction_status",
        &[
            "pending",
            "processing",
            "completed",
            "failed",
            "cancelled",
            "reversed",
        ],
    ),
    (
        "payment_method_type",
        &[
            "credit_card",
            "debit_card",
            "bank_transfer",
            "e_wallet",
            "cryptocurrency",
        ],
    ),
    ("audit_action", &["INSERT", "UPDATE", "DELETE"]),
    (
        "event_severity",
        &["debug", "info", "warning", "error", "critical"],
    ),
];

/// The seed's 16 tables, then the engine's additions (V4).
const TABLES: &[&str] = &[
    "users",
    "user_profiles",
    "user_preferences",
    "sports",
    "leagues",
    "teams",
    "events",
    "markets",
    "selections",
    "bets",
    "bet_selections",
    "user_balances",
    "transactions",
    "payment_methods",
    "audit_log",
    "system_events",
    "feed_sequences",
];

/// Every index the seed names ("Indexing Strategy" and the audit tables), then the
/// uniqueness indexes of the corrections and of V4.
const INDEXES: &[&str] = &[
    "idx_events_sport_start_time",
    "idx_events_status_start_time",
    "idx_markets_event_active",
    "idx_selections_market_active",
    "idx_bets_user_placed_at",
    "idx_bets_status_placed_at",
    "idx_transactions_user_created_at",
    "idx_transactions_type_status",
    "idx_events_sport_league_start",
    "idx_markets_event_type_active",
    "idx_bets_user_status_type",
    "idx_events_live",
    "idx_markets_open",
    "idx_teams_search",
    "idx_events_search",
    "idx_audit_log_table_record",
    "idx_audit_log_user_timestamp",
    "idx_audit_log_timestamp",
    "idx_system_events_type_timestamp",
    "idx_system_events_severity_timestamp",
    "users_email_lower_key",
    "users_username_lower_key",
    "markets_event_line_key",
    "markets_event_named_key",
    "bets_user_idempotency_key",
    "transactions_user_idempotency_key",
    "events_provider_event_ref_key",
];

/// The seed's functions (check_bet_placement is now a constraint trigger's function).
const FUNCTIONS: &[&str] = &[
    "get_events_with_markets",
    "get_user_betting_history",
    "check_bet_placement",
    "daily_maintenance",
];

/// Constraints the seed names, under the same names (the fk_ ones are the inline foreign
/// keys, no longer duplicated), each exactly once.
const CONSTRAINTS: &[(&str, &str)] = &[
    ("users", "users_username_check"),
    ("users", "users_email_check"),
    ("user_profiles", "fk_user_profiles_user_id"),
    ("events", "events_different_teams"),
    ("events", "fk_events_home_team"),
    ("events", "fk_events_away_team"),
    ("selections", "selections_odds_positive"),
    ("selections", "selections_probability_valid"),
    ("bets", "bets_stake_positive"),
    ("bets", "bets_odds_positive"),
    ("bets", "bets_potential_win_positive"),
    ("bets", "fk_bets_user_id"),
    ("bets", "trigger_check_bet_placement"),
    ("bet_selections", "bet_selections_odds_positive"),
    ("user_balances", "user_balances_balance_non_negative"),
    ("user_balances", "user_balances_bonus_non_negative"),
    ("transactions", "transactions_amount_not_zero"),
    ("transactions", "transactions_fees_non_negative"),
    ("transactions", "fk_transactions_payment_method"),
];

async fn names(client: &Client, sql: &str) -> BTreeSet<String> {
    let rows = client.query(sql, &[]).await.expect("catalogue query");
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

fn missing<'a>(wanted: impl IntoIterator<Item = &'a str>, have: &BTreeSet<String>) -> Vec<&'a str> {
    wanted.into_iter().filter(|w| !have.contains(*w)).collect()
}

#[tokio::test]
async fn every_type_table_index_and_function_of_the_seed_exists() {
    let db = common::TestDb::new().await;
    let c = &db.client;

    let types = names(
        c,
        "SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE n.nspname = 'public' AND t.typtype = 'e'",
    )
    .await;
    assert_eq!(
        missing(ENUM_TYPES.iter().map(|(t, _)| *t), &types),
        Vec::<&str>::new()
    );
    for (ty, labels) in ENUM_TYPES {
        let row = c
            .query_one(
                "SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) \
                 FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = $1",
                &[ty],
            )
            .await
            .unwrap();
        let have: Vec<String> = row.get(0);
        assert_eq!(have, *labels, "labels of enum {ty}");
    }

    let tables = names(
        c,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(missing(TABLES.iter().copied(), &tables), Vec::<&str>::new());

    let indexes = names(
        c,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(
        missing(INDEXES.iter().copied(), &indexes),
        Vec::<&str>::new()
    );

    let functions = names(
        c,
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'public'",
    )
    .await;
    assert_eq!(
        missing(FUNCTIONS.iter().copied(), &functions),
        Vec::<&str>::new()
    );
}

#[tokio::test]
async fn seed_constraints_exist_once_under_their_names_and_the_placement_check_is_deferred() {
    let db = common::TestDb::new().await;
    let c = &db.client;

    for (table, name) in CONSTRAINTS {
        let count: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_constraint WHERE conname = $1 AND conrelid = $2::text::regclass",
                &[name, table],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, 1, "constraint {name} on {table}");
    }

    // The draft declared the events -> teams keys twice (inline and ALTER TABLE): one each now.
    let team_fks: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_constraint \
             WHERE contype = 'f' AND conrelid = 'events'::regclass AND confrelid = 'teams'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(team_fks, 2);

    let row = c
        .query_one(
            "SELECT tgdeferrable, tginitdeferred FROM pg_trigger \
             WHERE tgname = 'trigger_check_bet_placement' AND tgrelid = 'bets'::regclass",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "placement check is DEFERRABLE");
    assert!(
        row.get::<_, bool>(1),
        "placement check is INITIALLY DEFERRED"
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

async fn sport(c: &Client, slug: &str) -> Uuid {
    c.query_one(
        "INSERT INTO sports (name, display_name, slug) VALUES ($1, $1, $1) RETURNING id",
        &[&slug],
    )
    .await
    .unwrap()
    .get(0)
}

async fn team(c: &Client, sport_id: Uuid, name: &str, display_name: &str) -> Uuid {
    let slug = name.to_lowercase().replace(' ', "-");
    c.query_one(
        "INSERT INTO teams (sport_id, name, display_name, slug) VALUES ($1, $2, $3, $4) RETURNING id",
        &[&sport_id, &name, &display_name, &slug],
    )
    .await
    .unwrap()
    .get(0)
}

async fn event(c: &Client, sport_id: Uuid, home: Uuid, away: Uuid, start: DateTime<Utc>) -> Uuid {
    c.query_one(
        "INSERT INTO events (sport_id, home_team_id, away_team_id, start_time) \
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&sport_id, &home, &away, &start],
    )
    .await
    .unwrap()
    .get(0)
}

/// A market of the given type (a literal from the tests) with one selection per price.
async fn market(c: &Client, event_id: Uuid, kind: &str, name: &str, active: bool) -> Uuid {
    c.query_one(
        "INSERT INTO markets (event_id, type, name, is_active) \
         VALUES ($1, $2::text::market_type, $3, $4) RETURNING id",
        &[&event_id, &kind, &name, &active],
    )
    .await
    .unwrap()
    .get(0)
}

async fn selection(c: &Client, market_id: Uuid, name: &str, odds: Decimal) -> Uuid {
    c.query_one(
        "INSERT INTO selections (market_id, name, odds) VALUES ($1, $2, $3) RETURNING id",
        &[&market_id, &name, &odds],
    )
    .await
    .unwrap()
    .get(0)
}

async fn user_with_balance(c: &Client, username: &str, balance: Decimal) -> Uuid {
    let email = format!("{username}@example.com");
    let id: Uuid = c
        .query_one(
            "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, 'x') RETURNING id",
            &[&username, &email],
        )
        .await
        .unwrap()
        .get(0);
    c.execute(
        "INSERT INTO user_balances (user_id, balance) VALUES ($1, $2)",
        &[&id, &balance],
    )
    .await
    .unwrap();
    id
}

/// Places a bet the way the engine does: bet, legs, stake debit and balance update in one
/// transaction. Total odds are the product of the legs' odds.
async fn place_bet(
    c: &mut Client,
    user_id: Uuid,
    kind: &str,
    stake: Decimal,
    legs: &[(Uuid, Decimal)],
    placed_at: DateTime<Utc>,
) -> Uuid {
    let total_odds: Decimal = legs.iter().map(|(_, o)| *o).product();
    let potential_win = (stake * total_odds).round_dp(2);
    let tx = c.transaction().await.unwrap();
    let bet_id: Uuid = tx
        .query_one(
            "INSERT INTO bets (user_id, type, status, stake, total_odds, potential_win, placed_at) \
             VALUES ($1, $2::text::bet_type, 'accepted', $3, $4, $5, $6) RETURNING id",
            &[&user_id, &kind, &stake, &total_odds.round_dp(4), &potential_win, &placed_at],
        )
        .await
        .unwrap()
        .get(0);
    for (selection_id, odds) in legs {
        tx.execute(
            "INSERT INTO bet_selections (bet_id, selection_id, odds) VALUES ($1, $2, $3)",
            &[&bet_id, selection_id, odds],
        )
        .await
        .unwrap();
    }
    tx.execute(
        "INSERT INTO transactions (user_id, type, amount, status, related_bet_id) \
         VALUES ($1, 'bet_debit', $2, 'completed', $3)",
        &[&user_id, &-stake, &bet_id],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE user_balances SET balance = balance - $2 WHERE user_id = $1",
        &[&user_id, &stake],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    bet_id
}

// ---------------------------------------------------------------------------------------------
// Query functions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_events_with_markets_pages_upcoming_and_live_events_in_start_order() {
    let db = common::TestDb::new().await;
    let c = &db.client;
    let now = Utc::now();
    let football = sport(c, "football").await;
    let tennis = sport(c, "tennis").await;
    let ars = team(c, football, "Arsenal", "Arsenal FC").await;
    let che = team(c, football, "Chelsea", "Chelsea FC").await;
    let nad = team(c, tennis, "Nadal", "Rafael Nadal").await;
    let fed = team(c, tennis, "Federer", "Roger Federer").await;

    let first = event(c, football, ars, che, now + Duration::hours(1)).await;
    let tie_a = event(c, football, che, ars, now + Duration::hours(3)).await;
    let tie_b = event(c, football, ars, che, now + Duration::hours(3)).await;
    // Still in play two days after kick-off: listed although it started before "a day ago".
    let marathon = event(c, football, che, ars, now + Duration::hours(5)).await;
    c.execute(
        "UPDATE events SET start_time = now() - interval '2 days', status = 'live' WHERE id = $1",
        &[&marathon],
    )
    .await
    .unwrap();
    // Finished three days ago: not listed.
    let old = event(c, football, ars, che, now + Duration::hours(6)).await;
    c.execute(
        "UPDATE events SET start_time = now() - interval '3 days', status = 'finished' \
         WHERE id = $1",
        &[&old],
    )
    .await
    .unwrap();
    // Another sport: not listed.
    event(c, tennis, nad, fed, now + Duration::hours(2)).await;

    market(c, first, "moneyline", "Match result", true).await;
    market(c, first, "prop_bet", "First scorer", true).await;
    market(c, first, "prop_bet", "Anytime scorer", false).await; // inactive: not counted
    market(c, tie_b, "moneyline", "Match result", true).await;

    let rows = c
        .query(
            "SELECT * FROM get_events_with_markets($1, 20, 0)",
            &[&football],
        )
        .await
        .unwrap();
    let (tie_lo, tie_hi) = if tie_a < tie_b {
        (tie_a, tie_b)
    } else {
        (tie_b, tie_a)
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get("event_id")).collect();
    assert_eq!(ids, vec![marathon, first, tie_lo, tie_hi]);

    let counts: Vec<i64> = rows.iter().map(|r| r.get("market_count")).collect();
    let tie_lo_count = if tie_lo == tie_b { 1 } else { 0 };
    assert_eq!(counts, vec![0, 2, tie_lo_count, 1 - tie_lo_count]);

    let first_row = &rows[1];
    assert_eq!(first_row.get::<_, String>("home_team_name"), "Arsenal FC");
    assert_eq!(first_row.get::<_, String>("away_team_name"), "Chelsea FC");
    let status: String = c
        .query_one(
            "SELECT status::text FROM get_events_with_markets($1, 1, 0)",
            &[&football],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "live");

    // Pages of two neither repeat nor skip events that share a kick-off time.
    let mut paged = Vec::new();
    for offset in [0, 2] {
        let page = c
            .query(
                "SELECT event_id FROM get_events_with_markets($1, 2, $2)",
                &[&football, &offset],
            )
            .await
            .unwrap();
        paged.extend(page.iter().map(|r| r.get::<_, Uuid>(0)));
    }
    assert_eq!(paged, ids);
}

#[tokio::test]
async fn get_user_betting_history_returns_newest_bets_first_with_their_legs() {
    let mut db = common::TestDb::new().await;
    let now = Utc::now();
    let (alice, bob, sel_ars, sel_che) = {
        let c = &db.client;
        let football = sport(c, "football").await;
        let ars = team(c, football, "Arsenal", "Arsenal FC").await;
        let che = team(c, football, "Chelsea", "Chelsea FC").await;
        let e1 = event(c, football, ars, che, now + Duration::hours(2)).await;
        let e2 = event(c, football, che, ars, now + Duration::days(7)).await;
        let m1 = market(c, e1, "moneyline", "Match result", true).await;
        let m2 = market(c, e2, "moneyline", "Match result", true).await;
        let sel_ars = selection(c, m1, "Arsenal", dec!(2.1)).await;
        let sel_che = selection(c, m2, "Chelsea", dec!(1.8)).await;
        let alice = user_with_balance(c, "alice", dec!(100)).await;
        let bob = user_with_balance(c, "bob", dec!(100)).await;
        (alice, bob, sel_ars, sel_che)
    };
    let c = &mut db.client;
    let oldest = place_bet(
        c,
        alice,
        "single",
        dec!(5),
        &[(sel_ars, dec!(2.1))],
        now - Duration::hours(3),
    )
    .await;
    let parlay = place_bet(
        c,
        alice,
        "parlay",
        dec!(10),
        &[(sel_ars, dec!(2.1)), (sel_che, dec!(1.8))],
        now - Duration::hours(2),
    )
    .await;
    let newest = place_bet(
        c,
        alice,
        "single",
        dec!(7.5),
        &[(sel_che, dec!(1.8))],
        now - Duration::hours(1),
    )
    .await;
    place_bet(c, bob, "single", dec!(1), &[(sel_che, dec!(1.8))], now).await;

    let rows = c
        .query(
            "SELECT bet_id, bet_type::text, stake, total_odds, status::text, selections \
             FROM get_user_betting_history($1, 2)",
            &[&alice],
        )
        .await
        .unwrap();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![newest, parlay], "newest first, limited to 2");

    assert_eq!(rows[1].get::<_, String>(1), "parlay");
    assert_eq!(rows[1].get::<_, Decimal>(2), dec!(10.00));
    assert_eq!(rows[1].get::<_, Decimal>(3), dec!(3.7800));
    assert_eq!(rows[1].get::<_, String>(4), "accepted");
    let legs: serde_json::Value = rows[1].get(5);
    let legs = legs.as_array().expect("legs are a JSON array");
    assert_eq!(legs.len(), 2);
    let mut names: Vec<&str> = legs
        .iter()
        .map(|l| l["selection_name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["Arsenal", "Chelsea"]);
    for leg in legs {
        let expected = if leg["selection_name"] == "Arsenal" {
            2.1
        } else {
            1.8
        };
        assert_eq!(leg["odds"].as_f64(), Some(expected));
        assert!(leg["result"].is_null());
        assert!(leg["selection_id"].is_string());
    }

    let all = c
        .query("SELECT bet_id FROM get_user_betting_history($1)", &[&alice])
        .await
        .unwrap();
    let all: Vec<Uuid> = all.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        all,
        vec![newest, parlay, oldest],
        "default limit returns all three"
    );
}

// ---------------------------------------------------------------------------------------------
// Full-text search
// ---------------------------------------------------------------------------------------------

/// The exact expression of idx_teams_search: a query must repeat it to use the index.
const TEAM_SEARCH: &str = "SELECT id FROM teams \
    WHERE to_tsvector('english', name || ' ' || display_name) @@ plainto_tsquery('english', $1)";
const EVENT_SEARCH: &str =
    "SELECT id FROM events WHERE search_document @@ plainto_tsquery('english', $1)";

async fn ids(c: &Client, sql: &str, q: &str) -> Vec<Uuid> {
    c.query(sql, &[&q])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort_unstable();
    v
}

async fn plan(c: &Client, sql: &str) -> String {
    let sql = format!("EXPLAIN {}", sql.replace("$1", "'word'"));
    let rows = c.query(sql.as_str(), &[]).await.unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_team_is_found_by_a_word_of_its_name_through_idx_teams_search() {
    let db = common::TestDb::new().await;
    let c = &db.client;
    let football = sport(c, "football").await;
    let united = team(c, football, "Manchester United", "Man Utd").await;
    let city = team(c, football, "Manchester City", "Man City").await;
    team(c, football, "Liverpool", "Liverpool FC").await;

    assert_eq!(ids(c, TEAM_SEARCH, "united").await, vec![united]);
    // display_name is searched too; the English stemmer matches "Cities" to "City".
    assert_eq!(ids(c, TEAM_SEARCH, "cities").await, vec![city]);
    assert_eq!(
        sorted(ids(c, TEAM_SEARCH, "Manchester").await),
        sorted(vec![united, city])
    );

    c.batch_execute("SET enable_seqscan = off").await.unwrap();
    assert!(plan(c, TEAM_SEARCH).await.contains("idx_teams_search"));
    assert!(plan(c, EVENT_SEARCH).await.contains("idx_events_search"));
}

#[tokio::test]
async fn an_event_is_found_by_a_team_word_and_its_document_follows_a_team_rename() {
    let db = common::TestDb::new().await;
    let c = &db.client;
    let now = Utc::now();
    let football = sport(c, "football").await;
    let ars = team(c, football, "Arsenal", "Arsenal FC").await;
    let che = team(c, football, "Chelsea", "Chelsea FC").await;
    let liv = team(c, football, "Liverpool", "Liverpool FC").await;
    let home = event(c, football, che, ars, now + Duration::hours(2)).await;
    let away = event(c, football, liv, che, now + Duration::days(3)).await;
    let other = event(c, football, ars, liv, now + Duration::days(5)).await;

    let expected = sorted(vec![home, away]);
    assert_eq!(
        sorted(ids(c, EVENT_SEARCH, "chelsea").await),
        expected,
        "home and away events of the team"
    );
    assert!(ids(c, EVENT_SEARCH, "wanderers").await.is_empty());

    c.execute(
        "UPDATE teams SET name = 'Wanderers', display_name = 'Wanderers FC' WHERE id = $1",
        &[&che],
    )
    .await
    .unwrap();

    assert!(
        ids(c, EVENT_SEARCH, "chelsea").await.is_empty(),
        "old name is gone"
    );
    assert_eq!(
        sorted(ids(c, EVENT_SEARCH, "wanderers").await),
        expected,
        "new name reaches both events"
    );
    assert_eq!(ids(c, EVENT_SEARCH, "arsenal liverpool").await, vec![other]);

    // Changing a team of an event rewrites its document as well.
    c.execute(
        "UPDATE events SET away_team_id = $2 WHERE id = $1",
        &[&other, &che],
    )
    .await
    .unwrap();
    assert_eq!(
        sorted(ids(c, EVENT_SEARCH, "arsenal wanderers").await),
        sorted(vec![other, home])
    );
}

// ---------------------------------------------------------------------------------------------
// Upkeep
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn updated_at_moves_on_update() {
    let db = common::TestDb::new().await;
    let c = &db.client;
    let football = sport(c, "football").await;
    c.execute(
        "UPDATE sports SET updated_at = now() - interval '1 hour' WHERE id = $1",
        &[&football],
    )
    .await
    .unwrap();
    let row = c
        .query_one(
            "UPDATE sports SET display_name = 'Soccer' WHERE id = $1 \
             RETURNING updated_at > now() - interval '1 minute'",
            &[&football],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
}

#[tokio::test]
async fn daily_maintenance_deletes_past_retention_and_reports_the_counts() {
    // Since V49 the audit trail's retention is whole months detached by pg_partman (tests/
    // db_partitions.rs), no longer a DELETE here: an old audit row stays.
    let db = common::TestDb::new().await;
    let c = &db.client;
    c.batch_execute(
        "INSERT INTO audit_log (table_name, record_id, action, timestamp) VALUES \
           ('markets', gen_random_uuid(), 'UPDATE', now() - interval '13 months'), \
           ('markets', gen_random_uuid(), 'UPDATE', now() - interval '11 months'); \
         INSERT INTO system_events (event_type, message, created_at) VALUES \
           ('feed_gap', 'old', now() - interval '7 months'), \
           ('feed_gap', 'old', now() - interval '200 days'), \
           ('feed_gap', 'recent', now() - interval '5 months');",
    )
    .await
    .unwrap();

    let summary: serde_json::Value = c
        .query_one("SELECT daily_maintenance()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(summary["deleted"].get("audit_log").is_none(), "{summary}");
    assert_eq!(summary["deleted"]["system_events"], 2);

    let left: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM system_events)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 3);
}
