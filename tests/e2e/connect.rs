//! The app's API: the Connect protocol's JSON form of `fieldsync.v1` on the
//! web listener, answered by the same services, interceptor and limits as
//! gRPC; and the app's files served from the binary.

use crate::util;

use fieldsync::access::Role;
use fieldsync::demo;
use fieldsync::sync::FieldRef;
use serde_json::{json, Value};
use util::http::{self, Reply};
use util::{start_web_server, TestServer, PERIOD, VILLAGE};

/// POSTs `body` as a unary Connect call of `Sync/<method>`.
async fn call(web: &str, method: &str, token: Option<&str>, body: &Value) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json"), ("Connect-Protocol-Version", "1")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let path = format!("/fieldsync.v1.Sync/{method}");
    http::send(web, "POST", &path, &headers, body.to_string().as_bytes()).await
}

/// The JSON of a reply, or a failure naming what came instead.
fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", reply.status, reply.text()))
}

/// A Connect error reply: its HTTP status, code and message.
fn error_of(reply: &Reply) -> (u16, String, String) {
    assert_eq!(reply.header("content-type"), Some("application/json"), "{}", reply.text());
    let json = json_of(reply);
    let text = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
    (reply.status, text("code"), text("message"))
}

/// One Connect envelope: a flag byte, a 4-byte big-endian length, JSON.
fn envelope(flag: u8, json: &Value) -> Vec<u8> {
    let json = json.to_string();
    let mut out = vec![flag];
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(json.as_bytes());
    out
}

/// The envelopes of a streaming reply, in order.
fn envelopes(mut body: &[u8]) -> Vec<(u8, Value)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "a cut envelope: {body:?}");
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let json = serde_json::from_slice(&body[5..5 + length]).expect("JSON in an envelope");
        out.push((body[0], json));
        body = &body[5 + length..];
    }
    out
}

/// Pulls from `cursor` over Connect, `page_size` changes a page.
async fn pull(web: &str, token: &str, device: &str, cursor: u64, page_size: u32) -> Reply {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Content-Type", "application/connect+json"),
        ("Connect-Protocol-Version", "1"),
        ("Authorization", auth.as_str()),
    ];
    let request = json!({
        "schemaVersion": 1, "deviceId": device, "cursor": cursor.to_string(), "pageSize": page_size
    });
    http::send(web, "POST", "/fieldsync.v1.Sync/Pull", &headers, &envelope(0, &request)).await
}

/// A surveyor of the whole province, signing in with the returned token.
fn surveyor(server: &TestServer, id: &str, name: &str) -> String {
    server.user(id, name, Role::Surveyor, &[demo::PROVINCE])
}

/// A mutation in proto3 JSON, as the app writes it.
fn mutation(id: u64, field: &str, amount: &str, author: &str) -> Value {
    let hlc = fieldsync_client::now_ms() << 16;
    json!({
        "id": id.to_string(), "villageId": VILLAGE, "period": PERIOD, "field": field,
        "value": {"amount": amount}, "baseVersion": "0", "hlc": hlc.to_string(), "author": author
    })
}

fn push_request(device: &str, mutations: Vec<Value>) -> Value {
    json!({"schemaVersion": 1, "deviceId": device, "mutations": mutations})
}

fn new_device() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn bootstrap_push_and_status_speak_proto3_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let token = surveyor(&server, "an.nguyen", "Nguyễn Văn An");

    let catalogue = call(web, "Bootstrap", Some(&token), &json!({"schemaVersion": 1})).await;
    assert_eq!(catalogue.status, 200, "{}", catalogue.text());
    assert_eq!(catalogue.header("content-type"), Some("application/json"));
    let catalogue = json_of(&catalogue);
    let road = catalogue["indicators"].as_array().unwrap().iter().find(|i| i["code"] == "road_km");
    assert_eq!(road.expect("road_km is listed")["kind"], "VALUE_KIND_DECIMAL");
    let village = catalogue["orgUnits"].as_array().unwrap().iter().find(|u| u["id"] == VILLAGE);
    assert_eq!(village.expect("the sample village is listed")["level"], "LEVEL_VILLAGE");

    let device = new_device();
    let pushed = call(
        web,
        "Push",
        Some(&token),
        &push_request(&device, vec![mutation(1, "road_km", "1.5", "Nguyễn Văn An")]),
    )
    .await;
    assert_eq!(pushed.status, 200, "{}", pushed.text());
    let pushed = json_of(&pushed);
    let result = &pushed["results"][0];
    assert_eq!(result["id"], "1", "64-bit numbers are strings");
    assert_eq!(result["outcome"], "OUTCOME_APPLIED", "{pushed}");
    assert_eq!(result["current"]["value"], json!({"amount": "1.5"}));
    assert_eq!(result["current"]["deviceId"], device.as_str());
    assert!(pushed["serverHlc"].as_str().is_some_and(|h| h.parse::<u64>().is_ok()), "{pushed}");

    let status = call(web, "Status", Some(&token), &json!({"deviceId": device})).await;
    assert_eq!(status.status, 200, "{}", status.text());
    let status = json_of(&status);
    assert_eq!(status["lastMutationId"], "1");
    assert_eq!(status["userId"], "an.nguyen");
    assert_eq!(status["userName"], "Nguyễn Văn An");
    assert_eq!(status["role"], "ROLE_SURVEYOR");

    // The server now holds the value, as pushed.
    let at = FieldRef::new(VILLAGE, PERIOD.parse().unwrap(), fieldsync::FieldKey::parse("road_km"));
    let field = server.store.field(&at).unwrap().expect("the field is stored");
    assert_eq!(field.value.to_string(), "1.5");
    server.stop().await;
}

#[tokio::test]
async fn a_value_pushed_by_the_app_reaches_a_cli_tablet_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let token = surveyor(&server, "an.nguyen", "Nguyễn Văn An");
    let device = new_device();
    let mutations = vec![
        mutation(1, "road_km", "2.25", "Nguyễn Văn An"),
        mutation(2, "village_cultural_house", "1", "Nguyễn Văn An"),
    ];
    let pushed = call(web, "Push", Some(&token), &push_request(&device, mutations)).await;
    assert_eq!(pushed.status, 200, "{}", pushed.text());

    let tablet = server.tablet("Trần Thị Bình").await;
    tablet.sync(&server.url).await;
    assert_eq!(tablet.shows("road_km").as_deref(), Some("2.25"));
    assert_eq!(tablet.shows("village_cultural_house").as_deref(), Some("1"));

    // The tablet's edit of another field comes back to the app by Pull.
    tablet.record(&[("drainage_km", "0.4")]);
    tablet.sync(&server.url).await;
    let pulled = pull(web, &token, &device, 0, 500).await;
    assert_eq!(pulled.status, 200, "{}", pulled.text());
    let pages = envelopes(&pulled.body);
    let fields: Vec<(String, Value)> = pages
        .iter()
        .filter(|(flag, _)| *flag == 0)
        .flat_map(|(_, page)| page["changes"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| {
            let f = &c["field"];
            Some((f["field"].as_str()?.to_owned(), f["value"].clone()))
        })
        .collect();
    assert!(fields.contains(&("drainage_km".into(), json!({"amount": "0.4"}))), "{fields:?}");
    assert!(fields.contains(&("road_km".into(), json!({"amount": "2.25"}))), "{fields:?}");
    server.stop().await;
}

#[tokio::test]
async fn pull_streams_a_page_an_envelope_then_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let token = surveyor(&server, "an.nguyen", "Nguyễn Văn An");
    let device = new_device();
    let fields = ["road_km", "drainage_km", "village_cultural_house", "village_sports_area"];
    let mutations: Vec<Value> =
        (1..).zip(fields).map(|(id, field)| mutation(id, field, "1", "Nguyễn Văn An")).collect();
    let pushed = call(web, "Push", Some(&token), &push_request(&device, mutations)).await;
    assert_eq!(pushed.status, 200, "{}", pushed.text());
    let pushed = json_of(&pushed);
    let outcomes: Vec<&Value> =
        pushed["results"].as_array().unwrap().iter().map(|r| &r["outcome"]).collect();
    assert!(outcomes.iter().all(|o| *o == "OUTCOME_APPLIED"), "{outcomes:?}");

    let pulled = pull(web, &token, &device, 0, 1).await;
    assert_eq!(pulled.status, 200, "{}", pulled.text());
    assert_eq!(pulled.header("content-type"), Some("application/connect+json"));
    let pages = envelopes(&pulled.body);
    let (end_flag, end) = pages.last().expect("an end-of-stream envelope");
    assert_eq!(*end_flag, 2, "the last envelope ends the stream");
    assert_eq!(end, &json!({}), "a stream that went well ends with {{}}");
    let pages = &pages[..pages.len() - 1];
    assert!(pages.len() >= fields.len(), "one page per change at page size 1: {pages:?}");
    assert!(pages
        .iter()
        .all(|(flag, page)| *flag == 0 && page["changes"].as_array().unwrap().len() == 1));
    let cursors: Vec<u64> =
        pages.iter().map(|(_, p)| p["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors move forward: {cursors:?}");
    assert_eq!(pages.last().unwrap().1["caughtUp"], true);
    let resumed = envelopes(&pull(web, &token, &device, cursors[1], 500).await.body);
    let after: usize =
        resumed.iter().map(|(_, p)| p["changes"].as_array().map_or(0, |c| c.len())).sum();
    assert_eq!(after, pages.len() - 2, "a pull resumes after the cursor it is given");

    // A refused pull still answers 200, its error in the end envelope.
    let ahead = pull(web, &token, &device, 1 << 40, 500).await;
    assert_eq!(ahead.status, 200);
    let ahead = envelopes(&ahead.body);
    assert_eq!(ahead.len(), 1, "{ahead:?}");
    assert_eq!(ahead[0].0, 2);
    assert_eq!(ahead[0].1["error"]["code"], "failed_precondition", "{:?}", ahead[0].1);
    assert!(!ahead[0].1["error"]["message"].as_str().unwrap_or_default().is_empty());
    let anonymous = http::send(
        web,
        "POST",
        "/fieldsync.v1.Sync/Pull",
        &[("Content-Type", "application/connect+json"), ("Connect-Protocol-Version", "1")],
        &envelope(0, &json!({"schemaVersion": 1, "deviceId": device})),
    )
    .await;
    assert_eq!(envelopes(&anonymous.body)[0].1["error"]["code"], "unauthenticated");
    server.stop().await;
}

#[tokio::test]
async fn refusals_carry_the_grpc_status_as_connect_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let token = surveyor(&server, "an.nguyen", "Nguyễn Văn An");
    let device = new_device();
    let one = push_request(&device, vec![mutation(1, "road_km", "1.5", "An")]);

    let (status, code, message) = error_of(&call(web, "Push", None, &one).await);
    assert_eq!((status, code.as_str()), (401, "unauthenticated"), "{message}");
    assert!(message.contains("token"), "says what is missing: {message}");
    let wrong = call(web, "Push", Some("fs_not-a-token"), &one).await;
    assert_eq!(error_of(&wrong).0, 401);

    let bad = call(web, "Push", Some(&token), &json!({"schemaVersion": "one"})).await;
    let (status, code, message) = error_of(&bad);
    assert_eq!((status, code.as_str()), (400, "invalid_argument"));
    assert!(message.contains("Sync/Push") && message.contains("one"), "{message}");
    let unknown = call(web, "Push", Some(&token), &json!({"deviceID": device})).await;
    let (status, _, message) = error_of(&unknown);
    assert_eq!(status, 400);
    assert!(message.contains("deviceID"), "names the unknown field: {message}");

    // The same Batched limit as gRPC: more than 1,000 mutations, refused
    // before anything is decoded or stored.
    let many = (1..=1001).map(|id| mutation(id, "road_km", "1", "An")).collect();
    let (status, code, message) =
        error_of(&call(web, "Push", Some(&token), &push_request(&device, many)).await);
    assert_eq!((status, code.as_str()), (429, "resource_exhausted"), "{message}");
    assert!(message.contains("1000") || message.contains("1,000"), "{message}");
    let status = json_of(&call(web, "Status", Some(&token), &json!({"deviceId": device})).await);
    assert_eq!(status["lastMutationId"], Value::Null, "nothing was stored: {status}");
    // A million empty mutations fit in 4 MiB of JSON: counted, not decoded.
    let flood = format!("{{\"mutations\":[{}]}}", vec!["{}"; 1_300_000].join(","));
    let headers = [("Content-Type", "application/json"), ("Connect-Protocol-Version", "1")];
    let flooded =
        http::send(web, "POST", "/fieldsync.v1.Sync/Push", &headers, flood.as_bytes()).await;
    let (status, code, message) = error_of(&flooded);
    assert_eq!((status, code.as_str()), (429, "resource_exhausted"), "{message}");
    assert!(message.contains("1300000 mutations"), "{message}");

    let first = call(web, "Push", Some(&token), &one).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let replay = call(web, "Push", Some(&token), &one).await;
    assert_eq!(
        json_of(&replay)["results"][0]["outcome"],
        "OUTCOME_APPLIED",
        "a replay is answered"
    );
    let other = push_request(&device, vec![mutation(1, "road_km", "9", "An")]);
    let reused = call(web, "Push", Some(&token), &other).await;
    let (status, code, message) = error_of(&reused);
    assert_eq!((status, code.as_str()), (400, "failed_precondition"), "{message}");
    assert_eq!(reused.header("fieldsync-reused-id"), Some("1"));
    assert_eq!(reused.header("fieldsync-last-mutation-id"), Some("1"));

    let gap = push_request(&device, vec![mutation(5, "road_km", "2", "An")]);
    let (status, code, _) = error_of(&call(web, "Push", Some(&token), &gap).await);
    assert_eq!((status, code.as_str()), (400, "failed_precondition"));
    let at = FieldRef::new(VILLAGE, PERIOD.parse().unwrap(), fieldsync::FieldKey::parse("road_km"));
    let field = server.store.field(&at).unwrap();
    assert_eq!(field.unwrap().value.to_string(), "1.5", "refused pushes stored nothing");
    server.stop().await;
}

#[tokio::test]
async fn only_the_apps_methods_in_the_connect_json_form_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let admin = format!("Bearer {}", util::ADMIN_TOKEN);
    let json_headers = [
        ("Content-Type", "application/json"),
        ("Connect-Protocol-Version", "1"),
        ("Authorization", admin.as_str()),
    ];
    let issue = http::send(
        web,
        "POST",
        "/fieldsync.v1.Admin/IssueToken",
        &json_headers,
        br#"{"userId":"admin"}"#,
    )
    .await;
    let (status, code, _) = error_of(&issue);
    assert_eq!((status, code.as_str()), (404, "unimplemented"), "admin calls stay on gRPC");
    let nope = http::send(web, "POST", "/fieldsync.v1.Sync/Nope", &json_headers, b"{}").await;
    assert_eq!(error_of(&nope).0, 404);

    let get = http::send(web, "GET", "/fieldsync.v1.Sync/Status", &json_headers, b"").await;
    assert_eq!(error_of(&get).0, 405);
    assert_eq!(get.header("allow"), Some("POST"));

    let mut proto = json_headers;
    proto[0] = ("Content-Type", "application/proto");
    let wrong = http::send(web, "POST", "/fieldsync.v1.Sync/Status", &proto, b"").await;
    assert_eq!(error_of(&wrong).0, 415);
    let unary_pull = http::send(web, "POST", "/fieldsync.v1.Sync/Pull", &json_headers, b"{}").await;
    assert_eq!(error_of(&unary_pull).0, 415, "Pull is a stream: application/connect+json");

    let unversioned = http::send(
        web,
        "POST",
        "/fieldsync.v1.Sync/Status",
        &[("Content-Type", "application/json"), ("Authorization", admin.as_str())],
        b"{}",
    )
    .await;
    let (status, code, message) = error_of(&unversioned);
    assert_eq!((status, code.as_str()), (400, "invalid_argument"));
    assert!(message.contains("Connect-Protocol-Version"), "{message}");

    // The caller's own deadline: a push cut off by it may still commit,
    // and sending it again is answered, never applied twice.
    let an = surveyor(&server, "an.nguyen", "Nguyễn Văn An");
    let bearer = format!("Bearer {an}");
    let mut hurried = json_headers.to_vec();
    hurried[2] = ("Authorization", bearer.as_str());
    hurried.push(("Connect-Timeout-Ms", "0"));
    let device = new_device();
    let push = push_request(&device, vec![mutation(1, "road_km", "3", "An")]).to_string();
    let late = http::send(web, "POST", "/fieldsync.v1.Sync/Push", &hurried, push.as_bytes()).await;
    let (status, code, message) = error_of(&late);
    assert_eq!((status, code.as_str()), (504, "deadline_exceeded"), "{message}");
    assert!(message.contains("Connect-Timeout-Ms"), "{message}");
    hurried[3] = ("Connect-Timeout-Ms", "soon");
    let garbled =
        http::send(web, "POST", "/fieldsync.v1.Sync/Push", &hurried, push.as_bytes()).await;
    assert_eq!(error_of(&garbled).0, 400);
    hurried[3] = ("Connect-Timeout-Ms", "30000");
    let again = http::send(web, "POST", "/fieldsync.v1.Sync/Push", &hurried, push.as_bytes()).await;
    assert_eq!(json_of(&again)["results"][0]["outcome"], "OUTCOME_APPLIED", "{}", again.text());
    let sub = fieldsync::SubmissionId::of(VILLAGE, PERIOD.parse().unwrap());
    let history = server.store.history(
        &server.store.user("admin").unwrap().unwrap(),
        &fieldsync_server::db::HistoryQuery {
            user_id: Some("an.nguyen".into()),
            limit: 100,
            ..Default::default()
        },
    );
    let entries = history.unwrap().into_iter().filter(|e| e.submission == Some(sub)).count();
    assert_eq!(entries, 1, "the push was applied once");

    let huge = vec![b' '; fieldsync_server::MAX_MESSAGE_BYTES + 1];
    let over = http::send(web, "POST", "/fieldsync.v1.Sync/Status", &json_headers, &huge).await;
    let (status, code, message) = error_of(&over);
    assert_eq!((status, code.as_str()), (413, "resource_exhausted"), "{message}");
    assert!(message.contains("4 MiB"), "{message}");
    server.stop().await;
}

/// The Content-Security-Policy every file of the app must carry.
const APP_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
                       manifest-src 'self'; object-src 'none'; base-uri 'none'; \
                       frame-ancestors 'none'; form-action 'none'";

/// Every file under `server/app/`, as its path below `/app/`.
fn app_files(dir: &std::path::Path, below: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("server/app") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            app_files(&path, &format!("{below}{name}/"), out);
        } else {
            out.push((format!("{below}{name}"), std::fs::read(&path).unwrap()));
        }
    }
}

#[tokio::test]
async fn every_file_of_the_app_is_served_with_a_strict_csp_and_an_etag() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();

    let bare = http::get(web, "/app", "").await;
    assert_eq!(bare.status, 301);
    assert_eq!(bare.header("location"), Some("/app/"), "the service worker's scope is /app/");

    let shell = http::get(web, "/app/", "").await;
    assert_eq!(shell.status, 200);
    assert_eq!(shell.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(shell.text().to_lowercase().starts_with("<!doctype html"), "{}", shell.text());

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/app");
    let mut files = Vec::new();
    app_files(&root, "", &mut files);
    assert!(files.iter().any(|(path, _)| path == "index.html"));
    for (path, on_disk) in &files {
        let served = http::get(web, &format!("/app/{path}"), "").await;
        assert_eq!(served.status, 200, "{path}");
        assert_eq!(served.header("content-security-policy"), Some(APP_CSP), "{path}");
        assert_eq!(served.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(served.header("cache-control"), Some("no-cache"), "{path}");
        let expected_type = match path.rsplit_once('.').map(|(_, e)| e) {
            Some("html") => "text/html; charset=utf-8",
            Some("js" | "mjs") => "text/javascript; charset=utf-8",
            Some("txt") => "text/plain; charset=utf-8",
            Some("ico") => "image/x-icon",
            Some("woff2") => "font/woff2",
            Some("css") => "text/css; charset=utf-8",
            Some("webmanifest") => "application/manifest+json",
            Some("svg") => "image/svg+xml",
            Some("json") => "application/json",
            Some("png") => "image/png",
            _ => "application/octet-stream",
        };
        assert_eq!(served.header("content-type"), Some(expected_type), "{path}");
        if path == "sw.js" {
            let text = served.text();
            let disk = String::from_utf8_lossy(on_disk);
            assert!(disk.contains("__APP_VERSION__"), "sw.js names its cache by the version");
            assert!(!text.contains("__APP_VERSION__"), "the version is filled in");
            let parts: Vec<&str> = disk.split("__APP_VERSION__").collect();
            assert!(text.starts_with(parts[0]) && text.ends_with(parts[parts.len() - 1]));
        } else {
            assert_eq!(&served.body, on_disk, "{path} is served as it is on disk");
        }
        let etag = served.header("etag").unwrap_or_else(|| panic!("{path} has an ETag"));
        let again = http::request_with(
            web,
            "GET",
            &format!("/app/{path}"),
            &[("If-None-Match", etag)],
            b"",
        )
        .await;
        assert_eq!(again.status, 304, "{path}: the browser's copy is current");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag));
        let stale = http::request_with(
            web,
            "GET",
            &format!("/app/{path}"),
            &[("If-None-Match", "\"0000\"")],
            b"",
        )
        .await;
        assert_eq!(stale.status, 200, "{path}: an old copy gets the new file");
    }

    let missing = http::get(web, "/app/no-such-file.js", "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-security-policy"), Some(APP_CSP));
    let outside = http::get(web, "/app/../Cargo.toml", "").await;
    assert_ne!(outside.status, 200, "nothing but the app's files");

    // The supervisors' pages link to the app.
    let signin = http::get(web, "/signin", "").await;
    assert!(signin.text().contains("href=\"/app/\""), "{}", signin.text());
    server.stop().await;
}

#[tokio::test]
async fn the_app_and_grpc_share_one_rate_limit_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let limits = fieldsync_server::Limits {
        calls_per_second: 1,
        call_burst: 5,
        ..fieldsync_server::Limits::default()
    };
    let server = util::start_web_server_with(dir.path(), limits).await;
    let web = server.web_url();
    let token = surveyor(&server, "an.nguyen", "Nguyễn Văn An");
    let mut grpc = fieldsync_client::Grpc::connect(&server.url, &token).await.unwrap();
    let device = fieldsync::DeviceId(uuid::Uuid::new_v4());
    let mut refused = None;
    for _ in 0..50 {
        use fieldsync_client::Remote;
        if let Err(e) = grpc.status(device).await {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("a burst of gRPC calls is held to the user's rate");
    assert!(refused.contains("too many calls"), "{refused}");
    let over = call(web, "Status", Some(&token), &json!({})).await;
    let (status, code, message) = error_of(&over);
    assert_eq!((status, code.as_str()), (429, "resource_exhausted"), "{message}");
    assert!(message.contains("too many calls from an.nguyen"), "{message}");
    let other = surveyor(&server, "binh.tran", "Trần Thị Bình");
    let fine = call(web, "Status", Some(&other), &json!({})).await;
    assert_eq!(fine.status, 200, "other users go on: {}", fine.text());
    server.stop().await;
}

#[tokio::test]
async fn a_phone_enrolls_with_a_code_over_connect_then_syncs_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    surveyor(&server, "an.nguyen", "Nguyễn Văn An");
    let admin = server.store.user("admin").unwrap().unwrap();
    let (code, _) =
        server.store.create_enrollment(&admin, "an.nguyen", 0, fieldsync_client::now_ms()).unwrap();
    let headers = [("Content-Type", "application/json"), ("Connect-Protocol-Version", "1")];
    let redeem = |code: String| {
        let body = json!({"schemaVersion": 1, "code": code, "deviceLabel": "Chrome on Android"});
        async move {
            http::send(
                web,
                "POST",
                "/fieldsync.v1.Enroll/Redeem",
                &headers,
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    // As typed on a phone: lower case, a space instead of the dash.
    let typed = code.to_lowercase().replace('-', " ");
    let enrolled = redeem(typed.clone()).await;
    assert_eq!(enrolled.status, 200, "no token needed: {}", enrolled.text());
    let enrolled = json_of(&enrolled);
    assert_eq!(enrolled["user"]["id"], "an.nguyen");
    let token = enrolled["token"].as_str().expect("a token").to_owned();
    let device = enrolled["deviceId"].as_str().expect("a device id").to_owned();
    let pushed = call(
        web,
        "Push",
        Some(&token),
        &push_request(&device, vec![mutation(1, "road_km", "1.5", "Nguyễn Văn An")]),
    )
    .await;
    assert_eq!(json_of(&pushed)["results"][0]["outcome"], "OUTCOME_APPLIED", "{}", pushed.text());

    let (status, code_name, message) = error_of(&redeem(typed).await);
    assert_eq!((status, code_name.as_str()), (401, "unauthenticated"), "single use: {message}");
    // Wrong codes are held per address: this peer's, as the bridge passes it on.
    let mut limited = None;
    for i in 0..50 {
        let reply = redeem(format!("WRONG{i:05}")).await;
        if reply.status == 429 {
            limited = Some(error_of(&reply));
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    let (_, code_name, message) = limited.expect("guessing codes from one address is limited");
    assert_eq!(code_name, "resource_exhausted", "{message}");
    server.stop().await;
}
