//! The Redis pub/sub bridge between engine nodes sharing Postgres and Redis.
//!
//! Every message this node's hub publishes is sent to Redis channel
//! `<channel_prefix><topic>` as `"<node id>\n<envelope JSON>"`; every message another node
//! sends there is delivered to this node's subscribers with [`Hub::relay`] (this node's own
//! `seq`, and never sent back to Redis). Redis down: each node keeps serving its own
//! subscribers, the loss is logged, and both directions reconnect by themselves.
//!
//! A node alone sends nothing: every node also listens on its presence channel
//! (`nodes:<channel_prefix>`, [`presence_channel`]) and says hello there once subscribed; a
//! node that hears a hello from another, or counts another listener there (`PUBSUB NUMSUB`,
//! every `presence_check_ms`), sends its messages to Redis, and stops when a count finds it
//! alone with no hello since. Alone, a bet's private and trading messages cost no
//! serialization, no Redis round trip and no echo of its own messages.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// How often a node counts the other nodes on the presence channel (a hello from a
    /// new node is heard at once; this finds a node gone, or a hello missed).
    pub presence_check_ms: u64,
}

/// The Redis channel where the nodes of `channel_prefix` listen and say hello (outside the
/// topics' pattern `<channel_prefix>*` unless the prefix is empty).
pub fn presence_channel(channel_prefix: &str) -> String {
    format!("nodes:{channel_prefix}")
}

/// What the bridge's tasks share about the other nodes.
struct Presence {
    /// Whether another node listens: the hub's tap sends only while true.
    live: Arc<AtomicBool>,
    /// Hellos heard from other nodes (a count that began before one is not trusted to
    /// say "alone").
    hellos: AtomicU64,
    /// Whether this node's own subscription is up (it is one of the presence channel's
    /// listeners then).
    subscribed: AtomicBool,
    /// Set when this node's subscription is (again) up: say hello and count at once.
    joined: tokio::sync::Notify,
    /// `winzo_bridge_sending`.
    sending: prometheus::IntGauge,
}

impl Presence {
    fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Relaxed);
        self.sending.set(i64::from(live));
    }
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
    // Until the first count, other nodes are assumed to listen (sending for nobody costs
    // work; not sending for somebody loses their messages).
    let presence = Arc::new(Presence {
        live: Arc::new(AtomicBool::new(true)),
        hellos: AtomicU64::new(0),
        subscribed: AtomicBool::new(false),
        joined: tokio::sync::Notify::new(),
        sending: metrics.bridge_sending.clone(),
    });
    presence.set_live(true);
    hub.set_tap(tx, presence.live.clone());
    actix_web::rt::spawn(outgoing(
        client.clone(),
        node,
        settings.clone(),
        rx,
        metrics.clone(),
    ));
    actix_web::rt::spawn(watch_presence(
        client.clone(),
        node,
        settings.clone(),
        presence.clone(),
        metrics.clone(),
    ));
    actix_web::rt::spawn(incoming(
        client,
        node,
        settings.clone(),
        hub,
        presence,
        metrics,
    ));
    Ok(node)
}

/// Says hello when this node's subscription comes up, and counts the other listeners on
/// the presence channel every `presence_check_ms`: the tap is live while there is one.
async fn watch_presence(
    client: redis::Client,
    node: Uuid,
    settings: BridgeSettings,
    presence: Arc<Presence>,
    metrics: Arc<Metrics>,
) {
    let every = Duration::from_millis(settings.presence_check_ms.max(10));
    let channel = presence_channel(&settings.channel_prefix);
    let hello = node.to_string();
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    loop {
        let joined = tokio::time::timeout(every, presence.joined.notified())
            .await
            .is_ok();
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else {
            // Not knowing is not "alone": keep sending (it fails and is counted).
            presence.set_live(true);
            continue;
        };
        let hellos = presence.hellos.load(Ordering::Acquire);
        if joined {
            let said: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&hello)
                .query_async(c)
                .await;
            if said.is_err() {
                conn = None;
                continue;
            }
        }
        let counted: redis::RedisResult<HashMap<String, i64>> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(c)
            .await;
        let Ok(counted) = counted else {
            conn = None;
            presence.set_live(true);
            continue;
        };
        let listeners = counted.get(&channel).copied().unwrap_or(0);
        let own = i64::from(presence.subscribed.load(Ordering::Acquire));
        let others = (listeners - own).max(0);
        metrics.bridge_peers.set(others);
        if others > 0 {
            presence.set_live(true);
        } else if presence.hellos.load(Ordering::Acquire) == hellos {
            presence.set_live(false);
        }
    }
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
    presence: Arc<Presence>,
    metrics: Arc<Metrics>,
) {
    let pause = Duration::from_millis(settings.reconnect_interval_ms.max(10));
    let own = node.to_string();
    let pattern = format!("{}*", settings.channel_prefix);
    let presence_ch = presence_channel(&settings.channel_prefix);
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
        if let Err(e) = pubsub.subscribe(&presence_ch).await {
            tracing::warn!(error = %e, "bridge: SUBSCRIBE to the presence channel failed; retrying");
            tokio::time::sleep(pause).await;
            continue;
        }
        presence.subscribed.store(true, Ordering::Release);
        presence.joined.notify_one();
        tracing::info!(%pattern, "bridge: relaying other nodes' topic messages");
        let mut stream = pubsub.into_on_message();
        while let Some(msg) = stream.next().await {
            if msg.get_channel_name() == presence_ch {
                if msg.get_payload_bytes() != own.as_bytes() {
                    // Another node: send it this node's messages from now on.
                    presence.hellos.fetch_add(1, Ordering::AcqRel);
                    presence.set_live(true);
                }
                continue;
            }
            relay_one(&hub, &own, msg.get_payload_bytes(), &metrics);
        }
        presence.subscribed.store(false, Ordering::Release);
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
