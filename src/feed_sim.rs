//! `winzo feed-sim`: a simulated data provider that makes a local engine come alive.
//!
//! It plays several football and basketball matches minute by minute in scaled time
//! (`feed_sim.minute_ms` per match minute). Each match is announced as a `fixture` with its
//! markets and opening odds a few minutes before kick-off; the fixture's `start_time` is the
//! wall-clock time at which the simulator will send `live`, and `live` is never sent before
//! it. A team is in one match at a time: a new fixture takes teams that are not playing or
//! scheduled in another simulated match. Every minute of play sends one `score` message with
//! the period and clock (the score unchanged but for goals or points), so the clock ticks;
//! football goals are preceded by a `bet_stop`; odds drift with the score and the clock; there
//! is a one-minute `halftime`, and a tied basketball match goes to five-minute overtimes.
//! Right after `finished` comes a `result` that settles every selection of every market from
//! the final score. Now and then (one match in `1 / CORRECTION_CHANCE`) the provider gets one
//! market wrong first and corrects it `CORRECTION_MINUTES` later with a `result_rollback` and
//! the right `result`. A match is replaced by a new fixture only once its last result is
//! acknowledged. Every push is signed like a real provider's, and a `heartbeat` keeps the
//! watchdog quiet between minutes. A push the engine does not acknowledge is sent again, with
//! the same `seq`s, on the next tick; `result` and `result_rollback` messages travel in pushes
//! of their own, so an engine that refuses them still gets the rest of the match.
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
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

/// Minutes between the fixture and kick-off (the first matches of a run kick off sooner,
/// staggered, so something always happens).
const PRE_MATCH_MINUTES: u32 = 5;
/// The chance that a match's first result gets one market wrong (corrected later).
const CORRECTION_CHANCE: f64 = 0.1;
/// Minutes between the wrong result and its rollback and correction.
const CORRECTION_MINUTES: u32 = 3;
/// Length of one basketball overtime.
const OVERTIME_MINUTES: u32 = 5;

/// The selection name of a football draw.
const DRAW: &str = "Draw";
const OVER: &str = "Over";
const UNDER: &str = "Under";

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
    fn teams(self) -> &'static [&'static str] {
        match self {
            Sport::Football => FOOTBALL,
            Sport::Basketball => BASKETBALL,
        }
    }
    /// Minutes of regulation time.
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

/// The markets of every simulated match, in the fixture's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Market {
    Moneyline,
    Total,
}

const MARKETS: [Market; 2] = [Market::Moneyline, Market::Total];

/// Where a match stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Announced; goes live at its `start_time`.
    PreMatch,
    Playing,
    /// The one-minute break after the first half.
    HalfTime,
    /// Finished with one market's result wrong: the rollback and the right result are due
    /// after `minutes_left` more minutes.
    Correcting {
        market: Market,
        minutes_left: u32,
    },
    /// Finished and settled for good: nothing more to send.
    Done,
}

/// One simulated match.
struct Match {
    sport: Sport,
    event_ref: String,
    home: String,
    away: String,
    /// When the simulator sends `live` (the fixture's `start_time`).
    start_time: DateTime<Utc>,
    /// Home advantage in goals (or points) over the whole match.
    strength: f64,
    phase: Phase,
    /// Minutes of play so far.
    played: u32,
    /// Regulation time, plus the overtimes a tied basketball match needed.
    length: u32,
    /// The second half has started.
    second_half: bool,
    home_score: u32,
    away_score: u32,
    seq: i64,
    /// Messages not yet acknowledged by the engine (resent with their seqs).
    pending: Vec<Value>,
    /// A bet stop is out; the next minute's odds reopen the markets.
    stopped: bool,
}

impl Match {
    /// Announces a match between two of `free` teams (at least two) kicking off at
    /// `start_time`: its `fixture` is the first pending message.
    fn new(
        sport: Sport,
        event_ref: String,
        free: &[&str],
        start_time: DateTime<Utc>,
        rng: &mut impl Rng,
    ) -> Match {
        let h = rng.gen_range(0..free.len());
        let mut a = rng.gen_range(0..free.len() - 1);
        if a >= h {
            a += 1;
        }
        let spread = if sport == Sport::Football { 1.2 } else { 12.0 };
        let mut m = Match {
            sport,
            event_ref,
            home: free[h].to_string(),
            away: free[a].to_string(),
            // Whole milliseconds, as the fixture says it.
            start_time: start_time.trunc_subsecs(3),
            strength: rng.gen_range(-spread..spread),
            phase: Phase::PreMatch,
            played: 0,
            length: sport.length(),
            second_half: false,
            home_score: 0,
            away_score: 0,
            seq: 0,
            pending: Vec::new(),
            stopped: false,
        };
        let markets: Vec<Value> = MARKETS
            .iter()
            .map(|&k| {
                let mut market = m.market_key(k);
                market["title"] = json!(m.market_title(k));
                market["selections"] = m.prices(k);
                market
            })
            .collect();
        m.emit(
            json!({"type": "fixture", "sport": sport.slug(), "home": m.home, "away": m.away,
                      "start_time": m.start_time.to_rfc3339_opts(SecondsFormat::Millis, true),
                      "markets": markets}),
        );
        m
    }

    fn emit(&mut self, mut body: Value) {
        self.seq += 1;
        body["seq"] = json!(self.seq);
        body["event_ref"] = json!(self.event_ref);
        self.pending.push(body);
    }

    /// Announced, playing or at half-time (not finished).
    fn running(&self) -> bool {
        matches!(
            self.phase,
            Phase::PreMatch | Phase::Playing | Phase::HalfTime
        )
    }

    /// Its teams are taken: it is running, or the engine has not yet acknowledged all it
    /// was told (its `finished` may still be on the way).
    fn holds_teams(&self) -> bool {
        self.running() || !self.pending.is_empty()
    }

    /// Nothing more to send once the pending messages are acknowledged.
    fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// How the fixture, odds, results and rollbacks address a market.
    fn market_key(&self, market: Market) -> Value {
        match market {
            Market::Moneyline => json!({"type": "moneyline"}),
            Market::Total => json!({"type": "total_points", "line": self.sport.total_line()}),
        }
    }

    fn market_title(&self, market: Market) -> String {
        match (market, self.sport) {
            (Market::Moneyline, _) => "Match winner".to_string(),
            (Market::Total, Sport::Football) => format!("Total goals {}", self.sport.total_line()),
            (Market::Total, Sport::Basketball) => {
                format!("Total points {}", self.sport.total_line())
            }
        }
    }

    /// The market's selection names, in the fixture's order.
    fn selection_names(&self, market: Market) -> Vec<&str> {
        match (market, self.sport) {
            (Market::Moneyline, Sport::Football) => {
                vec![self.home.as_str(), DRAW, self.away.as_str()]
            }
            (Market::Moneyline, Sport::Basketball) => vec![self.home.as_str(), self.away.as_str()],
            (Market::Total, _) => vec![OVER, UNDER],
        }
    }

    fn remaining_fraction(&self) -> f64 {
        let length = self.sport.length();
        1.0 - f64::from(self.played.min(length)) / f64::from(length)
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

    /// The market's current prices, `[{name, odds}]` in the fixture's order.
    fn prices(&self, market: Market) -> Value {
        let odds: Vec<String> = match market {
            Market::Moneyline => {
                let (h, d, a) = self.probabilities();
                match self.sport {
                    Sport::Football => vec![price(h), price(d), price(a)],
                    Sport::Basketball => vec![price(h), price(a)],
                }
            }
            Market::Total => {
                let (rate, line): (f64, f64) = match self.sport {
                    Sport::Football => (2.6 / 90.0, 2.5),
                    Sport::Basketball => (205.0 / 48.0, 205.5),
                };
                let left = f64::from(self.sport.length().saturating_sub(self.played));
                let expected = f64::from(self.home_score + self.away_score) + rate * left;
                let spread = if self.sport == Sport::Football {
                    0.8
                } else {
                    8.0
                };
                let over = 1.0 / (1.0 + (-(expected - line) / spread).exp());
                vec![price(over), price(1.0 - over)]
            }
        };
        let names = self.selection_names(market);
        Value::Array(
            names
                .into_iter()
                .zip(odds)
                .map(|(name, odds)| json!({"name": name, "odds": odds}))
                .collect(),
        )
    }

    fn odds_messages(&mut self) {
        for k in MARKETS {
            let (market, prices) = (self.market_key(k), self.prices(k));
            self.emit(json!({"type": "odds", "market": market, "prices": prices}));
        }
    }

    /// Each selection's result (`win`, `loss` or `push`) from the current score.
    fn outcomes(&self, market: Market) -> Vec<&'static str> {
        let (h, a) = (self.home_score, self.away_score);
        match market {
            Market::Moneyline => {
                let (home, away) = match h.cmp(&a) {
                    std::cmp::Ordering::Greater => ("win", "loss"),
                    std::cmp::Ordering::Less => ("loss", "win"),
                    // A tied two-way market (basketball plays overtime, so never here).
                    std::cmp::Ordering::Equal if self.sport == Sport::Basketball => {
                        ("push", "push")
                    }
                    std::cmp::Ordering::Equal => ("loss", "loss"),
                };
                match self.sport {
                    Sport::Football => {
                        vec![home, if h == a { "win" } else { "loss" }, away]
                    }
                    Sport::Basketball => vec![home, away],
                }
            }
            Market::Total => {
                let line = Decimal::from_str(self.sport.total_line()).expect("a decimal line");
                match Decimal::from(h + a).cmp(&line) {
                    std::cmp::Ordering::Greater => vec!["win", "loss"],
                    std::cmp::Ordering::Less => vec!["loss", "win"],
                    std::cmp::Ordering::Equal => vec!["push", "push"],
                }
            }
        }
    }

    /// A market's entry of a `result` message: `{"market": key, "results": [...]}`.
    fn market_result(&self, market: Market, outcomes: &[&str]) -> Value {
        let results: Vec<Value> = self
            .selection_names(market)
            .into_iter()
            .zip(outcomes)
            .map(|(name, r)| json!({"selection": name, "result": r}))
            .collect();
        json!({"market": self.market_key(market), "results": results})
    }

    /// The final whistle: `finished`, then the result of every market, one of them wrong
    /// when `wrong` names it.
    fn finish(&mut self, wrong: Option<Market>) {
        self.emit(
            json!({"type": "status", "status": "finished", "period": "FT",
                         "clock": clock(self.played)}),
        );
        let markets: Vec<Value> = MARKETS
            .iter()
            .map(|&k| {
                let right = self.outcomes(k);
                if wrong == Some(k) {
                    self.market_result(k, &wrong_outcomes(&right))
                } else {
                    self.market_result(k, &right)
                }
            })
            .collect();
        self.emit(json!({"type": "result", "markets": markets}));
        self.phase = match wrong {
            Some(market) => Phase::Correcting {
                market,
                minutes_left: CORRECTION_MINUTES,
            },
            None => Phase::Done,
        };
    }

    /// One match minute; `now` is the wall-clock time (kick-off waits for `start_time`).
    fn step(&mut self, now: DateTime<Utc>, rng: &mut impl Rng) {
        match self.phase {
            Phase::PreMatch => {
                if now < self.start_time {
                    if rng.gen_bool(0.5) {
                        self.odds_messages();
                    }
                    return;
                }
                self.emit(json!({"type": "status", "status": "live",
                                 "period": period(self.sport, 0), "clock": clock(0)}));
                self.phase = Phase::Playing;
            }
            Phase::HalfTime => {
                let half = self.sport.length() / 2;
                self.emit(json!({"type": "status", "status": "live",
                                 "period": period(self.sport, half), "clock": clock(half)}));
                self.second_half = true;
                self.phase = Phase::Playing;
            }
            Phase::Playing => {
                let half = self.sport.length() / 2;
                if self.played == half && !self.second_half {
                    self.emit(
                        json!({"type": "status", "status": "halftime", "period": "HT",
                                     "clock": clock(half)}),
                    );
                    self.phase = Phase::HalfTime;
                    return;
                }
                if self.played >= self.length {
                    if self.sport == Sport::Basketball && self.home_score == self.away_score {
                        self.length += OVERTIME_MINUTES;
                    } else {
                        let wrong = rng
                            .gen_bool(CORRECTION_CHANCE)
                            .then(|| MARKETS[rng.gen_range(0..MARKETS.len())]);
                        self.finish(wrong);
                        return;
                    }
                }
                self.play_minute(rng);
            }
            Phase::Correcting {
                market,
                minutes_left,
            } => {
                if minutes_left > 1 {
                    self.phase = Phase::Correcting {
                        market,
                        minutes_left: minutes_left - 1,
                    };
                    return;
                }
                let key = self.market_key(market);
                self.emit(json!({"type": "result_rollback", "markets": [key]}));
                let right = self.market_result(market, &self.outcomes(market));
                self.emit(json!({"type": "result", "markets": [right]}));
                self.phase = Phase::Done;
            }
            Phase::Done => {}
        }
    }

    /// A minute of play: goals or points, and one `score` message with the period and clock.
    fn play_minute(&mut self, rng: &mut impl Rng) {
        self.played += 1;
        let (home_pts, away_pts) = self.scoring(rng);
        let scored = home_pts + away_pts > 0;
        if scored && self.sport == Sport::Football {
            // The provider's scout sees the attack first: stop bets, then the goal.
            self.emit(json!({"type": "bet_stop", "reason": "dangerous_attack"}));
        }
        self.home_score += home_pts;
        self.away_score += away_pts;
        // Sent every minute, the score unchanged or not: it moves the clock.
        self.emit(
            json!({"type": "score", "home": self.home_score, "away": self.away_score,
                         "period": period(self.sport, self.played - 1),
                         "clock": clock(self.played)}),
        );
        match self.sport {
            // A goal suspends every market: they reopen with the next minute's odds.
            Sport::Football if scored => self.stopped = true,
            // Points suspend the moneyline: priced again at once, or it would stay suspended
            // nearly all game (there are points almost every minute).
            Sport::Basketball if scored => self.odds_messages(),
            _ => {
                if self.stopped || rng.gen_bool(0.6) {
                    self.odds_messages();
                    self.stopped = false;
                }
            }
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

/// A deliberately wrong result: the selection after the winner wins instead (the first
/// one when nothing won), every other loses.
fn wrong_outcomes(right: &[&'static str]) -> Vec<&'static str> {
    let wrong_winner = right
        .iter()
        .position(|r| *r == "win")
        .map_or(0, |w| (w + 1) % right.len());
    (0..right.len())
        .map(|i| if i == wrong_winner { "win" } else { "loss" })
        .collect()
}

/// A decimal price from a probability with a 5% margin, within the engine's bounds.
fn price(p: f64) -> String {
    let p = p.clamp(0.01, 0.95) * 1.05;
    format!("{:.2}", (1.0 / p).clamp(1.01, 100.0))
}

fn clock(minute: u32) -> String {
    format!("{minute:02}:00")
}

/// The period of the match minute `minute` (0-based: minute 0 is the first).
fn period(sport: Sport, minute: u32) -> &'static str {
    match sport {
        Sport::Football if minute < 45 => "1H",
        Sport::Football => "2H",
        Sport::Basketball if minute >= 48 => "OT",
        Sport::Basketball => ["Q1", "Q2", "Q3", "Q4"][(minute / 12) as usize],
    }
}

/// The simulated matches of a run.
struct Sim {
    run: String,
    /// Real time of one match minute.
    minute: chrono::Duration,
    /// Matches announced so far (numbers the event refs).
    announced: u64,
    matches: Vec<Match>,
}

impl Sim {
    /// Announces the first matches, kicking off one to `PRE_MATCH_MINUTES` minutes after
    /// `now`. At most half a sport's teams play at once (each team in one match).
    fn new(
        run: String,
        minute_ms: u64,
        football: usize,
        basketball: usize,
        now: DateTime<Utc>,
        rng: &mut impl Rng,
    ) -> Sim {
        let mut sim = Sim {
            run,
            minute: chrono::Duration::milliseconds(minute_ms as i64),
            announced: 0,
            matches: Vec::new(),
        };
        for (sport, count) in [(Sport::Football, football), (Sport::Basketball, basketball)] {
            let most = sport.teams().len() / 2;
            if count > most {
                tracing::warn!(
                    sport = sport.slug(),
                    count,
                    most,
                    "not enough simulated teams for that many matches at once"
                );
            }
            for _ in 0..count.min(most) {
                let pre = rng.gen_range(1..=PRE_MATCH_MINUTES);
                let m = sim.announce(sport, None, now, pre, rng);
                sim.matches.push(m);
            }
        }
        sim
    }

    /// A new match of `sport` between teams in no other match that is running or whose
    /// `finished` the engine has not acknowledged (`replacing` is the index of the match it
    /// replaces), kicking off `pre` minutes after `now`.
    fn announce(
        &mut self,
        sport: Sport,
        replacing: Option<usize>,
        now: DateTime<Utc>,
        pre: u32,
        rng: &mut impl Rng,
    ) -> Match {
        let busy: Vec<&str> = self
            .matches
            .iter()
            .enumerate()
            .filter(|(i, m)| Some(*i) != replacing && m.sport == sport && m.holds_teams())
            .flat_map(|(_, m)| [m.home.as_str(), m.away.as_str()])
            .collect();
        let free: Vec<&str> = sport
            .teams()
            .iter()
            .copied()
            .filter(|t| !busy.contains(t))
            .collect();
        self.announced += 1;
        let event_ref = format!("sim-{}-{}-{}", self.run, sport.slug(), self.announced);
        let start = now + self.minute * pre as i32;
        Match::new(sport, event_ref, &free, start, rng)
    }

    /// One minute of every match.
    fn step(&mut self, now: DateTime<Utc>, rng: &mut impl Rng) {
        for m in &mut self.matches {
            m.step(now, rng);
        }
    }

    /// Replaces each match that is done and acknowledged with a new fixture.
    fn replace_done(&mut self, now: DateTime<Utc>, rng: &mut impl Rng) {
        for i in 0..self.matches.len() {
            if self.matches[i].done() && self.matches[i].pending.is_empty() {
                let sport = self.matches[i].sport;
                self.matches[i] = self.announce(sport, Some(i), now, PRE_MATCH_MINUTES, rng);
            }
        }
    }
}

/// Settling messages (`result`, `result_rollback`) go in pushes of their own.
fn settles(msg: &Value) -> bool {
    matches!(msg["type"].as_str(), Some("result" | "result_rollback"))
}

/// Most messages in one push (well below the engine's `feed.messages_per_push_max`, even
/// after a long outage has piled messages up).
const PUSH_MESSAGES_MAX: usize = 100;

/// Sends the pending messages in order, as few pushes as possible with settling messages
/// apart from the others; removes what the engine acknowledged and stops at the first push
/// it did not.
async fn send_pending(http: &reqwest::Client, s: &FeedSimSettings, pending: &mut Vec<Value>) {
    while !pending.is_empty() {
        let n = next_push_len(pending);
        if !push(http, s, &Value::Array(pending[..n].to_vec())).await {
            return;
        }
        pending.drain(..n);
    }
}

/// How many of the pending messages (at least one) the next push carries: the first and the
/// ones after it of the same kind (settling or not), at most `PUSH_MESSAGES_MAX`.
fn next_push_len(pending: &[Value]) -> usize {
    let kind = pending.first().is_some_and(settles);
    pending
        .iter()
        .position(|m| settles(m) != kind)
        .unwrap_or(pending.len())
        .min(PUSH_MESSAGES_MAX)
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

/// The wall-clock time of a tick's deadline (a little early rather than late: the wall
/// clock is read before the monotonic one).
fn wall_time(at: tokio::time::Instant) -> DateTime<Utc> {
    let wall = Utc::now();
    let since = tokio::time::Instant::now().saturating_duration_since(at);
    wall - chrono::Duration::from_std(since).unwrap_or_default()
}

/// Runs the simulator until the process is stopped.
pub async fn run(s: FeedSimSettings) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(s.request_timeout_ms))
        .build()?;
    let run = format!("{:08x}", rand::thread_rng().gen::<u32>());
    tracing::info!(engine = %s.engine_url, provider = %s.provider_id, run = %run, "feed simulator starting");
    let mut rng = rand::rngs::StdRng::from_entropy();
    let minute_ms = s.minute_ms.max(50);
    // Ticks keep to their schedule (missed ones are caught up at once), so the tick that
    // sends `live` comes no earlier than the `start_time` counted in ticks from an earlier one.
    let mut minute = tokio::time::interval(Duration::from_millis(minute_ms));
    let mut heartbeat =
        tokio::time::interval(Duration::from_millis(s.heartbeat_interval_ms.max(100)));
    let mut sim: Option<Sim> = None;
    loop {
        tokio::select! {
            at = minute.tick() => {
                let tick_time = wall_time(at);
                match sim.as_mut() {
                    None => {
                        sim = Some(Sim::new(run.clone(), minute_ms, s.football_matches,
                                            s.basketball_matches, tick_time, &mut rng));
                    }
                    Some(sim) => {
                        sim.step(Utc::now(), &mut rng);
                        sim.replace_done(tick_time, &mut rng);
                    }
                }
                for m in sim.iter_mut().flat_map(|sim| sim.matches.iter_mut()) {
                    send_pending(&http, &s, &mut m.pending).await;
                }
            }
            _ = heartbeat.tick() => {
                push(&http, &s, &json!({"type": "heartbeat"})).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    const MINUTE_MS: u64 = 1000;

    fn t0() -> DateTime<Utc> {
        "2026-01-10T15:00:00.250Z".parse().unwrap()
    }

    fn at_minute(k: u32) -> DateTime<Utc> {
        t0() + chrono::Duration::milliseconds(MINUTE_MS as i64 * i64::from(k))
    }

    /// A message as the engine would get it: the minute and wall-clock time it was sent.
    struct Sent {
        minute: u32,
        now: DateTime<Utc>,
        msg: Value,
    }

    /// Plays `sim` (announced at minute 0) for `minutes` minutes, the engine acknowledging
    /// every push; each minute's wall clock runs up to half a minute late (as a busy
    /// simulator's would).
    fn play(sim: &mut Sim, minutes: u32, rng: &mut impl Rng) -> Vec<Sent> {
        let mut sent = Vec::new();
        let mut collect = |sim: &mut Sim, minute: u32, now: DateTime<Utc>| {
            for m in &mut sim.matches {
                sent.extend(m.pending.drain(..).map(|msg| Sent { minute, now, msg }));
            }
        };
        collect(sim, 0, t0());
        for k in 1..=minutes {
            let late = rng.gen_range(0..MINUTE_MS as i64 / 2);
            let now = at_minute(k) + chrono::Duration::milliseconds(late);
            sim.step(now, rng);
            sim.replace_done(at_minute(k), rng);
            collect(sim, k, now);
        }
        sent
    }

    /// One match played to its end (and its correction, if any), alone.
    fn one_match(sport: Sport, rng: &mut impl Rng) -> (Match, Vec<Sent>) {
        let start = at_minute(PRE_MATCH_MINUTES);
        let mut m = Match::new(sport, "t-1".into(), sport.teams(), start, rng);
        let mut sent: Vec<Sent> = m
            .pending
            .drain(..)
            .map(|msg| Sent {
                minute: 0,
                now: t0(),
                msg,
            })
            .collect();
        for k in 1..400 {
            if m.done() {
                break;
            }
            m.step(at_minute(k), rng);
            sent.extend(m.pending.drain(..).map(|msg| Sent {
                minute: k,
                now: at_minute(k),
                msg,
            }));
        }
        assert!(m.done(), "a match ends");
        (m, sent)
    }

    fn of_type<'a>(sent: &'a [Sent], kind: &str) -> Vec<&'a Sent> {
        sent.iter().filter(|s| s.msg["type"] == kind).collect()
    }

    fn status_at(sent: &[Sent], status: &str) -> u32 {
        of_type(sent, "status")
            .into_iter()
            .find(|s| s.msg["status"] == status)
            .unwrap_or_else(|| panic!("no {status}"))
            .minute
    }

    /// Results by market (`type` and `line`) as the engine ends up with them: a
    /// `result_rollback` takes a market's result back, a later `result` settles it again.
    fn final_results(sent: &[Sent]) -> HashMap<String, Vec<(String, String)>> {
        let mut out = HashMap::new();
        for s in sent {
            match s.msg["type"].as_str() {
                Some("result") => {
                    for m in s.msg["markets"].as_array().unwrap() {
                        let results = m["results"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| {
                                let result = r["result"].as_str().unwrap();
                                assert!(["win", "loss", "push", "void"].contains(&result));
                                assert_eq!(r.as_object().unwrap().len(), 2, "{r}");
                                (r["selection"].as_str().unwrap().to_string(), result.into())
                            })
                            .collect();
                        let prev = out.insert(m["market"].to_string(), results);
                        assert!(prev.is_none(), "a settled market is rolled back first");
                    }
                }
                Some("result_rollback") => {
                    for key in s.msg["markets"].as_array().unwrap() {
                        assert!(
                            out.remove(&key.to_string()).is_some(),
                            "rolls back a result"
                        );
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// What each market should say from the final score, computed here from the messages.
    fn expected_results(sent: &[Sent]) -> HashMap<String, Vec<(String, String)>> {
        let fixture = &of_type(sent, "fixture")[0].msg;
        let last = of_type(sent, "score").last().unwrap().msg.clone();
        let (h, a) = (
            last["home"].as_u64().unwrap(),
            last["away"].as_u64().unwrap(),
        );
        let mut out = HashMap::new();
        for market in fixture["markets"].as_array().unwrap() {
            let mut key = json!({"type": market["type"]});
            if let Some(line) = market.get("line") {
                key["line"] = line.clone();
            }
            let results = market["selections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sel| {
                    let name = sel["name"].as_str().unwrap();
                    let won = match (market["type"].as_str().unwrap(), name) {
                        ("moneyline", "Draw") => h == a,
                        ("moneyline", n) if n == fixture["home"] => h > a,
                        ("moneyline", n) if n == fixture["away"] => a > h,
                        ("total_points", "Over") => {
                            (h + a) as f64 > market["line"].as_str().unwrap().parse().unwrap()
                        }
                        ("total_points", "Under") => {
                            ((h + a) as f64) < market["line"].as_str().unwrap().parse().unwrap()
                        }
                        other => panic!("unexpected selection {other:?}"),
                    };
                    (
                        name.to_string(),
                        if won { "win" } else { "loss" }.to_string(),
                    )
                })
                .collect();
            out.insert(key.to_string(), results);
        }
        out
    }

    #[test]
    fn a_match_is_played_to_the_end_with_valid_prices() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for sport in [Sport::Football, Sport::Basketball] {
            let (_, sent) = one_match(sport, &mut rng);
            let mut last_seq = 0;
            for s in &sent {
                let seq = s.msg["seq"].as_i64().unwrap();
                assert_eq!(seq, last_seq + 1, "contiguous seq");
                last_seq = seq;
                for p in s.msg["prices"].as_array().into_iter().flatten() {
                    let odds: f64 = p["odds"].as_str().unwrap().parse().unwrap();
                    assert!((1.01..=100.0).contains(&odds));
                }
            }
            let statuses: Vec<&str> = of_type(&sent, "status")
                .iter()
                .map(|s| s.msg["status"].as_str().unwrap())
                .collect();
            assert_eq!(statuses, ["live", "halftime", "live", "finished"]);
            // The engine reads every message the simulator sends, results included.
            let all: Vec<&Value> = sent.iter().map(|s| &s.msg).collect();
            let parsed = crate::feed::messages::parse_push(
                serde_json::to_string(&all).unwrap().as_bytes(),
                10_000,
            );
            let parsed = parsed.expect("the engine reads what the simulator sends");
            assert!(
                parsed
                    .iter()
                    .any(|m| matches!(m.body, crate::feed::messages::Body::MarketResults(_))),
                "every match ends with a result"
            );
        }
    }

    #[test]
    fn the_clock_ticks_every_minute_of_play() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for sport in [Sport::Football, Sport::Basketball] {
            for _ in 0..10 {
                let (m, sent) = one_match(sport, &mut rng);
                let (live, finished) = (status_at(&sent, "live"), status_at(&sent, "finished"));
                let mut clocks = Vec::new();
                for minute in live..=finished {
                    let with_clock: Vec<&Sent> = sent
                        .iter()
                        .filter(|s| s.minute == minute && s.msg.get("clock").is_some())
                        .collect();
                    assert_eq!(with_clock.len(), 1, "minute {minute}: one clock message");
                    let msg = &with_clock[0].msg;
                    let clock = msg["clock"].as_str().unwrap();
                    let mins: u32 = clock.strip_suffix(":00").unwrap().parse().unwrap();
                    if msg["type"] == "score" {
                        let want = match sport {
                            Sport::Football if mins <= 45 => "1H",
                            Sport::Football => "2H",
                            Sport::Basketball if mins > 48 => "OT",
                            Sport::Basketball => ["Q1", "Q2", "Q3", "Q4"][(mins as usize - 1) / 12],
                        };
                        assert_eq!(msg["period"], want, "{msg}");
                    }
                    clocks.push(mins);
                }
                // 0 at kick-off, one more each minute of play, the same at half-time (the
                // halftime status and the restart) and at the final whistle.
                let length = m.length;
                let half = sport.length() / 2;
                let mut want: Vec<u32> = (0..=half).collect();
                want.extend([half, half]);
                want.extend(half + 1..=length);
                want.push(length);
                assert_eq!(clocks, want);
                assert!(length == sport.length() || sport == Sport::Basketball);
            }
        }
    }

    #[test]
    fn a_match_ends_with_a_result_for_every_selection_from_the_final_score() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut corrections = 0;
        for sport in [Sport::Football, Sport::Basketball] {
            for _ in 0..40 {
                let (m, sent) = one_match(sport, &mut rng);
                // Every selection of every market the fixture offered, from the final score.
                assert_eq!(final_results(&sent), expected_results(&sent));
                let last = of_type(&sent, "score").last().unwrap().msg.clone();
                assert_eq!(
                    (last["home"].as_u64(), last["away"].as_u64()),
                    (Some(m.home_score.into()), Some(m.away_score.into()))
                );
                // The first result comes right after `finished` and names every market.
                let i = sent
                    .iter()
                    .position(|s| s.msg["status"] == "finished")
                    .unwrap();
                let first = &sent[i + 1].msg;
                assert_eq!(first["type"], "result");
                assert_eq!(first["markets"].as_array().unwrap().len(), MARKETS.len());
                assert_eq!(sent[i].minute, sent[i + 1].minute);
                let keys: HashSet<&str> = first
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| k.as_str())
                    .collect();
                assert_eq!(keys, HashSet::from(["seq", "event_ref", "type", "markets"]));
                let rollbacks = of_type(&sent, "result_rollback");
                if rollbacks.is_empty() {
                    assert_eq!(sent.len(), i + 2, "nothing after the result");
                    continue;
                }
                // A correction: the first result got one market wrong; it is rolled back
                // later, and the right result follows at once.
                corrections += 1;
                assert_eq!(rollbacks.len(), 1);
                let rollback = &rollbacks[0];
                assert_eq!(rollback.minute, sent[i].minute + CORRECTION_MINUTES);
                let markets = rollback.msg["markets"].as_array().unwrap();
                assert_eq!(markets.len(), 1);
                let corrected = &sent.last().unwrap().msg;
                assert_eq!(corrected["type"], "result");
                assert_eq!(corrected["markets"][0]["market"], markets[0]);
                assert_eq!(sent[sent.len() - 2].msg, rollback.msg);
                let wrong = first["markets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["market"] == markets[0])
                    .unwrap();
                assert_ne!(wrong["results"], corrected["markets"][0]["results"]);
            }
        }
        assert!(corrections > 0, "some match was corrected");
        assert!(corrections < 20, "corrections are rare: {corrections}");
    }

    #[test]
    fn teams_play_one_match_at_a_time_and_live_never_comes_before_start_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // More matches than there are pairs of teams: capped at half the teams.
        let mut sim = Sim::new("t".into(), MINUTE_MS, 9, 9, t0(), &mut rng);
        let slots = FOOTBALL.len() / 2 + BASKETBALL.len() / 2;
        assert_eq!(sim.matches.len(), slots);
        let sent = play(&mut sim, 2000, &mut rng);
        // Per event: its teams, start time, and whether it is running (announced, not
        // finished) or open (its last result not yet sent).
        let mut teams: HashMap<String, [String; 2]> = HashMap::new();
        let mut starts: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut running: HashSet<String> = HashSet::new();
        let mut open: HashSet<String> = HashSet::new();
        let mut lives = 0;
        for s in &sent {
            let event = s.msg["event_ref"].as_str().unwrap().to_string();
            match (s.msg["type"].as_str().unwrap(), s.msg["status"].as_str()) {
                ("fixture", _) => {
                    let pair = [
                        s.msg["home"].as_str().unwrap().to_string(),
                        s.msg["away"].as_str().unwrap().to_string(),
                    ];
                    assert_ne!(pair[0], pair[1]);
                    for other in &running {
                        for team in &teams[other] {
                            assert!(!pair.contains(team), "{team} is already in {other}");
                        }
                    }
                    let start: DateTime<Utc> =
                        s.msg["start_time"].as_str().unwrap().parse().unwrap();
                    assert!(start > s.now, "a fixture starts in the future");
                    teams.insert(event.clone(), pair);
                    starts.insert(event.clone(), start);
                    running.insert(event.clone());
                    open.insert(event.clone());
                    assert!(open.len() <= slots, "a match is replaced only once settled");
                }
                ("status", Some("live")) => {
                    assert!(s.now >= starts[&event], "live before start_time");
                    lives += 1;
                }
                ("status", Some("finished")) => {
                    assert!(running.remove(&event));
                }
                _ => {}
            }
            // An event is open until its last result (the one not followed by a rollback).
            if s.msg["type"] == "result" && of_type_after(&sent, s, &event).is_none() {
                open.remove(&event);
            }
        }
        assert!(
            teams.len() > 3 * slots,
            "matches were replaced: {}",
            teams.len()
        );
        assert!(lives > 2 * slots);
    }

    /// The next settling message of `event` after `s`.
    fn of_type_after<'a>(sent: &'a [Sent], s: &Sent, event: &str) -> Option<&'a Sent> {
        sent.iter()
            .skip_while(|x| !std::ptr::eq(*x, s))
            .skip(1)
            .find(|x| x.msg["event_ref"] == event && settles(&x.msg))
    }

    #[test]
    fn results_travel_in_pushes_of_their_own() {
        let msg = |kind: &str| json!({"type": kind});
        let pending = [
            msg("score"),
            msg("status"),
            msg("result"),
            msg("result_rollback"),
            msg("result"),
            msg("odds"),
        ];
        let mut lens = Vec::new();
        let mut rest = &pending[..];
        while !rest.is_empty() {
            let n = next_push_len(rest);
            lens.push(n);
            rest = &rest[n..];
        }
        assert_eq!(lens, [2, 3, 1]);
        let many = vec![msg("odds"); 250];
        assert_eq!(next_push_len(&many), PUSH_MESSAGES_MAX);
    }

    #[test]
    fn a_new_match_takes_teams_not_playing_elsewhere() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut sim = Sim::new("t".into(), MINUTE_MS, 4, 0, t0(), &mut rng);
        for _ in 0..200 {
            let busy: Vec<&str> = sim.matches[1..]
                .iter()
                .flat_map(|m| [m.home.as_str(), m.away.as_str()])
                .collect();
            let busy: Vec<String> = busy.into_iter().map(String::from).collect();
            let m = sim.announce(Sport::Football, Some(0), t0(), PRE_MATCH_MINUTES, &mut rng);
            assert!(!busy.contains(&m.home) && !busy.contains(&m.away));
        }
    }
}
