//! End-to-end tests of how the server treats bad input, sent with the raw
//! generated gRPC client so that requests can be malformed on purpose.
//!
//! A bad value inside a good request is refused per mutation (OUTCOME_REJECTED
//! with a reason a surveyor can act on): its id is consumed, nothing is stored
//! and the mutations after it still apply. A malformed request as a whole is
//! refused with a gRPC status (INVALID_ARGUMENT, FAILED_PRECONDITION,
//! RESOURCE_EXHAUSTED) and leaves the store exactly as it was.
//! Replaying a batch returns the stored results and changes nothing. A call
//! without a live token (none, garbage, revoked, expired, or a disabled
//! user's) is UNAUTHENTICATED and leaves the store exactly as it was.

use crate::util;

use fieldsync::sync::{AuditEntry, FieldRef, FieldState};
use fieldsync::{demo, DeviceId, FieldKey, Hlc};
use fieldsync_proto::v1::admin_client::AdminClient;
use fieldsync_proto::v1::review_client::ReviewClient;
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{
    value::Kind, BootstrapRequest, CreateUserRequest, GeoPoint, HistoryRequest, IssueTokenRequest,
    ListSubmissionsRequest, ListTokensRequest, ListUsersRequest, Mutation, MutationResult, Outcome,
    PullRequest, PushReply, PushRequest, RevokeTokenRequest, Role as WireRole, StatusRequest,
    UpdateUserRequest, User, Value,
};
use fieldsync_proto::SCHEMA_VERSION;
use fieldsync_server::db::{HistoryQuery, SubmissionHeader, TokenInfo};
use fieldsync_server::Limits;
use tempfile::TempDir;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use util::{TestServer, ADMIN_TOKEN, PERIOD, VILLAGE};

/// Sends `authorization: <header>` with every call, or no such header.
#[derive(Clone)]
struct Auth(Option<MetadataValue<Ascii>>);

impl Auth {
    fn bearer(token: &str) -> Auth {
        Auth::header(&format!("Bearer {token}"))
    }

    fn header(value: &str) -> Auth {
        Auth(Some(value.parse().expect("an ASCII header value")))
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Signed = InterceptedService<Channel, Auth>;
type Client = SyncClient<Signed>;

/// A server over a fresh store, a raw client signed in as the admin and a
/// fresh device id.
struct Env {
    server: TestServer,
    channel: Channel,
    client: Client,
    device: String,
    _dir: TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = util::start_server(dir.path()).await;
    let channel =
        Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect");
    let client = SyncClient::with_interceptor(channel.clone(), Auth::bearer(ADMIN_TOKEN));
    Env { server, channel, client, device: new_device(), _dir: dir }
}

fn new_device() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now_hlc() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    Hlc::from_millis(ms).0
}

/// A mutation of the sample village and period; the id is set by the caller.
fn mutation(field: &str, kind: Kind) -> Mutation {
    Mutation {
        id: 0,
        village_id: VILLAGE.into(),
        period: PERIOD.into(),
        field: field.into(),
        value: Some(Value { kind: Some(kind) }),
        base_version: 0,
        hlc: now_hlc(),
        author: "Nguyễn Văn An".into(),
    }
}

fn amount(field: &str, text: &str) -> Mutation {
    mutation(field, Kind::Amount(text.into()))
}

/// `mutations` numbered consecutively from `first`.
fn numbered(first: u64, mutations: Vec<Mutation>) -> Vec<Mutation> {
    mutations.into_iter().zip(first..).map(|(m, id)| Mutation { id, ..m }).collect()
}

fn push_request(device: &str, mutations: Vec<Mutation>) -> PushRequest {
    PushRequest {
        schema_version: SCHEMA_VERSION,
        device_id: device.into(),
        mutations,
        acknowledged_through: 0,
    }
}

impl Env {
    async fn push(&mut self, mutations: Vec<Mutation>) -> Result<PushReply, Status> {
        let request = push_request(&self.device, mutations);
        self.client.push(request).await.map(|r| r.into_inner())
    }

    /// Pushes mutations that must all apply.
    async fn push_ok(&mut self, mutations: Vec<Mutation>) -> Vec<MutationResult> {
        let results = self.push(mutations).await.expect("push").results;
        for r in &results {
            assert_eq!(r.outcome(), Outcome::Applied, "setup push: {r:?}");
        }
        results
    }

    fn snapshot(&self) -> Snapshot {
        let store = &self.server.store;
        let device: DeviceId = self.device.parse().expect("device id");
        Snapshot {
            head: store.head().expect("head"),
            submissions: store.submissions().expect("submissions"),
            fields: store.fields_of(VILLAGE, PERIOD.parse().expect("period")).expect("fields"),
            last_mutation_id: store.device(device).expect("device").last_mutation_id,
        }
    }

    fn field(&self, field: &str) -> Option<FieldState> {
        self.server.store.field(&sample_field(field)).expect("field")
    }

    /// Everything a refused call must leave as it was: the snapshot, the
    /// audit trail, users and tokens.
    fn stored(&self) -> Stored {
        let store = &self.server.store;
        let admin = store.user("admin").expect("users").expect("admin exists");
        let everything = HistoryQuery { limit: 10_000, ..HistoryQuery::default() };
        Stored {
            snapshot: self.snapshot(),
            audit: store.history(&admin, &everything).expect("history"),
            users: store.users().expect("users"),
            tokens: store.tokens(&admin, None).expect("tokens"),
        }
    }

    fn sync_as(&self, auth: Auth) -> Client {
        SyncClient::with_interceptor(self.channel.clone(), auth)
    }

    fn admin(&self) -> AdminClient<Signed> {
        AdminClient::with_interceptor(self.channel.clone(), Auth::bearer(ADMIN_TOKEN))
    }

    /// One call of every kind (a push of the device's next id, a pull,
    /// bootstrap, status, a review read, a history read, an admin write and
    /// an admin read), signed with `auth`; each call's outcome by name.
    async fn call_everything(&self, auth: Auth) -> Vec<(&'static str, Result<(), Status>)> {
        let mut sync = self.sync_as(auth.clone());
        let mut review = ReviewClient::with_interceptor(self.channel.clone(), auth.clone());
        let mut admin = AdminClient::with_interceptor(self.channel.clone(), auth);
        let next = self.snapshot().last_mutation_id + 1;
        let push = push_request(&self.device, numbered(next, vec![amount("road_km", "7")]));
        let pull = PullRequest {
            schema_version: SCHEMA_VERSION,
            device_id: self.device.clone(),
            cursor: 0,
            page_size: 0,
        };
        let history = HistoryRequest {
            village_id: VILLAGE.into(),
            period: PERIOD.into(),
            ..Default::default()
        };
        let intruder = User {
            id: "intruder".into(),
            name: "Kẻ xâm nhập".into(),
            role: WireRole::Admin as i32,
            areas: vec![demo::PROVINCE.into()],
            disabled: false,
        };
        vec![
            ("Push", sync.push(push).await.map(drop)),
            ("Pull", sync.pull(pull).await.map(drop)),
            (
                "Bootstrap",
                sync.bootstrap(BootstrapRequest { schema_version: SCHEMA_VERSION }).await.map(drop),
            ),
            (
                "Status",
                sync.status(StatusRequest { device_id: self.device.clone() }).await.map(drop),
            ),
            (
                "ListSubmissions",
                review.list_submissions(ListSubmissionsRequest::default()).await.map(drop),
            ),
            ("History", review.history(history).await.map(drop)),
            (
                "CreateUser",
                admin.create_user(CreateUserRequest { user: Some(intruder) }).await.map(drop),
            ),
            ("ListUsers", admin.list_users(ListUsersRequest::default()).await.map(drop)),
        ]
    }

    /// Asserts that every kind of call signed with `auth` is UNAUTHENTICATED
    /// with `phrase` in its message, and that nothing stored changed.
    async fn assert_locked_out(&self, auth: Auth, phrase: &str, label: &str) {
        let before = self.stored();
        for (call, got) in self.call_everything(auth).await {
            let status = got.expect_err(&format!("{label}: {call} should have been refused"));
            assert_eq!(status.code(), Code::Unauthenticated, "{label}: {call}: {status:?}");
            assert!(
                status.message().contains(phrase),
                "{label}: {call}: message {:?} should say {phrase:?}",
                status.message()
            );
        }
        assert_eq!(self.stored(), before, "{label}: a refused call changes nothing stored");
    }
}

/// A field of the sample village's report.
fn sample_field(name: &str) -> FieldRef {
    FieldRef::new(VILLAGE, PERIOD.parse().expect("period"), FieldKey::parse(name))
}

/// What a bad request must not change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: u64,
    submissions: Vec<SubmissionHeader>,
    fields: Vec<FieldState>,
    last_mutation_id: u64,
}

/// The snapshot and everything else a refused call must not touch.
#[derive(Debug, PartialEq)]
struct Stored {
    snapshot: Snapshot,
    audit: Vec<AuditEntry>,
    users: Vec<fieldsync::access::User>,
    tokens: Vec<TokenInfo>,
}

/// Asserts a whole-request error: its code and a phrase of its message.
fn assert_status<T: std::fmt::Debug>(got: Result<T, Status>, code: Code, phrase: &str) {
    let status = got.expect_err("the request should have been refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(phrase),
        "message {:?} should say {phrase:?}",
        status.message()
    );
}

fn assert_rejected(result: &MutationResult, id: u64, phrase: &str) {
    assert_eq!(result.id, id, "{result:?}");
    assert_eq!(result.outcome(), Outcome::Rejected, "{result:?}");
    assert!(
        result.reason.contains(phrase),
        "mutation {id}: reason {:?} should say {phrase:?}",
        result.reason
    );
    assert!(result.current.is_none(), "a rejection carries no current value");
}

// ---------------------------------------------------------------------------
// Per-mutation rejections

#[tokio::test]
async fn a_rejected_mutation_consumes_its_id_and_changes_nothing() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();

    let reply = env.push(numbered(2, vec![amount("road_km", "-1")])).await.expect("push");

    assert_eq!(reply.results.len(), 1);
    assert_rejected(&reply.results[0], 2, "cannot be negative");
    let after = env.snapshot();
    assert_eq!(after.last_mutation_id, 2, "the rejected id is consumed");
    assert_eq!(after, Snapshot { last_mutation_id: 2, ..before });
}

#[tokio::test]
async fn each_bad_value_is_rejected_with_a_reason_and_the_next_mutation_applies() {
    let with = |m: Mutation, change: fn(&mut Mutation)| {
        let mut m = m;
        change(&mut m);
        m
    };
    let road = || amount("road_km", "1");
    let off_globe = GeoPoint { lat_e7: 950_000_000, lon_e7: 0 };
    let cases: Vec<(Mutation, &str)> = vec![
        (with(road(), |m| m.village_id = "ha-tinh.nowhere.thon-9".into()), "unknown village"),
        (with(road(), |m| m.village_id = demo::SAMPLE_COMMUNE.into()), "not a village"),
        (with(road(), |m| m.period = "2022-Q9".into()), "unknown period"),
        (with(road(), |m| m.period = "22".into()), "unknown period"),
        (amount("bridges", "1"), "unknown indicator"),
        (mutation("road_km", Kind::Text("ten".into())), "takes a number"),
        (amount("note", "1"), "note cannot hold a number"),
        (amount("road_km", "-1"), "cannot be negative"),
        (amount("road_km", "NaN"), "write digits with a dot"),
        (amount("road_km", "inf"), "write digits with a dot"),
        (amount("road_km", "1e3"), "write digits with a dot"),
        (amount("road_km", "1.234"), "at most 2 digit(s) after the decimal point"),
        (amount("village_cultural_house", "1.5"), "counted in whole numbers"),
        (amount("road_km", "100000"), "more than one village can report (at most 200 km)"),
        (with(road(), |m| m.author = String::new()), "names no author"),
        (with(road(), |m| m.author = "   ".into()), "names no author"),
        (mutation("location", Kind::Point(off_globe)), "off the globe"),
        (mutation("note", Kind::Text("x".repeat(2_001))), "at most 2000 characters"),
        (with(road(), |m| m.base_version = 99), "newer than the server's"),
    ];

    let mut env = env().await;
    // road_km = 5 at version 1: the sample submission exists, and every bad
    // road_km value below must leave it at that.
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let road_km = env.field("road_km");
    let mut next = 2;
    for (n, (bad, phrase)) in cases.into_iter().enumerate() {
        let label = format!("{bad:?}");
        let good = amount("drainage_km", &(n + 1).to_string());
        let before = env.snapshot();

        let reply = env
            .push(numbered(next, vec![bad, good]))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e:?}"));

        assert_eq!(reply.results.len(), 2, "{label}");
        assert_rejected(&reply.results[0], next, phrase);
        let good = &reply.results[1];
        assert_eq!(good.outcome(), Outcome::Applied, "{label}: {good:?}");
        let after = env.snapshot();
        assert_eq!(after.last_mutation_id, next + 1, "{label}: both ids consumed");
        assert_eq!(after.head, before.head + 1, "{label}: only the good one");
        assert_eq!(
            good.current.as_ref().map(|c| c.version),
            Some(after.head),
            "{label}: the one change is the good mutation"
        );
        assert_eq!(after.submissions, before.submissions, "{label}");
        assert_eq!(env.field("road_km"), road_km, "{label}");
        assert_eq!(env.field("note"), None, "{label}");
        assert_eq!(env.field("location"), None, "{label}");
        assert_eq!(env.field("village_cultural_house"), None, "{label}");
        next += 2;
    }
}

#[tokio::test]
async fn a_part_never_exceeds_its_whole() {
    let mut env = env().await;
    let reply = env
        .push(numbered(
            1,
            vec![
                amount("road_km", "1"),
                amount("road_cement_km", "2"),
                amount("road_cement_km", "1"),
            ],
        ))
        .await
        .expect("push");
    assert_eq!(reply.results[0].outcome(), Outcome::Applied);
    assert_rejected(
        &reply.results[1],
        2,
        "road_cement_km = 2 km is more than its whole road_km = 1 km",
    );
    assert_eq!(reply.results[2].outcome(), Outcome::Applied, "{reply:?}");
    let cement = env.field("road_cement_km");
    assert_eq!(env.snapshot().head, 3, "two values and the new report's review state");

    // In a later push, against the stored whole; and the whole cannot drop
    // below its part.
    let before = env.snapshot();
    let reply = env
        .push(numbered(4, vec![amount("road_cement_km", "2"), amount("road_km", "0.5")]))
        .await
        .expect("push");
    assert_rejected(&reply.results[0], 4, "a part cannot exceed it");
    assert_rejected(&reply.results[1], 5, "lower the part first");
    assert_eq!(env.snapshot(), Snapshot { last_mutation_id: 5, ..before });
    assert_eq!(env.field("road_cement_km"), cement);
}

// ---------------------------------------------------------------------------
// Whole-request errors

#[tokio::test]
async fn a_missing_or_unknown_schema_version_is_refused_by_every_call() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    let cases = [
        (0, Code::InvalidArgument, "schema_version is missing"),
        (99, Code::FailedPrecondition, "update the server"),
    ];
    for (version, code, phrase) in cases {
        let push = PushRequest {
            schema_version: version,
            ..push_request(&env.device, numbered(2, vec![amount("road_km", "6")]))
        };
        assert_status(env.client.push(push).await, code, phrase);
        let pull = PullRequest {
            schema_version: version,
            device_id: env.device.clone(),
            cursor: 0,
            page_size: 0,
        };
        assert_status(env.client.pull(pull).await, code, phrase);
        let bootstrap = BootstrapRequest { schema_version: version };
        assert_status(env.client.bootstrap(bootstrap).await, code, phrase);
        assert_eq!(env.snapshot(), before, "schema version {version}");
    }
}

#[tokio::test]
async fn a_device_id_that_is_not_a_uuid_is_refused() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    for device in ["tablet-7", ""] {
        let push = push_request(device, numbered(1, vec![amount("road_km", "6")]));
        assert_status(env.client.push(push).await, Code::InvalidArgument, "is not a UUID");
        let pull = PullRequest {
            schema_version: SCHEMA_VERSION,
            device_id: device.into(),
            cursor: 0,
            page_size: 0,
        };
        assert_status(env.client.pull(pull).await, Code::InvalidArgument, "is not a UUID");
        assert_eq!(env.snapshot(), before, "device {device:?}");
    }
}

#[tokio::test]
async fn a_mutation_without_a_value_refuses_the_whole_batch() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    let no_values =
        [None, Some(Value { kind: None }), Some(Value { kind: Some(Kind::Deleted(false)) })];
    for value in no_values {
        let empty = Mutation { value: value.clone(), ..amount("road_km", "0") };
        let batch = numbered(2, vec![amount("road_km", "6"), empty]);
        assert_status(env.push(batch).await, Code::InvalidArgument, "mutation 3: no value given");
        assert_eq!(env.snapshot(), before, "value {value:?}");
    }
}

#[tokio::test]
async fn mutation_ids_must_be_consecutive_and_start_at_one() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    let with_ids = |ids: &[u64]| -> Vec<Mutation> {
        ids.iter()
            .zip(1..)
            .map(|(&id, n)| Mutation { id, ..amount("drainage_km", &n.to_string()) })
            .collect()
    };
    let cases: [(&[u64], &str); 4] = [
        (&[2, 4], "must be consecutive within a push: 2 is followed by 4"),
        (&[3, 2], "must be consecutive within a push: 3 is followed by 2"),
        (&[0], "mutation ids start at 1"),
        (&[0, 1, 2], "mutation ids start at 1"),
    ];
    for (ids, phrase) in cases {
        assert_status(env.push(with_ids(ids)).await, Code::InvalidArgument, phrase);
        assert_eq!(env.snapshot(), before, "ids {ids:?}");
    }
}

#[tokio::test]
async fn a_gap_after_what_the_server_has_is_refused_and_nothing_of_it_stored() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5"), amount("drainage_km", "2")])).await;
    let before = env.snapshot();
    assert_eq!(before.last_mutation_id, 2);

    let gap = numbered(5, vec![amount("road_km", "6"), amount("canal_km", "3")]);
    assert_status(
        env.push(gap).await,
        Code::FailedPrecondition,
        "the next is 3, not 5: resend the outbox from 3",
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.field("canal_km"), None);

    // The device recovers by resending from 3.
    env.push_ok(numbered(3, vec![amount("road_km", "6")])).await;
    assert_eq!(env.snapshot().last_mutation_id, 3);
}

/// An id that overflows when the server computes "the next id".
#[tokio::test]
async fn a_mutation_id_at_the_top_of_the_range_is_refused_cleanly() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    let batch = vec![
        Mutation { id: u64::MAX, ..amount("road_km", "6") },
        Mutation { id: 0, ..amount("road_km", "7") },
    ];
    let status = env.push(batch).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("consecutive"), "{status:?}");
    assert_eq!(env.snapshot(), before);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_as_resource_exhausted() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    let max = Limits::default().max_batch;
    let batch = |len: usize| {
        let values = (0..len).map(|n| amount("drainage_km", &(n % 200 + 1).to_string()));
        numbered(2, values.collect())
    };

    assert_status(
        env.push(batch(max + 1)).await,
        Code::ResourceExhausted,
        "1001 mutations in one push; at most 1000 are accepted: split the batch",
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.field("drainage_km"), None);

    // Exactly the limit is fine.
    let reply = env.push(batch(max)).await.expect("a full batch");
    assert_eq!(reply.results.len(), max);
    assert_eq!(env.snapshot().last_mutation_id, 1 + max as u64);
}

#[tokio::test]
async fn a_message_over_4_mib_is_refused_and_the_server_keeps_serving() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();

    let huge = mutation("note", Kind::Text("x".repeat(5_000_000)));
    let got = env.push(numbered(2, vec![huge])).await;
    assert_status(got, Code::ResourceExhausted, "larger than the server's limit of 4 MiB");
    assert_eq!(env.snapshot(), before);

    // The same connection still serves, and the id was not consumed.
    let results = env.push_ok(numbered(2, vec![amount("road_km", "6")])).await;
    assert_eq!(results[0].id, 2);
    assert_eq!(env.snapshot().head, before.head + 1);
}

#[tokio::test]
async fn a_pull_cursor_beyond_the_head_is_refused() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let before = env.snapshot();
    let pull = |cursor| PullRequest {
        schema_version: SCHEMA_VERSION,
        device_id: env.device.clone(),
        cursor,
        page_size: 0,
    };
    let (at_head, beyond) = (pull(before.head), pull(before.head + 1));

    // One value and the new report's review state.
    assert_eq!(before.head, 2);
    assert_status(
        env.client.pull(beyond).await,
        Code::FailedPrecondition,
        "cursor 3 is ahead of this server's change log (2): the device synced with another \
         store; re-initialise it",
    );
    assert_eq!(env.snapshot(), before);

    // At the head is fine: one empty, caught-up page.
    let mut pages = env.client.pull(at_head).await.expect("pull").into_inner();
    let page = pages.message().await.expect("page").expect("one page");
    assert!(page.changes.is_empty() && page.caught_up, "{page:?}");
    assert_eq!(page.cursor, before.head);
}

// ---------------------------------------------------------------------------
// Replay

#[tokio::test]
async fn replaying_a_batch_returns_the_same_results_and_changes_nothing() {
    let mut env = env().await;
    let batch = numbered(
        1,
        vec![amount("road_km", "5"), amount("road_km", "NaN"), amount("drainage_km", "2")],
    );
    let first = env.push(batch.clone()).await.expect("push");
    let outcomes: Vec<_> = first.results.iter().map(|r| r.outcome()).collect();
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Rejected, Outcome::Applied]);
    let before = env.snapshot();

    let again = env.push(batch).await.expect("replay");

    assert_eq!(again.results, first.results);
    assert_eq!(env.snapshot(), before);
}

// ---------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn a_call_without_a_valid_token_is_unauthenticated_and_changes_nothing() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5")])).await;
    let cases = [
        (Auth(None), "no token: send `authorization: Bearer <token>`", "no header"),
        (Auth::bearer("not-a-token-at-all"), "unknown or revoked token", "garbage token"),
        (Auth::bearer(&format!("{ADMIN_TOKEN}x")), "unknown or revoked token", "admin token + x"),
        (
            Auth::bearer(&format!("fs_{}", "0".repeat(64))),
            "unknown or revoked token",
            "well-formed",
        ),
        (Auth::header(ADMIN_TOKEN), "must be `Bearer <token>`", "token without the scheme"),
        (Auth::header("Basic YWRtaW46c2VjcmV0"), "must be `Bearer <token>`", "basic auth"),
    ];
    for (auth, phrase, label) in cases {
        env.assert_locked_out(auth, phrase, label).await;
    }
    assert!(env.server.store.user("intruder").expect("users").is_none());

    // The refused pushes consumed no id: the admin's next push is still 2.
    let results = env.push_ok(numbered(2, vec![amount("road_km", "6")])).await;
    assert_eq!(results[0].id, 2);
}

/// Creates a surveyor over the province through the Admin service and
/// issues it a token; returns the token and its id.
async fn surveyor_with_token(env: &Env, id: &str, expires_in_s: u64) -> (String, String) {
    let mut admin = env.admin();
    let user = User {
        id: id.into(),
        name: "Nguyễn Văn An".into(),
        role: WireRole::Surveyor as i32,
        areas: vec![demo::PROVINCE.into()],
        disabled: false,
    };
    admin.create_user(CreateUserRequest { user: Some(user) }).await.expect("create user");
    let request = IssueTokenRequest { user_id: id.into(), expires_in_s, label: "tablet 7".into() };
    let issued = admin.issue_token(request).await.expect("issue token").into_inner();
    let info = issued.info.expect("token info");
    assert_eq!(info.user_id, id);
    assert!(issued.token.starts_with("fs_"), "{}", issued.token);
    (issued.token, info.id)
}

/// Pushes one value from the env's device with `client`; it must apply.
async fn push_applies(env: &mut Env, client: &mut Client, value: &str) {
    let next = env.snapshot().last_mutation_id + 1;
    let request = push_request(&env.device, numbered(next, vec![amount("drainage_km", value)]));
    let reply = client.push(request).await.expect("push").into_inner();
    assert_eq!(reply.results[0].outcome(), Outcome::Applied, "{reply:?}");
    assert_eq!(env.field("drainage_km").expect("stored").value.to_string(), value);
}

#[tokio::test]
async fn a_revoked_token_is_unauthenticated_and_changes_nothing() {
    let mut env = env().await;
    let (token, token_id) = surveyor_with_token(&env, "an.nguyen", 0).await;
    let mut an = env.sync_as(Auth::bearer(&token));
    push_applies(&mut env, &mut an, "1").await;

    let mut admin = env.admin();
    let revoked = admin
        .revoke_token(RevokeTokenRequest { id: token_id.clone() })
        .await
        .expect("revoke")
        .into_inner();
    assert!(revoked.revoked && revoked.id == token_id, "{revoked:?}");
    let listed = admin
        .list_tokens(ListTokensRequest { user_id: "an.nguyen".into(), ..Default::default() })
        .await
        .expect("list tokens")
        .into_inner()
        .tokens;
    assert!(listed.iter().all(|t| t.revoked) && listed.len() == 1, "{listed:?}");

    env.assert_locked_out(Auth::bearer(&token), "unknown or revoked token", "revoked").await;
    // Other tokens are untouched: the admin pushes from a tablet of its own.
    let own = uuid::Uuid::new_v4().to_string();
    let request = push_request(&own, numbered(1, vec![amount("road_km", "5")]));
    let results = env.client.push(request).await.expect("admin push").into_inner().results;
    assert_eq!(results[0].outcome(), Outcome::Applied);
}

#[tokio::test]
async fn a_revoked_token_is_unauthenticated_when_revoked_in_the_store() {
    let mut env = env().await;
    let (token, token_id) = surveyor_with_token(&env, "an.nguyen", 0).await;
    let mut an = env.sync_as(Auth::bearer(&token));
    push_applies(&mut env, &mut an, "1").await;
    let admin = env.server.store.user("admin").expect("users").expect("admin");
    let info = env
        .server
        .store
        .revoke_token(&admin, &token_id, fieldsync_client::now_ms())
        .expect("revoke");
    assert!(info.revoked);
    env.assert_locked_out(Auth::bearer(&token), "unknown or revoked token", "revoked").await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated_and_changes_nothing() {
    let mut env = env().await;
    let (token, token_id) = surveyor_with_token(&env, "an.nguyen", 2).await;
    let mut an = env.sync_as(Auth::bearer(&token));
    push_applies(&mut env, &mut an, "1").await;

    let admin = env.server.store.user("admin").expect("users").expect("admin");
    let tokens = env.server.store.tokens(&admin, Some("an.nguyen")).expect("tokens");
    let info = tokens.iter().find(|t| t.id == token_id).expect("the token is listed");
    assert!(info.expires_ms > info.created_ms, "{info:?}");
    // Wait until it has expired.
    while fieldsync_client::now_ms() <= info.expires_ms {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    env.assert_locked_out(Auth::bearer(&token), "the token has expired", "expired").await;
}

#[tokio::test]
async fn a_token_issued_already_expired_signs_nobody_in() {
    let env = env().await;
    let (_, _) = surveyor_with_token(&env, "an.nguyen", 0).await;
    let admin = env.server.store.user("admin").expect("users").expect("admin");
    // Issued two minutes ago for one minute.
    let long_ago = fieldsync_client::now_ms() - 120_000;
    let (token, info) =
        env.server.store.issue_token(&admin, "an.nguyen", 60, "old", long_ago).expect("issue");
    assert!(info.expires_ms < fieldsync_client::now_ms());
    env.assert_locked_out(Auth::bearer(&token), "the token has expired", "expired").await;
}

#[tokio::test]
async fn a_disabled_user_is_unauthenticated_until_enabled_again() {
    let mut env = env().await;
    let (token, _) = surveyor_with_token(&env, "an.nguyen", 0).await;
    let mut an = env.sync_as(Auth::bearer(&token));
    push_applies(&mut env, &mut an, "1").await;

    let mut admin = env.admin();
    let disable = |disabled| UpdateUserRequest {
        id: "an.nguyen".into(),
        disabled: Some(disabled),
        ..Default::default()
    };
    let user = admin.update_user(disable(true)).await.expect("disable").into_inner();
    assert!(user.disabled);
    env.assert_locked_out(Auth::bearer(&token), "user an.nguyen is disabled", "disabled").await;

    let user = admin.update_user(disable(false)).await.expect("enable").into_inner();
    assert!(!user.disabled);
    push_applies(&mut env, &mut an, "2").await;
}

#[tokio::test]
async fn overlong_reasons_comments_and_names_are_refused_saying_the_field_and_limit() {
    let mut env = env().await;
    env.push_ok(numbered(1, vec![amount("road_km", "5"), amount("village_cultural_house", "2")]))
        .await;
    // A second tablet disagrees: a conflict to settle.
    let other = new_device();
    let mut second = amount("village_cultural_house", "3");
    second.id = 1;
    env.client.push(push_request(&other, vec![second])).await.expect("push");
    let channel = env.channel.clone();
    let mut review = ReviewClient::with_interceptor(channel.clone(), Auth::bearer(ADMIN_TOKEN));
    let mut admin = env.admin();
    let text = "x".repeat(2_001);
    let name = "Thôn".repeat(51); // 204 characters
    let before = env.stored();
    let catalogue = env.server.store.catalogue();
    let decide = fieldsync_proto::v1::DecideRequest {
        verdict: fieldsync_proto::v1::Verdict::Reject as i32,
        reason: text.clone(),
        submissions: vec![fieldsync_proto::v1::SubmissionKey {
            village_id: VILLAGE.into(),
            period: PERIOD.into(),
        }],
        ..Default::default()
    };
    let resolve = fieldsync_proto::v1::ResolveConflictRequest {
        village_id: VILLAGE.into(),
        period: PERIOD.into(),
        field: "village_cultural_house".into(),
        choice: Some(fieldsync_proto::v1::resolve_conflict_request::Choice::Pick(0)),
        comment: text.clone(),
    };
    let user = |id: &str, name: &str| User {
        id: id.into(),
        name: name.into(),
        role: WireRole::Surveyor as i32,
        areas: vec![demo::SAMPLE_COMMUNE.into()],
        disabled: false,
    };
    let update =
        UpdateUserRequest { id: "admin".into(), name: Some(name.clone()), ..Default::default() };
    let token = IssueTokenRequest { user_id: "admin".into(), expires_in_s: 0, label: name.clone() };
    let unit = |id: &str, name: &str| fieldsync_proto::v1::OrgUnit {
        id: id.into(),
        name: name.into(),
        level: fieldsync_proto::v1::Level::Village as i32,
        parent_id: demo::SAMPLE_COMMUNE.into(),
    };
    let indicator = fieldsync_proto::v1::Indicator {
        code: "Đường KM".into(),
        name_vi: "Đường".into(),
        name_en: "Road".into(),
        unit: "km".into(),
        kind: fieldsync_proto::v1::ValueKind::Decimal as i32,
        scale: 2,
        parent_code: String::new(),
        max_per_village: "10".into(),
        retired_from: String::new(),
    };
    let new_village = format!("{}.thon-moi", demo::SAMPLE_COMMUNE);
    let calls: Vec<(&str, Result<(), Status>, String)> = vec![
        (
            "Decide",
            review.decide(decide).await.map(drop),
            "the reason is 2001 characters long; at most 2000".into(),
        ),
        (
            "ResolveConflict",
            review.resolve_conflict(resolve).await.map(drop),
            "the comment is 2001 characters long; at most 2000".into(),
        ),
        (
            "CreateUser",
            admin
                .create_user(CreateUserRequest { user: Some(user("tho.nguyen", &name)) })
                .await
                .map(drop),
            "the name of user tho.nguyen is 204 characters long; at most 200".into(),
        ),
        (
            "UpdateUser",
            admin.update_user(update).await.map(drop),
            "the name of user admin is 204 characters long; at most 200".into(),
        ),
        (
            "IssueToken",
            admin.issue_token(token).await.map(drop),
            "a token's label is 204 characters long; at most 200".into(),
        ),
        (
            "AddOrgUnit name",
            admin.add_org_unit(unit(&new_village, &name)).await.map(drop),
            format!("the name of org unit {new_village} is 204 characters long; at most 200"),
        ),
        (
            "AddOrgUnit id",
            admin
                .add_org_unit(unit(&format!("{}.Thôn Mới", demo::SAMPLE_COMMUNE), "Thôn Mới"))
                .await
                .map(drop),
            "use only lower-case letters a-z, digits, '.', '_' and '-'".into(),
        ),
        (
            "AddIndicator code",
            admin.add_indicator(indicator).await.map(drop),
            "use only lower-case letters a-z, digits, '.', '_' and '-'".into(),
        ),
    ];
    for (call, got, phrase) in calls {
        let status = got.expect_err(call);
        assert_eq!(status.code(), Code::InvalidArgument, "{call}: {status:?}");
        assert!(
            status.message().contains(&phrase),
            "{call}: {:?} should say {phrase:?}",
            status.message()
        );
    }
    assert_eq!(env.stored(), before, "a refused call changes nothing stored");
    assert_eq!(env.server.store.catalogue(), catalogue, "nor the catalogue");
    // At the limit, each is taken.
    let fits = fieldsync_proto::v1::OrgUnit {
        id: new_village.clone(),
        ..unit(&new_village, &"T".repeat(200))
    };
    admin.add_org_unit(fits).await.expect("a 200-character name fits");
}

#[tokio::test]
async fn the_last_admin_cannot_lock_administration_out() {
    let env = env().await;
    let mut admin = env.admin();
    let store = &env.server.store;
    let me = store.user("admin").expect("users").expect("admin");
    let mine = store.tokens(&me, Some("admin")).expect("tokens");
    assert_eq!(mine.len(), 1, "{mine:?}");
    let before = env.stored();
    let disable =
        UpdateUserRequest { id: "admin".into(), disabled: Some(true), ..Default::default() };
    let status = admin.update_user(disable.clone()).await.expect_err("the last admin");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("last enabled admin with a live token"), "{status:?}");
    let revoke = RevokeTokenRequest { id: mine[0].id.clone() };
    let status = admin.revoke_token(revoke.clone()).await.expect_err("the last token");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("would lock administration out"), "{status:?}");
    assert_eq!(env.stored(), before, "a refused call changes nothing stored");
    admin.list_users(ListUsersRequest::default()).await.expect("the admin still works");
    // With a second admin signed in, the first may step down.
    let second = User {
        id: "admin2".into(),
        name: "Quản trị 2".into(),
        role: WireRole::Admin as i32,
        areas: Vec::new(),
        disabled: false,
    };
    admin.create_user(CreateUserRequest { user: Some(second) }).await.expect("create");
    let token =
        IssueTokenRequest { user_id: "admin2".into(), expires_in_s: 0, label: String::new() };
    admin.issue_token(token).await.expect("issue");
    admin.revoke_token(revoke).await.expect("another admin remains");
}

#[tokio::test]
async fn one_surveyors_many_tablet_ids_cannot_crowd_colleagues_out_of_a_conflict() {
    let env = env().await;
    let commune = demo::SAMPLE_COMMUNE;
    let role = fieldsync::access::Role::Surveyor;
    let an = env.server.user("an.nguyen", "Nguyễn Văn An", role, &[commune]);
    let binh = env.server.user("binh.tran", "Trần Thị Bình", role, &[commune]);
    let mut an = env.sync_as(Auth::bearer(&an));
    let mut binh = env.sync_as(Auth::bearer(&binh));
    let mut outcomes = Vec::new();
    for i in 0..40 {
        let value = format!("1.{:02}", i + 1);
        let push = push_request(&new_device(), numbered(1, vec![amount("road_km", &value)]));
        let reply = an.push(push).await.expect("push").into_inner();
        outcomes.push((reply.results[0].outcome(), reply.results[0].reason.clone()));
    }
    // The first applies, the second opens the conflict; the rest are refused.
    assert_eq!(outcomes[0].0, Outcome::Applied, "{:?}", outcomes[0]);
    assert_eq!(outcomes[1].0, Outcome::Conflict, "{:?}", outcomes[1]);
    for (outcome, reason) in &outcomes[2..] {
        assert_eq!(*outcome, Outcome::Rejected, "{reason}");
        assert!(reason.contains("2 competing values from your tablets"), "{reason}");
    }
    // A colleague's value still joins the conflict.
    let push = push_request(&new_device(), numbered(1, vec![amount("road_km", "2.5")]));
    let reply = binh.push(push).await.expect("push").into_inner();
    assert_eq!(reply.results[0].outcome(), Outcome::Conflict, "{:?}", reply.results[0]);
    let conflict =
        env.server.store.conflict(&sample_field("road_km")).expect("conflict").expect("open");
    let values: Vec<String> = conflict.candidates.iter().map(|k| k.value.to_string()).collect();
    assert_eq!(conflict.candidates.len(), 3, "{values:?}");
    assert!(values.contains(&"2.5".to_owned()), "{values:?}");
}
