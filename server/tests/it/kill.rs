//! Runs the real `fieldsync-server` binary, pushes, kills it with SIGKILL and
//! starts it again on the same data: every acknowledged push is still there,
//! exactly once.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{value, Mutation, PullRequest, PushRequest, Value};
use fieldsync_proto::SCHEMA_VERSION;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

const TOKEN: &str = "kill-test-admin-token-0123";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_fieldsync-server"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .env("FIELDSYNC_ADMIN_TOKEN", TOKEN)
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fieldsync-server");
    Server(child)
}

type Client =
    SyncClient<InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>>;

fn bearer(mut request: Request<()>) -> Result<Request<()>, Status> {
    let value = format!("Bearer {TOKEN}").parse().expect("ascii token");
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

async fn connect(port: u16) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let channel =
            Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await;
        match channel {
            Ok(c) => return SyncClient::with_interceptor(c, bearer as fn(_) -> _),
            Err(e) if Instant::now() > deadline => panic!("server did not come up: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn mutation(id: u64) -> Mutation {
    Mutation {
        id,
        village_id: fieldsync::demo::SAMPLE_VILLAGE.into(),
        period: format!("{}", 2000 + id),
        field: "road_km".into(),
        value: Some(Value { kind: Some(value::Kind::Amount(format!("{id}.5"))) }),
        base_version: 0,
        hlc: id,
        author: "Nguyễn Văn An".into(),
    }
}

#[tokio::test]
async fn acknowledged_pushes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let device = uuid::Uuid::new_v4().to_string();
    let mut acknowledged = 0u64;
    for round in 0..3u64 {
        let mut server = start(dir.path(), port);
        let mut client = connect(port).await;
        for id in (round * 10 + 1)..=(round * 10 + 10) {
            let request = PushRequest {
                schema_version: SCHEMA_VERSION,
                device_id: device.clone(),
                mutations: vec![mutation(id)],
                acknowledged_through: 0,
            };
            client.push(request).await.expect("push acknowledged");
            acknowledged = id;
        }
        // No shutdown, no flush on exit: SIGKILL right after the last reply.
        server.0.kill().unwrap();
        server.0.wait().unwrap();
    }
    let _server = start(dir.path(), port);
    let mut client = connect(port).await;
    let request = PullRequest {
        schema_version: SCHEMA_VERSION,
        device_id: device.clone(),
        cursor: 0,
        page_size: 0,
    };
    let mut stream = client.pull(request).await.unwrap().into_inner();
    let mut periods = Vec::new();
    while let Some(page) = stream.message().await.unwrap() {
        for change in page.changes {
            if let Some(fieldsync_proto::v1::change::Kind::Field(f)) = change.kind {
                periods.push(f.period);
            }
        }
        if page.caught_up {
            break;
        }
    }
    periods.sort();
    let want: Vec<String> = (1..=acknowledged).map(|id| format!("{}", 2000 + id)).collect();
    assert_eq!(periods, want, "every acknowledged push, exactly once");
}
