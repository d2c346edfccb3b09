//! Durable push throughput next to the raw sled ceiling, in two shapes, and
//! the initial pull of a fresh tablet.
//!
//! Push: 1, 8 and 64 tablets (own device id, own gRPC connection) push to an
//! in-process server on loopback (sled in a temp dir); a value counts once
//! its push is answered, i.e. validated, merged, audited, rolled up and
//! flushed. Two shapes, each on a server of its own:
//!
//! - worst case: every value is a note of about 200 bytes opening a report
//!   of its own, in batches of `FIELDSYNC_BENCH_BATCH` (default 100); each
//!   tablet is a surveyor of the whole province.
//! - realistic session: each tablet is the surveyor of one commune (tablet
//!   t of commune t mod 36) pushing its villages' reports, 13 values each
//!   (every indicator of the catalogue and the note, "of which" parts below
//!   their wholes), 5-8 reports per push; from its third push on, one
//!   report in four is instead 3-6 corrections of a report it sent before,
//!   based on the version the server returned, so every one merges as an
//!   update (no conflicts; the bench fails on one). Seeded
//!   (`FIELDSYNC_BENCH_SEED`, default 1; printed).
//!
//! Raw ceiling, same process, same run, per shape: the same records (key
//! village‖period‖field, value the value with its author and clock) written
//! by as many writers straight into plain sled in another temp dir, one
//! committed and flushed batch (one `apply_batch` + flush) per push of the
//! shape. Printed beside each row: the sled records the server's store
//! wrote per acknowledged value (counted by a wrapper around the engine,
//! puts and deletes of every batch, a long value counted with its pieces,
//! before the engine's own epoch record);
//! after each shape, its server's store and its raw database on disk, in
//! bytes per value, and the records per value each of the store's trees
//! took.
//!
//! A last row pushes the worst case's notes straight into `Store::push`
//! from one writer, without gRPC, to show what the transport adds; two more
//! compare the engine's commit (epoch record, high-water mark) with plain
//! sled.
//!
//! Served: N values (`FIELDSYNC_BENCH_SERVED`, default 100000) are loaded
//! by a process of its own, which is SIGKILLed once they are flushed; another
//! process opens the store (timed, sled's recovery included) and serves a
//! fresh tablet's initial pull; its own RSS once open and its peak are
//! printed (see `durable/served.rs`).
//!
//! Pull: N values are loaded into a server through `Store::push`; a fresh
//! tablet (its own sled store in a temp dir) is set up (bootstrap) and pulls
//! until caught up, storing and flushing page by page as `fieldsync sync` does.
//! Printed beside it: the server's store on disk (bytes per value) once
//! loaded and flushed, and the process's peak RSS after the load and after
//! the pull (server and tablet share the process).
//!
//! `cargo bench -p fieldsync-tests --bench durable`
//! (sizes: `FIELDSYNC_BENCH_DURABLE_VALUES`,
//! values per concurrency level and shape, default 25600;
//! `FIELDSYNC_BENCH_TABLETS`, default `1,8,64`; `FIELDSYNC_BENCH_BATCH`,
//! default 100; `FIELDSYNC_BENCH_PULL`, default `100000`, e.g.
//! `100000,1000000`; `FIELDSYNC_BENCH_SHAPES`, default `1,2`: the worst
//! case (1) and the realistic session (2), e.g. `2` to profile one).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use fieldsync::access::Role;
use fieldsync::sync::{Mutation, Outcome, RawValue};
use fieldsync::{demo, DeviceId, Hlc};
use fieldsync_client::remote::{Grpc, Remote};
use fieldsync_client::sync::{self, Retry};
use fieldsync_server::local::LocalServer;
use fieldsync_store::{Batch, Engine, Sled};
use rand::SeedableRng;

mod common;
#[path = "durable/served.rs"]
mod served;
#[path = "durable/shapes.rs"]
mod shapes;

use common::{cpu_secs, env, env_list, peak_rss_mib, periods, reset_peak_rss, FIELDS};
use shapes::{counted, Cells, Communes, Counted, Session};

const TOKEN: &str = "bench-admin-token-0123456789";
const NOTE_BYTES: usize = 200;

/// The raw record of a mutation: key village‖period‖field, value
/// value‖author‖hlc.
fn raw_record(m: &Mutation) -> (Vec<u8>, Vec<u8>) {
    let key = format!("{}\0{}\0{}", m.village_id, m.period, m.field).into_bytes();
    let (RawValue::Text(text) | RawValue::Amount(text)) = &m.value else {
        unreachable!("amounts and notes only")
    };
    let mut value = text.as_bytes().to_vec();
    value.extend_from_slice(m.author.as_bytes());
    value.extend_from_slice(&m.hlc.0.to_be_bytes());
    (key, value)
}

/// A tablet's clock: now, and always after its last stamp.
fn tick(last: &mut Hlc) -> Hlc {
    *last = Hlc::from_millis(fieldsync_client::now_ms()).max(Hlc(last.0 + 1));
    *last
}

type FieldAt = (String, String, String);

fn field_at(m: &Mutation) -> FieldAt {
    (m.village_id.clone(), m.period.clone(), m.field.clone())
}

/// Sends one tablet's session: each mutation stamped as it is sent and
/// based on the version the server last returned for its field.
async fn send(url: &str, token: &str, session: Session) -> anyhow::Result<()> {
    let mut remote = Grpc::connect(url, token).await?;
    let device = DeviceId(uuid::Uuid::new_v4());
    let mut versions: HashMap<FieldAt, u64> = HashMap::new();
    let mut clock = Hlc(0);
    let mut ack = 0;
    for mut push in session {
        for m in &mut push {
            m.base_version = versions.get(&field_at(m)).copied().unwrap_or(0);
            m.hlc = tick(&mut clock);
        }
        let (first, n) = (push[0].id, push.len());
        let sent = push.clone();
        let pushed = remote.push(device, push, ack).await?;
        anyhow::ensure!(pushed.results.len() == n, "short reply");
        for r in pushed.results {
            let m = &sent[(r.id - first) as usize];
            anyhow::ensure!(
                matches!(r.outcome, Outcome::Applied | Outcome::Unchanged),
                "{} {} {}: {:?} {}",
                m.village_id,
                m.period,
                m.field,
                r.outcome,
                r.reason
            );
            if let Some(current) = r.current {
                versions.insert(field_at(m), current.version);
            }
        }
        ack = first + n as u64 - 1;
    }
    Ok(())
}

/// Pushes every tablet's session at once; seconds.
async fn push_run(url: &str, tokens: &[String], sessions: Vec<Session>) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (token, session) in tokens.iter().zip(sessions) {
        let (url, token) = (url.to_owned(), token.clone());
        tasks.push(tokio::spawn(async move { send(&url, &token, session).await }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Trees the raw run may spread each record over (a diagnostic:
/// `FIELDSYNC_BENCH_RAW_TREES`, default 1, writes each record to that many).
const RAW_TREES: [&str; 8] = ["raw", "raw1", "raw2", "raw3", "raw4", "raw5", "raw6", "raw7"];

/// Where the raw ceiling writes: plain sled (one `apply_batch` and flush per
/// batch, keys prefixed by tree as the engine does), or the engine itself,
/// whose commit adds the epoch record and the high-water mark.
enum Raw {
    Plain(sled::Db),
    Engine(Box<Sled>),
}

impl Raw {
    fn plain(path: &Path) -> anyhow::Result<Raw> {
        let db =
            sled::Config::new().path(path).cache_capacity(fieldsync_store::CACHE_BYTES).open()?;
        Ok(Raw::Plain(db))
    }

    fn commit(&self, batch: Vec<(&'static str, Vec<u8>, Vec<u8>)>) {
        match self {
            Raw::Plain(db) => {
                let mut b = sled::Batch::default();
                for (tree, k, v) in batch {
                    let mut key = tree.as_bytes().to_vec();
                    key.push(0);
                    key.extend_from_slice(&k);
                    b.insert(key, v);
                }
                db.apply_batch(b).expect("raw commit");
                db.flush().expect("raw flush");
            }
            Raw::Engine(engine) => {
                let mut b = Batch::default();
                for (tree, k, v) in batch {
                    b.put(tree, k, v);
                }
                engine.commit(b).expect("engine commit");
            }
        }
    }
}

/// Writes the sessions' records straight into `raw`, a writer thread per
/// session, one committed (flushed) batch per push; seconds.
fn raw_run(raw: &Raw, trees: usize, sessions: &[Session]) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for session in sessions {
            s.spawn(move || {
                let mut clock = Hlc(0);
                for push in session {
                    let mut b = Vec::new();
                    for m in push {
                        let m = Mutation { hlc: tick(&mut clock), ..m.clone() };
                        let (k, v) = raw_record(&m);
                        for tree in &RAW_TREES[..trees] {
                            b.push((*tree, k.clone(), v.clone()));
                        }
                    }
                    raw.commit(b);
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

/// The push sessions of one shape, made before the clock starts.
trait Shape {
    fn title(&self) -> String;
    /// Surveyor `t`'s area.
    fn area(&self, t: usize) -> String;
    /// `tablets` sessions of `per` values each, none touching a report an
    /// earlier call handed out.
    fn sessions(&mut self, tablets: usize, per: usize) -> anyhow::Result<Vec<Session>>;
}

struct WorstCase {
    cells: Cells,
    next: usize,
    batch: usize,
}

impl Shape for WorstCase {
    fn title(&self) -> String {
        format!(
            "worst case: notes of ~{NOTE_BYTES} bytes, each a report of its own, batches of {}",
            self.batch
        )
    }

    fn area(&self, _: usize) -> String {
        demo::PROVINCE.into()
    }

    fn sessions(&mut self, tablets: usize, per: usize) -> anyhow::Result<Vec<Session>> {
        anyhow::ensure!(
            self.next + tablets * per <= self.cells.capacity(),
            "at most {} notes in all: there are not more distinct note cells",
            self.cells.capacity()
        );
        let first = self.next;
        self.next += tablets * per;
        Ok((0..tablets)
            .map(|t| self.cells.session(first + t * per, per, self.batch, &format!("Surveyor {t}")))
            .collect())
    }
}

struct Realistic {
    communes: Communes,
    rng: rand::rngs::StdRng,
    seed: u64,
}

impl Shape for Realistic {
    fn title(&self) -> String {
        format!(
            "realistic session: a commune's surveyor, {} values per report, 5-8 reports per push, \
             later pushes correcting earlier reports (seed {})",
            shapes::REPORT.len(),
            self.seed
        )
    }

    fn area(&self, t: usize) -> String {
        self.communes.ids[self.communes.of(t)].clone()
    }

    fn sessions(&mut self, tablets: usize, per: usize) -> anyhow::Result<Vec<Session>> {
        (0..tablets)
            .map(|t| {
                let c = self.communes.of(t);
                let author = format!("Surveyor {t}");
                shapes::session(&mut self.rng, &mut self.communes, c, per, &author)
            })
            .collect()
    }
}

/// What one shape's server wrote: its records per value and its disk.
struct Run {
    server: LocalServer,
    engine: Arc<Counted>,
    dir: std::path::PathBuf,
    raw_dir: std::path::PathBuf,
    raw: Raw,
    values: usize,
}

/// One shape's table: every concurrency level, pushed and raw, then the
/// bytes on disk per value.
async fn durable_shape(shape: &mut dyn Shape, dir: &Path, name: &str) -> anyhow::Result<Run> {
    let total = env("FIELDSYNC_BENCH_DURABLE_VALUES", 25_600);
    let levels = env_list("FIELDSYNC_BENCH_TABLETS", "1,8,64");
    let trees = env("FIELDSYNC_BENCH_RAW_TREES", 1).clamp(1, RAW_TREES.len());
    let server_dir = dir.join(format!("server-{name}"));
    let engine = Arc::new(counted(Sled::open(&server_dir)?));
    let server = LocalServer::start_over(engine.clone(), "127.0.0.1:0", TOKEN).await?;
    let raw_dir = dir.join(format!("raw-{name}"));
    let raw = Raw::plain(&raw_dir)?;
    let max = levels.iter().copied().max().unwrap_or(1);
    let tokens = (0..max)
        .map(|t| {
            let (id, who) = (format!("surveyor-{t}"), format!("Surveyor {t}"));
            server.user(&id, &who, Role::Surveyor, &[shape.area(t).as_str()])
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    println!("durable push, {}: {total} values per row", shape.title());
    println!(
        "| tablets | pushed (acknowledged, flushed) | process CPU during the push | \
         sled records per value | raw sled (commit + flush per batch) | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    let mut values = 0;
    for &c in &levels {
        let per = total / c.max(1);
        let n = per * c;
        let sessions = shape.sessions(c, per)?;
        let raw_secs = raw_run(&raw, trees, &sessions);
        let (records0, _) = engine.written();
        let cpu0 = cpu_secs();
        let push_secs = push_run(&server.url, &tokens[..c], sessions).await?;
        let push_cpu = cpu_secs().zip(cpu0).map_or(f64::NAN, |(b, a)| b - a);
        let records = (engine.written().0 - records0) as f64 / n as f64;
        values += n;
        let (push_rate, raw_rate) = (n as f64 / push_secs, n as f64 / raw_secs);
        println!(
            "| {c} | {n} values, {push_secs:.2} s: {push_rate:.0} values/s | {push_cpu:.2} s | \
             {records:.1} | {raw_secs:.2} s: {raw_rate:.0} values/s | {:.1}% |",
            push_rate / raw_rate * 100.0
        );
    }
    Ok(Run { server, engine, dir: server_dir, raw_dir, raw, values })
}

impl Run {
    /// Flushes both stores and prints their bytes on disk per value.
    fn print_disk(&self) -> anyhow::Result<()> {
        self.server.store.flush()?;
        if let Raw::Plain(db) = &self.raw {
            db.flush()?;
        }
        let per = |bytes: u64| bytes as f64 / self.values as f64;
        let (server, raw) = (dir_bytes(&self.dir), dir_bytes(&self.raw_dir));
        let (records, batches) = self.engine.written();
        println!(
            "on disk after these {} values: server store {:.1} MiB, {:.0} bytes/value \
             ({records} records in {batches} batches written since it opened); \
             raw sled {:.1} MiB, {:.0} bytes/value",
            self.values,
            server as f64 / 1048576.0,
            per(server),
            raw as f64 / 1048576.0,
            per(raw)
        );
        let by_tree = self.engine.by_tree();
        let per_value = |n: u64| n as f64 / self.values as f64;
        let trees: Vec<_> =
            by_tree.iter().map(|(tree, n, _)| format!("{tree} {:.2}", per_value(*n))).collect();
        println!("records per value by tree: {}", trees.join(", "));
        let written: u64 = by_tree.iter().map(|(.., b)| b).sum();
        let mut by_bytes = by_tree.clone();
        by_bytes.sort_by_key(|(.., b)| std::cmp::Reverse(*b));
        let trees: Vec<_> =
            by_bytes.iter().map(|(tree, _, b)| format!("{tree} {:.0}", per_value(*b))).collect();
        println!(
            "bytes handed to sled per value (keys and values): {:.0}, by tree: {}",
            per_value(written),
            trees.join(", ")
        );
        Ok(())
    }
}

async fn durable_push() -> anyhow::Result<()> {
    let total = env("FIELDSYNC_BENCH_DURABLE_VALUES", 25_600);
    let batch = env("FIELDSYNC_BENCH_BATCH", 100).max(1);
    let trees = env("FIELDSYNC_BENCH_RAW_TREES", 1).clamp(1, RAW_TREES.len());
    let seed = env("FIELDSYNC_BENCH_SEED", 1) as u64;
    let dir = tempfile::tempdir()?;
    let shapes = env_list("FIELDSYNC_BENCH_SHAPES", "1,2");
    if !shapes.contains(&1) {
        return realistic_push(dir.path(), seed).await;
    }
    let mut worst = WorstCase { cells: Cells::new(periods()), next: 0, batch };
    let run = durable_shape(&mut worst, dir.path(), "worst").await?;
    run.print_disk()?;
    // The same pushes straight into the store, no gRPC: what the transport adds.
    {
        let store = Arc::clone(&run.server.store);
        let session = worst.sessions(1, total)?.remove(0);
        let (secs, cpu) = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64)> {
            let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
            let device = DeviceId(uuid::Uuid::new_v4());
            let cpu0 = cpu_secs().unwrap_or_default();
            let start = Instant::now();
            let mut clock = Hlc(0);
            for mut ms in session {
                ms.iter_mut().for_each(|m| m.hlc = tick(&mut clock));
                store.push(&admin, device, &ms, ms[0].id - 1, fieldsync_client::now_ms())?;
            }
            Ok((start.elapsed().as_secs_f64(), cpu_secs().unwrap_or_default() - cpu0))
        })
        .await??;
        println!(
            "| Store::push in process, no gRPC | {total} values, {secs:.2} s: {:.0} values/s | {cpu:.2} s | | | |",
            total as f64 / secs
        );
    }
    // What the engine's commit adds to plain sled (the epoch record in every
    // batch, the high-water mark written and synced after every flush):
    // the same records into fresh databases, in turn, in this run.
    for writers in [1, 8] {
        let per = total / writers;
        let sessions =
            WorstCase { cells: Cells::new(periods()), next: 0, batch }.sessions(writers, per)?;
        let plain = Raw::plain(&dir.path().join(format!("plain-{writers}")))?;
        let plain_secs = raw_run(&plain, trees, &sessions);
        drop(plain);
        let engine =
            Raw::Engine(Box::new(Sled::open(&dir.path().join(format!("engine-{writers}")))?));
        let engine_secs = raw_run(&engine, trees, &sessions);
        let n = (per * writers) as f64;
        println!(
            "| engine commit (epoch + high-water mark), {writers} writer(s) | {:.0} values/s | | | plain sled: {:.0} values/s | {:.1}% |",
            n / engine_secs,
            n / plain_secs,
            plain_secs / engine_secs * 100.0
        );
    }
    run.server.stop().await?;
    if shapes.contains(&2) {
        realistic_push(dir.path(), seed).await?;
    }
    Ok(())
}

/// The realistic session's table.
async fn realistic_push(dir: &Path, seed: u64) -> anyhow::Result<()> {
    println!();
    let mut realistic = Realistic {
        communes: Communes::new(periods()),
        rng: rand::rngs::StdRng::seed_from_u64(seed),
        seed,
    };
    let run = durable_shape(&mut realistic, dir, "session").await?;
    run.print_disk()?;
    run.server.stop().await?;
    Ok(())
}

async fn initial_pull() -> anyhow::Result<()> {
    let villages = Cells::new(Vec::new()).villages;
    let periods = periods();
    println!();
    println!("initial pull to a fresh tablet (its own sled store in a temp dir)");
    println!(
        "| values | load (Store::push) | server store on disk | process peak RSS after load | \
         setup (bootstrap) | pull | changes pulled | values/s | process peak RSS after pull |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in env_list("FIELDSYNC_BENCH_PULL", "100000") {
        anyhow::ensure!(
            n <= villages.len() * FIELDS.len() * periods.len(),
            "too many values for distinct cells"
        );
        let dir = tempfile::tempdir()?;
        let server = LocalServer::start(&dir.path().join("server"), "127.0.0.1:0", TOKEN).await?;
        // Peak RSS from here on (Linux ≥ 4.0).
        reset_peak_rss();
        let load = Instant::now();
        let store = Arc::clone(&server.store);
        tokio::task::spawn_blocking(move || served::load_cells(&store, n)).await??;
        let load_secs = load.elapsed().as_secs_f64();
        server.store.flush()?;
        let disk = dir_bytes(&dir.path().join("server"));
        let rss_loaded = peak_rss_mib().unwrap_or(f64::NAN);
        let token = server.user("reader", "Surveyor", Role::Surveyor, &[demo::PROVINCE])?;

        let start = Instant::now();
        let engine = Arc::new(Sled::open(&dir.path().join("tablet"))?);
        let tablet = fieldsync_client::init_tablet(engine, &server.url, &token).await?;
        let setup_secs = start.elapsed().as_secs_f64();
        let pull = Instant::now();
        let mut remote = Grpc::connect(&server.url, &token).await?;
        let pulled = sync::pull(&tablet, &mut remote, &Retry::immediate(0), &mut |_| {}).await?;
        let pull_secs = pull.elapsed().as_secs_f64();
        let stored = tablet.synced()?.len();
        anyhow::ensure!(stored == n, "the tablet holds {stored} values, not {n}");
        println!(
            "| {n} | {load_secs:.1} s | {:.0} MiB, {:.0} bytes/value | {rss_loaded:.0} MiB | \
             {setup_secs:.2} s | {pull_secs:.2} s | {pulled} | {:.0} | {:.0} MiB |",
            disk as f64 / 1048576.0,
            disk as f64 / n as f64,
            n as f64 / pull_secs,
            peak_rss_mib().unwrap_or(f64::NAN)
        );
        drop(tablet);
        server.stop().await?;
    }
    Ok(())
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).into_iter().flatten().flatten().fold(0, |sum, entry| {
        match entry.metadata() {
            Ok(m) if m.is_dir() => sum + dir_bytes(&entry.path()),
            Ok(m) => sum + m.len(),
            Err(_) => sum,
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Some(role) = served::child_role().await {
        return role;
    }
    durable_push().await?;
    initial_pull().await?;
    served::served().await?;
    Ok(())
}
