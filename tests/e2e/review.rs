//! The review cycle end to end, over gRPC: two tablets of surveyors of Phúc
//! Đồng record and sync (and disagree once), the commune supervisor settles
//! the conflict, rejects, sees the report resubmitted and approves, the
//! district accepts and reopens, locked reports and closed periods refuse
//! pushes without losing them, a bulk approval is all or nothing, and the
//! audit trail keeps every step, in order, for good.

use crate::util;

use fieldsync::access::Role;
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::{FieldRef, RawValue, SubmissionReview};
use fieldsync::{demo, FieldKey, Period, SubmissionId, Value};
use fieldsync_client::api::{
    ConflictFilter, Decided, Decision, HistoryEntry, HistoryFilter, Reports, Settle, Settled,
};
use fieldsync_client::remote::Authed;
use fieldsync_client::{Api, Grpc};
use fieldsync_proto::v1::review_client::ReviewClient;
use fieldsync_proto::v1::{AuditEntry, HistoryRequest, SetPeriodClosedRequest};
use tonic::Code;
use util::{refusal, start_server, TestServer, TestTablet, ADMIN_TOKEN, PERIOD, VILLAGE};

const COMMUNE: &str = demo::SAMPLE_COMMUNE;
const DISTRICT: &str = "ha-tinh.huong-khe";
const THON_2: &str = "ha-tinh.huong-khe.phuc-dong.thon-2";
const THON_3: &str = "ha-tinh.huong-khe.phuc-dong.thon-3";

/// The raw review service, for what is about the wire itself: the
/// history's cursors and a request that mixes them.
type Review = ReviewClient<Authed>;

async fn review_client(server: &TestServer, token: &str) -> Review {
    Grpc::connect(&server.url, token).await.expect("connect").review()
}

fn period(text: &str) -> Period {
    text.parse().expect("a period")
}

async fn decide(
    api: &Api,
    verdict: Verdict,
    reason: &str,
    subs: &[(&str, &str)],
) -> fieldsync_client::Result<Decided> {
    let reports = Reports::These(subs.iter().map(|(v, p)| (v.to_string(), period(p))).collect());
    api.decide(&Decision { verdict, reason: reason.into(), reports }).await
}

/// Asserts a decision is refused with a message saying `phrase`, and that it
/// changed nothing.
async fn refused(
    server: &TestServer,
    api: &Api,
    verdict: Verdict,
    sub: (&str, &str),
    phrase: &str,
) {
    let before = (state(server, sub.0, sub.1), server.store.head().unwrap(), trail(server).len());
    let e = decide(api, verdict, "checked", &[sub]).await.expect_err("refused");
    let (code, message) = refusal(&e);
    assert!(
        matches!(code, Code::InvalidArgument | Code::FailedPrecondition),
        "{verdict:?} {sub:?}: {e:?}"
    );
    assert!(
        message.contains(phrase),
        "{verdict:?} {sub:?}: message {message:?} should say {phrase:?}"
    );
    let after = (state(server, sub.0, sub.1), server.store.head().unwrap(), trail(server).len());
    assert_eq!(after, before, "a refused decision changes nothing");
}

/// Where a submission stands on the server.
fn state(server: &TestServer, village: &str, period: &str) -> ReviewState {
    let period = period.parse().unwrap();
    server.store.submission(village, period).unwrap().expect("the submission exists").review.state
}

/// The review a tablet last heard of for a submission.
fn heard(tablet: &TestTablet, village: &str, period: &str) -> SubmissionReview {
    let sub = SubmissionId::of(village, period.parse().unwrap());
    let reviews = tablet.tablet.reviews().unwrap();
    reviews.into_iter().find(|r| r.submission == sub).expect("the tablet knows the submission")
}

/// The whole audit trail, as the admin reads it.
fn trail(server: &TestServer) -> Vec<fieldsync::sync::AuditEntry> {
    let admin = server.store.user("admin").unwrap().unwrap();
    let all = fieldsync_server::db::HistoryQuery { limit: 10_000, ..Default::default() };
    server.store.history(&admin, &all).unwrap()
}

/// Checks that the audit trail only grew since `before`: what was there is
/// still there, unchanged, and something was added.
fn grew(server: &TestServer, before: &mut Vec<fieldsync::sync::AuditEntry>, step: &str) {
    let now = trail(server);
    assert!(now.len() > before.len(), "{step}: the trail grows ({} → {})", before.len(), now.len());
    assert_eq!(&now[..before.len()], &before[..], "{step}: earlier entries are kept unchanged");
    *before = now;
}

/// A value as text: the amount, "(deleted)", or "-" when absent.
fn text(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "-".into(), Value::to_string)
}

async fn settle(
    api: &Api,
    sub: (&str, &str),
    field: &str,
    choice: Settle,
    comment: &str,
) -> Settled {
    let field = FieldKey::parse(field);
    api.settle(sub.0, period(sub.1), &field, &choice, comment).await.expect("settle")
}

async fn history(api: &Api, filter: &HistoryFilter) -> Vec<HistoryEntry> {
    api.history(filter).await.expect("history")
}

/// The trail of one report, oldest first.
fn of_report(village: &str, p: &str) -> HistoryFilter {
    HistoryFilter { report: Some((village.into(), period(p))), ..Default::default() }
}

/// One page of the history RPC as the wire answers it.
async fn history_page(client: &mut Review, request: HistoryRequest) -> Vec<AuditEntry> {
    client.history(request).await.expect("history").into_inner().entries
}

/// An entry as `kind field old→new by user: detail`, for comparing sequences.
fn line(e: &HistoryEntry) -> String {
    let mut s = format!("{} ", e.kind);
    if !e.field.is_empty() {
        s += &format!("{} {}→{} ", e.field, text(&e.old), text(&e.new));
    }
    s += &format!("by {}", e.user_id);
    if matches!(e.kind.as_str(), "review" | "resolve") {
        s += &format!(": {}", e.detail);
    }
    s
}

#[tokio::test]
async fn the_review_cycle_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let url = server.url.clone();
    let an = server.user("an", "Nguyễn Văn An", Role::Surveyor, &[COMMUNE]);
    let binh = server.user("binh", "Trần Thị Bình", Role::Surveyor, &[COMMUNE]);
    let cuong = server.user("cuong", "Lê Văn Cường", Role::Supervisor, &[COMMUNE]);
    let dung = server.user("dung", "Phạm Thị Dung", Role::Supervisor, &[DISTRICT]);
    let em = server.user("em", "Hoàng Văn Em", Role::Province, &[demo::PROVINCE]);
    let a = TestTablet::new(&url, &an).await;
    let b = TestTablet::new(&url, &binh).await;
    let commune = server.api(&cuong).await;
    let district = server.api(&dung).await;
    let province = server.api(&em).await;
    let admin = server.api(ADMIN_TOKEN).await;
    let sub = (VILLAGE, PERIOD);
    let mut seen = trail(&server);

    // --- Both tablets record offline, disagreeing on one count, and sync.
    a.record(&[("road_km", "5"), ("village_cultural_house", "2")]);
    b.record(&[("village_cultural_house", "3"), ("drainage_km", "1")]);
    let ra = a.sync(&url).await;
    let rb = b.sync(&url).await;
    a.sync(&url).await;
    assert_eq!((ra.applied, ra.conflicts), (2, 0));
    assert_eq!((rb.applied, rb.conflicts), (1, 1));
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Submitted);
    for t in [&a, &b] {
        let conflicts = t.tablet.conflicts().unwrap();
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].open && conflicts[0].resolution.is_none());
    }
    grew(&server, &mut seen, "recording");

    // --- No approval while a conflict is open.
    refused(&server, &commune, Verdict::Approve, sub, "1 open conflict(s): settle them").await;

    // --- The commune settles it: picks 3, with a comment.
    let in_commune = ConflictFilter { area: Some(COMMUNE.into()), ..Default::default() };
    let listed = commune.conflicts(&in_commune).await.unwrap();
    assert_eq!(listed.len(), 1);
    let conflict = &listed[0];
    assert_eq!(
        (conflict.at.field.to_string().as_str(), conflict.open),
        ("village_cultural_house", true)
    );
    let three =
        conflict.candidates.iter().position(|c| c.value.to_string() == "3").expect("3 is kept");
    let comment = "đếm lại tại thôn: 3 nhà văn hóa";
    let pick = Settle::Pick(three as u32);
    let settled = settle(&commune, sub, "village_cultural_house", pick, comment).await;
    let conflict = settled.conflict;
    let resolution = conflict.resolution.clone().expect("a resolution");
    assert!(!conflict.open);
    assert_eq!(resolution.value.to_string(), "3");
    assert_eq!((resolution.user_id.as_str(), resolution.comment.as_str()), ("cuong", comment));
    assert_eq!(resolution.user_name, "Lê Văn Cường");
    assert_eq!(settled.field.expect("the field").value.to_string(), "3");
    grew(&server, &mut seen, "resolving");

    // It reaches both tablets at their next sync.
    for t in [&a, &b] {
        t.sync(&url).await;
        let conflicts = t.tablet.conflicts().unwrap();
        assert_eq!(conflicts.len(), 1);
        assert!(!conflicts[0].open, "settled on the tablet too");
        let r = conflicts[0].resolution.as_ref().expect("the tablet holds the resolution");
        assert_eq!((r.value.to_string().as_str(), r.user_id.as_str()), ("3", "cuong"));
        assert_eq!(r.comment, comment);
        assert_eq!(t.shows("village_cultural_house").as_deref(), Some("3"));
    }

    // --- Rejected, with a reason; both tablets learn it.
    let e = decide(&commune, Verdict::Reject, "  ", &[sub]).await.unwrap_err();
    let (code, message) = refusal(&e);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("rejecting needs a reason"), "{e:?}");
    let why = "drainage not measured on site";
    let reply = decide(&commune, Verdict::Reject, why, &[sub]).await.unwrap();
    assert_eq!(reply.changed.len(), 1);
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Rejected);
    grew(&server, &mut seen, "rejecting");
    for t in [&a, &b] {
        t.sync(&url).await;
        let r = heard(t, VILLAGE, PERIOD);
        assert_eq!((r.state, r.reason.as_str()), (ReviewState::Rejected, why));
        assert_eq!((r.user_id.as_str(), r.user_name.as_str()), ("cuong", "Lê Văn Cường"));
    }
    refused(&server, &commune, Verdict::Approve, sub, "the surveyor must resubmit").await;

    // --- The surveyor's edit resubmits it.
    a.record(&[("drainage_km", "1.5")]);
    assert_eq!(a.sync(&url).await.applied, 1);
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Submitted);
    b.sync(&url).await;
    assert_eq!(heard(&b, VILLAGE, PERIOD).state, ReviewState::Submitted);
    assert_eq!(b.shows("drainage_km").as_deref(), Some("1.5"));
    grew(&server, &mut seen, "resubmitting");

    // --- The commune approves.
    let reply = decide(&commune, Verdict::Approve, "", &[sub]).await.unwrap();
    assert_eq!(reply.changed.len(), 1);
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Approved);
    grew(&server, &mut seen, "approving");
    // Approving again changes nothing.
    let reply = decide(&commune, Verdict::Approve, "", &[sub]).await.unwrap();
    assert_eq!((reply.changed.len(), reply.unchanged), (0, 1));

    // --- Each level keeps its step (on another submission, still submitted).
    b.record_at(THON_2, PERIOD, &[("road_km", "2")]);
    b.sync(&url).await;
    let other = (THON_2, PERIOD);
    refused(&server, &district, Verdict::Accept, other, "the commune must approve it before").await;
    refused(&server, &district, Verdict::Approve, other, "approval is the commune's step").await;
    refused(&server, &commune, Verdict::Accept, sub, "accepting is the district's step").await;

    // --- The district accepts; the commune can no longer reopen; the district can.
    let reply = decide(&district, Verdict::Accept, "", &[sub]).await.unwrap();
    assert_eq!(reply.changed.len(), 1);
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Accepted);
    grew(&server, &mut seen, "accepting");
    refused(&server, &commune, Verdict::Reopen, sub, "only the district can reopen it").await;
    refused(&server, &commune, Verdict::Reject, sub, "only the district can send it back").await;
    let reply = decide(&district, Verdict::Reopen, "", &[sub]).await.unwrap();
    assert_eq!(reply.changed[0].state, ReviewState::Submitted);
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Submitted);
    grew(&server, &mut seen, "reopening");

    // --- A push to an approved (locked) report is refused, kept, not lost.
    decide(&commune, Verdict::Approve, "", &[sub]).await.unwrap();
    grew(&server, &mut seen, "approving again");
    a.record(&[("road_km", "6")]);
    let report = a.sync(&url).await;
    assert_eq!((report.applied, report.rejected), (0, 1));
    assert_eq!(a.tablet.outbox_len().unwrap(), 0, "refused, not stuck in the outbox");
    for round in 0..2 {
        let refusals = a.tablet.refusals().unwrap();
        assert_eq!(refusals.len(), 1, "round {round}");
        assert!(refusals[0].reason.contains("locked"), "{}", refusals[0].reason);
        assert!(refusals[0].reason.contains("reopen"), "{}", refusals[0].reason);
        assert_eq!(refusals[0].mutation.field, "road_km");
        assert_eq!(refusals[0].mutation.value, RawValue::Amount("6".into()));
        a.sync(&url).await;
    }
    let at = FieldRef::new(VILLAGE, PERIOD.parse().unwrap(), FieldKey::parse("road_km"));
    let road = server.store.field(&at);
    assert_eq!(road.unwrap().unwrap().value.to_string(), "5", "the locked value stands");
    assert_eq!(state(&server, VILLAGE, PERIOD), ReviewState::Approved);
    grew(&server, &mut seen, "the refused push");

    // --- A bulk approval is all or nothing.
    let bulk = "2024";
    a.record_at(VILLAGE, bulk, &[("road_km", "1")]);
    a.record_at(THON_2, bulk, &[("road_km", "2")]);
    a.record_at(THON_3, bulk, &[("playground", "1")]);
    b.record_at(THON_3, bulk, &[("playground", "2")]);
    a.sync(&url).await;
    assert_eq!(b.sync(&url).await.conflicts, 1);
    grew(&server, &mut seen, "recording 2024");
    let all_bulk = [VILLAGE, THON_2, THON_3];
    let approve_all = Decision {
        verdict: Verdict::Approve,
        reason: String::new(),
        reports: Reports::Area {
            area: COMMUNE.into(),
            period: period(bulk),
            only: Some(ReviewState::Submitted),
        },
    };
    let head = server.store.head().unwrap();
    let e = commune.decide(&approve_all).await.expect_err("one has a conflict");
    let (code, message) = refusal(&e);
    assert_eq!(code, Code::InvalidArgument, "{e:?}");
    assert!(message.contains(THON_3), "{e:?}");
    assert!(message.contains("open conflict"), "{e:?}");
    for v in all_bulk {
        assert_eq!(state(&server, v, bulk), ReviewState::Submitted, "{v}: nothing changed");
    }
    assert_eq!(server.store.head().unwrap(), head);
    assert!(trail(&server) == seen, "a refused bulk decision leaves no trace");
    let two = Settle::Value(RawValue::Amount("2".into()));
    settle(&commune, (THON_3, bulk), "playground", two, "2").await;
    let reply = commune.decide(&approve_all).await.unwrap();
    assert_eq!(reply.changed.len(), 3);
    for v in all_bulk {
        assert_eq!(state(&server, v, bulk), ReviewState::Approved, "{v}");
    }
    grew(&server, &mut seen, "bulk approval");

    // --- The province closes 2022 for the district: pushes for it are refused.
    // (Whether the commune may is an access check of the RPC: asked raw.)
    let close =
        |closed| SetPeriodClosedRequest { area: DISTRICT.into(), period: "2022".into(), closed };
    let mut commune_raw = review_client(&server, &cuong).await;
    let status = commune_raw.set_period_closed(close(true)).await.expect_err("not the commune's");
    assert_eq!(status.code(), Code::PermissionDenied);
    province.set_period_closed(DISTRICT, period("2022"), true).await.unwrap();
    grew(&server, &mut seen, "closing 2022");
    b.record_at(THON_2, "2022", &[("drainage_km", "4")]);
    b.record_at(THON_2, "2022-07", &[("drainage_km", "1")]);
    b.record_at(THON_2, "2023", &[("drainage_km", "3")]);
    let report = b.sync(&url).await;
    assert_eq!((report.applied, report.rejected), (1, 2), "{report:?}");
    let refusals = b.tablet.refusals().unwrap();
    assert_eq!(refusals.len(), 2);
    for r in &refusals {
        assert!(r.reason.contains("is closed"), "{}", r.reason);
    }
    assert!(refusals.iter().any(|r| r.reason.contains("period 2022 is closed")), "{refusals:?}");
    assert_eq!(b.tablet.outbox_len().unwrap(), 0);
    // Reopened: the same edit goes through, and settles its refusal.
    province.set_period_closed(DISTRICT, period("2022"), false).await.unwrap();
    b.record_at(THON_2, "2022", &[("drainage_km", "4")]);
    let report = b.sync(&url).await;
    assert_eq!((report.applied, report.rejected), (1, 0));
    let left = b.tablet.refusals().unwrap();
    assert_eq!(left.len(), 1, "only the 2022-07 refusal is left: {left:?}");
    assert_eq!(left[0].mutation.period, "2022-07");
    grew(&server, &mut seen, "reopening 2022");

    // --- The audit trail of the report: every step, in order.
    let report = of_report(VILLAGE, PERIOD);
    let entries = history(&commune, &report).await;
    for pair in entries.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "oldest first: {pair:?}");
    }
    let lines: Vec<String> = entries.iter().map(line).collect();
    // Which of 2 and 3 was current until settled depends on the tablets' clocks.
    let provisional = text(&entries[4].old);
    let expected = [
        "value road_km -→5 by an".to_owned(),
        "value village_cultural_house -→2 by an".into(),
        "conflict village_cultural_house 2→3 by binh".into(),
        "value drainage_km -→1 by binh".into(),
        format!("resolve village_cultural_house {provisional}→3 by cuong: {comment}"),
        format!("review by cuong: submitted → rejected: {why}"),
        // The edit, then the resubmission it causes (same batch).
        "value drainage_km 1→1.5 by an".into(),
        "review by an: rejected → submitted (edited)".into(),
        "review by cuong: submitted → approved".into(),
        "review by dung: approved → accepted".into(),
        "review by dung: accepted → submitted".into(),
        "review by cuong: submitted → approved".into(),
        "refused road_km -→- by an".into(),
    ];
    assert_eq!(lines, expected);
    for e in &entries {
        assert!(e.at_ms > 0, "{e:?}");
        if matches!(e.kind.as_str(), "value" | "conflict" | "refused") {
            let want = if e.user_id == "an" { a.device() } else { b.device() };
            assert_eq!(e.device, Some(want), "{e:?}");
            assert!(e.hlc.0 > 0 && e.mutation_id > 0, "{e:?}");
        }
    }
    assert!(entries[4].hlc > entries[2].hlc, "the resolution comes after what it settles");
    assert!(entries[12].detail.contains("locked"), "{:?}", entries[12]);
    // Every reader of the area sees the same trail, read in pages of any size.
    for api in [&district, &province, &admin] {
        assert_eq!(history(api, &report).await, entries);
    }
    assert_eq!(history(&commune.clone().with_page_size(5), &report).await, entries);
    let newest = HistoryFilter { limit: Some(5), ..report.clone() };
    assert_eq!(history(&commune, &newest).await, entries[entries.len() - 5..]);

    // The RPC's own cursors: pages continue after `after`...
    let request =
        HistoryRequest { village_id: VILLAGE.into(), period: PERIOD.into(), ..Default::default() };
    let wire = history_page(&mut commune_raw, request.clone()).await;
    let seqs = |es: &[AuditEntry]| es.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&wire), entries.iter().map(|e| e.seq).collect::<Vec<_>>());
    let rest =
        history_page(&mut commune_raw, HistoryRequest { after: wire[5].seq, ..request.clone() })
            .await;
    assert_eq!(rest, wire[6..]);
    // ...and newest first, a page at a time, back to the oldest.
    let newest = HistoryRequest { newest_first: true, limit: 5, ..request.clone() };
    let mut back = Vec::new();
    loop {
        let before = back.last().map_or(0, |e: &AuditEntry| e.seq);
        let page =
            history_page(&mut commune_raw, HistoryRequest { before, ..newest.clone() }).await;
        assert!(page.len() <= 5, "{page:?}");
        if page.is_empty() {
            break;
        }
        back.extend(page);
    }
    assert_eq!(back[0], *wire.last().unwrap(), "the newest entry comes first");
    back.reverse();
    assert_eq!(back, wire, "paging back reaches every entry once");
    let mixed = HistoryRequest { after: 3, ..newest.clone() };
    let status = commune_raw.history(mixed).await.expect_err("after with newest_first");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // --- History by user.
    let by_user = |user: &str| HistoryFilter { user_id: Some(user.into()), ..Default::default() };
    let cuongs = history(&admin, &by_user("cuong")).await;
    assert!(cuongs.iter().all(|e| e.user_id == "cuong"), "{cuongs:?}");
    let kinds: Vec<&str> = cuongs.iter().map(|e| e.kind.as_str()).collect();
    // Two resolutions, the rejection, two approvals and three in bulk.
    assert_eq!(kinds.iter().filter(|k| **k == "resolve").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "review").count(), 6, "{kinds:?}");
    assert_eq!(cuongs.len(), 8);
    let ans = history(&commune, &by_user("an")).await;
    assert!(ans.iter().all(|e| e.user_id == "an" && !e.village_id.is_empty()), "{ans:?}");
    let values = ans.iter().filter(|e| e.kind == "value").count();
    // road_km, village_cultural_house, drainage_km 1.5 in 2022; three in 2024.
    assert_eq!(values, 6, "{ans:?}");
    let ems = history(&admin, &by_user("em")).await;
    let details: Vec<&str> = ems.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(
        details,
        [format!("closed 2022 for {DISTRICT}"), format!("reopened 2022 for {DISTRICT}")]
    );

    // --- Nothing deletes history: the trail only ever grew, and stays whole
    // across a restart.
    let before = trail(&server);
    let server = server.restart().await;
    assert_eq!(trail(&server), before);
    server.stop().await;
}

/// No RPC of any service removes or rewrites anything of the audit trail.
#[test]
fn no_rpc_deletes_history() {
    let proto = include_str!("../../proto/fieldsync/v1/sync.proto");
    let rpcs: Vec<&str> = proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .map(|l| l.split('(').next().unwrap().trim())
        .collect();
    assert!(rpcs.contains(&"History"), "{rpcs:?}");
    for rpc in &rpcs {
        for verb in ["Delete", "Remove", "Purge", "Erase", "Truncate", "Clear", "Drop", "Compact"] {
            assert!(!rpc.contains(verb), "{rpc} looks like it deletes something");
        }
    }
}

#[tokio::test]
async fn an_approval_refused_for_an_open_conflict_is_worded_properly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let cuong = server.user("cuong", "Lê Văn Cường", Role::Supervisor, &[COMMUNE]);
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    a.record(&[("playground", "1")]);
    b.record(&[("playground", "2")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    let commune = server.api(&cuong).await;
    let e = decide(&commune, Verdict::Approve, "", &[(VILLAGE, PERIOD)]).await.unwrap_err();
    let (_, message) = refusal(&e);
    assert!(message.ends_with("before it can be approved"), "{message:?}");
    server.stop().await;
}

#[tokio::test]
async fn get_submission_shows_fields_review_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let cuong = server.user("cuong", "Lê Văn Cường", Role::Supervisor, &[COMMUNE]);
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    a.record(&[("playground", "1"), ("road_km", "2.5")]);
    b.record(&[("playground", "2")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    let commune = server.api(&cuong).await;
    let detail = commune.submission(VILLAGE, period(PERIOD)).await.unwrap();
    assert_eq!(detail.review.state, ReviewState::Submitted);
    let mut fields: Vec<String> = detail.fields.iter().map(|f| f.at.field.to_string()).collect();
    fields.sort();
    assert_eq!(fields, ["playground", "road_km"]);
    assert_eq!(detail.conflicts.len(), 1);
    assert!(detail.conflicts[0].open);
    server.stop().await;
}

#[tokio::test]
async fn an_edit_is_audited_before_the_resubmission_it_causes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let an = server.user("an", "Nguyễn Văn An", Role::Surveyor, &[COMMUNE]);
    let cuong = server.user("cuong", "Lê Văn Cường", Role::Supervisor, &[COMMUNE]);
    let a = TestTablet::new(&server.url, &an).await;
    a.record(&[("playground", "1")]);
    a.sync(&server.url).await;
    let commune = server.api(&cuong).await;
    decide(&commune, Verdict::Return, "add the GPS point", &[(VILLAGE, PERIOD)]).await.unwrap();
    a.record(&[("playground", "2")]);
    a.sync(&server.url).await;
    let entries = history(&commune, &of_report(VILLAGE, PERIOD)).await;
    let lines: Vec<String> = entries.iter().map(line).collect();
    assert_eq!(
        lines,
        [
            "value playground -→1 by an",
            "review by cuong: submitted → returned: add the GPS point",
            "value playground 1→2 by an",
            "review by an: returned → submitted (edited)",
        ]
    );
    assert_eq!(entries[3].device, Some(a.device()), "the resubmitting device");
    server.stop().await;
}
