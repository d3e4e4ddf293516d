//! The Redis pub/sub bridge between engine nodes sharing Postgres and Redis.
//!
//! Every message this node's hub publishes is sent to Redis channel
//! `<channel_prefix><topic>` as `"<node id>\n<envelope JSON>"`; every message another node
//! sends there is delivered to this node's subscribers with [`Hub::relay`] (this node's own
//! `seq`, and never sent back to Redis). Redis down: each node keeps serving its own
//! subscribers, the loss is logged, and both directions reconnect by themselves.
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::broadcast::{Hub, TopicMessage};
use crate::metrics::Metrics;

/// The `[bridge]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct BridgeSettings {
    pub enabled: bool,
    /// Redis channel of a topic: this prefix and the topic name.
    pub channel_prefix: String,
    /// Messages waiting to be sent to Redis; beyond, they are dropped for other nodes only.
    pub outbox_messages_max: usize,
    /// Pause before reconnecting the subscriber after Redis went away.
    pub reconnect_interval_ms: u64,
    /// Queued messages sent to Redis together in one pipeline, at most.
    pub pipeline_messages_max: usize,
}

/// The envelope's parts the relaying node needs; `data` stays raw (never re-parsed).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    topic: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The kinds a node relays (the hub takes `&'static str`).
fn static_kind(kind: &str) -> Option<&'static str> {
    const KINDS: &[&str] = &[
        "odds",
        "market_status",
        "score",
        "event_status",
        "fixture",
        "bet",
        "balance",
        "market",
        "event",
    ];
    KINDS.iter().copied().find(|k| *k == kind)
}

/// Starts both directions on the current runtime; returns this node's id.
pub fn start(
    hub: Arc<Hub>,
    redis_url: &str,
    settings: &BridgeSettings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Uuid> {
    let node = Uuid::new_v4();
    if !settings.enabled {
        return Ok(node);
    }
    let client = redis::Client::open(redis_url)?;
    let (tx, rx) = mpsc::channel(settings.outbox_messages_max.max(1));
    hub.set_tap(tx);
    actix_web::rt::spawn(outgoing(
        client.clone(),
        node,
        settings.clone(),
        rx,
        metrics.clone(),
    ));
    actix_web::rt::spawn(incoming(client, node, settings.clone(), hub, metrics));
    Ok(node)
}

async fn outgoing(
    client: redis::Client,
    node: Uuid,
    settings: BridgeSettings,
    mut rx: mpsc::Receiver<TopicMessage>,
    metrics: Arc<Metrics>,
) {
    let pause = Duration::from_millis(settings.reconnect_interval_ms.max(10));
    let node_prefix = format!("{node}\n");
    'connect: loop {
        let mut conn = match client.get_multiplexed_async_connection().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "bridge: Redis unreachable for publishing; retrying");
                drain_for(&mut rx, pause, &metrics).await;
                continue;
            }
        };
        let per_pipeline = settings.pipeline_messages_max.max(1);
        let mut run: Vec<TopicMessage> = Vec::with_capacity(per_pipeline);
        while rx.recv_many(&mut run, per_pipeline).await > 0 {
            // Whatever queued up meanwhile goes in one pipeline: one round trip, not one
            // per message (a settlement or a busy feed publishes thousands a second).
            let mut pipe = redis::pipe();
            for m in &run {
                let body = m.text.as_bytes();
                let mut payload = Vec::with_capacity(node_prefix.len() + body.len());
                payload.extend_from_slice(node_prefix.as_bytes());
                payload.extend_from_slice(body);
                let channel = format!("{}{}", settings.channel_prefix, m.topic);
                pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
            }
            let n = run.len() as u64;
            run.clear();
            let sent: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            match sent {
                Ok(()) => metrics
                    .bridge_messages_total
                    .with_label_values(&["out"])
                    .inc_by(n),
                Err(e) => {
                    metrics
                        .bridge_messages_total
                        .with_label_values(&["dropped"])
                        .inc_by(n);
                    tracing::warn!(error = %e, "bridge: publishing to Redis failed; reconnecting");
                    continue 'connect;
                }
            }
        }
        return;
    }
}

/// While Redis is away, messages for other nodes are dropped (they are live deltas; other
/// nodes' clients see the seq gap and resubscribe for a fresh snapshot).
async fn drain_for(rx: &mut mpsc::Receiver<TopicMessage>, pause: Duration, metrics: &Metrics) {
    let deadline = tokio::time::Instant::now() + pause;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        metrics
            .bridge_messages_total
            .with_label_values(&["dropped"])
            .inc();
    }
}

async fn incoming(
    client: redis::Client,
    node: Uuid,
    settings: BridgeSettings,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
) {
    let pause = Duration::from_millis(settings.reconnect_interval_ms.max(10));
    let own = node.to_string();
    let pattern = format!("{}*", settings.channel_prefix);
    loop {
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "bridge: Redis unreachable for subscribing; retrying");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if let Err(e) = pubsub.psubscribe(&pattern).await {
            tracing::warn!(error = %e, "bridge: PSUBSCRIBE failed; retrying");
            tokio::time::sleep(pause).await;
            continue;
        }
        tracing::info!(%pattern, "bridge: relaying other nodes' topic messages");
        let mut stream = pubsub.into_on_message();
        while let Some(msg) = stream.next().await {
            relay_one(&hub, &own, msg.get_payload_bytes(), &metrics);
        }
        tracing::warn!("bridge: Redis subscription lost; reconnecting");
        tokio::time::sleep(pause).await;
    }
}

fn relay_one(hub: &Hub, own: &str, payload: &[u8], metrics: &Metrics) {
    let Some(split) = payload.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (from, body) = (&payload[..split], &payload[split + 1..]);
    if from == own.as_bytes() {
        return;
    }
    let Ok(m) = serde_json::from_slice::<Incoming>(body) else {
        tracing::warn!("bridge: unreadable message from another node");
        return;
    };
    let Some(kind) = static_kind(m.kind) else {
        return;
    };
    hub.relay(m.topic, kind, &m.data);
    metrics
        .bridge_messages_total
        .with_label_values(&["in"])
        .inc();
}
