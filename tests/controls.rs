//! Controls that bite at once (issue 14): one test per item of the issue, against the real
//! server, Postgres and Redis. Each fails on the engine before the change and passes after.
mod bets_support;
mod common;
mod markets_support;
mod stream_support;
mod support_accounts;

use std::time::Duration;

use common::{wait_until, wait_until_every};

use markets_support::{create_book, Book};
use serde_json::{json, Value};
use support_accounts::{assert_contract_error, get, patch, post, staff, PASSWORD};
use uuid::Uuid;

/// A registered bettor who logged in and deposited `amount`: `(id, username, token)`.
async fn funded_bettor(app: &common::TestApp, amount: &str) -> (Uuid, String, String) {
    let (id, username) = support_accounts::register(app).await;
    let token = support_accounts::login(app, &username).await;
    let (s, b) = post(
        app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": amount, "idempotency_key": format!("fund-{id}")}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    (id, username, token)
}

fn bet(selection: Uuid, stake: &str) -> Value {
    json!({"type": "single", "stake": stake, "odds_change": "any",
           "legs": [{"selection_id": selection, "odds": "2.5000"}],
           "idempotency_key": Uuid::new_v4().to_string()})
}

async fn book(app: &common::TestApp, trader: &str) -> Book {
    create_book(&app.http, &app.address, trader).await
}

// 1. A warm account's controls bind its very next bet.
#[tokio::test]
async fn every_control_change_binds_a_warm_accounts_next_bet() {
    let app = support_accounts::spawn().await;
    let (_, trader) = staff(&app, "moderator").await;
    let book = book(&app, &trader).await;
    let over = book.selections[1][0];
    let (id, username, token) = funded_bettor(&app, "500.00").await;
    let (s, b) = bets_support::place(&app, &token, &bet(over, "1.00")).await;
    assert_eq!(s, 201, "the account is warm: {b}");

    // A trader cuts the account's max stake.
    let user_path = format!("/api/v1/trading/users/{id}");
    let (s, b) = patch(
        &app,
        &user_path,
        Some(&trader),
        json!({"max_stake": "2.00"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = bets_support::place(&app, &token, &bet(over, "3.00")).await;
    assert_eq!(s, 422, "max stake cut: {b}");
    assert_contract_error(&b, "stake_too_high");

    // ... then its stake factor (0.001 of the market's 10,000.00).
    patch(&app, &user_path, Some(&trader), json!({"max_stake": null})).await;
    let (s, _) = patch(
        &app,
        &user_path,
        Some(&trader),
        json!({"stake_factor": "0.001"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = bets_support::place(&app, &token, &bet(over, "11.00")).await;
    assert_eq!(s, 422, "stake factor cut: {b}");
    assert_contract_error(&b, "stake_too_high");
    patch(
        &app,
        &user_path,
        Some(&trader),
        json!({"stake_factor": "1.000"}),
    )
    .await;

    // The bettor lowers their own daily cap below what they staked plus the next bet.
    let (s, b) = patch(
        &app,
        "/api/v1/me/preferences",
        Some(&token),
        json!({"betting_limits": {"daily": "5.00"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = bets_support::place(&app, &token, &bet(over, "4.50")).await;
    assert_eq!(s, 409, "daily cap cut: {b}");
    assert_contract_error(&b, "limit_exceeded");

    // Self-exclusion ends the session; a new login cannot bet.
    let (s, b) = post(
        &app,
        "/api/v1/me/self-exclusion",
        Some(&token),
        json!({"days": 30}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = bets_support::place(&app, &token, &bet(over, "1.00")).await;
    assert_eq!(s, 401, "the old session is gone");
    let again = support_accounts::login(&app, &username).await;
    let (s, b) = bets_support::place(&app, &again, &bet(over, "1.00")).await;
    assert_eq!(s, 403, "self-excluded: {b}");
    assert_contract_error(&b, "account_restricted");
    let bets: i64 = app
        .db
        .client
        .query_one("SELECT count(*) FROM bets WHERE user_id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bets, 1, "only the first bet was taken");
}

// 2. An open socket follows its session: logout and a ban end its private channel and
// its place_bet at once.
#[tokio::test]
async fn a_socket_loses_its_private_channel_and_bets_when_its_session_ends() {
    let app = support_accounts::spawn().await;
    let (_, trader) = staff(&app, "moderator").await;
    let book = book(&app, &trader).await;
    let over = book.selections[1][0];
    let (_, _, token) = funded_bettor(&app, "100.00").await;
    let mut ws = stream_support::connect(&app, &format!("?token={token}")).await;
    let mut body = bet(over, "1.00");
    body["op"] = json!("place_bet");
    body["id"] = json!(1);
    stream_support::send(&mut ws, body.clone()).await;
    let answer = stream_support::next_of(&mut ws, "bet_result").await;
    assert_eq!(answer["status"], 201, "{answer}");

    let r = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let ended = stream_support::next_of(&mut ws, "session_ended").await;
    assert_eq!(ended["reason"], "revoked");
    body["id"] = json!(2);
    body["idempotency_key"] = json!(Uuid::new_v4().to_string());
    stream_support::send(&mut ws, body.clone()).await;
    let refused = stream_support::next_of(&mut ws, "error").await;
    assert_eq!(refused["id"], 2);
    assert_eq!(refused["code"], "unauthorized", "{refused}");

    // A second socket, opened with the auth op: a trader's ban ends it the same way.
    let (id, username) = support_accounts::register(&app).await;
    let token = support_accounts::login(&app, &username).await;
    let mut ws = stream_support::connect(&app, "").await;
    stream_support::send(&mut ws, json!({"op": "auth", "id": 1, "token": token})).await;
    stream_support::next_of(&mut ws, "authenticated").await;
    let (s, b) = patch(
        &app,
        &format!("/api/v1/trading/users/{id}"),
        Some(&trader),
        json!({"status": "banned"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let ended = stream_support::next_of(&mut ws, "session_ended").await;
    assert_eq!(ended["reason"], "revoked");
}

// 3. Staff change only accounts whose role is below their own: every cell of the matrix.
#[tokio::test]
async fn staff_change_only_accounts_below_their_own_role() {
    let app = support_accounts::spawn().await;
    let roles = ["user", "support", "moderator", "admin"];
    for actor in ["support", "moderator", "admin"] {
        let (_, token) = staff(&app, actor).await;
        for target in roles {
            let (target_id, _) = staff(&app, target).await;
            let (s, b) = patch(
                &app,
                &format!("/api/v1/trading/users/{target_id}"),
                Some(&token),
                json!({"stake_factor": "0.500"}),
            )
            .await;
            let rank = |r: &str| roles.iter().position(|x| *x == r).unwrap();
            let expected = if actor == "support" {
                403 // support reads the desk, it changes nothing
            } else if rank(target) < rank(actor) {
                200
            } else {
                403
            };
            assert_eq!(s, expected, "{actor} changing a {target}: {b}");
            if expected == 403 && actor != "support" {
                assert_contract_error(&b, "role_boundary");
            }
        }
    }
    // Roles: only an admin changes them, and only below admin; the account's sessions end.
    let (_, moderator) = staff(&app, "moderator").await;
    let (_, admin) = staff(&app, "admin").await;
    let (target, target_token) = staff(&app, "support").await;
    let path = format!("/api/v1/trading/users/{target}/role");
    let (s, _) = post(&app, &path, Some(&moderator), json!({"role": "user"})).await;
    assert_eq!(s, 403, "a moderator changes no role");
    let (s, b) = post(&app, &path, Some(&admin), json!({"role": "admin"})).await;
    assert_eq!(s, 403, "nobody makes an admin over the API");
    assert_contract_error(&b, "role_boundary");
    let (other_admin, _) = staff(&app, "admin").await;
    let (s, _) = post(
        &app,
        &format!("/api/v1/trading/users/{other_admin}/role"),
        Some(&admin),
        json!({"role": "user"}),
    )
    .await;
    assert_eq!(s, 403, "an admin cannot demote a peer");
    let (s, b) = post(&app, &path, Some(&admin), json!({"role": "moderator"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["role"], "moderator");
    let (s, _) = get(&app, "/api/v1/me/profile", Some(&target_token)).await;
    assert_eq!(s, 401, "a role change ends the account's sessions");
}

async fn login_counter(app: &common::TestApp, outcome: &str) -> u64 {
    let line = format!("winzo_login_attempts_total{{outcome=\"{outcome}\"}} ");
    common::metric(app, &line).await
}

async fn login_from(app: &common::TestApp, login: &str, password: &str, from: &str) -> u16 {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("X-Forwarded-For", from)
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// 4. Attempts are counted before the password check; behind a trusted proxy each client
// has its own counter.
#[tokio::test]
async fn wrong_passwords_at_once_reach_at_most_the_limit_of_password_checks() {
    let app = support_accounts::spawn_with(|s| {
        s.auth.login_failures_per_account_max = 3;
        s.auth.login_failures_per_address_max = 4;
        s.auth.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let (_, victim) = support_accounts::register(&app).await;
    let failed_before = login_counter(&app, "failed").await;
    let attempts = (0..64).map(|i| {
        let (app, victim) = (&app, &victim);
        async move { login_from(app, victim, "wrong password!", &format!("203.0.113.{i}")).await }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 61);
    assert_eq!(login_counter(&app, "failed").await - failed_before, 3);

    // One client (198.51.100.1, behind the proxy) exhausts its own address counter...
    for i in 0..4 {
        let (_, other) = support_accounts::register(&app).await;
        let s = login_from(&app, &other, "wrong password!", "198.51.100.1").await;
        assert_eq!(s, 401, "attempt {i}");
    }
    let (_, mine) = support_accounts::register(&app).await;
    assert_eq!(login_from(&app, &mine, PASSWORD, "198.51.100.1").await, 429);
    // ...and locks out nobody else behind the same proxy.
    assert_eq!(login_from(&app, &mine, PASSWORD, "198.51.100.2").await, 200);
}

// 5. A feed cancellation refunds every bet on the event, exactly like a trader's.
#[tokio::test]
async fn a_feed_cancellation_refunds_every_bet_on_the_event() {
    let app = support_accounts::spawn().await;
    let sport = stream_support::sport(&app).await;
    stream_support::push(&app, stream_support::fixture(1, "cx-1", &sport)).await;
    let event = stream_support::event_id(&app, "cx-1").await;
    let home: Uuid = app
        .db
        .client
        .query_one(
            "SELECT s.id FROM selections s JOIN markets m ON m.id = s.market_id
             WHERE m.event_id = $1 AND m.type = 'moneyline' AND s.name = 'home'",
            &[&event],
        )
        .await
        .unwrap()
        .get(0);
    let (id, _, token) = funded_bettor(&app, "50.00").await;
    let body = json!({"type": "single", "stake": "10.00", "odds_change": "any",
                      "legs": [{"selection_id": home, "odds": "2.1000"}], "idempotency_key": "c1"});
    let (s, b) = bets_support::place(&app, &token, &body).await;
    assert_eq!(s, 201, "{b}");
    let answer = stream_support::push(
        &app,
        json!({"seq": 2, "event_ref": "cx-1", "type": "status", "status": "cancelled"}),
    )
    .await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    let db = &app.db.client;
    wait_until(
        "the bet is voided and refunded",
        Duration::from_secs(10),
        || async {
            let r = db
                .query_one(
                    "SELECT (SELECT status::text FROM bets WHERE user_id = $1),
                        (SELECT balance FROM user_balances WHERE user_id = $1)::text",
                    &[&id],
                )
                .await
                .unwrap();
            r.get::<_, String>(0) == "voided" && r.get::<_, String>(1) == "50.00"
        },
    )
    .await;
    let refunds: i64 = db
        .query_one(
            "SELECT count(*) FROM transactions WHERE user_id = $1 AND type <> 'deposit'
               AND type <> 'bet_debit'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(refunds, 1, "refunded exactly once");
    let voids: i64 = db
        .query_one(
            "SELECT count(*) FROM market_settlements s JOIN markets m ON m.id = s.market_id
             WHERE m.event_id = $1 AND s.kind = 'void'",
            &[&event],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(voids, 2, "both markets voided");
}

// 6. No committed secret opens the production profile; nor does the sandbox processor.
#[tokio::test]
async fn the_production_profile_refuses_development_secrets_and_the_sandbox() {
    let mut settings = common::test_settings();
    settings.profile = "production".into();
    let err = tokio::task::spawn_blocking(move || {
        actix_web::rt::System::new().block_on(async move {
            winzo::startup::Application::build(settings)
                .await
                .err()
                .map(|e| format!("{e:#}"))
        })
    })
    .await
    .unwrap()
    .expect("the production profile must refuse to start");
    assert!(
        err.contains("feed provider \"demo\" has a development secret"),
        "{err}"
    );
    assert!(err.contains("payments.processor is the sandbox"), "{err}");
    // The base profile alone carries no provider at all (so no known secret).
    let base = winzo::config::load_for("production").unwrap();
    assert!(base.feed.providers.is_empty());
}

// 7. A withdrawal may take only what is not held for bets in flight.
#[tokio::test]
async fn a_withdrawal_cannot_take_a_stake_held_for_an_in_play_bet() {
    let app = support_accounts::spawn().await;
    let (_, trader) = staff(&app, "moderator").await;
    let book = book(&app, &trader).await;
    let m = book.markets[1];
    let (s, _) = patch(
        &app,
        &format!("/api/v1/trading/markets/{m}/settings"),
        Some(&trader),
        json!({"bet_delay_ms": 1500}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = post(
        &app,
        &format!("/api/v1/trading/events/{}/status", book.event_id),
        Some(&trader),
        json!({"status": "live"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, _, token) = funded_bettor(&app, "100.00").await;
    let body = bet(book.selections[1][0], "80.00");
    let betting = {
        let (app, token) = (&app, token.clone());
        async move { bets_support::place(app, &token, &body).await }
    };
    let withdrawing = async {
        wait_until("the stake is held", Duration::from_secs(5), || async {
            let (_, w) = get(&app, "/api/v1/wallet", Some(&token)).await;
            w["pending_balance"] == "80.00"
        })
        .await;
        post(
            &app,
            "/api/v1/wallet/withdrawals",
            Some(&token),
            json!({"amount": "50.00", "idempotency_key": "w-held"}),
        )
        .await
    };
    let ((bs, bb), (ws, wb)) = tokio::join!(betting, withdrawing);
    assert_eq!(ws, 409, "{wb}");
    assert_contract_error(&wb, "insufficient_funds");
    assert_eq!(wb["error"]["details"]["available"], "20.00", "{wb}");
    assert_eq!(bs, 201, "the bet is taken: {bb}");
    let (_, w) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(w["balance"], "20.00");
}

// 8. A topic being loaded counts as subscribed; loads per connection and connections per
// address are bounded.
#[tokio::test]
async fn snapshot_loads_and_connections_per_address_are_bounded() {
    let app = support_accounts::spawn_with(|s| {
        s.ws.snapshot_loads_per_connection_max = 2;
        s.ws.connections_per_address_max = 2;
    })
    .await;
    let (_, trader) = staff(&app, "moderator").await;
    let book = book(&app, &trader).await;
    let topic = format!("event:{}", book.event_id);
    let mut ws = stream_support::connect(&app, "").await;
    // The same topic ten times in one frame: one load, one snapshot.
    stream_support::send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "topics": vec![topic.clone(); 10]}),
    )
    .await;
    let snap = stream_support::next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    // Distinct topics beyond the bound of loads in flight are refused, not queued.
    let sports: Vec<String> = (0..5).map(|i| format!("sport:nosuch{i}")).collect();
    stream_support::send(
        &mut ws,
        json!({"op": "subscribe", "id": 2, "topics": sports}),
    )
    .await;
    let mut refused = 0;
    for _ in 0..5 {
        let m = stream_support::next_json(&mut ws).await;
        assert_ne!(
            m["type"], "snapshot",
            "only one snapshot for the repeated topic: {m}"
        );
        if m["code"] == "too_many_loads" {
            refused += 1;
        }
    }
    assert_eq!(refused, 3);
    let _second = stream_support::connect(&app, "").await;
    let url = format!("ws://127.0.0.1:{}/ws", app.port);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 429)
        }
        other => panic!("a third socket from one address: {:?}", other.map(|_| ())),
    }
}

// 9. A replayed signed push (same body, same timestamp) does not refresh a provider.
#[tokio::test]
async fn a_replayed_push_does_not_keep_a_silent_providers_markets_open() {
    let app = support_accounts::spawn_with(|s| {
        s.feed.providers[0].heartbeat_window_ms = 600;
        s.feed.watchdog_interval_ms = 50;
    })
    .await;
    let sport = stream_support::sport(&app).await;
    let body =
        json!([stream_support::fixture(1, "rp-1", &sport), {"type": "heartbeat"}]).to_string();
    let ts = chrono::Utc::now().timestamp();
    let first = stream_support::push_raw(&app, "demo", stream_support::SECRET, ts, &body).await;
    assert_eq!(first.status(), 200);
    let event = stream_support::event_id(&app, "rp-1").await;
    // An attacker replays the captured push every 100 ms (its pace is part of the attack)
    // until every market is feed-suspended: the replays kept nothing alive.
    wait_until_every(
        "every market feed-suspended (replays must not keep the provider alive)",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let r = stream_support::push_raw(&app, "demo", stream_support::SECRET, ts, &body).await;
            assert_eq!(
                r.status(),
                200,
                "a replay inside the window is acknowledged"
            );
            let ms = stream_support::markets(&app, event).await;
            ms.iter().all(|m| m.2)
        },
    )
    .await;
}

// 10. Revoke-all is atomic with concurrent logins: no session survives outside the set.
#[tokio::test]
async fn revoke_all_racing_logins_leaves_no_session_a_later_revoke_all_misses() {
    let settings = common::test_settings();
    let redis = winzo::redis_client::connect(&settings.redis).unwrap();
    let user = Uuid::new_v4();
    let role = winzo::auth::Role::User;
    let logins = (0..200).map(|_| {
        let redis = redis.clone();
        async move { winzo::auth::session::create(&redis, user.into(), role, 600).await }
    });
    let revokes = (0..40).map(|_| {
        let redis = redis.clone();
        async move { winzo::auth::session::revoke_all(&redis, user.into()).await }
    });
    let (created, revoked) = tokio::join!(
        futures::future::join_all(logins),
        futures::future::join_all(revokes)
    );
    assert!(revoked.iter().all(Result::is_ok));
    // A ban: everything of the user must go now.
    winzo::auth::session::revoke_all(&redis, user.into())
        .await
        .unwrap();
    for c in created {
        let (token, _) = c.unwrap();
        let hash = winzo::auth::session::token_hash(&token);
        let alive = winzo::auth::session::lookup_hash(&redis, &hash)
            .await
            .unwrap();
        assert!(alive.is_none(), "a session escaped revoke-all");
    }
}

// 11. /metrics answers only its token or a local scraper; the WebSocket query token is
// documented for trusted networks.
#[tokio::test]
async fn metrics_answer_only_the_token_or_a_local_scraper() {
    let token = "Zq8Xw2Ev4Rt6Yu1Io3Pa5Sd7Fg9Hj0Kl-metrics";
    let app = support_accounts::spawn_with(|s| {
        s.metrics.token = token.into();
        s.metrics.allow_loopback = false;
    })
    .await;
    let status = |r: reqwest::Response| r.status().as_u16();
    let url = app.url("/metrics");
    assert_eq!(status(app.http.get(&url).send().await.unwrap()), 401);
    assert_eq!(
        status(
            app.http
                .get(&url)
                .bearer_auth("wrong")
                .send()
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(app.http.get(&url).bearer_auth(token).send().await.unwrap()),
        200
    );
    let local = support_accounts::spawn().await;
    let url = local.url("/metrics");
    assert_eq!(status(local.http.get(&url).send().await.unwrap()), 200);
    let proxied = local
        .http
        .get(&url)
        .header("X-Forwarded-For", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(proxied),
        401,
        "a proxied request is not a local scraper"
    );
    let (_, doc) = get(&local, "/api-docs/openapi.json", None).await;
    let param = doc["paths"]["/ws"]["get"]["parameters"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(param.contains("trusted networks only"), "{param}");
}

// 12. Registration takes only configured currencies; the money rows carry the account's.
#[tokio::test]
async fn accounts_open_in_configured_currencies_and_their_money_rows_carry_it() {
    let app = support_accounts::spawn().await;
    let name = support_accounts::unique("c");
    let register = |currency: &str| {
        json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD,
               "date_of_birth": "1990-01-01", "currency_code": currency})
    };
    let (s, b) = post(&app, "/api/v1/auth/register", None, register("XAU")).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["details"]["reason"], "unsupported_currency");
    let (s, b) = post(&app, "/api/v1/auth/register", None, register("EUR")).await;
    assert_eq!(s, 201, "{b}");
    let token = support_accounts::login(&app, &name).await;
    let (s, tx) = post(
        &app,
        "/api/v1/wallet/deposits",
        Some(&token),
        json!({"amount": "25.00", "idempotency_key": "eur-1"}),
    )
    .await;
    assert_eq!(s, 201, "{tx}");
    assert_eq!(tx["currency_code"], "EUR");
    let (_, w) = get(&app, "/api/v1/wallet", Some(&token)).await;
    assert_eq!(w["currency_code"], "EUR");
}
