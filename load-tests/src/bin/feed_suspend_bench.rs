//! Feed to suspension, inside the engine: from a signed `bet_stop` push's bytes to a market
//! refusing a bet leg.
//!
//! One event with 10 markets on the engine's actor arbiters (no Postgres: the live-state
//! writer's queue is drained by a task that acknowledges at once; durability is measured by
//! the integration tests). Each iteration, timed from the push's raw bytes:
//! 1. the route's work: HMAC verification of the raw body and parsing (`feed::auth::verify`,
//!    `feed::messages::parse_push`), the sequencer's per-event lock and classification;
//! 2. the EventActor turn (`FeedBetStop`), which queues the suspension to every market;
//! 3. a bet leg (`CheckAndReserve`) sent to a market right after, answered `market_suspended`.
//!
//! The time reported is (1) + (2) + (3): the push's arrival to the refused bet. The markets
//! are then reopened with feed prices and the next iteration starts.
//!
//! Run: `cargo run --release -p winzo-load-tests --bin feed_suspend_bench [ITERATIONS]`.
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use uuid::Uuid;
use winzo::actors::event::feed::FeedBetStop;
use winzo::actors::market::feed::{FeedFilter, FeedPrices};
use winzo::actors::market::{CheckAndReserve, LegRequest};
use winzo::actors::{AuditActor, LegRejection, Registry, Shared, WriterHandle};
use winzo::broadcast::Hub;
use winzo::db::markets::{EventRow, MarketRow, SelectionRow};
use winzo::domain::ids::{EventId, MarketId, SelectionId};
use winzo::domain::{EventStatus, MarketStatus, MarketType, Odds, OddsChangePolicy};
use winzo::feed::sequencer::{classify, Sequencer};

const MARKETS: usize = 10;

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    actix_rt::System::new().block_on(run(iterations))
}

async fn run(iterations: usize) -> anyhow::Result<()> {
    let settings = winzo::config::load_for("development")?;
    let hub = Arc::new(Hub::new(1024));
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
        hub,
        writer: WriterHandle::from_sender(tx),
        price_moves: Default::default(),
        currencies: Default::default(),
    });
    let registry = Registry::new(shared, winzo::db::build_pool(&settings.database)?);
    let (event, markets) = build(&registry)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let timeout = registry.ask_timeout();
    let secret = settings.feed.providers[0].secret.clone();
    let provider = settings.feed.providers[0].id.clone();
    let sequencer = Sequencer::default();
    let mut route_ns = Vec::with_capacity(iterations);
    let mut total_ns = Vec::with_capacity(iterations);
    let (first_market, first_selection) = markets[0].clone();
    for i in 0..iterations {
        let body = format!(
            r#"{{"seq":{},"event_ref":"bench-1","type":"bet_stop"}}"#,
            i + 1
        );
        let ts = chrono::Utc::now().timestamp();
        let sig = winzo::feed::auth::sign(&secret, ts, body.as_bytes());
        let ts = ts.to_string();
        let t0 = Instant::now();
        winzo::feed::auth::verify(
            &settings.feed,
            &provider,
            Some(&ts),
            Some(&sig),
            body.as_bytes(),
            chrono::Utc::now().timestamp(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let msgs = winzo::feed::messages::parse_push(body.as_bytes(), 500)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let entry = sequencer.entry(&provider, "bench-1");
        let mut e = entry.lock().await;
        let _ = classify(e.last_seq, msgs[0].seq.unwrap_or(0));
        e.last_seq += 1;
        drop(e);
        route_ns.push(t0.elapsed().as_nanos() as u64);
        let answers = registry
            .ask_within(&event, timeout, |reply| FeedBetStop {
                filter: Arc::new(FeedFilter::All),
                actor: AuditActor::default(),
                reply,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let leg = LegRequest {
            selection_id: first_selection,
            odds: odds("1.9000"),
            policy: OddsChangePolicy::Any,
            stake: Decimal::new(1000, 2),
            payout: None,
            currency_code: "USD".into(),
            stake_factor: Decimal::ONE,
            user_max_stake: None,
            referable: false,
        };
        let refused = registry
            .ask_within(&first_market, timeout, |reply| CheckAndReserve {
                leg,
                reply,
            })
            .await;
        total_ns.push(t0.elapsed().as_nanos() as u64);
        if !matches!(refused, Ok(Err(LegRejection::MarketSuspended))) {
            anyhow::bail!("iteration {i}: the market took the bet after the bet stop");
        }
        for a in answers {
            let _ = a.await;
        }
        reopen(&registry, &markets, timeout, i).await?;
    }
    route_ns.sort_unstable();
    total_ns.sort_unstable();
    let pct =
        |v: &Vec<u64>, p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0;
    println!(
        "iterations={iterations} markets={MARKETS} route_p50_us={:.1} route_p99_us={:.1} push_to_refusal_p50_us={:.1} push_to_refusal_p99_us={:.1} p999_us={:.1} max_us={:.1}",
        pct(&route_ns, 0.5), pct(&route_ns, 0.99), pct(&total_ns, 0.5), pct(&total_ns, 0.99), pct(&total_ns, 0.999), pct(&total_ns, 1.0)
    );
    actix_rt::System::current().stop();
    Ok(())
}

type MarketHandle = (actix::Addr<winzo::actors::market::MarketActor>, SelectionId);

/// Feed prices on every market clear the feed's suspension for the next iteration.
async fn reopen(
    registry: &Registry,
    markets: &[MarketHandle],
    timeout: Duration,
    i: usize,
) -> anyhow::Result<()> {
    let price = if i.is_multiple_of(2) {
        odds("1.9100")
    } else {
        odds("1.9000")
    };
    for (addr, _) in markets {
        let prices = vec![("Home".to_string(), price), ("Away".to_string(), price)];
        let out = registry
            .ask_within(addr, timeout, |reply| FeedPrices {
                prices,
                actor: AuditActor::default(),
                seq_mark: None,
                reply,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for d in out.durables {
            let _ = d.await;
        }
    }
    Ok(())
}

fn odds(s: &str) -> Odds {
    Odds::parse(s, Decimal::from(1000)).expect("odds")
}

fn build(
    registry: &Registry,
) -> anyhow::Result<(
    actix::Addr<winzo::actors::event::EventActor>,
    Vec<MarketHandle>,
)> {
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
    let addr = registry.start_event(event.clone());
    let mut out = Vec::new();
    for m in 0..MARKETS {
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
        let first = sels[0].id;
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
        out.push((
            registry.start_market(&event, row, sels, &Default::default())?,
            first,
        ));
    }
    Ok((addr, out))
}
