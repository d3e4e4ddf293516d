//! `bets`: pre-match singles from N bettors over M markets; `parlays`: three-leg parlays
//! (three in four) and 2-of-3 system bets (one in four) over legs of distinct events.
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;

use super::{bet_body, workers, Outcome, Phase};
use crate::api::{Api, Reply};
use crate::provision::{self, Book};
use crate::stats::Stats;
use crate::Opts;

pub async fn run(api: &Api, opts: &Opts, parlays: bool) -> anyhow::Result<Outcome> {
    let trader = provision::trader(api, &opts.trader_login, &opts.trader_password).await?;
    let per_event = opts.markets_per_event.max(1);
    let events = opts
        .markets
        .div_ceil(per_event)
        .max(if parlays { 3 } else { 1 });
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
    let name = if parlays { "parlays" } else { "bets" };
    if let (Some(rate), false) = (opts.rate, parlays) {
        return open_loop(api, opts, rate, book, bettors).await;
    }
    let (phase, bar) = Phase::start(opts, name);
    let conc = opts.concurrency.max(1);
    let over_ws = opts.channel == "ws" && !parlays;
    let stats = workers(conc, |w| {
        let (api, phase, book, bettors) =
            (api.clone(), phase.clone(), book.clone(), bettors.clone());
        async move {
            let mut stats = Stats::default();
            if over_ws {
                let bettor = &bettors[w % bettors.len()];
                if let Err(e) = over_socket(&api, &bettor.token, &book, &phase, &mut stats).await {
                    stats.fail("single", format!("websocket: {e}"), false);
                }
                return stats;
            }
            let mut k = 0usize;
            while !phase.stop.done() {
                let bettor = &bettors[(w + k * conc) % bettors.len()];
                k += 1;
                let (op, body) = {
                    let mut rng = rand::thread_rng();
                    if parlays {
                        let kind = if rng.gen_ratio(1, 4) {
                            "system"
                        } else {
                            "parlay"
                        };
                        (
                            kind,
                            bet_body(kind, "1.00", &legs(&book, 3, &mut rng), "any"),
                        )
                    } else {
                        let leg = legs(&book, 1, &mut rng);
                        ("single", bet_body("single", "1.00", &leg, "any"))
                    }
                };
                let r = api.post("/api/v1/bets", Some(&bettor.token), &body).await;
                stats.bet(op, &r, phase.live());
            }
            stats
        }
    })
    .await?;
    Ok(phase.outcome(
        bar,
        stats,
        vec![format!(
            "{} bettors, {} markets on {} events, {} concurrent senders, stake 1.00, odds_change any, {}",
            bettors.len(),
            book.markets.len(),
            book.events.len(),
            conc,
            if over_ws { "each bet a place_bet on the sender's WebSocket" } else { "each bet a POST /api/v1/bets" }
        )],
        json!({"bettors": bettors.len(), "markets": book.markets.len(), "concurrency": conc,
               "channel": if over_ws { "ws" } else { "rest" }}),
    ))
}

/// One sender's singles as `place_bet` on a WebSocket authenticated as `token`, one in
/// flight: each answer (`bet_result` or `error` with the same `id`) is turned into the
/// REST answer it stands for; the private channel's messages in between are skipped.
async fn over_socket(
    api: &Api,
    token: &str,
    book: &Book,
    phase: &Phase,
    stats: &mut Stats,
) -> anyhow::Result<()> {
    let mut ws =
        crate::rawws::RawWs::connect(&format!("{}?token={token}", api.ws_url()), 16 * 1024).await?;
    let mut id: u64 = 0;
    while !phase.stop.done() {
        id += 1;
        let mut body = {
            let mut rng = rand::thread_rng();
            bet_body("single", "1.00", &legs(book, 1, &mut rng), "any")
        };
        body["op"] = json!("place_bet");
        body["id"] = json!(id);
        let sent = std::time::Instant::now();
        ws.send_text(&body.to_string()).await?;
        let reply = loop {
            let Some((_, range)) = ws.next().await? else {
                anyhow::bail!("the server closed the socket");
            };
            let msg: serde_json::Value = serde_json::from_slice(ws.payload(range))?;
            if msg["id"].as_u64() != Some(id) {
                continue;
            }
            break match msg["type"].as_str() {
                Some("bet_result") => Reply {
                    status: msg["status"].as_u64().unwrap_or(0) as u16,
                    body: msg["bet"].clone(),
                    elapsed: sent.elapsed(),
                },
                _ => Reply {
                    status: msg["status"].as_u64().unwrap_or(0) as u16,
                    body: json!({"error": {"code": msg["code"], "message": msg["message"]}}),
                    elapsed: sent.elapsed(),
                },
            };
        };
        stats.bet("single", &reply, phase.live());
    }
    Ok(())
}

/// Singles sent at `rate` per second on a fixed schedule, whatever the answers: the
/// latency of each is counted from its scheduled time, so a slow engine shows as latency
/// instead of as fewer requests (the closed loop's coordinated omission).
async fn open_loop(
    api: &Api,
    opts: &Opts,
    rate: f64,
    book: Arc<Book>,
    bettors: Arc<Vec<provision::Bettor>>,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    let (phase, bar) = Phase::start(opts, "bets-open");
    let interval = Duration::from_secs_f64(1.0 / rate);
    let inflight = Arc::new(tokio::sync::Semaphore::new(opts.inflight_max.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    let collector = {
        let phase = phase.clone();
        tokio::spawn(async move {
            let mut stats = Stats::default();
            while let Some(r) = rx.recv().await {
                stats.bet("single", &r, phase.live());
            }
            stats
        })
    };
    let start = tokio::time::Instant::now();
    let mut n: u64 = 0;
    while !phase.stop.done() {
        let due = start + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due).await;
        let bettor = bettors[(n as usize) % bettors.len()].token.clone();
        n += 1;
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            let _ = tx.send(Reply {
                status: 0,
                body: json!({"error": {"code": "generator_saturated"}}),
                elapsed: due.elapsed(),
            });
            continue;
        };
        let body = {
            let mut rng = rand::thread_rng();
            bet_body("single", "1.00", &legs(&book, 1, &mut rng), "any")
        };
        let (api, tx) = (api.clone(), tx.clone());
        tokio::spawn(async move {
            let mut r = api.post("/api/v1/bets", Some(&bettor), &body).await;
            r.elapsed = due.elapsed();
            drop(permit);
            let _ = tx.send(r);
        });
    }
    drop(tx);
    let stats = collector.await?;
    Ok(phase.outcome(
        bar,
        stats,
        vec![format!(
            "open loop: {rate:.0} singles/s offered ({n} sent or due), {} bettors, {} markets, \
             at most {} in flight, latency from each bet's scheduled time",
            bettors.len(),
            book.markets.len(),
            opts.inflight_max
        )],
        json!({"offered_per_s": rate, "bettors": bettors.len(),
               "markets": book.markets.len()}),
    ))
}

/// `n` legs from `n` distinct events (one random market and selection of each).
pub fn legs(book: &Book, n: usize, rng: &mut impl Rng) -> Vec<(uuid::Uuid, String)> {
    if n == 1 {
        let m = book.markets.choose(rng).expect("a book has markets");
        return vec![m.selections.choose(rng).expect("selections").clone()];
    }
    let events: Vec<_> = book.events.choose_multiple(rng, n).copied().collect();
    events
        .into_iter()
        .filter_map(|e| {
            let ms = book.markets_of(e);
            let m = ms.choose(rng)?;
            m.selections.choose(rng).cloned()
        })
        .collect()
}
