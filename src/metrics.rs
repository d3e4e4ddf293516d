//! Prometheus metrics of the engine, registered once and rendered by `GET /metrics`.
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The engine's metric families. Each component adds its own families here so every
/// figure has one owner and one name.
pub struct Metrics {
    pub registry: Registry,
    /// HTTP answers by route pattern, method and status.
    pub http_requests_total: IntCounterVec,
    /// HTTP latency by route pattern.
    pub http_request_seconds: HistogramVec,
    /// Deposits and withdrawals by movement and outcome (completed, declined, refused, busy).
    pub wallet_movements_total: IntCounterVec,
    /// Security events (`system_events`) dropped because too many inserts were in flight.
    pub security_events_dropped_total: prometheus::IntCounter,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("winzo".into()), None)?;
        let http_requests_total = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP answers by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_request_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_seconds", "HTTP latency by route").buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )?;
        let wallet_movements_total = IntCounterVec::new(
            Opts::new(
                "wallet_movements_total",
                "Deposits and withdrawals by movement and outcome",
            ),
            &["movement", "outcome"],
        )?;
        let security_events_dropped_total = prometheus::IntCounter::new(
            "security_events_dropped_total",
            "Security events dropped because too many inserts were in flight",
        )?;
        registry.register(Box::new(wallet_movements_total.clone()))?;
        registry.register(Box::new(security_events_dropped_total.clone()))?;
        registry.register(Box::new(http_requests_total.clone()))?;
        registry.register(Box::new(http_request_seconds.clone()))?;
        Ok(Metrics {
            registry,
            http_requests_total,
            http_request_seconds,
            wallet_movements_total,
            security_events_dropped_total,
        })
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

/// Middleware: counts every answer and times it, by matched route pattern (never the raw
/// path, so ids do not explode the label set).
pub async fn record_http(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.metrics.clone());
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
