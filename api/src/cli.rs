//! The `api` command line: `serve` (the default), `export-schema`,
//! `create-admin` and `seed`.
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use entity::accounts::{self, DisplayName, Email, Password};

use crate::config::Config;
use crate::startup::Application;

#[derive(Parser)]
#[command(name = "api", about = "Storefront GraphQL server", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GraphQL on API_BIND (the default command).
    Serve,
    /// Write the GraphQL SDL (to a file, or stdout without --out).
    ExportSchema {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create an admin account, or make an existing account admin with this password.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Admin")]
        name: String,
    },
    /// Add the demo catalog's products that are missing.
    Seed,
}

/// Runs the command line.
///
/// # Errors
/// Whatever stops the command; `main` prints it and exits 1.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::ExportSchema { out } => {
            let sdl = crate::schema::sdl();
            match out {
                Some(path) => {
                    std::fs::write(&path, sdl).with_context(|| format!("writing {}", path.display()))?
                }
                None => print!("{sdl}"),
            }
            Ok(())
        }
        Command::Serve => {
            let config = Config::from_env()?;
            let telemetry = worker::telemetry::init(
                config.log_format,
                "storefront-api",
                config.worker.otlp_endpoint.as_ref(),
            );
            let result = serve(config).await;
            telemetry.shutdown().await;
            result
        }
        Command::CreateAdmin {
            email,
            password,
            name,
        } => {
            let config = Config::from_env()?;
            // One-off commands log; they export no traces.
            let _logs = worker::telemetry::init(config.log_format, "storefront-api", None);
            let email = Email::parse(&email)?;
            let password = Password::parse(&password)?;
            let name = DisplayName::parse(&name)?;
            let db = crate::startup::connect_and_migrate(&config).await?;
            let txn = entity::db::begin_write(&db).await?;
            let admin = accounts::ensure_admin(&txn, &email, &password, &name).await?;
            txn.commit().await?;
            println!("admin {} ({}) is ready", admin.email, admin.id);
            Ok(())
        }
        Command::Seed => {
            let config = Config::from_env()?;
            let _logs = worker::telemetry::init(config.log_format, "storefront-api", None);
            let db = crate::startup::connect_and_migrate(&config).await?;
            let added = crate::seed::seed_demo_catalog(&db).await?;
            println!("seeded {added} demo products");
            Ok(())
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains.
async fn serve(config: Config) -> anyhow::Result<()> {
    crate::startup::prepare_database(&config).await?;
    let app = Application::build(config).await?;
    app.run_until_stopped(worker::process::shutdown_signal()).await?;
    Ok(())
}
