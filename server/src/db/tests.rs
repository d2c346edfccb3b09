//! The store's own tests: push, pull, sign-ins and the write lock.

use std::ops::Bound;

use super::schema::*;
use super::*;
use fieldsync::sync::RawValue;
use fieldsync::sync::{Change, Mutation, Outcome};
use fieldsync::{demo, Hlc};
use fieldsync::{FieldKey, Level, Period};
use fieldsync_store::{Batch, Memory};

fn store() -> Store {
    Store::open(Arc::new(Memory::new()), demo::catalogue).unwrap()
}

fn surveyor() -> User {
    User {
        id: "an".into(),
        name: "An".into(),
        role: fieldsync::access::Role::Surveyor,
        areas: vec![demo::PROVINCE.into()],
        disabled: false,
    }
}

fn device(n: u128) -> DeviceId {
    DeviceId(uuid::Uuid::from_u128(n))
}

fn m(id: u64, period: &str, field: &str, value: RawValue, hlc: u64) -> Mutation {
    Mutation {
        id,
        village_id: demo::SAMPLE_VILLAGE.into(),
        period: period.into(),
        field: field.into(),
        value,
        base_version: 0,
        hlc: Hlc(hlc),
        author: "An".into(),
    }
}

fn km(id: u64, field: &str, v: &str, hlc: u64) -> Mutation {
    m(id, "2022", field, RawValue::Amount(v.into()), hlc)
}

/// A store with a note in every demo village for 100 months (300 reports
/// per commune: more than one read of a commune's part holds), on an
/// engine the test keeps.
fn every_village_reported() -> (Arc<Memory>, Store) {
    let engine = Arc::new(Memory::new());
    let store = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap();
    let catalogue = store.catalogue();
    let villages = catalogue.units_at(fieldsync::Level::Village, None);
    let mut batch = Vec::new();
    let periods: Vec<String> =
        (0..100).map(|k| format!("{}-{:02}", 2020 + k / 12, k % 12 + 1)).collect();
    for p in &periods {
        for v in &villages {
            let id = batch.len() as u64 + 1;
            let mut note = m(id, p, "note", RawValue::Text(format!("{} {p}", v.id)), id);
            note.village_id = v.id.clone();
            batch.push(note);
        }
    }
    store.push(&surveyor(), device(1), &batch, 0, now_ms()).unwrap();
    (engine, store)
}

/// The reports of `area` (and `period`) among all headers, in listing
/// order: by commune, period and id.
fn brute_force(store: &Store, area: &str, period: Option<Period>) -> Vec<SubmissionId> {
    let catalogue = store.catalogue();
    let mut all = store.submissions().unwrap();
    all.sort_by_cached_key(|h| {
        (super::commune::commune_of(&catalogue, &h.village_id, h.period), h.period, h.id)
    });
    all.into_iter()
        .filter(|h| catalogue.within(&h.village_id, area))
        .filter(|h| period.is_none_or(|p| p == h.period))
        .map(|h| h.id)
        .collect()
}

fn listed(
    store: &Store,
    caller: &User,
    area: Option<&str>,
    period: Option<Period>,
    page: usize,
) -> Vec<SubmissionId> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = store.list_submissions(caller, area, period, None, after, page).unwrap();
        let Some((last, _, _)) = rows.last() else { return out };
        after = Some((last.village_id.clone(), last.period));
        out.extend(rows.into_iter().map(|(h, _, _)| h.id));
    }
}

#[test]
fn listing_an_area_reads_its_communes_and_finds_what_every_header_says() {
    let (_, store) = every_village_reported();
    let catalogue = store.catalogue();
    let mut units: Vec<String> =
        catalogue.units_at(fieldsync::Level::District, None).iter().map(|u| u.id.clone()).collect();
    units.push(demo::PROVINCE.into());
    for level in [fieldsync::Level::Commune, fieldsync::Level::Village] {
        units.extend(catalogue.units_at(level, None).iter().take(3).map(|u| u.id.clone()));
    }
    let month: Period = "2021-03".parse().unwrap();
    for unit in &units {
        for (period, page) in [(None, 1_000), (Some(month), 1_000), (None, 97)] {
            assert_eq!(
                listed(&store, &surveyor(), Some(unit), period, page),
                brute_force(&store, unit, period),
                "{unit} {period:?} in pages of {page}"
            );
        }
    }
    // A caller's own areas, two communes, with no area given.
    let communes = catalogue.units_at(fieldsync::Level::Commune, None);
    let two = User { areas: vec![communes[0].id.clone(), communes[5].id.clone()], ..surveyor() };
    let expected: Vec<SubmissionId> =
        [brute_force(&store, &communes[0].id, None), brute_force(&store, &communes[5].id, None)]
            .concat();
    assert_eq!(listed(&store, &two, None, None, 5), expected);
    assert!(store.check().unwrap().is_empty());
}

#[test]
fn a_store_with_the_old_listing_index_is_emptied_when_opened_and_lists_the_same() {
    let (engine, store) = every_village_reported();
    let commune = store.catalogue().units_at(fieldsync::Level::Commune, None)[2].id.clone();
    let before = listed(&store, &surveyor(), Some(&commune), None, 1_000);
    let headers = store.submissions().unwrap();
    drop(store);
    // As a store written before: every report filed under its commune in
    // `submissions_by_commune`, no listing marker.
    let filing = |h: &SubmissionHeader| {
        let commune = super::commune::commune_of(&demo::catalogue(), &h.village_id, h.period);
        [commune.as_bytes(), &[0], h.id.0.as_bytes()].concat()
    };
    let mut batch = Batch::default();
    for h in &headers {
        batch.put(SUBMISSIONS_BY_COMMUNE, filing(h), Vec::new());
    }
    batch.put(META, BY_COMMUNE_KEY.to_vec(), b"1".to_vec());
    batch.delete(META, LISTING_KEY.to_vec());
    engine.commit(batch).unwrap();
    let store = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap();
    let left = engine.scan(SUBMISSIONS_BY_COMMUNE, Bound::Unbounded, Bound::Unbounded, 1).unwrap();
    assert!(left.is_empty(), "the old index is emptied");
    assert_eq!(listed(&store, &surveyor(), Some(&commune), None, 1_000), before);
    assert!(store.check().unwrap().is_empty());
    // An entry written there after (an old binary, a bad restore) is named.
    let mut batch = Batch::default();
    batch.put(SUBMISSIONS_BY_COMMUNE, filing(&headers[0]), Vec::new());
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("submissions_by_commune still holds entries"), "{problems:?}");
}

#[test]
fn the_submission_list_pages_through_more_headers_than_one_read_holds() {
    let store = store();
    let catalogue = store.catalogue();
    let villages: Vec<String> =
        catalogue.units_at(fieldsync::Level::Village, None).iter().map(|u| u.id.clone()).collect();
    let periods: Vec<String> =
        (0..24).map(|k| format!("{}-{:02}", 2000 + k / 12, k % 12 + 1)).collect();
    let mut batch = Vec::new();
    for p in &periods {
        for v in &villages {
            let id = batch.len() as u64 + 1;
            let mut note = m(id, p, "note", RawValue::Text(format!("{v} {p}")), id);
            note.village_id = v.clone();
            batch.push(note);
        }
    }
    let results = store.push(&surveyor(), device(1), &batch, 0, now_ms()).unwrap();
    assert!(results.iter().all(|r| r.outcome == Outcome::Applied));
    let all = store.submissions().unwrap();
    assert_eq!(all.len(), villages.len() * periods.len());
    assert!(all.len() > 2 * 1_024, "more headers than two reads of the tree");

    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_submissions(&surveyor(), None, None, None, after, 1_000).unwrap();
        assert!(page.len() <= 1_000);
        let Some((last, _, _)) = page.last() else { break };
        after = Some((last.village_id.clone(), last.period));
        listed.extend(page.into_iter().map(|(h, fields, open)| {
            assert_eq!((fields, open), (1, 0));
            h.id
        }));
    }
    let mut expected = all.clone();
    expected.sort_by_cached_key(|h| {
        (super::commune::commune_of(&catalogue, &h.village_id, h.period), h.period, h.id)
    });
    let expected: Vec<SubmissionId> = expected.iter().map(|h| h.id).collect();
    assert_eq!(listed, expected, "each once, in order");

    // A narrow filter finds its few headers spread over the whole tree.
    let commune = &catalogue.units_at(fieldsync::Level::Commune, None)[0].id;
    let period: Period = "2001-07".parse().unwrap();
    let found = store
        .list_submissions(&surveyor(), Some(commune), Some(period), None, None, 1_000)
        .unwrap();
    let expected = catalogue.units_at(fieldsync::Level::Village, Some(commune)).len();
    assert_eq!(found.len(), expected);
    assert!(found.iter().all(|(h, _, _)| h.period == period));
}

#[test]
fn a_competing_value_that_breaks_a_total_is_kept_not_dropped() {
    let s = store();
    let a = [km(1, "road_km", "10", 10), km(2, "road_cement_km", "8", 11)];
    s.push(&surveyor(), device(1), &a, 0, 1).unwrap();
    // B's later 5 km would win, but cement 8 km cannot be part of 5 km.
    let r = s.push(&surveyor(), device(2), &[km(1, "road_km", "5", 20)], 0, 1).unwrap();
    assert_eq!(r[0].outcome, Outcome::Conflict);
    assert!(r[0].reason.contains("less than its part"), "{}", r[0].reason);
    let road = FieldRef::new(demo::SAMPLE_VILLAGE, Period::Year(2022), FieldKey::parse("road_km"));
    assert_eq!(s.field(&road).unwrap().unwrap().value.to_string(), "10");
    let conflict = s.conflict(&road).unwrap().unwrap();
    let values: Vec<String> = conflict.candidates.iter().map(|c| c.value.to_string()).collect();
    assert!(values.contains(&"5".to_string()), "{values:?}");
}

#[test]
fn a_pull_sees_a_push_only_once_it_is_on_disk() {
    let disk = Arc::new(fieldsync_store::Faulty::new());
    let s = Arc::new(Store::open(disk.clone(), demo::catalogue).unwrap());
    s.push(&surveyor(), device(1), &[km(1, "road_km", "1", 1)], 0, 1).unwrap();
    let before = s.pull(&surveyor(), 0, 100).unwrap();
    assert!(before.caught_up);
    disk.hold();
    let pusher = {
        let s = Arc::clone(&s);
        std::thread::spawn(move || {
            s.push(&surveyor(), device(1), &[km(2, "road_km", "2", 2)], 0, 1).unwrap()
        })
    };
    // The push is written (the head moved) but waits for its flush.
    while s.head().unwrap() == before.cursor {
        std::thread::yield_now();
    }
    let during = s.pull(&surveyor(), before.cursor, 100).unwrap();
    assert!(during.changes.is_empty(), "{:?}", during.changes);
    assert_eq!(during.cursor, before.cursor);
    assert!(!pusher.is_finished(), "the push is acknowledged only once flushed");
    disk.release();
    assert_eq!(pusher.join().unwrap()[0].outcome, Outcome::Applied);
    let after = s.pull(&surveyor(), before.cursor, 100).unwrap();
    assert_eq!(after.changes.len(), 1, "{:?}", after.changes);
    assert!(after.caught_up);
}

#[test]
fn pages_open_on_this_year_or_the_latest_year_with_totals() {
    let s = store();
    assert_eq!(s.year_to_show(2026).unwrap(), 2026, "nothing recorded yet");
    s.push(&surveyor(), device(1), &[km(1, "road_km", "3", 1)], 0, 1).unwrap();
    let q = m(2, "2019-Q3", "road_km", RawValue::Amount("1".into()), 2);
    s.push(&surveyor(), device(1), &[q], 0, 1).unwrap();
    assert_eq!(s.year_to_show(2026).unwrap(), 2022);
    assert_eq!(s.year_to_show(2022).unwrap(), 2022);
    assert_eq!(s.year_to_show(2020).unwrap(), 2020, "never a later year");
    assert_eq!(s.year_to_show(2019).unwrap(), 2019);
}

#[test]
fn a_pull_across_many_communes_returns_the_log_in_order_page_by_page() {
    let s = store();
    let cat = demo::catalogue();
    let villages: Vec<String> =
        cat.units_at(Level::Village, None).iter().map(|u| u.id.clone()).collect();
    let mut id = 0;
    // Values across every village, three rounds, so entries move in the log.
    for round in 0..3u64 {
        let batch: Vec<Mutation> = villages
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as u64 + round).is_multiple_of(2))
            .map(|(_, v)| {
                id += 1;
                let mut m = km(id, "road_km", &(id % 9 + 1).to_string(), 100 + id);
                m.village_id = v.clone();
                m
            })
            .collect();
        s.push(&surveyor(), device(1), &batch, 0, 1).unwrap();
    }
    let district = User { areas: vec!["ha-tinh.huong-khe".into()], ..surveyor() };
    let everything = s.pull(&surveyor(), 0, 10_000).unwrap();
    assert!(everything.caught_up);
    let expected: Vec<u64> = everything
        .changes
        .iter()
        .filter(|(_, c)| match c {
            Change::Field(f) => district.covers(&cat, &f.at.village_id),
            Change::Review(r) => district.covers(&cat, &r.village_id),
            Change::Conflict(c) => district.covers(&cat, &c.at.village_id),
        })
        .map(|(seq, _)| *seq)
        .collect();
    assert!(expected.len() > 20, "{}", expected.len());
    for limit in [1, 3, 7, 500] {
        let (mut cursor, mut got) = (0, Vec::new());
        loop {
            let page = s.pull(&district, cursor, limit).unwrap();
            assert!(page.changes.len() <= limit);
            got.extend(page.changes.iter().map(|(seq, _)| *seq));
            cursor = page.cursor;
            if page.caught_up {
                break;
            }
        }
        assert_eq!(got, expected, "pages of {limit}");
    }
}

#[test]
fn a_signed_in_token_follows_every_change_to_its_user_and_itself() {
    let s = store();
    s.ensure_admin(Some("admin-token-0123456789-abcdef"), 1).unwrap();
    let admin = s.user("admin").unwrap().unwrap();
    s.create_user(&admin, surveyor(), 1).unwrap();
    let (token, info) = s.issue_token(&admin, "an", 0, "tablet", 1).unwrap();
    assert_eq!(s.authenticate(&token, 2).unwrap().areas, surveyor().areas);
    let commune = vec![demo::SAMPLE_COMMUNE.to_owned()];
    s.update_user(&admin, "an", None, None, Some(commune.clone()), 3).unwrap();
    assert_eq!(s.authenticate(&token, 4).unwrap().areas, commune, "new areas at once");
    s.update_user(&admin, "an", None, Some(true), None, 5).unwrap();
    assert!(matches!(s.authenticate(&token, 6), Err(Error::Unauthenticated(_))));
    s.update_user(&admin, "an", None, Some(false), None, 7).unwrap();
    assert!(s.authenticate(&token, 8).is_ok());
    s.revoke_token(&admin, &info.id, 9).unwrap();
    assert!(matches!(s.authenticate(&token, 10), Err(Error::Unauthenticated(_))));
}

/// A sign-in that read the token just before a revoke must not leave
/// the token remembered as live once the revoke has emptied the map.
#[test]
fn a_sign_in_racing_a_revoke_is_not_remembered() {
    let s = store();
    s.ensure_admin(Some("admin-token-0123456789-abcdef"), 1).unwrap();
    let admin = s.user("admin").unwrap().unwrap();
    s.create_user(&admin, surveyor(), 1).unwrap();
    let (token, info) = s.issue_token(&admin, "an", 0, "tablet", 1).unwrap();
    // The racing sign-in: notes the map's generation, reads the live token...
    let generation = s.sign_in_generation();
    let read = (info.clone(), s.user("an").unwrap().unwrap());
    // ...the revoke lands and empties the map...
    s.revoke_token(&admin, &info.id, 2).unwrap();
    // ...then the sign-in would remember what it read.
    s.remember_sign_in(generation, admin::hash(&token), read);
    assert!(
        matches!(s.authenticate(&token, 3), Err(Error::Unauthenticated(_))),
        "the revoked token signs nobody in"
    );
}

#[test]
fn a_different_mutation_under_a_used_id_is_refused() {
    let s = store();
    s.push(&surveyor(), device(1), &[km(1, "road_km", "1", 1)], 0, 1).unwrap();
    let head = s.head().unwrap();
    let err = s.push(&surveyor(), device(1), &[km(1, "road_km", "2", 1)], 0, 1).unwrap_err();
    assert!(matches!(err, Error::Reused { id: 1, last: 1 }), "{err}");
    assert!(err.to_string().contains("differs"), "{err}");
    assert_eq!(s.head().unwrap(), head);
}

/// A tablet restored from an older copy of its store reuses ids whose
/// results the server has already released: the digest kept for each
/// still tells its new edit from a replay.
#[test]
fn a_different_mutation_under_a_released_id_is_refused_and_a_replay_is_not() {
    let s = store();
    let (one, two, three) =
        (km(1, "road_km", "1", 1), km(2, "road_km", "2", 2), km(3, "playground", "3", 3));
    s.push(&surveyor(), device(1), std::slice::from_ref(&one), 0, 1).unwrap();
    s.push(&surveyor(), device(1), std::slice::from_ref(&two), 1, 1).unwrap();
    s.push(&surveyor(), device(1), std::slice::from_ref(&three), 2, 1).unwrap();
    let head = s.head().unwrap();
    // Ids 1 and 2 were acknowledged, so their results are gone; a replay
    // of either is still answered as committed.
    let replayed = s.push(&surveyor(), device(1), &[one, two], 0, 1).unwrap();
    assert!(replayed.iter().all(|r| r.outcome == Outcome::Forgotten), "{replayed:?}");
    // A new edit made under id 2 (the copy's next id) is refused, whole.
    let new = km(2, "drainage_km", "0.4", 4);
    let err = s.push(&surveyor(), device(1), std::slice::from_ref(&new), 2, 1).unwrap_err();
    assert!(matches!(err, Error::Reused { id: 2, last: 3 }), "{err}");
    assert!(err.to_string().contains("number the unsent edits from 4"), "{err}");
    assert_eq!(s.head().unwrap(), head, "nothing stored");
    // Renumbered after the server's last id, it applies once.
    let renumbered = Mutation { id: 4, ..new };
    let applied = s.push(&surveyor(), device(1), &[renumbered], 2, 1).unwrap();
    assert_eq!(applied[0].outcome, Outcome::Applied);
    assert_eq!(s.device(device(1)).unwrap().last_mutation_id, 4);
}

#[test]
fn pages_stop_at_their_byte_budget() {
    let s = store();
    let note = "𠀀".repeat(2_000); // 8 KB
    let months: Vec<Mutation> = (1..=400u64)
        .map(|i| {
            let period = format!("{}-{:02}", 2000 + (i - 1) / 12, (i - 1) % 12 + 1);
            m(i, &period, "note", RawValue::Text(note.clone()), i)
        })
        .collect();
    s.push(&surveyor(), device(1), &months, 0, 1).unwrap();
    let first = s.pull(&surveyor(), 0, 500).unwrap();
    assert!(!first.caught_up);
    let n = first.changes.len();
    assert!(n < 300, "{n} changes (half of them 8 KB notes) in a 1 MiB page");
    let mut cursor = first.cursor;
    let mut total = n;
    loop {
        let page = s.pull(&surveyor(), cursor, 500).unwrap();
        total += page.changes.len();
        cursor = page.cursor;
        if page.caught_up {
            break;
        }
    }
    assert_eq!(total, 800, "every note and every report's review, exactly once");
}

#[test]
fn a_settlement_racing_a_period_close_never_lands_in_the_closed_period() {
    let engine = Arc::new(fieldsync_store::Faulty::new());
    let s = Arc::new(Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap());
    s.push(
        &surveyor(),
        device(1),
        &[km(1, "road_km", "10", 10), km(2, "road_cement_km", "8", 11)],
        0,
        1,
    )
    .unwrap();
    let r = s.push(&surveyor(), device(2), &[km(1, "road_km", "5", 20)], 0, 1).unwrap();
    assert_eq!(r[0].outcome, Outcome::Conflict);
    let road = FieldRef::new(demo::SAMPLE_VILLAGE, Period::Year(2022), FieldKey::parse("road_km"));
    let at = s.conflict(&road).unwrap().unwrap().at;
    let user = |id: &str, role| User {
        id: id.into(),
        name: id.into(),
        role,
        areas: vec![demo::PROVINCE.into()],
        disabled: false,
    };
    let supervisor = user("binh", fieldsync::access::Role::Supervisor);
    let province = user("chi", fieldsync::access::Role::Province);

    // The close is written while it holds the write lock; the settlement
    // is asked for meanwhile, before the close is committed.
    engine.hold_writes();
    let closer = {
        let s = Arc::clone(&s);
        std::thread::spawn(move || {
            s.set_period_closed(&province, demo::PROVINCE, Period::Year(2022), true, 2)
        })
    };
    while engine.waiting_writes() == 0 {
        std::thread::yield_now();
    }
    let settler = {
        let s = Arc::clone(&s);
        std::thread::spawn(move || s.resolve(&supervisor, &at, Choice::Pick(0), "", 3))
    };
    // Long enough for the settlement to reach the write lock and wait.
    std::thread::sleep(std::time::Duration::from_millis(300));
    engine.release_writes();
    closer.join().unwrap().unwrap();
    let settled = settler.join().unwrap();

    let err = settled.expect_err("the period was closed before the settlement committed");
    assert!(err.to_string().contains("closed"), "{err}");
    assert!(s.conflict(&road).unwrap().unwrap().open, "the conflict is still open");
    assert_eq!(s.field(&road).unwrap().unwrap().value.to_string(), "10");
}

#[test]
fn a_value_is_filed_in_the_history_once_replaced_and_a_stale_base_still_finds_it() {
    let engine = Arc::new(Memory::new());
    let s = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap();
    let history = || (engine.as_ref() as &dyn Engine).iter_all(HISTORY).count();
    s.push(&surveyor(), device(1), &[km(1, "road_km", "1", 1), km(2, "canal_km", "2", 2)], 0, 1)
        .unwrap();
    // A report's first values are its current ones: its record holds them.
    assert_eq!(history(), 0);
    let road = FieldRef::new(demo::SAMPLE_VILLAGE, Period::Year(2022), FieldKey::parse("road_km"));
    let first = s.field(&road).unwrap().unwrap();
    let edit = Mutation { base_version: first.version, ..km(3, "road_km", "3", 3) };
    s.push(&surveyor(), device(1), &[edit], 2, 1).unwrap();
    assert_eq!(history(), 1, "the replaced value is filed by the commit that replaced it");
    // Another tablet still on the first version: merged against its value.
    let stale = Mutation { base_version: first.version, ..km(1, "road_km", "4", 4) };
    let r = s.push(&surveyor(), device(2), &[stale], 0, 1).unwrap();
    assert_eq!(r[0].outcome, Outcome::Conflict, "{}", r[0].reason);
    let values: Vec<String> =
        s.revisions(&road).unwrap().iter().map(|f| f.value.to_string()).collect();
    // The later clock won and the conflict keeps both: 3 was replaced too.
    assert_eq!(values, ["1", "3", "4"]);
    assert_eq!(history(), 2);
    assert!(s.check().unwrap().is_empty(), "{:?}", s.check().unwrap());
}

#[test]
fn two_edits_of_a_field_in_one_push_both_based_on_the_pulled_version_merge() {
    let s = store();
    s.push(&surveyor(), device(1), &[km(1, "road_km", "1", 1)], 0, 1).unwrap();
    let road = FieldRef::new(demo::SAMPLE_VILLAGE, Period::Year(2022), FieldKey::parse("road_km"));
    let pulled = s.field(&road).unwrap().unwrap().version;
    // A tablet offline since its pull edits the field twice: both edits
    // are based on the version it pulled, the first replacing it.
    let edits = [
        Mutation { base_version: pulled, ..km(1, "road_km", "2", 2) },
        Mutation { base_version: pulled, ..km(2, "road_km", "3", 3) },
    ];
    let r = s.push(&surveyor(), device(2), &edits, 0, 1).unwrap();
    assert!(r.iter().all(|r| r.outcome != Outcome::Rejected), "{r:?}");
    assert_eq!(s.field(&road).unwrap().unwrap().value.to_string(), "3");
    // A version no field had costs a refusal, not a walk.
    let made_up = Mutation { base_version: pulled + 1, ..km(3, "road_km", "4", 4) };
    let r = s.push(&surveyor(), device(2), &[made_up], 2, 1).unwrap();
    assert_eq!(r[0].outcome, Outcome::Rejected, "{r:?}");
    assert!(r[0].reason.contains("not a version"), "{}", r[0].reason);
    assert!(s.check().unwrap().is_empty(), "{:?}", s.check().unwrap());
}

/// Hà Tĩnh since 1 July 2025: no district level, communes straight under
/// the province, two villages in each of two communes.
fn two_tier() -> fieldsync::Catalogue {
    use fieldsync::OrgUnit;
    let unit = |id: &str, level, parent: Option<&str>| OrgUnit {
        id: id.into(),
        name: id.into(),
        level,
        parent: parent.map(Into::into),
    };
    let mut units = vec![unit("ht", Level::Province, None)];
    for c in ["ht.a", "ht.b"] {
        units.push(unit(c, Level::Commune, Some("ht")));
        for v in ["1", "2"] {
            units.push(unit(&format!("{c}.{v}"), Level::Village, Some(c)));
        }
    }
    fieldsync::Catalogue::new(demo::indicators(), units).unwrap()
}

#[test]
fn without_districts_the_commune_approves_the_province_accepts_and_totals_add_up() {
    use fieldsync::access::Role;
    use fieldsync::review::{ReviewState, Verdict};
    let store = Store::open(Arc::new(Memory::new()), two_tier).unwrap();
    let catalogue = store.catalogue();
    assert_eq!(catalogue.levels(), [Level::Province, Level::Commune, Level::Village]);
    let user = |id: &str, role, area: &str| User {
        id: id.into(),
        name: id.into(),
        role,
        areas: vec![area.into()],
        disabled: false,
    };
    let (an, commune, province) = (
        user("an", Role::Surveyor, "ht"),
        user("xa", Role::Supervisor, "ht.a"),
        user("tinh", Role::Supervisor, "ht"),
    );
    let mut batch = Vec::new();
    for (i, (village, km)) in
        [("ht.a.1", "1.5"), ("ht.a.2", "2.25"), ("ht.b.1", "4")].iter().enumerate()
    {
        let mut value =
            m(i as u64 + 1, "2026", "road_km", RawValue::Amount((*km).into()), 10 + i as u64);
        value.village_id = (*village).into();
        batch.push(value);
    }
    let results = store.push(&an, device(1), &batch, 0, now_ms()).unwrap();
    assert!(results.iter().all(|r| r.outcome == Outcome::Applied), "{results:?}");

    let subs = vec![("ht.a.1".to_owned(), Period::Year(2026))];
    let refused = |who: &User, verdict, why: &str| {
        let err = store.decide(who, &subs, verdict, "", now_ms()).unwrap_err().to_string();
        assert!(err.contains(why), "{}: {err}", verdict.as_str());
    };
    refused(&province, Verdict::Approve, "approval is the commune's step; the province accepts");
    store.decide(&commune, &subs, Verdict::Approve, "", now_ms()).unwrap();
    refused(&commune, Verdict::Accept, "accepting is the province's step");
    let (decided, _) = store.decide(&province, &subs, Verdict::Accept, "", now_ms()).unwrap();
    assert_eq!(decided[0].state, ReviewState::Accepted);
    refused(&commune, Verdict::Reopen, "only the province can reopen it");

    // The accepted report is locked, and the tablet is told who reopens it.
    let mut edit = batch[0].clone();
    edit.id = 4;
    edit.value = RawValue::Amount("9".into());
    edit.base_version = results[0].current.as_ref().unwrap().version;
    edit.hlc = Hlc(20);
    let late = store.push(&an, device(1), &[edit], 3, now_ms()).unwrap();
    assert!(late[0].reason.contains("accepted by the province and locked"), "{late:?}");

    // Province totals are the communes' sums, with no district between.
    let km = |unit: &str| {
        let totals = store.totals_of(&[unit.to_owned()], Period::Year(2026)).unwrap();
        let road = totals.into_iter().find(|t| t.indicator == "road_km").unwrap();
        (road.cell.approved.to_string(), road.cell.pending.to_string())
    };
    assert_eq!(km("ht.a"), ("1.5".into(), "2.25".into()));
    assert_eq!(km("ht.b"), ("0".into(), "4".into()));
    assert_eq!(km("ht"), ("1.5".into(), "6.25".into()));
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn an_import_adds_all_or_nothing_and_never_changes_a_unit() {
    use fieldsync::access::Role;
    use fieldsync::OrgUnit;
    let store = Store::open(Arc::new(Memory::new()), two_tier).unwrap();
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    let unit = |id: &str, name: &str, level, parent: &str| OrgUnit {
        id: id.into(),
        name: name.into(),
        level,
        parent: Some(parent.into()),
    };
    let before = store.catalogue();
    // A village under a new commune listed after it, and one renamed unit.
    let units = vec![
        unit("ht.c.1", "Thôn 1", Level::Village, "ht.c"),
        unit("ht.c", "Xã C", Level::Commune, "ht"),
        unit("ht.a", "Xã A mới", Level::Commune, "ht"),
    ];
    let units: Vec<_> = units.into_iter().map(|u| (u, None)).collect();
    let err = store.import_catalogue(&admin, units.clone(), vec![], now_ms()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nothing was imported; fix these:\norg unit 3: ht.a is already in the catalogue as \
         commune \"ht.a\" under ht; an import adds units and never changes one"
    );
    assert_eq!(store.catalogue(), before, "nothing changed");

    let imported = store.import_catalogue(&admin, units[..2].to_vec(), vec![], now_ms()).unwrap();
    assert_eq!(imported, Imported { org_units: 2, indicators: 0, unchanged: 0 });
    assert_eq!(store.catalogue().org_unit("ht.c.1").unwrap().parent.as_deref(), Some("ht.c"));
    let again = store.import_catalogue(&admin, units[..2].to_vec(), vec![], now_ms()).unwrap();
    assert_eq!(again, Imported { org_units: 0, indicators: 0, unchanged: 2 });

    // Only admins import; the import is audited.
    let surveyor = User { role: Role::Surveyor, areas: vec!["ht".into()], ..admin.clone() };
    assert!(store.import_catalogue(&surveyor, vec![], vec![], now_ms()).is_err());
    let history = store.history(&admin, &HistoryQuery::default()).unwrap();
    let last = history.iter().rev().find(|e| e.detail.starts_with("imported")).unwrap();
    assert_eq!(last.detail, "imported 2 org unit(s) (1 commune, 1 village) and 0 indicator(s)");

    // The store still checks clean.
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

/// A province with two districts: d1 with communes a, b, c, d2 with e.
fn before_the_restructure() -> fieldsync::Catalogue {
    use fieldsync::OrgUnit;
    let unit = |id: &str, level, parent: Option<&str>| OrgUnit {
        id: id.into(),
        name: format!("N {id}"),
        level,
        parent: parent.map(Into::into),
    };
    let mut units = vec![
        unit("p", Level::Province, None),
        unit("d1", Level::District, Some("p")),
        unit("d2", Level::District, Some("p")),
    ];
    for (commune, district, villages) in [
        ("a", "d1", &["a1", "a2"][..]),
        ("b", "d1", &["b1"]),
        ("c", "d1", &["c1"]),
        ("e", "d2", &["e1"]),
    ] {
        units.push(unit(commune, Level::Commune, Some(district)));
        for v in villages {
            units.push(unit(v, Level::Village, Some(commune)));
        }
    }
    fieldsync::Catalogue::new(demo::indicators(), units).unwrap()
}

#[test]
fn communes_merged_and_districts_removed_keep_every_period_on_its_own_tree() {
    use fieldsync::access::Role;
    use fieldsync::{Date, OrgUnit, TreeChange};
    let engine = Arc::new(Memory::new());
    let store =
        Store::open(Arc::clone(&engine) as Arc<dyn Engine>, before_the_restructure).unwrap();
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    let surveyor = |id: &str, area: &str| User {
        id: id.into(),
        name: id.into(),
        role: Role::Surveyor,
        areas: vec![area.into()],
        disabled: false,
    };
    for user in [surveyor("xa-a", "a"), surveyor("xa-e", "e")] {
        store.create_user(&admin, user, now_ms()).unwrap();
    }
    let mut id = 0;
    let mut push = |village: &str, period: &str, km: &str, base: u64| {
        id += 1;
        let mut value = m(id, period, "road_km", RawValue::Amount(km.into()), 100 + id);
        value.village_id = village.into();
        value.base_version = base;
        let results =
            store.push(&surveyor("an", "p"), device(1), &[value], id - 1, now_ms()).unwrap();
        assert_eq!(results[0].outcome, Outcome::Applied, "{results:?}");
        results[0].current.as_ref().unwrap().version
    };
    let a1_2022 = push("a1", "2022", "1", 0);
    for (village, km) in [("a2", "2"), ("b1", "4"), ("c1", "8"), ("e1", "16")] {
        push(village, "2022", km, 0);
    }

    // 1 July 2025: a, b and c become the new commune abc; the districts go.
    let july = Date::new(2025, 7, 1).unwrap();
    let abc = OrgUnit {
        id: "abc".into(),
        name: "Xã ABC".into(),
        level: Level::Commune,
        parent: Some("d1".into()),
    };
    let merge = TreeChange::Merge {
        units: vec!["a".into(), "b".into(), "c".into()],
        into: "abc".into(),
        new: Some(abc),
    };
    let changed = store.change_tree(&admin, july, &merge, now_ms()).unwrap();
    assert_eq!(changed.users_moved.len(), 1, "the surveyor of a follows it into abc");
    assert_eq!(changed.users_moved[0].0.areas, ["abc"]);
    let districts =
        TreeChange::Merge { units: vec!["d1".into(), "d2".into()], into: "p".into(), new: None };
    store.change_tree(&admin, july, &districts, now_ms()).unwrap();
    assert_eq!(store.catalogue().levels(), [Level::Province, Level::Commune, Level::Village]);

    push("a1", "2026", "0.5", 0);
    push("e1", "2026", "0.25", 0);
    // A late correction of 2022 goes where 2022's report was filed.
    push("a1", "2022", "1.5", a1_2022);

    let km = |unit: &str, period: Period| {
        let totals = store.totals_of(&[unit.to_owned()], period).unwrap();
        totals.into_iter().find(|t| t.indicator == "road_km").unwrap().cell.pending.to_string()
    };
    let (y2022, y2026) = (Period::Year(2022), Period::Year(2026));
    assert_eq!(km("d1", y2022), "15.5", "2022 by its districts, as published (and corrected)");
    assert_eq!(km("d2", y2022), "16");
    assert_eq!(km("a", y2022), "3.5", "and by its old communes");
    assert_eq!(km("p", y2022), "31.5");
    assert_eq!(km("p", y2026), "0.75", "2026 on the two-tier tree");
    assert_eq!(km("abc", y2026), "0.5");
    assert_eq!(km("d1", y2026), "0", "no district holds 2026");
    // 2022 restated under today's communes, village by village.
    let today = store.catalogue().tree_at(Date::new(2026, 1, 1).unwrap()).unwrap();
    let units = ["abc".to_owned(), "e".to_owned(), "p".to_owned()];
    let restated = store.restated_totals(&today, &units, y2022).unwrap();
    let road: Vec<String> = restated
        .iter()
        .filter(|t| t.indicator == "road_km")
        .map(|t| format!("{} {}", t.unit, t.cell.pending))
        .collect();
    assert_eq!(road, ["abc 15.5", "e 16", "p 31.5"]);

    // The surveyor who followed a into abc still lists and pulls a1's 2022 report.
    let xa = store.user("xa-a").unwrap().unwrap();
    let listed = store.list_submissions(&xa, Some("abc"), Some(y2022), None, None, 100).unwrap();
    let villages: Vec<&str> = listed.iter().map(|(h, _, _)| h.village_id.as_str()).collect();
    assert_eq!(villages, ["a1", "a2", "b1", "c1"]);
    let page = store.pull(&xa, 0, 1000).unwrap();
    let pulled: std::collections::BTreeSet<(String, Period)> = page
        .changes
        .iter()
        .filter_map(|(_, c)| match c {
            Change::Field(f) => Some((f.at.village_id.clone(), f.at.period)),
            _ => None,
        })
        .collect();
    assert!(
        pulled.contains(&("a1".into(), y2022)) && pulled.contains(&("a1".into(), y2026)),
        "{pulled:?}"
    );
    assert!(!pulled.iter().any(|(v, _)| v == "e1"), "nothing outside abc: {pulled:?}");

    // A change that would refile a report already made is refused, whole.
    let before = store.catalogue();
    let late = TreeChange::Move { unit: "e1".into(), parent: "abc".into() };
    let err =
        store.change_tree(&admin, Date::new(2026, 1, 1).unwrap(), &late, now_ms()).unwrap_err();
    assert!(err.to_string().contains("N e1 (e1) has a report for 2026"), "{err}");
    assert_eq!(store.catalogue(), before);

    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    // Reopened, the store reads the same tree and its past.
    let reopened = Store::open(engine as Arc<dyn Engine>, demo::catalogue).unwrap();
    assert_eq!(reopened.catalogue(), store.catalogue());
    let old = reopened.catalogue().tree_at(Date::new(2022, 12, 31).unwrap()).unwrap();
    assert_eq!(old.org_unit("a1").unwrap().parent.as_deref(), Some("a"));
}

#[test]
fn units_imported_with_a_valid_from_day_are_in_force_from_it_and_it_is_kept() {
    use fieldsync::access::Role;
    use fieldsync::{Date, OrgUnit};
    let engine = Arc::new(Memory::new());
    let store = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, two_tier).unwrap();
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    let unit = |id: &str, level, parent: &str| OrgUnit {
        id: id.into(),
        name: id.into(),
        level,
        parent: Some(parent.into()),
    };
    let day = |d: &str| d.parse::<Date>().unwrap();
    let july = day("2025-07-01");
    let tomorrow = Date::in_vietnam(now_ms() + 86_400_000);
    let units = vec![
        (unit("ht.n", Level::Commune, "ht"), Some(july)),
        (unit("ht.n.1", Level::Village, "ht.n"), Some(july)),
        (unit("ht.n.2", Level::Village, "ht.n"), Some(tomorrow)),
    ];
    let err = store.import_catalogue(&admin, units.clone(), vec![], now_ms()).unwrap_err();
    assert!(err.to_string().contains("org unit 3: ht.n.2 is valid from"), "{err}");
    assert!(err.to_string().contains("after today"), "{err}");
    // A village in force before its commune is refused too.
    let early = vec![units[0].clone(), (units[1].0.clone(), Some(day("2025-06-01")))];
    let err = store.import_catalogue(&admin, early, vec![], now_ms()).unwrap_err();
    assert!(err.to_string().contains("the tree on 2025-06-01 does not hang together"), "{err}");
    assert!(store.catalogue().org_unit("ht.n").is_none(), "nothing imported");

    let imported = store.import_catalogue(&admin, units[..2].to_vec(), vec![], now_ms()).unwrap();
    assert_eq!(imported.org_units, 2);
    let cat = store.catalogue();
    assert!(cat.tree_at(day("2025-06-30")).unwrap().org_unit("ht.n.1").is_none());
    assert!(cat.tree_at(july).unwrap().org_unit("ht.n.1").is_some());
    let (on, change) = cat.history().changes.last().unwrap();
    assert_eq!(change.describe(*on), "added 2 unit(s) (ht.n, ht.n.1) on 2025-07-01");
    // The same file again changes nothing; another day is refused.
    let again = store.import_catalogue(&admin, units[..2].to_vec(), vec![], now_ms()).unwrap();
    assert_eq!(again.unchanged, 2);
    let moved = vec![(units[0].0.clone(), Some(day("2025-08-01")))];
    let err = store.import_catalogue(&admin, moved, vec![], now_ms()).unwrap_err();
    assert!(err.to_string().contains("already in force from 2025-07-01"), "{err}");
    // Kept across a reopen, audited, and checked.
    let reopened = Store::open(engine as Arc<dyn Engine>, two_tier).unwrap();
    assert!(reopened.catalogue().tree_at(day("2025-06-30")).unwrap().org_unit("ht.n").is_none());
    let history = store.history(&admin, &HistoryQuery::default()).unwrap();
    let last = history.iter().rev().find(|e| e.detail.starts_with("imported")).unwrap();
    assert!(last.detail.contains("2 of them valid from 2025-07-01"), "{}", last.detail);
    assert_eq!(reopened.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_retired_indicator_keeps_its_past_and_takes_no_new_values() {
    use fieldsync::access::Role;
    let engine = Arc::new(Memory::new());
    let store = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap();
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    let done = store
        .push(&surveyor(), device(1), &[km(1, "drainage_km", "2.5", 10)], 0, now_ms())
        .unwrap();
    assert_eq!(done[0].outcome, Outcome::Applied);
    store.retire_indicator(&admin, "drainage_km", Period::Year(2026), now_ms()).unwrap();
    let err =
        store.retire_indicator(&admin, "drainage_km", Period::Year(2027), now_ms()).unwrap_err();
    assert!(err.to_string().contains("retired already, from 2026 on"), "{err}");

    let mut late = km(2, "drainage_km", "1", 11);
    late.period = "2026-Q3".into();
    let refused = store.push(&surveyor(), device(1), &[late], 1, now_ms()).unwrap();
    assert_eq!(refused[0].outcome, Outcome::Rejected, "{refused:?}");
    assert!(refused[0].reason.contains("retired from 2026 on"), "{refused:?}");
    // Earlier periods still take corrections, and their totals stay.
    let mut fix = km(3, "drainage_km", "3", 12);
    fix.base_version = done[0].current.as_ref().unwrap().version;
    assert_eq!(
        store.push(&surveyor(), device(1), &[fix], 2, now_ms()).unwrap()[0].outcome,
        Outcome::Applied
    );
    let totals = store.totals_of(&[demo::PROVINCE.to_owned()], Period::Year(2022)).unwrap();
    let drainage = totals.iter().find(|t| t.indicator == "drainage_km").unwrap();
    assert_eq!(drainage.cell.pending.to_string(), "3");
    // Reopened, the store still knows.
    let reopened = Store::open(engine as Arc<dyn Engine>, demo::catalogue).unwrap();
    assert_eq!(reopened.catalogue().retired_from("drainage_km"), Some(Period::Year(2026)));
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_deployment_sets_its_own_review_chain() {
    use fieldsync::access::Role;
    use fieldsync::review::{Chain, Verdict};
    let store = Store::open(Arc::new(Memory::new()), demo::catalogue).unwrap();
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    let reviewer = |id: &str, area: &str| User {
        id: id.into(),
        name: id.into(),
        role: Role::Supervisor,
        areas: vec![area.into()],
        disabled: false,
    };
    let (commune, district) =
        (reviewer("xa", demo::SAMPLE_COMMUNE), reviewer("huyen", "ha-tinh.huong-khe"));
    store.push(&surveyor(), device(1), &[km(1, "road_km", "1", 10)], 0, now_ms()).unwrap();
    // The district approves and the province accepts, in this deployment.
    let chain = Chain::new(Level::District, Level::Province).unwrap();
    assert!(Chain::new(Level::Province, Level::Commune).is_err(), "approving above accepting");
    store.set_review_chain(&admin, Some(chain), now_ms()).unwrap();
    let subs = vec![(demo::SAMPLE_VILLAGE.to_owned(), Period::Year(2022))];
    let err = store.decide(&commune, &subs, Verdict::Approve, "", now_ms()).unwrap_err();
    assert!(err.to_string().contains("reviews are made at district level and above"), "{err}");
    store.decide(&district, &subs, Verdict::Approve, "", now_ms()).unwrap();
    let err = store.decide(&district, &subs, Verdict::Accept, "", now_ms()).unwrap_err();
    assert!(err.to_string().contains("accepting is the province's step"), "{err}");
    store.decide(&admin, &subs, Verdict::Accept, "", now_ms()).unwrap();
    // Back to the tree's chain: the commune approves again.
    store.set_review_chain(&admin, None, now_ms()).unwrap();
    assert_eq!(store.catalogue().chain(demo::SAMPLE_VILLAGE), Chain::FOUR_LEVELS);
}
