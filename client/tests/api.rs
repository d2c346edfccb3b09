//! The typed client (`fieldsync_client::api`) against an in-process server:
//! listings come back whole whatever the page size, decisions and refusals
//! arrive as domain types and codes, history reads the newest entries when
//! limited.

use std::sync::Arc;

use fieldsync::access::{Role, User};
use fieldsync::demo::{SAMPLE_COMMUNE, SAMPLE_VILLAGE};
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::RawValue;
use fieldsync::Period;
use fieldsync_client::api::{Decision, HistoryFilter, Reports, SubmissionFilter};
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{init_tablet, now_ms, Api, Error, Grpc};
use fieldsync_server::local::LocalServer;
use fieldsync_store::Memory;

const ADMIN_TOKEN: &str = "api-test-admin-token-0123456789";
const THON_2: &str = "ha-tinh.huong-khe.phuc-dong.thon-2";

fn surveyor(id: &str) -> User {
    User {
        id: id.into(),
        name: format!("Điều tra viên {id}"),
        role: Role::Surveyor,
        areas: vec![SAMPLE_COMMUNE.into()],
        disabled: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_whole_whatever_the_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path(), "127.0.0.1:0", ADMIN_TOKEN).await.unwrap();
    let admin = Api::connect(&server.url, ADMIN_TOKEN).await.unwrap();
    for i in 0..5 {
        let made = admin.create_user(&surveyor(&format!("surveyor.{i}"))).await.unwrap();
        assert_eq!(made.areas, [SAMPLE_COMMUNE]);
    }
    let all = admin.users().await.unwrap();
    assert_eq!(all.len(), 6, "admin and five surveyors: {all:?}");
    let paged = admin.clone().with_page_size(2).users().await.unwrap();
    assert_eq!(paged, all);

    for label in ["tablet 1", "tablet 2", "tablet 3"] {
        admin.issue_token("surveyor.1", 0, label).await.unwrap();
    }
    let tokens = admin.clone().with_page_size(1).tokens("surveyor.1").await.unwrap();
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    let revoked = admin.revoke_token(&tokens[0].id).await.unwrap();
    assert!(revoked.revoked);
    let err = admin.revoke_token("no-such-token").await.unwrap_err();
    assert!(matches!(err, Error::Status { code: tonic::Code::NotFound, .. }), "{err}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_listed_decided_and_audited_in_domain_types() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path(), "127.0.0.1:0", ADMIN_TOKEN).await.unwrap();
    let token = server.user("an", "Nguyễn Văn An", Role::Surveyor, &[SAMPLE_COMMUNE]).unwrap();
    let sup = server.user("giam", "Trần Văn Giám", Role::Supervisor, &[SAMPLE_COMMUNE]).unwrap();
    let tablet = init_tablet(Arc::new(Memory::new()), &server.url, &token).await.unwrap();
    for village in [SAMPLE_VILLAGE, THON_2] {
        let edits = [("road_km".to_owned(), RawValue::Amount("1.25".into()))];
        tablet.record(village, "2022", &edits, now_ms()).unwrap();
    }
    let mut remote = Grpc::connect(&server.url, &token).await.unwrap();
    sync::sync(&tablet, &mut remote, &Retry::default(), &mut |_| {}).await.unwrap();

    let supervisor = Api::connect(&server.url, &sup).await.unwrap().with_page_size(1);
    let period = Period::Year(2022);
    let filter = SubmissionFilter { period: Some(period), ..SubmissionFilter::default() };
    let listed = supervisor.submissions(&filter).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|s| s.review.state == ReviewState::Submitted && s.fields == 1));

    let approve = Decision {
        verdict: Verdict::Approve,
        reason: String::new(),
        reports: Reports::These(vec![(SAMPLE_VILLAGE.into(), period)]),
    };
    let decided = supervisor.decide(&approve).await.unwrap();
    assert_eq!(decided.changed.len(), 1);
    assert_eq!(decided.changed[0].state, ReviewState::Approved);
    let detail = supervisor.submission(SAMPLE_VILLAGE, period).await.unwrap();
    assert_eq!(detail.review.state, ReviewState::Approved);
    assert_eq!(detail.fields.len(), 1);

    // A village of the area with nothing recorded: no such report.
    let unrecorded = Decision {
        reports: Reports::These(vec![("ha-tinh.huong-khe.phuc-dong.thon-3".into(), period)]),
        ..approve
    };
    let err = supervisor.decide(&unrecorded).await.unwrap_err();
    assert!(matches!(err, Error::Status { code: tonic::Code::NotFound, .. }), "{err}");

    let everything = supervisor.history(&HistoryFilter::default()).await.unwrap();
    assert!(everything.len() >= 3, "two edits and a decision: {everything:?}");
    assert!(everything.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    let newest = HistoryFilter { limit: Some(2), ..HistoryFilter::default() };
    let newest = supervisor.history(&newest).await.unwrap();
    let seqs: Vec<u64> = newest.iter().map(|e| e.seq).collect();
    let want: Vec<u64> = everything[everything.len() - 2..].iter().map(|e| e.seq).collect();
    assert_eq!(seqs, want, "the newest two, oldest first");
    assert_eq!(newest.last().map(|e| e.kind.as_str()), Some("review"));
    server.stop().await.unwrap();
}
