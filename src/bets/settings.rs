//! `[bets]` settings: bet shapes, ceilings and the bounds of the bet path's waits.
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct BetSettings {
    /// Most legs of a parlay or system bet.
    pub legs_max: usize,
    /// Most lines of a system bet.
    pub system_lines_max: u64,
    /// Highest total odds of a bet.
    pub total_odds_max: Decimal,
    /// Highest potential win of a bet, in the base currency (converted, down, to the
    /// bettor's).
    pub potential_win_max: Decimal,
    /// Requests with an idempotency key in flight at once on this node; more are busy.
    pub inflight_keys_max: usize,
    /// Extra wait for a leg beyond the actor ask timeout, covering the in-play delay.
    pub leg_wait_extra_ms: u64,
    /// Largest page of `GET /api/v1/bets`.
    pub history_page_max: i32,
    /// Deepest offset of `GET /api/v1/bets`.
    pub history_offset_max: i32,
    /// Whether the market and event actors and the wallet shards run on one book thread
    /// that also runs every bet once its key is claimed (`crate::book`): a bet then crosses
    /// threads twice instead of about ten times. Off by default: on this project's 2-core
    /// machine it took fewer context switches but no less CPU per bet and fewer bets/s
    /// (BENCHMARKS.md, "The book thread").
    #[serde(default)]
    pub book_thread: bool,
    /// Pairs of market types that may share an event within one parlay (e.g. a
    /// moneyline with a total); any other two legs on one event are `correlated_legs`.
    #[serde(default)]
    pub correlated_allowed: Vec<[String; 2]>,
}

impl BetSettings {
    pub fn correlation_allowed(&self, a: &str, b: &str) -> bool {
        self.correlated_allowed
            .iter()
            .any(|[x, y]| (x == a && y == b) || (x == b && y == a))
    }
}
