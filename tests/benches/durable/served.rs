//! A store of N values, killed and then opened and served by a process of
//! its own, so that the open (with sled's recovery after the kill) and the
//! server's memory are measured alone.
//!
//! The bench binary runs again in two roles, told which by an environment
//! variable: a loader that pushes N values into a store through
//! `Store::push`, flushes and waits to be SIGKILLed; and a server that opens
//! that store (timed: sled's recovery, the store's checks and migrations,
//! the gRPC listener), serves a fresh tablet's whole initial pull, and
//! reports its peak RSS when its stdin closes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use fieldsync::access::Role;
use fieldsync::sync::Mutation;
use fieldsync::{demo, DeviceId};
use fieldsync_client::remote::Grpc;
use fieldsync_client::sync::{self, Retry};
use fieldsync_server::local::LocalServer;
use fieldsync_server::Store;
use fieldsync_store::Memory;

use crate::common::{cell_mutation, env, env_list, peak_rss_mib, periods};
use crate::shapes::Cells;
use crate::{dir_bytes, TOKEN};

const LOAD_VAR: &str = "FIELDSYNC_BENCH_LOAD_INTO";
const SERVE_VAR: &str = "FIELDSYNC_BENCH_SERVE_FROM";
const COUNT_VAR: &str = "FIELDSYNC_BENCH_LOAD_VALUES";

/// Runs this process's role if it was started as the loader or the server
/// (`Some`: then it is all the process does).
pub async fn child_role() -> Option<anyhow::Result<()>> {
    if let Some(dir) = std::env::var_os(LOAD_VAR) {
        return Some(load(Path::new(&dir), env(COUNT_VAR, 0)).await);
    }
    let dir = std::env::var_os(SERVE_VAR)?;
    Some(serve(Path::new(&dir)).await)
}

/// The loader: N values into the store in `dir`, flushed; then it says so
/// and waits for the kill.
async fn load(dir: &Path, n: usize) -> anyhow::Result<()> {
    let server = LocalServer::start(dir, "127.0.0.1:0", TOKEN).await?;
    let start = Instant::now();
    let store = Arc::clone(&server.store);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        load_cells(&store, n)?;
        Ok(store.flush()?)
    })
    .await??;
    println!("loaded {:.1}", start.elapsed().as_secs_f64());
    std::io::stdout().flush()?;
    // Killed here, holding the store open.
    std::io::stdin().lines().for_each(drop);
    anyhow::bail!("the loader was not killed")
}

/// Pushes `n` values into `store` through `Store::push`, a thousand per
/// push, each into a cell of its own (village, field, period).
pub fn load_cells(store: &Store, n: usize) -> anyhow::Result<()> {
    const LOAD_BATCH: usize = 1_000;
    let (villages, periods) = (Cells::new(Vec::new()).villages, periods());
    let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
    let device = DeviceId(uuid::Uuid::new_v4());
    let mut id = 0u64;
    while (id as usize) < n {
        let batch: Vec<Mutation> = (0..LOAD_BATCH.min(n - id as usize))
            .map(|_| {
                id += 1;
                cell_mutation(&villages, &periods, id as usize - 1, id)
            })
            .collect();
        store.push(&admin, device, &batch, 0, fieldsync_client::now_ms())?;
    }
    Ok(())
}

/// The server: opens the store in `dir` (timed), says where it listens and
/// a reader's token, serves until stdin closes, then reports its peak RSS.
async fn serve(dir: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    let server = LocalServer::start(dir, "127.0.0.1:0", TOKEN).await?;
    let open = start.elapsed().as_secs_f64();
    let rss = peak_rss_mib().unwrap_or(f64::NAN);
    // A reader of its own each time the store is served.
    let reader = format!("reader-{}", std::process::id());
    let token = server.user(&reader, "Surveyor", Role::Surveyor, &[demo::PROVINCE])?;
    println!("open {open:.3} {rss:.0} {} {token}", server.url);
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| std::io::stdin().lines().for_each(drop)).await?;
    println!("peak {:.0}", peak_rss_mib().unwrap_or(f64::NAN));
    server.stop().await
}

/// Starts this binary again in a role, its stdin and stdout piped.
fn spawn(var: &str, dir: &Path, n: usize) -> anyhow::Result<(Child, BufReader<ChildStdout>)> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(var, dir)
        .env(COUNT_VAR, n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let out = BufReader::new(child.stdout.take().expect("piped"));
    Ok((child, out))
}

/// The next line the child prints that starts with `word`, split in words.
fn said(out: &mut BufReader<ChildStdout>, word: &str) -> anyhow::Result<Vec<String>> {
    let mut line = String::new();
    loop {
        line.clear();
        anyhow::ensure!(out.read_line(&mut line)? > 0, "the child ended before saying {word}");
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if words.first().is_some_and(|w| w == word) {
            return Ok(words);
        }
    }
}

/// The table: for each N, load in one process, SIGKILL, open and serve the
/// pull in another.
pub async fn served() -> anyhow::Result<()> {
    let sizes = env_list("FIELDSYNC_BENCH_SERVED", "100000");
    if sizes.is_empty() {
        return Ok(());
    }
    println!();
    println!("a store of N values, its loader killed, opened and served by a process of its own");
    println!(
        "| values | load (own process) | store on disk | open after the kill | server RSS once \
         open | pull (fresh tablet) | server peak RSS, open and pull |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("server");
        let (mut loader, mut out) = spawn(LOAD_VAR, &data, n)?;
        let load_secs: f64 = said(&mut out, "loaded")?[1].parse()?;
        loader.kill()?;
        loader.wait()?;
        let disk = dir_bytes(&data);

        let (mut server, mut out) = spawn(SERVE_VAR, &data, n)?;
        let opened = said(&mut out, "open")?;
        let (open_secs, open_rss, url, token) = (&opened[1], &opened[2], &opened[3], &opened[4]);
        let pull = Instant::now();
        let engine: Arc<dyn fieldsync_store::Engine> = Arc::new(Memory::new());
        let tablet = fieldsync_client::init_tablet(engine, url, token).await?;
        let mut remote = Grpc::connect(url, token).await?;
        sync::pull(&tablet, &mut remote, &Retry::immediate(0), &mut |_| {}).await?;
        let pull_secs = pull.elapsed().as_secs_f64();
        let stored = tablet.synced()?.len();
        anyhow::ensure!(stored == n, "the tablet holds {stored} values, not {n}");
        drop(server.stdin.take());
        let peak = said(&mut out, "peak")?[1].clone();
        anyhow::ensure!(server.wait()?.success(), "the server process failed");
        println!(
            "| {n} | {load_secs:.1} s | {:.0} MiB, {:.0} bytes/value | {open_secs} s | {open_rss} \
             MiB | {pull_secs:.2} s | {peak} MiB |",
            disk as f64 / 1048576.0,
            disk as f64 / n as f64,
        );
    }
    Ok(())
}
