//! Settling one market carrying many open bets: wall time from the settle request to the
//! last bet booked.
//!
//! Setup in bulk SQL (as the ledger writer would have written them): `BETTORS` funded
//! users with `BETS / BETTORS` accepted 10.00 singles each on a two-way market, half on
//! each selection. Then the engine is built in process on that database and the market is
//! settled through the same service the endpoint calls (`settlement::open`).
//!
//! Run against a fresh database cloned from a migrated template (nothing else in it):
//! `DATABASE_URL=postgres://winzo@127.0.0.1:55433/<db> WINZO_ENV=test \
//!  cargo run -p winzo-load-tests --bin settle_bench [BETS]`
use std::time::{Duration, Instant};

use uuid::Uuid;
use winzo::actors::AuditActor;
use winzo::domain::LegResult;
use winzo::settlement::open::{open, Kind, OpenRequest, ResultSpec};
use winzo::startup::Application;

const BETTORS: i64 = 10_000;

const SETUP: &str = "
INSERT INTO sports (id, name, display_name, slug) VALUES ($1, 'bench', 'bench', 'bench-settle');
INSERT INTO teams (id, sport_id, name, display_name, slug) VALUES
  ('00000000-0000-0000-0000-0000000000a1', $1, 'Home', 'Home', 'bench-home'),
  ('00000000-0000-0000-0000-0000000000a2', $1, 'Away', 'Away', 'bench-away');
";

fn main() -> anyhow::Result<()> {
    let bets: i64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut settings = winzo::config::load()?;
    settings.database.url = std::env::var("DATABASE_URL")?;
    settings.database.migrate_on_start = false;
    settings.server.port = 0;
    settings.database.statement_timeout_ms = 600_000;
    actix_rt::System::new().block_on(async move {
        let pool = winzo::db::build_pool(&settings.database)?;
        let client = pool.get().await?;
        let (market, selections) = setup(&client, bets).await?;
        drop(client);
        let app = Application::build(settings).await?;
        let state = app.state().clone();
        let results = selections
            .iter()
            .zip([LegResult::Win, LegResult::Loss])
            .map(|(id, r)| ResultSpec {
                selection_id: *id,
                result: r,
                dead_heat_factor: None,
                void_factor: None,
            })
            .collect();
        let started = Instant::now();
        let req = OpenRequest {
            kind: Kind::Settle,
            results,
            void_after: None,
            reason: None,
        };
        open(
            &state.settlement,
            &state.registry,
            market,
            req,
            AuditActor::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("settle: {e:?}"))?;
        let client = pool.get().await?;
        loop {
            let done: bool = client
                .query_one(
                    "SELECT completed_at IS NOT NULL FROM market_settlements WHERE market_id = $1",
                    &[&market],
                )
                .await?
                .get(0);
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = started.elapsed();
        let open_left: i64 = client
            .query_one("SELECT count(*) FROM bets WHERE status = 'accepted'", &[])
            .await?
            .get(0);
        println!(
            "settled {bets} bets in {:.2} s ({:.0} bets/s); left open: {open_left}",
            wall.as_secs_f64(),
            bets as f64 / wall.as_secs_f64()
        );
        Ok(())
    })
}

/// The market, its two selections and the bets, in bulk.
async fn setup(client: &deadpool_postgres::Client, bets: i64) -> anyhow::Result<(Uuid, Vec<Uuid>)> {
    let sport = Uuid::new_v4();
    client
        .execute(SETUP.lines().nth(1).unwrap_or_default(), &[&sport])
        .await?;
    client
        .execute(
            &SETUP.lines().skip(2).collect::<Vec<_>>().join("\n"),
            &[&sport],
        )
        .await?;
    let event: Uuid = client
        .query_one(
            "INSERT INTO events (sport_id, home_team_id, away_team_id, start_time)
         VALUES ($1, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000a2',
                 now() + interval '1 hour') RETURNING id",
            &[&sport],
        )
        .await?
        .get(0);
    let market: Uuid = client.query_one(
        "INSERT INTO markets (event_id, type, name) VALUES ($1, 'moneyline', 'Winner') RETURNING id",
        &[&event]).await?.get(0);
    let mut selections = Vec::new();
    for name in ["Home", "Away"] {
        selections.push(client.query_one(
            "INSERT INTO selections (market_id, name, odds) VALUES ($1, $2, 2.0) RETURNING id",
            &[&market, &name]).await?.get(0));
    }
    let per_user = (bets / BETTORS).max(1);
    let users = bets / per_user;
    client.batch_execute(&format!(
        "BEGIN;
         CREATE TEMP TABLE bulk_users ON COMMIT DROP AS
           SELECT gen_random_uuid() AS id, g FROM generate_series(1, {users}) g;
         INSERT INTO users (id, username, email, password_hash, salt)
           SELECT id, 'bench' || g, 'bench' || g || '@bench.test', 'x', 'x' FROM bulk_users;
         INSERT INTO user_balances (user_id, balance) SELECT id, 100000 FROM bulk_users;
         INSERT INTO transactions (user_id, type, amount, status)
           SELECT id, 'deposit', 100000, 'completed' FROM bulk_users;
         CREATE TEMP TABLE bulk_bets ON COMMIT DROP AS
           SELECT gen_random_uuid() AS id, u.id AS user_id, k FROM bulk_users u,
                  generate_series(1, {per_user}) k;
         INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win, metadata)
           SELECT id, user_id, 'single', 'accepted', 10, 2.0, 20,
                  '{{\"unit_stake\": \"10.00\", \"lines\": 1}}' FROM bulk_bets;
         INSERT INTO transactions (user_id, type, amount, status, reference, related_bet_id, processed_at)
           SELECT user_id, 'bet_debit', -10, 'completed', 'bet:' || id, id, now() FROM bulk_bets;
         UPDATE user_balances b SET balance = balance - 10 * {per_user}
           FROM bulk_users u WHERE b.user_id = u.id;")).await?;
    client
        .execute(
            "INSERT INTO bet_selections (bet_id, selection_id, odds)
         SELECT id, ($1::uuid[])[1 + (k % 2)], 2.0 FROM bulk_bets",
            &[&selections],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    Ok((market, selections))
}
