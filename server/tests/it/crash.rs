//! Crash harness: the real `fieldsync-server` binary runs as a child process
//! while several tablets record, push and pull, and a commune and a district
//! supervisor decide and settle conflicts, all at once. At a random moment,
//! usually with syncs in flight, the server is killed with SIGKILL and started
//! again on the same port and data directory. Tablets crash too: a sync is cut
//! off after a tiny random time (its future dropped mid-way) and the tablet is
//! reopened from its sled directory. At the end (no more kills) every tablet
//! syncs until nothing moves, the server is killed one last time and its store
//! opened directly, and:
//! - every mutation a tablet made is on the server exactly once (one audit
//!   entry per device and mutation id, and the device's last mutation id is
//!   the tablet's count); after every restart, nothing a tablet had been
//!   acknowledged was lost;
//! - every tablet holds the server's fields, conflicts and review decisions;
//! - every invariant of the store holds (`Store::check`, rollups included).
//!
//! By default a short run (6 kill cycles, 4 tablets) for CI. The full run:
//!
//! ```text
//! FIELDSYNC_CRASH_CYCLES=50 cargo test -p fieldsync-server --test it crash:: -- --nocapture
//! ```
//!
//! `FIELDSYNC_SEED=N` picks the seed (a failure prints it), `FIELDSYNC_CRASH_TABLETS=K`
//! the number of tablets. The seed fixes every random choice (edits, steps,
//! verdicts, kill and cut-off delays); how those land against the real
//! process's timing does not repeat exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync::sync::{AuditKind, FieldState, Mutation, RawValue};
use fieldsync::{demo, DeviceId, Period, SubmissionId};
use fieldsync_client::local::Tablet;
use fieldsync_client::remote::Remote;
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{init_tablet, Error, Grpc};
use fieldsync_proto::v1;
use fieldsync_server::Store;
use fieldsync_store::Sled;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

const ADMIN_TOKEN: &str = "crash-harness-admin-token-0123456789";
const DEFAULT_SEED: u64 = 20_240_601;
const DEFAULT_CYCLES: usize = 6;
const DEFAULT_TABLETS: usize = 4;
/// Random steps each tablet takes in one kill cycle.
const STEPS: usize = 8;
/// Random moves of the supervisors in one kill cycle.
const REVIEW_STEPS: usize = 4;

const VILLAGES: [&str; 3] =
    [demo::SAMPLE_VILLAGE, "ha-tinh.huong-khe.phuc-dong.thon-2", "ha-tinh.can-loc.gia-hanh.thon-1"];
const PERIODS: [&str; 2] = ["2022", "2023-Q1"];
const FIELDS: [&str; 5] =
    ["road_km", "road_cement_km", "playground", "village_cultural_house", "note"];

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Prints the seed (and keeps the server's directory and log) if the test
/// panics while it is alive.
struct SeedGuard {
    seed: u64,
    root: Option<TempDir>,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "crash harness failed with seed {0}: rerun with FIELDSYNC_SEED={0}",
                self.seed
            );
            if let Some(root) = self.root.take() {
                let kept = root.keep();
                eprintln!("server data and log kept in {}", kept.display());
            }
        }
    }
}

/// The `fieldsync-server` child process, on a fixed port and data directory.
struct Server {
    port: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let child = Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port), "--data"])
            .arg(&self.data)
            .env("FIELDSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start fieldsync-server");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Starts the server and waits until it accepts connections (it listens
    /// only once its store is open).
    async fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if Grpc::connect(&self.url(), ADMIN_TOKEN).await.is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("poll server") {
                // The port may still be held a moment after a kill: try again.
                assert!(Instant::now() < deadline, "the server keeps exiting: {status}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.spawn();
                continue;
            }
            assert!(Instant::now() < deadline, "the server did not come up in 30 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Counters shared by everyone.
#[derive(Default)]
struct Stats {
    in_flight: AtomicUsize,
    syncs_ok: AtomicUsize,
    syncs_failed: AtomicUsize,
    syncs_cut: AtomicUsize,
    tablet_crashes: AtomicUsize,
    decisions: AtomicUsize,
    settlements: AtomicUsize,
}

fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A tablet with its sled directory, and every mutation it ever made.
struct Device {
    index: usize,
    dir: TempDir,
    token: String,
    tablet: Option<Tablet>,
    made: Vec<Mutation>,
    /// Errors a retry cannot fix, seen during the run, with their cycle.
    refusals: Vec<String>,
}

impl Device {
    fn tablet(&self) -> &Tablet {
        self.tablet.as_ref().expect("tablet open")
    }

    /// The tablet app dies and starts again: only its sled directory remains.
    async fn crash(&mut self) {
        self.tablet = None;
        let dir = self.dir.path().to_owned();
        let engine = tokio::task::spawn_blocking(move || Sled::open(&dir))
            .await
            .expect("reopen task")
            .expect("reopen the tablet's store");
        let tablet = Tablet::open(Arc::new(engine)).expect("open tablet");
        let next = tablet.meta().next_mutation_id;
        assert_eq!(
            next,
            self.made.len() as u64 + 1,
            "tablet {} forgot recorded edits across a crash",
            self.index
        );
        self.tablet = Some(tablet);
    }

    fn record(&mut self, rng: &mut StdRng) {
        let village = VILLAGES[rng.random_range(0..VILLAGES.len())];
        let period = PERIODS[rng.random_range(0..PERIODS.len())];
        let edits: Vec<(String, RawValue)> = (0..rng.random_range(1..=3))
            .map(|_| {
                let field = FIELDS[rng.random_range(0..FIELDS.len())];
                (field.to_owned(), random_value(rng, field))
            })
            .collect();
        match self.tablet().record(village, period, &edits, fieldsync_client::now_ms()) {
            Ok(made) => self.made.extend(made),
            // A part above its whole, or a report the tablet knows is locked.
            Err(Error::Invalid(_) | Error::NotFound(_)) => {}
            Err(e) => panic!("tablet {} could not record: {e}", self.index),
        }
    }

    /// One sync; `cut` drops it after that long, and the tablet crashes.
    async fn sync(&mut self, url: &str, cut: Option<Duration>, stats: &Stats, cycle: usize) {
        let retry = Retry {
            retries: 4,
            first_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(400),
            ..Retry::default()
        };
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        let run = async {
            let mut remote = Grpc::connect(url, &self.token).await?;
            sync::sync(self.tablet(), &mut remote, &retry, &mut |_| {}).await
        };
        let outcome = match cut {
            Some(after) => tokio::time::timeout(after, run).await.ok(),
            None => Some(run.await),
        };
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Some(Ok(_)) => bump(&stats.syncs_ok),
            Some(Err(e)) => {
                bump(&stats.syncs_failed);
                if !e.is_transient() {
                    self.refusals.push(format!("cycle {cycle}: {e}"));
                }
            }
            None => {
                bump(&stats.syncs_cut);
                bump(&stats.tablet_crashes);
                self.crash().await;
            }
        }
    }

    /// A kill cycle's worth of random steps.
    async fn run(mut self, url: String, seed: u64, cycle: usize, stats: Arc<Stats>) -> Device {
        let mut rng = StdRng::seed_from_u64(seed ^ ((cycle as u64) << 16) ^ self.index as u64);
        for _ in 0..STEPS {
            match rng.random_range(0..100) {
                0..=39 => self.record(&mut rng),
                40..=64 => self.sync(&url, None, &stats, cycle).await,
                // Cut off mid-way: the future is dropped, the tablet dies.
                65..=84 => {
                    let cut = Duration::from_micros(rng.random_range(0..25_000));
                    self.sync(&url, Some(cut), &stats, cycle).await;
                }
                85..=92 => tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await,
                _ => {
                    bump(&stats.tablet_crashes);
                    self.crash().await;
                }
            }
        }
        self
    }
}

fn random_value(rng: &mut StdRng, field: &str) -> RawValue {
    if rng.random_bool(0.1) {
        return RawValue::Deleted;
    }
    match field {
        "note" => {
            RawValue::Text(["đường bê tông", "kênh mương", "thôn 3"][rng.random_range(0..3)].into())
        }
        "road_km" | "road_cement_km" => {
            RawValue::Amount(format!("{}.{}", rng.random_range(0..4), rng.random_range(0..10)))
        }
        _ => RawValue::Amount(rng.random_range(0..4).to_string()),
    }
}

/// The commune and district supervisors' tokens.
struct Reviewers {
    commune: String,
    district: String,
}

/// A supervisor's random moves through the Review service: settle an open
/// conflict, or decide on a submission. Refusals (an open conflict blocks
/// approval, a transition that does not apply, the server being down) are
/// part of the game.
async fn review(url: String, who: Arc<Reviewers>, seed: u64, cycle: usize, stats: Arc<Stats>) {
    let mut rng = StdRng::seed_from_u64(seed ^ ((cycle as u64) << 16) ^ 0xdec1de);
    for _ in 0..REVIEW_STEPS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
        let verdict = [
            v1::Verdict::Approve,
            v1::Verdict::Accept,
            v1::Verdict::Reject,
            v1::Verdict::Return,
            v1::Verdict::Reopen,
        ][rng.random_range(0..5)];
        let district = verdict == v1::Verdict::Accept
            || verdict == v1::Verdict::Reopen
            || rng.random_bool(0.2);
        let token = if district { &who.district } else { &who.commune };
        let Ok(remote) = Grpc::connect(&url, token).await else { continue };
        let mut client = remote.review();
        if rng.random_bool(0.5) {
            let request = v1::ListConflictsRequest { limit: 50, ..Default::default() };
            let Ok(reply) = client.list_conflicts(request).await else { continue };
            let open: Vec<_> =
                reply.into_inner().conflicts.into_iter().filter(|c| c.open).collect();
            if !open.is_empty() {
                let c = &open[rng.random_range(0..open.len())];
                let pick = rng.random_range(0..c.candidates.len().max(1)) as u32;
                let request = v1::ResolveConflictRequest {
                    village_id: c.village_id.clone(),
                    period: c.period.clone(),
                    field: c.field.clone(),
                    choice: Some(v1::resolve_conflict_request::Choice::Pick(pick)),
                    comment: "kiểm tra tại chỗ".into(),
                };
                if client.resolve_conflict(request).await.is_ok() {
                    bump(&stats.settlements);
                }
                continue;
            }
        }
        let request = v1::DecideRequest {
            verdict: verdict as i32,
            reason: "số liệu chưa khớp".into(),
            submissions: vec![v1::SubmissionKey {
                village_id: VILLAGES[rng.random_range(0..VILLAGES.len())].into(),
                period: PERIODS[rng.random_range(0..PERIODS.len())].into(),
            }],
            ..Default::default()
        };
        if let Ok(reply) = client.decide(request).await {
            if !reply.into_inner().changed.is_empty() {
                bump(&stats.decisions);
            }
        }
    }
}

/// Creates a user through the Admin service and returns a token for it.
async fn user(admin: &Grpc, id: &str, role: v1::Role, areas: Vec<String>) -> String {
    let user = v1::User {
        id: id.into(),
        name: format!("Người dùng {id}"),
        role: role as i32,
        areas,
        disabled: false,
    };
    let mut client = admin.admin();
    client.create_user(v1::CreateUserRequest { user: Some(user) }).await.expect("create user");
    let request =
        v1::IssueTokenRequest { user_id: id.into(), expires_in_s: 0, label: "crash".into() };
    client.issue_token(request).await.expect("issue token").into_inner().token
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn sorted(mut states: Vec<FieldState>) -> Vec<FieldState> {
    states.sort_by(|a, b| {
        (a.at.submission, a.at.field.clone()).cmp(&(b.at.submission, b.at.field.clone()))
    });
    states
}

fn raw_matches(raw: &RawValue, value: &fieldsync::Value) -> bool {
    use fieldsync::Value;
    match (raw, value) {
        (RawValue::Amount(a), Value::Amount(b)) => {
            a.parse::<fieldsync::Amount>().is_ok_and(|a| a == *b)
        }
        (RawValue::Text(a), Value::Text(b)) => a == b,
        (RawValue::Point(a), Value::Point(b)) => a == b,
        (RawValue::Deleted, Value::Deleted) => true,
        _ => false,
    }
}

/// After a restart, with every tablet idle: nothing a tablet had been
/// acknowledged is missing on the server.
async fn check_acknowledged(url: &str, devices: &[Device], cycle: usize) {
    for d in devices {
        let meta = d.tablet().meta();
        let mut remote = Grpc::connect(url, &d.token).await.expect("connect after restart");
        let status = remote.status(meta.device).await.expect("status after restart");
        assert!(
            status.last_mutation_id >= meta.acknowledged_through,
            "cycle {cycle}: tablet {} was acknowledged through mutation {} but the server's last \
             is {}: an acknowledged write was lost",
            d.index,
            meta.acknowledged_through,
            status.last_mutation_id
        );
        assert!(
            status.last_mutation_id <= d.made.len() as u64,
            "cycle {cycle}: the server has mutation {} of tablet {}, which made only {}",
            status.last_mutation_id,
            d.index,
            d.made.len()
        );
    }
}

/// Opens the dead server's store and checks everything; returns figures.
fn verify(data: &Path, devices: &[Device], stats: &Stats) -> BTreeMap<String, usize> {
    let engine = Sled::open(data).expect("open the server's store");
    let store = Store::open(Arc::new(engine), demo::catalogue).expect("open store");

    // Every invariant of the store, totals against a recomputation included.
    let problems = store.check().unwrap();
    assert!(problems.is_empty(), "the store's invariants do not hold: {problems:#?}");

    let subs = store.submissions().unwrap();
    let mut server_fields = Vec::new();
    let mut trail = Vec::new();
    for sub in &subs {
        server_fields.extend(store.fields_of(&sub.village_id, sub.period).unwrap());
        trail.extend(store.audit_of(&sub.village_id, sub.period).unwrap());
    }
    let server_fields = sorted(server_fields);
    let server_conflicts = store.conflicts().unwrap();
    let mut server_reviews: Vec<_> = subs.iter().map(|h| h.review.clone()).collect();
    server_reviews.sort_by_key(|r| r.submission);

    let mutation_kinds =
        [AuditKind::Value, AuditKind::Conflict, AuditKind::Unchanged, AuditKind::Refused];
    let mut by_mutation: HashMap<(DeviceId, u64), Vec<_>> = HashMap::new();
    let mut figures: BTreeMap<String, usize> = BTreeMap::new();
    for e in &trail {
        if let Some(device) = e.device.filter(|_| mutation_kinds.contains(&e.kind)) {
            by_mutation.entry((device, e.mutation_id)).or_default().push(e);
        }
        *figures.entry(format!("audit {}", e.kind.as_str())).or_default() += 1;
    }

    let mut made = 0;
    for d in devices {
        let t = d.tablet();
        let i = d.index;
        let device = t.meta().device;
        assert_eq!(t.outbox_len().unwrap(), 0, "tablet {i} still has pending edits");
        let last = store.device(device).unwrap().last_mutation_id;
        assert_eq!(last, d.made.len() as u64, "tablet {i}: the server's last mutation id");
        for m in &d.made {
            let entries = by_mutation.remove(&(device, m.id)).unwrap_or_default();
            assert_eq!(
                entries.len(),
                1,
                "tablet {i} mutation {} is in the audit trail {} times: {entries:#?}",
                m.id,
                entries.len()
            );
            let e = entries[0];
            let period: Period = m.period.parse().unwrap();
            assert_eq!(e.submission, Some(SubmissionId::of(&m.village_id, period)));
            assert_eq!(e.field, m.field, "tablet {i} mutation {} field", m.id);
            if e.kind != AuditKind::Refused {
                let kept = e.new.as_ref().is_some_and(|v| raw_matches(&m.value, v));
                assert!(kept, "tablet {i} mutation {}: audit holds {:?}", m.id, e.new);
            }
        }
        made += d.made.len();
        assert_eq!(sorted(t.synced().unwrap()), server_fields, "tablet {i} fields differ");
        assert_eq!(t.conflicts().unwrap(), server_conflicts, "tablet {i} conflicts differ");
        let mut reviews = t.reviews().unwrap();
        reviews.sort_by_key(|r| r.submission);
        assert_eq!(reviews, server_reviews, "tablet {i} review decisions differ");
    }
    assert!(by_mutation.is_empty(), "mutations no tablet made: {:?}", by_mutation.keys());

    // Supervisors' calls are not idempotent: an unanswered one may have landed.
    let resolves = figures.get("audit resolve").copied().unwrap_or(0);
    let settled = stats.settlements.load(Ordering::Relaxed);
    assert!(resolves >= settled, "{settled} settlements acknowledged, {resolves} in the audit");
    let reviews = figures.get("audit review").copied().unwrap_or(0);
    let decided = stats.decisions.load(Ordering::Relaxed);
    assert!(reviews >= decided, "{decided} decisions acknowledged, {reviews} in the audit");

    figures.insert("mutations".into(), made);
    figures.insert("submissions".into(), subs.len());
    figures.insert("fields".into(), server_fields.len());
    figures.insert("conflicts".into(), server_conflicts.len());
    figures.insert("open conflicts".into(), server_conflicts.iter().filter(|c| c.open).count());
    for r in &server_reviews {
        *figures.entry(format!("reports {}", r.state)).or_default() += 1;
    }
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_server_and_tablet_crashes() {
    let seed = env("FIELDSYNC_SEED").unwrap_or(DEFAULT_SEED);
    let cycles = env("FIELDSYNC_CRASH_CYCLES").map_or(DEFAULT_CYCLES, |c| c as usize);
    let tablets = env("FIELDSYNC_CRASH_TABLETS").map_or(DEFAULT_TABLETS, |t| t as usize);
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let log = root.path().join("server.log");
    let mut guard = SeedGuard { seed, root: Some(root) };
    let began = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    eprintln!("crash harness: seed {seed}, {cycles} kill cycles, {tablets} tablets");

    let mut server = Server { port: free_port(), data: data.clone(), log, child: None, starts: 0 };
    server.start().await;
    let url = server.url();

    // Users through the Admin service, as an operator would.
    let admin = Grpc::connect(&url, ADMIN_TOKEN).await.expect("connect as admin");
    let communes = VILLAGES.iter().map(|v| v.rsplit_once('.').unwrap().0.to_owned());
    let districts = VILLAGES.iter().map(|v| v.splitn(3, '.').take(2).collect::<Vec<_>>().join("."));
    let reviewers = Arc::new(Reviewers {
        commune: user(&admin, "commune", v1::Role::Supervisor, communes.collect()).await,
        district: user(&admin, "district", v1::Role::Supervisor, districts.collect()).await,
    });
    let mut devices = Vec::new();
    for index in 0..tablets {
        let areas = vec![demo::PROVINCE.to_owned()];
        let token = user(&admin, &format!("surveyor-{index}"), v1::Role::Surveyor, areas).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Arc::new(Sled::open(dir.path()).expect("open tablet store"));
        let tablet = init_tablet(engine, &url, &token).await.expect("init tablet");
        devices.push(Device {
            index,
            dir,
            token,
            tablet: Some(tablet),
            made: Vec::new(),
            refusals: Vec::new(),
        });
    }
    drop(admin);

    let stats = Arc::new(Stats::default());
    let mut kills_in_flight = 0;
    for cycle in 0..cycles {
        let mut work = tokio::task::JoinSet::new();
        let mut running = Vec::new();
        for d in devices.drain(..) {
            running.push(tokio::spawn(d.run(url.clone(), seed, cycle, Arc::clone(&stats))));
        }
        work.spawn(review(url.clone(), Arc::clone(&reviewers), seed, cycle, Arc::clone(&stats)));

        // SIGKILL at a random moment while the tablets work.
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..150))).await;
        if stats.in_flight.load(Ordering::SeqCst) > 0 {
            kills_in_flight += 1;
        }
        server.kill();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..200))).await;
        server.start().await;

        for handle in running {
            devices.push(handle.await.expect("tablet task"));
        }
        while let Some(done) = work.join_next().await {
            done.expect("supervisor task");
        }
        check_acknowledged(&url, &devices, cycle).await;
    }

    // No more kills: everyone syncs until a round in which nobody pushed.
    let retry = Retry::default();
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 6, "still pushing after 5 rounds of syncs without faults");
        let mut pushed = 0;
        for d in &devices {
            let mut remote = Grpc::connect(&url, &d.token).await.expect("connect");
            let report = sync::sync(d.tablet(), &mut remote, &retry, &mut |_| {})
                .await
                .unwrap_or_else(|e| panic!("tablet {} cannot sync at the end: {e}", d.index));
            pushed += report.pushed();
        }
        if pushed == 0 {
            break;
        }
    }
    for d in &devices {
        assert!(d.refusals.is_empty(), "tablet {} was refused: {:#?}", d.index, d.refusals);
    }

    // Killed one last time: what is on disk is what was acknowledged.
    server.kill();
    let figures = verify(&data, &devices, &stats);
    let s = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    eprintln!(
        "crash harness: seed {seed}: {cycles} SIGKILLs ({kills_in_flight} with syncs in flight), \
         {} server starts, {tablets} tablets, {} syncs ok, {} failed, {} cut off mid-way, \
         {} tablet crashes, {} decisions and {} settlements acknowledged, {rounds} final rounds, \
         {:.1} s",
        server.starts,
        s(&stats.syncs_ok),
        s(&stats.syncs_failed),
        s(&stats.syncs_cut),
        s(&stats.tablet_crashes),
        s(&stats.decisions),
        s(&stats.settlements),
        began.elapsed().as_secs_f64()
    );
    eprintln!("crash harness: {figures:?}");
    guard.root = None;
}
