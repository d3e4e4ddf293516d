//! `inplay`: singles on live markets with a real bet delay while a price mover changes
//! prices and a stopper suspends and resumes the events (bet stops). Bettors send the
//! price they last saw with `odds_change: none`, so price moves during the delay refuse
//! some bets (`odds_changed`), bet stops others (`market_suspended`): both are counted as
//! refusals, not errors.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::seq::SliceRandom;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{bet_body, price_pair, sleep_or_stop, workers, Outcome, Phase};
use crate::api::Api;
use crate::provision::{self, Book, Market};
use crate::stats::{Stats, Stop};
use crate::Opts;

/// The prices the mover last set, by market: what bettors send.
pub type Prices = Arc<RwLock<HashMap<Uuid, Vec<(Uuid, String)>>>>;

pub fn prices_of(book: &Book) -> Prices {
    Arc::new(RwLock::new(
        book.markets
            .iter()
            .map(|m| (m.id, m.selections.clone()))
            .collect(),
    ))
}

pub async fn run(api: &Api, opts: &Opts) -> anyhow::Result<Outcome> {
    let trader = provision::trader(api, &opts.trader_login, &opts.trader_password).await?;
    let per_event = opts.markets_per_event.clamp(1, 10);
    let events = opts.markets.div_ceil(per_event).clamp(1, 10);
    let book =
        Arc::new(provision::book(api, &trader, events, per_event, Duration::from_secs(60)).await?);
    for e in &book.events {
        provision::go_live(api, &trader, &book, *e, opts.bet_delay_ms).await?;
    }
    let bettors = Arc::new(provision::bettors(api, opts.bettors.max(1), &opts.funds).await?);
    let prices = prices_of(&book);
    let (phase, bar) = Phase::start(opts, "inplay");
    let mover = tokio::spawn(move_prices(
        api.clone(),
        trader.clone(),
        book.markets.clone(),
        prices.clone(),
        opts.price_moves_per_s,
        phase.stop.clone(),
        None,
    ));
    let stopper = tokio::spawn(bet_stops(
        api.clone(),
        trader.clone(),
        book.events.clone(),
        opts.goal_every_s,
        opts.bet_stop_ms,
        phase.stop.clone(),
    ));
    let conc = opts.concurrency.max(1);
    let mut stats = workers(conc, |w| {
        let (api, phase, book, bettors, prices) = (
            api.clone(),
            phase.clone(),
            book.clone(),
            bettors.clone(),
            prices.clone(),
        );
        async move {
            let mut stats = Stats::default();
            let mut k = 0usize;
            while !phase.stop.done() {
                let bettor = &bettors[(w + k * conc) % bettors.len()];
                k += 1;
                let body = single_at_current(&book.markets, &prices, "none");
                let r = api.post("/api/v1/bets", Some(&bettor.token), &body).await;
                stats.bet("inplay_single", &r, phase.live());
            }
            stats
        }
    })
    .await?;
    let seconds = phase.seconds();
    stats.merge(mover.await?);
    stats.merge(stopper.await?);
    bar.abort();
    eprintln!();
    Ok(Outcome {
        stats,
        seconds,
        memory_at_start: phase.memory_at_start,
        notes: vec![format!(
            "{} live markets on {} events, bet delay {} ms, {} price moves/s, bet stop of {} ms every {} s, {} senders, odds_change none",
            book.markets.len(), book.events.len(), opts.bet_delay_ms, opts.price_moves_per_s,
            opts.bet_stop_ms, opts.goal_every_s, conc
        )],
        extra: json!({"bet_delay_ms": opts.bet_delay_ms, "markets": book.markets.len()}),
    })
}

/// A single on a random market of `markets` at the price last set, with `policy`.
pub fn single_at_current(markets: &[Market], prices: &Prices, policy: &str) -> Value {
    let mut rng = rand::thread_rng();
    let m = markets.choose(&mut rng).expect("markets");
    let leg = prices
        .read()
        .ok()
        .and_then(|p| p.get(&m.id).and_then(|s| s.choose(&mut rng).cloned()))
        .unwrap_or_else(|| m.selections[0].clone());
    bet_body("single", "1.00", &[leg], policy)
}

/// Sets new prices on random markets at `per_s` a second until the phase ends.
pub async fn move_prices(
    api: Api,
    trader: String,
    markets: Vec<Market>,
    prices: Prices,
    per_s: u64,
    stop: Stop,
    sent: Option<crate::ws::Sent>,
) -> Stats {
    let mut stats = Stats::default();
    if per_s == 0 || markets.is_empty() {
        return stats;
    }
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.done() {
        tick.tick().await;
        let (m, a, b) = {
            let mut rng = rand::thread_rng();
            let m = markets.choose(&mut rng).expect("markets").clone();
            let (a, b) = price_pair(&mut rng);
            (m, a, b)
        };
        let (s0, s1) = (m.selections[0].0, m.selections[1].0);
        if let Some(Ok(mut map)) = sent.as_ref().map(|m| m.write()) {
            let now = std::time::Instant::now();
            map.insert(a.clone(), now);
            map.insert(b.clone(), now);
        }
        let body =
            json!({"prices": [{"selection_id": s0, "odds": a}, {"selection_id": s1, "odds": b}]});
        let r = api
            .post(
                &format!("/api/v1/trading/markets/{}/prices", m.id),
                Some(&trader),
                &body,
            )
            .await;
        // A suspended market refuses prices: that is a refusal, not an error.
        if stats.reply("price_move", &r, &stop.live) {
            if let Ok(mut p) = prices.write() {
                p.insert(m.id, vec![(s0, a), (s1, b)]);
            }
        }
    }
    stats
}

/// Every `every_s`: suspends all `events` (a bet stop), waits `stop_ms`, resumes them.
pub async fn bet_stops(
    api: Api,
    trader: String,
    events: Vec<Uuid>,
    every_s: u64,
    stop_ms: u64,
    stop: Stop,
) -> Stats {
    let mut stats = Stats::default();
    if every_s == 0 {
        return stats;
    }
    loop {
        sleep_or_stop(&stop, Duration::from_secs(every_s)).await;
        if stop.done() {
            return stats;
        }
        for e in &events {
            let r = api
                .post(
                    &format!("/api/v1/trading/events/{e}/suspend"),
                    Some(&trader),
                    &json!({}),
                )
                .await;
            stats.reply("bet_stop", &r, &stop.live);
        }
        tokio::time::sleep(Duration::from_millis(stop_ms)).await;
        for e in &events {
            let r = api
                .post(
                    &format!("/api/v1/trading/events/{e}/resume"),
                    Some(&trader),
                    &json!({}),
                )
                .await;
            stats.reply("resume", &r, &stop.live);
        }
    }
}
