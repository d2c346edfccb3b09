//! The surveyors' app (`/app/`) in a real headless Chromium at phone size:
//! enrolled by a one-time code, it records offline (served by its service
//! worker with the server stopped), keeps its edits across a browser
//! restart, and syncs them through the Connect JSON routes exactly once; it
//! shows a supervisor's decisions and locks approved reports; a revoked
//! device keeps its edits and takes a new code of the same user; its
//! exported unsent edits reach the server once.
//!
//! The tests take turns (one browser at a time). `cargo test -p fieldsync-tests
//! --test browser -- --ignored app::screenshots` regenerates
//! `docs/screenshots/app-*.png`.

use crate::util;

use std::collections::BTreeSet;
use std::path::Path;

use fantoccini::{Client, Locator};
use fieldsync::access::Role;
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::{AuditKind, FieldRef, Outcome};
use fieldsync::{demo, FieldKey, Period, Value};
use fieldsync_client::sync::Retry;
use fieldsync_client::{unsent, Grpc};
use fieldsync_proto::v1::CreateEnrollmentRequest;
use fieldsync_server::db::{now_ms, HistoryQuery};
use serde_json::Value as Json;
use util::browser::{click, run_js, wait_attr, wait_text, Browser, PATIENCE, PHONE, TURN};
use util::{start_web_server, start_web_server_at, TestServer, VILLAGE};

/// The period the app offers by default: this year.
fn this_year() -> String {
    let days = now_ms() / 86_400_000;
    // Civil year from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2)).to_string()
}

const SURVEYOR: &str = "an.nguyen";
const SURVEYOR_NAME: &str = "Nguyễn Văn An";

/// The three villages of Phúc Đồng in the demo tree.
fn villages() -> Vec<String> {
    (1..=3).map(|n| VILLAGE.replace("thon-1", &format!("thon-{n}"))).collect()
}

/// A one-time code for `user`, as a supervisor would hand it out.
async fn code_for(server: &TestServer, user: &str) -> String {
    let reply = server
        .remote()
        .await
        .admin()
        .create_enrollment(CreateEnrollmentRequest { user_id: user.into(), expires_in_s: 0 })
        .await
        .expect("create an enrollment code")
        .into_inner();
    reply.code
}

/// Opens the app and waits until it has started.
async fn open_app(client: &Client, web: &str) {
    client.goto(&format!("{web}/app/")).await.expect("open the app");
    started(client).await;
}

/// Waits until the app's modules have loaded and it has read its storage.
async fn started(client: &Client) {
    let start = std::time::Instant::now();
    let script = "if (!globalThis.fieldsyncApp) return false; \
                  await globalThis.fieldsyncApp.ready; return true;";
    while run_js(client, script).await != Json::Bool(true) {
        assert!(start.elapsed() < PATIENCE, "the app never started");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn state(client: &Client) -> Json {
    run_js(client, "return await globalThis.fieldsyncApp.state();").await
}

/// Types `code` into the enrollment form and waits for the first sync.
async fn enroll(client: &Client, code: &str) {
    let input = client.wait().at_most(PATIENCE).for_element(Locator::Id("enroll-code")).await;
    let input = input.expect("the enrollment form");
    input.clear().await.unwrap();
    input.send_keys(code).await.unwrap();
    click(client, "#enroll-submit").await;
    let start = std::time::Instant::now();
    loop {
        let status = client.find(Locator::Id("sync-status")).await.unwrap();
        if status.attr("data-state").await.unwrap().as_deref() == Some("ok") {
            return;
        }
        if start.elapsed() > PATIENCE {
            let error = client.find(Locator::Id("enroll-error")).await.unwrap();
            let error = error.text().await.unwrap_or_default();
            let said = status.text().await.unwrap_or_default();
            panic!("not enrolled and synced: status {said:?}, enrollment {error:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits until the service worker controls the page (so the app opens offline).
/// A phone on `profile` with the app open and enrolled as `user` by a
/// fresh code.
async fn enrolled_phone(server: &TestServer, profile: &std::path::Path, user: &str) -> Browser {
    let code = code_for(server, user).await;
    let browser = Browser::open(profile, PHONE).await;
    open_app(&browser.client, server.web_url()).await;
    enroll(&browser.client, &code).await;
    browser
}

async fn wait_offline_ready(client: &Client) {
    let start = std::time::Instant::now();
    while state(client).await["serviceWorker"] != Json::Bool(true) {
        assert!(start.elapsed() < PATIENCE, "the service worker never took over the app");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Picks `village` by searching "phuc dong" and fills `values` into the
/// form, saves, and waits for "đã lưu trên máy".
async fn record_in_form(client: &Client, village: &str, values: &[(&str, &str)]) {
    let search = client.find(Locator::Id("village-search")).await.unwrap();
    search.clear().await.unwrap();
    search.send_keys("phuc dong").await.unwrap();
    click(client, &format!("button[data-village=\"{village}\"]")).await;
    for (field, value) in values {
        let css = format!("input[data-field=\"{field}\"]");
        let input = client.wait().at_most(PATIENCE).for_element(Locator::Css(&css)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    click(client, "#save").await;
    wait_attr(client, "#saved-state", "data-saved", "1").await;
    wait_text(client, "#saved-state", |t| t == "đã lưu trên máy").await;
    click(client, "#back").await;
}

/// Presses "Đồng bộ" and waits until that sync has finished both ways: the
/// outbox is empty and the pull that follows the push has been stored, so
/// what the server changes afterwards is not already on its way.
async fn sync_now(client: &Client) {
    click(client, "#sync-button").await;
    // Joins the sync the button started, or runs one more if it is over.
    let summary = run_js(client, "return await globalThis.fieldsyncApp.sync();").await;
    assert_eq!(summary["ok"], Json::Bool(true), "{summary}");
    wait_attr(client, "#pending-count", "data-count", "0").await;
}

/// The server's value of a field, as text.
fn on_server(server: &TestServer, village: &str, period: &str, field: &str) -> Option<String> {
    let at = FieldRef::new(village, period.parse::<Period>().unwrap(), FieldKey::parse(field));
    let state = server.store.field(&at).unwrap();
    state.map(|s| match s.value {
        Value::Amount(a) => a.to_string(),
        other => other.to_string(),
    })
}

/// The mutation ids the audit trail holds for `village` and `period` from
/// device `device`, each as often as it is there.
fn audited_ids(server: &TestServer, village: &str, period: &str, device: &str) -> Vec<u64> {
    let admin = server.store.user("admin").unwrap().unwrap();
    let query = HistoryQuery {
        report: Some((village.into(), period.parse().unwrap())),
        limit: 1000,
        ..HistoryQuery::default()
    };
    let entries = server.store.history(&admin, &query).unwrap();
    entries
        .iter()
        .filter(|e| e.device.is_some_and(|d| d.to_string() == device))
        .filter(|e| matches!(e.kind, AuditKind::Value | AuditKind::Conflict | AuditKind::Unchanged))
        .map(|e| e.mutation_id)
        .collect()
}

async fn pending_count(client: &Client) -> String {
    let e = client.find(Locator::Id("pending-count")).await.unwrap();
    e.attr("data-count").await.unwrap().unwrap_or_default()
}

/// Issue test 1: enrolled online, then the server stops; the app reloads
/// from its service worker, records three villages, survives the browser's
/// end, and once the server is back one sync puts every value on it once.
#[tokio::test]
async fn offline_edits_survive_a_browser_restart_and_reach_the_server_once() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let code = code_for(&server, SURVEYOR).await;
    let (grpc, web) = (server.url.clone(), server.web_url().to_owned());

    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    open_app(&client, &web).await;
    enroll(&client, &code).await;
    wait_text(&client, "#who", |t| t.contains(SURVEYOR_NAME)).await;
    wait_offline_ready(&client).await;
    let device = state(&client).await["deviceId"].as_str().unwrap().to_owned();
    server.stop().await;

    // No server: the app still opens, from its service worker.
    client.refresh().await.unwrap();
    started(&client).await;
    wait_attr(&client, "#sync-status", "data-state", "offline").await;
    let period = this_year();
    let input = client.find(Locator::Id("period")).await.unwrap();
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some(period.as_str()));
    let typed = [("1,25", "1"), ("0.5", "2"), ("2,75", "0")];
    for (village, (road, houses)) in villages().iter().zip(typed) {
        record_in_form(&client, village, &[("road_km", road), ("village_cultural_house", houses)])
            .await;
    }
    assert_eq!(pending_count(&client).await, "6");
    // After the first save the app asked to keep its storage, and says
    // whether it may and how much it holds.
    wait_text(&client, "#storage-state", |t| t.starts_with("Bộ nhớ:") && t.contains("KB")).await;
    browser.close().await;

    // A new browser on the same profile, still offline: the edits are there.
    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    open_app(&client, &web).await;
    wait_attr(&client, "#pending-count", "data-count", "6").await;
    for village in villages() {
        wait_attr(
            &client,
            &format!("li[data-submission=\"{village}|{period}\"]"),
            "data-state",
            "local",
        )
        .await;
    }

    let server = start_web_server_at(dir.path(), &grpc, &web).await;
    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    wait_attr(&client, "#pending-count", "data-count", "0").await;
    for village in villages() {
        wait_attr(
            &client,
            &format!("li[data-submission=\"{village}|{period}\"]"),
            "data-state",
            "synced",
        )
        .await;
    }
    let want = [("1.25", "1"), ("0.5", "2"), ("2.75", "0")];
    for (village, (road, houses)) in villages().iter().zip(want) {
        assert_eq!(on_server(&server, village, &period, "road_km").as_deref(), Some(road));
        assert_eq!(
            on_server(&server, village, &period, "village_cultural_house").as_deref(),
            Some(houses)
        );
    }
    // Once: two audited edits per village, six distinct ids in all, and a
    // second sync sends nothing.
    let summary = run_js(&client, "return await globalThis.fieldsyncApp.sync();").await;
    assert_eq!(summary["ok"], Json::Bool(true), "{summary}");
    assert_eq!(summary["pushed"], 0, "{summary}");
    let mut ids = BTreeSet::new();
    for village in villages() {
        let audited = audited_ids(&server, &village, &period, &device);
        assert_eq!(audited.len(), 2, "{village}: {audited:?}");
        ids.extend(audited);
    }
    assert_eq!(ids, (1..=6).collect::<BTreeSet<u64>>());
    browser.close().await;
    server.stop().await;
}

/// Issue test 3: a returned report shows the supervisor's reason after a
/// sync and an edit submits it again; an approved one is locked.
#[tokio::test]
async fn the_app_shows_a_return_resubmits_on_edit_and_locks_an_approved_report() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let browser = enrolled_phone(&server, profile.path(), SURVEYOR).await;
    let client = browser.client.clone();
    let period = this_year();
    let [first, second, _] = <[String; 3]>::try_from(villages()).unwrap();
    record_in_form(&client, &first, &[("road_km", "1,5"), ("road_cement_km", "1")]).await;
    record_in_form(&client, &second, &[("drainage_km", "0,4")]).await;
    sync_now(&client).await;

    let supervisor = server.store.user("giam.tran").unwrap().unwrap();
    let p: Period = period.parse().unwrap();
    let reason = "thiếu vị trí GPS";
    server
        .store
        .decide(&supervisor, &[(first.clone(), p)], Verdict::Return, reason, now_ms())
        .unwrap();
    server
        .store
        .decide(&supervisor, &[(second.clone(), p)], Verdict::Approve, "", now_ms())
        .unwrap();

    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    let first_row = format!("li[data-submission=\"{first}|{period}\"]");
    let second_row = format!("li[data-submission=\"{second}|{period}\"]");
    wait_attr(&client, &first_row, "data-state", "returned").await;
    wait_attr(&client, &second_row, "data-state", "approved").await;

    click(&client, &format!("{first_row} button")).await;
    wait_attr(&client, "#review-state", "data-state", "returned").await;
    wait_text(&client, "#review-state", |t| t.contains(reason) && t.contains("Trần Văn Giám"))
        .await;
    wait_attr(&client, "[data-field-status=road_km]", "data-state", "synced").await;
    let road = client.find(Locator::Css("input[data-field=road_km]")).await.unwrap();
    assert_eq!(road.prop("value").await.unwrap().as_deref(), Some("1,5"));
    road.clear().await.unwrap();
    road.send_keys("1,75").await.unwrap();
    click(&client, "#save").await;
    wait_attr(&client, "#saved-state", "data-saved", "1").await;
    wait_attr(&client, "[data-field-status=road_km]", "data-state", "local").await;
    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    wait_attr(&client, "#review-state", "data-state", "submitted").await;
    wait_attr(&client, "[data-field-status=road_km]", "data-state", "synced").await;
    let header = server.store.submission(&first, p).unwrap().unwrap();
    assert_eq!(header.review.state, ReviewState::Submitted, "the edit submitted it again");
    assert_eq!(on_server(&server, &first, &period, "road_km").as_deref(), Some("1.75"));

    click(&client, "#back").await;
    wait_attr(&client, &first_row, "data-state", "synced").await;
    click(&client, &format!("{second_row} button")).await;
    wait_attr(&client, "#review-state", "data-state", "approved").await;
    wait_text(&client, "#locked-reason", |t| !t.is_empty()).await;
    let inputs = client.find_all(Locator::Css("#report [data-field]")).await.unwrap();
    assert!(inputs.len() > 3, "the form has its inputs");
    for input in inputs {
        let field = input.attr("data-field").await.unwrap().unwrap_or_default();
        assert!(!input.is_enabled().await.unwrap(), "{field} is locked");
    }
    wait_attr(&client, "[data-field-status=drainage_km]", "data-state", "locked").await;
    browser.close().await;
    server.stop().await;
}

/// An edit made before the phone learned that its report was approved is
/// refused by the server: it stays visible on the phone with the value and
/// the server's reason, and the report is listed as refused.
#[tokio::test]
async fn an_edit_the_server_refuses_stays_visible_with_its_reason() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let browser = enrolled_phone(&server, profile.path(), SURVEYOR).await;
    let client = browser.client.clone();
    let period = this_year();
    record_in_form(&client, VILLAGE, &[("road_km", "1")]).await;
    sync_now(&client).await;
    let supervisor = server.store.user("giam.tran").unwrap().unwrap();
    let p: Period = period.parse().unwrap();
    server
        .store
        .decide(&supervisor, &[(VILLAGE.into(), p)], Verdict::Approve, "", now_ms())
        .unwrap();

    record_in_form(&client, VILLAGE, &[("road_km", "2,5")]).await;
    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    let row = format!("li[data-submission=\"{VILLAGE}|{period}\"]");
    wait_attr(&client, &row, "data-state", "refused").await;
    assert_eq!(pending_count(&client).await, "0");
    click(&client, &format!("{row} button")).await;
    let status = "[data-field-status=road_km]";
    wait_attr(&client, status, "data-state", "refused").await;
    wait_text(&client, status, |t| {
        t.contains("2,5") && t.contains("bị khóa") && t.contains("approved and locked")
    })
    .await;
    wait_attr(&client, "#review-state", "data-state", "approved").await;
    assert_eq!(on_server(&server, VILLAGE, &period, "road_km").as_deref(), Some("1"));
    browser.close().await;
    server.stop().await;
}

/// A phone put back from a backup of itself: the server holds edits under
/// ids the restored phone uses again for new edits; the app gives its new
/// edits the ids after the server's last (as the tablet does) and they go
/// through, the edits sent before the restore kept.
#[tokio::test]
async fn a_phone_restored_from_an_old_backup_renumbers_its_new_edits() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let code = code_for(&server, SURVEYOR).await;
    let web = server.web_url().to_owned();
    let [first, second, third] = <[String; 3]>::try_from(villages()).unwrap();
    let period = this_year();
    let copy = |from: &Path, to: &Path| {
        let _ = std::fs::remove_dir_all(to);
        let done = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status();
        assert!(done.is_ok_and(|s| s.success()), "copy {} to {}", from.display(), to.display());
    };

    let browser = Browser::open(profile.path(), PHONE).await;
    open_app(&browser.client, &web).await;
    enroll(&browser.client, &code).await;
    record_in_form(&browser.client, &first, &[("road_km", "1")]).await;
    sync_now(&browser.client).await;
    browser.close().await;
    copy(profile.path(), &backup.path().join("phone"));

    let browser = Browser::open(profile.path(), PHONE).await;
    open_app(&browser.client, &web).await;
    record_in_form(&browser.client, &second, &[("drainage_km", "0,5")]).await;
    sync_now(&browser.client).await;
    browser.close().await;

    copy(&backup.path().join("phone"), profile.path());
    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    open_app(&client, &web).await;
    // The restored phone has not heard of the second edit; its next edit
    // takes the id the server already holds for it.
    run_js(
        &client,
        "while (document.querySelector('#sync-status').dataset.state === 'syncing') \
                     await new Promise((r) => setTimeout(r, 100));",
    )
    .await;
    record_in_form(&client, &third, &[("road_km", "3")]).await;
    let summary = run_js(&client, "return await globalThis.fieldsyncApp.sync();").await;
    assert_eq!(summary["ok"], Json::Bool(true), "{summary}");
    assert_eq!(summary["renumbered"], 1, "{summary}");
    wait_attr(&client, "#pending-count", "data-count", "0").await;
    assert_eq!(on_server(&server, &first, &period, "road_km").as_deref(), Some("1"));
    assert_eq!(on_server(&server, &second, &period, "drainage_km").as_deref(), Some("0.5"));
    assert_eq!(on_server(&server, &third, &period, "road_km").as_deref(), Some("3"));
    let device = state(&client).await["deviceId"].as_str().unwrap().to_owned();
    assert_eq!(audited_ids(&server, &third, &period, &device), [3]);
    browser.close().await;
    server.stop().await;
}

/// When the connection comes back (the browser's `online` event) the app
/// syncs by itself, without the button.
#[tokio::test]
async fn the_app_syncs_by_itself_when_the_connection_comes_back() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let code = code_for(&server, SURVEYOR).await;
    let (grpc, web) = (server.url.clone(), server.web_url().to_owned());
    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    open_app(&client, &web).await;
    enroll(&client, &code).await;
    server.stop().await;
    record_in_form(&client, VILLAGE, &[("canal_km", "0,75")]).await;
    assert_eq!(pending_count(&client).await, "1");

    let server = start_web_server_at(dir.path(), &grpc, &web).await;
    run_js(&client, "window.dispatchEvent(new Event('online'));").await;
    wait_attr(&client, "#pending-count", "data-count", "0").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    let period = this_year();
    assert_eq!(on_server(&server, VILLAGE, &period, "canal_km").as_deref(), Some("0.75"));
    browser.close().await;
    server.stop().await;
}

/// Enrolled from the QR code's link (the code leaves the address at once),
/// the form refuses a part above its whole, says why in Vietnamese, and in
/// English after the switch, and saves nothing.
#[tokio::test]
async fn a_part_above_its_whole_is_refused_in_either_language_and_nothing_is_saved() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let code = code_for(&server, SURVEYOR).await;
    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    client.goto(&format!("{}/app/#enroll={code}", server.web_url())).await.unwrap();
    started(&client).await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    let address = client.current_url().await.unwrap().to_string();
    assert!(!address.contains("enroll") && !address.contains(&code), "{address}");
    assert_eq!(state(&client).await["userId"], SURVEYOR);

    let search = client.find(Locator::Id("village-search")).await.unwrap();
    search.send_keys("phúc đồng").await.unwrap();
    click(&client, &format!("button[data-village=\"{VILLAGE}\"]")).await;
    for (field, value) in [("road_km", "1"), ("road_cement_km", "1,5")] {
        let css = format!("input[data-field=\"{field}\"]");
        let input = client.wait().at_most(PATIENCE).for_element(Locator::Css(&css)).await;
        input.unwrap().send_keys(value).await.unwrap();
    }
    click(&client, "#save").await;
    wait_text(&client, "#form-error", |t| t.contains("Không được lớn hơn tổng")).await;
    wait_attr(&client, "#saved-state", "data-saved", "0").await;

    click(&client, "#lang").await;
    wait_text(&client, "#sync-button", |t| t == "Sync").await;
    click(&client, "#save").await;
    wait_text(&client, "#form-error", |t| t.contains("A part cannot exceed its whole")).await;
    wait_text(&client, "#lang", |t| t == "Tiếng Việt").await;
    assert_eq!(pending_count(&client).await, "0");
    assert_eq!(run_js(&client, "return await globalThis.fieldsyncApp.pending();").await, 0);
    browser.close().await;
    server.stop().await;
}

/// Issue test 5: the device's token is revoked; the app keeps its unsent
/// edits and asks for a new code (one of another user is refused); a new
/// code of the same user sends the edits under the same device id.
#[tokio::test]
async fn a_revoked_device_keeps_its_edits_until_a_new_code_of_the_same_user() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    server.user("binh.tran", "Trần Thị Bình", Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let code = code_for(&server, SURVEYOR).await;
    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    open_app(&client, server.web_url()).await;
    enroll(&client, &code).await;
    let device = state(&client).await["deviceId"].as_str().unwrap().to_owned();
    let period = this_year();
    record_in_form(&client, VILLAGE, &[("road_km", "2"), ("drainage_km", "0,3")]).await;

    let admin = server.store.user("admin").unwrap().unwrap();
    for token in server.store.tokens(&admin, Some(SURVEYOR)).unwrap() {
        server.store.revoke_token(&admin, &token.id, now_ms()).unwrap();
    }
    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "auth").await;
    wait_text(&client, "#reenroll", |t| t.contains("2 sửa đổi chưa gửi")).await;
    assert_eq!(pending_count(&client).await, "2");
    assert_eq!(on_server(&server, VILLAGE, &period, "road_km"), None);

    // A code of someone else is refused while An's edits wait.
    let other = code_for(&server, "binh.tran").await;
    let input = client.find(Locator::Id("enroll-code")).await.unwrap();
    input.send_keys(&other).await.unwrap();
    click(&client, "#enroll-submit").await;
    wait_text(&client, "#enroll-error", |t| t.contains(SURVEYOR_NAME)).await;
    assert_eq!(pending_count(&client).await, "2");

    let again = code_for(&server, SURVEYOR).await;
    enroll(&client, &again.to_lowercase()).await;
    wait_attr(&client, "#pending-count", "data-count", "0").await;
    let after = state(&client).await;
    assert_eq!(after["deviceId"].as_str(), Some(device.as_str()), "the device keeps its id");
    assert_eq!(after["auth"], Json::Null);
    assert!(!client.find(Locator::Id("reenroll")).await.unwrap().is_displayed().await.unwrap());
    assert_eq!(on_server(&server, VILLAGE, &period, "road_km").as_deref(), Some("2"));
    assert_eq!(on_server(&server, VILLAGE, &period, "drainage_km").as_deref(), Some("0.3"));
    browser.close().await;
    server.stop().await;
}

/// The escape hatch: "Xuất các sửa đổi chưa gửi" downloads the outbox as
/// the unsent-edits file; pushed from elsewhere (as `fieldsync push-file`
/// does) it puts the edits on the server, and when the phone syncs after
/// all, its edits are answered as replays: nothing is applied twice.
#[tokio::test]
async fn exported_unsent_edits_reach_the_server_once_even_if_the_phone_syncs_later() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let token = server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let browser = enrolled_phone(&server, profile.path(), SURVEYOR).await;
    let client = browser.client.clone();
    let device = state(&client).await["deviceId"].as_str().unwrap().to_owned();
    let period = this_year();
    record_in_form(&client, VILLAGE, &[("road_km", "3,25"), ("village_sports_area", "1")]).await;

    // Press the button; take the file the browser would save.
    let download = run_js(
        &client,
        "let taken = null;
         let blob = null;
         const click = HTMLAnchorElement.prototype.click;
         const objectUrl = URL.createObjectURL;
         URL.createObjectURL = (b) => { blob = b; return objectUrl(b); };
         HTMLAnchorElement.prototype.click = function () { taken = this.download; };
         try {
           document.querySelector('#export-unsent').click();
           for (let i = 0; i < 100 && !taken; i += 1) await new Promise((r) => setTimeout(r, 50));
         } finally {
           HTMLAnchorElement.prototype.click = click;
           URL.createObjectURL = objectUrl;
         }
         if (!taken || !blob) return null;
         return { name: taken, type: blob.type, text: await blob.text() };",
    )
    .await;
    let name = download["name"].as_str().expect("the button gives a file");
    assert!(name.starts_with("fieldsync-unsent-") && name.ends_with(".json"), "{name}");
    assert_eq!(download["type"], "application/json");
    let text = download["text"].as_str().unwrap();
    let (file, from, mutations) = unsent::UnsentEdits::parse(text.as_bytes()).expect("a good file");
    assert_eq!((file.user_id.as_str(), from.to_string()), (SURVEYOR, device.clone()));
    assert_eq!(mutations.len(), 2);

    let mut remote = Grpc::connect(&server.url, &token).await.expect("connect");
    let pushed = unsent::push(&mut remote, from, &mutations, &Retry::immediate(0), &mut |_| {})
        .await
        .expect("push the file");
    assert_eq!(pushed.count(Outcome::Applied), 2);
    assert_eq!(on_server(&server, VILLAGE, &period, "road_km").as_deref(), Some("3.25"));

    // The phone reaches the server after all: its edits are known there.
    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    wait_attr(&client, "#pending-count", "data-count", "0").await;
    let mut audited = audited_ids(&server, VILLAGE, &period, &device);
    audited.sort_unstable();
    assert_eq!(audited, [1, 2], "each edit once in the audit");
    browser.close().await;
    server.stop().await;
}

async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots").join(name);
    std::fs::write(&path, png).expect("write screenshot");
}

/// Regenerates `docs/screenshots/app-*.png` at phone size: enrollment, the
/// village list, the form, a conflict, a synced report.
#[tokio::test]
#[ignore]
async fn screenshots() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    server.user(SURVEYOR, SURVEYOR_NAME, Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
    let code = code_for(&server, SURVEYOR).await;
    let period = this_year();
    let [first, second, third] = <[String; 3]>::try_from(villages()).unwrap();
    let browser = Browser::open(profile.path(), PHONE).await;
    let client = browser.client.clone();
    // Headless windows start wider than a phone and count their frame in
    // the height; this makes the page itself 360 × 640.
    client.set_window_size(PHONE.0, PHONE.1).await.expect("a phone-sized window");
    open_app(&client, server.web_url()).await;
    let inner = run_js(&client, "return innerHeight;").await.as_u64().unwrap_or(640) as u32;
    let frame = PHONE.1.saturating_sub(inner);
    client.set_window_size(PHONE.0, PHONE.1 + frame).await.expect("a phone-sized page");
    let input = client.find(Locator::Id("enroll-code")).await.unwrap();
    input.send_keys(&code[..6]).await.unwrap();
    shoot(&client, "app-enroll.png").await;
    input.clear().await.unwrap();
    enroll(&client, &code).await;

    // Another surveyor's tablet disputes a count in the first village.
    let other = server.tablet("Trần Thị Bình").await;
    record_in_form(&client, &first, &[("road_km", "1,25"), ("village_cultural_house", "1")]).await;
    record_in_form(&client, &second, &[("road_km", "0,8"), ("drainage_km", "0,3")]).await;
    other.record_at(&first, &period, &[("village_cultural_house", "2")]);
    other.sync(&server.url).await;
    click(&client, "#sync-button").await;
    wait_attr(&client, "#sync-status", "data-state", "ok").await;
    record_in_form(&client, &third, &[("road_km", "2")]).await;
    let search = client.find(Locator::Id("village-search")).await.unwrap();
    search.clear().await.unwrap();
    search.send_keys("phuc dong").await.unwrap();
    client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    shoot(&client, "app-villages.png").await;

    click(&client, &format!("button[data-village=\"{third}\"]")).await;
    let drainage = client.find(Locator::Css("input[data-field=drainage_km]")).await.unwrap();
    drainage.send_keys("0,45").await.unwrap();
    client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    shoot(&client, "app-form.png").await;
    click(&client, "#back").await;

    click(&client, &format!("li[data-submission=\"{first}|{period}\"] button")).await;
    wait_attr(&client, "[data-field-status=village_cultural_house]", "data-state", "conflict")
        .await;
    client
        .execute(
            "document.querySelector('[data-field-status=village_cultural_house]')
                .scrollIntoView({ block: 'center' })",
            vec![],
        )
        .await
        .unwrap();
    shoot(&client, "app-conflict.png").await;
    click(&client, "#back").await;

    click(&client, &format!("li[data-submission=\"{second}|{period}\"] button")).await;
    wait_attr(&client, "[data-field-status=road_km]", "data-state", "synced").await;
    client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    shoot(&client, "app-synced.png").await;
    browser.close().await;
    server.stop().await;
}
