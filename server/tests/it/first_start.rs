//! The first start of the real binary on an empty directory, as a newcomer
//! runs it: besides the admin's token it prints a one-time code for the
//! demo surveyor, the app's link and a QR code, and that code enrolls a
//! device. A second start prints neither.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fieldsync_proto::v1::enroll_client::EnrollClient;
use fieldsync_proto::v1::RedeemRequest;
use fieldsync_proto::SCHEMA_VERSION;
use tonic::transport::Channel;

/// The server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the server on `data`; returns it and what it printed on stdout
/// up to the line saying how to make more codes (or up to the web pages'
/// line when it prints no code), with the gRPC URL and the web port.
fn start(data: &std::path::Path, expect_code: bool) -> (Server, Vec<String>, String, u16) {
    start_with(data, expect_code, &[])
}

/// [`start`] with more flags for `serve`.
fn start_with(
    data: &std::path::Path,
    expect_code: bool,
    flags: &[&str],
) -> (Server, Vec<String>, String, u16) {
    let (grpc, http) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
        .args(["serve", "--listen", &format!("127.0.0.1:{grpc}")])
        .args(flags)
        .args(["--http", &format!("127.0.0.1:{http}"), "--data"])
        .arg(data)
        .env_remove("FIELDSYNC_ADMIN_TOKEN")
        .env_remove("FIELDSYNC_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start fieldsync-server");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let last = if expect_code { "more codes:" } else { "web pages:" };
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of stdout");
        let done = line.starts_with(last);
        lines.push(line);
        if done {
            break;
        }
    }
    (server, lines, format!("http://127.0.0.1:{grpc}"), http)
}

async fn channel(url: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Channel::from_shared(url.to_owned()).unwrap().connect().await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "the server did not listen: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_new_store_prints_a_code_that_enrolls_the_demo_surveyor() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, lines, url, http) = start(&data, true);
    let text = lines.join("\n");
    assert!(text.contains("user `admin` created"), "{text}");
    let code_line = lines
        .iter()
        .find(|l| l.contains("surveyor `demo.surveyor`"))
        .unwrap_or_else(|| panic!("the demo surveyor is announced: {text}"));
    let code = code_line.rsplit(' ').next().unwrap().to_owned();
    assert!(code.len() == 11 && &code[5..6] == "-", "{code_line}");
    let link = format!("http://127.0.0.1:{http}/app/#enroll={code}");
    assert!(text.contains(&link), "the app's link with the code: {text}");
    assert!(text.contains('█'), "a QR code: {text}");
    assert!(text.contains("fieldsync admin token enroll"), "how to make more: {text}");

    let mut enroll = EnrollClient::new(channel(&url).await);
    let request = RedeemRequest {
        schema_version: SCHEMA_VERSION,
        code: code.clone(),
        device_label: "test".into(),
        expected_user_id: String::new(),
    };
    let reply = enroll.redeem(request).await.expect("the printed code redeems").into_inner();
    let user = reply.user.unwrap();
    assert_eq!((user.id.as_str(), user.name.as_str()), ("demo.surveyor", "Điều tra viên Demo"));
    assert_eq!(user.areas, ["ha-tinh.huong-khe.phuc-dong"]);
    drop(server);

    // Started again on the same store: no new user, no new code.
    let (server, lines, _, _) = start(&data, false);
    let text = lines.join("\n");
    assert!(!text.contains("demo.surveyor") && !text.contains("#enroll="), "{text}");
    drop(server);
}

#[tokio::test]
async fn no_demo_starts_an_empty_store_with_only_its_admin() {
    use fieldsync_proto::v1::sync_client::SyncClient;
    use fieldsync_proto::v1::BootstrapRequest;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, lines, url, _) = start_with(&data, false, &["--no-demo"]);
    let text = lines.join("\n");
    assert!(text.contains("user `admin` created"), "{text}");
    assert!(text.contains("without the demo") && text.contains("org-unit import"), "{text}");
    assert!(!text.contains("demo.surveyor") && !text.contains("#enroll="), "{text}");
    let token = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("fs_"))
        .unwrap_or_else(|| panic!("the admin's token is printed: {text}"))
        .to_owned();
    let mut sync = SyncClient::new(channel(&url).await);
    let mut request = tonic::Request::new(BootstrapRequest { schema_version: SCHEMA_VERSION });
    let bearer = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    let catalogue = sync.bootstrap(request).await.unwrap().into_inner();
    assert!(catalogue.org_units.is_empty() && catalogue.indicators.is_empty(), "{catalogue:?}");
    drop(server);
}
