//! Logging and traces for both binaries: `tracing` to stdout, human-readable
//! or JSON (`LOG_FORMAT`), filtered by `RUST_LOG` (default `info`); and,
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the same spans exported as
//! OpenTelemetry traces over OTLP/HTTP ([`otlp`]). Without the variable no
//! OpenTelemetry layer is installed at all: nothing is recorded or sent.
//!
//! The spans that make up a trace (README "Traces"): the api's `http_request`
//! span per GraphQL request (continuing an incoming `traceparent`), and the
//! worker's `job` span per attempt, whose parent is the span that wrote the
//! job's outbox row (`entity::trace`).
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::env::{EnvError, var};

pub mod otlp;

pub use otlp::OtlpEndpoint;

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

/// What [`init`] installed; [`Telemetry::shutdown`] sends the spans still
/// buffered before the process exits.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    exporter: Option<otlp::Pipeline>,
}

impl Telemetry {
    /// Exports the spans still buffered (within the exporter's timeout) and
    /// stops the exporter. Nothing to do when export is off.
    pub async fn shutdown(self) {
        if let Some(exporter) = self.exporter {
            exporter.shutdown().await;
        }
    }
}

/// Whether this process's global subscriber exports spans ([`init`] with an
/// endpoint): spans that only logs read can then carry fewer fields.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported over OTLP by the global subscriber.
#[must_use]
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Installs the global subscriber: logs, and trace export to `otlp` under
/// the service name `service` (`storefront-api`, `storefront-worker`).
/// Later calls install nothing (tests build many apps) and export nothing.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub fn init(format: LogFormat, service: &'static str, otlp: Option<&OtlpEndpoint>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    let Some(endpoint) = otlp else {
        let _ = registry.try_init();
        return Telemetry { exporter: None };
    };
    let pipeline = match otlp::Pipeline::start(endpoint, service) {
        Ok(pipeline) => pipeline,
        Err(err) => {
            let _ = registry.try_init();
            tracing::error!(error = %err, "trace export is off: the OTLP exporter could not be built");
            return Telemetry { exporter: None };
        }
    };
    if registry.with(pipeline.layer()).try_init().is_err() {
        // Another subscriber was installed first: this one's spans would go nowhere.
        return Telemetry { exporter: None };
    }
    EXPORTING.store(true, Ordering::Relaxed);
    tracing::info!(endpoint = %endpoint.traces_url(), service, "exporting traces over OTLP/HTTP");
    Telemetry {
        exporter: Some(pipeline),
    }
}
