//! Requests in flight by `(user, idempotency key)`: concurrent sends of one key wait for
//! the first one's answer instead of reserving funds and liability again. The database's
//! unique `(user_id, idempotency_key)` stays the final guard across nodes and restarts.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::ids::UserId;

use tokio::sync::watch;

use super::answer::BetAnswer;
use super::error::PlaceError;

/// The first request's fingerprint and final answer.
pub type Settled = Arc<(String, Result<BetAnswer, PlaceError>)>;
type Slot = watch::Receiver<Option<Settled>>;

pub struct Inflight {
    slots: Mutex<HashMap<(UserId, String), Slot>>,
    keys_max: usize,
}

/// Too many keys in flight on this node.
#[derive(Debug)]
pub struct Full;

/// What a request holding a key must do.
pub enum Claim {
    /// First with this key: place the bet, then `finish` the guard.
    Owner(Guard),
    /// Another request has the key: wait for its answer.
    Follower(Slot),
}

/// Held by the request that owns a key; publishes the answer and frees the key.
pub struct Guard {
    inflight: Arc<Inflight>,
    key: (UserId, String),
    tx: watch::Sender<Option<Settled>>,
}

impl Inflight {
    pub fn new(keys_max: usize) -> Arc<Inflight> {
        Arc::new(Inflight {
            slots: Mutex::new(HashMap::new()),
            keys_max: keys_max.max(1),
        })
    }

    /// Claims `(user, key)`, or `Err(Full)` when too many keys are in flight.
    pub fn claim(self: &Arc<Self>, user: UserId, key: &str) -> Result<Claim, Full> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let k = (user, key.to_string());
        if let Some(rx) = slots.get(&k) {
            return Ok(Claim::Follower(rx.clone()));
        }
        if slots.len() >= self.keys_max {
            return Err(Full);
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(k.clone(), rx);
        Ok(Claim::Owner(Guard {
            inflight: self.clone(),
            key: k,
            tx,
        }))
    }
}

impl Guard {
    /// Publishes the answer to every follower and frees the key.
    pub fn finish(self, fingerprint: String, answer: &Result<BetAnswer, PlaceError>) {
        let _ = self.tx.send(Some(Arc::new((fingerprint, answer.clone()))));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut slots = self
            .inflight
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        slots.remove(&self.key);
    }
}

/// Waits for the owner's answer (`None` if the owner vanished without one).
pub async fn follow(mut slot: Slot) -> Option<Settled> {
    let settled = match slot.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    };
    settled.or_else(|| slot.borrow().clone())
}
