//! Load: N tablets doing a whole sync session at once against one real
//! server (in-process gRPC on loopback, sled in a temp dir, every push
//! flushed before its reply).
//!
//! The catalogue is a synthetic country at national scale (63 provinces,
//! 9,009 communes, 72,072 villages; `FIELDSYNC_BENCH_CATALOGUE=demo` for the
//! 108-village demo province instead). Before the clock starts, every commune
//! a tablet works in is given `FIELDSYNC_BENCH_PRELOAD` values (default 50)
//! from an earlier year, which a new tablet downloads when it bootstraps.
//!
//! Each tablet belongs to a surveyor of its own (one user per tablet, area:
//! one commune, a commune of its own while there are enough) and has a
//! device id of its own. A session is what a new
//! tablet does in the field: `fieldsync init` (connect, status, bootstrap),
//! record 20-100 valid values in the villages of its commune (amounts and
//! notes), then `fieldsync sync` on a new connection (push the outbox, pull
//! until caught up). Tablets keep their local store in memory
//! (`fieldsync_store::Memory`) so the only disk I/O is the server's. No
//! retries: any error fails the session and is counted.
//!
//! The tablets run in a second process (this binary again, told so by
//! `FIELDSYNC_BENCH_PLANS`), so the server's CPU and peak RSS are measured
//! on their own; the load generator reports its own beside them. Both share
//! the machine's cores, as a server and its clients on one host do.
//!
//! `cargo bench -p fieldsync-tests --bench load`
//! (sizes: `FIELDSYNC_BENCH_TABLETS`, default
//! `100,1000`; `FIELDSYNC_BENCH_RAMP_MS`, default 0: spread the session
//! starts evenly over that many milliseconds instead of starting all at once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync::access::Role;
use fieldsync::sync::RawValue;
use fieldsync::{demo, Catalogue, Level};
use fieldsync_client::remote::Grpc;
use fieldsync_client::sync::{self, Retry};
use fieldsync_server::local::LocalServer;
use fieldsync_store::Memory;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[allow(dead_code)] // the value loader is for the other benches
mod common;

use common::{cpu_secs, env, env_list, peak_rss_mib, periods, reset_peak_rss, FIELDS};

const TOKEN: &str = "bench-admin-token-0123456789";
/// Periods each tablet may record in; tablets of one commune use different ones,
/// so their edits do not meet as conflicts.
const PERIODS_PER_TABLET: usize = 4;
/// A valid value for `field`.
fn value(field: &str, rng: &mut StdRng) -> RawValue {
    match field {
        "road_km" | "drainage_km" | "canal_km" => RawValue::Amount(format!(
            "{}.{:02}",
            rng.random_range(0..150),
            rng.random_range(0..100)
        )),
        "playground" => RawValue::Amount(rng.random_range(0..=20).to_string()),
        "note" => RawValue::Text(format!(
            "Thôn đã hoàn thành {} hạng mục; kiểm tra lại số liệu kênh mương.",
            rng.random_range(1..10)
        )),
        _ => RawValue::Amount(rng.random_range(0..=10).to_string()),
    }
}

/// What one tablet records: (village, period) → edits.
type Plan = Vec<((String, String), Vec<(String, RawValue)>)>;

/// Where the tablets' process finds its plans, and the server's address.
const PLANS_VAR: &str = "FIELDSYNC_BENCH_PLANS";
const URL_VAR: &str = "FIELDSYNC_BENCH_URL";

#[derive(serde::Serialize, serde::Deserialize)]
struct Tablet {
    token: String,
    plan: Plan,
    values: usize,
}

/// One surveyor per tablet, each covering one commune; 20-100 edits each.
fn tablets(server: &LocalServer, cat: &Catalogue, n: usize) -> anyhow::Result<Vec<Tablet>> {
    let communes: Vec<&str> = cat
        .org_units
        .values()
        .filter(|u| u.level == Level::Commune)
        .map(|u| u.id.as_str())
        .collect();
    let periods = &periods()[1..];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let commune = communes[i % communes.len()];
        let slot = i / communes.len();
        let villages: Vec<&str> =
            cat.units_at(Level::Village, Some(commune)).iter().map(|u| u.id.as_str()).collect();
        let mut cells = Vec::new();
        for p in &periods[slot * PERIODS_PER_TABLET..(slot + 1) * PERIODS_PER_TABLET] {
            for v in &villages {
                for f in FIELDS {
                    cells.push((v.to_string(), p.clone(), f));
                }
            }
        }
        let mut rng = StdRng::seed_from_u64(i as u64);
        cells.shuffle(&mut rng);
        let values = rng.random_range(20..=100).min(cells.len());
        let mut plan = BTreeMap::<_, Vec<_>>::new();
        for (village, period, field) in cells.into_iter().take(values) {
            let v = value(field, &mut rng);
            plan.entry((village, period)).or_default().push((field.to_owned(), v));
        }
        let plan = plan.into_iter().collect();
        let id = format!("surveyor-{i}");
        let token = server.user(&id, &format!("Surveyor {i}"), Role::Surveyor, &[commune])?;
        out.push(Tablet { token, plan, values });
    }
    Ok(out)
}

/// The national-scale synthetic country, or the demo province.
fn catalogue() -> Catalogue {
    match std::env::var("FIELDSYNC_BENCH_CATALOGUE").as_deref() {
        Ok("demo") => demo::catalogue(),
        _ => demo::country(63, 11, 13, 8),
    }
}

/// Loads `per_commune` values of year 2000 into each commune the first `n`
/// tablets work in (straight into the store, as an admin); how many.
fn preload(
    server: &LocalServer,
    cat: &Catalogue,
    n: usize,
    per_commune: usize,
) -> anyhow::Result<usize> {
    let admin = server.store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
    let communes = cat.units_at(Level::Commune, None);
    let device = fieldsync::DeviceId(uuid::Uuid::new_v4());
    let mut rng = StdRng::seed_from_u64(u64::MAX);
    let (mut id, mut loaded) = (0u64, 0usize);
    for commune in communes.iter().take(n) {
        let villages = cat.units_at(Level::Village, Some(&commune.id));
        let batch: Vec<fieldsync::sync::Mutation> = (0..per_commune)
            .map(|k| {
                id += 1;
                let field = FIELDS[k % FIELDS.len()];
                fieldsync::sync::Mutation {
                    id,
                    village_id: villages[(k / FIELDS.len()) % villages.len()].id.clone(),
                    period: "2000".into(),
                    field: field.into(),
                    value: value(field, &mut rng),
                    base_version: 0,
                    hlc: fieldsync::Hlc::from_millis(fieldsync_client::now_ms()),
                    author: "Admin".into(),
                }
            })
            .collect();
        let results = server.store.push(&admin, device, &batch, id, fieldsync_client::now_ms())?;
        loaded += results.iter().filter(|r| r.outcome == fieldsync::sync::Outcome::Applied).count();
    }
    Ok(loaded)
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Done {
    pushed: usize,
    applied: usize,
    conflicts: usize,
    rejected: usize,
    pulled: usize,
}

/// How long one session spent in each step: init (connect, status,
/// bootstrap), record, sync's connect and push, and its pull.
type Steps = [Duration; 4];

/// The steps as the report prints them.
const STEPS: [&str; 4] = ["init", "record", "connect + push", "pull"];

/// A failed session: the step that failed, when (since the session began) and why.
struct Failed {
    step: &'static str,
    after: Duration,
    error: fieldsync_client::Error,
}

/// init, record, sync (push, then pull), as a surveyor does.
async fn session(url: &str, t: Tablet) -> Result<(Done, Steps), Failed> {
    let began = Instant::now();
    let mut steps = [Duration::ZERO; 4];
    let mut lap = began;
    let mut split = |step: usize| {
        let now = Instant::now();
        steps[step] = now - lap;
        lap = now;
    };
    let fail = |step| move |error| Failed { step, after: began.elapsed(), error };
    let tablet = fieldsync_client::init_tablet(Arc::new(Memory::new()), url, &t.token)
        .await
        .map_err(fail("init (connect, status, bootstrap)"))?;
    split(0);
    for ((village, period), edits) in &t.plan {
        tablet
            .record(village, period, edits, fieldsync_client::now_ms())
            .map_err(fail("record"))?;
    }
    split(1);
    let mut remote = Grpc::connect(url, &t.token).await.map_err(fail("sync: connect"))?;
    let retry = Retry::immediate(0);
    let report =
        sync::push(&tablet, &mut remote, &retry, &mut |_| {}).await.map_err(fail("sync: push"))?;
    split(2);
    let pulled =
        sync::pull(&tablet, &mut remote, &retry, &mut |_| {}).await.map_err(fail("sync: pull"))?;
    split(3);
    let done = Done {
        pushed: t.values,
        applied: report.applied,
        conflicts: report.conflicts,
        rejected: report.rejected,
        pulled,
    };
    Ok((done, steps))
}

/// The kernel's count of connections dropped because a listen queue was full
/// (TcpExt ListenOverflows in /proc/net/netstat; the whole machine's).
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the tablets' process reports: every session's latency (ms), the
/// sums, the failures ((step, error) → count, earliest and latest second
/// into the session), and its own CPU seconds and peak RSS (MiB).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Report {
    latencies_ms: Vec<f64>,
    /// Each successful session's [`Steps`], in ms.
    steps_ms: Vec<[f64; 4]>,
    total: Done,
    errors: Vec<(String, String, usize, f64, f64)>,
    cpu: Option<f64>,
    rss: Option<f64>,
}

/// The tablets' process: runs every session of the plans file against the
/// server at `url`, all at once (or spread over `ramp`), and prints a
/// [`Report`] as one line of JSON.
async fn run_tablets(plans: &str, url: &str, ramp: Duration) -> anyhow::Result<()> {
    let plans: Vec<Tablet> = serde_json::from_slice(&std::fs::read(plans)?)?;
    let n = plans.len();
    let tasks: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let url = url.to_owned();
            let delay = ramp.mul_f64(i as f64 / n as f64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let began = Instant::now();
                let done = session(&url, t).await;
                (began.elapsed(), done)
            })
        })
        .collect();
    let mut report = Report::default();
    // (step, error) → (count, earliest, latest) time into the session.
    let mut errors: BTreeMap<(&str, String), (usize, Duration, Duration)> = BTreeMap::new();
    for t in tasks {
        let (took, done) = t.await?;
        match done {
            Ok((d, steps)) => {
                report.latencies_ms.push(took.as_secs_f64() * 1e3);
                report.steps_ms.push(steps.map(|s| s.as_secs_f64() * 1e3));
                let total = &mut report.total;
                total.pushed += d.pushed;
                total.applied += d.applied;
                total.conflicts += d.conflicts;
                total.rejected += d.rejected;
                total.pulled += d.pulled;
            }
            Err(f) => {
                let e =
                    errors.entry((f.step, f.error.to_string())).or_insert((0, f.after, f.after));
                e.0 += 1;
                e.1 = e.1.min(f.after);
                e.2 = e.2.max(f.after);
            }
        }
    }
    report.errors = errors
        .into_iter()
        .map(|((step, e), (count, first, last))| {
            (step.to_owned(), e, count, first.as_secs_f64(), last.as_secs_f64())
        })
        .collect();
    report.cpu = cpu_secs();
    report.rss = peak_rss_mib();
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ramp = Duration::from_millis(
        std::env::var("FIELDSYNC_BENCH_RAMP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0),
    );
    if let (Ok(plans), Ok(url)) = (std::env::var(PLANS_VAR), std::env::var(URL_VAR)) {
        return run_tablets(&plans, &url, ramp).await;
    }
    println!("fieldsync load bench: N tablets, one session each, all at once, on loopback");
    println!(
        "(tablet stores in memory, in a second process; the server's CPU and peak RSS are its own)"
    );
    if !ramp.is_zero() {
        println!("(session starts spread evenly over {} ms)", ramp.as_millis());
    }
    let preload_per_commune = env("FIELDSYNC_BENCH_PRELOAD", 50);
    let units = catalogue().org_units.len();
    println!("(catalogue: {units} org units; {preload_per_commune} earlier values per commune)");
    for n in env_list("FIELDSYNC_BENCH_TABLETS", "100,1000") {
        let dir = tempfile::tempdir()?;
        let cat = Arc::new(catalogue());
        let for_store = Arc::clone(&cat);
        let server = LocalServer::start_with(dir.path(), "127.0.0.1:0", TOKEN, move || {
            Arc::unwrap_or_clone(for_store)
        })
        .await?;
        let setup = Instant::now();
        let plans = tablets(&server, &cat, n)?;
        let preloaded = preload(&server, &cat, n, preload_per_commune)?;
        let plans_file = dir.path().join("plans.json");
        std::fs::write(&plans_file, serde_json::to_vec(&plans)?)?;
        drop(plans);
        let setup_secs = setup.elapsed().as_secs_f64();

        // The server's peak RSS from here on (Linux ≥ 4.0); CPU is a difference.
        let hwm_reset = reset_peak_rss();
        let cpu0 = cpu_secs();
        let overflows0 = listen_overflows();
        let start = Instant::now();
        let mut tablets = std::process::Command::new(std::env::current_exe()?);
        tablets.env(PLANS_VAR, &plans_file).env(URL_VAR, &server.url);
        let out = tokio::task::spawn_blocking(move || tablets.output()).await??;
        let wall = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            out.status.success(),
            "the tablets' process failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Report = serde_json::from_slice(&out.stdout)?;
        let overflows = listen_overflows().zip(overflows0).map(|(b, a)| b - a);
        let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
        let rss = peak_rss_mib();
        let mut latencies: Vec<Duration> =
            report.latencies_ms.iter().map(|ms| Duration::from_secs_f64(ms / 1e3)).collect();
        latencies.sort_unstable();
        let ok = latencies.len();
        let failed: usize = report.errors.iter().map(|e| e.2).sum();
        let total = &report.total;

        println!();
        println!(
            "N = {n} tablets ({n} surveyors created and {preloaded} earlier values loaded in \
             {setup_secs:.1} s before the clock starts)"
        );
        println!(
            "  sessions: {ok} succeeded, {failed} failed, wall {wall:.2} s, {:.1} sessions/s",
            ok as f64 / wall
        );
        println!(
            "  session latency: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            percentile(&latencies, 50.0).as_secs_f64() * 1e3,
            percentile(&latencies, 99.0).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        println!(
            "  values: {} recorded, {} applied, {} conflicts, {} rejected; {} changes pulled",
            total.pushed, total.applied, total.conflicts, total.rejected, total.pulled
        );
        print_steps(&report.steps_ms);
        match cpu {
            Some(c) => println!(
                "  server CPU: {c:.2} s ({:.0}% of one core over the wall time)",
                c / wall * 100.0
            ),
            None => println!("  server CPU: unavailable (no /proc/self/stat)"),
        }
        match rss {
            Some(r) => println!(
                "  server peak RSS: {r:.0} MiB ({})",
                if hwm_reset { "since the load started" } else { "since the process started" }
            ),
            None => println!("  server peak RSS: unavailable (no /proc/self/status)"),
        }
        if let (Some(c), Some(r)) = (report.cpu, report.rss) {
            println!("  load generator (the tablets' process): CPU {c:.2} s, peak RSS {r:.0} MiB");
        }
        if let Some(o) = overflows {
            println!("  kernel listen-queue overflows during the run (whole machine): {o}");
        }
        for (step, e, count, first, last) in &report.errors {
            println!("  failed ×{count} in {step}, {first:.1}-{last:.1} s into the session: {e}");
        }
        server.stop().await?;
    }
    Ok(())
}

/// The p50 and p99 of each step of the sessions that succeeded.
fn print_steps(steps_ms: &[[f64; 4]]) {
    let parts: Vec<String> = STEPS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut took: Vec<Duration> =
                steps_ms.iter().map(|s| Duration::from_secs_f64(s[i] / 1e3)).collect();
            took.sort_unstable();
            let ms = |p| percentile(&took, p).as_secs_f64() * 1e3;
            format!("{name} {:.0}/{:.0}", ms(50.0), ms(99.0))
        })
        .collect();
    println!("  steps, p50/p99 ms: {}", parts.join(", "));
}
