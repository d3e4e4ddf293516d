//! WebSocket subscribers: connect to `/ws`, subscribe to one topic, wait for the snapshot,
//! then count messages and measure publish-to-receive latency of `odds` deltas: the price
//! mover keeps the send time of every distinct price it sets (`Sent`), and a subscriber
//! that receives that price computes the delay (so the figure includes the trader's HTTP
//! request; the engine publishes before answering it).
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::api::Api;
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
}

/// Whether this engine serves `/ws` (a plain GET is refused, but not with 404).
pub async fn available(api: &Api) -> bool {
    let r = api.get("/ws", None).await;
    r.status != 0 && r.status != 404
}

/// One subscriber of `topic` until `stop`; `ready` counts subscribers past their snapshot.
pub async fn subscriber(
    url: String,
    topic: String,
    sent: Sent,
    stop: Stop,
    ready: Arc<AtomicUsize>,
) -> SubResult {
    let mut out = SubResult::default();
    let (mut socket, _) = match tokio_tungstenite::connect_async(&url).await {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            return out;
        }
    };
    out.connected = true;
    let sub = json!({"op": "subscribe", "id": 1, "topics": [topic]}).to_string();
    if let Err(e) = socket.send(Message::Text(sub)).await {
        out.error = Some(format!("subscribe: {e}"));
        return out;
    }
    let mut snapshot = false;
    while !stop.done() {
        let next = tokio::time::timeout(Duration::from_millis(250), socket.next()).await;
        let msg = match next {
            Err(_) => continue,
            Ok(None) => {
                out.closed_early = true;
                break;
            }
            Ok(Some(Err(e))) => {
                out.error = Some(e.to_string());
                out.closed_early = true;
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(text) = msg else { continue };
        out.messages += 1;
        if !snapshot && text.contains("\"snapshot\"") {
            snapshot = true;
            ready.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if text.contains("\"type\":\"odds\"") {
            out.odds += 1;
            if let Some(at) = first_known_price(&text, &sent) {
                if out.latencies_us.len() < LATENCIES_PER_SUBSCRIBER_MAX {
                    out.latencies_us
                        .push(at.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
        }
    }
    let _ = socket.close(None).await;
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
pub async fn subscribe_many(
    api: &Api,
    topic: &str,
    n: usize,
    sent: &Sent,
    stop: &Stop,
    wait: Duration,
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
