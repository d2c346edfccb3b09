//! The server over TLS: a tablet that trusts the server's certificate
//! authority syncs; a plain-text client and a client trusting nothing else
//! cannot talk to it.

use std::sync::Arc;

use fieldsync::access::Role;
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{init_tablet, Grpc, Remote};
use fieldsync_server::local::LocalServer;
use fieldsync_server::{serve_with, Limits};
use fieldsync_store::Memory;
use tonic::transport::Identity;

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
    let identity = Identity::from_pem(cert_pem, key_pem);
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
