//! Logging for both binaries: `tracing` to stdout, human-readable or JSON
//! (`LOG_FORMAT`), filtered by `RUST_LOG` (default `info`).
use tracing_subscriber::EnvFilter;

use crate::env::{EnvError, var};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    ///
    /// # Errors
    /// [`EnvError`] for any other value.
    pub fn from_env() -> Result<Self, EnvError> {
        match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => Ok(LogFormat::Pretty),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(EnvError {
                name: "LOG_FORMAT",
                reason: format!("{other:?} is not pretty or json"),
            }),
        }
    }
}

/// Installs the global subscriber; later calls are no-ops (tests build many apps).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
