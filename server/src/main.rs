//! `fieldsync-server`: parses flags, opens the sled store (loading the demo
//! catalogue into an empty one and creating its first admin) and serves until
//! Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync_server::store::{now_ms, ADMIN_TOKEN_ENV};
use fieldsync_server::{serve, Limits, Store};
use fieldsync_store::Sled;

#[derive(Parser)]
#[command(version, about = "The fieldsync sync server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve(ServeArgs),
    /// Rebuild the 2022 Hà Tĩnh infrastructure report from simulated field
    /// records, in a temporary store, and print it.
    Demo,
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051", env = "FIELDSYNC_LISTEN")]
    listen: String,
    /// Directory of the embedded store; created with demo data if empty.
    #[arg(long, default_value = "./fieldsync-data", env = "FIELDSYNC_DATA")]
    data: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo tells its own story; the server's request logs would drown it.
    let default = if matches!(cli.command, Some(Command::Demo)) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .init();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Demo) => {
            let summary = fieldsync_server::demo::run(|step| println!("· {step}")).await?;
            println!("\n{}", summary.report);
            return Ok(());
        }
        None => ServeArgs::parse_from(["fieldsync-server"]),
    };
    let data = args.data.clone();
    let store = tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
        let engine = Sled::open(&data)
            .with_context(|| format!("cannot open the store in {}", data.display()))?;
        Ok(Store::open(Arc::new(engine), fieldsync::demo::catalogue)?)
    })
    .await??;
    let env_token = std::env::var(ADMIN_TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let store = Arc::new(store);
    let first = Arc::clone(&store);
    let given = env_token.clone();
    let created =
        tokio::task::spawn_blocking(move || first.ensure_admin(given.as_deref(), now_ms()))
            .await??;
    match (created, env_token) {
        (Some(_), Some(_)) => println!("new store: user `admin` signs in with the token in {ADMIN_TOKEN_ENV}"),
        (Some(token), None) => println!(
            "new store: user `admin` created. Its token, shown this once (keep it safe):\n\n    {token}\n"
        ),
        (None, _) => {}
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(data = %args.data.display(), "store open");
    serve(listener, store, Limits::default(), shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
