//! Crash safety of the bet path: SIGKILL the real engine while bets flow, restart it, and
//! find every acknowledged bet with its debit, no bet without its debit, a clean ledger,
//! liability rebuilt from the open bets, and unanswered requests resolved by their keys.
mod bets_support;
mod common;

use common::engine::{free_port, spawn_engine as spawn, wait_ready};
mod markets_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use markets_support::{account, create_book};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use uuid::Uuid;
use winzo::auth::Role;

/// What each request got: `Some((status, body))`, or `None` when the engine died first.
type Outcomes = Arc<Mutex<HashMap<String, (Uuid, Value, Option<(u16, Value)>)>>>;

#[tokio::test]
async fn a_sigkill_mid_flow_loses_no_acknowledged_bet_and_leaves_no_half_bet() {
    let db = common::TestDb::new().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut engine = spawn(&db.url, port, &[]);
    wait_ready(&http, &base).await;
    let (_, trader) = account(&db.client, Role::Moderator).await;
    let book = create_book(&http, &base, &trader).await;
    let selections: Vec<Uuid> = book.selections[1].clone(); // 2.5, 1.5, 9.0
    let prices = ["2.5000", "1.5000", "9.0000"];
    let mut bettors = Vec::new();
    for _ in 0..8 {
        bettors.push(bets_support::bettor(&db.client, dec!(1000.00)).await);
    }
    let outcomes: Outcomes = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (w, (user, token)) in bettors.iter().cloned().enumerate() {
        let (http, base, outcomes, stop, sels) = (
            http.clone(),
            base.clone(),
            outcomes.clone(),
            stop.clone(),
            selections.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("w{w}-{i}");
                let body = json!({"type": "single", "stake": "1.00", "idempotency_key": key,
                    "legs": [{"selection_id": sels[i % 3], "odds": prices[i % 3]}]});
                outcomes
                    .lock()
                    .unwrap()
                    .insert(key.clone(), (user, body.clone(), None));
                let r = http
                    .post(format!("{base}/api/v1/bets"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                let Ok(r) = r else { break };
                let status = r.status().as_u16();
                let Ok(v) = r.json::<Value>().await else {
                    break;
                };
                outcomes.lock().unwrap().get_mut(&key).unwrap().2 = Some((status, v));
                i += 1;
            }
        }));
    }
    // Kill it mid-flow, once well more bets are acknowledged than the check below needs
    // (the workers keep firing, so some requests are in flight at the kill).
    common::wait_until(
        "100 acknowledged bets before the kill",
        Duration::from_secs(30),
        || {
            let acked = outcomes
                .lock()
                .unwrap()
                .values()
                .filter(|(_, _, o)| matches!(o, Some((201, _))))
                .count();
            std::future::ready(acked >= 100)
        },
    )
    .await;
    engine.kill().expect("SIGKILL");
    let _ = engine.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let outcomes = Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap();
    let acked: Vec<&Value> = outcomes
        .values()
        .filter_map(|(_, _, o)| o.as_ref())
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert!(
        acked.len() > 20,
        "too few bets before the kill to prove anything: {}",
        acked.len()
    );

    let mut engine = spawn(&db.url, port, &[]);
    wait_ready(&http, &base).await;
    // Every acknowledged bet is there with exactly one debit.
    for bet in &acked {
        let id: Uuid = bet["id"].as_str().unwrap().parse().unwrap();
        let n: i64 = db.client.query_one(
            "SELECT count(*) FROM transactions WHERE related_bet_id = $1 AND type = 'bet_debit' AND amount = -1",
            &[&id]).await.unwrap().get(0);
        assert_eq!(n, 1, "acknowledged bet {id} lost or without its debit");
    }
    let mut settings = common::test_settings();
    settings.database.url = db.url.clone();
    let violations = winzo::ledger_check::check_database(&settings.database)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    // Unanswered requests: the retry with the same key answers the real outcome.
    let mut unanswered = 0;
    for (key, (user, body, outcome)) in &outcomes {
        if outcome.is_some() {
            continue;
        }
        unanswered += 1;
        let before: Option<Uuid> = db
            .client
            .query_opt(
                "SELECT id FROM bets WHERE user_id = $1 AND idempotency_key = $2",
                &[user, key],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        let token = &bettors.iter().find(|(u, _)| u == user).unwrap().1;
        let r = http
            .post(format!("{base}/api/v1/bets"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        if let Some(id) = before {
            assert_eq!(
                v["id"],
                id.to_string(),
                "retry of a committed bet must answer that bet"
            );
        }
    }
    assert!(
        unanswered <= 8,
        "at most one request in flight per worker: {unanswered}"
    );
    // Liability rebuilt from the open bets matches the database.
    let live: Value = http
        .get(format!(
            "{base}/api/v1/trading/markets/{}/liability",
            book.markets[1]
        ))
        .bearer_auth(&trader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let live_stake: Decimal = live["selections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stake"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    let db_stake: Decimal = db
        .client
        .query_one(
            "SELECT coalesce(sum(b.stake), 0) FROM bets b WHERE b.status = 'accepted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        live_stake, db_stake,
        "liability after restart equals the open bets: {live} unanswered {unanswered}"
    );
    engine.kill().ok();
    let _ = engine.wait();
}
