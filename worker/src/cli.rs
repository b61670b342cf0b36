//! The `worker` command line: `run [--concurrency N] [--queues emails,settlements]`
//! (the default command).
use clap::{Parser, Subcommand};

use crate::config::{WorkerConfig, parse_queues};
use crate::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(name = "worker", about = "Storefront job runner", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume jobs until SIGTERM or Ctrl-C (the default command).
    Run {
        /// Jobs at a time per queue (default: WORKER_CONCURRENCY or 8).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Queues to consume, comma-separated: emails, settlements (default: both).
        #[arg(long)]
        queues: Option<String>,
    },
}

/// Runs the command line.
///
/// # Errors
/// Whatever stops the worker; `main` prints it and exits 1.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let Command::Run { concurrency, queues } = cli.command.unwrap_or(Command::Run {
        concurrency: None,
        queues: None,
    });
    let mut config = WorkerConfig::from_env()?;
    config.concurrency = concurrency.unwrap_or(config.concurrency);
    if let Some(queues) = queues {
        config.queues = parse_queues(&queues)?;
    }
    let telemetry = telemetry::init(
        LogFormat::from_env()?,
        "storefront-worker",
        config.otlp_endpoint.as_ref(),
    );
    let result = run_worker(config).await;
    telemetry.shutdown().await;
    result
}

async fn run_worker(config: WorkerConfig) -> anyhow::Result<()> {
    let worker = crate::Worker::build(config).await?;
    if let Some(port) = worker.health_port() {
        tracing::info!(port, "health on /healthz, /readyz, /metrics");
    }
    worker.run_until(crate::process::shutdown_signal()).await
}
