//! End-to-end sync scenarios over gRPC: tablets with their own stores, a real
//! server on a sled store, both in temp dirs.

use crate::util;

use fieldsync::sync::{FieldRef, Mutation, Outcome, RawValue};
use fieldsync::{FieldKey, Hlc, Period, SubmissionId, Value};
use fieldsync_client::sync::{self as engine, Retry};
use fieldsync_client::Remote;
use fieldsync_server::db::MAX_CLOCK_SKEW_MS;
use util::{start_server, PERIOD, VILLAGE};

fn period() -> Period {
    PERIOD.parse().unwrap()
}

fn sub() -> SubmissionId {
    SubmissionId::of(VILLAGE, period())
}

fn key(field: &str) -> FieldKey {
    FieldKey::parse(field)
}

/// A field of the sample village's report.
fn at(field: &str) -> FieldRef {
    FieldRef::new(VILLAGE, period(), key(field))
}

#[tokio::test]
async fn edits_of_different_fields_merge_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;
    a.sync(&server.url).await;
    b.sync(&server.url).await;

    // Both offline: different fields of the same report.
    a.record(&[("road_km", "1.25"), ("village_cultural_house", "1")]);
    b.record(&[("drainage_km", "0.4"), ("playground", "2")]);
    let ra = a.sync(&server.url).await;
    let rb = b.sync(&server.url).await;
    a.sync(&server.url).await;
    assert_eq!((ra.applied, ra.conflicts), (2, 0));
    assert_eq!((rb.applied, rb.conflicts), (2, 0));

    for t in [&a, &b] {
        assert_eq!(t.shows("road_km").as_deref(), Some("1.25"));
        assert_eq!(t.shows("village_cultural_house").as_deref(), Some("1"));
        assert_eq!(t.shows("drainage_km").as_deref(), Some("0.4"));
        assert_eq!(t.shows("playground").as_deref(), Some("2"));
        assert!(t.tablet.conflicts().unwrap().is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn same_field_different_values_is_one_conflict_both_tablets_see() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;

    a.record(&[("village_cultural_house", "2")]);
    b.record(&[("village_cultural_house", "3")]);
    a.sync(&server.url).await;
    let rb = b.sync(&server.url).await;
    assert_eq!(rb.conflicts, 1);
    a.sync(&server.url).await;

    // Counts are never summed: the current value is one of the two, not 5.
    let current = server.store.field(&at("village_cultural_house")).unwrap().unwrap();
    assert!(matches!(current.value.to_string().as_str(), "2" | "3"), "{current:?}");
    let conflict = server.store.conflict(&at("village_cultural_house")).unwrap().unwrap();
    assert!(conflict.open);
    assert_eq!(conflict.base_version, 0);
    let mut kept: Vec<String> = conflict.candidates.iter().map(|c| c.value.to_string()).collect();
    kept.sort();
    assert_eq!(kept, ["2", "3"]);
    let authors: Vec<_> = conflict.candidates.iter().map(|c| c.stamp.author.as_str()).collect();
    assert!(authors.contains(&"Nguyễn Văn An") && authors.contains(&"Trần Thị Bình"));

    for t in [&a, &b] {
        let conflicts = t.tablet.conflicts().unwrap();
        assert_eq!(conflicts, vec![conflict.clone()], "every tablet holds the same conflict");
        assert_eq!(t.shows("village_cultural_house"), Some(current.value.to_string()));
    }
    server.stop().await;
}

#[tokio::test]
async fn equal_values_from_two_tablets_are_not_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    a.record(&[("road_km", "3.5")]);
    b.record(&[("road_km", "3.50")]);
    a.sync(&server.url).await;
    let rb = b.sync(&server.url).await;
    assert_eq!((rb.conflicts, rb.applied + rb.unchanged), (0, 1));
    assert!(server.store.conflict(&at("road_km")).unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn an_edit_racing_a_delete_is_a_conflict_not_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    a.record(&[("playground", "1")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;

    a.tablet
        .record(
            VILLAGE,
            PERIOD,
            &[("playground".into(), RawValue::Deleted)],
            fieldsync_client::now_ms(),
        )
        .unwrap();
    b.record(&[("playground", "2")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    a.sync(&server.url).await;

    let conflict = server.store.conflict(&at("playground")).unwrap().expect("a conflict");
    let values: Vec<&Value> = conflict.candidates.iter().map(|c| &c.value).collect();
    assert!(values.contains(&&Value::Deleted), "the delete is kept: {values:?}");
    assert!(values.iter().any(|v| v.to_string() == "2"), "the edit is kept: {values:?}");
    assert_eq!(conflict.base_value.to_string(), "1");
    assert_eq!(a.tablet.conflicts().unwrap(), b.tablet.conflicts().unwrap());
    server.stop().await;
}

#[tokio::test]
async fn a_replayed_push_changes_nothing_and_gets_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    a.record(&[("road_km", "2")]);
    let mut batch = a.tablet.outbox(100).unwrap();
    // The tablet checks parts against wholes too, so build the bad one by hand.
    let too_big = Mutation {
        id: 2,
        field: "road_cement_km".into(),
        value: RawValue::Amount("3".into()),
        ..batch[0].clone()
    };
    batch.push(too_big);
    let mut remote = a.remote(&server.url).await;
    let first = remote.push(a.device(), batch.clone(), 0).await.unwrap();
    let head = server.store.head().unwrap();
    // The reply was lost; the tablet sends the same batch again.
    let again = remote.push(a.device(), batch.clone(), 0).await.unwrap();
    assert_eq!(first.results, again.results);
    assert_eq!(server.store.head().unwrap(), head);
    assert_eq!(first.results[0].outcome, Outcome::Applied);
    assert_eq!(first.results[1].outcome, Outcome::Rejected, "a part above its whole");
    assert_eq!(server.store.revisions(&at("road_km")).unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_restart_between_push_and_pull_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    b.sync(&server.url).await;
    let cursor_before = b.tablet.meta().cursor;

    a.record(&[("canal_km", "4.2"), ("canal_cement_km", "1.1")]);
    let mut remote = a.remote(&server.url).await;
    engine::push(&a.tablet, &mut remote, &Retry::immediate(0), &mut |_| {}).await.unwrap();
    assert_eq!(a.tablet.outbox_len().unwrap(), 0);

    let server = server.restart().await;
    let pulled = b.sync(&server.url).await.pulled;
    assert_eq!(pulled, 3, "two values and the new report's review state");
    assert!(b.tablet.meta().cursor > cursor_before);
    assert_eq!(b.shows("canal_km").as_deref(), Some("4.2"));
    assert_eq!(b.shows("canal_cement_km").as_deref(), Some("1.1"));
    // And the cursor stays valid: nothing new means nothing pulled.
    assert_eq!(b.sync(&server.url).await.pulled, 0);
    server.stop().await;
}

#[tokio::test]
async fn the_same_report_started_on_two_tablets_is_one_submission() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    a.record(&[("road_km", "1")]);
    b.record(&[("drainage_km", "2")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    let subs = server.store.submissions().unwrap();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0].id, sub());
    assert_eq!(server.store.fields_of(VILLAGE, period()).unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_pull_never_hides_an_edit_not_yet_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    b.record(&[("village_sports_area", "1")]);
    b.sync(&server.url).await;

    a.record(&[("village_sports_area", "4")]);
    let mut remote = a.remote(&server.url).await;
    engine::pull(&a.tablet, &mut remote, &Retry::immediate(0), &mut |_| {}).await.unwrap();
    assert_eq!(
        a.shows("village_sports_area").as_deref(),
        Some("4"),
        "the pending edit stays on top"
    );
    let local = a.tablet.field(sub(), &key("village_sports_area")).unwrap().unwrap();
    assert!(local.pending);
    assert_eq!(local.synced.unwrap().value.to_string(), "1");
    assert_eq!(a.tablet.outbox_len().unwrap(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_device_clock_far_in_the_future_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let device = fieldsync::DeviceId(uuid::Uuid::new_v4());
    let now = fieldsync_client::now_ms();
    let year = 365 * 24 * 3600 * 1000;
    let m = Mutation {
        id: 1,
        village_id: VILLAGE.into(),
        period: PERIOD.into(),
        field: "road_km".into(),
        value: RawValue::Amount("1".into()),
        base_version: 0,
        hlc: Hlc::from_millis(now + 10 * year),
        author: "An".into(),
    };
    let mut remote = server.remote().await;
    remote.push(device, vec![m], 0).await.unwrap();
    let after = fieldsync_client::now_ms();
    let state = server.store.field(&at("road_km")).unwrap().unwrap();
    assert!(state.stamp.hlc.millis() <= after + MAX_CLOCK_SKEW_MS);
    assert!((now..=after).contains(&state.stamp.received_at_ms));
    server.stop().await;
}

#[tokio::test]
async fn health_reports_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let channel = tonic::transport::Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let reply = health
        .check(HealthCheckRequest { service: "fieldsync.v1.Sync".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.status, ServingStatus::Serving as i32);
    server.stop().await;
}

#[tokio::test]
async fn a_refused_edit_stays_on_the_tablet_until_a_corrected_one_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("An").await;
    let b = server.tablet("Bình").await;
    a.record(&[("road_km", "5")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;

    // Offline: B records a part that fits the 5 km it knows; A lowers the whole.
    b.record(&[("road_cement_km", "4")]);
    a.record(&[("road_km", "3")]);
    a.sync(&server.url).await;
    let report = b.sync(&server.url).await;
    assert_eq!(report.rejected, 1);
    let refusals = b.tablet.refusals().unwrap();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].reason.contains("more than its whole"), "{}", refusals[0].reason);
    assert_eq!(b.tablet.outbox_len().unwrap(), 0, "refused, not stuck in the outbox");
    assert_eq!(b.shows("road_km").as_deref(), Some("3"));

    b.record(&[("road_cement_km", "2.5")]);
    let report = b.sync(&server.url).await;
    assert_eq!((report.applied, report.rejected), (1, 0));
    assert!(b.tablet.refusals().unwrap().is_empty(), "the corrected edit settles the refusal");
    server.stop().await;
}
