//! Abuse limits: a user calling too fast is slowed down with
//! RESOURCE_EXHAUSTED, connections beyond the cap are closed, a pull that is
//! never read holds only a bounded buffer; in every case the server keeps
//! serving everyone else.

use std::sync::Arc;
use std::time::Duration;

use fieldsync::access::Role;
use fieldsync::DeviceId;
use fieldsync_client::{Grpc, Remote};
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::PullRequest;
use fieldsync_server::store::now_ms;
use fieldsync_server::{serve, Limits, Store};
use fieldsync_store::Sled;

const TOKEN: &str = "limits-test-admin-token-0123456789";

struct Running {
    url: String,
    store: Arc<Store>,
    stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(limits: Limits) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let engine = Sled::open(dir.path()).unwrap();
    let store = Arc::new(Store::open(Arc::new(engine), fieldsync::demo::catalogue).unwrap());
    store.ensure_admin(Some(TOKEN), now_ms()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&store), limits, async {
        let _ = stopped.await;
    }));
    Running { url, store, stop, _dir: dir }
}

fn user(r: &Running, id: &str) -> String {
    let admin = r.store.user("admin").unwrap().unwrap();
    let u = fieldsync::access::User {
        id: id.into(),
        name: id.into(),
        role: Role::Surveyor,
        areas: vec!["ha-tinh".into()],
        disabled: false,
    };
    r.store.create_user(&admin, u, now_ms()).unwrap();
    r.store.issue_token(&admin, id, 0, "", now_ms()).unwrap().0
}

fn device() -> DeviceId {
    DeviceId(uuid::Uuid::new_v4())
}

#[tokio::test]
async fn a_user_calling_too_fast_is_slowed_down_and_others_are_not() {
    let r = start(Limits { calls_per_second: 2, call_burst: 5, ..Limits::default() }).await;
    let (an, binh) = (user(&r, "an"), user(&r, "binh"));
    let mut fast = Grpc::connect(&r.url, &an).await.unwrap();
    let mut refused = None;
    for _ in 0..20 {
        if let Err(e) = fast.status(device()).await {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("the 20th call in a burst of 5 is refused");
    assert!(refused.contains("too many calls from an"), "{refused}");
    let mut calm = Grpc::connect(&r.url, &binh).await.unwrap();
    calm.status(device()).await.expect("another user is served");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    fast.status(device()).await.expect("served again after a pause");
    let _ = r.stop.send(());
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_others_served() {
    let r = start(Limits { max_connections: 2, ..Limits::default() }).await;
    let token = user(&r, "an");
    let mut first = Grpc::connect(&r.url, &token).await.unwrap();
    let mut second = Grpc::connect(&r.url, &token).await.unwrap();
    first.status(device()).await.unwrap();
    second.status(device()).await.unwrap();
    let third = match Grpc::connect(&r.url, &token).await {
        Err(_) => true,
        Ok(mut g) => g.status(device()).await.is_err(),
    };
    assert!(third, "a third connection is refused");
    first.status(device()).await.expect("the first is still served");
    second.status(device()).await.expect("the second is still served");
    let _ = r.stop.send(());
}

#[tokio::test]
async fn a_pull_never_read_does_not_stop_the_server() {
    let r = start(Limits::default()).await;
    let token = user(&r, "an");
    // Enough changes for many pages.
    let admin = r.store.user("admin").unwrap().unwrap();
    let notes: Vec<_> = (1..=400u64)
        .map(|i| fieldsync::sync::Mutation {
            id: i,
            village_id: fieldsync::demo::SAMPLE_VILLAGE.into(),
            period: format!("{}-{:02}", 2000 + (i - 1) / 12, (i - 1) % 12 + 1),
            field: "note".into(),
            value: fieldsync::sync::RawValue::Text("ghi chú ".repeat(100)),
            base_version: 0,
            hlc: fieldsync::Hlc(i),
            author: "admin".into(),
        })
        .collect();
    r.store.push(&admin, device(), &notes, 0, now_ms()).unwrap();

    // Open a pull of one change per page and never read it.
    let channel =
        tonic::transport::Channel::from_shared(r.url.clone()).unwrap().connect().await.unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let mut raw = SyncClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    });
    let request = PullRequest {
        schema_version: fieldsync_proto::SCHEMA_VERSION,
        device_id: device().to_string(),
        cursor: 0,
        page_size: 1,
    };
    let stalled = raw.pull(request).await.unwrap().into_inner();

    // Everyone else, the same user included, is served meanwhile.
    for _ in 0..3 {
        let mut other = Grpc::connect(&r.url, &token).await.unwrap();
        assert!(other.status(device()).await.is_ok());
        let mut pulled = 0;
        other
            .pull(device(), 0, &mut |page, _| {
                pulled += page.changes.len();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(pulled, 800, "400 notes and 400 reports");
    }
    drop(stalled);
    let _ = r.stop.send(());
}
