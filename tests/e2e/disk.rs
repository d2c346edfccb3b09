//! A full or failing disk: writes below the free-space reserve or past a
//! user's daily budget are refused with RESOURCE_EXHAUSTED and store
//! nothing; a failed write or flush makes health say NOT_SERVING and is
//! recovered in place once space is back, keeping every acknowledged write
//! and showing none that was not; no reader is shown a write before it is
//! on disk. Most tests fail the disk on demand ([`Faulty`]); one fills a
//! real tmpfs under sled when the tests run as root.

use std::sync::Arc;
use std::time::Duration;

use fieldsync::access::Role;
use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{DeviceId, FieldKey, Hlc, Level};
use fieldsync_client::api::Query;
use fieldsync_client::Api;
use fieldsync_proto::convert;
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{Outcome, PushReply, PushRequest, StatusRequest};
use fieldsync_proto::SCHEMA_VERSION;
use fieldsync_server::db::now_ms;
use fieldsync_server::{serve, Limits, Store};
use fieldsync_store::{Engine, Faulty, Space};
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const TOKEN: &str = "disk-test-admin-token-0123456789";
const VILLAGE: &str = fieldsync::demo::SAMPLE_VILLAGE;
const MIB: u64 = 1024 * 1024;

struct Running {
    url: String,
    store: Arc<Store>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Limits that check the disk often, so that tests need not wait.
fn quick() -> Limits {
    Limits { disk_check_interval: Duration::from_millis(50), ..Limits::default() }
}

async fn start_on(engine: Arc<dyn Engine>, limits: Limits) -> Running {
    let store = Arc::new(Store::open(engine, fieldsync::demo::catalogue).unwrap());
    store.ensure_admin(Some(TOKEN), now_ms()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&store), limits, async {
        let _ = stopped.await;
    }));
    Running { url, store, _stop: stop }
}

/// A surveyor of the whole province, and a token for it.
fn surveyor(r: &Running, id: &str) -> String {
    let admin = r.store.user("admin").unwrap().unwrap();
    let user = fieldsync::access::User {
        id: id.into(),
        name: id.into(),
        role: Role::Surveyor,
        areas: vec![fieldsync::demo::PROVINCE.into()],
        disabled: false,
    };
    r.store.create_user(&admin, user, now_ms()).unwrap();
    r.store.issue_token(&admin, id, 0, "", now_ms()).unwrap().0
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let bearer = format!("Bearer {token}").parse().expect("ascii token");
    request.metadata_mut().insert("authorization", bearer);
    request
}

async fn channel(r: &Running) -> Channel {
    Channel::from_shared(r.url.clone()).unwrap().connect().await.unwrap()
}

fn mutation(id: u64, period: &str, field: &str, value: RawValue) -> Mutation {
    Mutation {
        id,
        village_id: VILLAGE.into(),
        period: period.into(),
        field: field.into(),
        value,
        base_version: 0,
        hlc: Hlc(now_ms() << 16),
        author: "tablet".into(),
    }
}

fn road(id: u64, km: &str) -> Mutation {
    mutation(id, "2022", "road_km", RawValue::Amount(km.into()))
}

async fn push(
    ch: &Channel,
    token: &str,
    device: DeviceId,
    mutations: &[Mutation],
) -> Result<PushReply, tonic::Status> {
    let request = PushRequest {
        schema_version: SCHEMA_VERSION,
        device_id: device.0.to_string(),
        mutations: mutations.iter().map(convert::mutation_to_wire).collect(),
        acknowledged_through: 0,
    };
    SyncClient::new(ch.clone()).push(authed(token, request)).await.map(|r| r.into_inner())
}

fn applied(reply: &PushReply) -> bool {
    reply.results.iter().all(|r| r.outcome == Outcome::Applied as i32)
}

/// The review, admin and report calls of the owner of `token`.
async fn api(r: &Running, token: &str) -> Api {
    Api::connect(&r.url, token).await.expect("connect")
}

/// The status code of a refused call of `client::api`.
fn code(e: &fieldsync_client::Error) -> Code {
    crate::util::refusal(e).0
}

/// The value of road_km in 2022 that GetSubmission shows.
async fn road_shown(api: &Api) -> fieldsync_client::Result<Option<String>> {
    let detail = api.submission(VILLAGE, "2022".parse().expect("period")).await?;
    let road = FieldKey::parse("road_km");
    Ok(detail.fields.into_iter().find(|f| f.at.field == road).map(|f| f.value.to_string()))
}

async fn last_mutation(ch: &Channel, token: &str, device: DeviceId) -> Result<u64, tonic::Status> {
    let request = StatusRequest { device_id: device.0.to_string() };
    let reply = SyncClient::new(ch.clone()).status(authed(token, request)).await?;
    Ok(reply.into_inner().last_mutation_id)
}

/// The village's road_km total for 2022, pending values counted.
async fn road_total(api: &Api) -> fieldsync_client::Result<String> {
    let query = Query {
        level: Level::Village,
        period: "2022".into(),
        area: Some(VILLAGE.into()),
        include_pending: true,
        tree_date: None,
    };
    let mut total = String::new();
    api.export_each(&fieldsync::demo::catalogue(), &query, |row| {
        if row.indicator == "road_km" {
            total = row.done;
        }
        Ok(())
    })
    .await?;
    Ok(total)
}

async fn health(ch: &Channel, service: &str) -> ServingStatus {
    let request = HealthCheckRequest { service: service.into() };
    let reply = HealthClient::new(ch.clone()).check(request).await.expect("health answers");
    reply.into_inner().status()
}

/// Waits (generously) until health says `want` for the sync service and the server.
async fn health_becomes(ch: &Channel, want: ServingStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sync = health(ch, "fieldsync.v1.Sync").await;
        let server = health(ch, "").await;
        if sync == want && server == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "health stayed {sync:?}/{server:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_says_not_serving_and_serves_again_once_space_is_freed() {
    let disk = Arc::new(Faulty::new());
    let r = start_on(disk.clone(), quick()).await;
    let an = surveyor(&r, "an");
    let ch = channel(&r).await;
    let reader = api(&r, &an).await;
    let tablet = DeviceId(uuid::Uuid::new_v4());
    assert!(applied(&push(&ch, &an, tablet, &[road(1, "1.25")]).await.unwrap()));
    health_becomes(&ch, ServingStatus::Serving).await;

    disk.fill();
    let refused = push(&ch, &an, tablet, &[road(2, "9")]).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("cannot write to its disk"), "{}", refused.message());
    assert!(refused.message().contains("try again"), "{}", refused.message());
    health_becomes(&ch, ServingStatus::NotServing).await;
    // Still full: a second push is refused the same way.
    let again = push(&ch, &an, tablet, &[road(2, "9")]).await.unwrap_err();
    assert_eq!(again.code(), Code::Unavailable, "{again:?}");

    disk.free();
    health_becomes(&ch, ServingStatus::Serving).await;
    // The acknowledged value is there; the refused one never was.
    assert_eq!(road_shown(&reader).await.unwrap().as_deref(), Some("1.25"));
    assert_eq!(last_mutation(&ch, &an, tablet).await.unwrap(), 1);
    // The tablet sends its outbox again and it is taken, without a restart.
    assert!(applied(&push(&ch, &an, tablet, &[road(2, "9")]).await.unwrap()));
    assert_eq!(road_shown(&reader).await.unwrap().as_deref(), Some("9"));
}

#[tokio::test]
async fn a_write_whose_flush_fails_is_never_shown_by_get_submission_status_or_export() {
    let disk = Arc::new(Faulty::new());
    let r = start_on(disk.clone(), quick()).await;
    let an = surveyor(&r, "an");
    let ch = channel(&r).await;
    let reader = api(&r, &an).await;
    let tablet = DeviceId(uuid::Uuid::new_v4());
    assert!(applied(&push(&ch, &an, tablet, &[road(1, "1.25")]).await.unwrap()));
    assert_eq!(road_total(&reader).await.unwrap(), "1.25");

    // A push is written but its flush waits...
    disk.hold();
    let head = r.store.head().unwrap();
    let pushing = {
        let (ch, an) = (ch.clone(), an.clone());
        tokio::spawn(async move { push(&ch, &an, tablet, &[road(2, "9")]).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while r.store.head().unwrap() == head {
        assert!(tokio::time::Instant::now() < deadline, "the push was never written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...while supervisors and the tablet read...
    let shown = {
        let reader = reader.clone();
        tokio::spawn(async move { road_shown(&reader).await })
    };
    let status = {
        let (ch, an) = (ch.clone(), an.clone());
        tokio::spawn(async move { last_mutation(&ch, &an, tablet).await })
    };
    let total = {
        let reader = reader.clone();
        tokio::spawn(async move { road_total(&reader).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...and then the flush fails: the push was never acknowledged.
    disk.fill();
    disk.release();
    let refused = pushing.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    match shown.await.unwrap() {
        Ok(value) => assert_eq!(value.as_deref(), Some("1.25"), "GetSubmission showed it"),
        Err(e) => assert_eq!(code(&e), Code::Unavailable, "{e:?}"),
    }
    match status.await.unwrap() {
        Ok(last) => assert_eq!(last, 1, "Status counted the unacknowledged mutation"),
        Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
    }
    match total.await.unwrap() {
        Ok(total) => assert_eq!(total, "1.25", "Export counted the unacknowledged value"),
        Err(e) => assert_eq!(code(&e), Code::Unavailable, "{e:?}"),
    }
    // While the store cannot write it shows nothing that may not be on disk.
    let meanwhile = road_shown(&reader).await.unwrap_err();
    assert_eq!(code(&meanwhile), Code::Unavailable, "{meanwhile:?}");
    health_becomes(&ch, ServingStatus::NotServing).await;

    disk.free();
    health_becomes(&ch, ServingStatus::Serving).await;
    assert_eq!(road_shown(&reader).await.unwrap().as_deref(), Some("1.25"));
    assert_eq!(last_mutation(&ch, &an, tablet).await.unwrap(), 1);
    assert_eq!(road_total(&reader).await.unwrap(), "1.25");
}

#[tokio::test]
async fn below_the_free_space_reserve_writes_are_refused_with_resource_exhausted() {
    let disk = Arc::new(Faulty::new());
    // 100 MiB left of 10 GiB: below the default reserve of 256 MiB.
    disk.set_space(Some(Space { free: 100 * MIB, total: 10 * 1024 * MIB }));
    let r = start_on(disk.clone(), quick()).await;
    let an = surveyor(&r, "an");
    let ch = channel(&r).await;
    let tablet = DeviceId(uuid::Uuid::new_v4());
    health_becomes(&ch, ServingStatus::NotServing).await;
    let head = r.store.head().unwrap();
    let refused = push(&ch, &an, tablet, &[road(1, "1.25")]).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("disk is nearly full"), "{}", refused.message());
    assert!(refused.message().contains("100.0 MiB free"), "{}", refused.message());
    assert!(refused.message().contains("nothing was stored"), "{}", refused.message());
    assert_eq!(r.store.head().unwrap(), head, "nothing stored");
    assert_eq!(last_mutation(&ch, &an, tablet).await.unwrap(), 0);
    // An admin can still act on users and tokens (to stop what fills the disk).
    let admin = r.store.user("admin").unwrap().unwrap();
    r.store.update_user(&admin, "an", None, Some(true), None, now_ms()).unwrap();
    r.store.update_user(&admin, "an", None, Some(false), None, now_ms()).unwrap();

    disk.set_space(Some(Space { free: 1024 * MIB, total: 10 * 1024 * MIB }));
    health_becomes(&ch, ServingStatus::Serving).await;
    assert!(applied(&push(&ch, &an, tablet, &[road(1, "1.25")]).await.unwrap()));
}

#[tokio::test]
async fn a_user_past_the_daily_write_budget_is_refused_while_another_still_pushes() {
    let limits = Limits { user_bytes_per_day: 512 * 1024, ..quick() };
    let r = start_on(Arc::new(Faulty::new()), limits).await;
    let (an, binh) = (surveyor(&r, "an"), surveyor(&r, "binh"));
    let ch = channel(&r).await;
    let tablet = DeviceId(uuid::Uuid::new_v4());
    let note = "ghi chú dài về đường bê tông thôn 1 ".repeat(50); // 1,800 characters
    let mut refused = None;
    for i in 1..=200u64 {
        let period = format!("{}-{:02}", 2000 + (i - 1) / 12, (i - 1) % 12 + 1);
        let m = mutation(i, &period, "note", RawValue::Text(note.clone()));
        let head = r.store.head().unwrap();
        match push(&ch, &an, tablet, &[m]).await {
            Ok(reply) => assert!(applied(&reply), "{reply:?}"),
            Err(status) => {
                assert_eq!(r.store.head().unwrap(), head, "a refused push stores nothing");
                refused = Some((i, status));
                break;
            }
        }
    }
    let (at, refused) = refused.expect("200 long notes in a day is past a 512 KiB budget");
    assert!(at > 5, "refused after only {at} notes");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("past the daily limit"), "{}", refused.message());
    assert!(refused.message().contains("an has stored"), "{}", refused.message());
    assert_eq!(last_mutation(&ch, &an, tablet).await.unwrap(), at - 1);
    // Another surveyor is not held to an's budget, and the server stays healthy.
    let other = push(&ch, &binh, DeviceId(uuid::Uuid::new_v4()), &[road(1, "2")]).await.unwrap();
    assert!(applied(&other));
    assert_eq!(health(&ch, "fieldsync.v1.Sync").await, ServingStatus::Serving);
}

/// A tmpfs mounted on a temp dir, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `mib` MiB, or `None` (saying why) when this process may
    /// not mount one.
    fn mount(mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = format!("size={mib}m");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!("skipped: cannot mount a tmpfs ({}); run as root", why.trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Set in the process [`in_a_process_of_its_own`] starts.
const ALONE: &str = "FIELDSYNC_TEST_ALONE";

/// Runs the test `name` again in a process of its own, and passes when it
/// does. sled's concurrency control is global to a process: a database
/// stuck flushing to a full disk holds up every other test's database, so
/// a test that fills a disk must not share its process.
fn in_a_process_of_its_own(name: &str) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = std::process::Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(ALONE, "1")
        .status()
        .expect("start the test binary again");
    assert!(status.success(), "{name} failed in its own process (its output is above)");
}

#[tokio::test]
async fn sled_on_a_real_full_disk_recovers_in_place_once_space_is_freed() {
    if std::env::var_os(ALONE).is_none() {
        return in_a_process_of_its_own(
            "disk::sled_on_a_real_full_disk_recovers_in_place_once_space_is_freed",
        );
    }
    let Some(tmpfs) = Tmpfs::mount(24) else { return };
    let ballast = tmpfs.dir.path().join("ballast");
    std::fs::write(&ballast, vec![7u8; 6 * MIB as usize]).unwrap();
    let data = tmpfs.dir.path().join("data");
    let engine = fieldsync_store::Sled::open(&data).unwrap();
    // No reserve and no budget: the disk itself must fill.
    let limits =
        Limits { min_free_bytes: 0, min_free_percent: 0.0, user_bytes_per_day: 0, ..quick() };
    let r = start_on(Arc::new(engine), limits).await;
    let an = surveyor(&r, "an");
    let ch = channel(&r).await;
    let tablet = DeviceId(uuid::Uuid::new_v4());
    let note = "ghi chú dài về đường bê tông thôn 1 ".repeat(50);
    let villages: Vec<String> = fieldsync::demo::catalogue()
        .units_at(fieldsync::Level::Village, None)
        .iter()
        .map(|u| u.id.clone())
        .collect();
    // Mutation i writes a note into a report of its own.
    let report = |i: u64| {
        let village = villages[i as usize % villages.len()].clone();
        let month = i / villages.len() as u64;
        (village, format!("{}-{:02}", 2000 + month / 12, month % 12 + 1))
    };
    let batch = |from: u64| -> Vec<Mutation> {
        (from..from + 20)
            .map(|i| {
                let (village, period) = report(i);
                let mut m = mutation(i, &period, "note", RawValue::Text(format!("{i} {note}")));
                m.village_id = village;
                m.hlc = Hlc(i << 16); // the same mutation when sent again
                m
            })
            .collect()
    };
    let mut acked = 0;
    let refused = loop {
        assert!(acked < 20_000, "24 MiB never filled");
        match push(&ch, &an, tablet, &batch(acked + 1)).await {
            Ok(reply) => {
                assert!(applied(&reply), "{reply:?}");
                acked += 20;
            }
            Err(status) => break status,
        }
    };
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    health_becomes(&ch, ServingStatus::NotServing).await;
    let again = push(&ch, &an, tablet, &batch(acked + 1)).await.unwrap_err();
    assert_eq!(again.code(), Code::Unavailable, "{again:?}");
    assert!(again.message().contains("cannot write to its disk"), "{}", again.message());

    std::fs::remove_file(&ballast).unwrap();
    health_becomes(&ch, ServingStatus::Serving).await;
    // Every acknowledged note is there.
    let last = last_mutation(&ch, &an, tablet).await.unwrap();
    assert!(last >= acked, "the server has {last} of {acked} acknowledged mutations");
    let reader = api(&r, &an).await;
    let note_key = FieldKey::parse("note");
    for i in (1..=acked).step_by(37).chain([acked]) {
        let (village_id, period) = report(i);
        let detail = reader
            .submission(&village_id, period.parse().expect("period"))
            .await
            .unwrap_or_else(|e| panic!("note {i}: {e:?}"));
        let text = detail.fields.iter().find(|f| f.at.field == note_key).expect("the note");
        let value = text.value.to_string();
        let value = value.trim_start_matches('"');
        assert!(value.starts_with(&format!("{i} ")), "note {i} reads {value:.20}");
    }
    // The tablet sends what was refused again, and it is taken.
    assert!(applied(&push(&ch, &an, tablet, &batch(acked + 1)).await.unwrap()));
}
