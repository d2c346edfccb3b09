//! The `fieldsync` binary killed with SIGKILL in the middle of `sync`, cycle
//! after cycle, while the surveyor keeps recording: rerunning `sync` then
//! converges, every recorded value reaches the server exactly once (one
//! audit entry per mutation id, the device's last id equal to the number
//! recorded), and the tablet ends holding the server's values with an empty
//! outbox.
//!
//! Seeded (`FIELDSYNC_SEED`, default 2022; a failure prints it), with
//! `FIELDSYNC_KILL_CYCLES` cycles (default 8). The seed fixes the values
//! and the delays before each kill; where a kill lands in the real
//! process's work does not repeat exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fieldsync::access::Role;
use fieldsync::sync::{FieldRef, RawValue};
use fieldsync::{demo, FieldKey, Level, Period, SubmissionId};
use fieldsync_client::local::Tablet;
use fieldsync_server::db::{now_ms, HistoryQuery};
use fieldsync_server::local::LocalServer;
use fieldsync_store::Sled;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ADMIN_TOKEN: &str = "kill-cli-test-admin-token-0123456789";
const FIELDS: [&str; 4] = ["road_km", "drainage_km", "canal_km", "playground"];
/// Values recorded before each cycle's sync.
const PER_CYCLE: usize = 400;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn fieldsync(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fieldsync"));
    command
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("FIELDSYNC_HOME")
        .env_remove("FIELDSYNC_SERVER")
        .env_remove("FIELDSYNC_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Opens the tablet in `home` as the binary does, records `n` values in
/// distinct cells starting at cell `first`, and closes it again.
fn record(home: &Path, villages: &[String], first: usize, n: usize, rng: &mut StdRng) -> Cells {
    let engine = Arc::new(Sled::open(&home.join("store")).expect("open the tablet store"));
    let tablet = Tablet::open(engine).expect("open the tablet");
    let mut cells = Cells::new();
    for k in first..first + n {
        let village = &villages[k % villages.len()];
        let field = FIELDS[(k / villages.len()) % FIELDS.len()];
        let year = 2000 + k / (villages.len() * FIELDS.len());
        let value = match field {
            "playground" => rng.random_range(0..=20).to_string(),
            _ => format!("{}.{}", rng.random_range(0..150), rng.random_range(0..10)),
        };
        let edits = [(field.to_owned(), RawValue::Amount(value.clone()))];
        tablet.record(village, &year.to_string(), &edits, now_ms()).expect("record");
        cells.insert((village.clone(), year.to_string(), field.to_owned()), value);
    }
    cells
}

/// (village, period, field) → the value recorded there.
type Cells = BTreeMap<(String, String, String), String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_killed_mid_sync_converges_with_nothing_lost_or_doubled() {
    let seed = env("FIELDSYNC_SEED", 2022);
    let cycles = env("FIELDSYNC_KILL_CYCLES", 8) as usize;
    eprintln!("tablet kill test: seed {seed}, {cycles} cycles");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(&dir.path().join("server"), "127.0.0.1:0", ADMIN_TOKEN)
        .await
        .expect("start the server");
    let token = server.user("an", "Nguyễn Văn An", Role::Surveyor, &[demo::PROVINCE]).unwrap();
    let home = dir.path().join("tablet");
    let init =
        fieldsync(&home, &["init", "--server", &server.url, "--token", &token]).output().unwrap();
    assert!(init.status.success(), "init: {}", String::from_utf8_lossy(&init.stderr));
    let villages: Vec<String> =
        demo::catalogue().units_at(Level::Village, None).iter().map(|u| u.id.clone()).collect();

    let mut recorded = Cells::new();
    let (mut killed, mut finished) = (0, 0);
    for cycle in 0..cycles {
        let home2 = home.clone();
        let (villages2, first, mut r) =
            (villages.clone(), recorded.len(), StdRng::seed_from_u64(rng.random()));
        let cells = tokio::task::spawn_blocking(move || {
            record(&home2, &villages2, first, PER_CYCLE, &mut r)
        })
        .await
        .unwrap();
        recorded.extend(cells);
        let delay = Duration::from_millis(rng.random_range(2..120));
        let mut child = fieldsync(&home, &["sync"]).spawn().unwrap();
        tokio::time::sleep(delay).await;
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "seed {seed}, cycle {cycle}: sync failed: {status}");
                finished += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
            }
        }
    }
    eprintln!("tablet kill test: seed {seed}: {killed} syncs killed, {finished} finished first");
    assert!(killed > 0, "seed {seed}: no sync was cut off; the test proved nothing");

    // Syncing again converges.
    for _ in 0..2 {
        let out = fieldsync(&home, &["sync"]).output().unwrap();
        assert!(out.status.success(), "seed {seed}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let engine = Arc::new(Sled::open(&home.join("store")).unwrap());
    let tablet = Tablet::open(engine).unwrap();
    let device = tablet.meta().device;
    assert_eq!(tablet.outbox_len().unwrap(), 0, "seed {seed}: the outbox is empty");

    let store = &server.store;
    let total = recorded.len() as u64;
    assert_eq!(store.device(device).unwrap().last_mutation_id, total, "seed {seed}");
    // Exactly one audit entry per mutation id: nothing applied twice.
    let admin = store.user("admin").unwrap().unwrap();
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let query = HistoryQuery {
            user_id: Some("an".into()),
            after,
            limit: 1_000,
            ..HistoryQuery::default()
        };
        let page = store.history(&admin, &query).unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        ids.extend(page.iter().filter(|e| e.device == Some(device)).map(|e| e.mutation_id));
    }
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "seed {seed}: a mutation was audited twice");
    assert_eq!(unique, (1..=total).collect(), "seed {seed}: every mutation once");

    // Every value is on the server, and the tablet holds the server's.
    let synced: BTreeMap<(SubmissionId, FieldKey), String> = tablet
        .synced()
        .unwrap()
        .into_iter()
        .map(|f| ((f.at.submission, f.at.field.clone()), f.value.to_string()))
        .collect();
    for ((village, period, field), value) in &recorded {
        let at = FieldRef::new(village, period.parse::<Period>().unwrap(), FieldKey::parse(field));
        let on_server = store.field(&at).unwrap().map(|f| f.value.to_string());
        let want = fieldsync::Amount::parse(value, 3).map(|a| a.to_string()).unwrap();
        assert_eq!(
            on_server.as_deref(),
            Some(want.as_str()),
            "seed {seed}: {village} {period} {field}"
        );
        assert_eq!(
            synced.get(&(at.submission, at.field)),
            Some(&want),
            "seed {seed}: the tablet's {village} {period} {field}"
        );
    }
    drop(tablet);
    server.stop().await.unwrap();
}
