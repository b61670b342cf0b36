//! `worker`: the Storefront job runner. `worker run [--concurrency N] [--queues emails,settlements]`.
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "worker", about = "Storefront job runner", version)]
struct Cli {
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

async fn run(concurrency: Option<usize>, queues: Option<String>) -> anyhow::Result<()> {
    let mut config = worker::config::WorkerConfig::from_env()?;
    if let Some(concurrency) = concurrency {
        config.concurrency = concurrency;
    }
    if let Some(queues) = queues {
        config.queues = worker::config::parse_queues(&queues)?;
    }
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init()
    } else {
        builder.init()
    }
    let worker = worker::Worker::build(config).await?;
    if let Some(port) = worker.health_port() {
        tracing::info!(port, "health on /healthz, /readyz, /metrics");
    }
    worker.run_until(shutdown_signal()).await
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let Some(Command::Run { concurrency, queues }) = cli.command.or(Some(Command::Run {
        concurrency: None,
        queues: None,
    })) else {
        return std::process::ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("worker: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(concurrency, queues)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("worker: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
