//! `winzo seed-demo`: a small live-looking book so a newcomer can look and bet at once.
//!
//! Idempotent: sports, leagues and teams are keyed by slug, accounts by username; a fresh
//! set of events is created only when the demo leagues have no upcoming or live event.
//!
//! Markets and selections are named as `winzo feed-sim` names them (the winner market's
//! selections are the two teams' names and `Draw`; totals are `Over` and `Under`) and are
//! inserted in their natural order (home, draw, away; over, under; the winner market first)
//! with `created_at = clock_timestamp()`, so the catalogue and the WebSocket snapshot, which
//! read them `ORDER BY created_at, id`, give them back in that order (the transaction's
//! `CURRENT_TIMESTAMP` is the same for every row, and the ids are random).
use anyhow::Context;
use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_postgres::{NoTls, Transaction};
use uuid::Uuid;

use crate::auth::password;
use crate::config::Settings;
use crate::domain::ids::{EventId, MarketId, UserId};

pub const DEMO_BETTOR: (&str, &str, &str) = ("demo", "demo@winzo.test", "demo-password-1");
pub const DEMO_TRADER: (&str, &str, &str) = ("trader", "trader@winzo.test", "trader-password-1");
pub const DEMO_ADMIN: (&str, &str, &str) = ("admin", "admin@winzo.test", "admin-password-1");
const DEMO_FUNDS: Decimal = dec!(1000.00);

struct SportSpec {
    name: &'static str,
    display: &'static str,
    league: (&'static str, &'static str, &'static str),
    teams: &'static [(&'static str, &'static str, &'static str)],
    three_way: bool,
    /// The period of the seeded live event, thirty minutes in (as feed-sim names periods).
    live_period: &'static str,
}

const SPORTS: &[SportSpec] = &[
    SportSpec {
        name: "football",
        display: "Football",
        league: ("premier-league", "Premier League", "GB"),
        teams: &[
            ("Arsenal", "ARS", "London"),
            ("Chelsea", "CHE", "London"),
            ("Liverpool", "LIV", "Liverpool"),
            ("Everton", "EVE", "Liverpool"),
            ("Newcastle United", "NEW", "Newcastle"),
            ("Aston Villa", "AVL", "Birmingham"),
        ],
        three_way: true,
        live_period: "1H",
    },
    SportSpec {
        name: "basketball",
        display: "Basketball",
        league: ("nba", "NBA", "US"),
        teams: &[
            ("Boston Celtics", "BOS", "Boston"),
            ("Denver Nuggets", "DEN", "Denver"),
            ("Miami Heat", "MIA", "Miami"),
            ("Chicago Bulls", "CHI", "Chicago"),
        ],
        three_way: false,
        live_period: "Q3",
    },
];

fn slug(name: &str) -> String {
    name.to_lowercase().replace(' ', "-")
}

/// Loads the demo data into the database of `settings` and prints the credentials.
pub async fn seed(settings: &Settings) -> anyhow::Result<()> {
    let (mut client, conn) = tokio_postgres::connect(&settings.database.url, NoTls)
        .await
        .context("connecting to Postgres")?;
    let conn_task = tokio::spawn(conn);
    let tx = client.transaction().await?;
    let mut created_events = 0;
    for spec in SPORTS {
        created_events += seed_sport(&tx, spec).await?;
    }
    seed_account(&tx, DEMO_BETTOR, "user", Some(DEMO_FUNDS)).await?;
    seed_account(&tx, DEMO_TRADER, "moderator", None).await?;
    seed_account(&tx, DEMO_ADMIN, "admin", None).await?;
    tx.commit().await?;
    drop(client);
    conn_task.abort();
    seed_bonus(settings).await?;
    println!("demo data ready ({created_events} new events)");
    for (role, (user, _, pass)) in [
        ("bettor", DEMO_BETTOR),
        ("trader", DEMO_TRADER),
        ("admin", DEMO_ADMIN),
    ] {
        println!("  {role:<7} login={user:<8} password={pass}");
    }
    Ok(())
}

/// The sport's league and teams (kept), and its demo events unless the league has current
/// ones already; answers how many events were created.
async fn seed_sport(tx: &Transaction<'_>, spec: &SportSpec) -> anyhow::Result<usize> {
    let league = seed_league(tx, spec).await?;
    let current: i64 = tx
        .query_one(
            "SELECT count(*) FROM events WHERE league_id = $1 AND status IN ('scheduled','live')
               AND start_time > now() - interval '3 hours'",
            &[&league.league_id],
        )
        .await?
        .get(0);
    if current > 0 {
        return Ok(0);
    }
    let mut created = 0;
    for (i, pair) in league.team_ids.chunks(2).enumerate() {
        seed_event(tx, spec, &league, i, (pair[0], pair[1])).await?;
        created += 1;
    }
    Ok(created)
}

/// The ids of a demo sport's catalogue rows.
struct SeededLeague {
    sport_id: Uuid,
    league_id: Uuid,
    team_ids: Vec<Uuid>,
}

/// The sport, its league and its teams, created or found by slug.
async fn seed_league(tx: &Transaction<'_>, spec: &SportSpec) -> anyhow::Result<SeededLeague> {
    let sport_id: Uuid = tx
        .query_one(
            "INSERT INTO sports (name, display_name, slug) VALUES ($1, $2, $1)
             ON CONFLICT (slug) DO UPDATE SET display_name = EXCLUDED.display_name
             RETURNING id",
            &[&spec.name, &spec.display],
        )
        .await?
        .get(0);
    let (lslug, lname, country) = spec.league;
    let league_id: Uuid = tx
        .query_one(
            "INSERT INTO leagues (sport_id, name, display_name, slug, country_code)
             VALUES ($1, $2, $2, $3, $4)
             ON CONFLICT (sport_id, slug) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            &[&sport_id, &lname, &lslug, &country],
        )
        .await?
        .get(0);
    let mut team_ids = Vec::new();
    for (name, abbr, city) in spec.teams {
        let id: Uuid = tx
            .query_one(
                "INSERT INTO teams (sport_id, league_id, name, display_name, slug, abbreviation, city)
                 VALUES ($1, $2, $3, $3, $4, $5, $6)
                 ON CONFLICT (sport_id, slug) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                &[&sport_id, &league_id, name, &slug(name), abbr, city],
            )
            .await?
            .get(0);
        team_ids.push(id);
    }
    Ok(SeededLeague {
        sport_id,
        league_id,
        team_ids,
    })
}

/// The `i`-th event of the league (the first is live, the others start later) between
/// the teams of `pair`, with its markets.
async fn seed_event(
    tx: &Transaction<'_>,
    spec: &SportSpec,
    league: &SeededLeague,
    i: usize,
    pair: (Uuid, Uuid),
) -> anyhow::Result<()> {
    let (home, away) = (spec.teams[i * 2].0, spec.teams[i * 2 + 1].0);
    let live = i == 0;
    let start = if live {
        Utc::now() - Duration::minutes(30)
    } else {
        Utc::now() + Duration::hours(2 * i as i64)
    };
    let status = if live { "live" } else { "scheduled" };
    let event_id: EventId = tx
        .query_one(
            "INSERT INTO events (sport_id, league_id, home_team_id, away_team_id, start_time,
                                 status, period, clock, venue)
             VALUES ($1, $2, $3, $4, $5, $6::text::event_status, $7, $8, $9) RETURNING id",
            &[
                &league.sport_id,
                &league.league_id,
                &pair.0,
                &pair.1,
                &start,
                &status,
                &live.then_some(spec.live_period),
                &live.then_some("30:00"),
                &format!("{} Stadium", spec.teams[i * 2].2),
            ],
        )
        .await?
        .get(0);
    seed_markets(tx, event_id, spec, (home, away), live).await
}

/// The event's markets, the winner market first, each with its selections in their natural
/// order: home, draw, away; over, under.
async fn seed_markets(
    tx: &Transaction<'_>,
    event_id: EventId,
    spec: &SportSpec,
    (home, away): (&str, &str),
    live: bool,
) -> anyhow::Result<()> {
    let winner: &[(&str, Decimal)] = if spec.three_way {
        &[
            (home, dec!(2.1000)),
            ("Draw", dec!(3.4000)),
            (away, dec!(3.6000)),
        ]
    } else {
        &[(home, dec!(1.8000)), (away, dec!(2.0500))]
    };
    let (total_line, total_name) = if spec.three_way {
        (dec!(2.5), "Total goals 2.5")
    } else {
        (dec!(215.5), "Total points 215.5")
    };
    let totals: &[(&str, Decimal)] = &[("Over", dec!(1.9000)), ("Under", dec!(1.9000))];
    let markets = [
        ("moneyline", "Match winner", None, winner),
        ("total_points", total_name, Some(total_line), totals),
    ];
    for (mtype, name, total, selections) in markets {
        // clock_timestamp(): rows of one transaction keep their insert order under
        // ORDER BY created_at (CURRENT_TIMESTAMP is the transaction's start for all of them).
        let market_id: MarketId = tx
            .query_one(
                "INSERT INTO markets (event_id, type, name, total_points, in_play, created_at)
                 VALUES ($1, $2::text::market_type, $3, $4, $5, clock_timestamp()) RETURNING id",
                &[&event_id, &mtype, &name, &total, &live],
            )
            .await?
            .get(0);
        for (sel_name, odds) in selections {
            tx.execute(
                "INSERT INTO selections (market_id, name, odds, created_at)
                 VALUES ($1, $2, $3, clock_timestamp())",
                &[&market_id, sel_name, odds],
            )
            .await?;
        }
    }
    Ok(())
}

/// The demo bettor's bonus and free bet (docs/accounts.md, "Bonuses and free bets"), once:
/// a grant like a trader's (its `bonus` transaction and the bonus balance) and a free bet.
async fn seed_bonus(settings: &Settings) -> anyhow::Result<()> {
    use crate::db::bonus as bdb;
    let mut db = settings.database.clone();
    db.pool_max_size = 1;
    let pool = crate::db::build_pool(&db)?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let user_id: UserId = tx
        .query_one(
            "SELECT id FROM users WHERE username = $1",
            &[&DEMO_BETTOR.0],
        )
        .await?
        .get(0);
    let expires_at = chrono::Utc::now() + chrono::Duration::days(30);
    if bdb::bonus_by_key(&tx, user_id, "demo-bonus")
        .await?
        .is_none()
    {
        bdb::insert_bonus(
            &tx,
            &bdb::NewBonus {
                user_id,
                amount: Decimal::new(2500, 2),
                wagering_multiplier: 5,
                min_odds: Decimal::new(15, 1),
                expires_at,
                idempotency_key: "demo-bonus",
                granted_by: None,
                // The demo bettor's account is in USD; the cap is configured in the base.
                conversion_cap: settings
                    .currencies
                    .build(&settings.accounts.currencies)
                    .map_err(anyhow::Error::msg)?
                    .of("USD")
                    .from_base(
                        settings.bonus.conversion_max,
                        crate::domain::currency::Rounding::Down,
                    ),
            },
        )
        .await?;
    }
    bdb::insert_free_bet(
        &tx,
        &bdb::NewFreeBet {
            user_id,
            stake: Decimal::new(500, 2),
            min_odds: Decimal::new(15, 1),
            expires_at,
            idempotency_key: "demo-free-bet",
            granted_by: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn seed_account(
    tx: &Transaction<'_>,
    (username, email, pass): (&str, &str, &str),
    role: &str,
    funds: Option<Decimal>,
) -> anyhow::Result<()> {
    let exists = tx
        .query_opt("SELECT id FROM users WHERE username = $1", &[&username])
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    let hashed = password::hash(pass)?;
    let user_id: UserId = tx
        .query_one(
            "INSERT INTO users (username, email, password_hash, salt, role, email_verified)
             VALUES ($1, $2, $3, $4, $5::text::user_role, true) RETURNING id",
            &[&username, &email, &hashed.phc, &hashed.salt, &role],
        )
        .await?
        .get(0);
    let dob = chrono::NaiveDate::from_ymd_opt(1990, 1, 1);
    // Verified, so the demo stays playable whatever `[kyc] required_before` lists.
    tx.execute(
        "INSERT INTO user_profiles (user_id, date_of_birth, country_code, currency_code,
                                    verification_status, verification_documents,
                                    verification_submitted_at, verification_reviewed_at)
         VALUES ($1, $2, 'GB', 'USD', 'verified',
                 '[{\"document_type\": \"passport\", \"reference\": \"demo-passport\",
                    \"decision\": \"verified\"}]', now(), now())",
        &[&user_id, &dob],
    )
    .await?;
    tx.execute(
        "INSERT INTO user_preferences (user_id, odds_format) VALUES ($1, 'decimal')",
        &[&user_id],
    )
    .await?;
    let balance = funds.unwrap_or(Decimal::ZERO);
    tx.execute(
        "INSERT INTO user_balances (user_id, balance, currency_code) VALUES ($1, $2, 'USD')",
        &[&user_id, &balance],
    )
    .await?;
    if let Some(amount) = funds {
        tx.execute(
            "INSERT INTO transactions (user_id, type, amount, status, reference, description, processed_at)
             VALUES ($1, 'deposit', $2, 'completed', $3, 'demo funds', now())",
            &[&user_id, &amount, &format!("demo-funds-{user_id}")],
        )
        .await?;
    }
    Ok(())
}
