//! Snapshot loads shared by the subscribers of a topic who ask at about the same time.
//!
//! When a big match starts, thousands of clients subscribe to its event at once. Each used
//! to read the event's actors itself (one ask to the event and one to each market), build a
//! JSON tree and serialize it: the same work thousands of times over, queued in the same
//! mailboxes. Here a topic has at most one load running; every subscriber who asked before
//! it started shares its serialized result.
//!
//! What a subscriber may be given: a snapshot read **after** it attached to the topic (its
//! deltas after the attach seq are buffered and applied on top; a snapshot read before the
//! attach could miss a change). So a subscriber who asks once the running load has
//! started waits for the next one, which starts as soon as the running one ends and is
//! shared by everyone who asked meanwhile.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::oneshot;

/// Why a snapshot could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotError {
    /// No such event or sport (`unknown_topic`).
    Unknown,
    /// Postgres or live state could not answer (`unavailable`).
    Unavailable,
}

/// A topic's snapshot data, serialized once (JSON written into every subscriber's message
/// as it is), or why there is none.
pub type Snapshot = Result<Arc<RawValue>, SnapshotError>;

/// The subscribers waiting for a topic's snapshot.
struct Waiting {
    /// Whether the load of `current` has started reading.
    started: bool,
    /// The subscribers of the load now running (or about to).
    current: Vec<oneshot::Sender<Snapshot>>,
    /// Those who asked after it started: the next load is theirs.
    next: Vec<oneshot::Sender<Snapshot>>,
}

/// The node's snapshot loads in flight, by topic (an entry exists only while one runs).
#[derive(Default)]
pub struct SnapshotLoads {
    topics: Mutex<HashMap<String, Waiting>>,
}

impl std::fmt::Debug for SnapshotLoads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotLoads")
            .field("topics_loading", &self.loading())
            .finish()
    }
}

impl SnapshotLoads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        // A panic while holding the lock leaves a consistent map.
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Topics with a load running now.
    pub fn loading(&self) -> usize {
        self.lock().len()
    }

    /// The snapshot of `topic` read after this call: joins the load that has not started
    /// reading yet, or the next one. `load` reads and serializes it; it runs on a task of
    /// the current thread's runtime (a `LocalSet`: an actix worker), so a subscriber that
    /// goes away does not stop the load the others wait for.
    pub async fn get<F, Fut>(self: &Arc<Self>, topic: &str, load: F) -> Snapshot
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Snapshot> + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut topics = self.lock();
            match topics.get_mut(topic) {
                Some(w) if !w.started => {
                    w.current.push(tx);
                    false
                }
                Some(w) => {
                    w.next.push(tx);
                    false
                }
                None => {
                    topics.insert(
                        topic.to_string(),
                        Waiting {
                            started: false,
                            current: vec![tx],
                            next: Vec::new(),
                        },
                    );
                    true
                }
            }
        };
        if start {
            tokio::task::spawn_local(self.clone().run(topic.to_string(), load));
        }
        rx.await.unwrap_or(Err(SnapshotError::Unavailable))
    }

    /// Loads `topic` for its current subscribers, then again for those who came during
    /// the load, until nobody waits.
    async fn run<F, Fut>(self: Arc<Self>, topic: String, load: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Snapshot>,
    {
        // A load that never ends its loop (it panicked, or the runtime was shut down under
        // it) must not leave the topic marked as loading: nobody would ever start its next
        // load. Dropping the entry answers every waiter `unavailable`, and they may retry.
        struct Abandoned<'a> {
            loads: &'a SnapshotLoads,
            topic: &'a str,
            finished: bool,
        }
        impl Drop for Abandoned<'_> {
            fn drop(&mut self) {
                if !self.finished {
                    self.loads.lock().remove(self.topic);
                }
            }
        }
        let mut guard = Abandoned {
            loads: &self,
            topic: &topic,
            finished: false,
        };
        loop {
            match self.lock().get_mut(&topic) {
                Some(w) => w.started = true,
                None => break,
            }
            let result = load().await;
            let (done, again) = {
                let mut topics = self.lock();
                let Some(w) = topics.get_mut(&topic) else {
                    break;
                };
                let done = std::mem::take(&mut w.current);
                let again = !w.next.is_empty();
                if again {
                    w.current = std::mem::take(&mut w.next);
                    w.started = false;
                } else {
                    topics.remove(&topic);
                }
                (done, again)
            };
            for tx in done {
                let _ = tx.send(result.clone());
            }
            if !again {
                break;
            }
        }
        guard.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Snapshot data holding `json`.
    fn data(json: &str) -> Snapshot {
        Ok(Arc::from(RawValue::from_string(json.to_string()).unwrap()))
    }

    /// The data's JSON text, or the error.
    fn text(s: Snapshot) -> Result<String, SnapshotError> {
        s.map(|d| d.get().to_string())
    }

    /// Runs `f` on a `LocalSet`, where loads run (an actix worker in the engine).
    async fn local<F: Future>(f: F) -> F::Output {
        tokio::task::LocalSet::new().run_until(f).await
    }

    /// A loader that counts its loads and answers the load number, once `gate` opens.
    fn counting(
        loads: Rc<Cell<u32>>,
        gate: Rc<tokio::sync::Notify>,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Snapshot>>> {
        move || {
            let (loads, gate) = (loads.clone(), gate.clone());
            Box::pin(async move {
                loads.set(loads.get() + 1);
                let n = loads.get();
                gate.notified().await;
                data(&n.to_string())
            })
        }
    }

    #[tokio::test]
    async fn askers_before_a_load_starts_share_it_and_later_ones_get_the_next() {
        local(async {
            let loads = Arc::new(SnapshotLoads::default());
            let count = Rc::new(Cell::new(0));
            let gate = Rc::new(tokio::sync::Notify::new());
            let ask = || {
                let (loads, f) = (loads.clone(), counting(count.clone(), gate.clone()));
                tokio::task::spawn_local(async move { loads.get("event:x", f).await })
            };
            // Three ask before the load has run: one load for them.
            let early: Vec<_> = (0..3).map(|_| ask()).collect();
            while count.get() == 0 {
                tokio::task::yield_now().await;
            }
            // The load has started reading: these two wait for the next one.
            let late: Vec<_> = (0..2).map(|_| ask()).collect();
            while loads.lock().get("event:x").map_or(0, |w| w.next.len()) < 2 {
                tokio::task::yield_now().await;
            }
            gate.notify_one();
            for h in early {
                assert_eq!(text(h.await.unwrap()), Ok("1".into()));
            }
            while count.get() < 2 {
                tokio::task::yield_now().await;
            }
            gate.notify_one();
            for h in late {
                assert_eq!(text(h.await.unwrap()), Ok("2".into()));
            }
            assert_eq!(count.get(), 2, "two loads for five subscribers");
            assert_eq!(loads.loading(), 0, "nothing left once nobody waits");
        })
        .await;
    }

    async fn a_load_that_panics() -> Snapshot {
        panic!("a snapshot load that panics (expected by this test)")
    }

    #[tokio::test]
    async fn a_load_that_panics_leaves_nobody_waiting_for_ever() {
        local(async {
            let loads = Arc::new(SnapshotLoads::default());
            let lost = loads.get("event:p", a_load_that_panics).await;
            assert_eq!(text(lost), Err(SnapshotError::Unavailable));
            assert_eq!(loads.loading(), 0, "the topic is not left loading");
            let ok = loads.get("event:p", || async { data("{}") }).await;
            assert_eq!(text(ok), Ok("{}".into()), "the next subscriber gets a load");
        })
        .await;
    }

    #[tokio::test]
    async fn a_failed_load_answers_everyone_who_shared_it_and_the_next_starts_afresh() {
        local(async {
            let loads = Arc::new(SnapshotLoads::default());
            let failing = || async { Err(SnapshotError::Unknown) };
            let (a, b) = tokio::join!(
                loads.get("sport:none", failing),
                loads.get("sport:none", failing)
            );
            assert_eq!(
                (text(a), text(b)),
                (Err(SnapshotError::Unknown), Err(SnapshotError::Unknown))
            );
            assert_eq!(loads.loading(), 0);
            let ok = loads.get("sport:none", || async { data("{}") }).await;
            assert_eq!(text(ok), Ok("{}".into()));
        })
        .await;
    }
}
