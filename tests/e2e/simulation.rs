//! Randomized sync simulation. Several tablets record random edits and deletes
//! offline and sync in random order against one server, through a link that
//! fails before commit, drops replies after commit, and cuts pulls short; the
//! server and tablets restart at random. Over many seeds:
//! - every tablet converges to the server's state (fields and conflicts);
//! - every mutation reaches the server exactly once, and its value is current,
//!   in the field's history, in a conflict, or in the tablet's refusals.
//!
//! `FIELDSYNC_SEED=N` replays one seed; `FIELDSYNC_SEEDS=K` runs K seeds.
//! A failure names its seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use fieldsync::access::{Role, User};
use fieldsync::review::Verdict;
use fieldsync::sync::{
    AuditKind, FieldRef, FieldState, Mutation, MutationResult, Outcome, Page, RawValue,
};
use fieldsync::{demo, DeviceId, FieldKey, Hlc, Period};
use fieldsync_client::local::{Meta, Tablet};
use fieldsync_client::remote::{Pushed, Remote, ServerStatus};
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{Error, Result};
use fieldsync_server::db::Choice;
use fieldsync_server::Store;
use fieldsync_store::{Engine, Memory};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TABLETS: usize = 6;
const STEPS: usize = 250;
const DEFAULT_SEEDS: u64 = 40;
const PAGE: usize = 7;

const VILLAGES: [&str; 3] =
    [demo::SAMPLE_VILLAGE, "ha-tinh.huong-khe.phuc-dong.thon-2", "ha-tinh.can-loc.gia-hanh.thon-1"];
const PERIODS: [&str; 2] = ["2022", "2023-Q1"];
const FIELDS: [&str; 5] =
    ["road_km", "road_cement_km", "playground", "village_cultural_house", "note"];

/// The server plus a faulty link to it, shared by every tablet.
struct Net {
    engine: Arc<Memory>,
    store: Mutex<Arc<Store>>,
    rng: Mutex<StdRng>,
    faults: Mutex<bool>,
    /// Every fresh result the server produced, by (device, mutation id).
    results: Mutex<HashMap<(DeviceId, u64), MutationResult>>,
}

impl Net {
    fn store(&self) -> Arc<Store> {
        Arc::clone(&self.store.lock().unwrap())
    }

    fn restart(&self) {
        let store = Store::open(self.engine.clone() as Arc<dyn Engine>, demo::catalogue).unwrap();
        *self.store.lock().unwrap() = Arc::new(store);
    }

    /// True with probability `p` while faults are on.
    fn fault(&self, p: f64) -> bool {
        *self.faults.lock().unwrap() && self.rng.lock().unwrap().random_bool(p)
    }
}

fn lost(what: &str) -> Error {
    Error::Unreachable(format!("simulated: {what}"))
}

/// A tablet's link to the server, signed in as its surveyor.
struct Link(Arc<Net>, User);

impl Remote for Link {
    async fn bootstrap(&mut self) -> Result<fieldsync::Catalogue> {
        Ok(self.0.store().catalogue().as_ref().clone())
    }

    async fn push(
        &mut self,
        device: DeviceId,
        mutations: Vec<Mutation>,
        acked: u64,
    ) -> Result<Pushed> {
        if self.0.fault(0.15) {
            return Err(lost("request lost before reaching the server"));
        }
        let store = self.0.store();
        let before = store.device(device).unwrap().last_mutation_id;
        let results = store
            .push(&self.1, device, &mutations, acked, fieldsync_client::now_ms())
            .map_err(|e| Error::Refused(e.to_string()))?;
        let mut log = self.0.results.lock().unwrap();
        for r in results.iter().filter(|r| r.id > before) {
            let previous = log.insert((device, r.id), r.clone());
            assert!(previous.is_none(), "mutation {} of {device} was applied twice", r.id);
        }
        drop(log);
        if self.0.fault(0.25) {
            return Err(lost("reply lost after commit"));
        }
        Ok(Pushed { results, server_hlc: Hlc::from_millis(fieldsync_client::now_ms()) })
    }

    async fn pull(
        &mut self,
        _device: DeviceId,
        mut cursor: u64,
        on_page: &mut (dyn FnMut(Page, Hlc) -> Result<()> + Send),
    ) -> Result<()> {
        loop {
            if self.0.fault(0.1) {
                return Err(lost("pull cut short"));
            }
            let page = self
                .0
                .store()
                .pull(&self.1, cursor, PAGE)
                .map_err(|e| Error::Refused(e.to_string()))?;
            cursor = page.cursor;
            let done = page.caught_up;
            on_page(page, Hlc::from_millis(fieldsync_client::now_ms()))?;
            if done {
                return Ok(());
            }
        }
    }

    async fn status(&mut self, device: DeviceId) -> Result<ServerStatus> {
        let store = self.0.store();
        Ok(ServerStatus {
            head_seq: store.head().unwrap(),
            last_mutation_id: store.device(device).unwrap().last_mutation_id,
            server_time_ms: fieldsync_client::now_ms(),
            server_version: String::new(),
            user_id: self.1.id.clone(),
            user_name: self.1.name.clone(),
            areas: self.1.areas.clone(),
        })
    }
}

/// The commune supervisor of every simulated village.
fn supervisor() -> User {
    User {
        id: "supervisor".into(),
        name: "Giám sát xã".into(),
        role: Role::Supervisor,
        areas: VILLAGES.iter().map(|v| v.rsplit_once('.').unwrap().0.to_owned()).collect(),
        disabled: false,
    }
}

/// The district supervisor over every simulated village.
fn district_supervisor() -> User {
    let districts = VILLAGES.iter().map(|v| v.splitn(3, '.').take(2).collect::<Vec<_>>().join("."));
    User {
        id: "district".into(),
        name: "Giám sát huyện".into(),
        role: Role::Supervisor,
        areas: districts.collect(),
        disabled: false,
    }
}

/// A supervisor's random move: settle a conflict, or approve, reject, return
/// or reopen a submission. Refusals (an open conflict blocks approval, a
/// transition that does not apply) are part of the game.
fn review(net: &Net, rng: &mut StdRng) {
    let store = net.store();
    let sup = supervisor();
    let now = fieldsync_client::now_ms();
    let open: Vec<_> = store.conflicts().unwrap().into_iter().filter(|c| c.open).collect();
    if !open.is_empty() && rng.random_bool(0.5) {
        let c = &open[rng.random_range(0..open.len())];
        let pick = Choice::Pick(rng.random_range(0..c.candidates.len()));
        // May be refused when the picked value breaks a total; that is fine.
        let _ = store.resolve(&sup, &c.at, pick, "checked on site", now);
        assert_eq!(store.check_rollups().unwrap(), Vec::<String>::new(), "after a settlement");
        return;
    }
    let subs = store.submissions().unwrap();
    if subs.is_empty() {
        return;
    }
    let header = &subs[rng.random_range(0..subs.len())];
    let sub = (header.village_id.clone(), header.period);
    let verdict =
        [Verdict::Approve, Verdict::Accept, Verdict::Reject, Verdict::Return, Verdict::Reopen]
            [rng.random_range(0..5)];
    // Accepting is the district's step; the district may also send back or reopen.
    let reviewer = match verdict {
        Verdict::Accept => district_supervisor(),
        _ if rng.random_bool(0.3) => district_supervisor(),
        _ => sup,
    };
    let _ = store.decide(&reviewer, &[sub], verdict, "số liệu chưa khớp", now);
    assert_eq!(store.check_rollups().unwrap(), Vec::<String>::new(), "after {verdict:?}");
}

/// The surveyor who carries tablet `i`: the whole demo province, or (odd
/// tablets) the districts of the simulated villages, whose pulls read the
/// log commune by commune.
fn surveyor(i: usize) -> User {
    let areas = match i % 2 {
        0 => vec![demo::PROVINCE.into()],
        _ => district_supervisor().areas,
    };
    User {
        id: format!("surveyor-{i}"),
        name: format!("Surveyor {i}"),
        role: Role::Surveyor,
        areas,
        disabled: false,
    }
}

struct SimTablet {
    engine: Arc<Memory>,
    tablet: Tablet,
    /// Every mutation this tablet made.
    made: Vec<Mutation>,
}

/// Prints the seed if the test panics while it is alive.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("simulation failed with seed {0}: rerun with FIELDSYNC_SEED={0}", self.0);
        }
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

async fn run(seed: u64) {
    let _guard = SeedGuard(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let engine = Arc::new(Memory::new());
    let store = Store::open(engine.clone() as Arc<dyn Engine>, demo::catalogue).unwrap();
    let net = Arc::new(Net {
        engine,
        store: Mutex::new(Arc::new(store)),
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        faults: Mutex::new(true),
        results: Mutex::new(HashMap::new()),
    });
    let mut tablets: Vec<SimTablet> = (0..TABLETS)
        .map(|i| {
            let engine = Arc::new(Memory::new());
            let meta = Meta {
                device: DeviceId(uuid::Uuid::from_u128(u128::from(seed) << 8 | i as u128)),
                server: "in-process".into(),
                token: String::new(),
                author: format!("Surveyor {i}"),
                cursor: 0,
                next_mutation_id: 1,
                acknowledged_through: 0,
                hlc: Hlc::default(),
                last_sync_ms: None,
            };
            let tablet = Tablet::init(engine.clone(), meta, demo::catalogue()).unwrap();
            SimTablet { engine, tablet, made: Vec::new() }
        })
        .collect();
    let retry = Retry::immediate(2);

    for _ in 0..STEPS {
        let t = rng.random_range(0..TABLETS);
        match rng.random_range(0..100) {
            0..=54 => {
                let village = VILLAGES[rng.random_range(0..VILLAGES.len())];
                let period = PERIODS[rng.random_range(0..PERIODS.len())];
                let edits: Vec<(String, RawValue)> = (0..rng.random_range(1..=3))
                    .map(|_| {
                        let field = FIELDS[rng.random_range(0..FIELDS.len())];
                        (field.to_owned(), random_value(&mut rng, field))
                    })
                    .collect();
                let now = fieldsync_client::now_ms();
                // A part above its whole is refused on the tablet: nothing stored.
                if let Ok(made) = tablets[t].tablet.record(village, period, &edits, now) {
                    tablets[t].made.extend(made);
                }
            }
            55..=79 => {
                let mut link = Link(Arc::clone(&net), surveyor(t));
                // May fail after its retries; the next sync picks up where it stopped.
                let _ = sync::sync(&tablets[t].tablet, &mut link, &retry, &mut |_| {}).await;
            }
            80..=89 => review(&net, &mut rng),
            90..=94 => net.restart(),
            _ => {
                // The tablet app restarts: everything comes back from its store.
                let engine = tablets[t].engine.clone();
                tablets[t].tablet = Tablet::open(engine).unwrap();
            }
        }
    }

    // Back at the office with a good link: everyone syncs until nothing moves.
    *net.faults.lock().unwrap() = false;
    for _ in 0..2 {
        for (i, st) in tablets.iter().enumerate() {
            let mut link = Link(Arc::clone(&net), surveyor(i));
            sync::sync(&st.tablet, &mut link, &retry, &mut |_| {}).await.unwrap();
        }
    }
    let (outcomes, conflicts) = check(&net, &tablets);
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for h in net.store().submissions().unwrap() {
        *states.entry(h.review.state.to_string()).or_default() += 1;
    }
    eprintln!("seed {seed}: {outcomes:?}, {conflicts} conflict(s), reports {states:?}");
}

fn sorted(mut states: Vec<FieldState>) -> Vec<FieldState> {
    states.sort_by(|a, b| {
        (a.at.submission, a.at.field.clone()).cmp(&(b.at.submission, b.at.field.clone()))
    });
    states
}

/// Checks convergence and that nothing was lost; returns how many mutations
/// ended each way, and the number of conflicts.
fn check(net: &Net, tablets: &[SimTablet]) -> (BTreeMap<String, usize>, usize) {
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let store = net.store();
    let mut server_fields = Vec::new();
    for sub in store.submissions().unwrap() {
        server_fields.extend(store.fields_of(&sub.village_id, sub.period).unwrap());
    }
    let server_fields = sorted(server_fields);
    // Every invariant of the store, totals against a recomputation included.
    let problems = store.check().unwrap();
    assert!(problems.is_empty(), "the store's invariants do not hold: {problems:#?}");
    let server_conflicts = store.conflicts().unwrap();
    let mut server_reviews: Vec<_> =
        store.submissions().unwrap().into_iter().map(|h| h.review).collect();
    server_reviews.sort_by_key(|r| r.submission);
    let results = net.results.lock().unwrap();

    for (i, st) in tablets.iter().enumerate() {
        assert_eq!(st.tablet.outbox_len().unwrap(), 0, "tablet {i} still has pending edits");
        assert_eq!(sorted(st.tablet.synced().unwrap()), server_fields, "tablet {i} fields differ");
        assert_eq!(st.tablet.conflicts().unwrap(), server_conflicts, "tablet {i} conflicts differ");
        let mut reviews = st.tablet.reviews().unwrap();
        reviews.sort_by_key(|r| r.submission);
        assert_eq!(reviews, server_reviews, "tablet {i} review decisions differ");
        let device = st.tablet.meta().device;
        let last = store.device(device).unwrap().last_mutation_id;
        assert_eq!(last, st.made.len() as u64, "tablet {i}: not every mutation reached the server");
        let refused: HashSet<u64> =
            st.tablet.refusals().unwrap().iter().map(|r| r.mutation.id).collect();

        // A later edit of the same field by this tablet was accepted.
        let superseded = |m: &Mutation| {
            st.made.iter().any(|later| {
                later.id > m.id
                    && (&later.village_id, &later.period, &later.field)
                        == (&m.village_id, &m.period, &m.field)
                    && results[&(device, later.id)].outcome != Outcome::Rejected
            })
        };
        for m in &st.made {
            let result = results.get(&(device, m.id)).unwrap_or_else(|| {
                panic!("tablet {i} mutation {} has no result", m.id);
            });
            let period: Period = m.period.parse().unwrap();
            let at = FieldRef::new(&m.village_id, period, FieldKey::parse(&m.field));
            // Every mutation is in the audit trail exactly once.
            // Every mutation is in the audit trail exactly once, with its value.
            let trail = store.audit_of(&m.village_id, period).unwrap();
            let mine: Vec<_> = trail
                .iter()
                .filter(|e| e.device == Some(device) && e.mutation_id == m.id)
                .collect();
            assert_eq!(mine.len(), 1, "tablet {i} mutation {} in the audit trail", m.id);
            if result.outcome != Outcome::Rejected {
                let kept = mine[0].new.as_ref().is_some_and(|v| raw_matches(&m.value, v));
                assert!(kept, "tablet {i} mutation {}: audit holds {:?}", m.id, mine[0].new);
            }
            // A supervisor settled the field after this mutation arrived.
            let settled = trail
                .iter()
                .any(|e| e.kind == AuditKind::Resolve && e.field == m.field && e.seq > mine[0].seq);
            let revisions = store.revisions(&at).unwrap();
            let written = revisions
                .iter()
                .filter(|r| r.stamp.device == device && r.stamp.mutation_id == m.id)
                .count();
            let in_conflict = store
                .conflict(&at)
                .unwrap()
                .is_some_and(|c| c.candidates.iter().any(|k| raw_matches(&m.value, &k.value)));
            *outcomes.entry(format!("{:?}", result.outcome)).or_default() += 1;
            match result.outcome {
                Outcome::Applied => assert_eq!(written, 1, "tablet {i} mutation {} history", m.id),
                // The conflict keeps each device's latest value for the field.
                Outcome::Conflict => assert!(
                    in_conflict || written == 1 || superseded(m) || settled,
                    "tablet {i} mutation {}: its value is not kept in the conflict",
                    m.id
                ),
                Outcome::Unchanged => {
                    assert_eq!(written, 0);
                    assert!(result.current.is_some(), "unchanged relative to an existing value");
                }
                // Kept until a later edit of the same field is accepted.
                Outcome::Rejected => {
                    assert!(refused.contains(&m.id) || superseded(m), "tablet {i} lost a refusal")
                }
                Outcome::Forgotten => panic!("a fresh result cannot be forgotten"),
            }
        }
    }
    (outcomes, server_conflicts.len())
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

#[tokio::test]
async fn tablets_converge_and_nothing_is_lost_or_duplicated() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds: Vec<u64> = match env("FIELDSYNC_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env("FIELDSYNC_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    for seed in seeds {
        run(seed).await;
    }
}
