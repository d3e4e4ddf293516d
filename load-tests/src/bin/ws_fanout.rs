//! WebSocket fan-out: CLIENTS WebSocket subscribers of one event on a running engine (a
//! separate process: the 20,000 open-files limit per process does not allow both ends of
//! 10,000 connections in one), prices moved continuously through the signed feed.
//!
//! 1. A probe subscribes to `sport:<slug>`; a `fixture` push creates a fresh event with a
//!    moneyline; the probe learns its id from the `fixture` delta.
//! 2. CLIENTS connections subscribe to `event:<id>` and wait for their snapshot; the
//!    engine's resident memory before and after gives the memory per idle connection.
//! 3. For SECONDS, RATE odds pushes per second, each with a distinct home price; the push's
//!    send time is kept per price, and every client measures publish-to-receive latency
//!    from it (the push is sent before the engine publishes, so this slightly overstates).
//!
//! 4. PER_PUSH (6th argument, default 1): odds messages per push (an array, consecutive
//!    seqs, each a distinct price), as a feed provider batching its price changes sends them.
//!
//! Run (engine started with `winzo serve`, demo sports seeded):
//! `cargo run --release -p winzo-load-tests --bin ws_fanout -- http://127.0.0.1:8080 10000 20 40 <engine pid> [per_push]`
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Sent = Arc<Mutex<HashMap<String, Instant>>>;
/// Latency samples of every subscriber, in µs.
type Samples = Arc<Mutex<Vec<u64>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let engine = a
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let clients: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let rate: u64 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(40);
    let pid: Option<u32> = a.get(5).and_then(|s| s.parse().ok());
    let per_push: u64 = a.get(6).and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let sport = std::env::var("SPORT").unwrap_or_else(|_| "football".into());
    let settings = winzo::config::load_for("development")?;
    let provider = settings.feed.providers[0].clone();
    let ws_url = engine.replacen("http", "ws", 1) + "/ws";
    let http = reqwest::Client::new();
    let event_ref = format!("fanout-{}", uuid::Uuid::new_v4().simple());

    // 1. The event.
    let (mut probe, _) = tokio_tungstenite::connect_async(&ws_url).await?;
    probe
        .send(Message::Text(
            json!({"op": "subscribe", "id": 1, "topics": [format!("sport:{sport}")]}).to_string(),
        ))
        .await?;
    let start = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let fixture = json!({"seq": 1, "event_ref": event_ref, "type": "fixture", "sport": sport, "home": "Fanout Home",
        "away": "Fanout Away", "start_time": start,
        "markets": [{"type": "moneyline", "selections": [{"name": "home", "odds": "1.90"}, {"name": "away", "odds": "1.90"}]}]});
    push(&http, &engine, &provider, &fixture).await?;
    let event_id = loop {
        let Some(Ok(Message::Text(t))) = probe.next().await else {
            anyhow::bail!("probe closed")
        };
        let v: Value = serde_json::from_str(&t)?;
        if v["type"] == "fixture" && v["data"]["home"] == "Fanout Home" {
            break v["data"]["event_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
    };
    drop(probe);

    // 2. The subscribers.
    let rss_before = pid.map(rss_kib);
    let delivered = Arc::new(AtomicU64::new(0));
    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    // 0: connecting, 1: measuring, 2: stop and hand back samples.
    let measuring = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let samples: Samples = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(clients.max(1));
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (url, topic) = (ws_url.clone(), format!("event:{event_id}"));
        let (delivered, sent, measuring, ready, lat) = (
            delivered.clone(),
            sent.clone(),
            measuring.clone(),
            ready_tx.clone(),
            samples.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client(c, url, topic, delivered, sent, measuring, ready, lat).await
        }));
        if c % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ready_tx);
    let mut connected = 0;
    while connected < clients {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(())) => connected += 1,
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = pid.map(rss_kib);
    println!("connected={connected}/{clients} event={event_id}");
    if let (Some(b), Some(i)) = (rss_before, rss_idle) {
        println!(
            "engine_rss_before_kib={b} engine_rss_idle_kib={i} per_idle_connection_kib={:.1}",
            (i as f64 - b as f64) / connected.max(1) as f64
        );
    }

    // 3. Prices move.
    measuring.store(1, Ordering::Relaxed);
    let cpu_start = (
        pid.and_then(winzo_load::cpu::ticks),
        winzo_load::cpu::ticks(std::process::id()),
    );
    let started = Instant::now();
    let every = Duration::from_micros(1_000_000 / rate.max(1));
    let mut tick = tokio::time::interval(every);
    let mut seq = 1;
    let mut pushes = 0u64;
    let mut push_ms: Vec<f64> = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let mut batch = Vec::with_capacity(per_push as usize);
        for _ in 0..per_push {
            seq += 1;
            // A distinct home price per message over 1,000 seqs (the latency key).
            let home = 1.50 + ((seq % 1000) as f64) / 1000.0;
            let away = 1.0 / (1.05 - 1.0 / home);
            let (h, aw) = (format!("{home:.3}"), format!("{away:.2}"));
            let key = format!("{home:.4}");
            sent.lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .insert(key, Instant::now());
            batch.push(json!({"seq": seq, "event_ref": event_ref, "type": "odds", "market": {"type": "moneyline"},
                             "prices": [{"name": "home", "odds": h}, {"name": "away", "odds": aw}]}));
        }
        let msg = if per_push == 1 {
            batch.remove(0)
        } else {
            Value::Array(batch)
        };
        // In order: the engine applies one event's messages by seq (an overtaken push
        // would be a duplicate).
        let at = Instant::now();
        if push(&http, &engine, &provider, &msg).await.is_ok() {
            pushes += 1;
            push_ms.push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_end = (
        pid.and_then(winzo_load::cpu::ticks),
        winzo_load::cpu::ticks(std::process::id()),
    );
    let cpu_s = started.elapsed().as_secs_f64();
    measuring.store(2, Ordering::Relaxed);
    let rss_busy = pid.map(rss_kib);
    for t in &tasks {
        t.abort();
    }
    let mut lat: Vec<u64> = samples
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    lat.sort_unstable();
    push_ms.sort_by(|a, b| a.total_cmp(b));
    let push_p50 = push_ms.get(push_ms.len() / 2).copied().unwrap_or(0.0);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let n = delivered.load(Ordering::Relaxed);
    let cores = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => (b.saturating_sub(a)) as f64 / 100.0 / cpu_s,
        _ => f64::NAN,
    };
    let (engine_cores, client_cores) =
        (cores(cpu_start.0, cpu_end.0), cores(cpu_start.1, cpu_end.1));
    println!(
        "cpu_cores engine={engine_cores:.2} clients={client_cores:.2} per_delivered_us engine={:.2} clients={:.2}",
        engine_cores * cpu_s * 1e6 / n.max(1) as f64,
        client_cores * cpu_s * 1e6 / n.max(1) as f64
    );
    println!(
        "pushes={pushes} per_push={per_push} push_answer_p50_ms={push_p50:.1} seconds={elapsed:.1} delivered={n} delivered_per_s={:.0} latency_p50_ms={:.2} latency_p99_ms={:.2} latency_max_ms={:.2} engine_rss_busy_kib={}",
        n as f64 / elapsed, pct(0.5), pct(0.99), pct(1.0), rss_busy.unwrap_or(0)
    );
    Ok(())
}

/// One subscriber (the lean client of `winzo_load::rawws`, so that the generator's own cost
/// per message stays small beside the engine's); returns its latency samples in µs (every
/// 10th odds message) into `lat`.
#[allow(clippy::too_many_arguments)]
async fn client(
    c: usize,
    url: String,
    topic: String,
    delivered: Arc<AtomicU64>,
    sent: Sent,
    measuring: Arc<std::sync::atomic::AtomicU8>,
    ready: tokio::sync::mpsc::Sender<()>,
    lat: Samples,
) {
    let Ok(mut ws) = winzo_load::rawws::RawWs::connect(&url, 16 * 1024).await else {
        return;
    };
    let sub = json!({"op": "subscribe", "id": c, "topics": [topic]}).to_string();
    if ws.send_text(&sub).await.is_err() {
        return;
    }
    let mut n = 0u64;
    while measuring.load(Ordering::Relaxed) != 2 {
        let (op, range) = match ws.next().await {
            Ok(Some(f)) => f,
            _ => break,
        };
        if op != winzo_load::rawws::OP_TEXT {
            continue;
        }
        let t = ws.payload(range);
        if t.windows(17).any(|w| w == br#""type":"snapshot""#) {
            let _ = ready.send(()).await;
            continue;
        }
        if measuring.load(Ordering::Relaxed) != 1 || !t.starts_with(br#"{"type":"odds""#) {
            continue;
        }
        delivered.fetch_add(1, Ordering::Relaxed);
        n += 1;
        if n.is_multiple_of(10) {
            // The first selection's decimal price: `"odds":"1.7300"`.
            let Ok(t) = std::str::from_utf8(t) else {
                continue;
            };
            if let Some(i) = t.find(r#""odds":""#) {
                let key = &t[i + 8..(i + 14).min(t.len())];
                let at = sent.lock().ok().and_then(|m| m.get(key).copied());
                if let (Some(at), Ok(mut l)) = (at, lat.lock()) {
                    l.push(at.elapsed().as_micros() as u64);
                }
            }
        }
    }
}

async fn push(
    http: &reqwest::Client,
    engine: &str,
    p: &winzo::feed::ProviderSettings,
    body: &Value,
) -> anyhow::Result<()> {
    let raw = body.to_string();
    let ts = chrono::Utc::now().timestamp();
    let sig = winzo::feed::auth::sign(&p.secret, ts, raw.as_bytes());
    let r = http
        .post(format!("{engine}/api/v1/feed/{}/messages", p.id))
        .header("Content-Type", "application/json")
        .header("X-Feed-Timestamp", ts.to_string())
        .header("X-Feed-Signature", sig)
        .body(raw)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "push answered {}", r.status());
    Ok(())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
