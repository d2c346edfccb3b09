//! Abuse limits: a user calling too fast is slowed down with
//! RESOURCE_EXHAUSTED, connections beyond the cap are closed, a pull that is
//! never read holds only a bounded buffer, pulls beyond a user's share or the
//! server's get RESOURCE_EXHAUSTED, calls beyond a connection's share wait
//! their turn, a call past the server's deadline gets DEADLINE_EXCEEDED; in
//! every case the server keeps serving everyone else.

use std::sync::Arc;
use std::time::Duration;

use fieldsync::access::Role;
use fieldsync::DeviceId;
use fieldsync_client::{Grpc, Remote};
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{PullPage, PullRequest};
use fieldsync_server::db::now_ms;
use fieldsync_server::{serve, Limits, Store};
use fieldsync_store::{Engine, Faulty, Sled};
use tonic::Code;

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
    start_on(Arc::new(engine), dir, limits).await
}

async fn start_on(engine: Arc<dyn Engine>, dir: tempfile::TempDir, limits: Limits) -> Running {
    let store = Arc::new(Store::open(engine, fieldsync::demo::catalogue).unwrap());
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

/// 400 notes of 8 KB: more than a client's HTTP/2 receive window, so a pull
/// cannot finish while its reader does not read.
fn fill(r: &Running) {
    let admin = r.store.user("admin").unwrap().unwrap();
    let notes: Vec<_> = (1..=400u64)
        .map(|i| fieldsync::sync::Mutation {
            id: i,
            village_id: fieldsync::demo::SAMPLE_VILLAGE.into(),
            period: format!("{}-{:02}", 2000 + (i - 1) / 12, (i - 1) % 12 + 1),
            field: "note".into(),
            value: fieldsync::sync::RawValue::Text("𠀀".repeat(2_000)),
            base_version: 0,
            hlc: fieldsync::Hlc(i),
            author: "admin".into(),
        })
        .collect();
    r.store.push(&admin, device(), &notes, 0, now_ms()).unwrap();
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
    fill(&r);

    // Open a pull of one change per page and never read it.
    let stalled = stalled_pull(&r.url, &token).await.unwrap();

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

/// A raw `Sync` client on a connection of its own, signing in with `token`.
async fn raw_client(
    url: &str,
    token: &str,
) -> SyncClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone,
    >,
> {
    let channel = tonic::transport::Channel::from_shared(url.to_owned()).unwrap();
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    SyncClient::with_interceptor(
        channel.connect().await.unwrap(),
        move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        },
    )
}

/// A pull from the start, one change per page.
fn one_change_pages() -> PullRequest {
    PullRequest {
        schema_version: fieldsync_proto::SCHEMA_VERSION,
        device_id: device().to_string(),
        cursor: 0,
        page_size: 1,
    }
}

/// A pull stream opened by `token` and never read.
async fn stalled_pull(url: &str, token: &str) -> Result<tonic::Streaming<PullPage>, tonic::Status> {
    raw_client(url, token).await.pull(one_change_pages()).await.map(|r| r.into_inner())
}

/// Retries `f` for up to 5 s until it succeeds (a closed stream is noticed by
/// the server a moment after the client drops it).
async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    mut f: impl FnMut() -> F,
) -> T {
    let mut last = None;
    for _ in 0..100 {
        match f().await {
            Ok(t) => return t,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("still failing after 5 s: {last:?}");
}

#[tokio::test]
async fn pulls_beyond_a_users_share_are_refused_until_one_closes() {
    let r = start(Limits { pulls_per_user: 2, ..Limits::default() }).await;
    let (an, binh) = (user(&r, "an"), user(&r, "binh"));
    fill(&r);
    let first = stalled_pull(&r.url, &an).await.unwrap();
    let _second = stalled_pull(&r.url, &an).await.unwrap();
    let third = stalled_pull(&r.url, &an).await.unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    assert!(third.message().contains("an already has 2 pulls open"), "{third:?}");
    stalled_pull(&r.url, &binh).await.expect("another user pulls");
    drop(first);
    eventually(|| stalled_pull(&r.url, &an)).await;
    let _ = r.stop.send(());
}

#[tokio::test]
async fn pulls_beyond_the_servers_share_wait_then_are_refused() {
    let limits =
        Limits { max_pulls: 1, pull_queue_wait: Duration::from_millis(200), ..Limits::default() };
    let r = start(limits).await;
    let (an, binh) = (user(&r, "an"), user(&r, "binh"));
    fill(&r);
    let held = stalled_pull(&r.url, &an).await.unwrap();
    let refused = stalled_pull(&r.url, &binh).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("try again shortly"), "{refused:?}");
    let mut status = Grpc::connect(&r.url, &binh).await.unwrap();
    status.status(device()).await.expect("other calls are served meanwhile");
    drop(held);
    eventually(|| stalled_pull(&r.url, &binh)).await;
    let _ = r.stop.send(());
}

#[tokio::test]
async fn a_call_past_the_deadline_gets_deadline_exceeded_and_a_retry_applies_once() {
    let disk = Arc::new(Faulty::new());
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { request_timeout: Duration::from_millis(300), ..Limits::default() };
    let r = start_on(disk.clone(), dir, limits).await;
    let (an, binh) = (user(&r, "an"), user(&r, "binh"));
    let tablet = device();
    let value = fieldsync::sync::Mutation {
        id: 1,
        village_id: fieldsync::demo::SAMPLE_VILLAGE.into(),
        period: "2022".into(),
        field: "road_km".into(),
        value: fieldsync::sync::RawValue::Amount("4.5".into()),
        base_version: 0,
        hlc: fieldsync::Hlc::from_millis(now_ms()),
        author: "an".into(),
    };
    let mut remote = Grpc::connect(&r.url, &an).await.unwrap();

    /// Opens the disk again however the test ends, so that the blocking
    /// task waiting on it lets the runtime shut down.
    struct Reopen(Arc<Faulty>);
    impl Drop for Reopen {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    let reopen = Reopen(Arc::clone(&disk));
    disk.hold();
    let err = remote.push(tablet, vec![value.clone()], 0).await.unwrap_err();
    assert!(err.to_string().contains("gave up on this call after 0.3 s"), "{err}");
    assert!(
        err.to_string().contains("DeadlineExceeded") || err.to_string().contains("deadline"),
        "{err}"
    );
    // While that write waits for the disk, the server answers everyone
    // within the deadline, and no read shows the write it has not yet
    // kept: the tablet's own status, asked over another connection, is
    // refused rather than showing mutation 1.
    let mut other = Grpc::connect(&r.url, &an).await.unwrap();
    let started = std::time::Instant::now();
    match other.status(tablet).await {
        Ok(status) => assert_eq!(status.last_mutation_id, 0, "an unflushed write was shown"),
        Err(e) => assert!(e.to_string().contains("gave up on this call"), "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "answered within the deadline");
    let mut others = Grpc::connect(&r.url, &binh).await.unwrap();
    let _ = others.status(device()).await;
    drop(reopen);
    let after = others.status(device()).await.expect("served once the disk answers");
    assert_eq!(after.last_mutation_id, 0);
    let shown = other.status(tablet).await.expect("the tablet's status once the disk answers");
    assert_eq!(shown.last_mutation_id, 1, "the write is kept and now shown");

    let again = remote.push(tablet, vec![value], 0).await.expect("the retry succeeds");
    assert_eq!(again.results[0].outcome, fieldsync::sync::Outcome::Applied);
    let admin = r.store.user("admin").unwrap().unwrap();
    let page = r.store.pull(&admin, 0, 100).unwrap();
    let fields =
        page.changes.iter().filter(|(_, c)| matches!(c, fieldsync::sync::Change::Field(_))).count();
    assert_eq!(fields, 1, "one value, applied once: {:?}", page.changes);
    let _ = r.stop.send(());
}

#[tokio::test]
async fn calls_beyond_a_connections_share_wait_and_other_connections_are_served() {
    let limits = Limits {
        max_pulls: 1,
        pull_queue_wait: Duration::from_secs(3),
        pulls_per_user: 1_000,
        ..Limits::default()
    };
    let r = start(limits).await;
    let (an, binh) = (user(&r, "an"), user(&r, "binh"));
    fill(&r);
    // Another connection holds the server's only pull place.
    let _held = stalled_pull(&r.url, &binh).await.unwrap();
    let client = raw_client(&r.url, &an).await;
    let request = one_change_pages();
    // As many calls as one connection may have in flight, all waiting.
    let pulls: Vec<_> = (0..fieldsync_server::MAX_CONCURRENT_PER_CONNECTION)
        .map(|_| {
            let (mut c, req) = (client.clone(), request.clone());
            tokio::spawn(async move { c.pull(req).await.map(|_| ()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut same = client.clone();
    let waiting = tokio::spawn(async move {
        same.status(fieldsync_proto::v1::StatusRequest { device_id: String::new() }).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a call beyond the connection's share waits its turn");
    let mut other = Grpc::connect(&r.url, &an).await.unwrap();
    other.status(device()).await.expect("another connection is served meanwhile");
    // The waiting pulls give up with RESOURCE_EXHAUSTED, and the call is served.
    for p in pulls {
        let err = p.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    }
    let reply = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once the connection has room")
        .unwrap();
    assert!(reply.is_ok(), "{reply:?}");
    let _ = r.stop.send(());
}

/// Sends `message`, already encoded, to `method` of `fieldsync.v1.Sync`, as
/// a client whose encoder knows nothing of protobuf would.
async fn raw_call(url: &str, token: &str, method: &str, message: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Channel::from_shared(url.to_owned()).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.connect().await.unwrap());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(message);
    let bearer = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    let path = format!("/fieldsync.v1.Sync/{method}").parse().unwrap();
    match grpc.unary(request, path, Raw).await {
        Ok(reply) => panic!("answered {:?}", reply.into_inner()),
        Err(status) => status,
    }
}

/// Bytes in, bytes out.
#[derive(Clone, Copy, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// The most memory this process has held since the last call (Linux); 0
/// elsewhere.
fn peak_rss_since_last_call() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    // Resets the peak to what is held now.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak * 1024
}

#[tokio::test]
async fn a_push_of_two_million_empty_mutations_is_refused_before_it_is_decoded() {
    // Peak memory belongs to a process: this test measures it in a process
    // of its own, not beside the other tests of this file.
    const ALONE: &str = "FIELDSYNC_TEST_ALONE";
    if std::env::var_os(ALONE).is_none() {
        // The test's name as the harness knows it: its module path in the binary.
        let name = concat!(
            module_path!(),
            "::a_push_of_two_million_empty_mutations_is_refused_before_it_is_decoded"
        );
        let name = name.split_once("::").map_or(name, |(_, in_binary)| in_binary);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .expect("run the test alone");
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}{stderr}");
        return;
    }
    let r = start(Limits::default()).await;
    let token = user(&r, "an");
    let head = r.store.durable_head();
    // schema_version 1, a device id, then 2,000,000 empty `mutations` (tag
    // 3, length 0): 4 MB on the wire, hundreds of MB once decoded.
    let mut push = vec![0x08, 0x01, 0x12, 36];
    push.extend_from_slice(device().to_string().as_bytes());
    push.extend(std::iter::repeat_n([0x1a, 0x00], 2_000_000).flatten());
    assert!(push.len() < fieldsync_server::MAX_MESSAGE_BYTES);
    peak_rss_since_last_call();
    let before = peak_rss_since_last_call();
    let refused = raw_call(&r.url, &token, "Push", push).await;
    let peak = peak_rss_since_last_call();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("2000000 mutations in one push; at most 1000 are accepted")
            && refused.message().contains("split the batch"),
        "{refused:?}"
    );
    if before > 0 {
        let grown = peak.saturating_sub(before) / (1024 * 1024);
        assert!(grown < 100, "the server held {grown} MiB more to refuse a 4 MB push");
    }
    assert_eq!(r.store.durable_head(), head, "nothing is stored");
    let mut tablet = Grpc::connect(&r.url, &token).await.unwrap();
    tablet.status(device()).await.expect("the server goes on serving");
    let _ = r.stop.send(());
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_with_what_to_do() {
    let r = start(Limits::default()).await;
    let token = user(&r, "an");
    let head = r.store.durable_head();
    // A `mutations` entry that claims 100 bytes where 1 follows; a field of
    // wire type 7, which does not exist.
    for (method, message) in [("Push", vec![0x08, 0x01, 0x1a, 100, 0]), ("Status", vec![0x0f])] {
        let refused = raw_call(&r.url, &token, method, message).await;
        assert_eq!(refused.code(), Code::InvalidArgument, "{method}: {refused:?}");
        assert!(
            refused.message().contains("not a well-formed fieldsync.v1 message")
                && refused.message().contains("update it"),
            "{method}: {refused:?}"
        );
    }
    assert_eq!(r.store.durable_head(), head, "nothing is stored");
    let _ = r.stop.send(());
}

/// A connection to `url` from `from` (another loopback address, so that it
/// counts as another peer than the tablets of the test).
async fn connect_from(from: &str, url: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let to = url.trim_start_matches("http://").parse().unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closes `stream` within `within` (whatever it sends
/// first).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut sink)).await.is_ok()
}

#[tokio::test]
async fn silent_connections_from_one_address_are_closed_and_tablets_still_connect() {
    let limits = Limits {
        max_connections: 32,
        connections_per_ip: 8,
        handshake_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let r = start(limits).await;
    let token = user(&r, "an");
    // 64 connections from one address that never send the HTTP/2 preface.
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(connect_from("127.0.0.2", &r.url).await);
    }
    let mut tablet = tokio::time::timeout(Duration::from_secs(10), async {
        let mut tablet = Grpc::connect(&r.url, &token).await.expect("a new tablet connects");
        tablet.status(device()).await.expect("and is served");
        tablet
    })
    .await
    .expect("served within 10 s during the attack");
    for (i, stream) in silent.iter_mut().enumerate() {
        assert!(closed_within(stream, Duration::from_secs(10)).await, "silent connection {i}");
    }
    tablet.status(device()).await.expect("a connection that began a call stays open");
    let _ = r.stop.send(());
}
