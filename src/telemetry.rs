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
