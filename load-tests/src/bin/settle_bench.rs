//! Settling one market carrying many open bets: wall time from the settle request to the
//! last bet booked, and the latency of bets placed on OTHER markets meanwhile.
//!
//! Setup in bulk SQL (as the ledger writer would have written them): `BETTORS` funded
//! users with `BETS / BETTORS` accepted 10.00 bets each on a two-way market, half on each
//! selection; every tenth bet is a two-leg parlay whose other leg is on a second market
//! already settled as a win (so the settled market carries singles and parlay legs).
//! Another event carries `OTHER_MARKETS` open markets for the concurrent bettors.
//!
//! Then the engine is built in process on that database and, in order:
//! 1. warm-up: the concurrent bettors place bets for `WARMUP` (actors, caches, pool);
//! 2. `during`: the bettors keep placing singles on the other markets (each waits for its
//!    answer, then places the next) while the market is settled through the same service
//!    the endpoint calls (`settlement::open`); the phase ends when the settlement completes;
//! 3. `alone`: the same bettors for the same duration with no settlement running.
//!
//! The bettors run on `server.workers` threads of their own (as the HTTP workers would),
//! calling `winzo::bets::place` with the engine's `AppState`: the real bet path (market
//! actors, wallet shards, ledger writer, Postgres), without HTTP.
//!
//! Run against a fresh database cloned from a migrated template (nothing else in it):
//! `DATABASE_URL=postgres://winzo@127.0.0.1:25433/<db> WINZO_ENV=test \
//!  settle_bench [BETS] [CONCURRENT_BETTORS] [PACE_MS]`
//! (defaults 100000, 32, 100: each bettor places at most one bet every PACE_MS; 0: each
//! places its next bet as soon as the last is answered, which saturates this machine).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;
use winzo::actors::AuditActor;
use winzo::bets::request::LegRequest;
use winzo::bets::PlaceBetRequest;
use winzo::domain::ids::{MarketId, SelectionId, UserId};
use winzo::domain::{BetType, LegResult, Money, Odds};
use winzo::settlement::open::{open, Kind, OpenRequest, ResultSpec};
use winzo::startup::Application;
use winzo::state::AppState;

const BETTORS: i64 = 10_000;
const OTHER_MARKETS: usize = 32;
const WARMUP: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bets: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let concurrent: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);
    let pace_ms: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let mut settings = winzo::config::load()?;
    settings.database.url = std::env::var("DATABASE_URL")?;
    settings.database.migrate_on_start = false;
    settings.server.port = 0;
    settings.database.statement_timeout_ms = 600_000;
    let threads = settings.server.workers.max(1);
    actix_rt::System::new().block_on(async move {
        let pool = winzo::db::build_pool(&settings.database)?;
        let mut client = pool.get().await?;
        let book = setup(&mut client, bets, concurrent).await?;
        drop(client);
        let app = Application::build(settings).await?;
        let state = app.state().clone();
        let bettors = Bettors {
            state: state.clone(),
            users: book.bettors.clone(),
            selections: book.other_selections.clone(),
            threads,
            pace: Duration::from_millis(pace_ms),
        };
        bettors.run(WARMUP).await;
        let (wall, during) = {
            let stop = Arc::new(AtomicBool::new(false));
            let running = bettors.start(stop.clone());
            let cpu_before = Cpu::sample(&pool).await?;
            let wall = settle(&state, &pool, &book).await?;
            let cpu = Cpu::sample(&pool).await?.since(&cpu_before);
            stop.store(true, Ordering::Release);
            println!(
                "cpu during settlement: engine process {:.2} s, Postgres backends of this database {:.2} s",
                cpu.engine_s, cpu.postgres_s
            );
            (wall, Bettors::join(running).await)
        };
        let alone = bettors.run(wall).await;
        report(&pool, &book, bets, wall, &during, &alone).await
    })
}

/// What the setup made.
struct Book {
    market: MarketId,
    selections: Vec<SelectionId>,
    bettors: Vec<UserId>,
    other_selections: Vec<SelectionId>,
}

/// Settles the market (win / loss) and waits for `completed_at`; answers the wall time.
async fn settle(
    state: &AppState,
    pool: &deadpool_postgres::Pool,
    book: &Book,
) -> anyhow::Result<Duration> {
    let results = book
        .selections
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
        book.market,
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
                &[&book.market],
            )
            .await?
            .get(0);
        if done {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Latencies of accepted bets and the refusals by code.
#[derive(Default)]
struct Sample {
    accepted: Vec<Duration>,
    errors: std::collections::BTreeMap<String, usize>,
    elapsed: Duration,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.accepted.extend(other.accepted);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    fn line(&mut self, name: &str) -> String {
        self.accepted.sort();
        let q = |p: f64| -> f64 {
            if self.accepted.is_empty() {
                return 0.0;
            }
            let i =
                ((self.accepted.len() as f64 * p).ceil() as usize).clamp(1, self.accepted.len());
            self.accepted[i - 1].as_secs_f64() * 1000.0
        };
        format!(
            "{name}: {} accepted in {:.2} s ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, errors {:?}",
            self.accepted.len(),
            self.elapsed.as_secs_f64(),
            self.accepted.len() as f64 / self.elapsed.as_secs_f64().max(1e-9),
            q(0.5),
            q(0.99),
            q(1.0),
            self.errors
        )
    }
}

/// The concurrent bettors on the other markets.
struct Bettors {
    state: AppState,
    users: Vec<UserId>,
    selections: Vec<SelectionId>,
    threads: usize,
    /// Each bettor places at most one bet per `pace` (zero: as fast as answered).
    pace: Duration,
}

impl Bettors {
    /// Runs every bettor for `duration` and gathers their samples.
    async fn run(&self, duration: Duration) -> Sample {
        let stop = Arc::new(AtomicBool::new(false));
        let running = self.start(stop.clone());
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Release);
        Bettors::join(running).await
    }

    /// Starts the bettors on `threads` threads of their own, until `stop`.
    fn start(&self, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Sample>> {
        (0..self.threads)
            .map(|t| {
                let users: Vec<UserId> = self
                    .users
                    .iter()
                    .skip(t)
                    .step_by(self.threads)
                    .copied()
                    .collect();
                let (state, selections, stop) =
                    (self.state.clone(), self.selections.clone(), stop.clone());
                let pace = self.pace;
                std::thread::spawn(move || {
                    actix_rt::System::new()
                        .block_on(thread_bettors(state, users, selections, stop, pace))
                })
            })
            .collect()
    }

    /// Waits (without blocking this thread: the engine's actors run on it) for every
    /// bettor thread to finish, and merges their samples.
    async fn join(running: Vec<std::thread::JoinHandle<Sample>>) -> Sample {
        while !running.iter().all(|h| h.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut all = Sample::default();
        for h in running {
            if let Ok(s) = h.join() {
                all.merge(s);
            }
        }
        all
    }
}

async fn thread_bettors(
    state: AppState,
    users: Vec<UserId>,
    selections: Vec<SelectionId>,
    stop: Arc<AtomicBool>,
    pace: Duration,
) -> Sample {
    let started = Instant::now();
    let selections = Arc::new(selections);
    let tasks: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, user)| {
            let (state, selections, stop) = (state.clone(), selections.clone(), stop.clone());
            actix_rt::spawn(bettor(state, user, i, selections, stop, pace))
        })
        .collect();
    let mut all = Sample::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.merge(s);
        }
    }
    all.elapsed = started.elapsed();
    all
}

/// One bettor: a 1.00 single at 2.0 on the next other market, answer, wait for the next
/// tick of `pace` (none when late), repeat.
async fn bettor(
    state: AppState,
    user: UserId,
    seed: usize,
    selections: Arc<Vec<SelectionId>>,
    stop: Arc<AtomicBool>,
    pace: Duration,
) -> Sample {
    let mut out = Sample::default();
    let mut ticks = tokio::time::interval(pace.max(Duration::from_micros(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = seed * 7;
    let (stake, odds) = (
        Money::parse("1.00"),
        Odds::parse("2.0", winzo::domain::odds::ODDS_COLUMN_MAX),
    );
    let (Ok(stake), Ok(odds)) = (stake, odds) else {
        return out;
    };
    while !stop.load(Ordering::Acquire) {
        if !pace.is_zero() {
            ticks.tick().await;
        }
        n += 1;
        let req = PlaceBetRequest {
            bet_type: BetType::Single,
            stake,
            legs: vec![LegRequest {
                selection_id: selections[n % selections.len()],
                odds,
            }],
            odds_change: None,
            idempotency_key: Uuid::new_v4().to_string(),
            system_size: None,
            funding: None,
            free_bet_id: None,
        };
        let t = Instant::now();
        match state
            .bets
            .place(winzo::app::bets::Channel::Rest, user, req)
            .await
        {
            Ok(_) => out.accepted.push(t.elapsed()),
            Err(e) => {
                let e = winzo::routes::error::ApiError::from(e);
                *out.errors
                    .entry(format!("{}: {}", e.code, e.message))
                    .or_default() += 1
            }
        }
    }
    out
}

async fn report(
    pool: &deadpool_postgres::Pool,
    book: &Book,
    bets: i64,
    wall: Duration,
    during: &Sample,
    alone: &Sample,
) -> anyhow::Result<()> {
    let client = pool.get().await?;
    let open_left: i64 = client
        .query_one(
            "SELECT count(*) FROM bets b JOIN bet_selections bs ON bs.bet_id = b.id
             WHERE bs.selection_id = ANY($1) AND b.status = 'accepted'",
            &[&book.selections],
        )
        .await?
        .get(0);
    println!(
        "settled {bets} bets in {:.2} s ({:.0} bets/s); left open: {open_left}",
        wall.as_secs_f64(),
        bets as f64 / wall.as_secs_f64()
    );
    let (mut during, mut alone) = (clone(during), clone(alone));
    println!("{}", during.line("other markets during settlement"));
    println!("{}", alone.line("other markets, no settlement   "));
    let violations = winzo::ledger_check::check(&client).await?;
    println!("check-ledger: {} violation(s)", violations.len());
    for v in violations.iter().take(5) {
        println!("  {v}");
    }
    Ok(())
}

fn clone(s: &Sample) -> Sample {
    Sample {
        accepted: s.accepted.clone(),
        errors: s.errors.clone(),
        elapsed: s.elapsed,
    }
}

/// The markets, selections, users and bets, in bulk.
async fn setup(
    client: &mut deadpool_postgres::Client,
    bets: i64,
    concurrent: usize,
) -> anyhow::Result<Book> {
    let tx = client.transaction().await?;
    let sport: Uuid = tx
        .query_one(
            "INSERT INTO sports (name, display_name, slug) VALUES ('bench', 'bench', 'bench-settle')
             RETURNING id",
            &[],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO teams (sport_id, name, display_name, slug) VALUES
           ($1, 'Home', 'Home', 'bench-home'), ($1, 'Away', 'Away', 'bench-away')",
        &[&sport],
    )
    .await?;
    let (market, selections) = market_with_selections(&tx, sport, 1).await?;
    let (parlay_market, parlay_selections) = market_with_selections(&tx, sport, 1).await?;
    let (_, others) = market_with_selections(&tx, sport, OTHER_MARKETS).await?;
    let per_user = (bets / BETTORS).max(1);
    let users = bets / per_user;
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE bulk_users ON COMMIT DROP AS
           SELECT gen_random_uuid() AS id, g FROM generate_series(1, {users}) g;
         INSERT INTO users (id, username, email, password_hash, salt)
           SELECT id, 'bench' || g, 'bench' || g || '@bench.test', 'x', 'x' FROM bulk_users;
         INSERT INTO user_balances (user_id, balance) SELECT id, 100000 FROM bulk_users;
         INSERT INTO transactions (user_id, type, amount, status)
           SELECT id, 'deposit', 100000, 'completed' FROM bulk_users;
         CREATE TEMP TABLE bulk_bets ON COMMIT DROP AS
           SELECT gen_random_uuid() AS id, u.id AS user_id, k, u.g FROM bulk_users u,
                  generate_series(1, {per_user}) k;
         INSERT INTO bets (id, user_id, type, status, stake, total_odds, potential_win, metadata)
           SELECT id, user_id, CASE WHEN (g + k) % 10 = 0 THEN 'parlay' ELSE 'single' END::bet_type,
                  'accepted', 10, CASE WHEN (g + k) % 10 = 0 THEN 4.0 ELSE 2.0 END,
                  CASE WHEN (g + k) % 10 = 0 THEN 40 ELSE 20 END,
                  '{{\"unit_stake\": \"10.00\", \"lines\": 1}}' FROM bulk_bets;
         INSERT INTO transactions (user_id, type, amount, status, reference, related_bet_id, processed_at)
           SELECT user_id, 'bet_debit', -10, 'completed', 'bet:' || id, id, now() FROM bulk_bets;
         UPDATE user_balances b SET balance = balance - 10 * {per_user}
           FROM bulk_users u WHERE b.user_id = u.id;"
    ))
    .await?;
    tx.execute(
        "INSERT INTO bet_selections (bet_id, selection_id, odds)
         SELECT id, ($1::uuid[])[1 + (k % 2)], 2.0 FROM bulk_bets",
        &[&selections],
    )
    .await?;
    // The parlays' other leg: already won on a market settled before.
    tx.execute(
        "INSERT INTO bet_selections (bet_id, selection_id, odds, result, settled_at, settlement_version)
         SELECT id, $1, 2.0, 'win', now(), 1 FROM bulk_bets WHERE (g + k) % 10 = 0",
        &[&parlay_selections[0]],
    )
    .await?;
    let bettors = concurrent_bettors(&tx, concurrent).await?;
    tx.commit().await?;
    // After the commit: the placement check refuses legs on a settled market.
    client
        .execute(
            "UPDATE markets SET status = 'settled', settled_at = now() WHERE id = $1",
            &[&parlay_market],
        )
        .await?;
    // As a live database would be: statistics of the bulk-loaded tables.
    client
        .batch_execute("ANALYZE bets; ANALYZE bet_selections; ANALYZE transactions; ANALYZE user_balances; ANALYZE users")
        .await?;
    Ok(Book {
        market,
        selections,
        bettors,
        other_selections: others,
    })
}

/// `markets` events with one two-way market at 2.0 each; answers the first market and
/// every selection.
async fn market_with_selections(
    tx: &deadpool_postgres::Transaction<'_>,
    sport: Uuid,
    markets: usize,
) -> anyhow::Result<(MarketId, Vec<SelectionId>)> {
    let mut first = None;
    let mut selections = Vec::new();
    for _ in 0..markets {
        let market: MarketId = tx
            .query_one(
                "WITH e AS (
                   INSERT INTO events (sport_id, home_team_id, away_team_id, start_time)
                   SELECT $1, h.id, a.id, now() + interval '1 hour'
                   FROM teams h, teams a WHERE h.slug = 'bench-home' AND a.slug = 'bench-away'
                   RETURNING id)
                 INSERT INTO markets (event_id, type, name) SELECT id, 'moneyline', 'Winner' FROM e
                 RETURNING id",
                &[&sport],
            )
            .await?
            .get(0);
        first.get_or_insert(market);
        for name in ["Home", "Away"] {
            selections.push(
                tx.query_one(
                    "INSERT INTO selections (market_id, name, odds) VALUES ($1, $2, 2.0)
                     RETURNING id",
                    &[&market, &name],
                )
                .await?
                .get(0),
            );
        }
    }
    Ok((first.unwrap_or(MarketId(Uuid::nil())), selections))
}

/// Funded users for the concurrent bettors.
async fn concurrent_bettors(
    tx: &deadpool_postgres::Transaction<'_>,
    n: usize,
) -> anyhow::Result<Vec<UserId>> {
    let n = i64::try_from(n)?;
    let rows = tx
        .query(
            "WITH u AS (
               INSERT INTO users (username, email, password_hash, salt)
               SELECT 'bettor' || g, 'bettor' || g || '@bench.test', 'x', 'x'
               FROM generate_series(1, $1::bigint) g RETURNING id),
             b AS (INSERT INTO user_balances (user_id, balance) SELECT id, 1000000 FROM u),
             d AS (INSERT INTO transactions (user_id, type, amount, status)
                   SELECT id, 'deposit', 1000000, 'completed' FROM u)
             SELECT id FROM u",
            &[&n],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// CPU seconds used so far by this process and by each Postgres backend of its database
/// (read from /proc: the bench runs on the database's machine).
struct Cpu {
    engine_s: f64,
    postgres_s: f64,
    backends: std::collections::HashMap<i32, f64>,
}

impl Cpu {
    async fn sample(pool: &deadpool_postgres::Pool) -> anyhow::Result<Cpu> {
        let client = pool.get().await?;
        let pids: Vec<i32> = client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let backends: std::collections::HashMap<i32, f64> = pids
            .into_iter()
            .filter_map(|pid| proc_cpu_s(&format!("/proc/{pid}/stat")).map(|s| (pid, s)))
            .collect();
        Ok(Cpu {
            engine_s: proc_cpu_s("/proc/self/stat").unwrap_or_default(),
            postgres_s: 0.0,
            backends,
        })
    }

    /// What was used between `earlier` and this sample (a backend started meanwhile counts
    /// from zero; one that ended meanwhile is missed).
    fn since(self, earlier: &Cpu) -> Cpu {
        let postgres_s = self
            .backends
            .iter()
            .map(|(pid, s)| s - earlier.backends.get(pid).copied().unwrap_or_default())
            .sum();
        Cpu {
            engine_s: self.engine_s - earlier.engine_s,
            postgres_s,
            backends: self.backends,
        }
    }
}

/// utime + stime of a /proc/<pid>/stat file, in seconds (clock ticks of 100 Hz).
fn proc_cpu_s(path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
