//! Price updates through market actors to the in-process topics, 1,000 live markets.
//!
//! 100 events × 10 markets (2 selections each) run on the engine's actor arbiters; one
//! subscriber drains each event topic. `CLIENTS` concurrent tasks send `SetPrices` with
//! `try_send` (the same `ask` the HTTP handlers use) for `SECONDS`, alternating prices so
//! every update changes odds, is published to `event:<id>` and `sport:<slug>`, and hands a
//! change to the writer queue. The writer queue is drained by a task that acknowledges
//! without Postgres: this measures the actor and topic path; durability is the writer's
//! cost, measured by the integration tests, not here.
//!
//! Run: `cargo run --release -p winzo-load-tests --bin actor_bench [SECONDS] [CLIENTS]`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use uuid::Uuid;
use winzo::actors::market::SetPrices;
use winzo::actors::{AuditActor, Registry, Shared, WriterHandle};
use winzo::broadcast::Hub;
use winzo::db::markets::{EventRow, MarketRow, SelectionRow};
use winzo::domain::ids::{EventId, MarketId, SelectionId};
use winzo::domain::{EventStatus, MarketStatus, MarketType, Odds};

const EVENTS: usize = 100;
const MARKETS_PER_EVENT: usize = 10;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    actix_rt::System::new().block_on(run(seconds, clients))
}

async fn run(seconds: u64, clients: usize) -> anyhow::Result<()> {
    let mut settings = winzo::config::load_for("development")?;
    settings.markets.mailbox_capacity_messages = 1024;
    let hub = Arc::new(Hub::new(1 << 16));
    let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            let op: winzo::actors::writer::WriteOp = op;
            if let Some(done) = op.done {
                let _ = done.send(());
            }
        }
    });
    let shared = Arc::new(Shared {
        markets: settings.markets.clone(),
        hub: hub.clone(),
        writer: WriterHandle::from_sender(tx),
        price_moves: Default::default(),
        currencies: Default::default(),
    });
    // The pool is lazy: nothing here connects to Postgres.
    let pool = winzo::db::build_pool(&settings.database)?;
    let registry = Arc::new(Registry::new(shared, pool));
    let (markets, delivered) = build_book(&registry, &hub)?;
    let markets = Arc::new(markets);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let busy = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (markets, busy, timeout, registry) = (
            markets.clone(),
            busy.clone(),
            registry.ask_timeout(),
            registry.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut n = c;
            while Instant::now() < deadline {
                let (addr, sels) = &markets[n % markets.len()];
                let odds = if (n / markets.len()) % 2 == 0 {
                    ("1.9000", "1.9000")
                } else {
                    ("1.8500", "1.9500")
                };
                let prices = vec![(sels[0], parse(odds.0)), (sels[1], parse(odds.1))];
                let t = Instant::now();
                let r = registry
                    .ask_within(addr, timeout, |reply| SetPrices {
                        prices,
                        actor: AuditActor::default(),
                        reply,
                    })
                    .await;
                match r {
                    Ok(Ok(_)) => lat.push(t.elapsed().as_nanos() as u64),
                    _ => {
                        busy.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += clients;
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all: Vec<u64> = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the topic subscribers drain what is queued before counting deliveries.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "markets={} clients={clients} seconds={seconds} updates={} updates_per_s={:.0} p50_us={:.1} p99_us={:.1} p999_us={:.1} busy={} topic_messages_delivered={} subscribers_dropped={}",
        markets.len(),
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        busy.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed),
        hub.dropped_total.load(Ordering::Relaxed),
    );
    actix_rt::System::current().stop();
    Ok(())
}

fn parse(s: &str) -> Odds {
    Odds::parse(s, Decimal::from(1000)).expect("odds")
}

type Book = Vec<(
    actix::Addr<winzo::actors::market::MarketActor>,
    Vec<SelectionId>,
)>;

/// Starts 100 events × 10 markets and a draining subscriber per event topic.
fn build_book(registry: &Registry, hub: &Arc<Hub>) -> anyhow::Result<(Book, Arc<AtomicU64>)> {
    let delivered = Arc::new(AtomicU64::new(0));
    let mut book = Vec::new();
    for _ in 0..EVENTS {
        let event = EventRow {
            id: EventId::new_random(),
            sport_id: Uuid::new_v4(),
            sport_slug: "football".into(),
            league_id: None,
            home_team_id: Uuid::new_v4(),
            away_team_id: Uuid::new_v4(),
            home_team_name: "Home".into(),
            away_team_name: "Away".into(),
            start_time: chrono::Utc::now() + chrono::Duration::hours(2),
            status: EventStatus::Scheduled,
            period: None,
            clock: None,
            home_score: 0,
            away_score: 0,
            venue: None,
        };
        registry.start_event(event.clone());
        let (_, mut rx, _) = hub.subscribe(&winzo::broadcast::event_topic(event.id));
        let d = delivered.clone();
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                d.fetch_add(1, Ordering::Relaxed);
            }
        });
        for m in 0..MARKETS_PER_EVENT {
            let market_id = MarketId::new_random();
            let sels: Vec<SelectionRow> = ["Home", "Away"]
                .iter()
                .map(|n| SelectionRow {
                    id: SelectionId::new_random(),
                    market_id,
                    name: n.to_string(),
                    odds: Decimal::new(19000, 4),
                })
                .collect();
            let ids = sels.iter().map(|s| s.id).collect();
            let row = MarketRow {
                id: market_id,
                event_id: event.id,
                market_type: MarketType::PropBet,
                name: format!("market {m}"),
                handicap: None,
                total_points: None,
                status: MarketStatus::Open,
                in_play: false,
                feed_suspended: false,
                settings: Default::default(),
            };
            let addr = registry.start_market(&event, row, sels, &Default::default())?;
            book.push((addr, ids));
        }
    }
    Ok((book, delivered))
}
