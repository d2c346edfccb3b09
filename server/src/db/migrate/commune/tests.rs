//! The move of reports into commune records: a store in the layout with a
//! record per field, conflict and header migrates on open, even after a
//! kill at any batch, and answers as it did.

use std::sync::Arc;

use fieldsync::sync::{Change, Conflict, FieldState, RawValue};
use fieldsync::{demo, Level};
use fieldsync_store::{Batch, Engine, Memory};

use crate::db::log::tests::{device, from_every_cursor, history, mutation, surveyor};
use crate::db::schema::*;
use crate::db::trail::tests::killed_after_each_batch;
use crate::db::Store;

/// Rewrites the store on `engine` in the layout before commune records:
/// each report's header, fields and conflicts a record of their own
/// (headers and conflicts followed by the number of their latest change),
/// no places, no conflict listings, no `communes` marker.
pub(in crate::db) fn write_per_record_layout(engine: &dyn Engine) {
    // The layout before commune records had no places in its log either.
    crate::db::migrate::unplaced(engine);
    let mut batch = Batch::default();
    for entry in engine.iter_all(COMMUNES) {
        let (key, value) = entry.unwrap();
        for (sub, report) in CommuneRecord::decode(&value).unwrap().reports {
            let header = with_seq(encode(&report.header), report.header_seq);
            Key::Submission(sub).put(&mut batch, header);
            for state in report.fields() {
                Key::Field(sub, state.at.field.clone()).put(&mut batch, encode(&state));
            }
            for (field, (conflict, seq)) in &report.conflicts {
                Key::Conflict(sub, field.clone()).put(&mut batch, with_seq(encode(conflict), *seq));
            }
        }
        batch.delete(COMMUNES, key);
    }
    for entry in engine.iter_all(HISTORY) {
        let (key, value) = entry.unwrap();
        let Key::History(commune, period, _) = Key::decode(HISTORY, &key).unwrap() else {
            unreachable!()
        };
        for r in decode_history(&value).unwrap() {
            let record = Key::Commune(commune.clone(), period).get(engine).unwrap().unwrap();
            let record = CommuneRecord::decode(&record).unwrap();
            let state = record.reports[&r.sub].revision(&r);
            Key::Revision(r.sub, r.field, r.held.version).put(&mut batch, encode(&state));
        }
        batch.delete(HISTORY, key);
    }
    for tree in [PLACES, CONFLICTED] {
        for entry in engine.iter_all(tree) {
            batch.delete(tree, entry.unwrap().0);
        }
    }
    batch.delete(META, COMMUNE_KEY.to_vec());
    engine.commit(batch).unwrap();
}

/// [`history`] with reports in a dozen more villages, so the move takes
/// several batches.
fn many_reports(engine: Arc<dyn Engine>) -> Store {
    let store = history(engine);
    let catalogue = store.catalogue();
    let villages = catalogue.units_at(Level::Village, None);
    let pushes: Vec<_> = villages
        .iter()
        .take(12)
        .enumerate()
        .map(|(i, v)| fieldsync::sync::Mutation {
            village_id: v.id.clone(),
            ..mutation(7 + i as u64, "2023", "note", RawValue::Text(format!("n{i}")))
        })
        .collect();
    store.push(&surveyor(), device(), &pushes, 0, 10).unwrap();
    store
}

/// Everything a user can read of the store's reports.
type Answers = (
    Vec<SubmissionHeader>,
    Vec<(Vec<FieldState>, Vec<Conflict>)>,
    Vec<Vec<FieldState>>,
    Vec<Vec<(u64, Change)>>,
);

fn answers(store: &Store) -> Answers {
    let headers = store.submissions().unwrap();
    let each = headers
        .iter()
        .map(|h| {
            let (village, period) = (&h.village_id, h.period);
            (
                store.fields_of(village, period).unwrap(),
                store.conflicts_of(village, period).unwrap(),
            )
        })
        .collect();
    let revisions = headers
        .iter()
        .flat_map(|h| store.fields_of(&h.village_id, h.period).unwrap())
        .map(|f| store.revisions(&f.at).unwrap())
        .collect();
    (headers, each, revisions, from_every_cursor(store, &surveyor()))
}

#[test]
fn a_store_with_a_record_per_field_is_moved_into_commune_records_and_answers_the_same() {
    let memory = Arc::new(Memory::new());
    let store = many_reports(memory.clone());
    let before = answers(&store);
    assert!(before.0.len() > 12, "{} reports", before.0.len());
    drop(store);
    write_per_record_layout(memory.as_ref());
    assert!(memory.last(FIELDS).unwrap().is_some());
    let store = Store::open(memory.clone(), demo::catalogue).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(answers(&store), before);
    for tree in [FIELDS, CONFLICTS, SUBMISSIONS, REVISIONS] {
        assert!(memory.last(tree).unwrap().is_none(), "{tree} emptied");
    }
    // Writing goes on in the new layout.
    let more = mutation(19, "2024", "note", RawValue::Text("after".into()));
    store.push(&surveyor(), device(), &[more], 0, 11).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_move_into_commune_records_killed_after_any_batch_finishes_when_opened_again() {
    let source = Arc::new(Memory::new());
    let store = many_reports(source.clone());
    let before = answers(&store);
    drop(store);
    write_per_record_layout(source.as_ref());
    let trees: Vec<&'static str> = TREES.iter().chain(&retired::MIGRATED).copied().collect();
    let killed = killed_after_each_batch(&source, &trees, &before, answers);
    assert!(killed >= 4, "the move writes in several batches ({killed})");
}

#[test]
fn check_names_a_report_missing_from_its_commune_record_and_a_value_filed_past_its_field() {
    let memory = Arc::new(Memory::new());
    let store = many_reports(memory.clone());
    let (key, value) = (memory.as_ref() as &dyn Engine).iter_all(COMMUNES).next().unwrap().unwrap();
    let mut record = CommuneRecord::decode(&value).unwrap();
    let (&dropped, _) = record.reports.iter().next().unwrap();
    record.reports.remove(&dropped).unwrap();
    let mut batch = Batch::default();
    batch.put(COMMUNES, key, record.encode());
    let (place, sub, report) = (memory.as_ref() as &dyn Engine)
        .iter_all(COMMUNES)
        .flat_map(|e| {
            let (key, value) = e.unwrap();
            let Key::Commune(commune, period) = Key::decode(COMMUNES, &key).unwrap() else {
                unreachable!()
            };
            let reports = CommuneRecord::decode(&value).unwrap().reports;
            reports.into_iter().map(move |(sub, r)| ((commune.clone(), period), sub, r))
        })
        .find(|(_, sub, _)| *sub != dropped)
        .unwrap();
    // A value filed as replaced at a version the field has not reached.
    let (field, held) = report.fields.iter().next().unwrap();
    let mut ahead = held.clone();
    ahead.version += 1_000;
    let revision = Revision { sub, field: field.clone(), held: ahead };
    let at = Key::History(place.0.clone(), place.1, u64::MAX);
    at.put(&mut batch, encode_history(&[revision]));
    memory.commit(batch).unwrap();
    let problems = store.check().unwrap().join("\n");
    assert!(problems.contains("does not hold it"), "{problems}");
    assert!(problems.contains("is past the field's current version"), "{problems}");
}
