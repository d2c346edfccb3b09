//! Backups and the store check: a store built through a real server is
//! backed up and restored with the real binary, and the copy answers
//! exactly as the original, down to tablets that keep syncing with it; a
//! damaged or cut backup is refused; `check` names what is broken in a
//! damaged store, and `fieldsync-server check` fails on it.

use std::ops::Bound;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use fieldsync::access::{Role, User};
use fieldsync::demo;
use fieldsync::review::Verdict;
use fieldsync::sync::{FieldRef, Mutation, RawValue};
use fieldsync::{FieldKey, Hlc, Period};
use fieldsync_client::local::Tablet;
use fieldsync_client::sync::{self, Report, Retry};
use fieldsync_client::{init_tablet, Grpc};
use fieldsync_server::db::{now_ms, Choice, HistoryQuery, PlanRow};
use fieldsync_server::local::LocalServer;
use fieldsync_server::Store;
use fieldsync_store::{Batch, Engine, Memory, Sled};
use tempfile::TempDir;

const ADMIN_TOKEN: &str = "backup-test-admin-token-0123456789";
const VILLAGE: &str = demo::SAMPLE_VILLAGE;
const THON_2: &str = "ha-tinh.huong-khe.phuc-dong.thon-2";
const COMMUNE: &str = demo::SAMPLE_COMMUNE;
const DISTRICT: &str = "ha-tinh.huong-khe";
const PERIOD: Period = Period::Year(2022);

struct TestTablet {
    tablet: Tablet,
    token: String,
    _dir: TempDir,
}

impl TestTablet {
    async fn new(url: &str, token: &str) -> TestTablet {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Sled::open(dir.path()).unwrap());
        let tablet = init_tablet(engine, url, token).await.expect("init tablet");
        TestTablet { tablet, token: token.to_owned(), _dir: dir }
    }

    fn record(&self, village: &str, pairs: &[(&str, &str)]) {
        let edits: Vec<_> =
            pairs.iter().map(|(f, v)| (f.to_string(), RawValue::Amount(v.to_string()))).collect();
        self.tablet.record(village, "2022", &edits, now_ms()).expect("record");
    }

    async fn sync(&self, url: &str) -> Report {
        let mut remote = Grpc::connect(url, &self.token).await.expect("connect");
        sync::sync(&self.tablet, &mut remote, &Retry::immediate(0), &mut |_| {})
            .await
            .expect("sync")
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
}

/// `serve` started on `data` (with an admin token, as a first start
/// needs), run until it ends: on a store it refuses, at once.
fn serve_on(data: &Path) -> std::process::Output {
    bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "off", "--data"])
        .arg(data)
        .env(fieldsync_server::db::ADMIN_TOKEN_ENV, "another-admin-token-0123456789")
        .output()
        .expect("run serve")
}

fn run(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = bin().args(args).env_remove("FIELDSYNC_DATA").output().expect("run fieldsync-server");
    eprintln!(
        "fieldsync-server {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Everything a client could ask the store, to compare two stores.
#[derive(Debug, PartialEq)]
struct Answers {
    head: u64,
    submissions: Vec<fieldsync_server::db::SubmissionHeader>,
    fields: Vec<Vec<fieldsync::sync::FieldState>>,
    revisions: Vec<Vec<fieldsync::sync::FieldState>>,
    conflicts: Vec<fieldsync::sync::Conflict>,
    audit: Vec<fieldsync::sync::AuditEntry>,
    users: Vec<User>,
    totals: Vec<fieldsync_server::db::Total>,
}

fn answers(store: &Store) -> Answers {
    let admin = store.user("admin").unwrap().unwrap();
    let submissions = store.submissions().unwrap();
    let fields: Vec<_> =
        submissions.iter().map(|s| store.fields_of(&s.village_id, s.period).unwrap()).collect();
    let revisions = fields.iter().flatten().map(|f| store.revisions(&f.at).unwrap()).collect();
    let query = HistoryQuery { limit: 10_000, ..Default::default() };
    let units: Vec<String> =
        [demo::PROVINCE, DISTRICT, COMMUNE, VILLAGE, THON_2].map(String::from).to_vec();
    Answers {
        head: store.head().unwrap(),
        conflicts: store.conflicts().unwrap(),
        audit: store.history(&admin, &query).unwrap(),
        users: store.users().unwrap(),
        totals: store.totals_of(&units, PERIOD).unwrap(),
        submissions,
        fields,
        revisions,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_answers_exactly_as_the_original() {
    let root = tempfile::tempdir().unwrap();
    let (original, restored, file) =
        (root.path().join("original"), root.path().join("restored"), root.path().join("b.fsb"));

    // A season's work: two surveyors, a conflict, a settlement, decisions, plans.
    let server = LocalServer::start(&original, "127.0.0.1:0", ADMIN_TOKEN).await.unwrap();
    let url = server.url.clone();
    let an = server.user("an", "Nguyễn Văn An", Role::Surveyor, &[demo::PROVINCE]).unwrap();
    let binh = server.user("binh", "Trần Thị Bình", Role::Surveyor, &[demo::PROVINCE]).unwrap();
    server.user("xa", "Lê Văn Xã", Role::Supervisor, &[COMMUNE]).unwrap();
    server.user("huyen", "Phạm Thị Huyện", Role::Supervisor, &[DISTRICT]).unwrap();
    let a = TestTablet::new(&url, &an).await;
    let b = TestTablet::new(&url, &binh).await;
    a.record(VILLAGE, &[("road_km", "10"), ("road_cement_km", "4")]);
    a.record(THON_2, &[("road_km", "7")]);
    a.sync(&url).await;
    b.sync(&url).await;
    a.record(VILLAGE, &[("road_km", "12")]);
    b.record(VILLAGE, &[("road_km", "15")]);
    a.sync(&url).await;
    assert_eq!(b.sync(&url).await.conflicts, 1, "B's concurrent edit opens a conflict");
    let store = Arc::clone(&server.store);
    let xa = store.user("xa").unwrap().unwrap();
    let admin = store.user("admin").unwrap().unwrap();
    let conflict = store.conflicts().unwrap().pop().expect("a conflict");
    store.resolve(&xa, &conflict.at, Choice::Pick(0), "measured again", now_ms()).unwrap();
    let subs = [(VILLAGE.to_owned(), PERIOD)];
    store.decide(&xa, &subs, Verdict::Approve, "", now_ms()).unwrap();
    let thon2 = [(THON_2.to_owned(), PERIOD)];
    store.decide(&xa, &thon2, Verdict::Return, "check the figures", now_ms()).unwrap();
    let plan = |unit: &str, value: &str| PlanRow {
        unit: unit.into(),
        indicator: "road_km".into(),
        period: "2022".into(),
        value: value.into(),
    };
    store.set_plans(&admin, &[plan(demo::PROVINCE, "458"), plan(COMMUNE, "30")], now_ms()).unwrap();
    a.sync(&url).await;
    b.sync(&url).await;
    let before = answers(&store);
    assert!(before.head > 0 && before.conflicts.len() == 1 && before.audit.len() > 10);
    assert!(before.totals.iter().any(|t| t.plan.is_some()), "plans are part of the totals");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let a_device = a.tablet.meta().device;
    let a_last = store.device(a_device).unwrap().last_mutation_id;
    assert_eq!(a_last, a.tablet.meta().next_mutation_id - 1);
    drop(store);
    server.stop().await.unwrap();

    // Back up and restore with the real binary.
    let out = backup_cli(&original, &file);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up"));
    let out = run(&[
        "restore".as_ref(),
        "--from".as_ref(),
        file.as_os_str(),
        "--data".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("healthy"));
    // A restore never lands on a store that holds something.
    let out = run(&[
        "restore".as_ref(),
        "--from".as_ref(),
        file.as_os_str(),
        "--data".as_ref(),
        original.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    // The copy answers as the original did.
    let server = LocalServer::start(&restored, "127.0.0.1:0", ADMIN_TOKEN).await.unwrap();
    let url = server.url.clone();
    assert_eq!(answers(&server.store), before);
    assert_eq!(server.store.check().unwrap(), Vec::<String>::new());

    // Tablets carry on against the copy: nothing new to pull, and their ids continue.
    assert_eq!(a.sync(&url).await, Report::default(), "A is already up to date");
    assert_eq!(b.sync(&url).await, Report::default(), "B is already up to date");
    a.record(THON_2, &[("road_km", "8")]);
    let report = a.sync(&url).await;
    assert_eq!(report.applied, 1, "{report:?}");
    assert_eq!(server.store.device(a_device).unwrap().last_mutation_id, a_last + 1);
    let thon2_road = FieldRef::new(THON_2, PERIOD, FieldKey::parse("road_km"));
    let road = server.store.field(&thon2_road).unwrap().unwrap();
    assert_eq!(road.value.to_string(), "8");
    assert_eq!(road.version, before.head + 1, "the log goes on from the backup's head");
    assert_eq!(b.sync(&url).await.pulled, 2, "B sees A's new value and the resubmission");
    assert_eq!(server.store.check().unwrap(), Vec::<String>::new());
    server.stop().await.unwrap();

    // The original is untouched, and still healthy.
    let out = run(&["check".as_ref(), "--data".as_ref(), original.as_os_str()]);
    assert!(out.status.success());
}

/// A small store in memory: users, values in two villages, a conflict.
fn small_store() -> (Arc<Memory>, Store) {
    let engine = Arc::new(Memory::new());
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    store.ensure_admin(Some(ADMIN_TOKEN), 1).unwrap();
    let admin = store.user("admin").unwrap().unwrap();
    let user = |id: &str| User {
        id: id.into(),
        name: id.into(),
        role: Role::Surveyor,
        areas: vec![demo::PROVINCE.into()],
        disabled: false,
    };
    let (an, binh) = (user("an"), user("binh"));
    store.create_user(&admin, an.clone(), 1).unwrap();
    store.create_user(&admin, binh.clone(), 1).unwrap();
    let m = |id: u64, village: &str, field: &str, v: &str, hlc: u64| Mutation {
        id,
        village_id: village.into(),
        period: "2022".into(),
        field: field.into(),
        value: RawValue::Amount(v.into()),
        base_version: 0,
        hlc: Hlc(hlc),
        author: "t".into(),
    };
    let device = |n: u128| fieldsync::DeviceId(uuid::Uuid::from_u128(n));
    let batch = [m(1, VILLAGE, "road_km", "10", 1), m(2, THON_2, "road_km", "3", 2)];
    store.push(&an, device(1), &batch, 0, 1).unwrap();
    store.push(&binh, device(2), &[m(1, VILLAGE, "road_km", "11", 3)], 0, 1).unwrap();
    assert_eq!(store.conflicts().unwrap().len(), 1);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    (engine, store)
}

fn restore(bytes: &[u8], dir: &Path) -> Result<u64, String> {
    let file = dir.join("backup.fsb");
    std::fs::write(&file, bytes).unwrap();
    let target = dir.join("data");
    let result = Store::restore_from_file(&file, &target).map_err(|e| e.to_string());
    if result.is_err() {
        assert!(!target.exists(), "a refused restore leaves nothing behind");
    }
    result
}

#[test]
fn a_damaged_or_truncated_backup_is_refused() {
    let (_, store) = small_store();
    let mut bytes = Vec::new();
    let count = store.backup(&mut bytes).unwrap();
    assert!(count > 10);
    let dir = tempfile::tempdir().unwrap();

    // The intact backup restores to an equal store.
    let good = dir.path().join("good");
    std::fs::create_dir(&good).unwrap();
    assert_eq!(restore(&bytes, &good), Ok(count));
    let copy = Store::open(Arc::new(Sled::open(&good.join("data")).unwrap()), demo::catalogue);
    let copy = copy.unwrap();
    assert_eq!(copy.head().unwrap(), store.head().unwrap());
    assert_eq!(copy.conflicts().unwrap(), store.conflicts().unwrap());
    assert_eq!(copy.check().unwrap(), Vec::<String>::new());
    drop(copy);

    let tries: Vec<(String, Vec<u8>)> =
        [0, 17, 20, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1]
            .into_iter()
            .map(|at| {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0x55;
                (format!("byte {at} flipped"), flipped)
            })
            .chain(
                [0, 10, 21, bytes.len() / 2, bytes.len() - 33, bytes.len() - 1]
                    .into_iter()
                    .map(|len| (format!("cut at {len}"), bytes[..len].to_vec())),
            )
            .chain([(String::from("trailing bytes"), [bytes.as_slice(), b"x"].concat())])
            .collect();
    for (i, (what, damaged)) in tries.iter().enumerate() {
        let sub = dir.path().join(format!("try{i}"));
        std::fs::create_dir(&sub).unwrap();
        let err = restore(damaged, &sub).expect_err(what);
        let plain = err.contains("damaged or truncated")
            || err.contains("not a fieldsync backup")
            || err.contains("format version");
        assert!(plain, "{what}: {err}");
    }
    let err = restore(&bytes[..bytes.len() - 1], dir.path()).unwrap_err();
    assert!(err.contains("ends in the middle"), "{err}");
    let mut flipped = bytes.clone();
    let middle = bytes.len() - 40;
    flipped[middle] ^= 1;
    let err = restore(&flipped, dir.path()).unwrap_err();
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn check_names_what_is_broken() {
    let (engine, store) = small_store();
    let road = FieldRef::new(VILLAGE, PERIOD, FieldKey::parse("road_km"));
    let revisions = store.revisions(&road).unwrap();
    assert_eq!(revisions.len(), 2, "the first value, replaced, and the current one");
    let version = revisions[0].version;

    // The history of the report's replaced values goes missing.
    let history = engine.scan("history", Bound::Unbounded, Bound::Unbounded, usize::MAX).unwrap();
    assert!(!history.is_empty(), "small_store replaces a value");
    let mut batch = Batch::default();
    for (key, _) in history {
        batch.delete("history", key);
    }
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert!(!problems.is_empty());
    assert!(problems.iter().all(|p| p.contains("revision")), "{problems:?}");
    let named = |p: &String| p.contains("road_km") && p.contains(&format!("version {version}"));
    assert!(problems.iter().any(named), "{problems:?}");

    // A rollup cell goes missing.
    let (cell, _) = engine.last("totals").unwrap().unwrap();
    let mut batch = Batch::default();
    batch.delete("totals", cell);
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("rollup")), "{problems:?}");

    // An audit entry goes missing: a gap, and index entries pointing nowhere.
    let mut batch = Batch::default();
    batch.delete("writes", 2u64.to_be_bytes().to_vec());
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("gap")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("audit entry 2, which does not exist")));

    // The change log loses its head.
    let (last, _) = engine.last("changes").unwrap().unwrap();
    let mut batch = Batch::default();
    batch.delete("changes", last);
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("change-log head")), "{problems:?}");
}

#[test]
fn check_notices_a_change_missing_from_its_commune_cut() {
    let (engine, store) = small_store();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let (cut, _) = engine.last("changes_by_commune").unwrap().unwrap();
    let mut batch = Batch::default();
    batch.delete("changes_by_commune", cut);
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("cut of the log")), "{problems:?}");
}

#[test]
fn the_check_command_fails_on_a_damaged_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let (_, memory) = small_store();
        let mut bytes = Vec::new();
        memory.backup(&mut bytes).unwrap();
        let file = dir.path().join("b.fsb");
        std::fs::write(&file, bytes).unwrap();
        Store::restore_from_file(&file, &data).unwrap();
    }
    let out = run(&["check".as_ref(), "--data".as_ref(), data.as_os_str()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("healthy"));
    {
        let engine = Sled::open(&data).unwrap();
        let (cell, _) = engine.last("totals").unwrap().unwrap();
        let mut batch = Batch::default();
        batch.delete("totals", cell);
        engine.commit(batch).unwrap();
    }
    let out = run(&["check".as_ref(), "--data".as_ref(), data.as_os_str()]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("problem") && stdout.contains("rollup"), "{stdout}");

    // Nor is it backed up: the copy would pass for a good one later.
    let backup = dir.path().join("damaged.fsb");
    let out = backup_cli(&data, &backup);
    let text = output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("damaged") && text.contains("rollup") && text.contains("restore"),
        "{text}"
    );
    assert!(!backup.exists(), "no backup file is written");

    // Nor served: what check found stays said, in the store's directory.
    let out = serve_on(&data);
    let text = output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("found damaged before") && text.contains("rollup"), "{text}");
    assert!(text.contains("restore"), "{text}");
    let note = std::fs::read_to_string(data.join(fieldsync_store::DAMAGED_FILE)).unwrap();
    assert!(note.contains("rollup") && note.contains("Restore the last backup"), "{note}");

    // No store at all is an error, not a new empty store.
    let out = run(&["check".as_ref(), "--data".as_ref(), dir.path().join("none").as_os_str()]);
    assert!(!out.status.success());
    assert!(!dir.path().join("none").exists());
}

#[test]
fn a_store_cut_by_district_is_cut_by_commune_when_opened() {
    let (engine, store) = small_store();
    let surveyor = User {
        id: "chi".into(),
        name: "Chi".into(),
        role: Role::Surveyor,
        areas: vec![COMMUNE.into()],
        disabled: false,
    };
    let before = store.pull(&surveyor, 0, 100).unwrap();
    assert!(!before.changes.is_empty());
    drop(store);
    // Turn the store back into the earlier layout: no marker, a district cut.
    let mut batch = Batch::default();
    batch.delete("meta", b"cut".to_vec());
    for (key, entity) in
        engine.scan("changes_by_commune", Bound::Unbounded, Bound::Unbounded, usize::MAX).unwrap()
    {
        batch.delete("changes_by_commune", key.clone());
        let mut old = DISTRICT.as_bytes().to_vec();
        old.extend_from_slice(&key[key.len() - 9..]);
        batch.put("changes_by_district", old, entity);
    }
    engine.commit(batch).unwrap();

    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(store.pull(&surveyor, 0, 100).unwrap(), before);
    let left = engine.scan("changes_by_district", Bound::Unbounded, Bound::Unbounded, 10).unwrap();
    assert!(left.is_empty(), "the district cut is dropped");
}

/// A stopped server's store with a season of pushes in it (a `db` file of
/// several megabytes), in `dir`.
fn season_store(dir: &Path) {
    let store = Store::open(Arc::new(Sled::open(dir).unwrap()), demo::catalogue).unwrap();
    store.ensure_admin(Some(ADMIN_TOKEN), now_ms()).unwrap();
    let an = User {
        id: "an".into(),
        name: "An".into(),
        role: Role::Surveyor,
        areas: vec![COMMUNE.into()],
        disabled: false,
    };
    let device = fieldsync::DeviceId(uuid::Uuid::from_u128(7));
    for push in 0..300u64 {
        let batch: Vec<Mutation> = (0..4)
            .map(|i| {
                let id = push * 4 + i + 1;
                Mutation {
                    id,
                    village_id: VILLAGE.into(),
                    period: "2022".into(),
                    field: "note".into(),
                    value: RawValue::Text(format!("ghi chú {id} {}", "x".repeat(400))),
                    base_version: 0,
                    hlc: Hlc(id),
                    author: "an".into(),
                }
            })
            .collect();
        store.push(&an, device, &batch, push * 4, now_ms()).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_dir(&entry.path(), &target),
            false => drop(std::fs::copy(entry.path(), target).unwrap()),
        }
    }
}

/// `fieldsync-server backup --data DATA --out OUT`, run to its end.
fn backup_cli(data: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    run(&[
        "backup".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

fn output(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_cut_store_is_refused_by_serve_check_and_backup_and_left_as_it_was() {
    let root = tempfile::tempdir().unwrap();
    let original = root.path().join("original");
    season_store(&original);
    let len = std::fs::metadata(original.join("db")).unwrap().len();
    assert!(len > 1_000_000, "the db file holds the season ({len} bytes)");
    for (what, keep) in [
        ("half", len / 2),
        ("90%", len * 9 / 10),
        ("95%", len * 95 / 100),
        ("99%", len * 99 / 100),
        ("all but 1%", len - len / 100),
    ] {
        let data = root.path().join(format!("cut-{keep}"));
        copy_dir(&original, &data);
        let db = std::fs::OpenOptions::new().write(true).open(data.join("db")).unwrap();
        db.set_len(keep).unwrap();
        drop(db);
        let files_before = std::fs::read(data.join(fieldsync_store::MARK_FILE)).unwrap();

        let out = run(&["check".as_ref(), "--data".as_ref(), data.as_os_str()]);
        let text = output(&out);
        assert!(!out.status.success(), "check of a db cut to {what}: {text}");
        assert!(!text.contains("healthy"), "{what}: {text}");
        assert!(text.contains("damaged") && text.contains("restore"), "{what}: {text}");
        assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "{what}: {text}");
        // sled's failed open may rewrite the end of its log, so that a
        // later open succeeds on what is left: the first refusal stands.
        assert!(data.join(fieldsync_store::DAMAGED_FILE).exists(), "{what}");

        let backup = root.path().join(format!("backup-{keep}.fsb"));
        let out = backup_cli(&data, &backup);
        let text = output(&out);
        assert!(!out.status.success(), "backup of a db cut to {what}: {text}");
        assert!(text.contains("found damaged before"), "{what}: {text}");
        assert!(!backup.exists());

        let out = serve_on(&data);
        let text = output(&out);
        assert!(!out.status.success(), "serve on a db cut to {what}: {text}");
        assert!(
            text.contains("found damaged before") && text.contains("restore"),
            "{what}: {text}"
        );
        assert!(!text.contains("new store"), "{what}: {text}");
        assert_eq!(
            std::fs::read(data.join(fieldsync_store::MARK_FILE)).unwrap(),
            files_before,
            "{what}: the mark is left as it was, for whoever looks at it"
        );
    }
    // The uncut copy is still whole.
    let out = run(&["check".as_ref(), "--data".as_ref(), original.as_os_str()]);
    assert!(out.status.success(), "{}", output(&out));
}

#[test]
fn check_and_backup_on_a_wrong_directory_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("fieldsync-dta");
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = root.path().join("documents");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("report.docx"), b"not a store").unwrap();
    for dir in [&missing, &empty, &other] {
        let out = run(&["check".as_ref(), "--data".as_ref(), dir.as_os_str()]);
        let text = output(&out);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("no fieldsync store"), "{text}");
        let file = root.path().join("b.fsb");
        let out = backup_cli(dir, &file);
        assert!(!out.status.success(), "{}", output(&out));
        assert!(!file.exists());
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    // serve never fills someone else's directory with a store either.
    let out = serve_on(&other);
    assert!(!out.status.success());
    assert!(output(&out).contains("holds no fieldsync store"), "{}", output(&out));
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn a_backup_never_lands_on_the_store_or_an_existing_file() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    season_store(&data);
    let backup = |out: &Path, extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["backup".as_ref(), "--data".as_ref(), data.as_os_str(), "--out".as_ref()];
        args.push(out.as_os_str());
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        run(&args)
    };
    let db_before = std::fs::metadata(data.join("db")).unwrap().len();
    for inside in [data.join("db"), data.join("backup.fsb")] {
        let out = backup(&inside, &["--force"]);
        assert!(!out.status.success());
        assert!(output(&out).contains("inside the data directory"), "{}", output(&out));
    }
    assert_eq!(std::fs::metadata(data.join("db")).unwrap().len(), db_before);

    let file = root.path().join("season.fsb");
    assert!(backup(&file, &[]).status.success());
    let first = std::fs::read(&file).unwrap();
    let out = backup(&file, &[]);
    assert!(!out.status.success());
    assert!(output(&out).contains("already exists"), "{}", output(&out));
    assert!(backup(&file, &["--force"]).status.success());

    // A link planted where the backup is written first is not followed.
    #[cfg(unix)]
    {
        let victim = root.path().join("victim.txt");
        std::fs::write(&victim, b"keep me").unwrap();
        let other = root.path().join("other.fsb");
        std::os::unix::fs::symlink(&victim, root.path().join("other.fsb.partial")).unwrap();
        let out = backup(&other, &[]);
        assert!(!out.status.success());
        assert!(output(&out).contains("already exists"), "{}", output(&out));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!other.exists());
    }
    assert_eq!(std::fs::read(&file).unwrap().len(), first.len());
}

#[test]
fn the_offline_admin_token_lets_a_locked_out_admin_back_in() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    season_store(&data);
    {
        // The only admin is disabled (as a store written before the server
        // refused that could hold it).
        let engine = Sled::open(&data).unwrap();
        let store = Store::open(Arc::new(engine), demo::catalogue).unwrap();
        let mut admin = store.user("admin").unwrap().unwrap();
        drop(store);
        admin.disabled = true;
        let engine = Sled::open(&data).unwrap();
        let mut batch = Batch::default();
        batch.put("users", b"admin".to_vec(), postcard::to_allocvec(&admin).unwrap());
        engine.commit(batch).unwrap();
        let store = Store::open(Arc::new(engine), demo::catalogue).unwrap();
        assert!(store.authenticate(ADMIN_TOKEN, now_ms()).is_err());
    }
    let out = run(&["admin-token".as_ref(), "--data".as_ref(), data.as_os_str()]);
    assert!(out.status.success(), "{}", output(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("fs_"), "the token alone on stdout: {token:?}");
    let store = Store::open(Arc::new(Sled::open(&data).unwrap()), demo::catalogue).unwrap();
    let user = store.authenticate(&token, now_ms()).expect("the new token signs in");
    assert_eq!(user.id, "admin");
    let query = HistoryQuery { limit: 10_000, ..Default::default() };
    let audit = store.history(&user, &query).unwrap();
    assert!(audit.iter().any(|e| e.detail.contains("offline")), "the recovery is audited");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    drop(store);
    let out = run(&[
        "admin-token".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--user".as_ref(),
        "nobody".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(output(&out).contains("the admins of this store are: admin"), "{}", output(&out));
    // On a directory without a store it creates nothing.
    let none = root.path().join("none");
    let out = run(&["admin-token".as_ref(), "--data".as_ref(), none.as_os_str()]);
    assert!(!out.status.success());
    assert!(!none.exists());
}

#[test]
fn check_finds_a_token_that_cannot_be_listed_or_revoked() {
    let (engine, store) = small_store();
    drop(store);
    let mut batch = Batch::default();
    let planted = fieldsync_server::db::TokenInfo {
        id: "planted00000".into(),
        user_id: "admin".into(),
        label: "".into(),
        created_ms: 0,
        expires_ms: 0,
        revoked: false,
    };
    batch.put("tokens", vec![0xAB; 32], postcard::to_allocvec(&planted).unwrap());
    engine.commit(batch).unwrap();
    let store = Store::open(engine, demo::catalogue).unwrap();
    let problems = store.check().unwrap();
    assert!(
        problems.iter().any(|p| p.contains("planted00000") && p.contains("cannot be listed")),
        "{problems:?}"
    );
}

/// Hands each write on and, at the first, pushes from another thread and
/// waits for that push to be answered.
struct PushMidway<'a> {
    out: Vec<u8>,
    store: &'a Arc<Store>,
    pushed: Option<Result<(), String>>,
}

impl std::io::Write for PushMidway<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.pushed.is_none() {
            let store = Arc::clone(self.store);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let an = User {
                    id: "an".into(),
                    name: "An".into(),
                    role: Role::Surveyor,
                    areas: vec![COMMUNE.into()],
                    disabled: false,
                };
                let m = Mutation {
                    id: 1,
                    village_id: THON_2.into(),
                    period: "2022".into(),
                    field: "road_km".into(),
                    value: RawValue::Amount("4.5".into()),
                    base_version: 0,
                    hlc: Hlc(1),
                    author: "an".into(),
                };
                let device = fieldsync::DeviceId(uuid::Uuid::from_u128(99));
                let _ = tx.send(store.push(&an, device, &[m], 0, now_ms()).map(drop));
            });
            let answered = rx.recv_timeout(std::time::Duration::from_secs(20));
            self.pushed = Some(match answered {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the push waited for the backup".into()),
            });
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_backup_does_not_hold_up_pushes_and_holds_the_store_as_it_began() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    season_store(&data);
    let store =
        Arc::new(Store::open(Arc::new(Sled::open(&data).unwrap()), demo::catalogue).unwrap());
    let head = store.head().unwrap();
    let mut out = PushMidway { out: Vec::new(), store: &store, pushed: None };
    store.backup(&mut out).unwrap();
    assert_eq!(out.pushed, Some(Ok(())), "a push during the backup is answered at once");
    assert!(store.head().unwrap() > head, "the push landed");
    // The backup is the store as it stood when the backup began.
    let file = root.path().join("b.fsb");
    std::fs::write(&file, &out.out).unwrap();
    let restored = root.path().join("restored");
    Store::restore_from_file(&file, &restored).unwrap();
    let copy = Store::open(Arc::new(Sled::open(&restored).unwrap()), demo::catalogue).unwrap();
    assert_eq!(copy.head().unwrap(), head);
    assert_eq!(copy.check().unwrap(), Vec::<String>::new());
    assert!(copy.fields_of(THON_2, PERIOD).unwrap().is_empty(), "the later push is not in it");
    assert!(!store.fields_of(THON_2, PERIOD).unwrap().is_empty());
}
