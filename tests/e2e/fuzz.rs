//! Fuzzing by property, seeded so that CI runs a fixed set of cases and any
//! failure reproduces: `FIELDSYNC_SEED` picks another seed and
//! `FIELDSYNC_FUZZ_CASES` runs more cases per property (e.g. 5000 for a long
//! run). Where cargo-fuzz cannot reach (a real gRPC server in-process) proptest
//! drives the inputs:
//!
//! - every request message, as structured random requests, mangled encodings
//!   and raw bytes, sent over the wire to one in-process server: every call
//!   gets a status with a message, nothing panics, the server keeps serving
//!   and the store's invariants hold;
//! - decoding arbitrary bytes as every request message, and converting what
//!   decodes, never panics;
//! - the merge core, through `Store::push` on the memory engine: random edits
//!   from several devices on the fields of one submission;
//! - amount, period and location parsing round-trips;
//! - plan import through `Store::set_plans`: all rows or none.
//!
//! The CSV parsing of `fieldsync plan import` lives in the client binary's
//! private `cli` module and is fuzzed there, by the same property style
//! (`any_plan_file_gets_figures_or_named_problems`).
//!
//! Inputs that found bugs are kept below as plain `#[test]`s (the committed
//! corpus).

use crate::util;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use fieldsync::access::{Role, User};
use fieldsync::merge::MAX_CANDIDATES;
use fieldsync::sync::{FieldRef, Mutation, MutationResult, Outcome, RawValue};
use fieldsync::{demo, Amount, DeviceId, FieldKey, GeoPoint, Hlc, Period, Value};
use fieldsync_proto::convert;
use fieldsync_proto::v1;
use fieldsync_server::db::PlanRow;
use fieldsync_server::Store;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{RngSeed, TestCaseError, TestRunner};
use prost::bytes::{Buf, BufMut};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use util::{ADMIN_TOKEN, PERIOD, VILLAGE};

// ---------------------------------------------------------------------------
// Configuration

/// The runner's configuration: `default_cases` cases (or
/// `FIELDSYNC_FUZZ_CASES`), from a fixed seed (2022 or `FIELDSYNC_SEED`).
fn config(default_cases: u32) -> ProptestConfig {
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.trim().parse::<u64>().ok());
    ProptestConfig {
        cases: env("FIELDSYNC_FUZZ_CASES").map_or(default_cases, |n| n as u32),
        rng_seed: RngSeed::Fixed(env("FIELDSYNC_SEED").unwrap_or(2022)),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// Runs `test` on values of `strategy`; a failure panics with the minimal
/// input found.
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Inputs

const VILLAGES: &[&str] = &[
    VILLAGE,
    "ha-tinh.huong-khe.phuc-dong.thon-2",
    "ha-tinh.can-loc.gia-hanh.thon-1",
    demo::SAMPLE_COMMUNE,
    "ha-tinh.huong-khe",
    demo::PROVINCE,
    "nowhere",
];
const PERIODS: &[&str] = &["2022", "2022-Q3", "2022-07", "2023", "1999", "2022-13", "2022-Q0"];
/// Tree dates as an export may name them: empty (the period's own tree), days, and not days.
const TREE_DATES: &[&str] = &["", "", "2026-01-01", "01/07/2025", "2025-02-29", "tomorrow"];
const FIELDS: &[&str] = &[
    "road_km",
    "road_cement_km",
    "village_cultural_house",
    "canal_km",
    "note",
    "location",
    "no_such",
];
const DEVICES: &[&str] = &[
    "6f1c0b5e-8a43-4c59-9a0e-3f1d2b7c4e01",
    "0b3f6a7d-2c1e-4d58-8f9a-7e6d5c4b3a02",
    "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b03",
    "00000000-0000-0000-0000-000000000000",
];
/// Users the fuzzed calls may name; `admin` and `watcher` are left out of
/// the ones they may change, so that the server can still be asked after.
const USERS: &[&str] = &["fuzz-surveyor", "fuzz-supervisor", "fuzz-province", "nobody"];
const OTHER: &[&str] = &[
    "0",
    "1",
    "12.5",
    "200",
    "-1",
    "1e3",
    "NaN",
    "99999999999999999999",
    "ha-tinh.huong-khe.phuc-dong.thon-1/2022/road_km",
    "a/b",
    "km",
    "count",
];

fn pick(items: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(items).prop_map(str::to_owned).boxed()
}

fn known() -> BoxedStrategy<String> {
    prop_oneof![
        pick(VILLAGES),
        pick(PERIODS),
        pick(FIELDS),
        pick(DEVICES),
        pick(USERS),
        pick(OTHER)
    ]
    .boxed()
}

/// Any text: known ids, padded ones (NUL, BOM, spaces, quotes, combining
/// marks), arbitrary Unicode with control characters, empty, and huge.
fn text() -> BoxedStrategy<String> {
    let pad = prop::sample::select(
        &["\0", " ", "\u{feff}", "\t", "\u{a0}", "\"", ",", "\n", "\u{301}", "\r\n"][..],
    );
    prop_oneof![
        6 => known(),
        2 => "\\PC{0,24}",
        2 => any::<String>(),
        1 => Just(String::new()),
        2 => (known(), pad, any::<bool>())
            .prop_map(|(k, p, front)| if front { format!("{p}{k}") } else { format!("{k}{p}") }),
        // Long enough that a refusal quoting it whole would not fit in the
        // reply's trailer: see `a_refusal_quoting_a_long_input_still_reaches_the_caller`.
        1 => (1usize..4).prop_map(|n| "Hương Khê\0".repeat(n * 3_000)),
    ]
    .boxed()
}

fn one_of(good: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![5 => pick(good), 1 => text()].boxed()
}

fn n64() -> BoxedStrategy<u64> {
    prop_oneof![Just(0u64), Just(1), Just(u64::MAX), 0u64..40, any::<u64>()].boxed()
}

fn n32() -> BoxedStrategy<u32> {
    prop_oneof![Just(0u32), Just(1), Just(u32::MAX), 0u32..600, any::<u32>()].boxed()
}

fn wire_enum() -> BoxedStrategy<i32> {
    prop_oneof![4 => 0i32..7, 1 => any::<i32>()].boxed()
}

fn schema() -> BoxedStrategy<u32> {
    prop_oneof![8 => Just(fieldsync_proto::SCHEMA_VERSION), 1 => Just(0u32), 1 => any::<u32>()]
        .boxed()
}

fn amount_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u32..300, 0u32..100, any::<bool>())
            .prop_map(|(i, f, frac)| if frac { format!("{i}.{f:02}") } else { i.to_string() }),
        2 => "-?[0-9]{0,22}(\\.[0-9]{0,9})?",
        1 => text(),
    ]
    .boxed()
}

fn coordinate() -> BoxedStrategy<i32> {
    prop_oneof![
        Just(0i32),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(900_000_001),
        -1_800_000_000i32..=1_800_000_000,
        any::<i32>(),
    ]
    .boxed()
}

fn wire_value() -> BoxedStrategy<Option<v1::Value>> {
    use v1::value::Kind;
    let kind = prop_oneof![
        4 => amount_text().prop_map(Kind::Amount),
        1 => text().prop_map(Kind::Text),
        1 => (coordinate(), coordinate())
            .prop_map(|(lat_e7, lon_e7)| Kind::Point(v1::GeoPoint { lat_e7, lon_e7 })),
        1 => any::<bool>().prop_map(Kind::Deleted),
    ];
    prop_oneof![
        8 => kind.prop_map(|k| Some(v1::Value { kind: Some(k) })),
        1 => Just(Some(v1::Value { kind: None })),
        1 => Just(None),
    ]
    .boxed()
}

fn wire_mutation(now_hlc: u64) -> BoxedStrategy<v1::Mutation> {
    let hlc = prop_oneof![4 => (0u64..1 << 30).prop_map(move |d| now_hlc + d), 1 => n64()];
    (
        n64(),
        one_of(VILLAGES),
        one_of(PERIODS),
        one_of(FIELDS),
        wire_value(),
        prop_oneof![4 => 0u64..60, 1 => n64()],
        hlc,
        prop_oneof![4 => Just("Nguyễn Văn An".to_owned()), 1 => text()],
    )
        .prop_map(|(id, village_id, period, field, value, base_version, hlc, author)| {
            v1::Mutation { id, village_id, period, field, value, base_version, hlc, author }
        })
        .boxed()
}

/// One request to one RPC.
#[derive(Clone, Debug)]
enum Req {
    Bootstrap(v1::BootstrapRequest),
    /// With `true`, the mutation ids are renumbered to follow what the server
    /// has of the device, so that the batch gets past the sequence check.
    Push(v1::PushRequest, bool),
    Pull(v1::PullRequest),
    Status(v1::StatusRequest),
    ListSubmissions(v1::ListSubmissionsRequest),
    GetSubmission(v1::GetSubmissionRequest),
    Decide(v1::DecideRequest),
    ListConflicts(v1::ListConflictsRequest),
    ResolveConflict(v1::ResolveConflictRequest),
    History(v1::HistoryRequest),
    SetPeriodClosed(v1::SetPeriodClosedRequest),
    CreateUser(v1::CreateUserRequest),
    ListUsers(v1::ListUsersRequest),
    UpdateUser(v1::UpdateUserRequest),
    IssueToken(v1::IssueTokenRequest),
    ListTokens(v1::ListTokensRequest),
    RevokeToken(v1::RevokeTokenRequest),
    AddOrgUnit(v1::OrgUnit),
    AddIndicator(v1::Indicator),
    Export(v1::ExportRequest),
    SetPlans(v1::SetPlansRequest),
    CreateEnrollment(v1::CreateEnrollmentRequest),
    ListEnrollments(v1::ListEnrollmentsRequest),
    RevokeEnrollment(v1::RevokeEnrollmentRequest),
    Redeem(v1::RedeemRequest),
}

/// Every RPC: its path and whether it streams its reply.
const RPCS: &[(&str, bool)] = &[
    ("/fieldsync.v1.Sync/Bootstrap", false),
    ("/fieldsync.v1.Sync/Push", false),
    ("/fieldsync.v1.Sync/Pull", true),
    ("/fieldsync.v1.Sync/Status", false),
    ("/fieldsync.v1.Review/ListSubmissions", false),
    ("/fieldsync.v1.Review/GetSubmission", false),
    ("/fieldsync.v1.Review/Decide", false),
    ("/fieldsync.v1.Review/ListConflicts", false),
    ("/fieldsync.v1.Review/ResolveConflict", false),
    ("/fieldsync.v1.Review/History", false),
    ("/fieldsync.v1.Review/SetPeriodClosed", false),
    ("/fieldsync.v1.Admin/CreateUser", false),
    ("/fieldsync.v1.Admin/ListUsers", false),
    ("/fieldsync.v1.Admin/UpdateUser", false),
    ("/fieldsync.v1.Admin/IssueToken", false),
    ("/fieldsync.v1.Admin/ListTokens", false),
    ("/fieldsync.v1.Admin/RevokeToken", false),
    ("/fieldsync.v1.Admin/AddOrgUnit", false),
    ("/fieldsync.v1.Admin/AddIndicator", false),
    ("/fieldsync.v1.Report/Export", true),
    ("/fieldsync.v1.Report/SetPlans", false),
    ("/fieldsync.v1.Admin/CreateEnrollment", false),
    ("/fieldsync.v1.Admin/ListEnrollments", false),
    ("/fieldsync.v1.Admin/RevokeEnrollment", false),
    ("/fieldsync.v1.Enroll/Redeem", false),
];

impl Req {
    /// The index of its RPC in [`RPCS`].
    fn rpc(&self) -> usize {
        match self {
            Req::Bootstrap(_) => 0,
            Req::Push(..) => 1,
            Req::Pull(_) => 2,
            Req::Status(_) => 3,
            Req::ListSubmissions(_) => 4,
            Req::GetSubmission(_) => 5,
            Req::Decide(_) => 6,
            Req::ListConflicts(_) => 7,
            Req::ResolveConflict(_) => 8,
            Req::History(_) => 9,
            Req::SetPeriodClosed(_) => 10,
            Req::CreateUser(_) => 11,
            Req::ListUsers(_) => 12,
            Req::UpdateUser(_) => 13,
            Req::IssueToken(_) => 14,
            Req::ListTokens(_) => 15,
            Req::RevokeToken(_) => 16,
            Req::AddOrgUnit(_) => 17,
            Req::AddIndicator(_) => 18,
            Req::Export(_) => 19,
            Req::SetPlans(_) => 20,
            Req::CreateEnrollment(_) => 21,
            Req::ListEnrollments(_) => 22,
            Req::RevokeEnrollment(_) => 23,
            Req::Redeem(_) => 24,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Req::Bootstrap(m) => m.encode_to_vec(),
            Req::Push(m, _) => m.encode_to_vec(),
            Req::Pull(m) => m.encode_to_vec(),
            Req::Status(m) => m.encode_to_vec(),
            Req::ListSubmissions(m) => m.encode_to_vec(),
            Req::GetSubmission(m) => m.encode_to_vec(),
            Req::Decide(m) => m.encode_to_vec(),
            Req::ListConflicts(m) => m.encode_to_vec(),
            Req::ResolveConflict(m) => m.encode_to_vec(),
            Req::History(m) => m.encode_to_vec(),
            Req::SetPeriodClosed(m) => m.encode_to_vec(),
            Req::CreateUser(m) => m.encode_to_vec(),
            Req::ListUsers(m) => m.encode_to_vec(),
            Req::UpdateUser(m) => m.encode_to_vec(),
            Req::IssueToken(m) => m.encode_to_vec(),
            Req::ListTokens(m) => m.encode_to_vec(),
            Req::RevokeToken(m) => m.encode_to_vec(),
            Req::AddOrgUnit(m) => m.encode_to_vec(),
            Req::AddIndicator(m) => m.encode_to_vec(),
            Req::Export(m) => m.encode_to_vec(),
            Req::SetPlans(m) => m.encode_to_vec(),
            Req::CreateEnrollment(m) => m.encode_to_vec(),
            Req::ListEnrollments(m) => m.encode_to_vec(),
            Req::RevokeEnrollment(m) => m.encode_to_vec(),
            Req::Redeem(m) => m.encode_to_vec(),
        }
    }
}

fn request(now_hlc: u64) -> BoxedStrategy<Req> {
    let device = prop_oneof![6 => pick(DEVICES), 1 => text()].boxed();
    let user_id = prop_oneof![
        3 => pick(USERS),
        1 => text().prop_filter("not a user the harness needs", |s| s != "admin" && !s.starts_with("watcher")),
    ]
    .boxed();
    let area = prop_oneof![3 => Just(String::new()), 3 => pick(VILLAGES), 1 => text()].boxed();
    let period = prop_oneof![2 => Just(String::new()), 5 => pick(PERIODS), 1 => text()].boxed();
    let key = (one_of(VILLAGES), one_of(PERIODS))
        .prop_map(|(village_id, period)| v1::SubmissionKey { village_id, period });
    let figure = (one_of(VILLAGES), one_of(FIELDS), one_of(PERIODS), amount_text()).prop_map(
        |(unit_id, indicator, period, value)| v1::PlanFigure { unit_id, indicator, period, value },
    );
    let choice = prop_oneof![
        1 => Just(None),
        2 => n32().prop_map(|i| Some(v1::resolve_conflict_request::Choice::Pick(i))),
        2 => wire_value().prop_map(|v| {
            Some(v1::resolve_conflict_request::Choice::Value(v.unwrap_or_default()))
        }),
    ];
    let user = (user_id.clone(), text(), wire_enum(), prop::collection::vec(area.clone(), 0..3))
        .prop_map(|(id, name, role, areas)| v1::User { id, name, role, areas, disabled: false });
    prop_oneof![
        1 => schema().prop_map(|schema_version| Req::Bootstrap(v1::BootstrapRequest { schema_version })),
        6 => (
            schema(),
            device.clone(),
            prop::collection::vec(wire_mutation(now_hlc), 0..5),
            n64(),
            prop::bool::weighted(0.8),
        )
            .prop_map(|(schema_version, device_id, mutations, acknowledged_through, renumber)| {
                let push = v1::PushRequest {
                    schema_version,
                    device_id,
                    mutations,
                    acknowledged_through,
                };
                Req::Push(push, renumber)
            }),
        2 => (schema(), device.clone(), n64(), n32()).prop_map(
            |(schema_version, device_id, cursor, page_size)| {
                Req::Pull(v1::PullRequest { schema_version, device_id, cursor, page_size })
            }
        ),
        1 => prop_oneof![Just(String::new()), device]
            .prop_map(|device_id| Req::Status(v1::StatusRequest { device_id })),
        1 => (area.clone(), period.clone(), wire_enum(), n32(), text()).prop_map(
            |(area, period, state, limit, after)| {
                let r = v1::ListSubmissionsRequest { area, period, state, limit, after };
                Req::ListSubmissions(r)
            }
        ),
        1 => (one_of(VILLAGES), one_of(PERIODS)).prop_map(|(village_id, period)| {
            Req::GetSubmission(v1::GetSubmissionRequest { village_id, period })
        }),
        2 => (
            wire_enum(),
            text(),
            prop::collection::vec(key, 0..4),
            area.clone(),
            period.clone(),
            wire_enum(),
        )
            .prop_map(|(verdict, reason, submissions, area, period, only_state)| {
                let r = v1::DecideRequest { verdict, reason, submissions, area, period, only_state };
                Req::Decide(r)
            }),
        1 => (area.clone(), period.clone(), any::<bool>(), n32(), text()).prop_map(
            |(area, period, include_settled, limit, after)| {
                let r = v1::ListConflictsRequest { area, period, include_settled, limit, after };
                Req::ListConflicts(r)
            }
        ),
        2 => (one_of(VILLAGES), one_of(PERIODS), one_of(FIELDS), choice, text()).prop_map(
            |(village_id, period, field, choice, comment)| {
                let r = v1::ResolveConflictRequest { village_id, period, field, choice, comment };
                Req::ResolveConflict(r)
            }
        ),
        1 => (area.clone(), period.clone(), text(), n64(), n64(), n64(), n32(), any::<bool>(), n64())
            .prop_map(
            |(village_id, period, user_id, from_ms, to_ms, after, limit, newest_first, before)| {
                let r = v1::HistoryRequest {
                    village_id,
                    period,
                    user_id,
                    from_ms,
                    to_ms,
                    after,
                    limit,
                    newest_first,
                    before,
                };
                Req::History(r)
            }
        ),
        1 => (area.clone(), one_of(PERIODS), prop::bool::weighted(0.3)).prop_map(
            |(area, period, closed)| {
                Req::SetPeriodClosed(v1::SetPeriodClosedRequest { area, period, closed })
            }
        ),
        1 => prop_oneof![Just(None), user.prop_map(Some)]
            .prop_map(|user| Req::CreateUser(v1::CreateUserRequest { user })),
        1 => (any::<u32>(), text())
            .prop_map(|(limit, after)| Req::ListUsers(v1::ListUsersRequest { limit, after })),
        1 => (
            user_id.clone(),
            prop::option::of(text()),
            prop::option::of(any::<bool>()),
            prop::collection::vec(area.clone(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(id, name, disabled, areas, set_areas)| {
                Req::UpdateUser(v1::UpdateUserRequest { id, name, disabled, areas, set_areas })
            }),
        1 => (user_id.clone(), n64(), text()).prop_map(|(user_id, expires_in_s, label)| {
            Req::IssueToken(v1::IssueTokenRequest { user_id, expires_in_s, label })
        }),
        1 => (prop_oneof![Just(String::new()), user_id.clone()], any::<u32>(), text()).prop_map(
            |(user_id, limit, after)| {
                Req::ListTokens(v1::ListTokensRequest { user_id, limit, after })
            }
        ),
        1 => text().prop_map(|id| Req::RevokeToken(v1::RevokeTokenRequest { id })),
        1 => (text(), text(), wire_enum(), area.clone()).prop_map(|(id, name, level, parent_id)| {
            Req::AddOrgUnit(v1::OrgUnit { id, name, level, parent_id })
        }),
        1 => (
            text(),
            text(),
            text(),
            one_of(&["km", "count"]),
            wire_enum(),
            n32(),
            prop_oneof![Just(String::new()), one_of(FIELDS)],
            amount_text(),
        )
            .prop_map(
                |(code, name_vi, name_en, unit, kind, scale, parent_code, max_per_village)| {
                    Req::AddIndicator(v1::Indicator {
                        code,
                        name_vi,
                        name_en,
                        unit,
                        kind,
                        scale,
                        parent_code,
                        max_per_village,
                        retired_from: String::new(),
                    })
                }
            ),
        1 => (wire_enum(), one_of(PERIODS), area, any::<bool>(), one_of(TREE_DATES)).prop_map(
            |(level, period, area, include_pending, tree_date)| {
                Req::Export(v1::ExportRequest { level, period, area, include_pending, tree_date })
            }
        ),
        2 => prop::collection::vec(figure, 0..6)
            .prop_map(|figures| Req::SetPlans(v1::SetPlansRequest { figures })),
        1 => (user_id.clone(), n64()).prop_map(|(user_id, expires_in_s)| {
            Req::CreateEnrollment(v1::CreateEnrollmentRequest { user_id, expires_in_s })
        }),
        1 => prop_oneof![Just(String::new()), user_id.clone()]
            .prop_map(|user_id| Req::ListEnrollments(v1::ListEnrollmentsRequest { user_id })),
        1 => text().prop_map(|id| Req::RevokeEnrollment(v1::RevokeEnrollmentRequest { id })),
        1 => (schema(), text(), text(), prop_oneof![Just(String::new()), user_id]).prop_map(
            |(schema_version, code, device_label, expected_user_id)| {
                Req::Redeem(v1::RedeemRequest { schema_version, code, device_label, expected_user_id })
            }
        ),
    ]
    .boxed()
}

/// What becomes of a request's encoding before it is sent.
#[derive(Clone, Debug)]
enum Mangle {
    Keep,
    /// Arbitrary bytes instead.
    Replace(Vec<u8>),
    /// Some bytes overwritten.
    Flip(Vec<(Index, u8)>),
    Truncate(Index),
    /// Bytes inserted somewhere.
    Splice(Index, Vec<u8>),
}

impl Mangle {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Mangle::Keep => bytes,
            Mangle::Replace(b) => b.clone(),
            Mangle::Flip(flips) => {
                if !bytes.is_empty() {
                    for (i, b) in flips {
                        let at = i.index(bytes.len());
                        bytes[at] = *b;
                    }
                }
                bytes
            }
            Mangle::Truncate(i) => {
                bytes.truncate(i.index(bytes.len() + 1));
                bytes
            }
            Mangle::Splice(i, extra) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, extra.iter().copied());
                bytes
            }
        }
    }
}

fn mangle() -> BoxedStrategy<Mangle> {
    let bytes = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        8 => Just(Mangle::Keep),
        2 => bytes.clone().prop_map(Mangle::Replace),
        2 => prop::collection::vec((any::<Index>(), any::<u8>()), 1..4).prop_map(Mangle::Flip),
        1 => any::<Index>().prop_map(Mangle::Truncate),
        1 => (any::<Index>(), bytes).prop_map(|(i, b)| Mangle::Splice(i, b)),
    ]
    .boxed()
}

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Who {
    Admin,
    Surveyor,
    Supervisor,
    Province,
    NoToken,
    BadToken,
}

fn who() -> BoxedStrategy<Who> {
    prop_oneof![
        8 => Just(Who::Admin),
        3 => Just(Who::Surveyor),
        2 => Just(Who::Supervisor),
        2 => Just(Who::Province),
        1 => Just(Who::NoToken),
        1 => Just(Who::BadToken),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// Panics on the server's threads

/// Panics seen on threads named `fuzz-*` (the servers' runtimes).
static SERVER_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

fn watch_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if let Some(name) = thread.name().filter(|n| n.starts_with("fuzz-")) {
                let mut seen = SERVER_PANICS.lock().unwrap_or_else(|e| e.into_inner());
                seen.push(format!("{name}: {info}"));
            }
            previous(info);
        }));
    });
}

fn panics_on(threads: &str) -> Vec<String> {
    let seen = SERVER_PANICS.lock().unwrap_or_else(|e| e.into_inner());
    seen.iter().filter(|p| p.starts_with(threads)).cloned().collect()
}

// ---------------------------------------------------------------------------
// A raw gRPC client: sends any bytes as a request message

#[derive(Clone, Copy, Default)]
struct Raw;
struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Calls `rpc` with `body` as its request message; the reply messages, or
/// the status.
async fn call(
    channel: &Channel,
    rpc: usize,
    body: Vec<u8>,
    token: Option<&str>,
) -> Result<Vec<Vec<u8>>, Status> {
    let (path, streaming) = RPCS[rpc];
    let mut grpc = tonic::client::Grpc::new(channel.clone()).max_decoding_message_size(usize::MAX);
    grpc.ready().await.map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
    let mut request = Request::new(body);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("an ASCII token");
        request.metadata_mut().insert("authorization", value);
    }
    let path: PathAndQuery = path.parse().expect("a path");
    if streaming {
        let mut stream = grpc.server_streaming(request, path, Raw).await?.into_inner();
        let mut replies = Vec::new();
        while let Some(reply) = stream.message().await? {
            replies.push(reply);
        }
        Ok(replies)
    } else {
        Ok(vec![grpc.unary(request, path, Raw).await?.into_inner()])
    }
}

/// [`call`], waiting and calling again while the server says the caller is
/// calling too fast (its per-user rate limit), so that every input reaches
/// the service behind the limit.
async fn call_paced(
    channel: &Channel,
    rpc: usize,
    body: Vec<u8>,
    token: Option<&str>,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut tries = 0;
    loop {
        match call(channel, rpc, body.clone(), token).await {
            Err(s)
                if s.code() == Code::ResourceExhausted
                    && s.message().starts_with("too many calls")
                    && tries < 100 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answer => return answer,
        }
    }
}

/// Users who only ask the server whether it still serves; taken in turn.
const WATCHERS: usize = 4;

/// A server in this process with its own runtime, kept for a whole property.
struct Wire {
    rt: tokio::runtime::Runtime,
    server: Option<util::TestServer>,
    channel: Channel,
    threads: String,
    tokens: HashMap<&'static str, String>,
    watchers: Vec<String>,
    asked: std::sync::atomic::AtomicUsize,
    _dir: tempfile::TempDir,
}

impl Wire {
    fn start(name: &str) -> Wire {
        watch_panics();
        let threads = format!("fuzz-{name}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(threads.clone())
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let server = rt.block_on(util::start_server(dir.path()));
        let channel = rt.block_on(async {
            Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect")
        });
        let province = [demo::PROVINCE];
        let mut tokens = HashMap::new();
        tokens.insert("admin", ADMIN_TOKEN.to_owned());
        for (id, role, areas) in [
            ("fuzz-surveyor", Role::Surveyor, &province[..]),
            ("fuzz-supervisor", Role::Supervisor, &[demo::SAMPLE_COMMUNE][..]),
            ("fuzz-province", Role::Province, &province[..]),
        ] {
            tokens.insert(id, server.user(id, id, role, areas));
        }
        let watchers = (0..WATCHERS)
            .map(|i| server.user(&format!("watcher-{i}"), "watcher", Role::Surveyor, &province))
            .collect();
        let asked = Default::default();
        Wire { rt, server: Some(server), channel, threads, tokens, watchers, asked, _dir: dir }
    }

    fn store(&self) -> &Store {
        &self.server.as_ref().expect("running").store
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Admin => Some(ADMIN_TOKEN),
            Who::Surveyor => Some(&self.tokens["fuzz-surveyor"]),
            Who::Supervisor => Some(&self.tokens["fuzz-supervisor"]),
            Who::Province => Some(&self.tokens["fuzz-province"]),
            Who::NoToken => None,
            Who::BadToken => Some("not-a-token"),
        }
    }

    /// Sends one request and checks the server's answer and health.
    fn check_call(&self, rpc: usize, body: Vec<u8>, who: Who) -> Result<(), TestCaseError> {
        let token = self.token(who);
        let answer = self.rt.block_on(async {
            let answer = call_paced(&self.channel, rpc, body, token);
            tokio::time::timeout(Duration::from_secs(60), answer).await
        });
        let answer = answer.map_err(|_| TestCaseError::fail("no answer within 60 s"))?;
        if let Err(status) = &answer {
            prop_assert!(
                !status.message().trim().is_empty(),
                "{} answered {:?} without a message",
                RPCS[rpc].0,
                status.code()
            );
            prop_assert!(status.code() != Code::Unknown, "{}: {status:?}", RPCS[rpc].0);
            if status.code() == Code::Internal {
                // Only undecodable messages are INTERNAL (tonic's choice).
                prop_assert!(status.message().contains("decode"), "{}: {status:?}", RPCS[rpc].0);
            }
        }
        let panics = panics_on(&self.threads);
        prop_assert!(panics.is_empty(), "the server panicked: {panics:#?}");
        // Still serving.
        let status = v1::StatusRequest { device_id: String::new() }.encode_to_vec();
        let turn = self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % WATCHERS;
        let reply = self
            .rt
            .block_on(call_paced(&self.channel, 3, status, Some(&self.watchers[turn])))
            .map_err(|s| TestCaseError::fail(format!("Status failed afterwards: {s:?}")))?;
        let reply = v1::StatusReply::decode(reply[0].as_slice())
            .map_err(|e| TestCaseError::fail(format!("bad StatusReply: {e}")))?;
        prop_assert_eq!(reply.user_id, format!("watcher-{turn}"));
        Ok(())
    }

    fn check_store(&self) -> Result<(), TestCaseError> {
        let problems = self.store().check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(problems.is_empty(), "store invariants broken: {problems:#?}");
        Ok(())
    }

    /// Follows what the server has of the device, as a tablet would.
    fn renumber(&self, push: &mut v1::PushRequest) {
        if let Ok(device) = push.device_id.parse::<DeviceId>() {
            let last = self.store().device(device).map_or(0, |d| d.last_mutation_id);
            for (m, id) in push.mutations.iter_mut().zip(last + 1..) {
                m.id = id;
            }
        }
    }

    fn stop(mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

fn now_hlc() -> u64 {
    Hlc::from_millis(fieldsync_server::db::now_ms()).0
}

// ---------------------------------------------------------------------------
// 1. Every request message, over the wire

/// Structured random requests to every RPC, their encodings mangled or
/// replaced by raw bytes now and then, as any of the users or none.
#[test]
fn every_request_gets_a_status_and_the_server_keeps_its_invariants() {
    let wire = Wire::start("requests");
    let cases = std::sync::atomic::AtomicU32::new(0);
    run(400, (request(now_hlc()), mangle(), who()), |(req, mangle, who)| {
        let req = match req {
            Req::Push(mut push, true) => {
                wire.renumber(&mut push);
                Req::Push(push, true)
            }
            other => other,
        };
        wire.check_call(req.rpc(), mangle.apply(req.encode()), who)?;
        // The whole store is checked now and then, and at the end.
        if cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(8) {
            wire.check_store()?;
        }
        Ok(())
    });
    wire.check_store().expect("store invariants");
    wire.stop();
}

/// Arbitrary bytes to every RPC.
#[test]
fn raw_bytes_to_every_rpc_get_a_status() {
    let wire = Wire::start("raw");
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        // Field tags that exist, with arbitrary payloads.
        prop::collection::vec((1u8..16, 0u8..6, prop::collection::vec(any::<u8>(), 0..12)), 0..6)
            .prop_map(|fields| {
                let mut out = Vec::new();
                for (tag, wire_type, payload) in fields {
                    out.push(tag << 3 | wire_type);
                    out.extend(payload);
                }
                out
            }),
    ];
    run(300, (0..RPCS.len(), body, who()), |(rpc, body, who)| wire.check_call(rpc, body, who));
    wire.check_store().expect("store invariants");
    wire.stop();
}

// ---------------------------------------------------------------------------
// 1b. Decoding every request message, in process

/// Decodes `bytes` as every request message; what decodes re-encodes to the
/// same message and goes through the conversions the services use.
fn decode_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    macro_rules! round_trip {
        ($($t:ty),* $(,)?) => {$(
            if let Ok(m) = <$t>::decode(bytes) {
                let again = <$t>::decode(m.encode_to_vec().as_slice());
                prop_assert_eq!(again.as_ref(), Ok(&m), "{} round trip", stringify!($t));
            }
        )*};
    }
    round_trip!(
        v1::BootstrapRequest,
        v1::PushRequest,
        v1::PullRequest,
        v1::StatusRequest,
        v1::ListSubmissionsRequest,
        v1::GetSubmissionRequest,
        v1::DecideRequest,
        v1::ListConflictsRequest,
        v1::ResolveConflictRequest,
        v1::HistoryRequest,
        v1::SetPeriodClosedRequest,
        v1::CreateUserRequest,
        v1::ListUsersRequest,
        v1::UpdateUserRequest,
        v1::IssueTokenRequest,
        v1::ListTokensRequest,
        v1::RevokeTokenRequest,
        v1::OrgUnit,
        v1::Indicator,
        v1::ExportRequest,
        v1::SetPlansRequest,
    );
    // The conversions must refuse, never panic.
    if let Ok(push) = v1::PushRequest::decode(bytes) {
        let _ = convert::device_from_wire(&push.device_id);
        for m in push.mutations {
            if let Ok(m) = convert::mutation_from_wire(m) {
                let _ = fieldsync::validate::validate(&demo::catalogue(), &m);
            }
        }
    }
    if let Ok(r) = v1::ResolveConflictRequest::decode(bytes) {
        if let Some(v1::resolve_conflict_request::Choice::Value(v)) = r.choice {
            let _ = convert::raw_value_from_wire(Some(v.clone()));
            let _ = convert::value_from_wire(Some(v));
        }
    }
    if let Ok(r) = v1::CreateUserRequest::decode(bytes) {
        let _ = r.user.map(convert::user_from_wire);
    }
    if let Ok(u) = v1::OrgUnit::decode(bytes) {
        let _ = convert::org_unit_from_wire(u);
    }
    if let Ok(i) = v1::Indicator::decode(bytes) {
        let _ = convert::indicator_from_wire(i);
    }
    if let Ok(e) = v1::ExportRequest::decode(bytes) {
        let _ = convert::level_from_wire(e.level);
        let _ = e.period.parse::<Period>();
    }
    if let Ok(d) = v1::DecideRequest::decode(bytes) {
        let _ = convert::verdict_from_wire(d.verdict);
        let _ = convert::review_state_from_wire(d.only_state);
    }
    Ok(())
}

#[test]
fn decoding_any_bytes_as_any_request_never_panics() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..96),
        (request(now_hlc()), mangle()).prop_map(|(r, m)| m.apply(r.encode())),
    ];
    run(1_500, bytes, |bytes| decode_everything(&bytes));
}

// ---------------------------------------------------------------------------
// 2. The merge core, through Store::push on the memory engine

const NOW_MS: u64 = 1_700_000_000_000;
/// The fields the merge property edits, all in the sample village's 2022
/// submission.
const MERGE_FIELDS: &[&str] = &["road_km", "road_cement_km", "note", "location"];

fn memory_store() -> Store {
    Store::open(Arc::new(fieldsync_store::Memory::new()), demo::catalogue).expect("memory store")
}

fn admin() -> User {
    User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: Vec::new(),
        disabled: false,
    }
}

/// Which version an edit claims to start from.
#[derive(Clone, Debug)]
enum Base {
    /// The version this device last saw of the field (0 if none): what a
    /// tablet sends.
    Seen,
    Zero,
    /// Any version the field has had.
    Any(Index),
    Raw(u64),
}

#[derive(Clone, Debug)]
struct EditSpec {
    field: usize,
    value: RawValue,
    base: Base,
    /// Clock ticks since the device's previous edit; `None`: a wild clock
    /// (any reading, even going back).
    tick: Option<u64>,
    /// Sent for another village or period (mostly refused).
    elsewhere: Option<(String, String)>,
}

#[derive(Clone, Debug)]
enum Op {
    Push {
        device: usize,
        edits: Vec<EditSpec>,
    },
    /// The device pulls: it sees every field's current version and clock.
    Pull {
        device: usize,
    },
    /// The device sends its last batch again.
    Replay {
        device: usize,
    },
}

fn merge_value(field: usize) -> BoxedStrategy<RawValue> {
    let amount = prop_oneof![
        6 => (0u32..6).prop_map(|n| RawValue::Amount(n.to_string())),
        1 => (0u32..6, 1u32..10).prop_map(|(i, f)| RawValue::Amount(format!("{i}.{f}"))),
        1 => pick(&["-1", "abc", "1.234", "", "201", "1e2", " 3"]).prop_map(RawValue::Amount),
    ];
    let text = pick(&["a", "b", "c", "thôn 1", ""]).prop_map(RawValue::Text);
    let point =
        (0i32..3, 0i32..3).prop_map(|(a, b)| RawValue::Point(GeoPoint { lat_e7: a, lon_e7: b }));
    let own = match MERGE_FIELDS[field] {
        "note" => text.boxed(),
        "location" => point.boxed(),
        _ => amount.boxed(),
    };
    let other = prop_oneof![
        pick(&["x"]).prop_map(RawValue::Text),
        Just(RawValue::Point(GeoPoint { lat_e7: 0, lon_e7: 0 })),
        Just(RawValue::Amount("1".into())),
    ];
    prop_oneof![8 => own, 2 => Just(RawValue::Deleted), 1 => other].boxed()
}

fn edit_spec() -> BoxedStrategy<EditSpec> {
    let field =
        prop_oneof![5 => Just(0usize), 3 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)];
    field
        .prop_flat_map(|field| {
            (
                merge_value(field),
                prop_oneof![
                    8 => Just(Base::Seen),
                    1 => Just(Base::Zero),
                    1 => any::<Index>().prop_map(Base::Any),
                    1 => prop_oneof![Just(u64::MAX), 0u64..60].prop_map(Base::Raw),
                ],
                prop_oneof![12 => (0u64..4).prop_map(Some), 1 => Just(None)],
                prop_oneof![
                    12 => Just(None),
                    1 => (one_of(VILLAGES), one_of(PERIODS)).prop_map(Some),
                ],
            )
                .prop_map(move |(value, base, tick, elsewhere)| EditSpec {
                    field,
                    value,
                    base,
                    tick,
                    elsewhere,
                })
        })
        .boxed()
}

fn ops() -> BoxedStrategy<(usize, Vec<Op>)> {
    (2usize..5)
        .prop_flat_map(|devices| {
            let op = prop_oneof![
                8 => (0..devices, prop::collection::vec(edit_spec(), 1..4))
                    .prop_map(|(device, edits)| Op::Push { device, edits }),
                3 => (0..devices).prop_map(|device| Op::Pull { device }),
                1 => (0..devices).prop_map(|device| Op::Replay { device }),
            ];
            (Just(devices), prop::collection::vec(op, 1..14))
        })
        .boxed()
}

/// A tablet as the merge property models it.
#[derive(Default)]
struct Device {
    id: u128,
    clock: u64,
    next_id: u64,
    /// The version of each field it last saw.
    seen: HashMap<usize, u64>,
    last: Option<(Vec<Mutation>, Vec<MutationResult>)>,
}

impl Device {
    fn observe(&mut self, hlc: Hlc) {
        self.clock = self.clock.max(hlc.0);
    }
}

/// A field of the sample village's report.
fn sample_field(name: &str) -> FieldRef {
    FieldRef::new(VILLAGE, PERIOD.parse().expect("period"), FieldKey::parse(name))
}

/// Runs `ops` against a fresh store, checking the invariants after each.
fn merge_case(devices: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let store = memory_store();
    let catalogue = store.catalogue();
    let caller = admin();
    let start = Hlc::from_millis(NOW_MS - 60_000).0;
    let mut tablets: Vec<Device> = (0..devices)
        .map(|d| Device {
            id: 0x1000 + d as u128,
            clock: start + d as u64 % 2,
            next_id: 1,
            ..Device::default()
        })
        .collect();
    let fields: Vec<FieldRef> = MERGE_FIELDS.iter().map(|f| sample_field(f)).collect();
    // Every value validly sent to each field, and the versions each field had.
    let mut written: HashMap<usize, Vec<Value>> = HashMap::new();
    let mut versions: HashMap<usize, Vec<u64>> = HashMap::new();
    // Fields where a part/whole rule kept a conflict's winner from being current.
    let mut kept_out: BTreeSet<usize> = BTreeSet::new();
    // Whether every device behaved as a tablet does (monotonic clocks that
    // observe what they pull, bases they saw).
    let mut realistic = true;
    for op in ops {
        match op {
            Op::Pull { device } => {
                let t = &mut tablets[*device];
                for (i, at) in fields.iter().enumerate() {
                    if let Some(f) = store.field(at).expect("read field") {
                        t.seen.insert(i, f.version);
                        t.observe(f.stamp.hlc);
                    }
                    if let Some(c) = store.conflict(at).expect("read conflict") {
                        for k in &c.candidates {
                            t.observe(k.stamp.hlc);
                        }
                    }
                }
            }
            Op::Replay { device } => {
                let t = &tablets[*device];
                let Some((batch, results)) = &t.last else { continue };
                let again = store
                    .push(&caller, DeviceId(uuid::Uuid::from_u128(t.id)), batch, 0, NOW_MS)
                    .map_err(|e| TestCaseError::fail(format!("replay refused: {e}")))?;
                prop_assert_eq!(&again, results, "a replay gets the stored results");
            }
            Op::Push { device, edits } => {
                let t = &mut tablets[*device];
                let mut batch = Vec::new();
                for e in edits {
                    let hlc = match e.tick {
                        Some(tick) => {
                            t.clock += tick + 1;
                            t.clock
                        }
                        None => {
                            realistic = false;
                            let wild = [0, u64::MAX, start - 1_000_000, t.clock.wrapping_sub(5)];
                            wild[(t.clock % 4) as usize]
                        }
                    };
                    let base = match &e.base {
                        Base::Seen => t.seen.get(&e.field).copied().unwrap_or(0),
                        Base::Zero => {
                            realistic &= !t.seen.contains_key(&e.field);
                            0
                        }
                        Base::Any(i) => {
                            realistic = false;
                            let known = versions.get(&e.field).cloned().unwrap_or_default();
                            if known.is_empty() {
                                0
                            } else {
                                known[i.index(known.len())]
                            }
                        }
                        Base::Raw(v) => {
                            realistic = false;
                            *v
                        }
                    };
                    let (village, period) = e
                        .elsewhere
                        .clone()
                        .unwrap_or_else(|| (VILLAGE.to_owned(), PERIOD.to_owned()));
                    batch.push(Mutation {
                        id: t.next_id + batch.len() as u64,
                        village_id: village,
                        period,
                        field: MERGE_FIELDS[e.field].to_owned(),
                        value: e.value.clone(),
                        base_version: base,
                        hlc: Hlc(hlc),
                        author: "Nguyễn Văn An".into(),
                    });
                }
                let device_id = DeviceId(uuid::Uuid::from_u128(t.id));
                let results = match store.push(&caller, device_id, &batch, 0, NOW_MS) {
                    Ok(r) => r,
                    Err(e) => {
                        let e = e.to_string();
                        prop_assert!(!e.trim().is_empty(), "an error without a message");
                        return Err(TestCaseError::fail(format!("a well-formed push failed: {e}")));
                    }
                };
                prop_assert_eq!(results.len(), batch.len());
                t.next_id += batch.len() as u64;
                for (m, r) in batch.iter().zip(&results) {
                    prop_assert_eq!(r.id, m.id);
                    let field = MERGE_FIELDS.iter().position(|f| *f == m.field).expect("a field");
                    let here = m.village_id == VILLAGE && m.period == PERIOD;
                    if r.outcome == Outcome::Rejected {
                        prop_assert!(!r.reason.trim().is_empty(), "a refusal without a reason");
                        prop_assert!(r.current.is_none());
                    }
                    if let Ok(target) = fieldsync::validate::validate(&catalogue, m) {
                        if here {
                            written.entry(field).or_default().push(target.value);
                        }
                    }
                    if let Some(current) = &r.current {
                        if here {
                            t.seen.insert(field, current.version);
                            t.observe(current.stamp.hlc);
                            versions.entry(field).or_default().push(current.version);
                        }
                    }
                    if r.reason.contains("cannot be the current value") {
                        kept_out.insert(field);
                    }
                }
                t.last = Some((batch, results));
            }
        }
        // The invariants of every field after every step.
        for (i, at) in fields.iter().enumerate() {
            let key = &at.field;
            let current = store.field(at).expect("read field");
            let values = written.get(&i).cloned().unwrap_or_default();
            if let Some(c) = &current {
                prop_assert!(
                    values.contains(&c.value),
                    "{key}: current value {} was never written ({values:?})",
                    c.value
                );
            }
            let Some(conflict) = store.conflict(at).expect("read conflict") else {
                continue;
            };
            let devices: BTreeSet<_> = conflict.candidates.iter().map(|k| k.stamp.device).collect();
            prop_assert_eq!(
                devices.len(),
                conflict.candidates.len(),
                "{}: one candidate per device",
                key
            );
            prop_assert!(conflict.candidates.len() <= MAX_CANDIDATES);
            let order: Vec<_> =
                conflict.candidates.iter().map(|k| (k.stamp.hlc, k.stamp.device)).collect();
            prop_assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "{key}: candidates out of order: {order:?}"
            );
            for k in &conflict.candidates {
                prop_assert!(
                    values.contains(&k.value),
                    "{key}: candidate {} never written",
                    k.value
                );
            }
            let current = current.expect("a conflict on a field with no value");
            if conflict.open && realistic && !kept_out.contains(&i) {
                let winner = conflict.candidates.last().expect("a conflict has candidates");
                prop_assert_eq!(
                    &winner.value,
                    &current.value,
                    "{}: the provisional winner is not the current value",
                    key
                );
            }
        }
        let problems = store.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(problems.is_empty(), "store invariants broken: {problems:#?}");
    }
    Ok(())
}

#[test]
fn merge_keeps_every_value_and_a_consistent_conflict() {
    run(512, ops(), |(devices, ops)| merge_case(devices, &ops));
}

// ---------------------------------------------------------------------------
// 3. Amounts, periods and locations

fn number_like() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "-?[0-9]{0,25}(\\.[0-9]{0,10})?",
        2 => "[-+0-9.eE, _]{0,14}",
        1 => "[0-9]{4}(-(Q[0-9]|[0-9]{1,3}))?",
        1 => "-?[0-9]{1,3}\\.?[0-9]{0,8},-?[0-9]{1,3}\\.?[0-9]{0,8}",
        1 => any::<String>(),
        1 => "\\PC{0,12}",
    ]
    .boxed()
}

#[test]
fn parsing_never_panics_and_round_trips() {
    run(3_000, (number_like(), 0u8..12), |(text, scale)| {
        if let Ok(a) = Amount::parse(&text, scale) {
            let shown = a.to_string();
            prop_assert_eq!(
                shown.parse::<Amount>().ok(),
                Some(a),
                "{:?} shown as {:?}",
                text,
                shown
            );
            prop_assert_eq!(
                Amount::parse(&shown, scale).ok(),
                Some(a),
                "{:?} at scale {}",
                shown,
                scale
            );
        }
        if let Ok(a) = text.parse::<Amount>() {
            prop_assert_eq!(a.to_string().parse::<Amount>().ok(), Some(a));
        }
        if let Ok(p) = text.parse::<Period>() {
            prop_assert_eq!(p.to_string().parse::<Period>().ok(), Some(p));
        }
        if let Ok(g) = text.parse::<GeoPoint>() {
            prop_assert_eq!(g.to_string().parse::<GeoPoint>().ok(), Some(g));
        }
        let _ = text.parse::<DeviceId>();
        let _ = FieldKey::parse(&text).to_string();
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// 4. Plan import: all or nothing

/// A plan cell: (unit, period, indicator).
type PlanKey = (String, Period, String);

fn plan_cells(store: &Store, periods: &BTreeSet<Period>) -> BTreeMap<PlanKey, Amount> {
    let units: Vec<String> = store.catalogue().org_units.keys().cloned().collect();
    let mut cells = BTreeMap::new();
    for &p in periods {
        for t in store.totals_of(&units, p).expect("totals") {
            if let Some(plan) = t.plan {
                cells.insert((t.unit, p, t.indicator), plan);
            }
        }
    }
    cells
}

fn cell() -> BoxedStrategy<String> {
    let pad = prop::sample::select(&["", " ", "\u{feff}", "\"", "\t", "\0", "\u{a0}"][..]);
    (text(), pad.clone(), pad).prop_map(|(t, a, b)| format!("{a}{t}{b}")).boxed()
}

fn plan_row() -> BoxedStrategy<PlanRow> {
    let units = &["ha-tinh", "ha-tinh.huong-khe", demo::SAMPLE_COMMUNE, VILLAGE, "ha-tinh.can-loc"];
    let unit = prop_oneof![6 => pick(units), 1 => cell()];
    let indicator =
        prop_oneof![6 => pick(&["road_km", "road_cement_km", "playground", "note"]), 1 => cell()];
    let period = prop_oneof![6 => pick(&["2022", "2022-Q3", "2023"]), 1 => cell()];
    let value = prop_oneof![3 => amount_text(), 1 => Just(String::new()), 1 => cell()];
    (unit, indicator, period, value)
        .prop_map(|(unit, indicator, period, value)| PlanRow { unit, indicator, period, value })
        .boxed()
}

/// CSV-ish text cut naively into rows of four cells.
fn csv_rows() -> BoxedStrategy<Vec<PlanRow>> {
    let piece = prop_oneof![
        4 => known(),
        2 => amount_text(),
        1 => pick(&["\"", "\"\"", ",", "\n", "\r\n", "\u{feff}", ";", " "]),
        1 => "\\PC{0,6}",
    ];
    prop::collection::vec(piece, 0..40)
        .prop_map(|pieces| {
            let text = pieces.join(",");
            text.lines()
                .map(|line| {
                    let mut cells = line.split(',').map(str::to_owned);
                    let mut next = || cells.next().unwrap_or_default();
                    PlanRow { unit: next(), indicator: next(), period: next(), value: next() }
                })
                .collect()
        })
        .boxed()
}

#[test]
fn plan_import_is_all_or_nothing() {
    let rows = prop_oneof![prop::collection::vec(plan_row(), 0..8), csv_rows()];
    let caller = prop_oneof![
        3 => Just(admin()),
        1 => Just(User {
            id: "p".into(),
            name: "Province".into(),
            role: Role::Province,
            areas: vec!["ha-tinh.huong-khe".into()],
            disabled: false,
        }),
        1 => Just(User {
            id: "s".into(),
            name: "Surveyor".into(),
            role: Role::Surveyor,
            areas: vec![demo::PROVINCE.into()],
            disabled: false,
        }),
    ];
    // Plans already set, which the import may change or clear.
    let seed_rows = prop::collection::vec(plan_row(), 0..4);
    run(400, (seed_rows, rows, caller), |(seed_rows, rows, caller)| {
        let store = memory_store();
        let _ = store.set_plans(&admin(), &seed_rows, NOW_MS);
        let catalogue = store.catalogue();
        let mut periods: BTreeSet<Period> =
            ["2022", "2022-Q3", "2023"].iter().map(|p| p.parse().expect("period")).collect();
        periods.extend(rows.iter().filter_map(|r| r.period.trim().parse::<Period>().ok()));
        let before = plan_cells(&store, &periods);
        let answer = store.set_plans(&caller, &rows, NOW_MS);
        let after = plan_cells(&store, &periods);
        match answer {
            Ok(n) => {
                prop_assert_eq!(n, rows.len());
                let mut expected = before;
                for r in &rows {
                    let unit = catalogue.org_unit(r.unit.trim()).expect("a known unit").id.clone();
                    let ind = catalogue.indicator(r.indicator.trim()).expect("a known indicator");
                    let period: Period = r.period.trim().parse().expect("a period");
                    let key = (unit, period, ind.code.clone());
                    match r.value.trim() {
                        "" => expected.remove(&key),
                        v => expected
                            .insert(key, Amount::parse(v, ind.kind.scale()).expect("an amount")),
                    };
                }
                prop_assert_eq!(after, expected, "the plans are not what was imported");
            }
            Err(e) => {
                prop_assert!(!e.to_string().trim().is_empty(), "a refusal without a message");
                prop_assert_eq!(after, before, "a refused import changed plans: {}", e);
            }
        }
        let problems = store.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(problems.is_empty(), "store invariants broken: {problems:#?}");
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// The committed corpus: inputs that found bugs.

/// Sends `req` as the admin and returns its answer, then asks the server
/// whether it still serves.
/// A call's reply messages, or its status.
type Answer = Result<Vec<Vec<u8>>, Status>;

fn answer_and_after(wire: &Wire, req: &Req) -> (Answer, Result<(), Status>) {
    let answer =
        wire.rt.block_on(call_paced(&wire.channel, req.rpc(), req.encode(), Some(ADMIN_TOKEN)));
    let status = v1::StatusRequest { device_id: String::new() }.encode_to_vec();
    let after =
        wire.rt.block_on(call_paced(&wire.channel, 3, status, Some(&wire.watchers[0]))).map(|_| ());
    (answer, after)
}

/// Found by `every_request_gets_a_status_and_the_server_keeps_its_invariants`
/// (a 65 kB `after` of "Hương Khê\0"), minimised by hand. A refusal quotes
/// the input it refuses in full (`` `after` "…" is not a submission cursor``,
/// server/src/grpc/review.rs in `list_submissions`; likewise "unknown period
/// {s:?}" in src/model.rs, "device id {s:?} is not a UUID", "unknown area
/// {area:?}", …). The status message travels in the `grpc-message` trailer;
/// past HTTP/2's header-list limit (between 16 and 32 kB here) the reply
/// cannot be sent: the caller gets INTERNAL "h2 protocol error" (a stream
/// reset) instead of INVALID_ARGUMENT and its reason, and with the 65 kB
/// input the whole connection was closed, so the next call on it failed
/// with CANCELLED "connection closed".
#[test]
fn a_refusal_quoting_a_long_input_still_reaches_the_caller() {
    let wire = Wire::start("corpus-long-echo");
    let cases = [
        Req::ListSubmissions(v1::ListSubmissionsRequest {
            after: "x".repeat(32_000),
            ..Default::default()
        }),
        Req::ListSubmissions(v1::ListSubmissionsRequest {
            after: "Hương Khê\0".repeat(6_500),
            ..Default::default()
        }),
        Req::GetSubmission(v1::GetSubmissionRequest {
            village_id: VILLAGE.into(),
            period: "x".repeat(32_000),
        }),
    ];
    let mut failures = Vec::new();
    for req in &cases {
        let (answer, after) = answer_and_after(&wire, req);
        match answer {
            Err(s) if s.code() == Code::InvalidArgument && !s.message().is_empty() => {}
            other => failures.push(format!(
                "{}: {:?}",
                RPCS[req.rpc()].0,
                other.map_err(|s| (s.code(), s.message().chars().take(80).collect::<String>()))
            )),
        }
        if let Err(s) = after {
            failures.push(format!("the next call failed: {:?} {}", s.code(), s.message()));
        }
    }
    wire.stop();
    assert!(failures.is_empty(), "{failures:#?}");
}
