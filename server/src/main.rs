//! `fieldsync-server`: parses flags, opens the sled store (loading the demo
//! catalogue into an empty one and creating its first admin) and serves until
//! Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync_server::store::{now_ms, ADMIN_TOKEN_ENV};
use fieldsync_server::{serve_all, Limits, Store, Tls};
use fieldsync_store::Sled;

#[derive(Parser)]
#[command(version, about = "The fieldsync sync server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and the web pages (the default).
    Serve(ServeArgs),
    /// Rebuild the 2022 Hà Tĩnh infrastructure report from simulated field
    /// records, in a temporary store, and print it.
    Demo,
    /// Verify the store's invariants (with the server stopped); exits
    /// non-zero if any problem is found.
    Check(DataArg),
    /// Write a consistent snapshot of the store (with the server stopped).
    Backup {
        #[command(flatten)]
        data: DataArg,
        /// The backup file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new, empty data directory.
    Restore {
        /// The backup file to read.
        #[arg(long)]
        from: PathBuf,
        /// The new data directory (must not exist, or be empty).
        #[arg(long)]
        data: PathBuf,
    },
}

#[derive(clap::Args)]
struct DataArg {
    /// Directory of an existing store.
    #[arg(long, default_value = "./fieldsync-data", env = "FIELDSYNC_DATA")]
    data: PathBuf,
}

/// Where the web pages are served unless `--http` says otherwise.
const DEFAULT_HTTP: &str = "127.0.0.1:8080";

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051", env = "FIELDSYNC_LISTEN")]
    listen: String,
    /// Address of the web pages for supervisors and the province office
    /// (plain HTTP) [default: 127.0.0.1:8080, skipped if taken]; `off`
    /// serves none.
    #[arg(long, env = "FIELDSYNC_HTTP")]
    http: Option<String>,
    /// Directory of the embedded store; created with demo data if empty.
    #[arg(long, default_value = "./fieldsync-data", env = "FIELDSYNC_DATA")]
    data: PathBuf,
    /// Serve gRPC and the web pages over TLS with this certificate chain
    /// (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", env = "FIELDSYNC_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "FIELDSYNC_TLS_KEY")]
    tls_key: Option<PathBuf>,
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
        Some(Command::Check(args)) => return check(&args.data),
        Some(Command::Backup { data, out }) => {
            let store = open_existing(&data.data)?;
            let count = store.backup_to_file(&out)?;
            println!("backed up {count} records from {} to {}", data.data.display(), out.display());
            return Ok(());
        }
        Some(Command::Restore { from, data }) => {
            let count = Store::restore_from_file(&from, &data)?;
            println!("restored {count} records from {} into {}", from.display(), data.display());
            return check(&data);
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
    let listener = fieldsync_server::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let http = match args.http.as_deref() {
        Some("" | "off") => None,
        Some(addr) => Some(
            fieldsync_server::bind(addr)
                .await
                .with_context(|| format!("cannot serve the web pages on {addr}"))?,
        ),
        None => match fieldsync_server::bind(DEFAULT_HTTP).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "no web pages: {DEFAULT_HTTP} is taken (choose --http ADDR)");
                None
            }
        },
    };
    tracing::info!(data = %args.data.display(), "store open");
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
            };
            Some(Tls::from_pem(read(cert)?, read(key)?))
        }
        _ => None,
    };
    if let Some(http) = &http {
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("web pages: {scheme}://{}/ (sign in with a user's token)", http.local_addr()?);
    }
    serve_all(listener, http, store, Limits::default(), tls, shutdown_signal()).await
}

/// Opens the store in `data`, which must already hold one.
fn open_existing(data: &std::path::Path) -> anyhow::Result<Store> {
    let holds_files = std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_some());
    anyhow::ensure!(holds_files, "there is no store in {}", data.display());
    let engine = Sled::open(data).with_context(|| {
        format!("cannot open the store in {} (is a server running on it?)", data.display())
    })?;
    Ok(Store::open(Arc::new(engine), fieldsync::demo::catalogue)?)
}

/// Checks the store in `data`, prints what was found, and fails if anything was.
fn check(data: &std::path::Path) -> anyhow::Result<()> {
    let problems = open_existing(data)?.check()?;
    if problems.is_empty() {
        println!("{}: the store is healthy", data.display());
        return Ok(());
    }
    println!("{}: {} problem(s) found:", data.display(), problems.len());
    for p in &problems {
        println!("  - {p}");
    }
    anyhow::bail!("the store in {} is damaged", data.display())
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
