//! Tracing set-up: human-readable or JSON lines, filtered by config or `RUST_LOG`.
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if settings.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: String,
    /// A tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

/// The request span of `tracing-actix-web`, built only when its level lets it through.
///
/// The default builder reads the route pattern, the connection info (the forwarding
/// headers), the user agent and the trace headers for the span's fields before the span
/// decides whether it is enabled. The engine's filters (`tracing_actix_web=error` by
/// default, `warn` everywhere in the benchmark profile) leave it disabled, so that work was
/// done for every request and thrown away: 4 % of the engine's CPU per bet (BENCHMARKS.md).
/// Enabled (say `RUST_LOG=tracing_actix_web=info`), the span is the default one.
pub struct RequestSpan;

/// The target of the default builder's spans, which the filters name.
const REQUEST_SPAN_TARGET: &str = "tracing_actix_web::root_span_builder";

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        if tracing::enabled!(target: REQUEST_SPAN_TARGET, tracing::Level::INFO) {
            tracing_actix_web::DefaultRootSpanBuilder::on_request_start(request)
        } else {
            tracing::Span::none()
        }
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
