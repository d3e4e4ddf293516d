//! WebSocket subscribers: connect to `/ws`, subscribe to one topic, wait for the snapshot,
//! then count messages and measure publish-to-receive latency of `odds` deltas: the price
//! mover keeps the send time of every distinct price it sets (`Sent`), and a subscriber
//! that receives that price computes the delay (so the figure includes the trader's HTTP
//! request; the engine publishes before answering it).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::Api;
use crate::rawws::{self, RawWs};
use crate::stats::Stop;

/// Send time of each distinct price string set by the mover.
pub type Sent = Arc<RwLock<HashMap<String, Instant>>>;

/// Latencies kept per subscriber at most (memory stays bounded with 10,000 subscribers).
const LATENCIES_PER_SUBSCRIBER_MAX: usize = 20_000;

#[derive(Debug, Default)]
pub struct SubResult {
    pub connected: bool,
    pub messages: u64,
    pub odds: u64,
    pub latencies_us: Vec<u32>,
    pub error: Option<String>,
    /// Closed by the server before the end (slow consumer, heartbeat...).
    pub closed_early: bool,
    /// With a phase counter ([`subscriber`]'s `phase`): the odds messages and their
    /// latencies by the phase the run was in when each arrived (index = phase); the
    /// latencies are then kept here only, not in `latencies_us`.
    pub phases: Vec<Tally>,
}

/// What one subscriber received during one phase of a run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub odds: u64,
    pub latencies_us: Vec<u32>,
}

/// Whether this engine serves `/ws` (a plain GET is refused, but not with 404).
pub async fn available(api: &Api) -> bool {
    let r = api.get("/ws", None).await;
    r.status != 0 && r.status != 404
}

/// The phase a run is in (subscribers count their odds messages by it) and the odds
/// messages every subscriber has received so far (a drain ends when it stops growing).
#[derive(Default)]
pub struct Phases {
    pub phase: AtomicUsize,
    pub received: AtomicU64,
}

/// One subscriber of `topic` until `stop`; `ready` counts subscribers past their snapshot.
/// It uses the lean client of [`crate::rawws`]: with thousands of subscribers on the
/// engine's own cores, the generator's cost per message must stay small. With `phase`, its
/// odds messages are also counted by the value of `phase` when each arrives.
pub async fn subscriber(
    url: String,
    topic: String,
    sent: Sent,
    stop: Stop,
    ready: Arc<AtomicUsize>,
    phase: Option<Arc<Phases>>,
) -> SubResult {
    let mut out = SubResult::default();
    let mut socket = match RawWs::connect(&url, 16 * 1024).await {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            return out;
        }
    };
    out.connected = true;
    let sub = json!({"op": "subscribe", "id": 1, "topics": [topic]}).to_string();
    if let Err(e) = socket.send_text(&sub).await {
        out.error = Some(format!("subscribe: {e}"));
        return out;
    }
    let mut snapshot = false;
    while !stop.done() {
        let next = tokio::time::timeout(Duration::from_millis(250), socket.next()).await;
        let (op, range) = match next {
            Err(_) => continue,
            Ok(Ok(None)) => {
                out.closed_early = true;
                break;
            }
            Ok(Err(e)) => {
                out.error = Some(e.to_string());
                out.closed_early = true;
                break;
            }
            Ok(Ok(Some(frame))) => frame,
        };
        if op != rawws::OP_TEXT {
            continue;
        }
        let Ok(text) = std::str::from_utf8(socket.payload(range)) else {
            out.error = Some("a text frame that is not UTF-8".into());
            out.closed_early = true;
            break;
        };
        out.messages += 1;
        if !snapshot && text.contains("\"snapshot\"") {
            snapshot = true;
            ready.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if text.contains("\"type\":\"odds\"") {
            out.odds += 1;
            let latency = first_known_price(text, &sent)
                .map(|at| at.elapsed().as_micros().min(u32::MAX as u128) as u32);
            let (odds, latencies) = match &phase {
                Some(p) => {
                    p.received.fetch_add(1, Ordering::Relaxed);
                    let i = p.phase.load(Ordering::Relaxed);
                    if out.phases.len() <= i {
                        out.phases.resize_with(i + 1, Tally::default);
                    }
                    let t = &mut out.phases[i];
                    (Some(&mut t.odds), &mut t.latencies_us)
                }
                None => (None, &mut out.latencies_us),
            };
            if let Some(n) = odds {
                *n += 1;
            }
            if let Some(us) = latency {
                if latencies.len() < LATENCIES_PER_SUBSCRIBER_MAX {
                    latencies.push(us);
                }
            }
        }
    }
    let _ = socket.close().await;
    out
}

/// The send time of the first `"odds":"<price>"` of `text` the mover recorded.
fn first_known_price(text: &str, sent: &Sent) -> Option<Instant> {
    let map = sent.read().ok()?;
    let mut rest = text;
    while let Some(i) = rest.find("\"odds\":\"") {
        rest = &rest[i + 8..];
        let end = rest.find('"')?;
        if let Some(t) = map.get(&rest[..end]) {
            return Some(*t);
        }
        rest = &rest[end..];
    }
    None
}

/// Starts `n` subscribers of `topic` (connecting at most 200 at a time) and waits until
/// all have their snapshot or `wait` passes; returns the tasks and how many are ready.
/// `phase`: see [`subscriber`].
pub async fn subscribe_many(
    api: &Api,
    topic: &str,
    n: usize,
    sent: &Sent,
    stop: &Stop,
    wait: Duration,
    phase: Option<Arc<Phases>>,
) -> (Vec<tokio::task::JoinHandle<SubResult>>, usize) {
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(200) {
        for _ in chunk_start..(chunk_start + 200).min(n) {
            tasks.push(tokio::spawn(subscriber(
                api.ws_url(),
                topic.to_string(),
                sent.clone(),
                stop.clone(),
                ready.clone(),
                phase.clone(),
            )));
        }
        let until = Instant::now() + Duration::from_secs(5);
        while ready.load(Ordering::Relaxed) < tasks.len() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let until = Instant::now() + wait;
    while ready.load(Ordering::Relaxed) < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (tasks, ready.load(Ordering::Relaxed))
}
