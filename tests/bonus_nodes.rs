//! Bonus state across engine nodes (issue 17): two `winzo serve` processes with the
//! cluster on share one database and Redis. The bettor's wallet partition (the only one)
//! is held by node A, whose shard caches the account while one of its bets waits out an in-play bet
//! delay (a cached account with a stake in flight is trusted, not read again). A bonus
//! granted through node B reaches A's shard as a `b:<user>` notice on the Redis channel
//! (`winzo_wallet_bonus_notices_total` on A), and A's next bet, still during the first
//! bet's delay, may be staked with that bonus money; the ledger stays clean.
mod common;
mod markets_support;

use std::time::Duration;

use common::engine::{free_port, spawn_engine, wait_ready, Engine};
use markets_support::{account, create_catalogue, create_event, get_auth, post};
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use winzo::auth::Role;

fn node(db_url: &str, id: &str, port: u16) -> (Engine, String) {
    let base = format!("http://127.0.0.1:{port}");
    let engine = spawn_engine(
        db_url,
        port,
        &[
            ("WINZO__CLUSTER__ENABLED", "true"),
            ("WINZO__CLUSTER__NODE_ID", id),
            ("WINZO__CLUSTER__ADVERTISE_ADDR", &base),
            ("WINZO__CLUSTER__LEASE_TTL_MS", "3000"),
            ("WINZO__CLUSTER__RENEW_INTERVAL_MS", "250"),
            ("WINZO__CLUSTER__SAFETY_MARGIN_MS", "500"),
            ("WINZO__CLUSTER__WALLET_PARTITIONS", "1"),
        ],
    );
    (engine, base)
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The node holding a wallet partition (the tests run with one), from the cluster view.
async fn partition_owner(http: &reqwest::Client, base: &str, admin: &str) -> Option<String> {
    let (_, view) = get_auth(http, format!("{base}/api/v1/cluster"), admin).await;
    let nodes = view["nodes"].as_array()?;
    nodes
        .iter()
        .find(|n| n["wallet_partitions_owned"] == 1)
        .and_then(|n| n["node_id"].as_str().map(str::to_string))
}

async fn place(http: &reqwest::Client, base: &str, token: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/bets"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_bonus_granted_through_one_node_is_seen_by_the_cached_account_of_another() {
    let db = common::TestDb::new().await;
    let http = reqwest::Client::new();
    let (_one, one) = node(&db.url, "node-a", free_port());
    let (_two, two) = node(&db.url, "node-b", free_port());
    wait_ready(&http, &one).await;
    wait_ready(&http, &two).await;
    // One wallet partition: whichever node takes it writes every balance, and keeps it
    // (its fair share of one partition over two nodes is that one). A is that node.
    let (_, admin) = account(&db.client, Role::Admin).await;
    common::wait_until(
        "a node to hold the wallet partition",
        Duration::from_secs(15),
        || {
            let (http, one, admin) = (http.clone(), one.clone(), admin.clone());
            async move { partition_owner(&http, &one, &admin).await.is_some() }
        },
    )
    .await;
    let owner = partition_owner(&http, &one, &admin).await;
    let (a, b) = if owner.as_deref() == Some("node-a") {
        (one, two)
    } else {
        (two, one)
    };

    let (_, trader) = account(&db.client, Role::Moderator).await;
    let catalogue = create_catalogue(&http, &a, &trader).await;
    let book = create_event(&http, &a, &trader, &catalogue).await;
    // The total-goals market in play with a 4 s bet delay; the match winner without one.
    let (s, r) = markets_support::patch_settings(
        &http,
        &a,
        &trader,
        book.markets[1],
        json!({"bet_delay_ms": 4000}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = post(
        &http,
        format!("{a}/api/v1/trading/events/{}/status", book.event_id),
        &trader,
        json!({"status": "live"}),
    )
    .await;
    assert_eq!(s, 200, "{r}");

    let user = common::fixtures::funded_user(&db.client, dec!(100.00)).await;
    let settings = winzo::config::load_for("test").unwrap();
    let redis = winzo::redis_client::connect(&settings.redis).unwrap();
    let (token, _) = winzo::auth::session::create(&redis, user.into(), Role::User, 3600)
        .await
        .unwrap();

    // A cash bet through A: A takes the bettor's wallet partition and holds the stake for
    // the bet delay, its account cached (no active bonus).
    let held = {
        let (http, a, token) = (http.clone(), a.clone(), token.clone());
        let over = book.selections[1][0];
        tokio::spawn(async move {
            place(
                &http,
                &a,
                &token,
                json!({"type": "single", "stake": "10.00", "idempotency_key": "held",
                       "legs": [{"selection_id": over, "odds": "2.5000"}]}),
            )
            .await
        })
    };
    let mut held = held;
    common::wait_until(
        "the first stake held at node A",
        Duration::from_secs(10),
        || {
            if held.is_finished() {
                // Answered before it was seen held: the bet was refused, or never waited.
                let answer = futures::executor::block_on(&mut held).unwrap();
                panic!("the first bet answered before its delay ran out: {answer:?}");
            }
            let (http, a, token) = (http.clone(), a.clone(), token.clone());
            async move {
                let w: Value = http
                    .get(format!("{a}/api/v1/wallet"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                w["pending_balance"] == "10.00"
            }
        },
    )
    .await;

    // The bonus, granted through B while that stake is in flight at A.
    let notices = metric(&http, &a, "winzo_wallet_bonus_notices_total").await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let (s, g) = post(
        &http,
        format!("{b}/api/v1/trading/users/{user}/bonuses"),
        &trader,
        json!({"amount": "20.00", "wagering_multiplier": 1, "min_odds": "1.5000",
               "expires_at": expires, "idempotency_key": "g1"}),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    common::wait_until("node A told of the grant", Duration::from_secs(10), || {
        let (http, a) = (http.clone(), a.clone());
        async move { metric(&http, &a, "winzo_wallet_bonus_notices_total").await > notices }
    })
    .await;
    assert!(!held.is_finished(), "the first bet is still in its delay");

    // Staked with the new bonus money through A (forwarded there from B as well).
    let home = book.selections[0][0];
    let (s, bet) = place(
        &http,
        &b,
        &token,
        json!({"type": "single", "stake": "15.00", "funding": "bonus", "idempotency_key": "bonus",
               "legs": [{"selection_id": home, "odds": "1.9091"}]}),
    )
    .await;
    assert_eq!(s, 201, "{bet}");
    let (s, first) = held.await.unwrap();
    assert_eq!(s, 201, "{first}");

    let row = db
        .client
        .query_one(
            "SELECT b.bonus_stake, u.balance, u.bonus_balance FROM bets b
             JOIN user_balances u ON u.user_id = b.user_id
             WHERE b.user_id = $1 AND b.idempotency_key = 'bonus'",
            &[&user],
        )
        .await
        .unwrap();
    let (bonus_stake, balance, bonus_balance): (
        rust_decimal::Decimal,
        rust_decimal::Decimal,
        rust_decimal::Decimal,
    ) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (bonus_stake, balance, bonus_balance),
        (dec!(15.00), dec!(90.00), dec!(5.00))
    );
    let violations = winzo::ledger_check::check_database(&winzo::db::DatabaseSettings {
        url: db.url.clone(),
        ..settings.database.clone()
    })
    .await
    .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}
