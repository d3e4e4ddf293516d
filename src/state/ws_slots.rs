//! Node-wide WebSocket connection counts (`ws.connections_max`, per client address):
//! the adapters' shared state, taken by the upgrade and given back when a session stops.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Node-wide WebSocket counters shared by every session.
#[derive(Debug, Default)]
pub struct WsShared {
    connections: AtomicUsize,
    /// Open sessions per client address (entries go when they reach zero).
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Snapshot loads shared by the subscribers of a topic.
    pub snapshots: Arc<super::snapshot_loads::SnapshotLoads>,
}

/// Why a connection was refused a slot.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotRefused {
    /// The node holds `connections_max` sessions.
    NodeFull,
    /// This client address holds `connections_per_address_max` sessions.
    AddressFull,
}

impl WsShared {
    /// Takes a connection slot, or refuses when the node or the client's address is full.
    /// The slot is given back when the guard drops (the session stopped).
    pub fn try_connect(
        self: &Arc<Self>,
        max: usize,
        address: Option<IpAddr>,
        per_address_max: usize,
    ) -> Result<ConnectionSlot, SlotRefused> {
        let mut current = self.connections.load(Ordering::Relaxed);
        loop {
            if current >= max {
                return Err(SlotRefused::NodeFull);
            }
            match self.connections.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        let mut slot = ConnectionSlot {
            shared: self.clone(),
            address: None,
        };
        let Some(ip) = address else { return Ok(slot) };
        let mut map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= per_address_max {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(SlotRefused::AddressFull); // `slot` drops: the node count goes back
        }
        *n += 1;
        drop(map);
        slot.address = Some(ip);
        Ok(slot)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One open session's place in the connection limits.
#[derive(Debug)]
pub struct ConnectionSlot {
    shared: Arc<WsShared>,
    address: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.address {
            let mut map = self
                .shared
                .per_address
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_address_is_refused_and_a_closed_session_frees_its_slot() {
        let shared = Arc::new(WsShared::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = shared.try_connect(10, Some(a), 2).unwrap();
        let _second = shared.try_connect(10, Some(a), 2).unwrap();
        assert_eq!(
            shared.try_connect(10, Some(a), 2).unwrap_err(),
            SlotRefused::AddressFull
        );
        assert_eq!(
            shared.connections(),
            2,
            "a refused address takes no node slot"
        );
        let _other = shared.try_connect(10, Some(b), 2).unwrap();
        drop(first);
        assert!(shared.try_connect(10, Some(a), 2).is_ok());
        assert_eq!(
            shared.try_connect(2, Some(b), 2).unwrap_err(),
            SlotRefused::NodeFull
        );
    }
}
