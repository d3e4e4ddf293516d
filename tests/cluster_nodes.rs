//! Several engine nodes (issue 20): three `winzo serve` processes on one database share
//! the events by lease. Bets go through every node (forwarded to the owner) while one node
//! is killed with SIGKILL and restarted: every acknowledged bet is in the database exactly
//! once with its debit, the ledger check is clean, and betting on the dead node's events
//! resumes within the lease time plus recovery. A stale owner's commit is refused by the
//! fence, and a node that stops renewing (as if cut off from Postgres) accepts no bet on
//! an event it no longer owns.
mod common;
mod markets_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::engine::{free_port, spawn_engine, wait_ready, Engine};
use markets_support::{account, create_catalogue, create_event, post, Book};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use winzo::auth::Role;

const TTL_MS: u64 = 2000;

struct Node {
    engine: Engine,
    base: String,
    port: u16,
    id: String,
}

fn start(db_url: &str, id: &str, port: u16) -> Node {
    let base = format!("http://127.0.0.1:{port}");
    let ttl = TTL_MS.to_string();
    let engine = spawn_engine(
        db_url,
        port,
        &[
            ("WINZO__CLUSTER__ENABLED", "true"),
            ("WINZO__CLUSTER__NODE_ID", id),
            ("WINZO__CLUSTER__ADVERTISE_ADDR", &base),
            ("WINZO__CLUSTER__LEASE_TTL_MS", &ttl),
            ("WINZO__CLUSTER__RENEW_INTERVAL_MS", "250"),
            ("WINZO__CLUSTER__SAFETY_MARGIN_MS", "500"),
            ("WINZO__CLUSTER__EVENTS_PER_ROUND_MAX", "4"),
        ],
    );
    Node {
        engine,
        base,
        port,
        id: id.to_string(),
    }
}

async fn start_ready(http: &reqwest::Client, db_url: &str, id: &str, port: u16) -> Node {
    let node = start(db_url, id, port);
    wait_ready(http, &node.base).await;
    node
}

async fn cluster_view(http: &reqwest::Client, base: &str, admin: &str) -> Value {
    let r = http
        .get(format!("{base}/api/v1/cluster"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Event id → owning node id, for valid leases.
async fn owners(db: &tokio_postgres::Client) -> HashMap<Uuid, String> {
    db.query(
        "SELECT event_id, node_id FROM event_leases WHERE expires_at > now()",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn bettors(db: &tokio_postgres::Client, n: usize) -> Vec<(Uuid, String)> {
    let ids = common::fixtures::funded_users(db, Decimal::from(100_000), n).await;
    let settings = winzo::config::load_for("test").unwrap();
    let redis = winzo::redis_client::connect(&settings.redis).unwrap();
    let mut out = Vec::new();
    for id in ids {
        let (token, _) = winzo::auth::session::create(&redis, id, Role::User, 3600)
            .await
            .unwrap();
        out.push((id, token));
    }
    out
}

async fn bet(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    selection: Uuid,
    key: &str,
) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/bets"))
        .bearer_auth(token)
        .json(
            &json!({"type": "single", "stake": "1.00", "idempotency_key": key,
                      "legs": [{"selection_id": selection, "odds": "1.9091"}]}),
        )
        .send()
        .await;
    // A killed node answers nothing (status 0).
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn books(http: &reqwest::Client, base: &str, trader: &str, n: usize) -> Vec<Book> {
    let catalogue = create_catalogue(http, base, trader).await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(create_event(http, base, trader, &catalogue).await);
    }
    out
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_one_to_sigkill_and_nothing_acknowledged_is_lost() {
    let db = common::TestDb::new().await;
    let http = http();
    let (_, admin) = account(&db.client, Role::Admin).await;
    let ports = [free_port(), free_port(), free_port()];
    let mut nodes = vec![start_ready(&http, &db.url, "n1", ports[0]).await];
    let events = books(&http, &nodes[0].base, &admin, 9).await;
    nodes.push(start_ready(&http, &db.url, "n2", ports[1]).await);
    nodes.push(start_ready(&http, &db.url, "n3", ports[2]).await);
    // Rebalancing spreads the nine events (a bounded number per round) over the three.
    common::wait_until(
        "every node to own events",
        Duration::from_secs(30),
        || async {
            let o = owners(&db.client).await;
            o.len() == events.len()
                && ["n1", "n2", "n3"]
                    .iter()
                    .all(|n| o.values().any(|v| v == n))
        },
    )
    .await;
    let view = cluster_view(&http, &nodes[1].base, &admin).await;
    assert_eq!(view["nodes"].as_array().unwrap().len(), 3, "{view}");
    assert!(view["leases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["epoch"].as_i64() > Some(0)));

    let users = bettors(&db.client, 6).await;
    let acked: Arc<Mutex<Vec<(Uuid, String)>>> = Arc::default();
    let unknown: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let selections: Vec<Uuid> = events.iter().map(|b| b.selections[0][0]).collect();
    let mut load = Vec::new();
    for (u, (_, token)) in users.iter().enumerate() {
        let (http, token, bases, selections) = (
            http.clone(),
            token.clone(),
            bases.clone(),
            selections.clone(),
        );
        let (acked, unknown, stop) = (acked.clone(), unknown.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut i = u;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("u{u}-{i}");
                let sel = selections[i % selections.len()];
                // Retries of one key go through other nodes: answered once, written once.
                let mut done = false;
                for attempt in 0..3 {
                    let base = &bases[(i + attempt) % bases.len()];
                    let (s, body) = bet(&http, base, &token, sel, &key).await;
                    if s == 201 {
                        let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
                        acked.lock().unwrap().push((id, key.clone()));
                        done = true;
                        break;
                    }
                    assert!(s == 503 || s == 0, "bet answered {s}: {body}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if !done {
                    unknown.lock().unwrap().push(key);
                }
                i += users_len();
            }
        }));
    }
    fn users_len() -> usize {
        6
    }
    common::wait_until("bets before the kill", Duration::from_secs(30), || async {
        acked.lock().unwrap().len() >= 60
    })
    .await;

    // SIGKILL node n2; its events must be served again through the others.
    let o = owners(&db.client).await;
    let dead_events: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, b)| o.get(&b.event_id).map(String::as_str) == Some("n2"))
        .map(|(i, _)| i)
        .collect();
    assert!(!dead_events.is_empty());
    nodes[1].engine.kill().unwrap();
    nodes[1].engine.wait().unwrap();
    let killed = Instant::now();
    let probe_token = &users[0].1;
    let probe_sel = events[dead_events[0]].selections[0][1];
    let mut n = 0;
    let resumed = loop {
        n += 1;
        let (s, _) = bet(
            &http,
            &bases[(n % 2) * 2],
            probe_token,
            probe_sel,
            &format!("probe-{n}"),
        )
        .await;
        if s == 201 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "betting did not resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "betting on the killed node's events resumed {} ms after SIGKILL (lease {} ms)",
        resumed.as_millis(),
        TTL_MS
    );
    assert!(
        resumed < Duration::from_millis(TTL_MS * 4),
        "resumed after {resumed:?}"
    );
    let after_kill = acked.lock().unwrap().len();
    common::wait_until("bets after the kill", Duration::from_secs(30), || async {
        acked.lock().unwrap().len() >= after_kill + 30
    })
    .await;

    // n2 comes back under its name and gets events again by rebalancing.
    let port = nodes[1].port;
    nodes[1] = start_ready(&http, &db.url, "n2", port).await;
    common::wait_until(
        "n2 to own events again",
        Duration::from_secs(30),
        || async { owners(&db.client).await.values().any(|v| v == "n2") },
    )
    .await;
    let after_restart = acked.lock().unwrap().len();
    common::wait_until(
        "bets after the restart",
        Duration::from_secs(30),
        || async { acked.lock().unwrap().len() >= after_restart + 30 },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    println!(
        "{} bets acknowledged through three nodes, {} unanswered",
        acked.len(),
        unknown.lock().unwrap().len()
    );
    for (id, key) in &acked {
        let row = db
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM bets WHERE id = $1),
                        (SELECT count(*) FROM bets WHERE idempotency_key = $2),
                        (SELECT count(*) FROM transactions
                          WHERE related_bet_id = $1 AND type = 'bet_debit')",
                &[id, key],
            )
            .await
            .unwrap();
        let (bets, by_key, debits): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((bets, by_key, debits), (1, 1, 1), "bet {id} ({key})");
    }
    let mut settings = common::test_settings();
    settings.database.url = db.url.clone();
    let violations = winzo::ledger_check::check_database(&settings.database)
        .await
        .expect("ledger check runs");
    assert!(violations.is_empty(), "{violations:?}");
    let mut forwarded = 0;
    for n in &nodes {
        let v = cluster_view(&http, &n.base, &admin).await;
        forwarded += v["counters"]["forwarded"].as_u64().unwrap();
    }
    println!("{forwarded} requests forwarded to their owner");
    assert!(forwarded > 0);
    drop(nodes);
}

async fn footprint(db: &tokio_postgres::Client, user: Uuid) -> (i64, Decimal) {
    let r = db
        .query_one(
            "SELECT (SELECT count(*) FROM bets WHERE user_id = $1),
                    (SELECT balance FROM user_balances WHERE user_id = $1)",
            &[&user],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_is_refused_by_the_fence() {
    let db = common::TestDb::new().await;
    let http = http();
    let (_, admin) = account(&db.client, Role::Admin).await;
    let node = start_ready(&http, &db.url, "solo", free_port()).await;
    let book = books(&http, &node.base, &admin, 1).await.remove(0);
    let users = bettors(&db.client, 1).await;
    let (user, token) = &users[0];
    let sel = book.selections[0][0];
    let (s, body) = bet(&http, &node.base, token, sel, "fence-1").await;
    assert_eq!(s, 201, "{body}");
    // Another node took the event (a new epoch) while this one still believes it owns it.
    db.client
        .execute(
            "UPDATE event_leases SET epoch = nextval('event_lease_epoch'), node_id = 'other',
                    expires_at = now() + interval '3 seconds'
              WHERE event_id = $1",
            &[&book.event_id],
        )
        .await
        .unwrap();
    let before = footprint(&db.client, *user).await;
    let (s, body) = bet(&http, &node.base, token, sel, "fence-2").await;
    assert_eq!(s, 503, "a stale owner's bet: {body}");
    assert_eq!(
        footprint(&db.client, *user).await,
        before,
        "nothing written"
    );
    let (s, _) = post(
        &http,
        format!(
            "{}/api/v1/trading/markets/{}/prices",
            node.base, book.markets[0]
        ),
        &admin,
        json!({"prices": [{"selection_id": sel, "odds": "1.8000"}]}),
    )
    .await;
    assert_ne!(s, 200, "a stale owner's price move is not acknowledged");
    let odds: Decimal = db
        .client
        .query_one("SELECT odds FROM selections WHERE id = $1", &[&sel])
        .await
        .unwrap()
        .get(0);
    assert_eq!(odds.to_string(), "1.9091");
    let v = cluster_view(&http, &node.base, &admin).await;
    assert!(v["counters"]["fenced_bets"].as_u64() >= Some(1), "{v}");
    // Once the other node's lease lapses, this node takes the event again (a new epoch)
    // and betting resumes.
    common::wait_until(
        "the event to be served again",
        Duration::from_secs(20),
        || async { bet(&http, &node.base, token, sel, "fence-3").await.0 == 201 },
    )
    .await;
    let epoch: i64 = db
        .client
        .query_one(
            "SELECT epoch FROM event_leases WHERE event_id = $1",
            &[&book.event_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(epoch >= 3, "taken again with a new epoch: {epoch}");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_renewing_accepts_no_bet_on_events_it_lost() {
    let db = common::TestDb::new().await;
    let http = http();
    let (_, admin) = account(&db.client, Role::Admin).await;
    let a = start_ready(&http, &db.url, "a", free_port()).await;
    let book = books(&http, &a.base, &admin, 1).await.remove(0);
    let users = bettors(&db.client, 1).await;
    let (_, token) = &users[0];
    let sel = book.selections[0][0];
    assert_eq!(bet(&http, &a.base, token, sel, "cut-1").await.0, 201);
    // Node a is cut off from the lease table (its renewal stops).
    let r = http
        .post(format!("{}/api/v1/cluster/test/pause-renewal", a.base))
        .bearer_auth(&admin)
        .json(&json!({"paused": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let paused_at = Instant::now();
    // Until another node may take the event, and after: node a refuses once its own
    // clock says the lease is over, which is before the database's lease lapses.
    let mut refused_at = None;
    loop {
        let lapsed: bool = db
            .client
            .query_one(
                "SELECT expires_at < now() FROM event_leases WHERE event_id = $1",
                &[&book.event_id],
            )
            .await
            .unwrap()
            .get(0);
        let (s, body) = bet(
            &http,
            &a.base,
            token,
            sel,
            &format!("cut-{}", paused_at.elapsed().as_millis()),
        )
        .await;
        if lapsed {
            assert_ne!(s, 201, "accepted after the lease lapsed: {body}");
            break;
        }
        if s != 201 {
            refused_at.get_or_insert(paused_at.elapsed());
        }
        assert!(paused_at.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused_at.is_some(),
        "refused before the lease lapsed in the database"
    );
    // Node b takes the event; a keeps refusing (it forwards nothing while cut off).
    let b = start_ready(&http, &db.url, "b", free_port()).await;
    common::wait_until("b to own the event", Duration::from_secs(20), || async {
        owners(&db.client)
            .await
            .get(&book.event_id)
            .map(String::as_str)
            == Some("b")
    })
    .await;
    let before: i64 = db
        .client
        .query_one("SELECT count(*) FROM bets", &[])
        .await
        .unwrap()
        .get(0);
    for i in 0..5 {
        let (s, body) = bet(&http, &a.base, token, sel, &format!("cut-late-{i}")).await;
        assert_ne!(s, 201, "the cut-off node accepted a bet: {body}");
    }
    let after: i64 = db
        .client
        .query_one("SELECT count(*) FROM bets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after);
    assert_eq!(bet(&http, &b.base, token, sel, "cut-b").await.0, 201);
    let _ = (&a.id, &b.id);
    drop(a);
    drop(b);
}
