//! Provisioning through the public API only: bettors (register, login, deposit), the
//! trader's session (login with configured credentials), and a book of events and
//! markets created through the trading endpoints.
use std::time::Duration;

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{id_of, Api};

/// A bettor with a session.
#[derive(Debug, Clone)]
pub struct Bettor {
    pub id: Uuid,
    pub token: String,
}

/// A market with its selections and their opening odds.
#[derive(Debug, Clone)]
pub struct Market {
    pub id: Uuid,
    pub event: Uuid,
    pub selections: Vec<(Uuid, String)>,
}

/// Events and markets created for one scenario.
#[derive(Debug, Clone)]
pub struct Book {
    pub sport_id: Uuid,
    pub sport_slug: String,
    pub events: Vec<Uuid>,
    pub markets: Vec<Market>,
}

impl Book {
    /// The markets of event number `e`.
    pub fn markets_of(&self, event: Uuid) -> Vec<&Market> {
        self.markets.iter().filter(|m| m.event == event).collect()
    }
}

const PASSWORD: &str = "load-test-password-1";
/// Parallel registrations: each hashes a password (argon2id, tens of milliseconds).
const REGISTER_PARALLEL: usize = 8;
/// Parallel trading calls while building a book.
const BOOK_PARALLEL: usize = 16;

fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Logs the trader in: the session token.
pub async fn trader(api: &Api, login: &str, password: &str) -> anyhow::Result<String> {
    let r = api
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"login": login, "password": password}),
        )
        .await
        .expect_ok("trader login")?;
    token_of(&r.body)
}

fn token_of(body: &Value) -> anyhow::Result<String> {
    body["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token in {body}"))
}

/// Registers, logs in and funds one bettor.
pub async fn bettor(api: &Api, funds: &str) -> anyhow::Result<Bettor> {
    let name = format!("load-{}", tag());
    api.post(
        "/api/v1/auth/register",
        None,
        &json!({"username": name, "email": format!("{name}@load.winzo.test"),
                "password": PASSWORD, "date_of_birth": "1990-01-01"}),
    )
    .await
    .expect_ok("register")?;
    let r = api
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"login": name, "password": PASSWORD}),
        )
        .await
        .expect_ok("login")?;
    let token = token_of(&r.body)?;
    let id = id_of(&r.body["user"])?;
    api.post(
        "/api/v1/wallet/deposits",
        Some(&token),
        &json!({"amount": funds, "idempotency_key": format!("load-funds-{}", tag())}),
    )
    .await
    .expect_ok("deposit")?;
    Ok(Bettor { id, token })
}

/// `n` funded bettors.
pub async fn bettors(api: &Api, n: usize, funds: &str) -> anyhow::Result<Vec<Bettor>> {
    stream::iter(0..n)
        .map(|_| bettor(api, funds))
        .buffer_unordered(REGISTER_PARALLEL)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A sport of its own (no per-sport bet delay applies), `events` events starting in
/// `starts_in`, each with `per_event` total-points markets of two selections at 1.9091.
pub async fn book(
    api: &Api,
    trader: &str,
    events: usize,
    per_event: usize,
    starts_in: Duration,
) -> anyhow::Result<Book> {
    let t = tag();
    let slug = format!("load-{t}");
    let sport = api
        .post(
            "/api/v1/trading/sports",
            Some(trader),
            &json!({"name": format!("Load {t}"), "display_name": "Load test", "slug": slug}),
        )
        .await
        .expect_ok("create sport")?;
    let sport_id = sport.id()?;
    let start = chrono::Utc::now() + chrono::Duration::from_std(starts_in)?;
    let made: Vec<anyhow::Result<(Uuid, Vec<Market>)>> = stream::iter(0..events)
        .map(|i| event(api, trader, sport_id, &t, i, start, per_event))
        .buffer_unordered(BOOK_PARALLEL / 4)
        .collect()
        .await;
    let mut book = Book {
        sport_id,
        sport_slug: slug,
        events: Vec::new(),
        markets: Vec::new(),
    };
    for m in made {
        let (e, markets) = m?;
        book.events.push(e);
        book.markets.extend(markets);
    }
    Ok(book)
}

async fn event(
    api: &Api,
    trader: &str,
    sport_id: Uuid,
    t: &str,
    i: usize,
    start: chrono::DateTime<chrono::Utc>,
    per_event: usize,
) -> anyhow::Result<(Uuid, Vec<Market>)> {
    let mut teams = Vec::new();
    for side in ["home", "away"] {
        let name = format!("{side}-{t}-{i}");
        let r = api
            .post(
                "/api/v1/trading/teams",
                Some(trader),
                &json!({"sport_id": sport_id, "name": name, "display_name": name, "slug": name}),
            )
            .await
            .expect_ok("create team")?;
        teams.push(r.id()?);
    }
    let ev = api
        .post(
            "/api/v1/trading/events",
            Some(trader),
            &json!({"sport_id": sport_id, "home_team_id": teams[0], "away_team_id": teams[1],
                    "start_time": start, "venue": "Load Park"}),
        )
        .await
        .expect_ok("create event")?
        .id()?;
    let markets: Vec<anyhow::Result<Market>> = stream::iter(0..per_event)
        .map(|k| market(api, trader, ev, k))
        .buffer_unordered(4)
        .collect()
        .await;
    Ok((ev, markets.into_iter().collect::<anyhow::Result<_>>()?))
}

async fn market(api: &Api, trader: &str, event: Uuid, k: usize) -> anyhow::Result<Market> {
    let odds = "1.9091";
    let r = api
        .post(
            &format!("/api/v1/trading/events/{event}/markets"),
            Some(trader),
            &json!({"type": "total_points", "name": format!("Total {k}.5"),
                    "total_points": format!("{k}.5"),
                    "selections": [{"name": "Over", "odds": odds}, {"name": "Under", "odds": odds}]}),
        )
        .await
        .expect_ok("create market")?;
    let selections = r.body["selections"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no selections in {}", r.body))?
        .iter()
        .map(|s| Ok((id_of(s)?, odds.to_string())))
        .collect::<anyhow::Result<_>>()?;
    Ok(Market {
        id: r.id()?,
        event,
        selections,
    })
}

/// Puts an event in play and gives each of its markets `delay_ms` of bet delay.
pub async fn go_live(
    api: &Api,
    trader: &str,
    book: &Book,
    event: Uuid,
    delay_ms: u64,
) -> anyhow::Result<()> {
    for m in book.markets_of(event) {
        api.patch(
            &format!("/api/v1/trading/markets/{}/settings", m.id),
            Some(trader),
            &json!({"bet_delay_ms": delay_ms}),
        )
        .await
        .expect_ok("market settings")?;
    }
    api.post(
        &format!("/api/v1/trading/events/{event}/status"),
        Some(trader),
        &json!({"status": "live"}),
    )
    .await
    .expect_ok("event live")?;
    Ok(())
}
