//! The surveyors' app in headless Chromium, against a real server: the
//! shared validation cases run in the browser (issue test 7), and the sync
//! scenarios between devices: two apps in conflict (test 2), a browser
//! killed while a push of 1,000 edits is in flight (test 4), and an app and
//! a command-line tablet merging one report (test 6).
//!
//! The app is driven through its DOM ids and `globalThis.fieldsyncApp`, the
//! hook the form itself goes through; the server's side is read over gRPC
//! and the supervisor's web pages. One browser session at a time (`TURN`).

use crate::util;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use fieldsync::access::Role;
use fieldsync::demo;
use fieldsync_client::Grpc;
use fieldsync_proto::v1;
use serde_json::{json, Value as Json};
use util::browser::{self, click, run_js, wait_attr, Browser, PATIENCE, TURN};
use util::{start_web_server, start_web_server_at, TestServer, TestTablet, PERIOD, VILLAGE};

/// The shared case file, generated from the Rust core by
/// `tests/e2e/validation_cases.rs`.
const CASES: &str = include_str!("../fixtures/validation-cases.json");

/// Runs every case of `file` (the case file's format) through the app's
/// `validate.js` in the page; the number of cases and those that got
/// another answer than the core's, with what they got.
async fn run_cases(client: &Client, file: &str) -> (u64, Vec<Json>) {
    let script = format!(
        "const {{ validateValue }} = await import('/app/js/validate.js');
         const file = {file};
         const byCode = new Map(file.indicators.map((i) => [i.code, i]));
         const failures = [];
         for (const c of file.cases) {{
           const siblings = c.siblings.map((s) => ({{ indicator: byCode.get(s.code), amount: s.amount }}));
           let got;
           try {{ got = validateValue(byCode.get(c.indicator), c.typed, siblings); }}
           catch (e) {{ got = {{ threw: String(e) }}; }}
           const same = got.ok === c.expect.ok &&
             (got.ok ? got.amount === c.expect.amount
                     : got.kind === c.expect.kind && !!got.vi && !!got.en);
           if (!same) failures.push({{ case: c, got }});
         }}
         return {{ count: file.cases.length, failures }};"
    );
    let answer = run_js(client, &script).await;
    let failures = answer["failures"].as_array().cloned().unwrap_or_default();
    for f in &failures {
        eprintln!("validate.js disagrees with the core: {} → {}", f["case"], f["got"]);
    }
    (answer["count"].as_u64().unwrap_or(0), failures)
}

/// A browser on a blank profile with the app's page open.
async fn app_page(server: &TestServer) -> (Browser, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let app = Browser::open(profile.path(), browser::PHONE).await;
    app.client.goto(&format!("{}/app/", server.web_url())).await.expect("open the app");
    (app, profile)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_validation_cases_pass_in_the_browser() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let (app, _profile) = app_page(&server).await;
    let (count, failures) = run_cases(&app.client, CASES).await;
    let search = run_js(
        &app.client,
        "const { fold, matches } = await import('/app/js/text.js');
         return [fold('Xã Phúc Đồng, Huyện Hương Khê'),
                 matches('Xã Phúc Đồng', 'phuc dong'), matches('Xã Phúc Trạch', 'phuc dong')];",
    )
    .await;
    app.close().await;
    server.stop().await;
    assert!(count >= 300, "the browser ran only {count} cases");
    assert!(failures.is_empty(), "{} of {count} cases fail in the browser", failures.len());
    assert_eq!(search, json!(["xa phuc dong, huyen huong khe", true, false]));
}

/// Random text over the characters that matter (digits, both marks, minus,
/// spaces, a letter) and random sibling values, decided by the core here
/// and by `validate.js` in the browser: the same answer for every one.
#[tokio::test(flavor = "multi_thread")]
async fn random_typed_values_get_the_core_answer_in_the_browser() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("FIELDSYNC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("seed {seed} (rerun with FIELDSYNC_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let file: Json = serde_json::from_str(CASES).expect("the case file");
    let wire = file["indicators"].as_array().expect("indicators").clone();
    let indicators: Vec<fieldsync::Indicator> = wire
        .iter()
        .map(|j| {
            let i: v1::Indicator = serde_json::from_value(j.clone()).expect("an Indicator");
            fieldsync_proto::convert::indicator_from_wire(i).expect("a valid indicator")
        })
        .collect();
    const ALPHABET: &[&str] =
        &["0", "1", "2", "5", "9", "0", "3", ",", ".", "-", " ", "\u{a0}", "e", "7"];
    let mut cases = Vec::new();
    for _ in 0..3000 {
        let ind = &indicators[rng.random_range(0..indicators.len())];
        let len = rng.random_range(0..12);
        let typed: String =
            (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect();
        let related: Vec<&fieldsync::Indicator> = indicators
            .iter()
            .filter(|o| {
                Some(&o.code) == ind.parent.as_ref() || o.parent.as_ref() == Some(&ind.code)
            })
            .filter(|_| rng.random_bool(0.7))
            .collect();
        let siblings: Vec<(&fieldsync::Indicator, fieldsync::Amount)> = related
            .into_iter()
            .map(|o| {
                let scale = o.kind.scale();
                let top = 10i64.pow(u32::from(scale)).saturating_mul(20);
                (o, fieldsync::Amount::new(rng.random_range(0..top), scale))
            })
            .collect();
        let expect = match fieldsync::validate::check_typed(ind, &typed, &siblings) {
            Ok(amount) => json!({ "ok": true, "amount": amount.map(|a| a.to_string()) }),
            Err(refusal) => json!({ "ok": false, "kind": refusal.kind() }),
        };
        let siblings: Vec<Json> = siblings
            .iter()
            .map(|(o, a)| json!({ "code": o.code, "amount": a.to_string() }))
            .collect();
        cases.push(json!({ "indicator": ind.code, "typed": typed, "siblings": siblings, "expect": expect }));
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cases {
        let kind = c["expect"]["kind"].as_str().unwrap_or("accepted").to_owned();
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!("the core's answers: {kinds:?}");
    assert!(kinds.len() >= 8, "the random cases reach too few answers: {kinds:?}");
    let generated = json!({ "indicators": wire, "cases": cases }).to_string();
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let (app, _profile) = app_page(&server).await;
    let (count, failures) = run_cases(&app.client, &generated).await;
    app.close().await;
    server.stop().await;
    assert_eq!(count, 3000);
    assert!(failures.is_empty(), "seed {seed}: {} of {count} random cases differ", failures.len());
}

// ---- The app on a device ----------------------------------------------

/// A surveyor of the Phúc Đồng commune, with a token for gRPC.
fn surveyor(server: &TestServer, id: &str, name: &str) -> String {
    server.user(id, name, Role::Surveyor, &[demo::SAMPLE_COMMUNE])
}

/// A browser on `profile` with the app open and its hook ready.
async fn open_app(profile: &Path, server: &TestServer) -> Browser {
    let app = Browser::open(profile, browser::PHONE).await;
    app.client.goto(&format!("{}/app/", server.web_url())).await.expect("open the app");
    hook(&app.client).await;
    app
}

/// Waits until the page has loaded the hook (the app's modules may still
/// be loading when `goto` returns).
async fn hook(client: &Client) {
    let start = Instant::now();
    loop {
        let ready = run_js(
            client,
            "if (!globalThis.fieldsyncApp) return false; await globalThis.fieldsyncApp.ready; return true;",
        )
        .await;
        if ready == true {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "the app never set up globalThis.fieldsyncApp");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Enrolls the app for `user` with a code a supervisor (here the admin)
/// created, typed into the enrollment screen.
async fn enroll(client: &Client, server: &TestServer, user: &str) {
    hook(client).await;
    let reply = server
        .remote()
        .await
        .admin()
        .create_enrollment(v1::CreateEnrollmentRequest { user_id: user.into(), expires_in_s: 0 })
        .await
        .expect("create an enrollment code")
        .into_inner();
    let input = client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#enroll-code"))
        .await
        .expect("the enrollment screen");
    input.send_keys(&reply.code).await.expect("type the code");
    click(client, "#enroll-submit").await;
    let start = Instant::now();
    loop {
        let shown = match client.find(Locator::Css("#enroll")).await {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        };
        if !shown {
            break;
        }
        let error = match client.find(Locator::Css("#enroll-error")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        assert!(start.elapsed() < PATIENCE, "still on the enrollment screen: {error:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records `fields` for one report through the hook; resolves once durable.
async fn record(client: &Client, village: &str, period: &str, fields: &[(&str, &str)]) {
    let fields: BTreeMap<&str, &str> = fields.iter().copied().collect();
    let args = json!([village, period, fields]);
    run_js(
        client,
        &format!(
            "const [v, p, f] = {args}; await globalThis.fieldsyncApp.record(v, p, f); return null;"
        ),
    )
    .await;
}

/// One sync of the app, as the "Đồng bộ" button starts it; its summary.
async fn sync(client: &Client) -> Json {
    run_js(client, "return await globalThis.fieldsyncApp.sync();").await
}

/// Unsent edits in the app's outbox.
async fn pending(client: &Client) -> u64 {
    let n = run_js(client, "return await globalThis.fieldsyncApp.pending();").await;
    n.as_u64().unwrap_or_else(|| panic!("pending() gave {n}"))
}

/// Opens the report of `village` for `period` in the app's form.
async fn open_report(client: &Client, village: &str, period: &str) {
    let search = client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#village-search"))
        .await
        .expect("the village picker");
    search.clear().await.expect("clear the search");
    search.send_keys("phuc dong").await.expect("type a village name");
    let period_input = client.find(Locator::Css("#period")).await.expect("the period input");
    period_input.clear().await.expect("clear the period");
    period_input.send_keys(period).await.expect("type the period");
    click(client, &format!("button[data-village=\"{village}\"]")).await;
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#report"))
        .await
        .expect("the report form");
}

/// The text of the status of `field` once its `data-state` is `state`.
async fn field_status(client: &Client, field: &str, state: &str) -> String {
    let css = format!("[data-field-status=\"{field}\"]");
    wait_attr(client, &css, "data-state", state).await;
    client.find(Locator::Css(&css)).await.expect("field status").text().await.expect("its text")
}

/// The value of the report form's input for `field`.
async fn input_value(client: &Client, field: &str) -> String {
    let css = format!("input[data-field=\"{field}\"]");
    let e = client.find(Locator::Css(&css)).await.expect("the field's input");
    e.prop("value").await.expect("its value").unwrap_or_default()
}

/// Every audit entry of the server for `village` and `period`.
async fn audit(remote: &Grpc, village: &str, period: &str) -> Vec<v1::AuditEntry> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = remote
            .review()
            .history(v1::HistoryRequest {
                village_id: village.into(),
                period: period.into(),
                after,
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner()
            .entries;
        let Some(last) = page.last() else { return out };
        after = last.seq;
        out.extend(page);
    }
}

/// The value the server holds for each field of the report, as text.
async fn server_fields(remote: &Grpc, village: &str, period: &str) -> BTreeMap<String, String> {
    let detail = remote
        .review()
        .get_submission(v1::GetSubmissionRequest {
            village_id: village.into(),
            period: period.into(),
        })
        .await
        .expect("get submission")
        .into_inner();
    detail
        .fields
        .into_iter()
        .filter_map(|f| {
            let value = fieldsync_proto::convert::value_from_wire(f.value).ok()?;
            Some((f.field, value.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_apps_editing_one_field_offline_see_one_conflict_and_its_settlement() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    surveyor(&server, "an", "Nguyễn Văn An");
    surveyor(&server, "binh", "Trần Thị Bình");
    let supervisor = server.user("chi", "Lê Văn Chí", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let (profile_a, profile_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    // Both phones enroll and sync once while the office network is there.
    let a = open_app(profile_a.path(), &server).await;
    enroll(&a.client, &server, "an").await;
    sync(&a.client).await;
    let b = open_app(profile_b.path(), &server).await;
    enroll(&b.client, &server, "binh").await;
    sync(&b.client).await;

    // Out in the villages, no signal: each records road_km of Thôn 1.
    let (grpc, web) = (server.url.clone(), server.web_url().to_owned());
    server.stop().await;
    record(&a.client, VILLAGE, PERIOD, &[("road_km", "3,5")]).await;
    record(&b.client, VILLAGE, PERIOD, &[("road_km", "4")]).await;
    assert_eq!((pending(&a.client).await, pending(&b.client).await), (1, 1));

    // Back at the commune office, both sync; the second push conflicts.
    let server = start_web_server_at(dir.path(), &grpc, &web).await;
    sync(&a.client).await;
    sync(&b.client).await;
    sync(&a.client).await;
    assert_eq!((pending(&a.client).await, pending(&b.client).await), (0, 0));
    for app in [&a, &b] {
        open_report(&app.client, VILLAGE, PERIOD).await;
        let shown = field_status(&app.client, "road_km", "conflict").await;
        assert!(shown.contains("3,5") || shown.contains("3.5"), "{shown:?} lacks An's value");
        for want in ["4", "Nguyễn Văn An", "Trần Thị Bình"] {
            assert!(shown.contains(want), "the conflict shows {shown:?}, without {want:?}");
        }
    }

    // The supervisor sees it on the conflict page, and keeps An's value.
    let (session, _csrf) = util::http::sign_in(&web, &supervisor).await;
    let page = util::http::get(&web, "/conflicts", &session).await;
    assert_eq!(page.status, 200);
    let row = page
        .text()
        .split("<tr data-conflict=")
        .find(|r| r.starts_with(&format!("\"{VILLAGE}/{PERIOD}/road_km\"")))
        .map(str::to_owned)
        .expect("the conflict on the supervisor's page");
    assert!(row.contains("3,5") && row.contains("Trần Thị Bình"), "{row}");
    let remote = Grpc::connect(&server.url, &supervisor).await.expect("connect");
    let conflicts = remote
        .review()
        .list_conflicts(v1::ListConflictsRequest::default())
        .await
        .expect("list conflicts")
        .into_inner()
        .conflicts;
    assert_eq!(conflicts.len(), 1, "one conflict, not one per device: {conflicts:?}");
    let pick = conflicts[0]
        .candidates
        .iter()
        .position(|c| c.author == "Nguyễn Văn An")
        .expect("An's value among the candidates");
    remote
        .review()
        .resolve_conflict(v1::ResolveConflictRequest {
            village_id: VILLAGE.into(),
            period: PERIOD.into(),
            field: "road_km".into(),
            choice: Some(v1::resolve_conflict_request::Choice::Pick(pick as u32)),
            comment: "đo lại: 3,5 km".into(),
        })
        .await
        .expect("settle the conflict");

    // Both phones learn it on their next sync.
    for app in [&a, &b] {
        sync(&app.client).await;
        open_report(&app.client, VILLAGE, PERIOD).await;
        field_status(&app.client, "road_km", "synced").await;
        let shown = input_value(&app.client, "road_km").await;
        assert!(shown == "3,5" || shown == "3.5", "the app shows road_km = {shown:?}");
    }
    a.close().await;
    b.close().await;
    let fields = server_fields(&remote, VILLAGE, PERIOD).await;
    assert_eq!(fields.get("road_km").map(String::as_str), Some("3.5"));
    server.stop().await;
}

/// Fields for 1,000 distinct edits: every indicator without parts of every
/// village of the Phúc Đồng commune, over enough periods.
fn thousand_edits() -> Vec<(String, String, String, String)> {
    let cat = demo::catalogue();
    let villages: Vec<String> =
        (1..=3).map(|n| format!("{}.thon-{n}", demo::SAMPLE_COMMUNE)).collect();
    let fields: Vec<&str> = cat
        .indicators_in_order()
        .filter(|i| i.parent.is_none() && cat.parts_of(&i.code).next().is_none())
        .map(|i| i.code.as_str())
        .collect();
    let mut edits = Vec::new();
    'all: for year in 2000.. {
        for village in &villages {
            for field in &fields {
                if edits.len() == 1000 {
                    break 'all;
                }
                let value = (edits.len() % 5 + 1).to_string();
                edits.push((village.clone(), year.to_string(), field.to_string(), value));
            }
        }
    }
    edits
}

/// How many of `user`'s edits the server has taken (its audit, first 1,000).
async fn received_from(remote: &Grpc, user: &str) -> usize {
    let entries = remote
        .review()
        .history(v1::HistoryRequest { user_id: user.into(), limit: 1000, ..Default::default() })
        .await
        .expect("history")
        .into_inner()
        .entries;
    entries.iter().filter(|e| e.mutation_id > 0).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_killed_mid_push_of_a_thousand_edits_loses_and_repeats_none() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    surveyor(&server, "an", "Nguyễn Văn An");
    let profile = tempfile::tempdir().unwrap();
    let app = open_app(profile.path(), &server).await;
    enroll(&app.client, &server, "an").await;
    sync(&app.client).await;

    let (grpc, web) = (server.url.clone(), server.web_url().to_owned());
    server.stop().await;
    let edits = thousand_edits();
    let mut by_report: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for (village, period, field, value) in &edits {
        by_report
            .entry((village.clone(), period.clone()))
            .or_default()
            .push((field.clone(), value.clone()));
    }
    let reports: Vec<Json> = by_report
        .iter()
        .map(|((v, p), fields)| json!([v, p, fields.iter().cloned().collect::<BTreeMap<_, _>>()]))
        .collect();
    run_js(
        &app.client,
        &format!(
            "for (const [v, p, f] of {}) await globalThis.fieldsyncApp.record(v, p, f); return null;",
            Json::Array(reports)
        ),
    )
    .await;
    assert_eq!(pending(&app.client).await, 1000);

    // The network is back; the push starts, and the phone dies once the
    // server has taken some of it.
    let server = start_web_server_at(dir.path(), &grpc, &web).await;
    let remote = server.remote().await;
    run_js(&app.client, "globalThis.fieldsyncApp.sync(); return null;").await;
    let start = Instant::now();
    let received = loop {
        let status = received_from(&remote, "an").await;
        if status > 0 {
            break status;
        }
        assert!(start.elapsed() < PATIENCE * 3, "the server never received the push");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    app.kill().await;
    let at_kill = received_from(&remote, "an").await;
    eprintln!("killed the browser once the server had {received} of 1000 edits ({at_kill} after)");
    assert!(at_kill < 1000, "the push had ended before the browser was killed");

    // The phone is switched on again and syncs.
    let app = open_app(profile.path(), &server).await;
    hook(&app.client).await;
    let start = Instant::now();
    while pending(&app.client).await > 0 {
        sync(&app.client).await;
        assert!(
            start.elapsed() < PATIENCE * 6,
            "{} edits still unsent",
            pending(&app.client).await
        );
    }
    app.close().await;

    let mut ids: BTreeMap<u64, usize> = BTreeMap::new();
    for ((village, period), fields) in &by_report {
        let held = server_fields(&remote, village, period).await;
        for (field, value) in fields {
            assert_eq!(held.get(field), Some(value), "{village} {period} {field}");
        }
        for entry in audit(&remote, village, period).await {
            if entry.mutation_id > 0 && entry.kind == "value" {
                *ids.entry(entry.mutation_id).or_default() += 1;
            }
        }
    }
    assert_eq!(ids.len(), 1000, "the audit has {} mutation ids, not 1000", ids.len());
    let repeated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "mutation ids in the audit more than once: {repeated:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_and_a_tablet_editing_different_fields_of_one_report_merge_cleanly() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    surveyor(&server, "an", "Nguyễn Văn An");
    let tablet_token = surveyor(&server, "binh", "Trần Thị Bình");
    let tablet = TestTablet::new(&server.url, &tablet_token).await;
    let profile = tempfile::tempdir().unwrap();
    let app = open_app(profile.path(), &server).await;
    enroll(&app.client, &server, "an").await;
    sync(&app.client).await;

    // Each records its own fields of Thôn 1's report before either syncs.
    record(&app.client, VILLAGE, PERIOD, &[("road_km", "12,25"), ("note", "đo bằng GPS")]).await;
    tablet.record(&[("drainage_km", "2.5"), ("village_cultural_house", "1")]);
    tablet.sync(&server.url).await;
    sync(&app.client).await;
    tablet.sync(&server.url).await;

    let remote = server.remote().await;
    let fields = server_fields(&remote, VILLAGE, PERIOD).await;
    for (field, want) in
        [("road_km", "12.25"), ("drainage_km", "2.5"), ("village_cultural_house", "1")]
    {
        assert_eq!(fields.get(field).map(String::as_str), Some(want), "server's {field}");
    }
    let conflicts = remote
        .review()
        .list_conflicts(v1::ListConflictsRequest::default())
        .await
        .expect("list conflicts")
        .into_inner()
        .conflicts;
    assert!(conflicts.is_empty(), "a clean merge has no conflict: {conflicts:?}");
    assert_eq!(tablet.shows("road_km").as_deref(), Some("12.25"), "the tablet has the app's edit");
    assert_eq!(tablet.shows("note").as_deref(), Some("\"đo bằng GPS\""));

    open_report(&app.client, VILLAGE, PERIOD).await;
    for (field, want) in
        [("road_km", "12,25"), ("drainage_km", "2,5"), ("village_cultural_house", "1")]
    {
        field_status(&app.client, field, "synced").await;
        let shown = input_value(&app.client, field).await;
        assert!(shown == want || shown == want.replace(',', "."), "the app's {field}: {shown:?}");
    }
    assert_eq!(pending(&app.client).await, 0);
    app.close().await;
    server.stop().await;
}

/// Opens the report form of `village` for `period` and waits until it is
/// drawn for that period.
async fn open_form(client: &Client, village: &str, period: &str) {
    open_report(client, village, period).await;
    let start = Instant::now();
    let script = format!(
        "return document.querySelector('#report-title').textContent.endsWith(' — {period}');"
    );
    while run_js(client, &script).await != true {
        assert!(start.elapsed() < PATIENCE, "the form never showed {period}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `data-field` codes of the report form as it stands.
async fn form_fields(client: &Client) -> Vec<String> {
    let got = run_js(
        client,
        "return [...document.querySelectorAll('#report-form input[data-field]')].map((e) => e.dataset.field);",
    )
    .await;
    serde_json::from_value(got).expect("a list of codes")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_indicator_is_not_offered_from_its_period_on_and_stays_in_earlier_ones() {
    let _turn = TURN.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    surveyor(&server, "an", "Nguyễn Văn An");
    let profile = tempfile::tempdir().unwrap();
    let app = open_app(profile.path(), &server).await;
    enroll(&app.client, &server, "an").await;
    sync(&app.client).await;
    open_form(&app.client, VILLAGE, "2026").await;
    assert!(form_fields(&app.client).await.contains(&"drainage_km".to_owned()));

    // The programme's 2026 phase drops drainage; the phone hears of it at
    // its next sync.
    server
        .remote()
        .await
        .admin()
        .retire_indicator(v1::RetireIndicatorRequest {
            code: "drainage_km".into(),
            from_period: "2026".into(),
        })
        .await
        .expect("retire drainage from 2026");
    sync(&app.client).await;
    open_form(&app.client, VILLAGE, "2026-Q3").await;
    let offered = form_fields(&app.client).await;
    assert!(!offered.contains(&"drainage_km".to_owned()), "{offered:?}");
    assert!(offered.contains(&"road_km".to_owned()), "{offered:?}");
    open_form(&app.client, VILLAGE, PERIOD).await;
    assert!(form_fields(&app.client).await.contains(&"drainage_km".to_owned()));

    // Recorded anyway (an old form, a script): refused on the phone, in
    // Vietnamese, and nothing is saved.
    let refused = run_js(
        &app.client,
        &format!(
            "try {{ await globalThis.fieldsyncApp.record({VILLAGE:?}, '2026', {{ drainage_km: '1' }}); \
             return null; }} catch (e) {{ return e.vi || String(e); }}"
        ),
    )
    .await;
    let refused = refused.as_str().unwrap_or_default();
    assert!(refused.contains("không còn ghi từ kỳ 2026"), "{refused:?}");
    assert_eq!(pending(&app.client).await, 0, "nothing saved");
    record(&app.client, VILLAGE, PERIOD, &[("drainage_km", "0,5")]).await;
    sync(&app.client).await;
    let fields = server_fields(&server.remote().await, VILLAGE, PERIOD).await;
    assert_eq!(fields.get("drainage_km").map(String::as_str), Some("0.5"), "2022 takes it");
    app.close().await;
    server.stop().await;
}
