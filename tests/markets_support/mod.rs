//! Helpers of the live-market tests: accounts with sessions, and a small book created
//! through the trading API.
#![allow(dead_code)]

use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;
use winzo::auth::Role;

/// Creates a user row with `role` and a session for it; returns (user id, token).
pub async fn account(db: &Client, role: Role) -> (Uuid, String) {
    let name = format!("u{}", &Uuid::new_v4().simple().to_string()[..12]);
    let row = db
        .query_one(
            "INSERT INTO users (username, email, password_hash, role)
             VALUES ($1::text, $1::text || '@winzo.test', 'x', $2::text::user_role) RETURNING id",
            &[&name, &role.as_str()],
        )
        .await
        .expect("insert user");
    let id: Uuid = row.get(0);
    let settings = winzo::config::load_for("test").expect("settings");
    let redis = winzo::redis_client::connect(&settings.redis).expect("redis");
    let (token, _) = winzo::auth::session::create(&redis, id.into(), role, 3600)
        .await
        .expect("session");
    (id, token)
}

/// A small book: one sport, two teams, one event, two markets of 2 and 3 selections.
pub struct Book {
    pub sport_slug: String,
    pub event_id: Uuid,
    pub markets: Vec<Uuid>,
    /// Selection ids per market.
    pub selections: Vec<Vec<Uuid>>,
}

pub async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET url` with a bearer token: (status, body).
pub async fn get_auth(http: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let r = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `PATCH /trading/markets/{market}/settings` at `base`: (status, body).
pub async fn patch_settings(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    market: Uuid,
    body: Value,
) -> (u16, Value) {
    let r = http
        .patch(format!("{base}/api/v1/trading/markets/{market}/settings"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// (stake, payout) the market at `base` counts on `selection`, from its liability read.
pub async fn selection_liability(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    market: Uuid,
    selection: Uuid,
) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
    let v: Value = http
        .get(format!("{base}/api/v1/trading/markets/{market}/liability"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let s = v["selections"]
        .as_array()
        .expect("selections")
        .iter()
        .find(|s| s["selection_id"] == selection.to_string().as_str())
        .expect("the selection")
        .clone();
    let d = |k: &str| -> rust_decimal::Decimal { s[k].as_str().expect(k).parse().expect(k) };
    (d("stake"), d("payout"))
}

fn id(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {v}"))
}

/// A sport with two teams, created through the trading API: events are added to it with
/// [`create_event`].
pub struct Catalogue {
    pub sport_slug: String,
    pub sport_id: Uuid,
    pub teams: [Uuid; 2],
}

/// Creates a sport and two teams through the trading API at `base`.
pub async fn create_catalogue(http: &reqwest::Client, base: &str, token: &str) -> Catalogue {
    let tag = &Uuid::new_v4().simple().to_string()[..10];
    let slug = format!("sport-{tag}");
    let (s, sport) = post(
        http,
        format!("{base}/api/v1/trading/sports"),
        token,
        json!({"name": format!("Sport {tag}"), "display_name": "Test Sport", "slug": slug}),
    )
    .await;
    assert_eq!(s, 201, "{sport}");
    let sport_id = id(&sport);
    let mut teams = Vec::new();
    for name in ["Harbour Rovers", "Valley Wanderers"] {
        let (s, team) = post(
            http,
            format!("{base}/api/v1/trading/teams"),
            token,
            json!({
                "sport_id": sport_id, "name": format!("{name} {tag}"), "display_name": name,
                "slug": format!("{}-{tag}", name.to_lowercase().replace(' ', "-")),
            }),
        )
        .await;
        assert_eq!(s, 201, "{team}");
        teams.push(id(&team));
    }
    Catalogue {
        sport_slug: slug,
        sport_id,
        teams: [teams[0], teams[1]],
    }
}

/// A new event of the catalogue's sport with the book's two markets (a moneyline at
/// 1.9091 / 1.9091; a total of 2.5 at 2.5 / 1.5 / 9.0).
pub async fn create_event(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    catalogue: &Catalogue,
) -> Book {
    let start = chrono::Utc::now() + chrono::Duration::hours(3);
    let (s, event) = post(
        http,
        format!("{base}/api/v1/trading/events"),
        token,
        json!({
            "sport_id": catalogue.sport_id, "home_team_id": catalogue.teams[0],
            "away_team_id": catalogue.teams[1], "start_time": start, "venue": "Test Ground",
        }),
    )
    .await;
    assert_eq!(s, 201, "{event}");
    let event_id = id(&event);
    let specs = [
        json!({"type": "moneyline", "name": "Match winner",
               "selections": [{"name": "Home", "odds": "1.9091"}, {"name": "Away", "odds": "1.9091"}]}),
        json!({"type": "total_points", "name": "Total goals 2.5", "total_points": "2.50",
               "selections": [{"name": "Over", "odds": "2.5000"}, {"name": "Under", "odds": "1.5000"},
                              {"name": "Exactly", "odds": "9.0000"}]}),
    ];
    let mut markets = Vec::new();
    let mut selections = Vec::new();
    for spec in specs {
        let (s, m) = post(
            http,
            format!("{base}/api/v1/trading/events/{event_id}/markets"),
            token,
            spec,
        )
        .await;
        assert_eq!(s, 201, "{m}");
        markets.push(id(&m));
        selections.push(m["selections"].as_array().unwrap().iter().map(id).collect());
    }
    Book {
        sport_slug: catalogue.sport_slug.clone(),
        event_id,
        markets,
        selections,
    }
}

/// Creates a book through the trading API at `base` (e.g. `http://127.0.0.1:port`): a
/// fresh sport, two teams and one event with two markets.
pub async fn create_book(http: &reqwest::Client, base: &str, token: &str) -> Book {
    let catalogue = create_catalogue(http, base, token).await;
    create_event(http, base, token, &catalogue).await
}
