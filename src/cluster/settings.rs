//! Settings of an engine node among several sharing one database and one Redis
//! (`[cluster]` in config, issue 20). One `winzo serve` (`make run`) keeps the defaults;
//! `make cluster` (scripts/cluster.sh) starts three nodes with their own `node_id`.
//! Event ownership by lease (the rest of this module) builds on these names.
use serde::Deserialize;

/// The longest `node_id` accepted.
pub const NODE_ID_CHARS_MAX: usize = 64;

/// `[cluster]` in config.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterSettings {
    pub enabled: bool,
    pub node_id: String,
    pub advertise_addr: String,
    pub lease_ttl_ms: u64,
    pub renew_interval_ms: u64,
    pub safety_margin_ms: u64,
    pub events_per_round_max: usize,
    pub forward_secret: String,
    pub forward_concurrency_max: usize,
    pub forward_timeout_ms: u64,
    /// Users are hashed over this many wallet partitions, each leased by one node at a time
    /// (the writer of its users' balances). The same on every node; 1 to 4096.
    pub wallet_partitions: u32,
    /// A ledger or live-state transaction that checks the fence (it holds lease rows `FOR
    /// SHARE`) and then sits idle this long (its node was cut off from Postgres mid-way) is
    /// ended by Postgres (`SET LOCAL idle_in_transaction_session_timeout`), so the lease
    /// rows are free for the next owner. 100 to `lease_ttl_ms`.
    pub fenced_idle_timeout_ms: u64,
    /// Wallet partitions taken or given up per round (rebalancing when nodes join or
    /// leave), at most.
    pub wallet_parts_per_round_max: usize,
    /// A leg reserved here for a bet at another node and not confirmed or released within
    /// this is looked up in Postgres (the bet committed or never will) and settled here.
    pub leg_confirm_deadline_ms: u64,
    /// Such legs tracked at once, at most.
    pub unconfirmed_legs_max: usize,
}

impl ClusterSettings {
    /// Why these settings cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let id_ok = !self.node_id.is_empty()
            && self.node_id.len() <= NODE_ID_CHARS_MAX
            && self
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            return Some(format!(
                "cluster.node_id must be 1 to {NODE_ID_CHARS_MAX} characters of A-Z a-z 0-9 . _ -"
            ));
        }
        let addr = &self.advertise_addr;
        if !(addr.is_empty() || addr.starts_with("http://") || addr.starts_with("https://")) {
            return Some("cluster.advertise_addr must be empty or an http(s):// address".into());
        }
        if !(1..=4096).contains(&self.wallet_partitions) {
            return Some("cluster.wallet_partitions must be 1 to 4096".into());
        }
        if self.lease_ttl_ms < 500 {
            return Some("cluster.lease_ttl_ms must be at least 500".into());
        }
        if !(100..=self.lease_ttl_ms).contains(&self.fenced_idle_timeout_ms) {
            return Some("cluster.fenced_idle_timeout_ms must be 100 to lease_ttl_ms".into());
        }
        None
    }

    /// The address other nodes reach this one at.
    pub fn advertised(&self, host: &str, port: u16) -> String {
        if self.advertise_addr.is_empty() {
            format!("http://{host}:{port}")
        } else {
            self.advertise_addr.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(node_id: &str, addr: &str, ttl: u64) -> ClusterSettings {
        ClusterSettings {
            enabled: false,
            node_id: node_id.into(),
            advertise_addr: addr.into(),
            lease_ttl_ms: ttl,
            renew_interval_ms: 1000,
            safety_margin_ms: 500,
            events_per_round_max: 4,
            forward_secret: String::new(),
            forward_concurrency_max: 16,
            forward_timeout_ms: 2000,
            wallet_partitions: 64,
            fenced_idle_timeout_ms: 500,
            wallet_parts_per_round_max: 8,
            leg_confirm_deadline_ms: 10_000,
            unconfirmed_legs_max: 10_000,
        }
    }

    #[test]
    fn node_ids_addresses_and_ttls_are_checked() {
        assert_eq!(settings("node-1", "", 5000).problem(), None);
        assert_eq!(
            settings("a.b_C-9", "http://10.0.0.1:8080", 500).problem(),
            None
        );
        assert!(settings("", "", 5000).problem().is_some());
        assert!(settings("node 1", "", 5000).problem().is_some());
        assert!(settings(&"n".repeat(65), "", 5000).problem().is_some());
        assert!(settings("node-1", "10.0.0.1:8080", 5000)
            .problem()
            .is_some());
        assert!(settings("node-1", "", 499).problem().is_some());
    }

    #[test]
    fn the_advertised_address_defaults_to_the_listener() {
        assert_eq!(
            settings("n", "", 5000).advertised("127.0.0.1", 8080),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            settings("n", "http://a:1", 5000).advertised("127.0.0.1", 8080),
            "http://a:1"
        );
    }
}
