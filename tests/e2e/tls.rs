//! The server over TLS: a tablet that trusts the server's certificate
//! authority syncs; a plain-text client and a client trusting nothing else
//! cannot talk to it. The web pages are served over TLS with the same
//! certificate, and their cookies are then `Secure`.

use crate::util;

use std::sync::Arc;
use std::time::Duration;

use fieldsync::access::Role;
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{init_tablet, Grpc, Remote};
use fieldsync_server::local::LocalServer;
use fieldsync_server::{serve_all, serve_with, Limits, Tls};
use fieldsync_store::Memory;

const TOKEN: &str = "tls-test-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tablets_sync_over_tls() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert_pem).unwrap();

    // A store with an admin and a surveyor, then the same store over TLS.
    let data = dir.path().join("data");
    let plain = LocalServer::start(&data, "127.0.0.1:0", TOKEN).await.unwrap();
    let token = plain.user("an", "Nguyễn Văn An", Role::Surveyor, &["ha-tinh"]).unwrap();
    plain.stop().await.unwrap();
    let engine = fieldsync_store::Sled::open(&data).unwrap();
    let store = Arc::new(
        fieldsync_server::Store::open(Arc::new(engine), fieldsync::demo::catalogue).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let identity = Tls::from_pem(cert_pem, key_pem);
    let server =
        tokio::spawn(serve_with(listener, store, Limits::default(), Some(identity), async {
            let _ = stopped.await;
        }));

    // Without the authority: refused before any call.
    let url = format!("https://localhost:{port}");
    assert!(Grpc::connect(&url, &token).await.is_err(), "no CA configured");
    fieldsync_client::remote::trust_ca(ca);

    let tablet = init_tablet(Arc::new(Memory::new()), &url, &token).await.expect("init over TLS");
    let edits = [("road_km".to_string(), fieldsync::sync::RawValue::Amount("1.5".into()))];
    tablet
        .record(fieldsync::demo::SAMPLE_VILLAGE, "2022", &edits, fieldsync_client::now_ms())
        .unwrap();
    let mut remote = Grpc::connect(&url, &token).await.unwrap();
    let report = sync::sync(&tablet, &mut remote, &Retry::immediate(0), &mut |_| {}).await.unwrap();
    assert_eq!(report.applied, 1);

    // Plain text to a TLS port gets nowhere.
    let plain_url = format!("http://127.0.0.1:{port}");
    let refused = match Grpc::connect(&plain_url, &token).await {
        Err(_) => true,
        Ok(mut g) => g.status(fieldsync::DeviceId(uuid::Uuid::new_v4())).await.is_err(),
    };
    assert!(refused, "a plain-text client must not get an answer");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// One request over TLS to `port`, trusting only `ca` for `localhost`; the
/// whole reply.
async fn over_tls(port: u16, ca: &rcgen::Certificate, request: String) -> util::http::Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("a TLS handshake for localhost");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    util::http::parse(&raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_pages_are_served_over_tls_with_secure_cookies() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = Tls::from_pem(certified.cert.pem(), certified.signing_key.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let plain = LocalServer::start(dir.path(), "127.0.0.1:0", TOKEN).await.unwrap();
    let token = plain.user("giam", "Trần Văn Giám", Role::Supervisor, &["ha-tinh"]).unwrap();
    plain.stop().await.unwrap();
    let engine = fieldsync_store::Sled::open(dir.path()).unwrap();
    let store = Arc::new(
        fieldsync_server::Store::open(Arc::new(engine), fieldsync::demo::catalogue).unwrap(),
    );
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = http.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(serve_all(grpc, Some(http), store, Limits::default(), Some(tls), async {
            let _ = stopped.await;
        }));

    let head = |method: &str, path: &str, cookies: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\
             Cookie: {cookies}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let form = over_tls(port, &certified.cert, head("GET", "/signin", "", "")).await;
    assert_eq!(form.status, 200, "{}", form.text());
    let signin = form.set_cookies().into_iter().find(|c| c.starts_with("fs_signin=")).unwrap();
    assert!(signin.contains("; Secure"), "{signin}");
    let pre = form.cookie("fs_signin").unwrap();
    let csrf = form.input("csrf").unwrap();
    let body = format!("csrf={csrf}&token={}", util::http::encode(&token));
    let reply = over_tls(
        port,
        &certified.cert,
        head("POST", "/signin", &format!("fs_signin={pre}"), &body),
    )
    .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let session = reply.set_cookies().into_iter().find(|c| c.starts_with("fs_session=")).unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "the session cookie is never sent in clear text: {session}"
    );
    let cookie = format!("fs_session={}", reply.cookie("fs_session").unwrap());
    let queue = over_tls(port, &certified.cert, head("GET", "/queue", &cookie, "")).await;
    assert_eq!(queue.status, 200);
    assert!(queue.text().contains("Trần Văn Giám"));

    // The surveyors' app, and the API it syncs with, come the same way.
    let app = over_tls(port, &certified.cert, head("GET", "/app/", "", "")).await;
    assert_eq!(app.status, 200);
    let call = format!(
        "POST /fieldsync.v1.Sync/Status HTTP/1.1\r\nHost: localhost:{port}\r\n\
         Connection: close\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let status = over_tls(port, &certified.cert, call).await;
    assert_eq!(status.status, 200, "{}", status.text());
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(status["userId"], "giam");

    // Plain HTTP to the same port gets no page.
    let plain = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = tcp.write_all(head("GET", "/signin", "", "").as_bytes()).await;
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut raw)).await;
        String::from_utf8_lossy(&raw).into_owned()
    };
    assert!(!plain.contains("HTTP/1.1 200") && !plain.contains("fs_signin"), "{plain}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
