//! Prometheus metrics of the engine, registered once and rendered by `GET /metrics`.
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The engine's metric families. Each component adds its own families here so every
/// figure has one owner and one name.
pub struct Metrics {
    pub registry: Registry,
    /// HTTP answers by route pattern, method and status.
    pub http_requests_total: IntCounterVec,
    /// HTTP latency by route pattern.
    pub http_request_seconds: HistogramVec,
    /// Bets per ledger batch (group commit effectiveness).
    pub ledger_batch_bets: Histogram,
    /// Time to write and commit one ledger batch.
    pub ledger_commit_seconds: Histogram,
    /// Ledger batches whose COMMIT lost its connection (a primary dying, a failover), by
    /// what the writer found afterwards: `committed`, `not_committed`, `unknown`.
    pub ledger_in_doubt_batches_total: IntCounterVec,
    /// Bets that waited in a writer's queue past `ledger.commit_timeout_ms` (their caller
    /// had already been answered 503) and were dropped without being written.
    pub ledger_expired_bets_total: prometheus::IntCounter,
    /// Feed messages by provider and outcome (applied, gap, duplicate, rejected, and the
    /// refusals unknown_provider, missing_signature, bad_signature, stale).
    pub feed_messages_total: IntCounterVec,
    /// Messages a provider skipped (the sizes of the gaps it left).
    pub feed_gap_messages_total: IntCounterVec,
    /// Open WebSocket sessions.
    pub ws_connections: prometheus::IntGauge,
    /// Cash-outs by trigger (`manual`, `auto`) and outcome (`paid`, or the refusal's code).
    pub cash_outs_total: IntCounterVec,
    /// Cash-outs waiting for an in-play bet delay now.
    pub cash_outs_held: prometheus::IntGauge,
    /// WebSocket messages written to sessions (snapshots, deltas, answers).
    pub ws_messages_sent_total: prometheus::IntCounter,
    /// WebSocket sessions closed by the server, by reason (slow_consumer, heartbeat, ...).
    pub ws_sessions_closed_total: IntCounterVec,
    /// Topic messages relayed through the Redis bridge, by direction (out, in, dropped).
    pub bridge_messages_total: IntCounterVec,
    /// Other nodes listening on the Redis bridge, as last seen (while 0, this node sends
    /// them nothing).
    pub bridge_peers: IntGauge,
    /// 1 while this node sends its topic messages to Redis (another node listens), else 0.
    pub bridge_sending: IntGauge,
    /// Database health gauges and maintenance runs (refreshed by the maintenance task).
    pub db: DbGauges,
    /// Deposits and withdrawals by movement and outcome (completed, declined, refused, busy).
    pub wallet_movements_total: IntCounterVec,
    /// Security events (`system_events`) dropped because too many inserts were in flight.
    pub security_events_dropped_total: prometheus::IntCounter,
    /// Bonus notices (`b:<user>`, from any node) handed to this node's wallet shards.
    pub wallet_bonus_notices_total: prometheus::IntCounter,
    /// Bets by channel (`rest`, `websocket`) and outcome: `accepted`, or the refusal's
    /// contract code (`odds_changed`, `insufficient_funds`, ...).
    pub bets_total: IntCounterVec,
    /// Time from a bet request to its answer, by channel and result (`accepted`, `refused`).
    pub bet_seconds: HistogramVec,
    /// Login attempts by outcome: `throttled` (refused before any password check),
    /// `failed` and `succeeded` (a password was checked).
    pub login_attempts_total: IntCounterVec,
    /// Live actors' mailboxes, the live-state writer's queue and the topic hub, read from
    /// their atomics at each scrape ([`Metrics::refresh_live`]).
    pub live: LiveGauges,
}

/// One actor kind's figures (`event`, `market`, `live_writer`) for [`Metrics::refresh_live`].
pub struct KindFigures {
    pub kind: &'static str,
    /// Running actors of the kind.
    pub actors: usize,
    /// Messages waiting over every actor of the kind.
    pub queued: usize,
    /// The fullest single mailbox.
    pub fullest: usize,
    /// Each actor's bound.
    pub capacity: usize,
    /// Refusals by reason (`mailbox_full`, `timeout`, `queue_full`), totals since start.
    pub busy: Vec<(&'static str, u64)>,
}

/// What a scrape reads from the live actors, the live-state writer and the topic hub.
pub struct LiveFigures {
    pub kinds: Vec<KindFigures>,
    /// Hub deliveries by outcome (`delivered`, `subscriber_dropped`, `fanout_lost`),
    /// totals since start.
    pub broadcast: [(&'static str, u64); 3],
}

/// Mailbox depth and refusals per actor kind (`event`, `market`, `live_writer`) and the
/// hub's delivery counters. Depth of an actor kind: asks sent and not yet answered, over
/// every actor of the kind; each actor's own bound is `..._capacity_messages`.
pub struct LiveGauges {
    pub actors: IntGaugeVec,
    pub mailbox_messages: IntGaugeVec,
    pub mailbox_capacity_messages: IntGaugeVec,
    pub mailbox_fullest_messages: IntGaugeVec,
    pub busy_total: IntCounterVec,
    pub broadcast_total: IntCounterVec,
}

impl LiveGauges {
    fn new(registry: &Registry) -> anyhow::Result<Self> {
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["kind"]);
        let live = LiveGauges {
            actors: gauge("actors", "Running actors by kind")?,
            mailbox_messages: gauge(
                "actor_mailbox_messages",
                "Messages queued or being handled, over every actor of the kind",
            )?,
            mailbox_capacity_messages: gauge(
                "actor_mailbox_capacity_messages",
                "The mailbox bound of one actor of the kind",
            )?,
            mailbox_fullest_messages: gauge(
                "actor_mailbox_fullest_messages",
                "Messages queued in the fullest mailbox of the kind (fill = this / capacity)",
            )?,
            busy_total: IntCounterVec::new(
                Opts::new(
                    "actor_busy_total",
                    "Requests refused busy (503), by actor kind and reason (mailbox_full, timeout)",
                ),
                &["kind", "reason"],
            )?,
            broadcast_total: IntCounterVec::new(
                Opts::new(
                    "broadcast_messages_total",
                    "Topic messages: delivered to subscriber queues, subscribers dropped (full queue), lost by a full fan-out queue",
                ),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(live.actors.clone()))?;
        registry.register(Box::new(live.mailbox_messages.clone()))?;
        registry.register(Box::new(live.mailbox_capacity_messages.clone()))?;
        registry.register(Box::new(live.mailbox_fullest_messages.clone()))?;
        registry.register(Box::new(live.busy_total.clone()))?;
        registry.register(Box::new(live.broadcast_total.clone()))?;
        Ok(live)
    }
}

/// Raises a counter to `to` (the source is a monotonic atomic read at scrape time).
fn counter_to(c: &prometheus::IntCounter, to: u64) {
    let now = c.get();
    if to > now {
        c.inc_by(to - now);
    }
}

/// Registers `metric` and hands it back.
fn registered<M>(registry: &Registry, metric: M) -> anyhow::Result<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A registered counter family with `labels`.
fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> anyhow::Result<IntCounterVec> {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

/// The HTTP answers and their latency by route.
fn http_families(registry: &Registry) -> anyhow::Result<(IntCounterVec, HistogramVec)> {
    let requests = counter_vec(
        registry,
        "http_requests_total",
        "HTTP answers by route, method and status",
        &["route", "method", "status"],
    )?;
    let seconds = HistogramVec::new(
        HistogramOpts::new("http_request_seconds", "HTTP latency by route").buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
        &["route"],
    )?;
    Ok((requests, registered(registry, seconds)?))
}

/// The ledger writer's families.
struct LedgerFamilies {
    batch_bets: Histogram,
    commit_seconds: Histogram,
    in_doubt_batches_total: IntCounterVec,
    expired_bets_total: prometheus::IntCounter,
}

fn ledger_families(registry: &Registry) -> anyhow::Result<LedgerFamilies> {
    let batch_bets = Histogram::with_opts(
        HistogramOpts::new("ledger_batch_size", "Bets per ledger batch").buckets(vec![
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ]),
    )?;
    let commit_seconds = Histogram::with_opts(
        HistogramOpts::new("ledger_commit_seconds", "Ledger batch commit latency").buckets(vec![
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
        ]),
    )?;
    let expired_bets_total = prometheus::IntCounter::new(
        "ledger_expired_bets_total",
        "Bets dropped unwritten after waiting past the commit timeout",
    )?;
    Ok(LedgerFamilies {
        batch_bets: registered(registry, batch_bets)?,
        commit_seconds: registered(registry, commit_seconds)?,
        in_doubt_batches_total: counter_vec(
            registry,
            "ledger_in_doubt_batches_total",
            "Ledger batches whose COMMIT lost its connection, by what was found after",
            &["outcome"],
        )?,
        expired_bets_total: registered(registry, expired_bets_total)?,
    })
}

/// Feed messages by outcome and the gaps providers left.
fn feed_families(registry: &Registry) -> anyhow::Result<(IntCounterVec, IntCounterVec)> {
    let messages = counter_vec(
        registry,
        "feed_messages_total",
        "Feed messages by provider and outcome",
        &["provider", "outcome"],
    )?;
    let gaps = counter_vec(
        registry,
        "feed_gap_messages_total",
        "Feed messages skipped by providers (gaps)",
        &["provider"],
    )?;
    Ok((messages, gaps))
}

/// The WebSocket sessions' families.
struct WsFamilies {
    connections: IntGauge,
    messages_sent_total: prometheus::IntCounter,
    sessions_closed_total: IntCounterVec,
}

fn ws_families(registry: &Registry) -> anyhow::Result<WsFamilies> {
    let connections = IntGauge::new("ws_connections", "Open WebSocket sessions")?;
    let messages_sent_total =
        prometheus::IntCounter::new("ws_messages_sent_total", "WebSocket messages sent")?;
    Ok(WsFamilies {
        connections: registered(registry, connections)?,
        messages_sent_total: registered(registry, messages_sent_total)?,
        sessions_closed_total: counter_vec(
            registry,
            "ws_sessions_closed_total",
            "WebSocket sessions closed by the server, by reason",
            &["reason"],
        )?,
    })
}

/// Cash-outs by trigger and outcome, and those held by an in-play delay.
fn cash_out_families(registry: &Registry) -> anyhow::Result<(IntCounterVec, IntGauge)> {
    let total = counter_vec(
        registry,
        "cash_outs_total",
        "Cash-outs by trigger and outcome",
        &["trigger", "outcome"],
    )?;
    let held = IntGauge::new(
        "cash_outs_held",
        "Cash-outs waiting for an in-play bet delay",
    )?;
    Ok((total, registered(registry, held)?))
}

/// The accounts' families: wallet movements, dropped security events, bonus notices,
/// login attempts.
struct AccountFamilies {
    wallet_movements_total: IntCounterVec,
    security_events_dropped_total: prometheus::IntCounter,
    wallet_bonus_notices_total: prometheus::IntCounter,
    login_attempts_total: IntCounterVec,
}

fn account_families(registry: &Registry) -> anyhow::Result<AccountFamilies> {
    let dropped = prometheus::IntCounter::new(
        "security_events_dropped_total",
        "Security events dropped because too many inserts were in flight",
    )?;
    let bonus_notices = prometheus::IntCounter::new(
        "wallet_bonus_notices_total",
        "Bonus-state notices (a grant, expiry or conversion on any node) applied to this node's wallet shards",
    )?;
    Ok(AccountFamilies {
        wallet_bonus_notices_total: registered(registry, bonus_notices)?,
        wallet_movements_total: counter_vec(
            registry,
            "wallet_movements_total",
            "Deposits and withdrawals by movement and outcome",
            &["movement", "outcome"],
        )?,
        security_events_dropped_total: registered(registry, dropped)?,
        login_attempts_total: counter_vec(
            registry,
            "login_attempts_total",
            "Login attempts by outcome (throttled before the password check, failed, succeeded)",
            &["outcome"],
        )?,
    })
}

/// Bets by channel and outcome, and the time to answer them.
fn bet_families(registry: &Registry) -> anyhow::Result<(IntCounterVec, HistogramVec)> {
    let total = counter_vec(
        registry,
        "bets_total",
        "Bets by channel and outcome (accepted, or the refusal's code)",
        &["channel", "outcome"],
    )?;
    let seconds = HistogramVec::new(
        HistogramOpts::new("bet_seconds", "Time from a bet request to its answer").buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["channel", "result"],
    )?;
    Ok((total, registered(registry, seconds)?))
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("winzo".into()), None)?;
        let (http_requests_total, http_request_seconds) = http_families(&registry)?;
        let ledger = ledger_families(&registry)?;
        let (feed_messages_total, feed_gap_messages_total) = feed_families(&registry)?;
        let ws = ws_families(&registry)?;
        let (cash_outs_total, cash_outs_held) = cash_out_families(&registry)?;
        let accounts = account_families(&registry)?;
        let (bets_total, bet_seconds) = bet_families(&registry)?;
        let bridge_messages_total = counter_vec(
            &registry,
            "bridge_messages_total",
            "Topic messages through the Redis bridge",
            &["direction"],
        )?;
        let bridge_peers = registered(
            &registry,
            IntGauge::new(
                "bridge_peers",
                "Other nodes listening on the Redis bridge, as last seen",
            )?,
        )?;
        let bridge_sending = registered(
            &registry,
            IntGauge::new(
                "bridge_sending",
                "1 while this node sends its topic messages to the Redis bridge",
            )?,
        )?;
        let live = LiveGauges::new(&registry)?;
        let db = DbGauges::new(&registry)?;
        Ok(Metrics {
            registry,
            http_requests_total,
            http_request_seconds,
            ledger_batch_bets: ledger.batch_bets,
            ledger_commit_seconds: ledger.commit_seconds,
            ledger_in_doubt_batches_total: ledger.in_doubt_batches_total,
            ledger_expired_bets_total: ledger.expired_bets_total,
            feed_messages_total,
            feed_gap_messages_total,
            ws_connections: ws.connections,
            cash_outs_total,
            cash_outs_held,
            ws_messages_sent_total: ws.messages_sent_total,
            ws_sessions_closed_total: ws.sessions_closed_total,
            bridge_messages_total,
            bridge_peers,
            bridge_sending,
            db,
            wallet_movements_total: accounts.wallet_movements_total,
            security_events_dropped_total: accounts.security_events_dropped_total,
            wallet_bonus_notices_total: accounts.wallet_bonus_notices_total,
            login_attempts_total: accounts.login_attempts_total,
            bets_total,
            bet_seconds,
            live,
        })
    }

    /// Sets the live families from figures read at scrape time (nothing is kept per
    /// message beyond a relaxed atomic add where the figures come from).
    pub fn refresh_live(&self, f: &LiveFigures) {
        let l = &self.live;
        for k in &f.kinds {
            let kind = [k.kind];
            l.actors.with_label_values(&kind).set(k.actors as i64);
            l.mailbox_messages
                .with_label_values(&kind)
                .set(k.queued as i64);
            l.mailbox_fullest_messages
                .with_label_values(&kind)
                .set(k.fullest as i64);
            l.mailbox_capacity_messages
                .with_label_values(&kind)
                .set(k.capacity as i64);
            for &(reason, total) in &k.busy {
                counter_to(&l.busy_total.with_label_values(&[k.kind, reason]), total);
            }
        }
        for (outcome, total) in f.broadcast {
            counter_to(&l.broadcast_total.with_label_values(&[outcome]), total);
        }
    }

    /// Renders every family in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %err, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The figures behind the `winzo_db_*` gauges (read by `db::health`).
#[derive(Debug, Clone)]
pub struct GaugeFigures {
    /// None when `pg_stat_statements` cannot be read.
    pub slow_statements: Option<i64>,
    pub unused_indexes: i64,
    /// (table, dead tuples), most first, at most `dead_tuple_tables_max`.
    pub dead_tuples: Vec<(String, i64)>,
    pub archive_failed: i64,
    pub archive_archived: i64,
}

/// Figures from the database's statistics views, refreshed on a timer
/// (`monitoring.db_health_refresh_interval_s`), never per scrape.
pub struct DbGauges {
    /// Statements of this database whose mean time exceeds `slow_statement_mean_ms`
    /// (-1 when pg_stat_statements cannot be read).
    pub slow_statements: IntGauge,
    /// Non-unique indexes never scanned since the statistics were reset.
    pub unused_indexes: IntGauge,
    /// Dead tuples per table (at most `dead_tuple_tables_max` tables).
    pub dead_tuples: IntGaugeVec,
    /// `pg_stat_archiver.failed_count`: failed archive_command runs (PITR at risk).
    pub archive_failed_total: IntGauge,
    /// `pg_stat_archiver.archived_count`.
    pub archive_archived_total: IntGauge,
    /// Unix time of the last successful refresh of these gauges.
    pub health_refreshed_seconds: IntGauge,
    /// 1 when the last refresh reached Postgres and live state is recovered (what /readyz
    /// answers), else 0: lets Prometheus alert on readiness without a blackbox probe.
    pub ready: IntGauge,
    /// Daily maintenance runs by outcome: ran, skipped (lock held elsewhere), failed.
    pub maintenance_runs_total: IntCounterVec,
}

impl DbGauges {
    fn new(registry: &Registry) -> anyhow::Result<Self> {
        let g = |name: &str, help: &str| IntGauge::new(name, help);
        let gauges = DbGauges {
            slow_statements: g(
                "db_slow_statements",
                "Statements above the slow mean-time threshold (-1: pg_stat_statements unavailable)",
            )?,
            unused_indexes: g("db_unused_indexes", "Non-unique indexes never scanned")?,
            dead_tuples: IntGaugeVec::new(
                Opts::new("db_dead_tuples", "Dead tuples per table"),
                &["table"],
            )?,
            archive_failed_total: g(
                "db_archive_failed_total",
                "Failed WAL archive attempts (pg_stat_archiver.failed_count)",
            )?,
            archive_archived_total: g(
                "db_archive_archived_total",
                "WAL segments archived (pg_stat_archiver.archived_count)",
            )?,
            health_refreshed_seconds: g(
                "db_health_refreshed_seconds",
                "Unix time of the last successful refresh of the db gauges",
            )?,
            ready: g(
                "ready",
                "1 when Postgres answered the last db gauge refresh and live state is recovered",
            )?,
            maintenance_runs_total: IntCounterVec::new(
                Opts::new("maintenance_runs_total", "Daily maintenance runs by outcome"),
                &["outcome"],
            )?,
        };
        registry.register(Box::new(gauges.slow_statements.clone()))?;
        registry.register(Box::new(gauges.unused_indexes.clone()))?;
        registry.register(Box::new(gauges.dead_tuples.clone()))?;
        registry.register(Box::new(gauges.archive_failed_total.clone()))?;
        registry.register(Box::new(gauges.archive_archived_total.clone()))?;
        registry.register(Box::new(gauges.health_refreshed_seconds.clone()))?;
        registry.register(Box::new(gauges.ready.clone()))?;
        registry.register(Box::new(gauges.maintenance_runs_total.clone()))?;
        Ok(gauges)
    }

    /// Replaces every figure (the table set is reset, so dropped tables disappear).
    pub fn set(&self, f: &GaugeFigures) {
        self.slow_statements.set(f.slow_statements.unwrap_or(-1));
        self.unused_indexes.set(f.unused_indexes);
        self.dead_tuples.reset();
        for (table, dead) in &f.dead_tuples {
            self.dead_tuples
                .with_label_values(&[table.as_str()])
                .set(*dead);
        }
        self.archive_failed_total.set(f.archive_failed);
        self.archive_archived_total.set(f.archive_archived);
        self.health_refreshed_seconds
            .set(chrono::Utc::now().timestamp());
    }
}

/// Middleware: counts every answer and times it, by matched route pattern (never the raw
/// path, so ids do not explode the label set).
pub async fn record_http(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req.app_data::<actix_web::web::Data<Metrics>>().cloned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let status = res.status().as_u16().to_string();
        m.http_requests_total
            .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
            .inc();
        m.http_request_seconds
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MetricsSettings {
    /// A bearer token that opens `/metrics` from anywhere (empty: none).
    pub token: String,
    /// Whether a request from a loopback peer that no proxy forwarded (no
    /// `X-Forwarded-For`) may read it without the token: a scraper on the same host.
    pub allow_loopback: bool,
}
