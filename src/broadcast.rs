//! The in-process topic hub: topic (`event:<id>`, `sport:<slug>`) → subscribers.
//!
//! Each published message is serialized once per topic, with that topic's next `seq`, into
//! shared bytes; every subscriber gets the same bytes through its own bounded queue with
//! `try_send`. A subscriber whose queue is full (a slow client) or closed is dropped from the
//! topic at once, so nobody can grow the engine's memory or slow the others. The WebSocket
//! sessions attach here; a Redis bridge can subscribe like any session.
//!
//! Delivery can run on a thread of its own ([`Hub::start_fanout`], what the engine does): a
//! publisher then only assigns the seq, serializes and hands the message to that thread's
//! bounded queue, so an actor's turn (and the acknowledgement of a price change) never waits
//! for thousands of subscriber queues. The fan-out thread delivers each topic's messages in
//! seq order, reading the subscriber list at delivery time (a subscriber attached at seq `n`
//! gets every message after `n`; the session discards older ones). A full fan-out queue loses
//! the message for local subscribers (counted; they see a seq gap and resubscribe).
//!
//! The wire shape of every message: `{"type": <kind>, "topic": <topic>, "seq": n, "data": {..}}`.
//! `seq` starts at 1 per topic and grows by one per message, with no gaps, for the life
//! of the process (a subscriber that sees a gap lost messages and must resubscribe).
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::domain::ids::{EventId, UserId};

use std::task::{Context, Poll};

use bytestring::ByteString;
use futures::task::AtomicWaker;
use serde::Serialize;
use tokio::sync::mpsc;
pub use tokio::sync::mpsc::error::TryRecvError;

/// One message as every subscriber of a topic receives it.
#[derive(Debug, Clone)]
pub struct TopicMessage {
    pub topic: Arc<str>,
    pub seq: u64,
    /// `odds`, `market_status`, `score`, `event_status`, ...
    pub kind: &'static str,
    /// The serialized JSON envelope, shared by every subscriber: text checked once here,
    /// not once per subscriber (its bytes: `text.as_bytes()`, no copy).
    pub text: ByteString,
}

/// What a subscriber's queue carries: one topic's messages published together, in seq order
/// (one message, or the run the fan-out thread found queued for that topic at once). One
/// queue slot, one wake-up and one routing decision per run instead of per message; the
/// messages themselves are shared by every subscriber.
pub type Run = Arc<[TopicMessage]>;

/// A subscriber's queue: runs in order, bounded in messages whatever the runs' lengths.
///
/// One small allocation per subscriber (a `VecDeque` of run pointers behind a mutex, a
/// waker and counters) instead of a general-purpose channel: a WebSocket session holds one
/// for its whole life, so what it costs idle is paid 10,000 times over. The hub's side
/// takes the lock for a push, the session's for a pop: neither waits for the other's work.
struct Shared {
    runs: Mutex<VecDeque<Run>>,
    waker: AtomicWaker,
    /// Messages queued now (a run counts its messages).
    queued: AtomicUsize,
    max: usize,
    /// The hub refused a run: the subscriber lost messages.
    overflowed: AtomicBool,
    /// Live senders; the receiver ends once they are all gone and the queue is empty.
    senders: AtomicUsize,
    /// The receiver is gone: offers fail, so the hub drops the subscriber.
    closed: AtomicBool,
}

/// A queue emptied below this many slots gives back what it grew to beyond them (a burst
/// must not keep a session's queue large for the rest of its life).
const QUEUE_KEEP_SLOTS: usize = 8;

impl Shared {
    fn runs(&self) -> std::sync::MutexGuard<'_, VecDeque<Run>> {
        // A panic while holding the lock leaves a consistent VecDeque.
        match self.runs.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn pop(&self) -> Option<Run> {
        let mut runs = self.runs();
        let run = runs.pop_front()?;
        if runs.is_empty() && runs.capacity() > QUEUE_KEEP_SLOTS {
            runs.shrink_to(QUEUE_KEEP_SLOTS);
        }
        drop(runs);
        self.queued.fetch_sub(run.len(), Ordering::AcqRel);
        Some(run)
    }
}

/// The hub's side of a subscriber queue (cheap to clone: one queue for all of a
/// subscriber's topics).
pub struct QueueTx {
    shared: Arc<Shared>,
}

impl Clone for QueueTx {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        QueueTx {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for QueueTx {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.waker.wake();
        }
    }
}

impl QueueTx {
    /// Queues `run` unless that would take the queue past its bound (or the subscriber is
    /// gone); false then, and the subscriber is marked as having lost messages.
    fn offer(&self, run: &Run) -> bool {
        let q = &*self.shared;
        let n = run.len();
        let before = q.queued.fetch_add(n, Ordering::AcqRel);
        if before + n > q.max || q.closed.load(Ordering::Acquire) {
            q.queued.fetch_sub(n, Ordering::AcqRel);
            q.overflowed.store(true, Ordering::Release);
            return false;
        }
        q.runs().push_back(run.clone());
        q.waker.wake();
        true
    }

    /// Whether a run was refused because the queue was full (or closed).
    pub fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// Messages queued now.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }
}

/// The subscriber's side of its queue: a stream of runs.
pub struct QueueRx {
    shared: Arc<Shared>,
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.runs().clear();
    }
}

impl QueueRx {
    /// The next run (its messages leave the queue's count); `None` once every sender is
    /// gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Run> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn try_recv(&mut self) -> Result<Run, TryRecvError> {
        match self.shared.pop() {
            Some(run) => Ok(run),
            None if self.shared.senders.load(Ordering::Acquire) == 0 => {
                Err(TryRecvError::Disconnected)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Run>> {
        if let Some(run) = self.shared.pop() {
            return Poll::Ready(Some(run));
        }
        self.shared.waker.register(cx.waker());
        // Checked again after registering: a run pushed in between would not wake us.
        match self.shared.pop() {
            Some(run) => Poll::Ready(Some(run)),
            None if self.shared.senders.load(Ordering::Acquire) == 0 => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl futures::Stream for QueueRx {
    type Item = Run;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Run>> {
        self.get_mut().poll_recv(cx)
    }
}

/// A subscriber queue of at most `messages_max` messages (at least 1).
pub fn queue(messages_max: usize) -> (QueueTx, QueueRx) {
    let shared = Arc::new(Shared {
        runs: Mutex::new(VecDeque::new()),
        waker: AtomicWaker::new(),
        queued: AtomicUsize::new(0),
        max: messages_max.max(1),
        overflowed: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
    });
    (
        QueueTx {
            shared: shared.clone(),
        },
        QueueRx { shared },
    )
}

/// A subscriber queue read message by message (tests, benchmarks; the WebSocket session
/// takes whole runs).
pub struct Messages {
    rx: QueueRx,
    pending: VecDeque<TopicMessage>,
}

impl Messages {
    pub async fn recv(&mut self) -> Option<TopicMessage> {
        if self.pending.is_empty() {
            let run = self.rx.recv().await?;
            self.pending.extend(run.iter().cloned());
        }
        self.pending.pop_front()
    }

    pub fn try_recv(&mut self) -> Result<TopicMessage, TryRecvError> {
        if self.pending.is_empty() {
            let run = self.rx.try_recv()?;
            self.pending.extend(run.iter().cloned());
        }
        self.pending.pop_front().ok_or(TryRecvError::Empty)
    }
}

/// Identifies one subscriber across topics (a WebSocket session uses one id and one queue
/// for all its topics).
pub type SubscriberId = u64;

struct Subscriber {
    id: SubscriberId,
    tx: QueueTx,
}

#[derive(Default)]
struct Topic {
    /// Last seq handed out on this topic.
    seq: u64,
    subscribers: Vec<Subscriber>,
}

/// A topic as publishers keep it: its name (shared by every message), the name as a JSON
/// string, and its entry, so a publish neither looks the topic up nor allocates its name.
#[derive(Clone)]
pub struct TopicHandle {
    name: Arc<str>,
    name_json: Arc<str>,
    entry: Arc<Mutex<Topic>>,
}

impl TopicHandle {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A message's `data`, serialized on first use only (no subscriber: no serialization) and
/// once for every topic it goes to. `make` builds the JSON; it runs at most once.
struct LazyJson<F: FnOnce() -> serde_json::Result<String>> {
    make: Option<F>,
    json: Option<String>,
}

impl<F: FnOnce() -> serde_json::Result<String>> LazyJson<F> {
    fn new(make: F) -> Self {
        LazyJson {
            make: Some(make),
            json: None,
        }
    }

    fn get(&mut self) -> Option<&str> {
        if let Some(make) = self.make.take() {
            match make() {
                Ok(s) => self.json = Some(s),
                Err(err) => {
                    tracing::error!(error = %err, "serializing a topic message");
                    return None;
                }
            }
        }
        self.json.as_deref()
    }
}

/// The tap (the Redis bridge's outbox) and whether anyone is at its other end: while no
/// other node listens, nothing is serialized or queued for it.
struct Tap {
    tx: mpsc::Sender<TopicMessage>,
    live: Arc<AtomicBool>,
}

/// The hub. Cheap to share (`Arc<Hub>`); topics are locked one at a time, so publishers on
/// different topics do not contend.
pub struct Hub {
    topics: RwLock<HashMap<Arc<str>, TopicHandle>>,
    queue_messages_max: usize,
    next_id: AtomicU64,
    /// Subscribers dropped because their queue was full (for metrics).
    pub dropped_total: AtomicU64,
    /// Messages handed to subscriber queues (for metrics).
    pub delivered_total: AtomicU64,
    /// Every locally published message also goes here (the Redis bridge, `src/bridge.rs`),
    /// with `try_send`: a full bridge outbox never slows a publisher.
    tap: std::sync::OnceLock<Tap>,
    /// The fan-out thread's queue, once started.
    fanout: std::sync::OnceLock<std::sync::mpsc::SyncSender<(Arc<Mutex<Topic>>, TopicMessage)>>,
    /// Messages lost for local subscribers because the fan-out queue was full (for metrics).
    pub fanout_dropped_total: AtomicU64,
}

impl Hub {
    pub fn new(queue_messages_max: usize) -> Hub {
        Hub {
            topics: RwLock::new(HashMap::new()),
            queue_messages_max: queue_messages_max.max(1),
            next_id: AtomicU64::new(1),
            dropped_total: AtomicU64::new(0),
            delivered_total: AtomicU64::new(0),
            tap: std::sync::OnceLock::new(),
            fanout: std::sync::OnceLock::new(),
            fanout_dropped_total: AtomicU64::new(0),
        }
    }

    /// Moves delivery to subscribers onto a thread of its own with a queue of
    /// `queue_messages_max` messages, taken `batch_messages_max` at a time (grouped by
    /// topic). Once; false if already started.
    pub fn start_fanout(
        self: &Arc<Self>,
        queue_messages_max: usize,
        batch_messages_max: usize,
    ) -> std::io::Result<bool> {
        let batch_max = batch_messages_max.max(1);
        if self.fanout.get().is_some() {
            return Ok(false);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Arc<Mutex<Topic>>, TopicMessage)>(
            queue_messages_max.max(1),
        );
        let hub = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("winzo-fanout".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(batch_max);
                while let Ok(first) = rx.recv() {
                    batch.push(first);
                    while batch.len() < batch_max {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let Some(hub) = hub.upgrade() else { return };
                    hub.deliver_batch(&batch);
                    batch.clear();
                }
            })?;
        Ok(self.fanout.set(tx).is_ok())
    }

    /// Sends every message published locally from now on to `tx` too (the Redis bridge),
    /// while `live` is true (another node listens); a full `tx` loses the message for the
    /// bridge only. Set once; false if already set.
    pub fn set_tap(&self, tx: mpsc::Sender<TopicMessage>, live: Arc<AtomicBool>) -> bool {
        self.tap.set(Tap { tx, live }).is_ok()
    }

    /// Delivers a message another node published to local subscribers, with this node's
    /// next seq of the topic, without sending it to the tap again (no echo between nodes).
    pub fn relay<T: Serialize>(&self, topic: &str, kind: &'static str, data: &T) -> u64 {
        self.publish_lazy(topic, kind, || data, false)
    }

    /// A fresh subscriber id, for a queue the caller makes itself.
    pub fn subscriber_id(&self) -> SubscriberId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh subscriber id and a queue of the configured bound, for [`Hub::attach`].
    pub fn new_subscriber(&self) -> (SubscriberId, QueueTx, QueueRx) {
        let (tx, rx) = queue(self.queue_messages_max);
        (self.next_id.fetch_add(1, Ordering::Relaxed), tx, rx)
    }

    /// Subscribes a new queue to one topic; returns the queue and the topic's seq at the
    /// moment of subscribing (every later message has a larger seq).
    pub fn subscribe(&self, topic: &str) -> (SubscriberId, Messages, u64) {
        let (id, tx, rx) = self.new_subscriber();
        let seq = self.attach(topic, id, tx);
        let messages = Messages {
            rx,
            pending: VecDeque::new(),
        };
        (id, messages, seq)
    }

    /// Adds an existing queue to a topic; returns the topic's current seq.
    pub fn attach(&self, topic: &str, id: SubscriberId, tx: QueueTx) -> u64 {
        let entry = self.topic_entry(topic);
        let mut t = lock(&entry);
        t.subscribers.retain(|s| s.id != id);
        t.subscribers.push(Subscriber { id, tx });
        t.seq
    }

    /// Removes a subscriber from a topic (no effect when it is not there).
    pub fn detach(&self, topic: &str, id: SubscriberId) {
        let entry = self
            .topics
            .read()
            .ok()
            .and_then(|m| m.get(topic).map(|h| h.entry.clone()));
        if let Some(entry) = entry {
            lock(&entry).subscribers.retain(|s| s.id != id);
        }
    }

    /// Forgets every topic that nobody listens to and no actor holds a handle of (a topic
    /// that comes back later starts its seq again: nobody saw the old one). Run on a timer
    /// ([`spawn_pruning`]), so the map does not grow with every user or event ever
    /// published to; answers how many went.
    pub fn prune_idle_topics(&self) -> usize {
        let Ok(mut map) = self.topics.write() else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, h| {
            Arc::strong_count(&h.entry) > 1 || !lock(&h.entry).subscribers.is_empty()
        });
        before - map.len()
    }

    /// Topics in the map now (for tests and metrics).
    pub fn topic_count(&self) -> usize {
        self.topics.read().map(|m| m.len()).unwrap_or(0)
    }

    /// The last seq of a topic (0 when nothing was ever published).
    pub fn seq(&self, topic: &str) -> u64 {
        let entry = self
            .topics
            .read()
            .ok()
            .and_then(|m| m.get(topic).map(|h| h.entry.clone()));
        entry.map(|e| lock(&e).seq).unwrap_or(0)
    }

    /// Subscribers of a topic now.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let entry = self
            .topics
            .read()
            .ok()
            .and_then(|m| m.get(topic).map(|h| h.entry.clone()));
        entry.map(|e| lock(&e).subscribers.len()).unwrap_or(0)
    }

    /// Publishes `data` as a `kind` message on `topic`; returns the message's seq. The
    /// message is serialized once, only if someone listens (the seq advances either way).
    pub fn publish<T: Serialize>(&self, topic: &str, kind: &'static str, data: &T) -> u64 {
        self.publish_lazy(topic, kind, || data, true)
    }

    /// Publishes `data` as a `kind` message on each topic (e.g. an event's and its sport's):
    /// `data` is serialized once for all of them.
    pub fn publish_all<T: Serialize>(&self, topics: &[&TopicHandle], kind: &'static str, data: &T) {
        let mut lazy = LazyJson::new(|| serde_json::to_string(data));
        for handle in topics {
            self.publish_at(handle, kind, &mut lazy, true);
        }
    }

    /// The handle of a topic (created on first use), for [`Hub::publish_all`].
    pub fn handle(&self, topic: &str) -> TopicHandle {
        if let Some(h) = self.topics.read().ok().and_then(|m| m.get(topic).cloned()) {
            return h;
        }
        let mut map = match self.topics.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(Arc::from(topic))
            .or_insert_with(|| TopicHandle {
                name: Arc::from(topic),
                name_json: Arc::from(serde_json::to_string(topic).unwrap_or_default()),
                entry: Arc::default(),
            })
            .clone()
    }

    /// Like [`Hub::publish`], with `data` built by `make` only when someone listens (a
    /// message that takes work to build: nobody listening, no work; the seq advances
    /// either way).
    pub fn publish_with<T: Serialize>(
        &self,
        topic: &str,
        kind: &'static str,
        make: impl FnOnce() -> T,
    ) -> u64 {
        self.publish_lazy(topic, kind, make, true)
    }

    /// One message on one topic, its `data` built and serialized only if someone listens;
    /// to the tap too when `tap` (not for a message relayed from another node).
    fn publish_lazy<T: Serialize>(
        &self,
        topic: &str,
        kind: &'static str,
        make: impl FnOnce() -> T,
        tap: bool,
    ) -> u64 {
        let handle = self.handle(topic);
        let mut lazy = LazyJson::new(|| serde_json::to_string(&make()));
        self.publish_at(&handle, kind, &mut lazy, tap)
    }

    fn publish_at<F: FnOnce() -> serde_json::Result<String>>(
        &self,
        h: &TopicHandle,
        kind: &'static str,
        data: &mut LazyJson<F>,
        tap: bool,
    ) -> u64 {
        let mut t = lock(&h.entry);
        t.seq += 1;
        let seq = t.seq;
        let tap = self
            .tap
            .get()
            .filter(|t| tap && t.live.load(Ordering::Relaxed))
            .map(|t| &t.tx);
        if t.subscribers.is_empty() && tap.is_none() {
            return seq;
        }
        let Some(data) = data.get() else {
            return seq;
        };
        let text = ByteString::from(envelope(kind, &h.name_json, seq, data));
        let message = TopicMessage {
            topic: h.name.clone(),
            seq,
            kind,
            text,
        };
        if let Some(tap) = tap {
            // The bridge is best effort: a full outbox drops the message for other nodes.
            let _ = tap.try_send(message.clone());
        }
        match self.fanout.get() {
            // Queued under the topic lock, so the thread sees each topic's messages in order.
            Some(fanout) if !t.subscribers.is_empty() => {
                if fanout.try_send((h.entry.clone(), message)).is_err() {
                    self.fanout_dropped_total.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(_) => {}
            None => self.deliver(&mut t, Arc::from([message])),
        }
        seq
    }

    /// Delivers queued messages topic run by topic run: each subscriber of a run gets the
    /// whole run as one queue entry, so a session is woken once and writes the run to its
    /// socket together (one write instead of one per message).
    fn deliver_batch(&self, batch: &[(Arc<Mutex<Topic>>, TopicMessage)]) {
        let mut start = 0;
        while start < batch.len() {
            let entry = &batch[start].0;
            let end = batch[start..]
                .iter()
                .position(|(e, _)| !Arc::ptr_eq(e, entry))
                .map_or(batch.len(), |n| start + n);
            let run: Run = batch[start..end].iter().map(|(_, m)| m.clone()).collect();
            let mut t = lock(entry);
            self.deliver(&mut t, run);
            start = end;
        }
    }

    /// Hands a topic's run of messages to every subscriber of the topic; a full or closed
    /// queue drops its subscriber from the topic.
    fn deliver(&self, t: &mut Topic, run: Run) {
        let before = t.subscribers.len();
        t.subscribers.retain(|s| s.tx.offer(&run));
        let dropped = (before - t.subscribers.len()) as u64;
        self.delivered_total
            .fetch_add((t.subscribers.len() * run.len()) as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.dropped_total.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    fn topic_entry(&self, topic: &str) -> Arc<Mutex<Topic>> {
        self.handle(topic).entry
    }
}

/// Prunes idle topics every `interval` on the current runtime (see
/// [`Hub::prune_idle_topics`]).
pub fn spawn_pruning(hub: Arc<Hub>, interval: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let pruned = hub.prune_idle_topics();
            if pruned > 0 {
                tracing::debug!(pruned, "idle topics forgotten");
            }
        }
    });
}

/// The wire envelope `{"type":..,"topic":..,"seq":..,"data":..}` around serialized data.
fn envelope(kind: &str, topic_json: &str, seq: u64, data: &str) -> String {
    let mut s = String::with_capacity(48 + kind.len() + topic_json.len() + data.len());
    s.push_str(r#"{"type":""#);
    s.push_str(kind);
    s.push_str(r#"","topic":"#);
    s.push_str(topic_json);
    s.push_str(r#","seq":"#);
    s.push_str(&seq.to_string());
    s.push_str(r#","data":"#);
    s.push_str(data);
    s.push('}');
    s
}

fn lock(t: &Mutex<Topic>) -> std::sync::MutexGuard<'_, Topic> {
    // A panic while holding a topic lock leaves a consistent Topic (seq and a Vec), so the
    // poisoned guard is safe to keep using.
    match t.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The topic of an event.
pub fn event_topic(event_id: EventId) -> String {
    format!("event:{event_id}")
}

/// The private topic of a user (bets, balance, cash-out offers, referral answers).
pub fn user_topic(user_id: UserId) -> String {
    format!("user:{user_id}")
}

/// The staff-only topic of every placed bet (accepted or refused, with its risk) and of
/// referrals: the trading console's ticker. Subscribable by roles that may read trading
/// routes.
pub const TRADING_TOPIC: &str = "trading";

/// The topic of a sport.
pub fn sport_topic(slug: &str) -> String {
    format!("sport:{slug}")
}

/// The in-process topic hub (`event:<id>`, `sport:<slug>`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BroadcastSettings {
    /// Messages queued per subscriber; a subscriber whose queue is full is dropped.
    pub subscriber_queue_messages_max: usize,
    /// Messages waiting for the fan-out thread; beyond, a message is lost for local
    /// subscribers (counted in `winzo_broadcast_fanout_dropped_total`; they resubscribe).
    pub fanout_queue_messages_max: usize,
    /// Messages the fan-out thread takes at once, grouped by topic so each subscriber gets
    /// a run of messages back to back (written to its socket together).
    pub fanout_batch_messages_max: usize,
    /// How often topics nobody listens to and no actor holds are forgotten.
    pub prune_interval_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of topic `t` with `seq`.
    fn message(seq: u64) -> TopicMessage {
        TopicMessage {
            topic: Arc::from("t"),
            seq,
            kind: "odds",
            text: ByteString::from_static("{}"),
        }
    }

    #[test]
    fn idle_topics_are_forgotten_but_not_those_held_or_listened_to() {
        let hub = Hub::new(8);
        hub.publish("user:offline", "balance", &1);
        let held = hub.handle("event:live");
        let (id, _rx, _) = hub.subscribe("sport:football");
        hub.publish("sport:football", "odds", &1);
        assert_eq!(hub.topic_count(), 3);
        assert_eq!(hub.prune_idle_topics(), 1, "only the idle user topic");
        assert_eq!(hub.seq("user:offline"), 0, "gone");
        hub.publish_at(
            &held,
            "odds",
            &mut LazyJson::new(|| serde_json::to_string(&1)),
            true,
        );
        assert_eq!(hub.seq("event:live"), 1, "a held topic keeps its seq");
        hub.detach("sport:football", id);
        drop(held);
        assert_eq!(hub.prune_idle_topics(), 2);
        assert_eq!(hub.topic_count(), 0);
    }

    #[tokio::test]
    async fn seq_is_contiguous_and_bytes_are_shared() {
        let hub = Hub::new(8);
        let (_, mut a, s0) = hub.subscribe("event:x");
        let (_, mut b, _) = hub.subscribe("event:x");
        assert_eq!(s0, 0);
        for i in 0..3 {
            hub.publish("event:x", "odds", &i);
        }
        for seq in 1..=3 {
            let ma = a.recv().await.unwrap();
            let mb = b.recv().await.unwrap();
            assert_eq!(ma.seq, seq);
            assert_eq!(
                ma.text.as_bytes().as_ptr(),
                mb.text.as_bytes().as_ptr(),
                "one serialization"
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&hub_last(&hub)).unwrap();
        assert_eq!(v["seq"], 4);
    }

    fn hub_last(hub: &Hub) -> bytes::Bytes {
        let (_, mut rx, _) = hub.subscribe("event:x");
        hub.publish("event:x", "odds", &"last");
        rx.try_recv().unwrap().text.into_bytes()
    }

    #[tokio::test]
    async fn the_fanout_thread_delivers_in_order() {
        let hub = Arc::new(Hub::new(64));
        assert!(hub.start_fanout(64, 8).unwrap());
        assert!(!hub.start_fanout(64, 8).unwrap(), "once");
        let (_, mut rx, _) = hub.subscribe("t");
        for i in 0..40 {
            hub.publish("t", "odds", &i);
        }
        let mut seqs = Vec::new();
        for _ in 0..40 {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv());
            seqs.push(next.await.expect("delivered").expect("open").seq);
        }
        assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
        assert_eq!(hub.fanout_dropped_total.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_queue_is_bounded_in_messages_whatever_the_runs() {
        let hub = Hub::new(8);
        let (tx, mut rx) = queue(3);
        let two: Run = Arc::from([message(1), message(2)]);
        assert!(tx.offer(&two));
        assert_eq!(tx.queued(), 2);
        assert!(!tx.overflowed());
        // 2 + 2 > 3: refused, and the subscriber knows it lost messages.
        assert!(!tx.offer(&two));
        assert!(tx.overflowed());
        assert_eq!(tx.queued(), 2);
        let got = rx.recv().await.unwrap();
        assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(tx.queued(), 0);
        // Through the hub: a run that does not fit drops the subscriber from the topic.
        let (id, tx, _rx) = hub.new_subscriber();
        hub.attach("t", id, tx.clone());
        hub.deliver(
            &mut lock(&hub.topic_entry("t")),
            Arc::from(vec![message(1); 9]),
        );
        assert_eq!(hub.subscriber_count("t"), 0);
        assert!(tx.overflowed());
    }

    #[tokio::test]
    async fn a_queue_ends_with_its_senders_and_refuses_once_its_receiver_is_gone() {
        let run: Run = Arc::from([message(1)]);
        let (tx, mut rx) = queue(4);
        let other = tx.clone();
        assert!(other.offer(&run));
        drop(other);
        drop(tx);
        assert_eq!(
            rx.recv().await.map(|r| r.len()),
            Some(1),
            "queued runs first"
        );
        assert!(rx.recv().await.is_none(), "then the end: no sender is left");
        let (tx, rx) = queue(4);
        drop(rx);
        assert!(
            !tx.offer(&run),
            "nobody reads: the hub drops the subscriber"
        );
        assert!(tx.overflowed());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_run_from_another_thread() {
        let (tx, mut rx) = queue(4);
        let pusher = std::thread::spawn(move || {
            let run: Run = Arc::from([message(9)]);
            assert!(tx.offer(&run));
            tx
        });
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
        assert_eq!(got.expect("woken").expect("open")[0].seq, 9);
        drop(pusher.join());
    }

    #[test]
    fn a_full_subscriber_is_dropped_and_others_keep_receiving() {
        let hub = Hub::new(2);
        let (_, _slow, _) = hub.subscribe("t");
        let (_, mut fast, _) = hub.subscribe("t");
        for i in 0..5 {
            hub.publish("t", "odds", &i);
            assert!(fast.try_recv().is_ok());
        }
        assert_eq!(hub.subscriber_count("t"), 1);
        assert_eq!(hub.dropped_total.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_tap_gets_messages_only_while_live_and_nothing_is_built_for_nobody() {
        let hub = Hub::new(8);
        let (tx, mut tapped) = mpsc::channel(8);
        let live = Arc::new(AtomicBool::new(false));
        assert!(hub.set_tap(tx, live.clone()));
        let built = std::cell::Cell::new(0);
        let make = || {
            built.set(built.get() + 1);
            "ticker"
        };
        // Alone, nobody listening: nothing built, nothing tapped; the seq advances.
        assert_eq!(hub.publish_with("trading", "bet", make), 1);
        assert_eq!(built.get(), 0);
        assert!(tapped.try_recv().is_err());
        // Another node listens: built once, tapped.
        live.store(true, Ordering::Relaxed);
        assert_eq!(hub.publish_with("trading", "bet", make), 2);
        assert_eq!(built.get(), 1);
        let m = tapped.try_recv().expect("tapped");
        assert_eq!((m.seq, m.kind), (2, "bet"));
        // Alone again, but a local subscriber listens: built for it, not tapped.
        live.store(false, Ordering::Relaxed);
        let (_, mut local, _) = hub.subscribe("trading");
        hub.publish_with("trading", "bet", make);
        assert_eq!(built.get(), 2);
        assert_eq!(local.try_recv().expect("delivered").seq, 3);
        assert!(tapped.try_recv().is_err());
    }
}
