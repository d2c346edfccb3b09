//! Runs the real `fieldsync-server` binary with debug logging, signs in with
//! good and bad tokens, pushes and pulls values, and reads everything the
//! process printed: no token and no value appears in it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldsync::access::{Role, User};
use fieldsync::sync::RawValue;
use fieldsync_client::remote::Grpc;
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::Api;
use fieldsync_store::Memory;
use tonic::transport::Channel;

const ADMIN_TOKEN: &str = "logs-test-admin-token-7f3a9c";
const NOTE: &str = "Ghi chú riêng tư 5b8e1d: kênh mương thôn Đông";
const AMOUNT: &str = "187.65";
const BAD_TOKEN: &str = "wrong-token-c41d0e77";
/// A value the surveyors' app pushes over Connect JSON.
const APP_NOTE: &str = "Ghi chú của ứng dụng 9d2c4f";

/// The server process, killed when the test ends (or fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange with the web pages; the whole answer as text.
async fn http(port: u16, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Signs in on the web pages with `token` as a browser does (the form, its
/// CSRF cookie, the post); the status line of the answer.
async fn web_sign_in(port: u16, token: &str) -> String {
    let form =
        http(port, "GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".into())
            .await;
    let after = |text: &str, marker: &str| -> String {
        let start =
            text.find(marker).unwrap_or_else(|| panic!("{marker} in {text}")) + marker.len();
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
    };
    let cookie = after(&form, "fs_signin=");
    let csrf = after(&form, "name=\"csrf\" value=\"");
    let body = format!("csrf={csrf}&token={token}");
    let post = format!(
        "POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: fs_signin={cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    http(port, post).await.lines().next().unwrap_or_default().to_owned()
}

/// One unary Connect JSON call of the surveyors' app; the reply's JSON.
async fn connect(
    port: u16,
    method: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> serde_json::Value {
    let body = body.to_string();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let answer = http(
        port,
        format!(
            "POST /fieldsync.v1.{method} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\
             Content-Type: application/json\r\nConnect-Protocol-Version: 1\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{method}: {answer}");
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{method} answered {json:?}: {e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until the server answers connections at `url`.
async fn channel(url: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Channel::from_shared(url.to_owned()).unwrap().connect().await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => panic!("server did not come up: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn tokens_and_values_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc_port, http_port) = (free_port(), free_port());
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
        .args(["serve", "--listen", &format!("127.0.0.1:{grpc_port}")])
        .args(["--http", &format!("127.0.0.1:{http_port}"), "--data"])
        .arg(dir.path().join("data"))
        .env("FIELDSYNC_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start fieldsync-server");
    let mut server = Server(server);
    let url = format!("http://127.0.0.1:{grpc_port}");

    channel(&url).await;
    let admin = Api::connect(&url, ADMIN_TOKEN).await.unwrap();
    let user = User {
        id: "an".into(),
        name: "Nguyễn Văn An".into(),
        role: Role::Surveyor,
        areas: vec!["ha-tinh".into()],
        disabled: false,
    };
    admin.create_user(&user).await.unwrap();
    let token = admin.issue_token("an", 0, "tablet").await.unwrap().token;

    let refused = Grpc::connect(&url, BAD_TOKEN).await;
    let refused = match refused {
        Err(e) => e.to_string(),
        Ok(mut remote) => {
            use fieldsync_client::remote::Remote;
            remote.bootstrap().await.expect_err("a bad token is refused").to_string()
        }
    };
    assert!(refused.to_lowercase().contains("token"), "{refused}");

    let tablet =
        fieldsync_client::init_tablet(Arc::new(Memory::new()), &url, &token).await.unwrap();
    let edits = vec![
        ("note".to_owned(), RawValue::Text(NOTE.into())),
        ("road_km".to_owned(), RawValue::Amount(AMOUNT.into())),
    ];
    tablet
        .record(fieldsync::demo::SAMPLE_VILLAGE, "2022", &edits, fieldsync_client::now_ms())
        .unwrap();
    let mut remote = Grpc::connect(&url, &token).await.unwrap();
    let retry = Retry::immediate(0);
    let report = sync::push(&tablet, &mut remote, &retry, &mut |_| {}).await.unwrap();
    assert_eq!(report.applied, 2, "both values are stored");
    sync::pull(&tablet, &mut remote, &retry, &mut |_| {}).await.unwrap();

    // The web pages: a good token signs in, a bad one is refused.
    let signed_in = web_sign_in(http_port, &token).await;
    assert!(signed_in.starts_with("HTTP/1.1 303"), "signed in on the web: {signed_in}");
    let refused = web_sign_in(http_port, BAD_TOKEN).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "a bad token is refused: {refused}");

    // The surveyors' app: a code redeemed and a value pushed over Connect JSON.
    let code = admin.create_enrollment("an", 0).await.unwrap().code;
    let redeemed = connect(
        http_port,
        "Enroll/Redeem",
        None,
        &serde_json::json!({"schemaVersion": 1, "code": code, "deviceLabel": "phone"}),
    )
    .await;
    let app_token = redeemed["token"].as_str().expect("a token").to_owned();
    let device = redeemed["deviceId"].as_str().expect("a device id").to_owned();
    let push = serde_json::json!({
        "schemaVersion": 1,
        "deviceId": device,
        "mutations": [{
            "id": "1", "villageId": fieldsync::demo::SAMPLE_VILLAGE, "period": "2023",
            "field": "note", "value": {"text": APP_NOTE},
            "hlc": (fieldsync_client::now_ms() << 16).to_string(), "author": "Nguyễn Văn An",
        }],
    });
    let pushed = connect(http_port, "Sync/Push", Some(&app_token), &push).await;
    assert_eq!(pushed["results"][0]["outcome"], "OUTCOME_APPLIED", "{pushed}");

    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let printed = std::fs::read_to_string(&log_path).unwrap();
    assert!(printed.contains("push committed"), "the server logged:\n{printed}");
    assert!(printed.contains("DEBUG"), "the server logged at debug level:\n{printed}");
    assert!(printed.contains("signed in on the web"), "the web sign-in was logged");
    // Each secret whole, and its ASCII core (in case something logs it escaped).
    let app_secrets = [
        code.clone(),
        code.replace('-', ""),
        app_token.clone(),
        app_token[app_token.len() - 12..].to_owned(),
    ];
    let secrets =
        [ADMIN_TOKEN, "7f3a9c", &token, &token[token.len() - 12..], BAD_TOKEN, "c41d0e77"];
    let values = [NOTE, "kênh mương", "5b8e1d", AMOUNT, "18765", APP_NOTE, "9d2c4f"];
    for secret in app_secrets {
        assert!(!printed.contains(&secret), "{secret:?} appears in the output:\n{printed}");
    }
    for secret in secrets.into_iter().chain(values) {
        assert!(!printed.contains(secret), "{secret:?} appears in the server's output:\n{printed}");
    }
}
