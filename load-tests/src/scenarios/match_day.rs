//! `match-day`: a big final. Most bets go to one live event (bet delay, prices moving, a
//! goal every `goal_every_s` seconds: bet stop, pause, reopening, and the senders' backlog
//! surges in after it; bettors accept any price change, so refusals come from bet stops); the rest are pre-match singles and parlays on other events; with
//! a WebSocket server, `subscribers` clients watch the final.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use super::inplay::{bet_stops, move_prices, prices_of, single_at_current};
use super::{bet_body, bets::legs, workers, Outcome, Phase};
use crate::api::Api;
use crate::provision::{self, Market};
use crate::stats::{Live, Stats, Stop};
use crate::ws::{self, Sent};
use crate::Opts;

pub async fn run(api: &Api, opts: &Opts) -> anyhow::Result<Outcome> {
    let trader = provision::trader(api, &opts.trader_login, &opts.trader_password).await?;
    let per_event = opts.markets_per_event.clamp(1, 20);
    let final_book = provision::book(api, &trader, 1, per_event, Duration::from_secs(60)).await?;
    let main = final_book.events[0];
    provision::go_live(api, &trader, &final_book, main, opts.bet_delay_ms).await?;
    let others = opts
        .markets
        .saturating_sub(per_event)
        .div_ceil(per_event)
        .max(3);
    let pre = Arc::new(
        provision::book(
            api,
            &trader,
            others,
            per_event,
            Duration::from_secs(3 * 3600),
        )
        .await?,
    );
    let bettors = Arc::new(provision::bettors(api, opts.bettors.max(1), &opts.funds).await?);
    let main_markets: Arc<Vec<Market>> = Arc::new(final_book.markets.clone());
    let prices = prices_of(&final_book);
    let sent: Sent = Arc::new(RwLock::new(HashMap::new()));
    let subs_stop = Stop::new(
        Instant::now() + Duration::from_secs(3600),
        None,
        Arc::new(Live::default()),
    );
    let mut notes = Vec::new();
    let (subs, ready) = if opts.subscribers > 0 && ws::available(api).await {
        let wait = Duration::from_secs(30 + opts.subscribers as u64 / 100);
        ws::subscribe_many(
            api,
            &format!("event:{main}"),
            opts.subscribers,
            &sent,
            &subs_stop,
            wait,
            None,
        )
        .await
    } else {
        notes.push("no WebSocket subscribers (none asked, or /ws not served)".to_string());
        (Vec::new(), 0)
    };
    let (phase, bar) = Phase::start(opts, "match-day");
    let mover = tokio::spawn(move_prices(
        api.clone(),
        trader.clone(),
        final_book.markets.clone(),
        prices.clone(),
        opts.price_moves_per_s,
        phase.stop.clone(),
        Some(sent.clone()),
    ));
    let goals = tokio::spawn(bet_stops(
        api.clone(),
        trader.clone(),
        vec![main],
        opts.goal_every_s,
        opts.bet_stop_ms,
        phase.stop.clone(),
    ));
    let conc = opts.concurrency.max(1);
    let mut stats = workers(conc, |w| {
        let (api, phase, pre, bettors, prices, main_markets) = (
            api.clone(),
            phase.clone(),
            pre.clone(),
            bettors.clone(),
            prices.clone(),
            main_markets.clone(),
        );
        async move {
            let mut stats = Stats::default();
            let mut k = 0usize;
            while !phase.stop.done() {
                let bettor = &bettors[(w + k * conc) % bettors.len()];
                k += 1;
                let roll = rand::thread_rng().gen_range(0..10);
                let (op, body) = match roll {
                    0..=6 => (
                        "final_inplay_single",
                        single_at_current(&main_markets, &prices, "any"),
                    ),
                    7..=8 => {
                        let l = legs(&pre, 1, &mut rand::thread_rng());
                        ("prematch_single", bet_body("single", "1.00", &l, "any"))
                    }
                    _ => {
                        let l = legs(&pre, 3, &mut rand::thread_rng());
                        ("prematch_parlay", bet_body("parlay", "1.00", &l, "any"))
                    }
                };
                let r = api.post("/api/v1/bets", Some(&bettor.token), &body).await;
                stats.bet(op, &r, phase.live());
            }
            stats
        }
    })
    .await?;
    let seconds = phase.seconds();
    stats.merge(mover.await?);
    stats.merge(goals.await?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    subs_stop.halt();
    let mut delivered = 0u64;
    for t in subs {
        let r = t.await.unwrap_or_default();
        delivered += r.odds;
        if r.closed_early || !r.connected {
            stats.fail(
                "ws_subscriber",
                if r.connected {
                    "closed_early"
                } else {
                    "connect_failed"
                }
                .into(),
                false,
            );
        }
        for us in r.latencies_us {
            stats.ok("ws_odds_delivery", Duration::from_micros(u64::from(us)));
        }
    }
    bar.abort();
    eprintln!();
    notes.push(format!(
        "final: {} live markets, bet delay {} ms, {} price moves/s, goal (bet stop {} ms) every {} s; {} pre-match markets; {} senders (70% final, 20% pre-match singles, 10% parlays)",
        main_markets.len(), opts.bet_delay_ms, opts.price_moves_per_s, opts.bet_stop_ms,
        opts.goal_every_s, pre.markets.len(), conc
    ));
    notes.push(format!(
        "{ready} WebSocket subscribers on the final received {delivered} odds messages"
    ));
    Ok(Outcome {
        stats,
        seconds,
        memory_at_start: phase.memory_at_start,
        notes,
        extra: json!({"subscribers_ready": ready, "ws_odds_delivered": delivered}),
    })
}
