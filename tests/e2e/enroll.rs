//! Enrollment codes end to end, through the real services over gRPC: a
//! supervisor makes a code for a surveyor of their commune, a new device
//! trades it once for a token and a device id, and that token is an
//! ordinary one (it pushes, it is listed, it is revoked). Then what is
//! refused: expired or used codes, codes for someone else's surveyors,
//! codes of another user than the device expects, and guessing.

use crate::util;

use std::net::SocketAddr;

use fieldsync::access::Role;
use fieldsync::demo;
use fieldsync_client::api::{HistoryFilter, NewEnrollment};
use fieldsync_client::Api;
use fieldsync_proto::v1::admin_client::AdminClient;
use fieldsync_proto::v1::enroll_client::EnrollClient;
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{
    value, ListEnrollmentsRequest, Mutation, Outcome, PushRequest, RedeemReply, RedeemRequest,
    RevokeEnrollmentRequest, Value,
};
use fieldsync_proto::SCHEMA_VERSION;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use util::{
    refusal, start_server, start_web_server_with, TestServer, ADMIN_TOKEN, PERIOD, VILLAGE,
};

const COMMUNE: &str = demo::SAMPLE_COMMUNE;
/// Another commune of the same district.
const NEIGHBOUR: &str = "ha-tinh.huong-khe.hoa-hai";

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned()).expect("url").connect().await.expect("connect")
}

/// `message`, signed with `token`.
fn signed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {token}").parse().expect("an ASCII token");
    request.metadata_mut().insert("authorization", value);
    request
}

/// The people of these tests: a surveyor and a supervisor of Phúc Đồng, a
/// supervisor of the neighbouring commune; returns the supervisors' tokens.
fn people(server: &TestServer) -> (String, String) {
    server.user("an.nguyen", "Nguyễn Văn An", Role::Surveyor, &[COMMUNE]);
    let giam = server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[COMMUNE]);
    let other = server.user("hai.le", "Lê Văn Hải", Role::Supervisor, &[NEIGHBOUR]);
    (giam, other)
}

/// A code for `user` made by the owner of `token`, valid for the default time.
async fn create(url: &str, token: &str, user: &str) -> fieldsync_client::Result<NewEnrollment> {
    let api = Api::connect(url, token).await.expect("connect");
    api.create_enrollment(user, 0).await
}

fn redeem_request(code: &str, expected: &str) -> RedeemRequest {
    RedeemRequest {
        schema_version: SCHEMA_VERSION,
        code: code.into(),
        device_label: "Chrome on Android".into(),
        expected_user_id: expected.into(),
    }
}

async fn redeem(url: &str, code: &str, expected: &str) -> Result<RedeemReply, Status> {
    let mut enroll = EnrollClient::new(channel(url).await);
    enroll.redeem(redeem_request(code, expected)).await.map(|r| r.into_inner())
}

fn mutation(id: u64, field: &str, value: &str) -> Mutation {
    Mutation {
        id,
        village_id: VILLAGE.into(),
        period: PERIOD.into(),
        field: field.into(),
        value: Some(Value { kind: Some(value::Kind::Amount(value.into())) }),
        base_version: 0,
        hlc: fieldsync::Hlc::from_millis(fieldsync_client::now_ms()).0,
        author: "app".into(),
    }
}

async fn push(url: &str, token: &str, device: &str, m: Mutation) -> Result<Outcome, Status> {
    let mut sync = SyncClient::new(channel(url).await);
    let request = PushRequest {
        schema_version: SCHEMA_VERSION,
        device_id: device.into(),
        mutations: vec![m],
        acknowledged_through: 0,
    };
    let reply = sync.push(signed(request, token)).await?.into_inner();
    Ok(reply.results[0].outcome())
}

#[tokio::test]
async fn a_supervisors_code_enrolls_one_device_whose_token_pushes_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (giam, _) = people(&server);
    let made = create(&server.url, &giam, "an.nguyen").await.expect("the supervisor makes a code");
    let info = made.info.clone();
    assert_eq!((info.user_id.as_str(), info.created_by.as_str()), ("an.nguyen", "giam.tran"));
    let code = made.code.clone();
    assert_eq!(code.len(), 11, "{code}");
    assert_eq!(&code[5..6], "-", "read as ABCDE-FGHJK: {code}");
    assert!(
        code.chars().filter(|c| *c != '-').all(|c| "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)),
        "{code}"
    );
    assert_ne!(info.id, code.replace('-', ""), "the id is not the code");
    let expires_in = info.expires_ms - info.created_ms;
    assert_eq!(expires_in, 24 * 3600 * 1000, "24 hours by default");
    // No web pages on this server: no app to point at.
    assert_eq!(made.app_url, "");
    // The code is nowhere in the store in plain text.
    let backup = dir.path().join("backup.fsb");
    server.store.backup_to_file(&backup, false).unwrap();
    let bytes = std::fs::read(&backup).unwrap();
    let plain = code.replace('-', "");
    assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_bytes()), "only its hash is kept");

    // Typed in lower case with spaces, it still works: once.
    let typed = format!(" {} {} ", code[..5].to_lowercase(), &code[6..]);
    let device = redeem(&server.url, &typed, "").await.expect("the code redeems");
    let user = device.user.clone().unwrap();
    assert_eq!((user.id.as_str(), user.name.as_str()), ("an.nguyen", "Nguyễn Văn An"));
    let token_info = device.token_info.clone().unwrap();
    assert_eq!(token_info.label, "app: Chrome on Android");
    assert_eq!(token_info.expires_ms, 0, "an app token does not expire");
    assert!(uuid::Uuid::parse_str(&device.device_id).is_ok(), "{}", device.device_id);
    let again = redeem(&server.url, &code, "").await.unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);
    assert!(again.message().contains("not valid (used, expired or revoked)"), "{again:?}");
    assert!(again.message().contains("ask your supervisor"), "{again:?}");
    // The code is no longer open.
    let open = server.api(&giam).await.enrollments("").await.unwrap();
    assert!(open.is_empty(), "{open:?}");

    // The token pushes under the device id it came with, and is listed.
    let outcome =
        push(&server.url, &device.token, &device.device_id, mutation(1, "road_km", "1.5")).await;
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    let admin = server.api(ADMIN_TOKEN).await;
    let listed = admin.tokens("an.nguyen").await.unwrap();
    assert!(listed.iter().any(|t| t.id == token_info.id && t.label == token_info.label));
    // Nobody else may push under that device id.
    let bob = server.user("binh.tran", "Trần Thị Bình", Role::Surveyor, &[COMMUNE]);
    let stolen = push(&server.url, &bob, &device.device_id, mutation(1, "road_km", "9")).await;
    assert_eq!(stolen.unwrap_err().code(), Code::PermissionDenied, "the device is An's");

    // Revoked like any token, it pushes no more.
    admin.revoke_token(&token_info.id).await.expect("revoke the token");
    let after = push(&server.url, &device.token, &device.device_id, mutation(2, "road_km", "2"));
    assert_eq!(after.await.unwrap_err().code(), Code::Unauthenticated);

    // Every step is in the audit trail, under who did it.
    let entries = admin.history(&HistoryFilter::default()).await.unwrap();
    let find = |who: &str, words: &str| {
        entries.iter().any(|e| e.user_id == who && e.detail.contains(words))
    };
    assert!(find("giam.tran", &format!("created enrollment code {}", info.id)), "{entries:#?}");
    assert!(find("an.nguyen", &format!("redeemed enrollment code {}", info.id)), "{entries:#?}");
    assert!(find("admin", &format!("revoked token {}", token_info.id)), "{entries:#?}");
    assert!(server.store.check().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn two_devices_racing_with_one_code_get_one_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (giam, _) = people(&server);
    let code = create(&server.url, &giam, "an.nguyen").await.unwrap().code;
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let (url, code) = (server.url.clone(), code.clone());
            tokio::spawn(async move { redeem(&url, &code, "").await })
        })
        .collect();
    let mut won = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) => assert_eq!(status.code(), Code::Unauthenticated, "{status:?}"),
        }
    }
    assert_eq!(won, 1, "one code, one token");
    let app_tokens = server
        .store
        .tokens(&server.store.user("admin").unwrap().unwrap(), Some("an.nguyen"))
        .unwrap()
        .into_iter()
        .filter(|t| t.label.starts_with("app"))
        .count();
    assert_eq!(app_tokens, 1);
    server.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_codes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (giam, _) = people(&server);
    let supervisor = server.store.user("giam.tran").unwrap().unwrap();
    // Made two minutes ago for one minute: expired now.
    let past = fieldsync_client::now_ms() - 120_000;
    let (old, _) = server.store.create_enrollment(&supervisor, "an.nguyen", 60, past).unwrap();
    let refused = redeem(&server.url, &old, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("expired"), "{refused:?}");

    let made = create(&server.url, &giam, "an.nguyen").await.unwrap();
    let supervisor = server.api(&giam).await;
    let revoked =
        supervisor.revoke_enrollment(&made.info.id).await.expect("the supervisor revokes the code");
    assert!(revoked.revoked);
    let refused = redeem(&server.url, &made.code, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // Longer than 7 days is refused, saying the limit.
    let long = supervisor.create_enrollment("an.nguyen", 8 * 86_400).await.unwrap_err();
    let (code, message) = refusal(&long);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("at most 7 days"), "{long:?}");
    server.stop().await;
}

#[tokio::test]
async fn codes_are_only_for_the_surveyors_of_the_callers_areas() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (giam, other) = people(&server);
    let an = server.store.user("an.nguyen").unwrap().unwrap();

    let elsewhere = create(&server.url, &other, "an.nguyen").await.unwrap_err();
    let (code, message) = refusal(&elsewhere);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("not all within hai.le's areas"), "{elsewhere:?}");

    let an_token = server.store.issue_token(
        &server.store.user("admin").unwrap().unwrap(),
        &an.id,
        0,
        "cli",
        fieldsync_client::now_ms(),
    );
    let by_surveyor = create(&server.url, &an_token.unwrap().0, "an.nguyen").await.unwrap_err();
    let (code, message) = refusal(&by_surveyor);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("is a surveyor"), "{by_surveyor:?}");

    let of_supervisor = create(&server.url, &giam, "hai.le").await.unwrap_err();
    let (code, message) = refusal(&of_supervisor);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("surveyors only"), "{of_supervisor:?}");

    let of_admin = create(&server.url, ADMIN_TOKEN, "admin").await.unwrap_err();
    assert_eq!(refusal(&of_admin).0, Code::PermissionDenied, "no admin token by QR code");

    let nobody = create(&server.url, &giam, "no.such.user").await.unwrap_err();
    assert_eq!(refusal(&nobody).0, Code::NotFound);

    // The district's supervisor and the province office may; so may admins.
    let district =
        server.user("huyen.le", "Lê Thị Huyền", Role::Supervisor, &["ha-tinh.huong-khe"]);
    let province = server.user("tinh.ho", "Hồ Văn Tỉnh", Role::Province, &[demo::PROVINCE]);
    for token in [&district, &province, &ADMIN_TOKEN.to_owned()] {
        create(&server.url, token, "an.nguyen").await.expect("may enroll An");
    }
    // Nothing was stored for the refusals: the three codes are all there is.
    let listed = server.api(ADMIN_TOKEN).await.enrollments("").await.unwrap();
    assert_eq!(listed.len(), 3);
    // The neighbour's supervisor sees none of them, and may not ask for An's
    // (the access checks of the RPCs, asked raw).
    let theirs = server.api(&other).await.enrollments("").await.unwrap();
    assert!(theirs.is_empty());
    let mut admin = AdminClient::new(channel(&server.url).await);
    let asked = ListEnrollmentsRequest { user_id: "an.nguyen".into() };
    let denied = admin.list_enrollments(signed(asked, &other)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let id = listed[0].id.clone();
    let denied =
        admin.revoke_enrollment(signed(RevokeEnrollmentRequest { id }, &other)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn a_code_of_another_user_than_the_device_expects_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (giam, _) = people(&server);
    let code = create(&server.url, &giam, "an.nguyen").await.unwrap().code;
    let refused = redeem(&server.url, &code, "binh.tran").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("this code is for an.nguyen"), "{refused:?}");
    assert!(refused.message().contains("unsent edits of binh.tran"), "{refused:?}");
    // Not used up: the right device still takes it.
    let device = redeem(&server.url, &code, "an.nguyen").await.expect("still usable");
    assert_eq!(device.user.unwrap().id, "an.nguyen");
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_surveyor_gets_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (giam, _) = people(&server);
    let code = create(&server.url, &giam, "an.nguyen").await.unwrap().code;
    let admin = server.store.user("admin").unwrap().unwrap();
    let now = fieldsync_client::now_ms();
    server.store.update_user(&admin, "an.nguyen", None, Some(true), None, now).unwrap();
    let refused = redeem(&server.url, &code, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("disabled"), "{refused:?}");
    let again = create(&server.url, &giam, "an.nguyen").await.unwrap_err();
    assert!(refusal(&again).1.contains("disabled"), "{again:?}");
    server.stop().await;
}

/// A channel to `server` whose connections come from `from` (another
/// loopback address).
async fn channel_from(server: SocketAddr, from: [u8; 4]) -> Channel {
    let connector = tower::service_fn(move |_: tonic::transport::Uri| async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        let stream = socket.connect(server).await?;
        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
    });
    tonic::transport::Endpoint::from_static("http://enroll.test")
        .connect_with_connector(connector)
        .await
        .expect("connect")
}

/// Guessing from one address runs out after a few wrong codes a minute,
/// and then even a right code from that address waits (so guessing gains
/// nothing from speed); other addresses are not held up.
#[tokio::test]
async fn guessing_from_one_address_is_cut_off_while_others_enroll() {
    let dir = tempfile::tempdir().unwrap();
    let limits = fieldsync_server::Limits { enroll_failures_per_minute: 3, ..Default::default() };
    let server = start_web_server_with(dir.path(), limits).await;
    let (giam, _) = people(&server);
    let code = create(&server.url, &giam, "an.nguyen").await.unwrap().code;
    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let mut guesser = EnrollClient::new(channel_from(addr, [127, 0, 0, 7]).await);
    for guess in ["AAAAA-AAAAA", "BBBBB-BBBBB", "CCCCC-CCCCC"] {
        let wrong = guesser.redeem(redeem_request(guess, "")).await.unwrap_err();
        assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    }
    let cut = guesser.redeem(redeem_request("DDDDD-DDDDD", "")).await.unwrap_err();
    assert_eq!(cut.code(), Code::ResourceExhausted);
    assert!(cut.message().contains("wait a minute"), "{cut:?}");
    let right = guesser.redeem(redeem_request(&code, "")).await.unwrap_err();
    assert_eq!(right.code(), Code::ResourceExhausted, "the guesser learns nothing");
    // The surveyor, from another address, enrolls with the same code.
    let mut surveyor = EnrollClient::new(channel_from(addr, [127, 0, 0, 8]).await);
    let device = surveyor.redeem(redeem_request(&code, "")).await.expect("enrolls");
    assert_eq!(device.into_inner().user.unwrap().id, "an.nguyen");
    server.stop().await;
}

/// The text of the element with `id` on a page (up to the next tag).
fn element(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let rest = &page[start..];
    let text = &rest[rest.find('>')? + 1..];
    Some(text[..text.find('<')?].to_owned())
}

/// The value of attribute `name` on the first element that has it.
fn attribute(page: &str, name: &str) -> Option<String> {
    let start = page.find(&format!("{name}=\""))? + name.len() + 2;
    Some(page[start..start + page[start..].find('"')?].to_owned())
}

#[tokio::test]
async fn the_devices_page_shows_a_qr_code_and_revokes_codes_and_devices() {
    use util::http::{self, get, post};
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server_with(dir.path(), fieldsync_server::Limits::default()).await;
    let (giam, _) = people(&server);
    server.user("xa.khac", "Người Xã Khác", Role::Surveyor, &[NEIGHBOUR]);
    let web = server.web_url().to_owned();
    let (session, csrf) = http::sign_in(&web, &giam).await;

    let page = get(&web, "/devices", &session).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    assert!(text.contains("Thiết bị của điều tra viên"), "Vietnamese by default");
    assert!(text.contains("data-user=\"an.nguyen\"") && text.contains("Nguyễn Văn An"));
    assert!(!text.contains("xa.khac"), "a surveyor of another commune is not offered");
    assert!(text.contains("id=\"devices-link\""), "the menu links the page");

    // A code: the QR code, the code in large letters, the app's address.
    let made =
        post(&web, "/devices/enroll", &session, &[("csrf", &csrf), ("user", "an.nguyen")]).await;
    assert_eq!(made.status, 200, "{}", made.text());
    let text = made.text();
    assert!(text.contains("<svg id=\"qr\""), "an inline SVG QR code");
    let code = element(&text, "code").expect("the code is shown");
    assert!(code.len() == 11 && &code[5..6] == "-", "{code}");
    let app = element(&text, "app-url").expect("the app's address");
    assert_eq!(app, format!("{web}/app/"), "the address this page was reached at");
    let link = attribute(&text[text.find("id=\"app-url\"").unwrap()..], "href").unwrap();
    assert_eq!(link, format!("{web}/app/#enroll={code}"));
    assert!(element(&text, "expires").is_some());

    // It is listed, and revoked from the list.
    let page = get(&web, "/devices", &session).await.text();
    let id = attribute(&page, "data-code").expect("the open code is listed");
    let revoked =
        post(&web, &format!("/devices/codes/{id}/revoke"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text());
    let refused = redeem(&server.url, &code, "").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let page = get(&web, "/devices?done=revoked-code", &session).await.text();
    assert!(page.contains("id=\"no-codes\""), "no open code left");
    assert!(page.contains("Đã thu hồi mã đăng ký"), "says what was done");

    // A second code enrolls a phone; the phone is listed and revoked here.
    let form = [("csrf", csrf.as_str()), ("user", "an.nguyen"), ("expires", "3600")];
    let made = post(&web, "/devices/enroll", &session, &form).await;
    let code = element(&made.text(), "code").unwrap();
    let supervisor = server.store.user("giam.tran").unwrap().unwrap();
    let open = server.store.enrollments(&supervisor, None, fieldsync_client::now_ms()).unwrap();
    assert_eq!(open[0].expires_ms - open[0].created_ms, 3_600_000, "valid for the hour chosen");
    let phone = redeem(&server.url, &code, "").await.expect("the phone enrolls");
    let token_id = phone.token_info.unwrap().id;
    let page = get(&web, "/devices", &session).await.text();
    assert!(page.contains(&format!("data-token=\"{token_id}\"")), "the phone is listed");
    assert!(page.contains("app: Chrome on Android"));
    assert!(page.contains("Nguyễn Văn An (an.nguyen)"), "the phone's owner by name");
    let path = format!("/devices/tokens/{token_id}/revoke");
    let revoked = post(&web, &path, &session, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text());
    let after = push(&server.url, &phone.token, &phone.device_id, mutation(1, "road_km", "1"));
    assert_eq!(after.await.unwrap_err().code(), Code::Unauthenticated, "the phone is cut off");

    // Forms from elsewhere make and revoke nothing.
    let forged =
        post(&web, "/devices/enroll", &session, &[("csrf", "forged"), ("user", "an.nguyen")]).await;
    assert_eq!(forged.status, 403);
    assert!(!forged.text().contains("<svg"), "no code made");
    let open = server.store.enrollments(&supervisor, None, fieldsync_client::now_ms()).unwrap();
    assert!(open.is_empty(), "{open:?}");

    // Someone else's surveyor: refused with the reason.
    let other =
        post(&web, "/devices/enroll", &session, &[("csrf", &csrf), ("user", "xa.khac")]).await;
    assert_eq!(other.status, 403);
    assert!(other.text().contains("not all within"), "{}", other.text());
    assert!(other.text().contains("thuộc địa bàn của mình"), "said in Vietnamese too");

    // A surveyor has no such page, nor the link.
    let an = server.store.issue_token(
        &server.store.user("admin").unwrap().unwrap(),
        "an.nguyen",
        0,
        "web",
        fieldsync_client::now_ms(),
    );
    let (an_session, _) = http::sign_in(&web, &an.unwrap().0).await;
    let queue = get(&web, "/queue", &an_session).await.text();
    assert!(!queue.contains("devices-link"));
    assert_eq!(get(&web, "/devices", &an_session).await.status, 403);
    server.stop().await;
}

/// The app's call: `Enroll/Redeem` in the Connect protocol's JSON form on
/// the web listener, with no token, answered by the same service.
#[tokio::test]
async fn the_app_redeems_a_code_over_connect_json() {
    use serde_json::{json, Value};
    let dir = tempfile::tempdir().unwrap();
    let limits = fieldsync_server::Limits { enroll_failures_per_minute: 2, ..Default::default() };
    let server = start_web_server_with(dir.path(), limits).await;
    let (giam, _) = people(&server);
    let code = create(&server.url, &giam, "an.nguyen").await.unwrap().code;
    let web = server.web_url().to_owned();
    let call = |body: Value| {
        let web = web.clone();
        async move {
            let headers = [("Content-Type", "application/json"), ("Connect-Protocol-Version", "1")];
            let path = "/fieldsync.v1.Enroll/Redeem";
            let body = body.to_string();
            let reply = util::http::send(&web, "POST", path, &headers, body.as_bytes()).await;
            let json: Value = serde_json::from_slice(&reply.body).expect("JSON");
            (reply.status, json)
        }
    };
    let (status, json) = call(json!({
        "schemaVersion": 1, "code": code.to_lowercase(), "deviceLabel": "Firefox on Android",
        "expectedUserId": "binh.tran"
    }))
    .await;
    assert_eq!((status, json["code"].as_str()), (400, Some("failed_precondition")), "{json}");
    let (status, json) = call(json!({
        "schemaVersion": 1, "code": code, "deviceLabel": "Firefox on Android",
        "expectedUserId": "an.nguyen"
    }))
    .await;
    assert_eq!(status, 200, "{json}");
    assert!(json["token"].as_str().unwrap().starts_with("fs_"), "{json}");
    assert_eq!(json["user"]["id"], "an.nguyen");
    assert_eq!(json["tokenInfo"]["label"], "app: Firefox on Android");
    assert!(uuid::Uuid::parse_str(json["deviceId"].as_str().unwrap()).is_ok(), "{json}");
    // Used up; and wrong codes from this address run out.
    let (status, json) = call(json!({"schemaVersion": 1, "code": code})).await;
    assert_eq!((status, json["code"].as_str()), (401, Some("unauthenticated")), "{json}");
    assert!(json["message"].as_str().unwrap().contains("ask your supervisor"), "{json}");
    let (status, _) = call(json!({"schemaVersion": 1, "code": "AAAAA-AAAAA"})).await;
    assert_eq!(status, 401);
    let (status, json) = call(json!({"schemaVersion": 1, "code": "BBBBB-BBBBB"})).await;
    assert_eq!((status, json["code"].as_str()), (429, Some("resource_exhausted")), "{json}");
    server.stop().await;
}

/// In Chromium, at a phone's size: the supervisor opens Thiết bị from the
/// menu, makes a code, and sees the QR code and the code in large letters.
/// With `FIELDSYNC_SCREENSHOTS=1` it also writes
/// `docs/screenshots/devices.png` and `enrollment.png`.
#[tokio::test]
async fn a_supervisor_shows_a_code_on_a_phone_sized_browser() {
    use fantoccini::Locator;
    use util::browser::{click, wait_text, Browser, PATIENCE, TURN};
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server_with(dir.path(), fieldsync_server::Limits::default()).await;
    let (giam, _) = people(&server);
    server.user("binh.tran", "Trần Thị Bình", Role::Surveyor, &[COMMUNE]);
    let web = server.web_url().to_owned();
    let shots = std::env::var_os("FIELDSYNC_SCREENSHOTS").is_some();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    let _turn = TURN.lock().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::open(profile.path(), (390, 844)).await;
    let client = browser.client.clone();
    let scenario = tokio::spawn(async move {
        client.goto(&format!("{web}/signin")).await.unwrap();
        let field =
            client.wait().at_most(PATIENCE).for_element(Locator::Id("token")).await.unwrap();
        field.send_keys(&giam).await.unwrap();
        click(&client, "#signin").await;
        wait_text(&client, "#who", |t| t.contains("Trần Văn Giám")).await;
        click(&client, "#devices-link").await;
        wait_text(&client, "#surveyors", |t| t.contains("Nguyễn Văn An")).await;
        if shots {
            std::fs::write(out.join("devices.png"), client.screenshot().await.unwrap()).unwrap();
        }
        click(&client, "[data-enroll='an.nguyen']").await;
        let code = wait_text(&client, "#code", |t| t.len() == 11).await;
        let qr = client.find(Locator::Css("#qr")).await.expect("a QR code");
        let (_, _, width, height) = qr.rectangle().await.unwrap();
        assert!(
            width >= 200.0 && (width - height).abs() < 1.0,
            "a square QR code: {width}×{height}"
        );
        assert!(width <= 390.0, "it fits the phone's width: {width}");
        let link = wait_text(&client, "#app-url", |t| t.ends_with("/app/")).await;
        assert!(link.starts_with("http://127.0.0.1:"), "{link}");
        if shots {
            std::fs::write(out.join("enrollment.png"), client.screenshot().await.unwrap()).unwrap();
        }
        code
    })
    .await;
    browser.close().await;
    let code = scenario.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let device = redeem(&server.url, &code, "").await.expect("the code shown redeems");
    assert_eq!(device.user.unwrap().id, "an.nguyen");
    server.stop().await;
}
