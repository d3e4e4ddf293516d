//! `cash-out`: cash-out requests under live price movement, and what they do to bet
//! acceptance, measured in one run. Every bettor first places a few singles (the open bets
//! to cash out; not measured). The load phase has two halves of equal length, both with the
//! same bet senders and the same price mover (`--price-moves-per-s`): in the first, bets
//! alone (`single_alone`); in the second, bets (`single_with_cash_out`) while as many
//! cash-out workers take offers (`cash_out_offer`: `GET /bets/{id}/cash-out`) and cash them
//! out at the quote (`cash_out`: `POST`, half of the remaining stake one time in two, else
//! all of it). A quote overtaken by a price move is `cash_out_changed`, a refusal by rule.
//! Bets partly cashed out go back to the pool, and bets placed in the load phase join it.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::inplay::{move_prices, prices_of, single_at_current, Prices};
use super::{key, workers, Outcome, Phase};
use crate::api::Api;
use crate::provision::{self, Bettor};
use crate::stats::Stats;
use crate::Opts;

/// Open bets that may be cashed out: (bettor index, bet id).
type Pool = Arc<Mutex<Vec<(usize, Uuid)>>>;

/// Singles each bettor places before the load phase.
const SEED_BETS_PER_BETTOR: usize = 4;

pub async fn run(api: &Api, opts: &Opts) -> anyhow::Result<Outcome> {
    let trader = provision::trader(api, &opts.trader_login, &opts.trader_password).await?;
    let per_event = opts.markets_per_event.max(1);
    let events = opts.markets.div_ceil(per_event).max(1);
    let book = Arc::new(
        provision::book(
            api,
            &trader,
            events,
            per_event,
            Duration::from_secs(3 * 3600),
        )
        .await?,
    );
    let bettors = Arc::new(provision::bettors(api, opts.bettors.max(1), &opts.funds).await?);
    let prices = prices_of(&book);
    let pool: Pool = Arc::default();
    let mut seeded = Stats::default();
    // Seeding is not measured: its answers are kept only for verification.
    for (i, b) in bettors.iter().enumerate() {
        for _ in 0..SEED_BETS_PER_BETTOR {
            let mut body = single_at_current(&book.markets, &prices, "any");
            body["stake"] = json!("10.00");
            let r = api.post("/api/v1/bets", Some(&b.token), &body).await;
            if r.ok() {
                if let Ok(id) = r.id() {
                    seeded.bet_ids.push(id);
                    pool.lock().expect("pool").push((i, id));
                }
            }
        }
    }
    let seeded_bets = seeded.bet_ids.len();
    let (phase, bar) = Phase::start(opts, "cash-out");
    let half = opts.duration() / 2;
    let second_half = phase.started + half;
    let mover = tokio::spawn(move_prices(
        api.clone(),
        trader.clone(),
        book.markets.clone(),
        prices.clone(),
        opts.price_moves_per_s,
        phase.stop.clone(),
        None,
    ));
    let conc = opts.concurrency.max(1);
    // Bet senders (0..conc) through the whole phase; cash-out workers (conc..2 conc) in
    // the second half only.
    let mut stats = workers(2 * conc, |w| {
        let (api, phase, book, bettors, prices, pool) = (
            api.clone(),
            phase.clone(),
            book.clone(),
            bettors.clone(),
            prices.clone(),
            pool.clone(),
        );
        async move {
            if w < conc {
                bet_sender(
                    w,
                    conc,
                    &api,
                    &phase,
                    &book.markets,
                    &bettors,
                    &prices,
                    &pool,
                    second_half,
                )
                .await
            } else {
                // Cash-outs start with the second half (the first measures bets alone).
                tokio::time::sleep_until(tokio::time::Instant::from_std(second_half)).await;
                cash_out_worker(&api, &phase, &bettors, &pool).await
            }
        }
    })
    .await?;
    let seconds = phase.seconds();
    stats.merge(mover.await?);
    bar.abort();
    eprintln!();
    let half_s = (seconds / 2.0).max(f64::MIN_POSITIVE);
    let ok = |op: &str| stats.ops.get(op).map_or(0, |o| o.ok);
    let p99 = |op: &str| {
        stats
            .ops
            .get(op)
            .map_or(0.0, |o| o.hist.value_at_quantile(0.99) as f64 / 1000.0)
    };
    let alone = ok("single_alone") as f64 / half_s;
    let with = ok("single_with_cash_out") as f64 / half_s;
    let cash_outs = ok("cash_out") as f64 / half_s;
    let notes = vec![
        format!(
            "{} bettors, {} pre-match markets on {} events, {} seeded open bets of 10.00, {} bet senders (stake 1.00, odds_change any) through the run and {} cash-out workers in its second half, {} price moves/s throughout",
            bettors.len(), book.markets.len(), book.events.len(), seeded_bets, conc, conc,
            opts.price_moves_per_s
        ),
        format!(
            "bets accepted: {alone:.0}/s alone (p99 {:.1} ms), {with:.0}/s with cash-outs (p99 {:.1} ms): {:+.1} %",
            p99("single_alone"),
            p99("single_with_cash_out"),
            if alone > 0.0 { (with / alone - 1.0) * 100.0 } else { 0.0 }
        ),
        format!(
            "cash-outs paid: {cash_outs:.0}/s (p99 {:.1} ms), offers p99 {:.1} ms",
            p99("cash_out"),
            p99("cash_out_offer")
        ),
    ];
    let extra = json!({
        "bets_per_s_alone": alone,
        "bets_per_s_with_cash_out": with,
        "cash_outs_per_s": cash_outs,
        "cash_out_p99_ms": p99("cash_out"),
        "bet_p99_ms_alone": p99("single_alone"),
        "bet_p99_ms_with_cash_out": p99("single_with_cash_out"),
    });
    // The seeded bets are verified with the others (not measured: no operation recorded).
    stats.bet_ids.extend(seeded.bet_ids);
    Ok(Outcome {
        stats,
        seconds,
        memory_at_start: phase.memory_at_start,
        notes,
        extra,
    })
}

#[allow(clippy::too_many_arguments)]
async fn bet_sender(
    w: usize,
    conc: usize,
    api: &Api,
    phase: &Phase,
    markets: &[provision::Market],
    bettors: &[Bettor],
    prices: &Prices,
    pool: &Pool,
    second_half: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let mut k = 0usize;
    while !phase.stop.done() {
        let i = (w + k * conc) % bettors.len();
        k += 1;
        let body = single_at_current(markets, prices, "any");
        let op = if Instant::now() < second_half {
            "single_alone"
        } else {
            "single_with_cash_out"
        };
        let r = api
            .post("/api/v1/bets", Some(&bettors[i].token), &body)
            .await;
        stats.bet(op, &r, phase.live());
        if r.ok() {
            if let Ok(id) = r.id() {
                if let Ok(mut p) = pool.lock() {
                    // Bounded: the pool keeps the newest bets only.
                    if p.len() >= 100_000 {
                        p.swap_remove(0);
                    }
                    p.push((i, id));
                }
            }
        }
    }
    stats
}

async fn cash_out_worker(api: &Api, phase: &Phase, bettors: &[Bettor], pool: &Pool) -> Stats {
    let mut stats = Stats::default();
    while !phase.stop.done() {
        let picked = pool.lock().ok().and_then(|mut p| {
            if p.is_empty() {
                return None;
            }
            let j = rand::thread_rng().gen_range(0..p.len());
            Some(p.swap_remove(j))
        });
        let Some((i, bet)) = picked else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let token = &bettors[i].token;
        let offer = api
            .get(&format!("/api/v1/bets/{bet}/cash-out"), Some(token))
            .await;
        if !stats.reply("cash_out_offer", &offer, phase.live()) {
            continue;
        }
        let partial = [true, false].choose(&mut rand::thread_rng()) == Some(&true);
        let mut body = json!({"quote_id": offer.body["quote_id"], "idempotency_key": key()});
        if partial {
            body["fraction"] = json!("0.5");
        }
        let r = api
            .post(&format!("/api/v1/bets/{bet}/cash-out"), Some(token), &body)
            .await;
        let paid = stats.reply("cash_out", &r, phase.live());
        let open = !paid || r.body["status"] == "accepted";
        if open {
            if let Ok(mut p) = pool.lock() {
                p.push((i, bet));
            }
        }
    }
    stats
}
