//! Rules that close holes: review powers follow the highest area, tablet ids
//! belong to one user, closed periods stay closed for settlements and for the
//! months of a closed quarter, a whole cannot vanish under its part, and
//! refused input cannot bloat the audit trail.

use crate::util;

use fieldsync::access::Role;
use fieldsync::review::Verdict;
use fieldsync::sync::{FieldRef, Mutation, Outcome, RawValue};
use fieldsync::{DeviceId, FieldKey, Hlc, Period};
use fieldsync_client::now_ms;
use fieldsync_server::db::{Choice, Error, SERVER_DEVICE};
use util::{start_server, TestServer, PERIOD, VILLAGE};

const COMMUNE: &str = "ha-tinh.huong-khe.phuc-dong";
const DISTRICT: &str = "ha-tinh.huong-khe";

fn user(server: &TestServer, id: &str, role: Role, areas: &[&str]) -> fieldsync::access::User {
    let token = server.user(id, id, role, areas);
    server.store.authenticate(&token, now_ms()).unwrap()
}

fn amount(id: u64, period: &str, field: &str, value: &str) -> Mutation {
    Mutation {
        id,
        village_id: VILLAGE.into(),
        period: period.into(),
        field: field.into(),
        value: RawValue::Amount(value.into()),
        base_version: 0,
        hlc: Hlc::from_millis(now_ms()),
        author: "x".into(),
    }
}

fn key() -> (String, Period) {
    (VILLAGE.to_owned(), PERIOD.parse().unwrap())
}

#[tokio::test]
async fn review_powers_follow_the_highest_covering_area() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let an = user(&server, "an", Role::Surveyor, &[COMMUNE]);
    let commune = user(&server, "xa", Role::Supervisor, &[COMMUNE, VILLAGE]);
    let village_only = user(&server, "thon", Role::Supervisor, &[VILLAGE]);
    let district = user(&server, "huyen", Role::Supervisor, &[DISTRICT]);
    let device = DeviceId(uuid::Uuid::new_v4());
    server.store.push(&an, device, &[amount(1, PERIOD, "road_km", "2")], 0, now_ms()).unwrap();
    let store = &server.store;

    let err = store.decide(&village_only, &[key()], Verdict::Approve, "", now_ms()).unwrap_err();
    assert!(matches!(err, Error::Denied(_)), "{err}");
    store.decide(&commune, &[key()], Verdict::Approve, "", now_ms()).unwrap();
    // A village of its own does not make the commune supervisor a district.
    let err = store.decide(&commune, &[key()], Verdict::Accept, "", now_ms()).unwrap_err();
    assert!(err.to_string().contains("district's step"), "{err}");
    store.decide(&district, &[key()], Verdict::Accept, "", now_ms()).unwrap();
    let err = store.decide(&commune, &[key()], Verdict::Reopen, "", now_ms()).unwrap_err();
    assert!(err.to_string().contains("only the district can reopen"), "{err}");
    let err = store.decide(&village_only, &[key()], Verdict::Reopen, "", now_ms()).unwrap_err();
    assert!(matches!(err, Error::Denied(_)), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_tablet_id_belongs_to_the_user_who_first_pushed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let an = user(&server, "an", Role::Surveyor, &[COMMUNE]);
    let binh = user(&server, "binh", Role::Surveyor, &[COMMUNE]);
    let device = DeviceId(uuid::Uuid::new_v4());
    let store = &server.store;
    store.push(&an, device, &[amount(1, PERIOD, "road_km", "2")], 0, now_ms()).unwrap();
    let head = store.head().unwrap();
    let err = store.push(&binh, device, &[amount(2, PERIOD, "road_km", "9")], 0, now_ms());
    assert!(matches!(err, Err(Error::Denied(_))), "{err:?}");
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.device(device).unwrap().last_mutation_id, 1, "An's next id is untouched");
    let err = store.push(&an, SERVER_DEVICE, &[amount(1, PERIOD, "road_km", "2")], 0, now_ms());
    assert!(matches!(err, Err(Error::Invalid(_))), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn closed_periods_hold_for_settlements_and_for_the_months_of_a_closed_quarter() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let store = &server.store;
    let an = user(&server, "an", Role::Surveyor, &[COMMUNE]);
    let binh = user(&server, "binh", Role::Surveyor, &[COMMUNE]);
    let sup = user(&server, "xa", Role::Supervisor, &[COMMUNE]);
    let province = user(&server, "tinh", Role::Province, &["ha-tinh"]);
    let (a, b) = (DeviceId(uuid::Uuid::new_v4()), DeviceId(uuid::Uuid::new_v4()));
    store.push(&an, a, &[amount(1, PERIOD, "playground", "1")], 0, now_ms()).unwrap();
    let r = store.push(&binh, b, &[amount(1, PERIOD, "playground", "2")], 0, now_ms()).unwrap();
    assert_eq!(r[0].outcome, Outcome::Conflict);

    store.set_period_closed(&province, DISTRICT, Period::Year(2022), true, now_ms()).unwrap();
    let at = FieldRef::new(VILLAGE, Period::Year(2022), FieldKey::parse("playground"));
    let err = store.resolve(&sup, &at, Choice::Pick(0), "", now_ms()).unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    store.set_period_closed(&province, DISTRICT, Period::Year(2022), false, now_ms()).unwrap();
    store.resolve(&sup, &at, Choice::Pick(0), "", now_ms()).unwrap();

    store.set_period_closed(&province, DISTRICT, Period::Quarter(2023, 3), true, now_ms()).unwrap();
    let r = store.push(&an, a, &[amount(2, "2023-07", "playground", "1")], 0, now_ms()).unwrap();
    assert_eq!(r[0].outcome, Outcome::Rejected, "July is in the closed third quarter");
    let r = store.push(&an, a, &[amount(3, "2023-10", "playground", "1")], 0, now_ms()).unwrap();
    assert_eq!(r[0].outcome, Outcome::Applied, "October is not");
    server.stop().await;
}

#[tokio::test]
async fn a_whole_cannot_be_deleted_under_its_part() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let an = user(&server, "an", Role::Surveyor, &[COMMUNE]);
    let device = DeviceId(uuid::Uuid::new_v4());
    let batch = [amount(1, PERIOD, "road_km", "10"), amount(2, PERIOD, "road_cement_km", "8")];
    server.store.push(&an, device, &batch, 0, now_ms()).unwrap();
    let delete = Mutation { value: RawValue::Deleted, ..amount(3, PERIOD, "road_km", "0") };
    let r = server.store.push(&an, device, &[delete], 0, now_ms()).unwrap();
    assert_eq!(r[0].outcome, Outcome::Rejected);
    assert!(r[0].reason.contains("delete the part first"), "{}", r[0].reason);
    server.stop().await;
}

#[tokio::test]
async fn refused_input_is_clipped_in_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let an = user(&server, "an", Role::Surveyor, &[COMMUNE]);
    let device = DeviceId(uuid::Uuid::new_v4());
    let huge = "9".repeat(1_000_000);
    let r = server.store.push(&an, device, &[amount(1, PERIOD, "road_km", &huge)], 0, now_ms());
    assert_eq!(r.unwrap()[0].outcome, Outcome::Rejected);
    let trail = server.store.audit_of(VILLAGE, PERIOD.parse().unwrap()).unwrap();
    assert_eq!(trail.len(), 1);
    assert!(trail[0].detail.chars().count() <= 501, "{} characters kept", trail[0].detail.len());
    server.stop().await;
}

#[tokio::test]
async fn conflicts_page_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let store = &server.store;
    let an = user(&server, "an", Role::Surveyor, &[COMMUNE]);
    let binh = user(&server, "binh", Role::Surveyor, &[COMMUNE]);
    let sup = user(&server, "xa", Role::Supervisor, &[COMMUNE]);
    let (a, b) = (DeviceId(uuid::Uuid::new_v4()), DeviceId(uuid::Uuid::new_v4()));
    let fields = ["playground", "village_sports_area", "village_cultural_house"];
    let mine: Vec<_> =
        fields.iter().enumerate().map(|(i, f)| amount(i as u64 + 1, PERIOD, f, "1")).collect();
    let theirs: Vec<_> =
        fields.iter().enumerate().map(|(i, f)| amount(i as u64 + 1, PERIOD, f, "2")).collect();
    store.push(&an, a, &mine, 0, now_ms()).unwrap();
    store.push(&binh, b, &theirs, 0, now_ms()).unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) =
            store.list_conflicts(&sup, None, None, false, after.as_ref(), 1).unwrap();
        seen.extend(page.into_iter().map(|c| c.at.field.to_string()));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    seen.sort();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(seen, want, "every conflict once, one page at a time");
    server.stop().await;
}
