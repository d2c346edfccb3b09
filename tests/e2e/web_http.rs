//! The web pages over plain HTTP, no browser: sessions, CSRF, permissions,
//! and the status codes of what goes wrong.

use crate::util;

use fieldsync::access::Role;
use fieldsync::demo;
use fieldsync::review::ReviewState;
use fieldsync::sync::FieldRef;
use fieldsync::Period;
use util::http::{self, get, post};
use util::{start_web_server, TestServer, PERIOD, VILLAGE};

/// A server with the sample village's report pushed by a tablet, and a
/// commune supervisor of it; returns the supervisor's token.
async fn with_a_report(dir: &std::path::Path) -> (TestServer, String) {
    let server = start_web_server(dir).await;
    let tablet = server.tablet("Nguyễn Văn An").await;
    tablet.record(&[("road_km", "1.25")]);
    tablet.sync(&server.url).await;
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    (server, token)
}

fn state(server: &TestServer) -> ReviewState {
    let period = PERIOD.parse::<Period>().unwrap();
    server.store.submission(VILLAGE, period).unwrap().expect("the report exists").review.state
}

#[tokio::test]
async fn signing_in_gives_a_strict_httponly_session_cookie_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    let web = server.web_url();
    let form = get(web, "/signin", "").await;
    let pre = form.cookie("fs_signin").unwrap();
    let csrf = form.input("csrf").unwrap();
    let reply =
        post(web, "/signin", &format!("fs_signin={pre}"), &[("csrf", &csrf), ("token", &token)])
            .await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/queue"));
    let cookie = reply.set_cookies().into_iter().find(|c| c.starts_with("fs_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains(&token) && !cookie.contains(&token[3..]),
        "the token stays on the server"
    );
    let session = format!("fs_session={}", reply.cookie("fs_session").unwrap());
    let queue = get(web, "/queue", &session).await;
    assert_eq!(queue.status, 200);
    assert!(queue.text().contains("Trần Văn Giám"), "the page names who is signed in");
    assert!(queue.text().contains("Thôn 1") || queue.text().contains(VILLAGE));
    server.stop().await;
}

#[tokio::test]
async fn wrong_tokens_and_forged_sign_ins_start_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    let web = server.web_url();
    let form = get(web, "/signin", "").await;
    let pre = form.cookie("fs_signin").unwrap();
    let csrf = form.input("csrf").unwrap();
    let wrong = post(
        web,
        "/signin",
        &format!("fs_signin={pre}"),
        &[("csrf", &csrf), ("token", "fs_not-a-token")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.cookie("fs_session").is_none());
    assert!(wrong.text().contains("thu hồi"), "says why, in Vietnamese: {}", wrong.text());
    // A sign-in posted from elsewhere has no matching sign-in cookie.
    let forged = post(web, "/signin", "", &[("csrf", &csrf), ("token", &token)]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.cookie("fs_session").is_none());
    server.stop().await;
}

#[tokio::test]
async fn pages_need_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = with_a_report(dir.path()).await;
    let web = server.web_url();
    for path in ["/queue", "/conflicts", "/progress", "/progress.csv"] {
        let reply = get(web, path, "").await;
        assert_eq!((reply.status, reply.header("location")), (303, Some("/signin")), "{path}");
        let reply = get(web, path, "fs_session=0123456789abcdef").await;
        assert_eq!((reply.status, reply.header("location")), (303, Some("/signin")), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_decision_needs_the_sessions_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    let web = server.web_url();
    let (session, csrf) = http::sign_in(web, &token).await;
    let path = format!("/submissions/{VILLAGE}/{PERIOD}/decide");
    let none = post(web, &path, &session, &[("verdict", "approve")]).await;
    assert_eq!(none.status, 403);
    let wrong =
        post(web, &path, &session, &[("csrf", &"0".repeat(64)), ("verdict", "approve")]).await;
    assert_eq!(wrong.status, 403);
    assert_eq!(state(&server), ReviewState::Submitted, "a forged post changes nothing");
    let real = post(web, &path, &session, &[("csrf", &csrf), ("verdict", "approve")]).await;
    assert_eq!(real.status, 303, "{}", real.text());
    assert_eq!(state(&server), ReviewState::Approved);
    // Rejecting needs a reason; the page says so with a 400.
    let reopen = post(web, &path, &session, &[("csrf", &csrf), ("verdict", "reopen")]).await;
    assert_eq!(reopen.status, 303);
    let reject = post(web, &path, &session, &[("csrf", &csrf), ("verdict", "reject")]).await;
    assert_eq!(reject.status, 400);
    assert!(reject.text().contains("Cần ghi lý do để từ chối"), "{}", reject.text());
    assert_eq!(state(&server), ReviewState::Submitted);
    // A reason over 2,000 characters is refused with the limit, and changes nothing.
    let long = "x".repeat(2_001);
    let fields = [("csrf", csrf.as_str()), ("verdict", "reject"), ("reason", long.as_str())];
    let reject = post(web, &path, &session, &fields).await;
    assert_eq!(reject.status, 400);
    assert!(reject.text().contains("at most 2000"), "{}", reject.text());
    assert_eq!(state(&server), ReviewState::Submitted);
    server.stop().await;
}

#[tokio::test]
async fn areas_are_enforced_as_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let catalogue = server.store.catalogue();
    let elsewhere = catalogue
        .units_at(fieldsync::Level::Village, Some(demo::PROVINCE))
        .into_iter()
        .find(|v| !v.id.starts_with("ha-tinh.huong-khe."))
        .map(|v| v.id.clone())
        .unwrap();
    let tablet = server.tablet("Lê Văn Cường").await;
    tablet.record_at(&elsewhere, PERIOD, &[("road_km", "2")]);
    tablet.sync(&server.url).await;
    let surveyor =
        server.user("an.nguyen", "Nguyễn Văn An", Role::Surveyor, &["ha-tinh.huong-khe"]);
    let web = server.web_url();
    let (session, csrf) = http::sign_in(web, &surveyor).await;
    let other = get(web, &format!("/submissions/{elsewhere}/{PERIOD}"), &session).await;
    assert_eq!(other.status, 403);
    assert!(other.text().contains("an.nguyen"), "says who is refused: {}", other.text());
    let decide = post(
        web,
        &format!("/submissions/{elsewhere}/{PERIOD}/decide"),
        &session,
        &[("csrf", &csrf), ("verdict", "approve")],
    )
    .await;
    assert_eq!(decide.status, 403);
    let missing = get(web, &format!("/submissions/{VILLAGE}/{PERIOD}"), &session).await;
    assert_eq!(missing.status, 404, "nothing recorded there yet");
    let bad = get(web, &format!("/submissions/{VILLAGE}/20x2"), &session).await;
    assert_eq!(bad.status, 400);
    let other_area = get(web, "/queue?area=ha-tinh.can-loc", &session).await;
    assert_eq!(other_area.status, 403);
    let nowhere = get(web, "/no/such/page", &session).await;
    assert_eq!(nowhere.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn oversized_forms_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    let web = server.web_url();
    let (session, csrf) = http::sign_in(web, &token).await;
    let huge = "x".repeat(200 * 1024);
    let path = format!("/submissions/{VILLAGE}/{PERIOD}/decide");
    let reply =
        post(web, &path, &session, &[("csrf", &csrf), ("verdict", "reject"), ("reason", &huge)])
            .await;
    assert_eq!(reply.status, 413);
    assert_eq!(state(&server), ReviewState::Submitted);
    server.stop().await;
}

#[tokio::test]
async fn signing_out_or_revoking_the_token_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    let web = server.web_url();
    let (session, csrf) = http::sign_in(web, &token).await;
    let forged = post(web, "/signout", &session, &[]).await;
    assert_eq!(forged.status, 403, "signing out is a form like any other");
    let out = post(web, "/signout", &session, &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.header("location")), (303, Some("/signin")));
    let after = get(web, "/queue", &session).await;
    assert_eq!((after.status, after.header("location")), (303, Some("/signin")));

    let (session, _) = http::sign_in(web, &token).await;
    let admin = server.store.user("admin").unwrap().unwrap();
    for info in server.store.tokens(&admin, Some("giam.tran")).unwrap() {
        server.store.revoke_token(&admin, &info.id, fieldsync_client::now_ms()).unwrap();
    }
    let after = get(web, "/queue", &session).await;
    assert_eq!((after.status, after.header("location")), (303, Some("/signin")));
    server.stop().await;
}

#[tokio::test]
async fn english_is_a_click_away_and_numbers_read_vietnamese_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let tablet = server.tablet("Nguyễn Văn An").await;
    tablet.record(&[("road_km", "12.5")]);
    tablet.sync(&server.url).await;
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url();
    let (session, _) = http::sign_in(web, &token).await;
    let page = get(web, &format!("/submissions/{VILLAGE}/{PERIOD}"), &session).await;
    assert!(page.text().contains("12,5"), "{}", page.text());
    assert!(page.text().contains("Duyệt"));
    let switch = get(web, "/lang/en", &session).await;
    assert_eq!(switch.status, 303);
    let lang = format!("fs_lang={}", switch.cookie("fs_lang").unwrap());
    let page =
        get(web, &format!("/submissions/{VILLAGE}/{PERIOD}"), &format!("{session}; {lang}")).await;
    assert!(page.text().contains("12.5") && !page.text().contains("12,5"), "{}", page.text());
    assert!(page.text().contains("Approve"));
    drop(tablet);
    server.stop().await;
}

#[tokio::test]
async fn the_queue_downloads_as_csv_with_the_same_filter_and_areas() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let catalogue = server.store.catalogue();
    let ours: Vec<String> = catalogue
        .units_at(fieldsync::Level::Village, Some(demo::SAMPLE_COMMUNE))
        .iter()
        .map(|v| v.id.clone())
        .take(3)
        .collect();
    let elsewhere = catalogue
        .units_at(fieldsync::Level::Village, Some(demo::PROVINCE))
        .into_iter()
        .find(|v| catalogue.lineage(&v.id).all(|u| u.id != demo::SAMPLE_COMMUNE))
        .map(|v| v.id.clone())
        .unwrap();
    let tablet = server.tablet("Nguyễn Văn An").await;
    for village in ours.iter().chain([&elsewhere]) {
        tablet.record_at(village, PERIOD, &[("road_km", "1.5")]);
    }
    tablet.sync(&server.url).await;
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url();
    let (session, csrf) = http::sign_in(web, &token).await;
    let approve = post(
        web,
        &format!("/submissions/{}/{PERIOD}/decide", ours[0]),
        &session,
        &[("csrf", &csrf), ("verdict", "approve")],
    )
    .await;
    assert_eq!(approve.status, 303, "{}", approve.text());
    // A reason a spreadsheet would run as a formula.
    let formula = "=HYPERLINK(\"http://example.com\",\"xem\")";
    let sent_back = post(
        web,
        &format!("/submissions/{}/{PERIOD}/decide", ours[1]),
        &session,
        &[("csrf", &csrf), ("verdict", "return"), ("reason", formula)],
    )
    .await;
    assert_eq!(sent_back.status, 303, "{}", sent_back.text());

    let page = get(web, &format!("/queue?period={PERIOD}"), &session).await;
    assert!(page.text().contains("id=\"queue-csv\""), "the queue links its download");
    let csv = get(web, &format!("/queue.csv?period={PERIOD}&area=&state="), &session).await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let disposition = csv.header("content-disposition").unwrap();
    assert!(disposition.contains(&format!("bao-cao-tat-ca-{PERIOD}.csv")), "{disposition}");
    let text = csv.text();
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark for Excel");
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("village_id,village,commune,district,province,period,state"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), ours.len(), "only the supervisor's commune: {rows:?}");
    for village in &ours {
        let name = &catalogue.org_units[village].name;
        let row = rows.iter().find(|r| r.starts_with(&format!("{village},"))).unwrap();
        assert!(row.contains(name.as_str()), "{row}");
        let state = match village {
            v if *v == ours[0] => ",approved,",
            v if *v == ours[1] => ",returned,",
            _ => ",submitted,",
        };
        assert!(row.contains(state), "{row}");
    }
    let returned = rows.iter().find(|r| r.contains(",returned,")).unwrap();
    assert!(returned.contains("\"'=HYPERLINK("), "the formula is defused: {returned}");
    assert!(!text.contains(&elsewhere), "another commune's report is not listed");

    let approved = get(web, &format!("/queue.csv?period={PERIOD}&state=approved"), &session).await;
    let approved = approved.text();
    assert_eq!(approved.lines().count(), 2, "the header and the approved report: {approved}");
    assert!(approved.contains("Trần Văn Giám"), "who set the state: {approved}");
    let forbidden = get(web, "/queue.csv?area=ha-tinh.can-loc", &session).await;
    assert_eq!(forbidden.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn a_reports_page_shows_its_newest_history_first_and_pages_to_older_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    // 520 edits of the note: more history than one page shows.
    let admin = server.store.user("admin").unwrap().unwrap();
    let device = fieldsync::DeviceId(uuid::Uuid::new_v4());
    let mutations: Vec<fieldsync::sync::Mutation> = (1..=520)
        .map(|i| fieldsync::sync::Mutation {
            id: i,
            village_id: VILLAGE.into(),
            period: PERIOD.into(),
            field: "note".into(),
            value: fieldsync::sync::RawValue::Text(format!("n{i}.")),
            base_version: 0,
            hlc: fieldsync::Hlc::from_millis(fieldsync_client::now_ms()),
            author: "Quản trị".into(),
        })
        .collect();
    server.store.push(&admin, device, &mutations, 0, fieldsync_client::now_ms()).unwrap();
    let web = server.web_url();
    let (session, _) = http::sign_in(web, &token).await;
    let page = get(web, &format!("/submissions/{VILLAGE}/{PERIOD}"), &session).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    let newest = text.find("\">n519. → n520. <span").expect("the latest change is shown");
    let older = text.find("\">n518. → n519. <span").expect("and the one before it");
    assert!(newest < older, "newest first");
    assert!(!text.contains("\">n9. → n10. <span"), "old entries wait for the next page");
    let link = text.split("id=\"older\" href=\"").nth(1).expect("a link to older entries");
    let link = link.split('"').next().unwrap().replace("&amp;", "&");
    let next = get(web, &link, &session).await;
    assert_eq!(next.status, 200, "{}", next.text());
    let next = next.text();
    assert!(next.contains("\">n9. → n10. <span"), "older entries are one click away");
    assert!(!next.contains("\">n519. → n520. <span"), "and the newest are not repeated");
    let bad = get(web, &format!("/submissions/{VILLAGE}/{PERIOD}?before=x"), &session).await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn going_back_after_a_language_switch_never_leaves_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let back = |referer: String| async move {
        let reply = http::request_with(web, "GET", "/lang/en", &[("Referer", &referer)], b"").await;
        assert_eq!(reply.status, 303, "{referer:?}");
        reply.header("location").map(str::to_owned)
    };
    let home = format!("{web}/queue?period=2022");
    assert_eq!(back(home).await.as_deref(), Some("/queue?period=2022"));
    // Browsers read `/\host` as `//host`: another site.
    for away in [format!("{web}/\\evil.example"), format!("{web}//evil.example")] {
        assert_eq!(back(away.clone()).await.as_deref(), Some("/"), "{away:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_user_signing_in_over_and_over_keeps_only_the_latest_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let web = server.web_url();
    let other =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let (kept, _) = http::sign_in(web, &other).await;
    let token = server.user("x", "X", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let per_user = fieldsync_server::web::session::PER_USER;
    let (first, _) = http::sign_in(web, &token).await;
    let mut last = String::new();
    for _ in 0..per_user {
        last = http::sign_in(web, &token).await.0;
    }
    let gone = get(web, "/queue", &first).await;
    assert_eq!((gone.status, gone.header("location")), (303, Some("/signin")), "the oldest ended");
    assert_eq!(get(web, "/queue", &last).await.status, 200);
    assert_eq!(get(web, "/queue", &kept).await.status, 200, "another user's session is kept");
    server.stop().await;
}

/// A connection to `base` from `from` (another loopback address: another
/// peer than the test's own requests).
async fn connect_from(from: &str, base: &str) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().expect("an address"))?;
    let to = base.trim_start_matches("http://").parse().expect("an address");
    socket.connect(to).await
}

#[tokio::test]
async fn slow_request_heads_from_one_address_lock_nobody_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let limits = fieldsync_server::Limits {
        web_connections_per_ip: 8,
        header_read_timeout: std::time::Duration::from_secs(2),
        ..fieldsync_server::Limits::default()
    };
    let server = util::start_web_server_with(dir.path(), limits).await;
    let web = server.web_url().to_owned();
    // 300 connections from one address, each sending its request head a
    // byte at a time, one byte every 200 ms, for as long as it is let.
    let attack = (0..300)
        .map(|_| {
            let web = web.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = connect_from("127.0.0.2", &web).await else { return None };
                let started = std::time::Instant::now();
                for byte in
                    b"GET /signin HTTP/1.1\r\nX-Slow: ".iter().chain(b"a".repeat(1_000).iter())
                {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return Some(started.elapsed());
                    }
                    let mut answer = [0u8; 256];
                    let read = tokio::time::timeout(
                        std::time::Duration::from_millis(200),
                        stream.read(&mut answer),
                    );
                    if let Ok(Ok(0) | Err(_)) = read.await {
                        return Some(started.elapsed());
                    }
                }
                None
            })
        })
        .collect::<Vec<_>>();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let page = tokio::time::timeout(std::time::Duration::from_secs(20), get(&web, "/signin", ""))
        .await
        .expect("served within 20 s during the attack");
    assert_eq!(page.status, 200, "{}", page.text());
    for (i, connection) in attack.into_iter().enumerate() {
        let closed = connection.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("connection {i} was never closed"));
        assert!(
            closed < std::time::Duration::from_secs(30),
            "connection {i} closed only after {closed:?}, though its head takes 2 s at most"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn progress_csv_defuses_names_a_spreadsheet_would_run_as_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let admin = server.store.user("admin").unwrap().unwrap();
    let formula = "=HYPERLINK(\"http://example.com\",\"xem\")";
    let unit = fieldsync::OrgUnit {
        id: format!("{}.thon-moi", demo::SAMPLE_COMMUNE),
        name: formula.into(),
        level: fieldsync::Level::Village,
        parent: Some(demo::SAMPLE_COMMUNE.into()),
    };
    server.store.extend_catalogue(&admin, Some(unit), None, fieldsync_client::now_ms()).unwrap();
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url();
    let (session, _) = http::sign_in(web, &token).await;
    let area = demo::SAMPLE_COMMUNE;
    let csv =
        get(web, &format!("/progress.csv?period={PERIOD}&area={area}&level=village"), &session)
            .await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    let text = csv.text();
    assert!(text.contains("\"'=HYPERLINK("), "the formula is defused: {text}");
    assert!(!text.contains(",\"=HYPERLINK(") && !text.contains(",=HYPERLINK("), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn a_village_supervisor_is_offered_no_settlement_and_cannot_post_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, commune_sup) = with_a_report(dir.path()).await;
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;
    a.record(&[("village_cultural_house", "1")]);
    a.sync(&server.url).await;
    b.record(&[("village_cultural_house", "2")]);
    b.sync(&server.url).await;
    let village_sup = server.user("thon.sup", "Hồ Thị Em", Role::Supervisor, &[VILLAGE]);
    let web = server.web_url();
    let path = format!("/conflicts/{VILLAGE}/{PERIOD}/village_cultural_house");
    let (session, csrf) = http::sign_in(web, &village_sup).await;
    let page = get(web, &path, &session).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(!page.text().contains("id=\"resolve\""), "no settle button for a village area");
    let post = post(web, &path, &session, &[("csrf", &csrf), ("pick", "0")]).await;
    assert_eq!(post.status, 403, "{}", post.text());
    assert!(post.text().contains("a village-level area reviews nothing"), "{}", post.text());
    let key = fieldsync::FieldKey::parse("village_cultural_house");
    let at = FieldRef::new(VILLAGE, PERIOD.parse::<Period>().unwrap(), key);
    let conflict = server.store.conflict(&at).unwrap().expect("a conflict");
    assert!(conflict.open, "still open");
    let (session, _) = http::sign_in(web, &commune_sup).await;
    let page = get(web, &path, &session).await;
    assert!(page.text().contains("id=\"resolve\""), "the commune supervisor may settle it");
    server.stop().await;
}

#[tokio::test]
async fn the_progress_page_reports_a_year_on_its_own_tree_or_restated_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = with_a_report(dir.path()).await;
    let admin = server.store.user("admin").unwrap().unwrap();
    // 1 July 2025: the sample commune merges with a neighbour into a new
    // commune, and the districts go.
    let july = fieldsync::Date::new(2025, 7, 1).unwrap();
    let new = fieldsync::OrgUnit {
        id: "ha-tinh.phuc-hoa".into(),
        name: "Xã Phúc Hòa".into(),
        level: fieldsync::Level::Commune,
        parent: Some("ha-tinh.huong-khe".into()),
    };
    let merged = vec![demo::SAMPLE_COMMUNE.to_owned(), "ha-tinh.huong-khe.hoa-hai".to_owned()];
    let change =
        fieldsync::TreeChange::Merge { units: merged, into: new.id.clone(), new: Some(new) };
    let now = fieldsync_client::now_ms();
    server.store.change_tree(&admin, july, &change, now).unwrap();
    let districts: Vec<String> = server
        .store
        .catalogue()
        .org_units
        .values()
        .filter(|u| u.level == fieldsync::Level::District)
        .map(|u| u.id.clone())
        .collect();
    let gone =
        fieldsync::TreeChange::Merge { units: districts, into: demo::PROVINCE.into(), new: None };
    server.store.change_tree(&admin, july, &gone, now).unwrap();

    let (session, _) = http::sign_in(server.web_url(), util::ADMIN_TOKEN).await;
    let page = |q: String| {
        let web = server.web_url().to_owned();
        let session = session.clone();
        async move { get(&web, &format!("/progress.csv?{q}"), &session).await }
    };
    let by_district = page(format!("period={PERIOD}&area={}&level=district", demo::PROVINCE)).await;
    assert_eq!(by_district.status, 200, "{}", by_district.text());
    assert!(by_district.text().contains("Huyện Hương Khê"), "{}", by_district.text());
    let restated =
        page(format!("period={PERIOD}&area={}&level=commune&tree=2026-01-01", demo::PROVINCE))
            .await;
    assert_eq!(restated.status, 200, "{}", restated.text());
    let text = restated.text();
    let line =
        text.lines().find(|l| l.contains("Xã Phúc Hòa") && l.contains("road_km")).unwrap_or("");
    assert!(line.contains("1.25"), "the old commune's report, restated: {text}");
    assert!(!text.contains("Huyện"), "no district on the new tree: {text}");
    let html = get(server.web_url(), "/progress?period=2022&tree=2026-01-01", &session).await;
    assert!(html.text().contains("name=\"tree\" value=\"2026-01-01\""), "{}", html.text());
    let bad = page("period=2022&tree=someday".into()).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    server.stop().await;
}

#[tokio::test]
async fn the_accepting_level_accepts_all_it_is_offered_and_is_told_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let (server, commune) = with_a_report(dir.path()).await;
    let district =
        server.user("huyen.le", "Lê Thị Huyền", Role::Supervisor, &["ha-tinh.huong-khe"]);
    let web = server.web_url();
    // Nothing to accept before the commune approves.
    let (session, csrf) = http::sign_in(web, &district).await;
    let page = get(web, &format!("/queue?period={PERIOD}"), &session).await.text();
    assert!(!page.contains("bulk-accept") && !page.contains("bulk-approve"), "{page}");
    let (c_session, c_csrf) = http::sign_in(web, &commune).await;
    let page = get(web, &format!("/queue?period={PERIOD}"), &c_session).await.text();
    assert!(page.contains("id=\"bulk-approve\""), "the commune approves all: {page}");
    let path = format!("/submissions/{VILLAGE}/{PERIOD}/decide");
    let approved = post(web, &path, &c_session, &[("csrf", &c_csrf), ("verdict", "approve")]).await;
    assert_eq!(approved.status, 303);
    assert!(approved.header("location").unwrap().ends_with("?decided=approve"));

    let page = get(web, &format!("/queue?period={PERIOD}"), &session).await.text();
    assert!(page.contains("id=\"bulk-accept\"") && page.contains("(1)"), "{page}");
    let sub = format!("{VILLAGE}|{PERIOD}");
    let fields = [
        ("csrf", csrf.as_str()),
        ("verdict", "accept"),
        ("period", PERIOD),
        ("area", ""),
        ("state", ""),
        ("sub", sub.as_str()),
    ];
    let accepted = post(web, "/queue/approve", &session, &fields).await;
    assert_eq!(accepted.status, 303, "{}", accepted.text());
    let to = accepted.header("location").unwrap().to_owned();
    assert!(to.ends_with("&accepted=1"), "{to}");
    assert_eq!(state(&server), ReviewState::Accepted);
    let page = get(web, &to, &session).await.text();
    assert!(page.contains("Đã chấp nhận: 1"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn the_printable_report_reads_as_the_province_writes_it_unit_by_unit() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = with_a_report(dir.path()).await;
    let web = server.web_url();
    let (session, _) = http::sign_in(web, &token).await;
    let catalogue = server.store.catalogue();
    let road = catalogue.indicator("road_km").unwrap().name_vi.clone();
    let villages = catalogue.units_at(fieldsync::Level::Village, Some(demo::SAMPLE_COMMUNE)).len();
    let q = format!("period={PERIOD}&area={}&level=village", demo::SAMPLE_COMMUNE);
    // The progress page links to the report of what it shows.
    let progress = get(web, &format!("/progress?{q}"), &session).await.text();
    let link = format!("id=\"print\" href=\"/progress/report?{}\"", q.replace('&', "&amp;"));
    assert!(progress.contains(&link), "{progress}");

    let report = get(web, &format!("/progress/report?{q}"), &session).await;
    assert_eq!(report.status, 200, "{}", report.text());
    let text = report.text();
    assert!(text.contains("<h1>Kết cấu hạ tầng — Xã Phúc Đồng, năm 2022</h1>"), "{text}");
    assert!(text.contains("Theo từng thôn · số liệu đã duyệt · in ngày "), "{text}");
    // The commune first, then every one of its villages.
    assert_eq!(text.matches("<section class=\"unit\"").count(), 1 + villages, "{text}");
    // The commune's figures in a sentence, as the province writes them: the
    // tablet's 1.25 km waits for review, so it is not counted yet.
    let prose = format!("{road}: 0 km [1 báo cáo chờ duyệt, chưa tính];");
    assert!(text.contains(&prose), "{text}");
    // Counting pending reports: the village's own row says 1,25 too.
    let pending = get(web, &format!("/progress/report?{q}&pending=1"), &session).await.text();
    assert!(pending.contains(&format!("{road}: 1,25 km [gồm 1 báo cáo chờ duyệt];")), "{pending}");
    let village = pending.split(&format!("data-unit=\"{VILLAGE}\"")).nth(1).expect("its section");
    let row = village.split("</tr>").find(|r| r.contains(&road)).expect("its road row");
    assert!(row.contains("<td class=\"num done\">1,25</td>"), "{row}");
    assert!(row.contains("gồm 1 báo cáo chờ duyệt"), "{row}");
    // English on request, with English numbers.
    let switch = get(web, "/lang/en", &session).await;
    let lang = format!("{session}; fs_lang={}", switch.cookie("fs_lang").unwrap());
    let english = get(web, &format!("/progress/report?{q}&pending=1"), &lang).await.text();
    assert!(english.contains("Infrastructure — Xã Phúc Đồng, 2022"), "{english}");
    assert!(english.contains(": 1.25 km [incl. 1 pending]"), "{english}");
    // Another district's report is refused, in Vietnamese.
    let elsewhere =
        get(web, &format!("/progress/report?period={PERIOD}&area=ha-tinh.can-loc"), &session).await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text());
    assert!(!elsewhere.text().contains("Kết cấu hạ tầng"), "{}", elsewhere.text());
    server.stop().await;
}
