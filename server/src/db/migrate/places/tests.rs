//! A store whose reports were found by id through `report_places` gets
//! places in its log and `conflicted` when opened, even when killed after
//! any batch, and answers as before.

use std::sync::Arc;

use fieldsync::access::{Role, User};
use fieldsync::sync::{Change, Conflict};
use fieldsync::{demo, Period};
use fieldsync_store::{Batch, Engine, Memory};

use super::super::super::schema::{
    encode_place, CommuneRecord, Key, LogEntry, PlacedEntry, CHANGES, CHANGES_BY_COMMUNE, COMMUNES,
    CONFLICTED, META, PLACES, PLACES_KEY, TREES,
};
use super::super::super::trail::tests::{busy_store, killed_after_each_batch};
use super::super::super::{Store, SubmissionHeader};
use crate::db::schema::retired;

/// What the places decide: every change a pull sends, through the whole log
/// (an admin) and through one commune's cut (its surveyor), and every
/// conflict and header.
type Answers = (Vec<(u64, Change)>, Vec<(u64, Change)>, Vec<Conflict>, Vec<SubmissionHeader>);

fn pulled(store: &Store, caller: &User) -> Vec<(u64, Change)> {
    let (mut cursor, mut out) = (0, Vec::new());
    loop {
        // Small pages, so that some end inside a commit.
        let page = store.pull(caller, cursor, 7).unwrap();
        out.extend(page.changes);
        cursor = page.cursor;
        if page.caught_up {
            return out;
        }
    }
}

fn answers(store: &Store) -> Answers {
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    let commune = User {
        id: "cu".into(),
        name: "Commune".into(),
        role: Role::Surveyor,
        areas: vec![demo::SAMPLE_COMMUNE.into()],
        disabled: false,
    };
    (
        pulled(store, &admin),
        pulled(store, &commune),
        store.conflicts().unwrap(),
        store.submissions().unwrap(),
    )
}

/// Rewrites a store as it was while `report_places` found reports by id:
/// a place per report, log entries without places, `conflicted` entries
/// empty, no marker.
pub(in crate::db) fn unplaced(engine: &dyn Engine) {
    crate::db::trail::tests::unlisted(engine);
    let mut batch = Batch::default();
    for entry in engine.iter_all(COMMUNES) {
        let (key, value) = entry.unwrap();
        let Key::Commune(commune, period) = Key::decode(COMMUNES, &key).unwrap() else {
            unreachable!()
        };
        for sub in CommuneRecord::decode(&value).unwrap().reports.keys() {
            Key::Place(*sub).put(&mut batch, encode_place(&(commune.clone(), period)));
        }
    }
    for tree in [CHANGES, CHANGES_BY_COMMUNE] {
        for entry in engine.iter_all(tree) {
            let (key, value) = entry.unwrap();
            let (listed, _) = LogEntry::decode(tree, 0, &value).unwrap();
            batch.put(tree, key, listed.encode());
        }
    }
    for entry in engine.iter_all(CONFLICTED) {
        batch.put(CONFLICTED, entry.unwrap().0, Vec::new());
    }
    batch.delete(META, PLACES_KEY.to_vec());
    engine.commit(batch).unwrap();
}

#[test]
fn a_store_that_found_reports_by_id_names_places_when_opened_even_when_killed() {
    let source = Arc::new(Memory::new());
    let (store, _) = busy_store(source.clone());
    let before = answers(&store);
    assert!(!before.2.is_empty(), "the store holds conflicts");
    assert!(!before.1.is_empty(), "the commune's surveyor pulls through its cut");
    drop(store);
    unplaced(source.as_ref());
    let engine = source.as_ref() as &dyn Engine;
    assert!(engine.last(PLACES).unwrap().is_some());
    let trees: Vec<&'static str> = TREES.iter().chain(&retired::MIGRATED).copied().collect();
    let killed = killed_after_each_batch(&source, &trees, &before, answers);
    assert!(killed >= 2, "the entries are rewritten, then the places emptied ({killed})");
    let store = Store::open(source.clone(), demo::catalogue).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(answers(&store), before);
    assert!(engine.last(PLACES).unwrap().is_none(), "report_places is emptied");
    for tree in [CHANGES, CHANGES_BY_COMMUNE] {
        for entry in engine.iter_all(tree) {
            let value = entry.unwrap().1;
            assert!(PlacedEntry::decode(tree, 0, &value).unwrap().is_some(), "{tree}");
        }
    }
}

/// `check` names what a store that skipped the migration would hold: an
/// entry of the log without places, a place left in `report_places`, a
/// conflict listed without its place.
#[test]
fn check_names_a_log_entry_or_conflict_without_its_place_and_a_place_left_over() {
    let engine = Arc::new(Memory::new());
    let (store, _) = busy_store(engine.clone());
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let (key, value) = (engine.as_ref() as &dyn Engine).last(CHANGES).unwrap().unwrap();
    let (listed, _) = LogEntry::decode(CHANGES, 0, &value).unwrap();
    let (conflicted, _) = (engine.as_ref() as &dyn Engine).last(CONFLICTED).unwrap().unwrap();
    let sub = store.submissions().unwrap()[0].id;
    let mut batch = Batch::default();
    batch.put(CHANGES, key, listed.encode());
    batch.put(CONFLICTED, conflicted, Vec::new());
    let period: Period = "2022".parse().unwrap();
    Key::Place(sub).put(&mut batch, encode_place(&(demo::SAMPLE_COMMUNE.into(), period)));
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap().join("\n");
    assert!(problems.contains("no places): the store was not migrated"), "{problems}");
    assert!(problems.contains("report_places still holds entries"), "{problems}");
    assert!(problems.contains("conflicted entry"), "{problems}");
}
