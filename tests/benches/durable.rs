//! Durable push throughput next to the raw sled ceiling, and the initial
//! pull of a fresh tablet.
//!
//! Push: 1, 8 and 64 tablets (one surveyor each, own device id, own gRPC
//! connection) push notes of about 200 bytes to an in-process server on
//! loopback (sled in a temp dir) in batches of `FIELDSYNC_BENCH_BATCH`
//! (default 100); a value counts once its push is answered, i.e. validated,
//! merged, audited, rolled up and flushed. Raw ceiling, same process, same
//! run: the same records (key village‖period‖field, value the note with its
//! author and clock) written by as many writers straight into a
//! `fieldsync_store::Sled` in another temp dir, one committed and flushed
//! batch (one sled transaction + flush) per batch of the same size.
//!
//! A last row pushes the same notes straight into `Store::push` from one
//! writer, without gRPC, to show what the transport adds.
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
//! values per concurrency level, default 25600; `FIELDSYNC_BENCH_TABLETS`,
//! default `1,8,64`; `FIELDSYNC_BENCH_BATCH`, default 100;
//! `FIELDSYNC_BENCH_PULL`, default `100000`, e.g. `100000,1000000`).

use std::sync::Arc;
use std::time::Instant;

use fieldsync::access::Role;
use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{demo, DeviceId, Hlc, Level};
use fieldsync_client::remote::{Grpc, Remote};
use fieldsync_client::sync::{self, Retry};
use fieldsync_server::local::LocalServer;
use fieldsync_store::{Batch, Engine, Sled};

mod common;

use common::{
    cell_mutation, cpu_secs, env, env_list, peak_rss_mib, periods, reset_peak_rss, FIELDS,
};

const TOKEN: &str = "bench-admin-token-0123456789";
const NOTE_BYTES: usize = 200;
fn villages() -> Vec<String> {
    demo::catalogue()
        .org_units
        .values()
        .filter(|u| u.level == Level::Village)
        .map(|u| u.id.clone())
        .collect()
}

/// A surveyor's note of about 200 bytes.
fn note(k: usize) -> String {
    let mut text = format!(
        "Ghi chú {k}: đường thôn đã đổ bê tông, rãnh thoát nước nạo vét xong; \
         còn thiếu sân thể thao"
    );
    while text.len() < NOTE_BYTES {
        text.push('.');
    }
    text
}

/// Distinct note cells, numbered from 0: every village, then the next period.
struct Cells {
    villages: Vec<String>,
    periods: Vec<String>,
}

impl Cells {
    fn note(&self, k: usize) -> (String, String) {
        let v = &self.villages[k % self.villages.len()];
        let p = &self.periods[(k / self.villages.len()) % self.periods.len()];
        (v.clone(), p.clone())
    }

    fn capacity(&self) -> usize {
        self.villages.len() * self.periods.len()
    }
}

fn mutation(cells: &Cells, k: usize, id: u64, author: &str) -> Mutation {
    let (village_id, period) = cells.note(k);
    Mutation {
        id,
        village_id,
        period,
        field: "note".into(),
        value: RawValue::Text(note(k)),
        base_version: 0,
        hlc: Hlc::from_millis(fieldsync_client::now_ms()),
        author: author.to_owned(),
    }
}

/// The raw record of a mutation: key village‖period‖field, value note‖author‖hlc.
fn raw_record(m: &Mutation) -> (Vec<u8>, Vec<u8>) {
    let key = format!("{}\0{}\0{}", m.village_id, m.period, m.field).into_bytes();
    let RawValue::Text(text) = &m.value else { unreachable!("notes only") };
    let mut value = text.as_bytes().to_vec();
    value.extend_from_slice(m.author.as_bytes());
    value.extend_from_slice(&m.hlc.0.to_be_bytes());
    (key, value)
}

/// Pushes `per_tablet` notes from each of `tablets` tablets at once; seconds.
async fn push_run(
    url: &str,
    tokens: &[String],
    cells: &Arc<Cells>,
    first_cell: usize,
    per_tablet: usize,
    batch: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (t, token) in tokens.iter().enumerate() {
        let (url, token, cells) = (url.to_owned(), token.clone(), Arc::clone(cells));
        tasks.push(tokio::spawn(async move {
            let mut remote = Grpc::connect(&url, &token).await?;
            let device = DeviceId(uuid::Uuid::new_v4());
            let author = format!("Surveyor {t}");
            let base = first_cell + t * per_tablet;
            let mut id = 0u64;
            while (id as usize) < per_tablet {
                let n = batch.min(per_tablet - id as usize);
                let ms: Vec<Mutation> = (0..n)
                    .map(|_| {
                        id += 1;
                        mutation(&cells, base + id as usize - 1, id, &author)
                    })
                    .collect();
                let ack = id - n as u64;
                let pushed = remote.push(device, ms, ack).await?;
                anyhow::ensure!(pushed.results.len() == n, "short reply");
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Trees the raw run may spread each record over (a diagnostic:
/// `FIELDSYNC_BENCH_RAW_TREES`, default 1, writes each record to that many).
const RAW_TREES: [&str; 8] = ["raw", "raw1", "raw2", "raw3", "raw4", "raw5", "raw6", "raw7"];

/// Writes the same records straight into sled, `writers` threads at once,
/// one committed (flushed) batch per `batch` records; seconds.
/// Where the raw ceiling writes: plain sled (one `apply_batch` and flush per
/// batch, keys prefixed by tree as the engine does), or the engine itself,
/// whose commit adds the epoch record and the high-water mark.
enum Raw {
    Plain(sled::Db),
    Engine(Box<Sled>),
}

impl Raw {
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

fn raw_run(
    raw: &Raw,
    trees: usize,
    cells: &Cells,
    first_cell: usize,
    writers: usize,
    per_writer: usize,
    batch: usize,
) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            s.spawn(move || {
                let author = format!("Surveyor {w}");
                let base = first_cell + w * per_writer;
                let mut done = 0;
                while done < per_writer {
                    let n = batch.min(per_writer - done);
                    let mut b = Vec::new();
                    for i in done..done + n {
                        let (k, v) = raw_record(&mutation(cells, base + i, i as u64 + 1, &author));
                        for tree in &RAW_TREES[..trees] {
                            b.push((*tree, k.clone(), v.clone()));
                        }
                    }
                    raw.commit(b);
                    done += n;
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

async fn durable_push() -> anyhow::Result<()> {
    let total = env("FIELDSYNC_BENCH_DURABLE_VALUES", 25_600);
    let batch = env("FIELDSYNC_BENCH_BATCH", 100).max(1);
    let levels = env_list("FIELDSYNC_BENCH_TABLETS", "1,8,64");
    let trees = env("FIELDSYNC_BENCH_RAW_TREES", 1).clamp(1, RAW_TREES.len());
    let cells = Arc::new(Cells { villages: villages(), periods: periods() });
    anyhow::ensure!(
        total * (levels.len() + 1) <= cells.capacity(),
        "at most {} values in all: there are not more distinct note cells",
        cells.capacity()
    );
    let dir = tempfile::tempdir()?;
    let server = LocalServer::start(&dir.path().join("server"), "127.0.0.1:0", TOKEN).await?;
    let raw = Raw::Plain(
        sled::Config::new()
            .path(dir.path().join("raw"))
            .cache_capacity(fieldsync_store::CACHE_BYTES)
            .open()?,
    );
    let max = levels.iter().copied().max().unwrap_or(1);
    let tokens = (0..max)
        .map(|i| {
            server.user(
                &format!("surveyor-{i}"),
                &format!("Surveyor {i}"),
                Role::Surveyor,
                &[demo::PROVINCE],
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    println!(
        "durable push: notes of ~{NOTE_BYTES} bytes, batches of {batch}, {total} values per row"
    );
    println!(
        "| tablets | pushed (acknowledged, flushed) | process CPU during the push | \
         raw sled (commit + flush per batch) | ratio |"
    );
    println!("|---|---|---|---|---|");
    let mut first = 0;
    for &c in &levels {
        let per = total / c.max(1);
        let n = per * c;
        let raw_secs = raw_run(&raw, trees, &cells, first, c, per, batch);
        let cpu0 = cpu_secs();
        let push_secs = push_run(&server.url, &tokens[..c], &cells, first, per, batch).await?;
        let push_cpu = cpu_secs().zip(cpu0).map_or(f64::NAN, |(b, a)| b - a);
        first += n;
        let (push_rate, raw_rate) = (n as f64 / push_secs, n as f64 / raw_secs);
        println!(
            "| {c} | {n} values, {push_secs:.2} s: {push_rate:.0} values/s | {push_cpu:.2} s | \
             {raw_secs:.2} s: {raw_rate:.0} values/s | {:.1}% |",
            push_rate / raw_rate * 100.0
        );
    }
    // The same pushes straight into the store, no gRPC: what the transport adds.
    {
        let store = Arc::clone(&server.store);
        let cells = Arc::clone(&cells);
        let (secs, cpu) = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64)> {
            let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
            let device = DeviceId(uuid::Uuid::new_v4());
            let cpu0 = cpu_secs().unwrap_or_default();
            let start = Instant::now();
            let mut id = 0u64;
            while (id as usize) < total {
                let n = batch.min(total - id as usize);
                let ms: Vec<Mutation> = (0..n)
                    .map(|_| {
                        id += 1;
                        mutation(&cells, first + id as usize - 1, id, "Admin")
                    })
                    .collect();
                store.push(&admin, device, &ms, id - n as u64, fieldsync_client::now_ms())?;
            }
            Ok((start.elapsed().as_secs_f64(), cpu_secs().unwrap_or_default() - cpu0))
        })
        .await??;
        println!(
            "| Store::push in process, no gRPC | {total} values, {secs:.2} s: {:.0} values/s | {cpu:.2} s | | |",
            total as f64 / secs
        );
    }
    drop(raw);
    // What the engine's commit adds to plain sled (the epoch record in every
    // batch, the high-water mark written and synced after every flush):
    // the same records into fresh databases, in turn, in this run.
    for writers in [1, 8] {
        let per = total / writers;
        let plain = Raw::Plain(
            sled::Config::new()
                .path(dir.path().join(format!("plain-{writers}")))
                .cache_capacity(fieldsync_store::CACHE_BYTES)
                .open()?,
        );
        let plain_secs = raw_run(&plain, trees, &cells, 0, writers, per, batch);
        drop(plain);
        let engine =
            Raw::Engine(Box::new(Sled::open(&dir.path().join(format!("engine-{writers}")))?));
        let engine_secs = raw_run(&engine, trees, &cells, 0, writers, per, batch);
        let n = (per * writers) as f64;
        println!(
            "| engine commit (epoch + high-water mark), {writers} writer(s) | {:.0} values/s | | plain sled: {:.0} values/s | {:.1}% |",
            n / engine_secs,
            n / plain_secs,
            plain_secs / engine_secs * 100.0
        );
    }
    server.stop().await?;
    Ok(())
}

async fn initial_pull() -> anyhow::Result<()> {
    const LOAD_BATCH: usize = 1_000;
    let villages = villages();
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
        let (vs, ps) = (villages.clone(), periods.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
            let device = DeviceId(uuid::Uuid::new_v4());
            let mut id = 0u64;
            while (id as usize) < n {
                let batch: Vec<Mutation> = (0..LOAD_BATCH.min(n - id as usize))
                    .map(|_| {
                        id += 1;
                        cell_mutation(&vs, &ps, id as usize - 1, id)
                    })
                    .collect();
                store.push(&admin, device, &batch, 0, fieldsync_client::now_ms())?;
            }
            Ok(())
        })
        .await??;
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
    durable_push().await?;
    initial_pull().await?;
    Ok(())
}
