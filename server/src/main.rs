//! `fieldsync-server`: parses flags, opens the sled store (loading the demo
//! catalogue into an empty one and creating its first admin and a demo
//! surveyor with an enrollment code) and serves until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldsync::Catalogue;
use fieldsync_server::db::{now_ms, ADMIN_TOKEN_ENV};
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
    /// The demo is its own program now (`cargo run -p fieldsync-demo`); this
    /// only says so.
    #[command(hide = true)]
    Demo,
    /// Verify the store's invariants (with the server stopped); exits
    /// non-zero if any problem is found.
    Check(DataArg),
    /// Write a consistent snapshot of the store (with the server stopped).
    Backup {
        #[command(flatten)]
        data: DataArg,
        /// The backup file to write (outside the data directory).
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
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
    /// Issue a new token for an admin on a stopped server's store: the way
    /// back in when the last admin's tokens are lost, revoked or disabled.
    AdminToken {
        #[command(flatten)]
        data: DataArg,
        /// The admin user to issue it for.
        #[arg(long, default_value = "admin")]
        user: String,
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
    /// Create a new store without the demo: no org units, indicators or demo
    /// surveyor, only the first admin, ready for `fieldsync admin org-unit
    /// import`, `indicator import` and `user import`. No effect on a store
    /// that already exists.
    #[arg(long, env = "FIELDSYNC_NO_DEMO")]
    no_demo: bool,
    /// Serve gRPC and the web pages over TLS with this certificate chain
    /// (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", env = "FIELDSYNC_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "FIELDSYNC_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Refuse writes while the data directory's disk has less than this
    /// many MiB free [default: 256]...
    #[arg(long, env = "FIELDSYNC_MIN_FREE_MIB")]
    min_free_mib: Option<u64>,
    /// ...or less than this percentage of the disk free [default: 2].
    #[arg(long, env = "FIELDSYNC_MIN_FREE_PERCENT")]
    min_free_percent: Option<f64>,
    /// MiB of records each user may add per day (UTC); 0 for no limit
    /// [default: 64].
    #[arg(long, env = "FIELDSYNC_USER_MIB_PER_DAY")]
    user_mib_per_day: Option<u64>,
    /// The server's address as surveyors' phones reach it (e.g.
    /// https://ntm.example.vn): enrollment codes send devices to its
    /// `/app/`. Unset: the address the supervisor's browser used, or the
    /// web listener's.
    #[arg(long, env = "FIELDSYNC_PUBLIC_URL")]
    public_url: Option<String>,
}

impl ServeArgs {
    /// The default limits, with what the flags set.
    fn limits(&self) -> Limits {
        const MIB: u64 = 1024 * 1024;
        let default = Limits::default();
        Limits {
            min_free_bytes: self
                .min_free_mib
                .map_or(default.min_free_bytes, |m| m.saturating_mul(MIB)),
            min_free_percent: self.min_free_percent.unwrap_or(default.min_free_percent),
            user_bytes_per_day: self
                .user_mib_per_day
                .map_or(default.user_bytes_per_day, |m| m.saturating_mul(MIB)),
            public_url: self.public_url.clone().filter(|u| !u.trim().is_empty()),
            ..default
        }
    }
}

/// Runs the command; an error is printed as one plain paragraph (its causes
/// after colons), never as a backtrace.
fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Demo) => {
            anyhow::bail!(
                "the demo is its own program now: run it with `cargo run -p fieldsync-demo`"
            )
        }
        Some(Command::Check(args)) => return check(&args.data),
        Some(Command::Backup { data, out, force }) => {
            refuse_inside(&out, &data.data)?;
            let store = open_existing(&data.data)?;
            // A copy of a damaged store would pass for a good one later.
            let problems = store.check()?;
            if !problems.is_empty() {
                refuse_from_now_on(&data.data, &problems)?;
                anyhow::bail!(
                    "the store in {} is damaged ({} problem(s), the first: {}): no backup was \
                     written; see them all with `fieldsync-server check --data {0}` and restore \
                     the store from its last good backup",
                    data.data.display(),
                    problems.len(),
                    problems[0]
                );
            }
            let count = store.backup_to_file(&out, force)?;
            println!("backed up {count} records from {} to {}", data.data.display(), out.display());
            return Ok(());
        }
        Some(Command::Restore { from, data }) => {
            let count = Store::restore_from_file(&from, &data)?;
            println!("restored {count} records from {} into {}", from.display(), data.display());
            return check(&data);
        }
        Some(Command::AdminToken { data, user }) => return admin_token(&data.data, &user),
        None => ServeArgs::parse_from(["fieldsync-server"]),
    };
    serve(args).await
}

/// Issues a recovery token for `user` in the store at `data` and prints it.
fn admin_token(data: &Path, user: &str) -> anyhow::Result<()> {
    // Opened as the server opens it: a damaged store is refused.
    open_existing(data)?;
    let engine =
        Sled::open(data).with_context(|| format!("cannot open the store in {}", data.display()))?;
    let store = Store::open(Arc::new(engine), fieldsync::demo::catalogue)?;
    let (token, info) = store.recovery_token(user, now_ms())?;
    eprintln!("issued token {} for {user} (shown this once, keep it safe):", info.id);
    println!("{token}");
    Ok(())
}

/// Opens (or creates) the store, gives a new one its admin and demo
/// surveyor, binds the listeners, says where they are, and serves until a
/// shutdown signal.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.public_url {
        anyhow::ensure!(
            url.starts_with("https://") || url.starts_with("http://"),
            "--public-url must start with https:// (or http://), e.g. https://ntm.example.vn"
        );
    }
    let data = args.data.clone();
    let no_demo = args.no_demo;
    let store = tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
        let engine = Sled::open(&data)
            .with_context(|| format!("cannot open the store in {}", data.display()))?;
        let initial = if no_demo { Catalogue::default } else { fieldsync::demo::catalogue };
        Ok(Store::open(Arc::new(engine), initial)?)
    })
    .await??;
    let store = Arc::new(store);
    let demo = first_start(&store, !no_demo).await?;
    let listener = fieldsync_server::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let http = bind_web(args.http.as_deref()).await?;
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    let web = http.as_ref().map(|h| h.local_addr()).transpose()?;
    if let Some(web) = web {
        println!("web pages: {scheme}://{web}/ (sign in with a user's token)");
    }
    if let Some((user, code)) = demo {
        let base = match (&args.public_url, web) {
            (Some(url), _) => Some(url.trim_end_matches('/').to_owned()),
            (None, Some(web)) => Some(format!("{scheme}://{web}")),
            (None, None) => None,
        };
        announce_demo(&user, &code, base.as_deref());
    }
    serve_all(listener, http, store, args.limits(), tls, shutdown_signal()).await
}

/// On a new store: creates user `admin` (with the token of
/// `FIELDSYNC_ADMIN_TOKEN`, or a new one printed once) and, with `demo`, a
/// demo surveyor with an enrollment code, returned. Nothing on a store
/// already used.
async fn first_start(store: &Arc<Store>, demo: bool) -> anyhow::Result<Option<(String, String)>> {
    let env_token = std::env::var(ADMIN_TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let first = Arc::clone(store);
    let given = env_token.clone();
    let created =
        tokio::task::spawn_blocking(move || first.ensure_admin(given.as_deref(), now_ms()))
            .await??;
    match (created, env_token) {
        (Some(_), Some(_)) => println!("new store: user `admin` signs in with the token in {ADMIN_TOKEN_ENV}"),
        (Some(token), None) => println!(
            "new store: user `admin` created. Its token, shown this once (keep it safe):\n\n    {token}\n"
        ),
        (None, _) => return Ok(None),
    }
    if !demo || store.catalogue().org_units.is_empty() {
        println!(
            "new store without the demo: load the province with `fieldsync admin org-unit import \
             FILE`, `fieldsync admin indicator import FILE` and `fieldsync admin user import FILE`"
        );
        return Ok(None);
    }
    // A new store also gets a surveyor to try the app with, and a code.
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || demo_surveyor(&store)).await?
}

/// The web listener: at `addr` (none for "" or "off"), else at
/// [`DEFAULT_HTTP`] if it is free.
async fn bind_web(addr: Option<&str>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    Ok(match addr {
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
    })
}

/// Says how to try the surveyors' app with the demo surveyor's `code`: its
/// link under `base` (the app's server) and a QR code of it.
fn announce_demo(user: &str, code: &str, base: Option<&str>) {
    println!(
        "new store: surveyor `{user}` (Điều tra viên Demo, Xã Phúc Đồng) created to try the \
         surveyors' app; its one-time enrollment code (24 h): {code}"
    );
    if let Some(base) = base {
        let link = format!("{base}/app/#enroll={code}");
        println!("open {link} on a phone or in a browser, or scan:\n");
        if let Some(qr) = fieldsync_export::text::qr_terminal(&link) {
            println!("{qr}");
        }
    }
    println!(
        "more codes: the web pages' Thiết bị (Devices) page, or `fieldsync admin token enroll \
         USER`\n"
    );
}

/// The surveyor a new store starts with, so that the app can be tried at
/// once: `demo.surveyor` over Xã Phúc Đồng, and a code for its device.
fn demo_surveyor(store: &Store) -> anyhow::Result<Option<(String, String)>> {
    use fieldsync::access::{Role, User};
    let commune = fieldsync::demo::SAMPLE_COMMUNE;
    let Some(admin) = store.user("admin")? else { return Ok(None) };
    if store.catalogue().org_unit(commune).is_none() || store.user(DEMO_SURVEYOR)?.is_some() {
        return Ok(None);
    }
    let user = User {
        id: DEMO_SURVEYOR.into(),
        name: "Điều tra viên Demo".into(),
        role: Role::Surveyor,
        areas: vec![commune.into()],
        disabled: false,
    };
    store.create_user(&admin, user, now_ms())?;
    let (code, _) = store.create_enrollment(&admin, DEMO_SURVEYOR, 0, now_ms())?;
    Ok(Some((DEMO_SURVEYOR.into(), fieldsync_server::db::display_code(&code))))
}

/// The surveyor created on a new store.
const DEMO_SURVEYOR: &str = "demo.surveyor";

/// Opens the store in `data`, which must already hold one, to read it:
/// nothing is written, and a missing, damaged or cut store is refused.
fn open_existing(data: &Path) -> anyhow::Result<Store> {
    let engine = Sled::open_existing(data).map_err(|e| match e {
        fieldsync_store::Error::Sled(e) => anyhow::anyhow!(
            "cannot open the store in {} (is a server running on it?): {e}",
            data.display()
        ),
        e => e.into(),
    })?;
    Ok(Store::open_existing(Arc::new(engine))?)
}

/// Refuses a backup file inside the data directory (it could land on the
/// store's own files).
fn refuse_inside(out: &Path, data: &Path) -> anyhow::Result<()> {
    let absolute = |p: &Path| -> std::io::Result<PathBuf> {
        // The file may not exist yet: resolve its directory.
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Ok(dir.canonicalize()?.join(p.file_name().unwrap_or_default()))
    };
    let (Ok(out_abs), Ok(data_abs)) = (absolute(out), data.canonicalize()) else {
        return Ok(()); // a missing directory is reported by the write or the open
    };
    anyhow::ensure!(
        !out_abs.starts_with(&data_abs),
        "{} is inside the data directory {}: write the backup somewhere else (another disk, \
         ideally)",
        out.display(),
        data.display()
    );
    Ok(())
}

/// Leaves the note that keeps a store `check` found damaged from being
/// served or backed up until it is restored (see
/// [`fieldsync_store::DAMAGED_FILE`]).
fn refuse_from_now_on(data: &Path, problems: &[String]) -> anyhow::Result<()> {
    let why = format!(
        "`fieldsync-server check` found {} problem(s) in this store, the first: {}",
        problems.len(),
        problems[0]
    );
    Ok(fieldsync_store::record_damage(data, &why)?)
}

/// Checks the store in `data`, prints what was found, and fails if anything was.
fn check(data: &Path) -> anyhow::Result<()> {
    let problems = open_existing(data)?.check()?;
    if problems.is_empty() {
        println!("{}: the store is healthy", data.display());
        return Ok(());
    }
    println!("{}: {} problem(s) found:", data.display(), problems.len());
    for p in &problems {
        println!("  - {p}");
    }
    refuse_from_now_on(data, &problems)?;
    anyhow::bail!(
        "the store in {} is damaged: do not serve it; {}",
        data.display(),
        fieldsync_store::RESTORE
    )
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
