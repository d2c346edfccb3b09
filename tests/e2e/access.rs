//! Who may call what, where. Every RPC of the Sync, Review and Admin
//! services, for every role, inside and outside the caller's areas, is one
//! cell of [`MATRIX`], a table that reads like the spec; then the guarantees
//! around it: a pull never carries a change from outside the caller's areas,
//! bootstrap shows only the caller's org units and the units above them, and
//! the store keeps no token in plain text.

use crate::util;

use std::collections::BTreeSet;
use std::path::Path;

use fieldsync::access::Role;
use fieldsync::demo;
use fieldsync_proto::v1;
use fieldsync_proto::v1::admin_client::AdminClient;
use fieldsync_proto::v1::review_client::ReviewClient;
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{
    change, resolve_conflict_request, value, BackupRequest, BootstrapRequest,
    CreateEnrollmentRequest, CreateUserRequest, DecideRequest, GetSubmissionRequest,
    HistoryRequest, ImportCatalogueRequest, ImportUsersRequest, Indicator, IssueTokenRequest,
    Level, ListConflictsRequest, ListEnrollmentsRequest, ListSubmissionsRequest, ListTokensRequest,
    ListUsersRequest, Mutation, OrgUnit, Outcome, PullRequest, PushRequest, ResolveConflictRequest,
    RevokeEnrollmentRequest, RevokeTokenRequest, SetPeriodClosedRequest, StatusRequest,
    SubmissionKey, UpdateUserRequest, User, Value, ValueKind, Verdict,
};
use fieldsync_proto::SCHEMA_VERSION;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use util::{start_server, TestServer, TestTablet, ADMIN_TOKEN, VILLAGE};

/// The commune of [`VILLAGE`].
const COMMUNE: &str = demo::SAMPLE_COMMUNE;
const DISTRICT: &str = "ha-tinh.huong-khe";
/// A village of another commune of the same district.
const NEIGHBOUR_VILLAGE: &str = "ha-tinh.huong-khe.hoa-hai.thon-1";
/// A village of another district.
const OTHER_DISTRICT_VILLAGE: &str = "ha-tinh.can-loc.gia-hanh.thon-1";
/// A village of another province, added by the admin for these tests.
const OTHER_PROVINCE_VILLAGE: &str = "nghe-an.do-luong.da-son.thon-1";

// ---------------------------------------------------------------------------
// The matrix

/// The callers of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// A surveyor of the commune Phúc Đồng.
    Surveyor,
    /// A supervisor of the commune Phúc Đồng: approves.
    CommuneSupervisor,
    /// A supervisor of the district Hương Khê: accepts.
    DistrictSupervisor,
    /// The province office of Hà Tĩnh.
    Province,
    Admin,
}

/// The columns of [`MATRIX`], in order.
const WHO: [Who; 5] =
    [Who::Surveyor, Who::CommuneSupervisor, Who::DistrictSupervisor, Who::Province, Who::Admin];

impl Who {
    /// The nearest village outside the caller's areas (the admin has no
    /// outside: this is a village of another province).
    fn outside(self) -> &'static str {
        match self {
            Who::Surveyor | Who::CommuneSupervisor => NEIGHBOUR_VILLAGE,
            Who::DistrictSupervisor => OTHER_DISTRICT_VILLAGE,
            Who::Province | Who::Admin => OTHER_PROVINCE_VILLAGE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Inside,
    Outside,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    Bootstrap,
    Push,
    Pull,
    Status,
    ListSubmissions,
    GetSubmission,
    Decide,
    ListConflicts,
    ResolveConflict,
    History,
    SetPeriodClosed,
    CreateUser,
    ListUsers,
    UpdateUser,
    IssueToken,
    ListTokens,
    RevokeToken,
    AddOrgUnit,
    AddIndicator,
    ImportCatalogue,
    ImportUsers,
    ChangeTree,
    GetTree,
    RetireIndicator,
    SetReviewChain,
    Backup,
    CreateEnrollment,
    ListEnrollments,
    RevokeEnrollment,
}

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The call succeeds (a push: the mutation applies).
    Ok,
    /// PERMISSION_DENIED for the whole call.
    Denied,
    /// The push succeeds but its mutation is OUTCOME_REJECTED, with a
    /// reason naming the area.
    Rejected,
    /// The call names no area, so there is no "outside".
    NotApplicable,
}

const OK: Expect = Expect::Ok;
const DENIED: Expect = Expect::Denied;
const REJECTED: Expect = Expect::Rejected;
const NA: Expect = Expect::NotApplicable;

/// Each RPC for each caller: `[inside, outside]` the caller's areas. Inside
/// is Thôn 1 of Phúc Đồng (in everyone's areas); outside is
/// [`Who::outside`]: the area a read names, the village a push records for
/// or a decision is about, the area a period is closed for, and for the
/// admin calls the area of the user created, renamed, given or stripped of
/// a token, or the commune a new village is added to. Reads are open to
/// every role in its areas; recording to surveyors, supervisors and admins;
/// reviewing and settling conflicts to supervisors and admins; closing
/// periods to the province and admins; users, tokens and the catalogue to
/// admins alone, but for enrollment codes, which supervisors and the
/// province office make, list and revoke for the surveyors of their areas.
#[rustfmt::skip]
const MATRIX: &[(Rpc, [[Expect; 2]; 5])] = &[
    //                     surveyor          commune sup.      district sup.     province          admin
    (Rpc::Bootstrap,       [[OK, NA],        [OK, NA],         [OK, NA],         [OK, NA],         [OK, NA]]),
    (Rpc::Push,            [[OK, REJECTED],  [OK, REJECTED],   [OK, REJECTED],   [DENIED, DENIED], [OK, OK]]),
    (Rpc::Pull,            [[OK, NA],        [OK, NA],         [OK, NA],         [OK, NA],         [OK, NA]]),
    (Rpc::Status,          [[OK, NA],        [OK, NA],         [OK, NA],         [OK, NA],         [OK, NA]]),
    (Rpc::ListSubmissions, [[OK, DENIED],    [OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
    (Rpc::GetSubmission,   [[OK, DENIED],    [OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
    (Rpc::Decide,          [[DENIED, DENIED],[OK, DENIED],     [OK, DENIED],     [DENIED, DENIED], [OK, OK]]),
    (Rpc::ListConflicts,   [[OK, DENIED],    [OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
    (Rpc::ResolveConflict, [[DENIED, DENIED],[OK, DENIED],     [OK, DENIED],     [DENIED, DENIED], [OK, OK]]),
    (Rpc::History,         [[OK, DENIED],    [OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
    (Rpc::SetPeriodClosed, [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [OK, DENIED],     [OK, OK]]),
    (Rpc::CreateUser,      [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::ListUsers,       [[DENIED, NA],    [DENIED, NA],     [DENIED, NA],     [DENIED, NA],     [OK, NA]]),
    (Rpc::UpdateUser,      [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::IssueToken,      [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::ListTokens,      [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::RevokeToken,     [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::AddOrgUnit,      [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::AddIndicator,    [[DENIED, NA],    [DENIED, NA],     [DENIED, NA],     [DENIED, NA],     [OK, NA]]),
    (Rpc::ImportCatalogue, [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::ImportUsers,     [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::ChangeTree,      [[DENIED, DENIED],[DENIED, DENIED], [DENIED, DENIED], [DENIED, DENIED], [OK, OK]]),
    (Rpc::GetTree,         [[DENIED, NA],    [DENIED, NA],     [DENIED, NA],     [DENIED, NA],     [OK, NA]]),
    (Rpc::RetireIndicator, [[DENIED, NA],    [DENIED, NA],     [DENIED, NA],     [DENIED, NA],     [OK, NA]]),
    (Rpc::SetReviewChain,  [[DENIED, NA],    [DENIED, NA],     [DENIED, NA],     [DENIED, NA],     [OK, NA]]),
    (Rpc::Backup,          [[DENIED, NA],    [DENIED, NA],     [DENIED, NA],     [DENIED, NA],     [OK, NA]]),
    (Rpc::CreateEnrollment,[[DENIED, DENIED],[OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
    (Rpc::ListEnrollments, [[DENIED, DENIED],[OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
    (Rpc::RevokeEnrollment,[[DENIED, DENIED],[OK, DENIED],     [OK, DENIED],     [OK, DENIED],     [OK, OK]]),
];

/// Signs every call with `authorization: Bearer <token>`.
#[derive(Clone)]
struct Auth(MetadataValue<Ascii>);

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Signed = InterceptedService<Channel, Auth>;

/// Raw clients of the three services, signed with one token.
struct Caller {
    sync: SyncClient<Signed>,
    review: ReviewClient<Signed>,
    admin: AdminClient<Signed>,
}

async fn connect(url: &str) -> Channel {
    Channel::from_shared(url.to_owned()).expect("url").connect().await.expect("connect")
}

fn caller(channel: &Channel, token: &str) -> Caller {
    let auth = Auth(format!("Bearer {token}").parse().expect("ASCII token"));
    Caller {
        sync: SyncClient::with_interceptor(channel.clone(), auth.clone()),
        review: ReviewClient::with_interceptor(channel.clone(), auth.clone()),
        admin: AdminClient::with_interceptor(channel.clone(), auth),
    }
}

fn new_device() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn amount(text: &str) -> Option<Value> {
    Some(Value { kind: Some(value::Kind::Amount(text.into())) })
}

/// A mutation with base version 0.
fn mutation(id: u64, village: &str, period: &str, field: &str, value: &str) -> Mutation {
    Mutation {
        id,
        village_id: village.into(),
        period: period.into(),
        field: field.into(),
        value: amount(value),
        base_version: 0,
        hlc: fieldsync::Hlc::from_millis(fieldsync_client::now_ms()).0,
        author: "Tablet".into(),
    }
}

fn push_request(device: &str, mutations: Vec<Mutation>) -> PushRequest {
    PushRequest {
        schema_version: SCHEMA_VERSION,
        device_id: device.into(),
        mutations,
        acknowledged_through: 0,
    }
}

/// Pushes as `who` from a new device; returns the outcomes.
async fn push(who: &mut Caller, mutations: Vec<Mutation>) -> Vec<Outcome> {
    let reply = who.sync.push(push_request(&new_device(), mutations)).await.expect("push");
    reply.into_inner().results.iter().map(|r| r.outcome()).collect()
}

/// A submission of `village` for `period` in review (submitted), with
/// `road_km` = 5 and an open conflict on `village_cultural_house` (2 or 3).
async fn seed(admin: &mut Caller, village: &str, period: &str) {
    let first = vec![
        mutation(1, village, period, "road_km", "5"),
        mutation(2, village, period, "village_cultural_house", "2"),
    ];
    assert_eq!(push(admin, first).await, [Outcome::Applied, Outcome::Applied]);
    let second = vec![mutation(1, village, period, "village_cultural_house", "3")];
    assert_eq!(push(admin, second).await, [Outcome::Conflict]);
}

/// The commune above a village id.
fn parent_of(unit: &str) -> &str {
    unit.rsplit_once('.').expect("a unit below the province").0
}

/// A user living in each target village, for the user and token cells.
fn resident(village: &str) -> String {
    format!("resident.{}", village.replace('.', "-"))
}

/// The world the matrix runs in: the demo catalogue plus another province,
/// the five callers, and a resident user per target village.
struct World {
    server: TestServer,
    _dir: tempfile::TempDir,
    admin: Caller,
    callers: Vec<(Who, Caller)>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let channel = connect(&server.url).await;
    let mut admin = caller(&channel, ADMIN_TOKEN);
    let units = [
        ("nghe-an", "Tỉnh Nghệ An", Level::Province),
        ("nghe-an.do-luong", "Huyện Đô Lương", Level::District),
        ("nghe-an.do-luong.da-son", "Xã Đà Sơn", Level::Commune),
        (OTHER_PROVINCE_VILLAGE, "Thôn 1", Level::Village),
    ];
    for (id, name, level) in units {
        let parent_id = id.rsplit_once('.').map(|(p, _)| p.to_owned()).unwrap_or_default();
        let unit = OrgUnit { id: id.into(), name: name.into(), level: level as i32, parent_id };
        admin.admin.add_org_unit(unit).await.expect("add org unit");
    }
    for village in [VILLAGE, NEIGHBOUR_VILLAGE, OTHER_DISTRICT_VILLAGE, OTHER_PROVINCE_VILLAGE] {
        server.user(&resident(village), "Cư dân", Role::Surveyor, &[village]);
    }
    let people = [
        (Who::Surveyor, "surveyor", "Nguyễn Văn An", Role::Surveyor, COMMUNE),
        (Who::CommuneSupervisor, "commune.sup", "Trần Thị Bình", Role::Supervisor, COMMUNE),
        (Who::DistrictSupervisor, "district.sup", "Lê Văn Cường", Role::Supervisor, DISTRICT),
        (Who::Province, "province", "Phạm Thị Dung", Role::Province, demo::PROVINCE),
    ];
    let mut callers = Vec::new();
    for (who, id, name, role, area) in people {
        let token = server.user(id, name, role, &[area]);
        callers.push((who, caller(&channel, &token)));
    }
    callers.push((Who::Admin, caller(&channel, ADMIN_TOKEN)));
    World { server, _dir: dir, admin, callers }
}

/// What a call came to, in the matrix's terms.
enum Got {
    Done,
    Applied,
    Rejected(String),
}

fn done<T>(_: T) -> Got {
    Got::Done
}

/// Runs one cell: `rpc` as `who` against `village` and `period`, after
/// seeding what the call needs (with the admin, so the seeding itself is
/// never refused). `n` makes names unique per cell.
async fn run(
    world: &mut World,
    who: Who,
    rpc: Rpc,
    village: &str,
    period: &str,
    n: usize,
) -> Result<Got, Status> {
    if matches!(rpc, Rpc::GetSubmission | Rpc::Decide | Rpc::ResolveConflict | Rpc::History) {
        seed(&mut world.admin, village, period).await;
    }
    let revoke = match rpc {
        Rpc::RevokeToken => {
            let store = &world.server.store;
            let admin = store.user("admin").expect("users").expect("admin");
            let now = fieldsync_client::now_ms();
            Some(store.issue_token(&admin, &resident(village), 0, "cell", now).expect("issue").1.id)
        }
        Rpc::RevokeEnrollment => {
            let store = &world.server.store;
            let admin = store.user("admin").expect("users").expect("admin");
            let now = fieldsync_client::now_ms();
            let made = store.create_enrollment(&admin, &resident(village), 0, now);
            Some(made.expect("a code").1.id)
        }
        _ => None,
    };
    let caller = &mut world.callers.iter_mut().find(|(w, _)| *w == who).expect("caller").1;
    let key = || SubmissionKey { village_id: village.into(), period: period.into() };
    match rpc {
        Rpc::Bootstrap => {
            let request = BootstrapRequest { schema_version: SCHEMA_VERSION };
            caller.sync.bootstrap(request).await.map(done)
        }
        Rpc::Push => {
            let request =
                push_request(&new_device(), vec![mutation(1, village, period, "road_km", "1")]);
            let reply = caller.sync.push(request).await?.into_inner();
            let result = reply.results.into_iter().next().expect("one result");
            Ok(match result.outcome() {
                Outcome::Applied => Got::Applied,
                Outcome::Rejected => Got::Rejected(result.reason),
                other => panic!("{who:?} {rpc:?} {village}: unexpected outcome {other:?}"),
            })
        }
        Rpc::Pull => {
            let request = PullRequest {
                schema_version: SCHEMA_VERSION,
                device_id: new_device(),
                cursor: 0,
                page_size: 0,
            };
            let mut pages = caller.sync.pull(request).await?.into_inner();
            while let Some(page) = pages.message().await? {
                if page.caught_up {
                    break;
                }
            }
            Ok(Got::Done)
        }
        Rpc::Status => {
            caller.sync.status(StatusRequest { device_id: new_device() }).await.map(done)
        }
        Rpc::ListSubmissions => {
            let request = ListSubmissionsRequest { area: village.into(), ..Default::default() };
            caller.review.list_submissions(request).await.map(done)
        }
        Rpc::GetSubmission => {
            let request =
                GetSubmissionRequest { village_id: village.into(), period: period.into() };
            caller.review.get_submission(request).await.map(done)
        }
        Rpc::Decide => {
            let request = DecideRequest {
                verdict: Verdict::Reject as i32,
                reason: "recount the roads".into(),
                submissions: vec![key()],
                ..Default::default()
            };
            caller.review.decide(request).await.map(done)
        }
        Rpc::ListConflicts => {
            let request = ListConflictsRequest { area: village.into(), ..Default::default() };
            caller.review.list_conflicts(request).await.map(done)
        }
        Rpc::ResolveConflict => {
            let request = ResolveConflictRequest {
                village_id: village.into(),
                period: period.into(),
                field: "village_cultural_house".into(),
                choice: Some(resolve_conflict_request::Choice::Pick(0)),
                comment: "counted again".into(),
            };
            caller.review.resolve_conflict(request).await.map(done)
        }
        Rpc::History => {
            let request = HistoryRequest {
                village_id: village.into(),
                period: period.into(),
                ..Default::default()
            };
            caller.review.history(request).await.map(done)
        }
        Rpc::SetPeriodClosed => {
            let request = SetPeriodClosedRequest {
                area: village.into(),
                period: period.into(),
                closed: true,
            };
            caller.review.set_period_closed(request).await.map(done)
        }
        Rpc::CreateUser => {
            let user = User {
                id: format!("new.user.{n}"),
                name: "Người mới".into(),
                role: fieldsync_proto::v1::Role::Surveyor as i32,
                areas: vec![village.into()],
                disabled: false,
            };
            caller.admin.create_user(CreateUserRequest { user: Some(user) }).await.map(done)
        }
        Rpc::ListUsers => caller.admin.list_users(ListUsersRequest::default()).await.map(done),
        Rpc::UpdateUser => {
            let request = UpdateUserRequest {
                id: resident(village),
                name: Some(format!("Cư dân {n}")),
                ..Default::default()
            };
            caller.admin.update_user(request).await.map(done)
        }
        Rpc::IssueToken => {
            let request = IssueTokenRequest {
                user_id: resident(village),
                expires_in_s: 0,
                label: "cell".into(),
            };
            caller.admin.issue_token(request).await.map(done)
        }
        Rpc::ListTokens => {
            let request = ListTokensRequest { user_id: resident(village), ..Default::default() };
            caller.admin.list_tokens(request).await.map(done)
        }
        Rpc::RevokeToken => {
            let request = RevokeTokenRequest { id: revoke.expect("a token to revoke") };
            caller.admin.revoke_token(request).await.map(done)
        }
        Rpc::AddOrgUnit => {
            let commune = parent_of(village);
            let unit = OrgUnit {
                id: format!("{commune}.cell-{n}"),
                name: format!("Thôn mới {n}"),
                level: Level::Village as i32,
                parent_id: commune.into(),
            };
            caller.admin.add_org_unit(unit).await.map(done)
        }
        Rpc::AddIndicator => {
            let indicator = Indicator {
                code: format!("cell_{n}"),
                name_vi: "Chỉ tiêu thử".into(),
                name_en: "A test indicator".into(),
                unit: "count".into(),
                kind: ValueKind::Integer as i32,
                scale: 0,
                parent_code: String::new(),
                max_per_village: "10".into(),
                retired_from: String::new(),
            };
            caller.admin.add_indicator(indicator).await.map(done)
        }
        Rpc::ImportCatalogue => {
            let commune = parent_of(village);
            let unit = OrgUnit {
                id: format!("{commune}.imported-{n}"),
                name: format!("Thôn nhập {n}"),
                level: Level::Village as i32,
                parent_id: commune.into(),
            };
            let request = ImportCatalogueRequest {
                org_units: vec![unit],
                indicators: vec![],
                valid_from: vec![],
            };
            caller.admin.import_catalogue(request).await.map(done)
        }
        Rpc::ImportUsers => {
            let user = User {
                id: format!("imported.user.{n}"),
                name: "Người nhập".into(),
                role: fieldsync_proto::v1::Role::Surveyor as i32,
                areas: vec![village.into()],
                disabled: false,
            };
            caller.admin.import_users(ImportUsersRequest { users: vec![user] }).await.map(done)
        }
        Rpc::ChangeTree => {
            let today = fieldsync::Date::in_vietnam(fieldsync_server::db::now_ms()).to_string();
            let rename =
                v1::RenameUnit { unit_id: village.into(), name: format!("Thôn đổi tên {n}") };
            let change = Some(v1::change_tree_request::Change::Rename(rename));
            caller.admin.change_tree(v1::ChangeTreeRequest { date: today, change }).await.map(done)
        }
        Rpc::GetTree => caller.admin.get_tree(v1::GetTreeRequest::default()).await.map(done),
        Rpc::SetReviewChain => {
            // Back to the tree's own chain: the other calls keep working.
            let request = v1::SetReviewChainRequest::default();
            caller.admin.set_review_chain(request).await.map(done)
        }
        Rpc::RetireIndicator => {
            // A fresh indicator each time, so that the admin's call is not refused as done.
            let code = format!("retired_{n}");
            let indicator = Indicator {
                code: code.clone(),
                name_vi: "Chỉ tiêu cũ".into(),
                name_en: "An old indicator".into(),
                unit: "count".into(),
                kind: ValueKind::Integer as i32,
                scale: 0,
                parent_code: String::new(),
                max_per_village: "10".into(),
                retired_from: String::new(),
            };
            let mut admin = caller.admin.clone();
            let _ = admin.add_indicator(indicator).await;
            let request = v1::RetireIndicatorRequest { code, from_period: "2030".into() };
            caller.admin.retire_indicator(request).await.map(done)
        }
        Rpc::CreateEnrollment => {
            let request =
                CreateEnrollmentRequest { user_id: resident(village), expires_in_s: 3600 };
            caller.admin.create_enrollment(request).await.map(done)
        }
        Rpc::ListEnrollments => {
            let request = ListEnrollmentsRequest { user_id: resident(village) };
            caller.admin.list_enrollments(request).await.map(done)
        }
        Rpc::RevokeEnrollment => {
            let request = RevokeEnrollmentRequest { id: revoke.expect("a code to revoke") };
            caller.admin.revoke_enrollment(request).await.map(done)
        }
        Rpc::Backup => {
            let mut stream = caller.admin.backup(BackupRequest {}).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok(Got::Done)
        }
    }
}

/// The expectation a call's result meets, or why it meets none.
fn observed(got: Result<Got, Status>, village: &str) -> Result<Expect, String> {
    match got {
        Ok(Got::Done | Got::Applied) => Ok(OK),
        Ok(Got::Rejected(reason)) => match reason.contains("outside") && reason.contains(village) {
            true => Ok(REJECTED),
            false => Err(format!("rejected, but the reason does not name the area: {reason:?}")),
        },
        Err(s) if s.code() == Code::PermissionDenied => {
            match s.message().starts_with("permission denied") {
                true => Ok(DENIED),
                false => Err(format!("PERMISSION_DENIED with an unclear message: {s:?}")),
            }
        }
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
    }
}

/// Runs every cell of the matrix; returns the cells whose result differs
/// from the table.
async fn check_matrix() -> Vec<String> {
    let mut world = world().await;
    let mut failures = Vec::new();
    let mut n = 0;
    for &(rpc, row) in MATRIX {
        for (&who, cells) in WHO.iter().zip(row) {
            for (place, expect) in [Where::Inside, Where::Outside].into_iter().zip(cells) {
                if expect == NA {
                    continue;
                }
                n += 1;
                // A period of its own per cell, so cells do not disturb each other.
                let period = format!("{}-{:02}", 2001 + n / 12, n % 12 + 1);
                let village = match place {
                    Where::Inside => VILLAGE,
                    Where::Outside => who.outside(),
                };
                let got = run(&mut world, who, rpc, village, &period, n).await;
                match observed(got, village) {
                    Ok(seen) if seen == expect => {}
                    Ok(seen) => failures.push(format!(
                        "{rpc:?} as {who:?} {place:?} ({village}): expected {expect:?}, got {seen:?}"
                    )),
                    Err(why) => failures.push(format!(
                        "{rpc:?} as {who:?} {place:?} ({village}): expected {expect:?}, got {why}"
                    )),
                }
            }
        }
    }
    world.server.stop().await;
    failures
}

#[tokio::test]
async fn every_rpc_for_every_role_inside_and_outside_its_areas() {
    let failures = check_matrix().await;
    assert!(failures.is_empty(), "cells that differ from the table:\n{}", failures.join("\n"));
}

/// The matrix names every RPC of the Sync, Review and Admin services, each
/// once: a new RPC there needs a row.
#[test]
fn the_matrix_covers_every_rpc_of_sync_review_and_admin() {
    let proto = include_str!("../../proto/fieldsync/v1/sync.proto");
    let mut service = None;
    let mut declared = Vec::new();
    for line in proto.lines() {
        if let Some(rest) = line.strip_prefix("service ") {
            service = rest.split_whitespace().next();
        } else if line.starts_with('}') {
            service = None;
        } else if let Some(rpc) = line.trim().strip_prefix("rpc ") {
            if matches!(service, Some("Sync" | "Review" | "Admin")) {
                declared.push(rpc.split('(').next().expect("rpc name").trim().to_owned());
            }
        }
    }
    let mut tabled: Vec<String> = MATRIX.iter().map(|(rpc, _)| format!("{rpc:?}")).collect();
    declared.sort();
    tabled.sort();
    assert_eq!(tabled, declared);
}

#[tokio::test]
async fn history_outside_the_area_shows_nothing() {
    let mut world = world().await;
    for village in [NEIGHBOUR_VILLAGE, OTHER_DISTRICT_VILLAGE, OTHER_PROVINCE_VILLAGE] {
        seed(&mut world.admin, village, "2022").await;
    }
    for (who, caller) in &mut world.callers {
        if *who == Who::Admin {
            continue;
        }
        let village = who.outside();
        let request = HistoryRequest {
            village_id: village.into(),
            period: "2022".into(),
            ..Default::default()
        };
        // Refused; and even an answer would hold nothing of the area.
        if let Ok(reply) = caller.review.history(request).await {
            assert!(reply.get_ref().entries.is_empty(), "{who:?} sees {village}: {reply:?}");
        }
        // Nor through a history of everything.
        let all = caller.review.history(HistoryRequest::default()).await.expect("history");
        for e in &all.get_ref().entries {
            assert!(e.village_id != village, "{who:?} sees {village}: {e:?}");
        }
    }
    world.server.stop().await;
}

#[tokio::test]
async fn deciding_outside_the_area_is_denied_whether_or_not_the_report_exists() {
    let mut world = world().await;
    seed(&mut world.admin, OTHER_DISTRICT_VILLAGE, "2022").await;
    let caller =
        &mut world.callers.iter_mut().find(|(w, _)| *w == Who::CommuneSupervisor).unwrap().1;
    for period in ["2022", "2023"] {
        let request = DecideRequest {
            verdict: Verdict::Reject as i32,
            reason: "recount".into(),
            submissions: vec![SubmissionKey {
                village_id: OTHER_DISTRICT_VILLAGE.into(),
                period: period.into(),
            }],
            ..Default::default()
        };
        let status = caller.review.decide(request).await.expect_err("outside the area");
        assert_eq!(status.code(), Code::PermissionDenied, "period {period}: {status:?}");
    }
    world.server.stop().await;
}

#[tokio::test]
async fn a_bulk_decision_by_a_role_that_may_not_review_is_denied_even_when_nothing_matches() {
    let mut world = world().await;
    for who in [Who::Surveyor, Who::Province] {
        let caller = &mut world.callers.iter_mut().find(|(w, _)| *w == who).unwrap().1;
        let request = DecideRequest {
            verdict: Verdict::Approve as i32,
            area: COMMUNE.into(),
            period: "2099".into(),
            ..Default::default()
        };
        let status = caller.review.decide(request).await.expect_err("may not review");
        assert_eq!(status.code(), Code::PermissionDenied, "{who:?}: {status:?}");
    }
    world.server.stop().await;
}

#[tokio::test]
async fn a_supervisor_of_a_village_alone_cannot_settle_its_conflicts() {
    let mut world = world().await;
    seed(&mut world.admin, VILLAGE, "2022").await;
    let token = world.server.user("village.sup", "Hồ Thị Em", Role::Supervisor, &[VILLAGE]);
    let mut village_sup = caller(&connect(&world.server.url).await, &token);
    let request = ResolveConflictRequest {
        village_id: VILLAGE.into(),
        period: "2022".into(),
        field: "village_cultural_house".into(),
        choice: Some(resolve_conflict_request::Choice::Pick(0)),
        comment: "one house".into(),
    };
    let status = village_sup.review.resolve_conflict(request).await.expect_err("reviews nothing");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("a village-level area reviews nothing"),
        "{}",
        status.message()
    );
    // The conflict is still open, with both values.
    let detail = world
        .admin
        .review
        .get_submission(GetSubmissionRequest { village_id: VILLAGE.into(), period: "2022".into() })
        .await
        .expect("detail")
        .into_inner();
    let conflict = detail.conflicts.iter().find(|c| c.field == "village_cultural_house");
    let conflict = conflict.expect("the conflict is kept");
    assert!(conflict.open && conflict.candidates.len() == 2, "{conflict:?}");
    world.server.stop().await;
}

#[tokio::test]
async fn refusals_from_outside_the_callers_areas_are_not_filed_under_the_report() {
    let mut world = world().await;
    seed(&mut world.admin, NEIGHBOUR_VILLAGE, "2022").await;
    let surveyor = &mut world.callers.iter_mut().find(|(w, _)| *w == Who::Surveyor).unwrap().1;
    let forged = "ĐÃ DUYỆT bởi huyện";
    let mutations = (1..=20)
        .map(|id| {
            let mut m = mutation(id, NEIGHBOUR_VILLAGE, "2022", "note", "0");
            m.value = Some(Value { kind: Some(value::Kind::Text(forged.into())) });
            m
        })
        .collect();
    let outcomes = push(surveyor, mutations).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Rejected), "{outcomes:?}");
    let report = HistoryRequest {
        village_id: NEIGHBOUR_VILLAGE.into(),
        period: "2022".into(),
        ..Default::default()
    };
    let entries = world.admin.review.history(report).await.expect("history").into_inner().entries;
    assert!(!entries.is_empty(), "the report's own history is there");
    for e in &entries {
        assert!(
            e.user_id != "surveyor" && !e.detail.contains(forged),
            "filed under the report: {e:?}"
        );
    }
    // The refusals are still in the audit trail, under the surveyor.
    let mine = HistoryRequest { user_id: "surveyor".into(), ..Default::default() };
    let mine = world.admin.review.history(mine).await.expect("history").into_inner().entries;
    assert_eq!(mine.iter().filter(|e| e.kind == "refused").count(), 20, "{mine:?}");
    world.server.stop().await;
}

// ---------------------------------------------------------------------------
// Pull and bootstrap show only the caller's areas

/// The village an entity of a pull is about.
fn village_of(change: &fieldsync_proto::v1::Change) -> String {
    match change.kind.as_ref().expect("a change has a kind") {
        change::Kind::Field(f) => f.village_id.clone(),
        change::Kind::Conflict(c) => c.village_id.clone(),
        change::Kind::Review(r) => r.village_id.clone(),
    }
}

/// Every change a raw pull from 0 returns, one change per page asked for.
async fn pull_all(caller: &mut Caller, head: u64) -> Vec<fieldsync_proto::v1::Change> {
    let request = PullRequest {
        schema_version: SCHEMA_VERSION,
        device_id: new_device(),
        cursor: 0,
        page_size: 1,
    };
    let mut pages = caller.sync.pull(request).await.expect("pull").into_inner();
    let mut changes = Vec::new();
    let mut last = None;
    while let Some(page) = pages.message().await.expect("page") {
        changes.extend(page.changes);
        last = Some((page.cursor, page.caught_up));
        if page.caught_up {
            break;
        }
    }
    assert_eq!(last, Some((head, true)), "the pull runs to the head and says so");
    changes
}

fn within(unit: &str, area: &str) -> bool {
    unit == area || unit.starts_with(&format!("{area}."))
}

#[tokio::test]
async fn a_pull_never_carries_a_change_from_outside_the_callers_areas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let channel = connect(&server.url).await;
    let mut admin = caller(&channel, ADMIN_TOKEN);
    // Two districts, each with values, a conflict and a review decision.
    let can_loc = "ha-tinh.can-loc";
    let thon_2 = "ha-tinh.huong-khe.phuc-dong.thon-2";
    seed(&mut admin, VILLAGE, "2022").await;
    seed(&mut admin, thon_2, "2023").await;
    seed(&mut admin, OTHER_DISTRICT_VILLAGE, "2022").await;
    for village in [VILLAGE, OTHER_DISTRICT_VILLAGE] {
        let request = DecideRequest {
            verdict: Verdict::Return as i32,
            reason: "add the GPS point".into(),
            submissions: vec![SubmissionKey { village_id: village.into(), period: "2022".into() }],
            ..Default::default()
        };
        admin.review.decide(request).await.expect("return");
    }
    let head = server.store.head().expect("head");

    for (area, others) in [(DISTRICT, can_loc), (can_loc, DISTRICT)] {
        let token = server.user(&format!("surveyor.{area}"), "Khảo sát", Role::Surveyor, &[area]);
        let mut raw = caller(&channel, &token);
        let changes = pull_all(&mut raw, head).await;
        assert!(!changes.is_empty(), "{area} has data");
        for c in &changes {
            let village = village_of(c);
            assert!(within(&village, area), "a surveyor of {area} pulled {village}: {c:?}");
        }
        // Everything of its own area does arrive: per submission, two fields,
        // the conflict and the review.
        let own = server.store.submissions().expect("submissions");
        let own = own.iter().filter(|s| within(&s.village_id, area)).count();
        assert_eq!(changes.len(), own * 4, "{area}: {changes:?}");

        // The same through a tablet.
        let tablet = TestTablet::new(&server.url, &token).await;
        tablet.sync(&server.url).await;
        let synced = tablet.tablet.synced().expect("synced");
        let conflicts = tablet.tablet.conflicts().expect("conflicts");
        let reviews = tablet.tablet.reviews().expect("reviews");
        assert_eq!((synced.len(), conflicts.len(), reviews.len()), (own * 2, own, own), "{area}");
        let villages = synced
            .iter()
            .map(|f| &f.at.village_id)
            .chain(conflicts.iter().map(|c| &c.at.village_id))
            .chain(reviews.iter().map(|r| &r.village_id));
        for village in villages {
            assert!(within(village, area) && !within(village, others), "{area} got {village}");
        }
    }

    // The province sees both districts.
    let token = server.user("province", "Tỉnh", Role::Province, &[demo::PROVINCE]);
    let changes = pull_all(&mut caller(&channel, &token), head).await;
    assert_eq!(changes.len(), 3 * 4);
    server.stop().await;
}

#[tokio::test]
async fn bootstrap_shows_the_callers_org_units_and_those_above_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let channel = connect(&server.url).await;
    let mut admin = caller(&channel, ADMIN_TOKEN);
    let other = OrgUnit {
        id: "nghe-an".into(),
        name: "Tỉnh Nghệ An".into(),
        level: Level::Province as i32,
        parent_id: String::new(),
    };
    admin.admin.add_org_unit(other).await.expect("add a province");
    let all_demo: BTreeSet<String> = demo::org_units().into_iter().map(|u| u.id).collect();
    let indicators: BTreeSet<String> = demo::indicators().into_iter().map(|i| i.code).collect();

    let commune: BTreeSet<String> = [
        "ha-tinh",
        "ha-tinh.huong-khe",
        "ha-tinh.huong-khe.phuc-dong",
        "ha-tinh.huong-khe.phuc-dong.thon-1",
        "ha-tinh.huong-khe.phuc-dong.thon-2",
        "ha-tinh.huong-khe.phuc-dong.thon-3",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let district: BTreeSet<String> =
        all_demo.iter().filter(|u| *u == demo::PROVINCE || within(u, DISTRICT)).cloned().collect();
    assert_eq!(district.len(), 1 + 1 + 10 + 10 * 3);
    let mut everything = all_demo.clone();
    everything.insert("nghe-an".into());

    let cases = [
        ("surveyor", Role::Surveyor, COMMUNE, commune.clone()),
        ("commune.sup", Role::Supervisor, COMMUNE, commune),
        ("district.sup", Role::Supervisor, DISTRICT, district),
        ("province", Role::Province, demo::PROVINCE, all_demo),
    ];
    for (id, role, area, want) in cases {
        let token = server.user(id, id, role, &[area]);
        let reply = caller(&channel, &token)
            .sync
            .bootstrap(BootstrapRequest { schema_version: SCHEMA_VERSION })
            .await
            .expect("bootstrap")
            .into_inner();
        let got: BTreeSet<String> = reply.org_units.into_iter().map(|u| u.id).collect();
        assert_eq!(got, want, "{id}");
        let codes: BTreeSet<String> = reply.indicators.into_iter().map(|i| i.code).collect();
        assert_eq!(codes, indicators, "{id}: the whole catalogue of indicators");
    }
    let reply = admin
        .sync
        .bootstrap(BootstrapRequest { schema_version: SCHEMA_VERSION })
        .await
        .expect("bootstrap")
        .into_inner();
    let got: BTreeSet<String> = reply.org_units.into_iter().map(|u| u.id).collect();
    assert_eq!(got, everything, "the admin sees every unit");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Tokens at rest

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        match path.is_dir() {
            true => out.extend(files(&path)),
            false => out.push(path),
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

#[tokio::test]
async fn the_store_holds_no_token_in_plain_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let channel = connect(&server.url).await;
    let mut admin = caller(&channel, ADMIN_TOKEN);
    const MARKER: &str = "label-to-find-on-disk";
    let mut tokens = vec![ADMIN_TOKEN.to_owned()];
    tokens.push(server.user("an.nguyen", "Nguyễn Văn An", Role::Surveyor, &[COMMUNE]));
    for expires_in_s in [0, 3600] {
        let request =
            IssueTokenRequest { user_id: "an.nguyen".into(), expires_in_s, label: MARKER.into() };
        let issued = admin.admin.issue_token(request).await.expect("issue").into_inner();
        tokens.push(issued.token);
    }
    // Used, revoked: still nothing in the clear.
    let mut an = caller(&channel, &tokens[2]);
    an.sync.status(StatusRequest::default()).await.expect("the token works");
    let listed = admin
        .admin
        .list_tokens(ListTokensRequest { user_id: "an.nguyen".into(), ..Default::default() })
        .await
        .expect("list tokens")
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 3);
    admin
        .admin
        .revoke_token(RevokeTokenRequest { id: listed[1].id.clone() })
        .await
        .expect("revoke");
    let data = server.dir.clone();
    server.stop().await;

    let contents: Vec<(std::path::PathBuf, Vec<u8>)> =
        files(&data).into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("read"))).collect();
    // The scan reads what the token records hold: their labels are there.
    assert!(
        contents.iter().any(|(_, bytes)| contains(bytes, MARKER.as_bytes())),
        "the token records are on disk in {data:?}"
    );
    for token in &tokens {
        let mut forms = vec![token.as_bytes().to_vec()];
        if let Some(hex) = token.strip_prefix("fs_") {
            assert_eq!(hex.len(), 64, "{token}");
            forms.push(hex.as_bytes().to_vec());
            forms.push(unhex(hex));
        }
        for (path, bytes) in &contents {
            for form in &forms {
                assert!(!contains(bytes, form), "{path:?} holds token {token} ({form:?})");
            }
        }
    }
}

#[tokio::test]
async fn users_and_tokens_are_listed_a_page_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let channel = connect(&server.url).await;
    let mut admin = caller(&channel, ADMIN_TOKEN);
    for i in 0..250 {
        server.user(&format!("u-{i:04}"), &format!("Người {i}"), Role::Surveyor, &[COMMUNE]);
    }
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let request = ListUsersRequest { limit: 100, after: std::mem::take(&mut after) };
        let reply = admin.admin.list_users(request).await.expect("list users").into_inner();
        assert!(reply.users.len() <= 100, "a page holds at most its limit");
        ids.extend(reply.users.into_iter().map(|u| u.id));
        match reply.next.is_empty() {
            true => break,
            false => after = reply.next,
        }
    }
    let mut expected: Vec<String> = (0..250).map(|i| format!("u-{i:04}")).collect();
    expected.push("admin".into());
    expected.sort();
    assert_eq!(ids, expected, "every user once, in id order");
    let whole = admin.admin.list_users(ListUsersRequest::default()).await.unwrap().into_inner();
    assert_eq!((whole.users.len(), whole.next.as_str()), (251, ""), "the default page");

    let mut tokens = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let request = ListTokensRequest {
            user_id: String::new(),
            limit: 60,
            after: std::mem::take(&mut after),
        };
        let reply = admin.admin.list_tokens(request).await.expect("list tokens").into_inner();
        pages += 1;
        tokens.extend(reply.tokens.into_iter().map(|t| (t.id, t.user_id)));
        match reply.next.is_empty() {
            true => break,
            false => after = reply.next,
        }
    }
    assert_eq!(tokens.len(), 251, "one token per user, each listed once");
    assert_eq!(pages, 5);
    assert!(tokens.windows(2).all(|w| w[0].0 < w[1].0), "in id order");
    let one = ListTokensRequest { user_id: "u-0007".into(), limit: 60, ..Default::default() };
    let one = admin.admin.list_tokens(one).await.unwrap().into_inner();
    assert_eq!(one.tokens.len(), 1);
    assert!(one.next.is_empty());
}
