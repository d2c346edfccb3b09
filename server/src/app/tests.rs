//! The use cases over an in-memory store: sign-in and its rate, who may
//! list users, and the refusals of malformed filters, cursors and
//! decisions, as both adapters get them.

use std::sync::Arc;

use fieldsync::access::{Role, User};
use fieldsync::review::Verdict;
use fieldsync::Level;
use fieldsync_store::Memory;

use super::*;

const ADMIN_TOKEN: &str = "fs_test_admin_token_0123456789";

/// Generous settings: no test here runs into a rate.
fn settings() -> Settings {
    Settings {
        calls_per_second: 50,
        call_burst: 1_000,
        max_page: 500,
        app_url: AppUrl::default(),
        enroll_failures_per_minute: 10,
    }
}

fn app(settings: Settings) -> (App, User) {
    let store = Store::open(Arc::new(Memory::new()), fieldsync::demo::catalogue).unwrap();
    store.ensure_admin(Some(ADMIN_TOKEN), now_ms()).unwrap();
    let admin = store.user("admin").unwrap().unwrap();
    (App::new(Arc::new(store), settings), admin)
}

fn supervisor(app: &App, admin: &User) -> User {
    let catalogue = app.catalogue();
    let commune = catalogue.units_at(Level::Commune, None)[0].id.clone();
    let user = User {
        id: "sup".into(),
        name: "Giám sát".into(),
        role: Role::Supervisor,
        areas: vec![commune],
        disabled: false,
    };
    app.create_user(admin, user).unwrap()
}

#[test]
fn a_token_signs_in_within_its_users_rate() {
    let (app, _) = app(Settings { calls_per_second: 1, call_burst: 2, ..settings() });
    assert_eq!(app.sign_in_bearer(Some(&format!("Bearer {ADMIN_TOKEN}"))).unwrap().id, "admin");
    assert_eq!(app.sign_in(ADMIN_TOKEN).unwrap().id, "admin");
    assert_eq!(app.sign_in(ADMIN_TOKEN).unwrap_err().kind, Kind::Exhausted);
    assert_eq!(app.sign_in("fs_unknown").unwrap_err().kind, Kind::Unauthenticated);
}

#[test]
fn only_an_admin_lists_users() {
    let (app, admin) = app(settings());
    let sup = supervisor(&app, &admin);
    assert_eq!(app.users_page(&sup, "", 0).unwrap_err().kind, Kind::Denied);
    let (users, next) = app.users_page(&admin, "", 0).unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(next, None);
}

#[test]
fn malformed_filters_and_cursors_are_refused_as_invalid() {
    let (app, admin) = app(settings());
    let bad_after = SubmissionQuery { after: "nope".into(), ..Default::default() };
    let e = app.list_submissions(&admin, &bad_after).unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (Kind::Invalid, "`after` \"nope\" is not a submission cursor")
    );
    let bad_cursor = ConflictQuery { after: "v/2022".into(), ..Default::default() };
    let e = app.list_conflicts(&admin, &bad_cursor).unwrap_err();
    assert_eq!(e.message, "`after` \"v/2022\" is not a conflict cursor");
    let half = HistoryFilter { village: "v".into(), ..Default::default() };
    assert_eq!(app.history(&admin, &half).unwrap_err().kind, Kind::Invalid);
    let bad_period = SubmissionQuery { period: "2022-13".into(), ..Default::default() };
    assert_eq!(app.list_submissions(&admin, &bad_period).unwrap_err().kind, Kind::Invalid);
}

#[test]
fn a_decision_names_its_reports_or_gives_an_area_and_period() {
    let (app, admin) = app(settings());
    let mut d = Decision {
        verdict: Verdict::Approve,
        submissions: vec![("v".into(), "2022".into())],
        area: "ht".into(),
        period: "2022".into(),
        only: None,
        reason: String::new(),
    };
    assert_eq!(app.decide(&admin, &d).unwrap_err().kind, Kind::Invalid, "both");
    d.submissions.clear();
    d.period.clear();
    let e = app.decide(&admin, &d).unwrap_err();
    assert_eq!(e.message, "a decision for an area needs a period");
}

#[test]
fn a_conflict_cursor_reads_back_as_the_field_it_names() {
    let at = review::cursor("v-1/2022-Q3/note").unwrap();
    assert_eq!((at.village_id.as_str(), at.period.to_string()), ("v-1", "2022-Q3".to_owned()));
    assert_eq!(at.field.as_str(), "note");
}

#[test]
fn the_apps_address_prefers_the_public_url_then_the_callers() {
    let url = AppUrl { public: None, listener: Some("http://127.0.0.1:8080".into()) };
    assert_eq!(url.for_origin(None), "http://127.0.0.1:8080/app/");
    assert_eq!(url.for_origin(Some("http://10.0.0.5:8080")), "http://10.0.0.5:8080/app/");
    let public = AppUrl { public: Some("https://ntm.example.vn/app".into()), ..url };
    assert_eq!(public.for_origin(Some("http://10.0.0.5:8080")), "https://ntm.example.vn/app/");
    assert_eq!(AppUrl::default().for_origin(None), "");
}

/// A surveyor of `commune`, created by the admin.
fn surveyor(app: &App, admin: &User, id: &str, commune: &str) -> User {
    let user = User {
        id: id.into(),
        name: format!("Surveyor {id}"),
        role: Role::Surveyor,
        areas: vec![commune.into()],
        disabled: false,
    };
    app.create_user(admin, user).unwrap()
}

fn unit_ids(part: &sync::Bootstrap) -> Vec<&str> {
    part.org_units.iter().map(|u| u.id.as_str()).collect()
}

#[test]
fn a_bootstrap_shows_a_catalogue_change_at_once() {
    let (app, admin) = app(settings());
    let communes: Vec<String> =
        app.catalogue().units_at(Level::Commune, None).iter().map(|u| u.id.clone()).collect();
    let (one, other) = (&communes[0], &communes[1]);
    let first = surveyor(&app, &admin, "s1", one);
    let second = surveyor(&app, &admin, "s2", one);
    let elsewhere = surveyor(&app, &admin, "s3", other);
    let before = app.bootstrap(&first);
    assert_eq!(unit_ids(&app.bootstrap(&second)), unit_ids(&before), "same areas, same part");
    let theirs = app.bootstrap(&elsewhere);
    assert!(unit_ids(&theirs).contains(&other.as_str()));
    assert!(!unit_ids(&theirs).contains(&one.as_str()), "another commune's part is its own");

    let village = fieldsync::OrgUnit {
        id: format!("{one}.thon-moi"),
        name: "Thôn Mới".into(),
        level: Level::Village,
        parent: Some(one.clone()),
    };
    app.add_org_unit(&admin, village.clone()).unwrap();
    let after = app.bootstrap(&second);
    assert!(unit_ids(&after).contains(&village.id.as_str()), "the new village is sent");
    assert_eq!(after.org_units.len(), before.org_units.len() + 1);
    assert!(!unit_ids(&app.bootstrap(&elsewhere)).contains(&village.id.as_str()));

    let mut indicator = app.catalogue().indicators_in_order().next().unwrap().clone();
    indicator.code = "wells".into();
    indicator.parent = None;
    app.add_indicator(&admin, indicator).unwrap();
    let codes: Vec<String> =
        app.bootstrap(&first).indicators.iter().map(|(i, _)| i.code.clone()).collect();
    assert!(codes.iter().any(|c| c == "wells"), "the new indicator is sent: {codes:?}");
}

#[test]
fn a_pull_at_the_head_gets_nothing_until_a_push_moves_it() {
    let (app, admin) = app(settings());
    let village = fieldsync::demo::SAMPLE_VILLAGE;
    let tablet = surveyor(&app, &admin, "s1", fieldsync::demo::SAMPLE_COMMUNE);
    let head = app.pull(&tablet, 0, 100).unwrap().cursor;
    let idle = app.pull(&tablet, head, 100).unwrap();
    assert!(idle.caught_up && idle.changes.is_empty() && idle.cursor == head);
    assert_eq!(app.pull(&tablet, head + 1, 100).unwrap_err().kind, Kind::OutOfSequence);

    let device = fieldsync::DeviceId(uuid::Uuid::from_u128(7));
    let edit = fieldsync::sync::Mutation {
        id: 1,
        village_id: village.into(),
        period: "2024".into(),
        field: "road_km".into(),
        value: fieldsync::sync::RawValue::Amount("1.50".into()),
        base_version: 0,
        hlc: fieldsync::Hlc::from_millis(now_ms()),
        author: tablet.name.clone(),
    };
    app.push(&tablet, device, &[edit], 0).unwrap();
    app.store.settle().unwrap();
    let page = app.pull(&tablet, head, 100).unwrap();
    let fields =
        page.changes.iter().filter(|(_, c)| matches!(c, fieldsync::sync::Change::Field(_)));
    assert_eq!(fields.count(), 1, "the pushed value comes at the old head: {page:?}");
    assert!(page.caught_up && page.cursor > head);
}
