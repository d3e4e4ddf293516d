//! The `winzo` command line: one binary for serving, migrating and operating the engine.
use clap::{Parser, Subcommand};

use crate::config;
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(
    name = "winzo",
    version,
    about = "Winzo real-time odds and in-play engine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine (HTTP, WebSocket, feeds) until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations to the configured database and exit.
    Migrate,
    /// Load the demo catalogue, a demo bettor with funds and a trader account.
    SeedDemo,
    /// Run a simulated feed provider against the engine (`[feed_sim]` settings).
    FeedSim,
    /// Create an account with a role (bootstraps staff); the password comes from
    /// `WINZO_PASSWORD` or, when unset, the first line of standard input.
    CreateUser {
        /// `user`, `support`, `moderator` or `admin`.
        #[arg(long)]
        role: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Print the OpenAPI document the engine serves (`GET /api-docs/openapi.json`).
    Openapi,
    /// Verify the ledger (balances against transactions, no negative balance, one stake
    /// debit and at most one payout per bet); exits non-zero listing every violation.
    CheckLedger,
    /// Run the daily maintenance now, as the engine's timer does (partitions ahead and
    /// retention, VACUUM (ANALYZE) of the hot tables' recent partitions,
    /// daily_maintenance()); prints its summary. Skips when another node is running it.
    Maintenance,
}

/// Runs a parsed command; the binary's `main` is only this.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = config::load()?;
    crate::telemetry::init(&settings.log);
    match cli.command {
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await
        }),
        Command::Migrate => runtime()?.block_on(async move {
            let applied = crate::db::migrate(&settings.database.url).await?;
            println!("migrations applied: {applied}");
            Ok(())
        }),
        Command::SeedDemo => runtime()?.block_on(crate::demo::seed(&settings)),
        Command::FeedSim => runtime()?.block_on(crate::feed_sim::run(settings.feed_sim)),
        Command::CreateUser {
            role,
            username,
            email,
        } => {
            let password = read_password()?;
            runtime()?.block_on(async move {
                let user = crate::accounts::register::create_user(
                    &settings.database,
                    &settings.accounts.currencies,
                    &role,
                    &username,
                    &email,
                    &password,
                )
                .await?;
                println!("created {} {} ({})", user.role, user.username, user.id);
                Ok(())
            })
        }
        Command::Openapi => {
            let doc = crate::routes::openapi_json_value();
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Command::CheckLedger => {
            let clean = runtime()?.block_on(crate::ledger_check::run(&settings.database))?;
            if clean {
                Ok(())
            } else {
                anyhow::bail!("ledger check found violations")
            }
        }
        Command::Maintenance => runtime()?.block_on(async move {
            let pool = crate::db::build_pool(&settings.database)?;
            match crate::maintenance::run_maintenance_once(&pool, &settings.maintenance).await? {
                crate::maintenance::MaintenanceOutcome::Ran(summary) => {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(())
                }
                crate::maintenance::MaintenanceOutcome::Skipped => {
                    anyhow::bail!("another session holds the maintenance lock: nothing done")
                }
            }
        }),
    }
}

/// The password for `create-user`: `WINZO_PASSWORD`, else one line of standard input.
fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("WINZO_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
