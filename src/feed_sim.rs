//! `winzo feed-sim`: a simulated data provider that makes a local engine come alive.
//!
//! It plays several football and basketball matches minute by minute in scaled time
//! (`feed_sim.minute_ms` per match minute): each match is announced as a `fixture` with its
//! markets and opening odds a few minutes before kick-off, goes `live`, has goals (preceded
//! by a `bet_stop`) or points, odds that drift with the score and the clock, `halftime`,
//! and `finished`; a new fixture replaces every finished match. Every push is signed like a
//! real provider's, and a `heartbeat` keeps the watchdog quiet between minutes. A push the
//! engine does not acknowledge is sent again, with the same `seq`s, on the next tick.
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

/// The `[feed_sim]` section of the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedSimSettings {
    pub engine_url: String,
    pub provider_id: String,
    pub provider_secret: String,
    /// Real time of one simulated match minute.
    pub minute_ms: u64,
    pub football_matches: usize,
    pub basketball_matches: usize,
    pub request_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
}

const FOOTBALL: &[&str] = &[
    "Northbridge United",
    "Eastport Rovers",
    "Kingsford City",
    "Ashdale Athletic",
    "Riverside FC",
    "Harbour Town",
    "Millbrook Wanderers",
    "Stonegate Albion",
    "Westfield Orient",
    "Lakeside Rangers",
];
const BASKETBALL: &[&str] = &[
    "Metro Comets",
    "Bay Foxes",
    "Capital Owls",
    "Summit Bears",
    "Desert Suns",
    "Harbor Whales",
    "Prairie Hawks",
    "Canyon Kings",
];

/// Minutes between the fixture and kick-off.
const PRE_MATCH_MINUTES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sport {
    Football,
    Basketball,
}

impl Sport {
    fn slug(self) -> &'static str {
        match self {
            Sport::Football => "football",
            Sport::Basketball => "basketball",
        }
    }
    fn length(self) -> u32 {
        match self {
            Sport::Football => 90,
            Sport::Basketball => 48,
        }
    }
    fn total_line(self) -> &'static str {
        match self {
            Sport::Football => "2.5",
            Sport::Basketball => "205.5",
        }
    }
}

/// One simulated match.
struct Match {
    sport: Sport,
    event_ref: String,
    home: String,
    away: String,
    /// Home advantage in goals (or points) over the whole match.
    strength: f64,
    /// Minutes since the fixture; kick-off at `PRE_MATCH_MINUTES`.
    tick: u32,
    home_score: u32,
    away_score: u32,
    seq: i64,
    /// Messages not yet acknowledged by the engine (resent with their seqs).
    pending: Vec<Value>,
    /// A bet stop is out; the next minute's odds reopen the markets.
    stopped: bool,
    finished: bool,
}

impl Match {
    fn new(sport: Sport, run: &str, n: u64, rng: &mut impl Rng) -> Match {
        let names = if sport == Sport::Football {
            FOOTBALL
        } else {
            BASKETBALL
        };
        let h = rng.gen_range(0..names.len());
        let mut a = rng.gen_range(0..names.len() - 1);
        if a >= h {
            a += 1;
        }
        let spread = if sport == Sport::Football { 1.2 } else { 12.0 };
        let mut m = Match {
            sport,
            event_ref: format!("sim-{run}-{}-{n}", sport.slug()),
            home: names[h].to_string(),
            away: names[a].to_string(),
            strength: rng.gen_range(-spread..spread),
            tick: 0,
            home_score: 0,
            away_score: 0,
            seq: 0,
            pending: Vec::new(),
            stopped: false,
            finished: false,
        };
        let start = chrono::Utc::now() + chrono::Duration::minutes(i64::from(PRE_MATCH_MINUTES));
        let markets = json!([
            {"type": "moneyline", "title": "Match winner", "selections": m.moneyline()},
            {"type": "total_points", "line": sport.total_line(), "title": format!("Total {}", sport.total_line()), "selections": m.totals()},
        ]);
        m.emit(
            json!({"type": "fixture", "sport": sport.slug(), "home": m.home, "away": m.away,
                      "start_time": start.to_rfc3339(), "markets": markets}),
        );
        m
    }

    fn emit(&mut self, mut body: Value) {
        self.seq += 1;
        body["seq"] = json!(self.seq);
        body["event_ref"] = json!(self.event_ref);
        self.pending.push(body);
    }

    /// Match minutes played.
    fn minute(&self) -> u32 {
        self.tick.saturating_sub(PRE_MATCH_MINUTES)
    }

    fn remaining_fraction(&self) -> f64 {
        1.0 - f64::from(self.minute().min(self.sport.length())) / f64::from(self.sport.length())
    }

    /// Win probabilities (home, draw, away) from the score, the time left and the strength.
    fn probabilities(&self) -> (f64, f64, f64) {
        let rem = self.remaining_fraction();
        let diff = f64::from(self.home_score) - f64::from(self.away_score) + self.strength * rem;
        match self.sport {
            Sport::Football => {
                let scale = 0.6 + 1.4 * rem;
                let home = 1.0 / (1.0 + (-diff * 1.3 / scale).exp());
                let draw =
                    (0.32 * (-diff.abs() / scale).exp()).clamp(0.02, 0.45) * (0.5 + rem).min(1.0);
                let rest = 1.0 - draw;
                (home * rest, draw, (1.0 - home) * rest)
            }
            Sport::Basketball => {
                let scale = 2.0 + 12.0 * rem;
                let home = 1.0 / (1.0 + (-diff / scale).exp());
                (home, 0.0, 1.0 - home)
            }
        }
    }

    fn moneyline(&self) -> Value {
        let (h, d, a) = self.probabilities();
        let mut sels = vec![json!({"name": self.home, "odds": price(h)})];
        if self.sport == Sport::Football {
            sels.push(json!({"name": "Draw", "odds": price(d)}));
        }
        sels.push(json!({"name": self.away, "odds": price(a)}));
        Value::Array(sels)
    }

    fn totals(&self) -> Value {
        let (rate, line): (f64, f64) = match self.sport {
            Sport::Football => (2.6 / 90.0, 2.5),
            Sport::Basketball => (205.0 / 48.0, 205.5),
        };
        let left = f64::from(self.sport.length().saturating_sub(self.minute()));
        let expected = f64::from(self.home_score + self.away_score) + rate * left;
        let spread = if self.sport == Sport::Football {
            0.8
        } else {
            8.0
        };
        let over = 1.0 / (1.0 + (-(expected - line) / spread).exp());
        json!([{"name": "Over", "odds": price(over)}, {"name": "Under", "odds": price(1.0 - over)}])
    }

    fn odds_messages(&mut self) {
        let (ml, tot) = (self.moneyline(), self.totals());
        self.emit(json!({"type": "odds", "market": {"type": "moneyline"}, "prices": ml}));
        self.emit(json!({"type": "odds", "market": {"type": "total_points", "line": self.sport.total_line()}, "prices": tot}));
    }

    /// One match minute.
    fn step(&mut self, rng: &mut impl Rng) {
        self.tick += 1;
        let minute = self.minute();
        let length = self.sport.length();
        if self.tick < PRE_MATCH_MINUTES {
            if rng.gen_bool(0.5) {
                self.odds_messages();
            }
            return;
        }
        if self.tick == PRE_MATCH_MINUTES {
            self.emit(json!({"type": "status", "status": "live", "period": period(self.sport, 0), "clock": "00:00"}));
            return;
        }
        let half = length / 2;
        if minute == half + 1 {
            self.emit(json!({"type": "status", "status": "halftime", "period": "HT", "clock": clock(half)}));
            return;
        }
        if minute == half + 2 {
            self.emit(json!({"type": "status", "status": "live", "period": period(self.sport, half + 1), "clock": clock(half)}));
            return;
        }
        let played = if minute > half + 2 {
            minute - 2
        } else {
            minute
        };
        if played > length {
            self.emit(json!({"type": "status", "status": "finished", "period": "FT", "clock": clock(length)}));
            self.finished = true;
            return;
        }
        let (home_pts, away_pts) = self.scoring(rng);
        if home_pts + away_pts > 0 {
            if self.sport == Sport::Football {
                // The provider's scout sees the attack first: stop bets, then the goal.
                self.emit(json!({"type": "bet_stop", "reason": "dangerous_attack"}));
            }
            self.home_score += home_pts;
            self.away_score += away_pts;
            self.emit(
                json!({"type": "score", "home": self.home_score, "away": self.away_score,
                             "period": period(self.sport, played), "clock": clock(played)}),
            );
            self.stopped = true;
        } else if self.stopped || rng.gen_bool(0.6) {
            self.odds_messages();
            self.stopped = false;
        }
    }

    fn scoring(&self, rng: &mut impl Rng) -> (u32, u32) {
        match self.sport {
            Sport::Football => {
                let edge = self.strength / 90.0;
                let home = rng.gen_bool((1.35 / 90.0 + edge / 2.0).clamp(0.002, 0.2));
                let away = !home && rng.gen_bool((1.15 / 90.0 - edge / 2.0).clamp(0.002, 0.2));
                (u32::from(home), u32::from(away))
            }
            Sport::Basketball => {
                let mut pts = |bias: f64| -> u32 {
                    let attempts = rng.gen_range(1..=3);
                    (0..attempts)
                        .map(|_| {
                            if rng.gen_bool((0.45 + bias).clamp(0.2, 0.7)) {
                                rng.gen_range(2..=3)
                            } else {
                                0
                            }
                        })
                        .sum()
                };
                let bias = self.strength / 200.0;
                (pts(bias), pts(-bias))
            }
        }
    }
}

/// A decimal price from a probability with a 5% margin, within the engine's bounds.
fn price(p: f64) -> String {
    let p = p.clamp(0.01, 0.95) * 1.05;
    format!("{:.2}", (1.0 / p).clamp(1.01, 100.0))
}

fn clock(minute: u32) -> String {
    format!("{minute:02}:00")
}

fn period(sport: Sport, minute: u32) -> &'static str {
    match sport {
        Sport::Football if minute < 45 => "1H",
        Sport::Football => "2H",
        Sport::Basketball => ["Q1", "Q2", "Q3", "Q4"][(minute / 12).min(3) as usize],
    }
}

/// Signs and sends one push; true when the engine acknowledged it.
async fn push(http: &reqwest::Client, s: &FeedSimSettings, body: &Value) -> bool {
    let raw = body.to_string();
    let ts = chrono::Utc::now().timestamp();
    let sig = crate::feed::auth::sign(&s.provider_secret, ts, raw.as_bytes());
    let url = format!(
        "{}/api/v1/feed/{}/messages",
        s.engine_url.trim_end_matches('/'),
        s.provider_id
    );
    let sent = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Feed-Timestamp", ts.to_string())
        .header("X-Feed-Signature", sig)
        .body(raw)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            if let Ok(answer) = r.json::<Value>().await {
                for o in answer["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|o| o["outcome"] == "rejected")
                {
                    tracing::warn!(result = %o, "engine rejected a simulated message");
                }
            }
            true
        }
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            tracing::warn!(%status, body = %text, "engine refused a push");
            // 4xx other than 401/503 will never succeed as is: drop it rather than loop.
            status.is_client_error() && status.as_u16() != 401
        }
        Err(e) => {
            tracing::warn!(error = %e, "engine unreachable; retrying next tick");
            false
        }
    }
}

/// Runs the simulator until the process is stopped.
pub async fn run(s: FeedSimSettings) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(s.request_timeout_ms))
        .build()?;
    let run = format!("{:08x}", rand::thread_rng().gen::<u32>());
    tracing::info!(engine = %s.engine_url, provider = %s.provider_id, run = %run, "feed simulator starting");
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut next = 0u64;
    let mut matches: Vec<Match> = Vec::new();
    for sport in std::iter::repeat_n(Sport::Football, s.football_matches)
        .chain(std::iter::repeat_n(Sport::Basketball, s.basketball_matches))
    {
        next += 1;
        let mut m = Match::new(sport, &run, next, &mut rng);
        // Stagger kick-offs so something always happens.
        m.tick = rng.gen_range(0..PRE_MATCH_MINUTES);
        matches.push(m);
    }
    let mut minute = tokio::time::interval(Duration::from_millis(s.minute_ms.max(50)));
    let mut heartbeat =
        tokio::time::interval(Duration::from_millis(s.heartbeat_interval_ms.max(100)));
    loop {
        tokio::select! {
            _ = minute.tick() => {
                for m in matches.iter_mut() {
                    if !m.finished {
                        m.step(&mut rng);
                    }
                    if !m.pending.is_empty() && push(&http, &s, &Value::Array(m.pending.clone())).await {
                        m.pending.clear();
                    }
                }
                for m in matches.iter_mut() {
                    if m.finished && m.pending.is_empty() {
                        next += 1;
                        *m = Match::new(m.sport, &run, next, &mut rng);
                    }
                }
            }
            _ = heartbeat.tick() => {
                push(&http, &s, &json!({"type": "heartbeat"})).await;
            }
        }
    }
}

use rand::SeedableRng;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_is_played_to_the_end_with_valid_prices() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for sport in [Sport::Football, Sport::Basketball] {
            let mut m = Match::new(sport, "t", 1, &mut rng);
            let mut statuses = Vec::new();
            for _ in 0..200 {
                if m.finished {
                    break;
                }
                m.step(&mut rng);
            }
            assert!(m.finished);
            let mut last_seq = 0;
            for msg in &m.pending {
                let seq = msg["seq"].as_i64().unwrap();
                assert_eq!(seq, last_seq + 1, "contiguous seq");
                last_seq = seq;
                if msg["type"] == "status" {
                    statuses.push(msg["status"].as_str().unwrap().to_string());
                }
                for p in msg["prices"].as_array().into_iter().flatten() {
                    let odds: f64 = p["odds"].as_str().unwrap().parse().unwrap();
                    assert!((1.01..=100.0).contains(&odds));
                }
            }
            assert_eq!(statuses, ["live", "halftime", "live", "finished"]);
            let parsed = crate::feed::messages::parse_push(
                serde_json::to_string(&m.pending).unwrap().as_bytes(),
                10_000,
            );
            assert!(parsed.is_ok(), "the engine reads what the simulator sends");
        }
    }
}
