//! Rows that many tests need, inserted straight into a test database with SQL.
use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use tokio_postgres::Client;
use uuid::Uuid;

/// A market with its selections, on a fresh event of a fresh sport.
pub struct Book {
    pub sport_id: Uuid,
    pub event_id: Uuid,
    pub market_id: Uuid,
    pub selection_ids: Vec<Uuid>,
}

/// Inserts a sport, two teams, an event starting in `starts_in_min` minutes and a
/// moneyline market with one selection per price.
pub async fn book(client: &Client, prices: &[Decimal], starts_in_min: i64) -> Book {
    let tag = Uuid::new_v4().simple().to_string()[..8].to_string();
    let sport_id: Uuid = client
        .query_one(
            "INSERT INTO sports (name, display_name, slug) VALUES ($1, $1, $1) RETURNING id",
            &[&format!("sport-{tag}")],
        )
        .await
        .unwrap()
        .get(0);
    let mut teams = Vec::new();
    for side in ["home", "away"] {
        let name = format!("{side} {tag}");
        let id: Uuid = client
            .query_one(
                "INSERT INTO teams (sport_id, name, display_name, slug) VALUES ($1, $2, $2, $3) RETURNING id",
                &[&sport_id, &name, &format!("{side}-{tag}")],
            )
            .await
            .unwrap()
            .get(0);
        teams.push(id);
    }
    let start = Utc::now() + Duration::minutes(starts_in_min);
    let event_id: Uuid = client
        .query_one(
            "INSERT INTO events (sport_id, home_team_id, away_team_id, start_time) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&sport_id, &teams[0], &teams[1], &start],
        )
        .await
        .unwrap()
        .get(0);
    let market_id: Uuid = client
        .query_one(
            "INSERT INTO markets (event_id, type, name) VALUES ($1, 'moneyline', 'Match winner') RETURNING id",
            &[&event_id],
        )
        .await
        .unwrap()
        .get(0);
    let mut selection_ids = Vec::new();
    for (i, odds) in prices.iter().enumerate() {
        let id: Uuid = client
            .query_one(
                "INSERT INTO selections (market_id, name, odds) VALUES ($1, $2, $3) RETURNING id",
                &[&market_id, &format!("sel {i}"), odds],
            )
            .await
            .unwrap()
            .get(0);
        selection_ids.push(id);
    }
    Book {
        sport_id,
        event_id,
        market_id,
        selection_ids,
    }
}

/// Inserts an active bettor with a profile, preferences and `funds` in the balance, the
/// funds backed by a completed deposit so the ledger balances.
pub async fn funded_user(client: &Client, funds: Decimal) -> Uuid {
    let tag = Uuid::new_v4().simple().to_string();
    let user_id: Uuid = client
        .query_one(
            "INSERT INTO users (username, email, password_hash, salt) VALUES ($1, $2, 'x', 'x') RETURNING id",
            &[&format!("u{}", &tag[..12]), &format!("{}@example.com", &tag[..12])],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "INSERT INTO user_profiles (user_id) VALUES ($1)",
            &[&user_id],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO user_preferences (user_id) VALUES ($1)",
            &[&user_id],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO user_balances (user_id, balance) VALUES ($1, $2)",
            &[&user_id, &funds],
        )
        .await
        .unwrap();
    if funds > Decimal::ZERO {
        client
            .execute(
                "INSERT INTO transactions (user_id, type, amount, status) VALUES ($1, 'deposit', $2, 'completed')",
                &[&user_id, &funds],
            )
            .await
            .unwrap();
    }
    user_id
}

/// `n` bettors as [`funded_user`] makes them, in one transaction (one round trip).
pub async fn funded_users(client: &Client, funds: Decimal, n: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mut sql = String::from("BEGIN;");
    for id in &ids {
        let tag = &id.simple().to_string()[..12];
        sql.push_str(&format!(
            "INSERT INTO users (id, username, email, password_hash, salt)
               VALUES ('{id}', 'u{tag}', '{tag}@example.com', 'x', 'x');
             INSERT INTO user_profiles (user_id) VALUES ('{id}');
             INSERT INTO user_preferences (user_id) VALUES ('{id}');
             INSERT INTO user_balances (user_id, balance) VALUES ('{id}', {funds});"
        ));
        if funds > Decimal::ZERO {
            sql.push_str(&format!(
                "INSERT INTO transactions (user_id, type, amount, status)
                   VALUES ('{id}', 'deposit', {funds}, 'completed');"
            ));
        }
    }
    sql.push_str("COMMIT;");
    client.batch_execute(&sql).await.expect("funded users");
    ids
}

/// A user's balance.
pub async fn balance(client: &Client, user: Uuid) -> Decimal {
    client
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0)
}
