//! Building and running the engine: services, state recovery, the HTTP server, shutdown.
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use deadpool_postgres::Pool;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::ledger::LedgerWriter;
use crate::metrics::Metrics;
use crate::routes;
use crate::state::AppState;

/// A built engine whose listener is bound; `run` serves until SIGINT/SIGTERM or `stop`.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Connects to Postgres (waiting with retries), migrates if configured, recovers live
    /// state, and binds the listener. Must run inside an actix system (actors live there).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(checked_settings(settings)?);
        let db = open_database(&settings).await?;
        let owners = start_owners(&settings, db)?;
        let state = build_state(owners)?;
        recover(&state).await?;
        spawn_node_tasks(&state)?;
        resume_settlements(&state).await?;
        state.mark_recovered();
        crate::maintenance::spawn(crate::maintenance::MaintenanceHandles {
            db: state.db.clone(),
            maintenance: state.settings.maintenance.clone(),
            monitoring: state.settings.monitoring.clone(),
            metrics: state.metrics.clone(),
            recovered: state.recovered.clone(),
            bonus: state.bonus.clone(),
        })?;
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener.local_addr()?.port();
        let server = build_server(listener, state.clone())?;
        tracing::info!(%address, port, "winzo engine listening");
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that stops the server gracefully (used by tests and the signal path).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped. actix-web handles SIGINT/SIGTERM: it stops accepting,
    /// lets in-flight requests finish within `shutdown_timeout_s`, and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("HTTP server")?;
        tracing::info!("HTTP server stopped; flushing");
        let cluster = self.state.registry.cluster().clone();
        let deadline = Duration::from_secs(self.state.settings.server.shutdown_timeout_s);
        if drain(&self.state, deadline).await {
            tracing::info!("ledger and live-state writers drained");
        } else {
            tracing::error!(
                deadline_s = deadline.as_secs(),
                "writers not drained before the deadline; unwritten changes are lost"
            );
        }
        // The other nodes take this node's events at once rather than after the lease time.
        cluster.release_all().await;
        Ok(())
    }
}

/// The settings once they are safe to run: the production profile's secrets, a coherent
/// cluster section, and the address this node advertises to the others.
fn checked_settings(mut settings: Settings) -> anyhow::Result<Settings> {
    if settings.profile == "production" {
        let problems = production_problems(&settings);
        if !problems.is_empty() {
            anyhow::bail!(
                "refusing to start the production profile: {}",
                problems.join("; ")
            );
        }
    }
    if let Some(problem) = settings.cluster.problem() {
        anyhow::bail!("refusing to start: {problem}");
    }
    settings.cluster.advertise_addr = settings
        .cluster
        .advertised(&settings.server.host, settings.server.port);
    tracing::info!(
        node_id = %settings.cluster.node_id,
        advertise = %settings.cluster.advertise_addr,
        "engine node starting"
    );
    Ok(settings)
}

/// The shared pool, once Postgres answers and (if configured) the schema is migrated.
async fn open_database(settings: &Settings) -> anyhow::Result<Pool> {
    let db = crate::db::build_pool(&settings.database)?;
    crate::db::wait_until_reachable(&db, &settings.database).await?;
    if settings.database.migrate_on_start {
        crate::db::migrate(&settings.database.url).await?;
    }
    Ok(db)
}

/// The pools, the session cache and the owners of live state (cluster leases, ledger and
/// live-state writers, hub, registry, wallet shards) the services are built on.
struct Owners {
    settings: Arc<Settings>,
    db: Pool,
    redis: ConnectionManager,
    passwords: crate::auth::password::pool::PasswordPool,
    metrics: Arc<Metrics>,
    sessions: Arc<crate::auth::cache::SessionCache>,
    ledger: LedgerWriter,
    hub: Arc<crate::broadcast::Hub>,
    feed: crate::state::FeedRuntime,
    registry: Arc<crate::actors::Registry>,
    /// The market actors' price moves, for the automatic cash-out watch.
    price_moves: mpsc::Receiver<crate::actors::PriceMove>,
    wallet: crate::wallet::Wallet,
    /// With `bets.book_thread`: the thread the bet path runs on, with the actors and shards
    /// it passes through.
    book: Option<crate::book::Book>,
}

fn start_owners(settings: &Arc<Settings>, db: Pool) -> anyhow::Result<Owners> {
    let redis = crate::redis_client::connect(&settings.redis)?;
    let passwords = crate::auth::password::pool::PasswordPool::new(
        settings.auth.password_threads,
        settings.auth.password_queue_jobs_max,
    );
    let metrics = Arc::new(Metrics::new()?);
    let sessions = crate::auth::cache::SessionCache::new(
        Duration::from_millis(settings.auth.session_cache_ttl_ms),
        settings.auth.session_cache_entries_max,
        settings.auth.control_notices_queue_max,
    );
    crate::auth::cache::spawn_subscriber(
        sessions.clone(),
        &settings.redis.url,
        Duration::from_millis(settings.bridge.reconnect_interval_ms.max(10)),
    );
    // The ledger writers get connections of their own: under a surge, requests waiting
    // for the shared pool must never starve the commits they are all waiting for.
    let mut ledger_db = settings.database.clone();
    ledger_db.pool_max_size = settings.ledger.writers_count.max(1) + 1;
    // Several nodes: event leases (their own connections: renewals never wait behind
    // requests) and the fence of both writers.
    let cluster =
        crate::cluster::Cluster::new(settings.cluster.clone(), Some(own_pool(settings, 2)?));
    // With bets.book_thread: the bet path and the actors and shards it passes through on one
    // thread (crate::book). The ledger writers stay on this one either way: on the book
    // thread their commits waited behind its other work (BENCHMARKS.md).
    let book = settings.bets.book_thread.then(crate::book::Book::start);
    let ledger = LedgerWriter::start_fenced(
        crate::db::build_pool(&ledger_db)?,
        &settings.ledger,
        metrics.clone(),
        cluster.clone(),
    );
    let hub = start_hub(settings)?;
    // The feed has a pool of its own: a connection's I/O runs on the thread that opened
    // it, so it is never driven by a busy HTTP worker.
    let feed = crate::state::FeedRuntime {
        arbiter: actix::Arbiter::new().handle(),
        db: own_pool(settings, settings.feed.db_connections_max)?,
    };
    let (registry, price_moves) = start_registry(settings, &db, &hub, cluster, book.as_ref())?;
    let wallet = crate::wallet::Wallet::start(
        &book
            .as_ref()
            .map_or_else(actix::Arbiter::current, |b| b.arbiter().clone()),
        &settings.wallet,
        db.clone(),
        crate::wallet::processor::build(&settings.payments),
        sessions.live_flag(),
        hub.clone(),
    );
    crate::accounts::controls::spawn_wallet_listener(
        &sessions,
        wallet.clone(),
        metrics.wallet_bonus_notices_total.clone(),
    );
    Ok(Owners {
        settings: settings.clone(),
        db,
        redis,
        passwords,
        metrics,
        sessions,
        ledger,
        hub,
        feed,
        registry,
        price_moves,
        wallet,
        book,
    })
}

/// The topic hub with its fan-out thread and the pruning of idle topics.
fn start_hub(settings: &Settings) -> anyhow::Result<Arc<crate::broadcast::Hub>> {
    let hub = Arc::new(crate::broadcast::Hub::new(
        settings.broadcast.subscriber_queue_messages_max,
    ));
    hub.start_fanout(
        settings.broadcast.fanout_queue_messages_max,
        settings.broadcast.fanout_batch_messages_max,
    )
    .context("starting the fan-out thread")?;
    crate::broadcast::spawn_pruning(
        hub.clone(),
        Duration::from_millis(settings.broadcast.prune_interval_ms),
    );
    Ok(hub)
}

/// The registry of event and market actors, with their live-state writer (a pool of its
/// own, like the feed's) and the channel of their price moves.
fn start_registry(
    settings: &Settings,
    db: &Pool,
    hub: &Arc<crate::broadcast::Hub>,
    cluster: Arc<crate::cluster::Cluster>,
    book: Option<&crate::book::Book>,
) -> anyhow::Result<(
    Arc<crate::actors::Registry>,
    mpsc::Receiver<crate::actors::PriceMove>,
)> {
    let writer = crate::actors::writer::spawn_fenced(
        own_pool(settings, settings.live_writer.db_connections_max)?,
        settings.live_writer.clone(),
        cluster.clone(),
    );
    let (price_moves, price_moves_rx) = mpsc::channel(settings.cash_out.watch_queue_max.max(1));
    let currencies = settings
        .currencies
        .build(&settings.accounts.currencies)
        .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
    let shared = Arc::new(crate::actors::Shared {
        markets: settings.markets.clone(),
        hub: hub.clone(),
        writer,
        price_moves: crate::actors::PriceMoves(Some(price_moves)),
        currencies: Arc::new(currencies),
    });
    let registry = match book {
        Some(book) => crate::actors::Registry::on(shared, db.clone(), vec![book.arbiter().clone()]),
        None => crate::actors::Registry::new(shared, db.clone()),
    };
    let registry = Arc::new(registry.with_cluster(cluster));
    Ok((registry, price_moves_rx))
}

/// The services (one per use case) on the owners, gathered in the state every adapter
/// gets. Starts the automatic cash-out watch on the market actors' price moves.
fn build_state(owners: Owners) -> anyhow::Result<AppState> {
    let Owners {
        settings,
        db,
        wallet,
        registry,
        hub,
        ..
    } = &owners;
    let accounts = account_services(&owners);
    let settlement = start_settlement(&owners, &accounts.controls)?;
    let referrals = crate::app::referrals::ReferralService::new(
        registry.clone(),
        wallet.clone(),
        hub.clone(),
        db.clone(),
        settings.referral.clone(),
        settings.markets.odds_max,
    );
    let bets = bet_service(&owners, &referrals);
    let cash_out = crate::app::cashout::CashOutService::new(
        registry.clone(),
        wallet.clone(),
        hub.clone(),
        db.clone(),
        settings.cash_out.clone(),
        owners.metrics.clone(),
    );
    let events = crate::app::events::EventService {
        registry: registry.clone(),
        settlement: settlement.clone(),
    };
    let markets = crate::app::markets::MarketService {
        registry: registry.clone(),
        db: db.clone(),
    };
    tokio::spawn(crate::app::cashout::watch::run(
        cash_out.clone(),
        owners.price_moves,
    ));
    Ok(AppState {
        settings: owners.settings,
        kyc: accounts.kyc,
        bonus: accounts.bonus,
        settlement,
        wallet: owners.wallet,
        controls: accounts.controls,
        security: accounts.security,
        passwords: owners.passwords,
        db: owners.db,
        redis: owners.redis,
        sessions: owners.sessions,
        metrics: owners.metrics,
        ledger: owners.ledger,
        bets,
        cash_out,
        referrals,
        events,
        markets,
        recovered: Arc::new(AtomicBool::new(false)),
        registry: owners.registry,
        hub: owners.hub,
        feed_liveness: Arc::new(crate::feed::watchdog::Liveness::default()),
        feed_sequencer: Arc::new(crate::feed::sequencer::Sequencer::default()),
        ws: Arc::new(crate::state::ws_slots::WsShared::default()),
        feed: owners.feed,
    })
}

/// The services of accounts: control changes, the security log, verification, bonuses.
struct AccountServices {
    controls: crate::accounts::controls::AccountControls,
    security: crate::accounts::security_log::SecurityLog,
    kyc: crate::app::kyc::KycService,
    bonus: crate::app::bonus::BonusService,
}

fn account_services(owners: &Owners) -> AccountServices {
    let (settings, db) = (&owners.settings, &owners.db);
    let controls = crate::accounts::controls::AccountControls::new(
        owners.redis.clone(),
        owners.sessions.clone(),
        owners.wallet.clone(),
    );
    let security = crate::accounts::security_log::SecurityLog::new(
        db.clone(),
        settings.auth.security_events_inflight_max,
        owners.metrics.security_events_dropped_total.clone(),
    );
    let kyc = crate::app::kyc::KycService {
        db: db.clone(),
        notifier: crate::kyc::notifier::OutboxNotifier::shared(db.clone()),
        controls: controls.clone(),
        settings: settings.kyc.clone(),
    };
    let bonus = crate::app::bonus::BonusService {
        wallet: owners.wallet.clone(),
        db: db.clone(),
        settings: settings.bonus.clone(),
        controls: controls.clone(),
        currencies: owners.registry.currencies().clone(),
    };
    AccountServices {
        controls,
        security,
        kyc,
        bonus,
    }
}

/// Settlement, with connections of its own: a large settlement never starves requests.
fn start_settlement(
    owners: &Owners,
    controls: &crate::accounts::controls::AccountControls,
) -> anyhow::Result<Arc<crate::settlement::Settlement>> {
    let settings = &owners.settings;
    let mut settlement_db = settings.database.clone();
    settlement_db.pool_max_size = settings.settlement.pool_connections_max.max(2);
    Ok(Arc::new(crate::settlement::Settlement::new(
        crate::db::build_pool(&settlement_db)?,
        owners.wallet.clone(),
        owners.hub.clone(),
        owners.registry.clone(),
        settings.settlement.clone(),
        controls.clone(),
    )))
}

fn bet_service(
    owners: &Owners,
    referrals: &crate::app::referrals::ReferralService,
) -> crate::app::bets::BetService {
    let settings = &owners.settings;
    crate::app::bets::BetService {
        referrals: referrals.clone(),
        registry: owners.registry.clone(),
        wallet: owners.wallet.clone(),
        ledger: owners.ledger.clone(),
        hub: owners.hub.clone(),
        book: owners.book.clone(),
        inflight: crate::bets::inflight::Inflight::new(settings.bets.inflight_keys_max),
        db: owners.db.clone(),
        bets: settings.bets.clone(),
        odds_max: settings.markets.odds_max,
        metrics: owners.metrics.clone(),
        verification_required: settings.kyc.requires(crate::kyc::Gate::Bet),
    }
}

/// Live state rebuilt from Postgres before readiness: this node's share of the leases
/// (several nodes), its events and markets, the open referrals.
async fn recover(state: &AppState) -> anyhow::Result<()> {
    crate::db::wait_for_older_transactions(&state.db, Duration::from_secs(10)).await?;
    let cluster = state.registry.cluster();
    if cluster.enabled() {
        // Announce this node and take a first share of the free or lapsed leases.
        cluster
            .round()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("joining the cluster")?;
    }
    let (events, markets) = state
        .registry
        .recover()
        .await
        .context("recovering live state")?;
    tracing::info!(events, markets, "live state recovered");
    let referrals = state
        .referrals
        .recover()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("recovering referrals")?;
    tracing::info!(referrals, "open referrals recovered");
    Ok(())
}

/// The node's background tasks: the lease rounds (recovering the events it takes), the
/// settling of remote legs never confirmed, the Redis bridge of topics between nodes, the
/// silent-provider watchdog.
fn spawn_node_tasks(state: &AppState) -> anyhow::Result<()> {
    crate::app::remote_legs::spawn_reconcile(state.registry.clone());
    let taker = state.registry.clone();
    crate::cluster::spawn(state.registry.cluster().clone(), move |_taken| {
        let registry = taker.clone();
        async move {
            match registry.recover().await {
                Ok((events, markets)) => {
                    tracing::info!(events, markets, "live state of taken events recovered")
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "recovering taken events"),
            }
        }
    });
    crate::bridge::start(
        state.hub.clone(),
        &state.settings.redis.url,
        &state.settings.bridge,
        state.metrics.clone(),
    )?;
    crate::feed::watchdog::spawn(crate::feed::watchdog::Watchdog {
        liveness: state.feed_liveness.clone(),
        feed: Arc::new(state.settings.feed.clone()),
        registry: state.registry.clone(),
        db: state.db.clone(),
    });
    Ok(())
}

/// Voids of cancelled events that were never opened, and settlements a stop interrupted.
async fn resume_settlements(state: &AppState) -> anyhow::Result<()> {
    let cancelled = crate::settlement::cancel::resume(&state.settlement, &state.registry)
        .await
        .context("voiding the markets of cancelled events")?;
    if cancelled > 0 {
        tracing::info!(cancelled, "voids of cancelled events opened");
    }
    let resumed = state
        .settlement
        .resume_all()
        .await
        .context("resuming settlements")?;
    if resumed > 0 {
        tracing::info!(resumed, "unfinished settlements resumed");
    }
    Ok(())
}

/// Waits (at most `deadline`) until the ledger writer and the live-state writer have written
/// everything queued: changes whose callers gave up waiting are still in memory and are
/// written before the process exits. True when both are idle.
async fn drain(state: &AppState, deadline: Duration) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if state.ledger.is_idle() && state.registry.shared.writer.is_idle() {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fragments of committed development secrets: none of them may open a production engine.
const DEVELOPMENT_SECRET_MARKS: &[&str] =
    &["dev-only", "test-only", "bench-only", "example", "changeme"];

/// Shortest secret the production profile accepts.
const PRODUCTION_SECRET_CHARS_MIN: usize = 32;

/// Why `secret` cannot guard a production engine, if it cannot.
fn weak_secret(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    if secret.is_empty() {
        Some("has no secret")
    } else if DEVELOPMENT_SECRET_MARKS.iter().any(|m| lower.contains(m)) {
        Some("has a development secret")
    } else if secret.chars().count() < PRODUCTION_SECRET_CHARS_MIN {
        Some("has a secret shorter than 32 characters")
    } else {
        None
    }
}

/// What makes `settings` unsafe to run as production (empty: nothing). The production
/// profile refuses to start while this lists anything (docs/security.md).
pub fn production_problems(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    for p in &settings.feed.providers {
        if let Some(why) = weak_secret(&p.secret) {
            problems.push(format!("feed provider {:?} {why}", p.id));
        }
    }
    if settings.payments.processor == crate::wallet::processor::ProcessorKind::Sandbox
        && !settings.payments.sandbox_allowed
    {
        problems.push(
            "payments.processor is the sandbox (set payments.sandbox_allowed = true only \
             where no real money moves)"
                .to_string(),
        );
    }
    if settings.cluster.enabled {
        if let Some(why) = weak_secret(&settings.cluster.forward_secret) {
            problems.push(format!(
                "cluster.forward_secret {}",
                why.trim_start_matches("has a ")
            ));
        }
    }
    if !settings.metrics.token.is_empty() {
        if let Some(why) = weak_secret(&settings.metrics.token) {
            problems.push(format!(
                "metrics.token {}",
                why.trim_start_matches("has a ")
            ));
        }
    }
    problems
}

/// A pool of `size` connections to the configured database, apart from the shared one.
fn own_pool(settings: &Settings, size: usize) -> anyhow::Result<deadpool_postgres::Pool> {
    let mut config = settings.database.clone();
    config.pool_max_size = size.max(1);
    crate::db::build_pool(&config)
}

fn build_server(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let server_cfg = state.settings.server.clone();
    let json_limit = server_cfg.json_body_max_bytes;
    let payload_limit = server_cfg.payload_max_bytes;
    let tcp_user_timeout_ms = state.settings.ws.tcp_user_timeout_ms;
    let metrics = web::Data::from(state.metrics.clone());
    let proxies = web::Data::new(crate::auth::client::TrustedProxies(
        state.settings.auth.trusted_proxies.clone(),
    ));
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(routes::error_handlers())
            .wrap(actix_web::middleware::from_fn(
                routes::forward::forward_to_owner,
            ))
            .wrap(actix_web::middleware::from_fn(
                routes::extract::authenticate_first,
            ))
            .wrap(actix_web::middleware::from_fn(crate::metrics::record_http))
            .wrap(tracing_actix_web::TracingLogger::<
                crate::telemetry::RequestSpan,
            >::new())
            .app_data(data.clone())
            .app_data(metrics.clone())
            .app_data(proxies.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(routes::json_error),
            )
            .app_data(web::PayloadConfig::new(payload_limit))
            .app_data(web::QueryConfig::default().error_handler(routes::query_error))
            .app_data(web::PathConfig::default().error_handler(routes::path_error))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .on_connect(crate::routes::ws::on_connect(tcp_user_timeout_ms))
    .tcp_nodelay(server_cfg.tcp_nodelay)
    .workers(server_cfg.workers)
    .max_connections(server_cfg.max_connections)
    .keep_alive(Duration::from_secs(server_cfg.keep_alive_s))
    .shutdown_timeout(server_cfg.shutdown_timeout_s)
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> Settings {
        let mut s = crate::config::load_for("test").expect("settings");
        s.profile = "production".into();
        s
    }

    #[test]
    fn production_refuses_development_and_missing_secrets_and_the_sandbox() {
        let s = production();
        let problems = production_problems(&s).join("; ");
        assert!(
            problems.contains("feed provider \"demo\" has a development secret"),
            "{problems}"
        );
        assert!(
            problems.contains("payments.processor is the sandbox"),
            "{problems}"
        );
        let mut s = production();
        s.feed.providers[0].secret = String::new();
        assert!(production_problems(&s)[0].contains("has no secret"));
    }

    #[test]
    fn production_starts_with_strong_secrets_and_an_allowed_sandbox() {
        let mut s = production();
        s.feed.providers[0].secret = "k3Jd9sQ2mX7vB1nR8tY4wZ6cF0gH5jLp".into();
        s.payments.sandbox_allowed = true;
        s.metrics.token = "short".into();
        assert_eq!(
            production_problems(&s),
            vec!["metrics.token secret shorter than 32 characters"]
        );
        s.metrics.token = "Zq8Xw2Ev4Rt6Yu1Io3Pa5Sd7Fg9Hj0Kl".into();
        assert!(production_problems(&s).is_empty());
    }
}
