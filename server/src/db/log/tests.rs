//! The append-only change log: what a write costs, what a pull sends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fieldsync::access::{Role, User};
use fieldsync::review::Verdict;
use fieldsync::sync::{Change, Conflict, FieldRef, FieldState, Mutation, Outcome, RawValue};
use fieldsync::{demo, Catalogue, DeviceId, Hlc, Level, Period};
use fieldsync_store::{Batch, Engine, Hooked, Memory};

use crate::db::log::cut_of;
use crate::db::schema::retired::ENTITY_SEQ;
use crate::db::schema::*;
use crate::db::Store;

/// What [`counting`] keeps: for every batch written, how many puts
/// (`true`) and deletes it made in each tree; and how many more writes it
/// lets through before failing every one (a kill in the middle of a
/// migration).
struct Counts {
    batches: Mutex<Vec<BTreeMap<(&'static str, bool), usize>>>,
    writes: AtomicUsize,
}

type Counting = Hooked<Counts>;

/// A new memory engine, counting.
fn counting() -> Counting {
    counting_over(Arc::new(Memory::new()), usize::MAX)
}

/// `inner`, counting, and failing every write after the first `writes`.
fn counting_over(inner: Arc<Memory>, writes: usize) -> Counting {
    let counts = Counts { batches: Mutex::default(), writes: AtomicUsize::new(writes) };
    Hooked::new(inner, counts, |counts, batch| {
        let left = counts.writes.load(Ordering::SeqCst);
        if left == 0 {
            return Err(fieldsync_store::Error::Other("killed".into()));
        }
        counts.writes.store(left - 1, Ordering::SeqCst);
        let mut per_tree = BTreeMap::new();
        for (tree, _, value) in batch.writes() {
            *per_tree.entry((tree, value.is_some())).or_insert(0) += 1;
        }
        counts.batches.lock().unwrap().push(per_tree);
        Ok(())
    })
}

pub(in crate::db) fn surveyor() -> User {
    User {
        id: "an".into(),
        name: "An".into(),
        role: Role::Surveyor,
        areas: vec![demo::PROVINCE.into()],
        disabled: false,
    }
}

pub(in crate::db) fn mutation(id: u64, period: &str, field: &str, value: RawValue) -> Mutation {
    Mutation {
        id,
        village_id: demo::SAMPLE_VILLAGE.into(),
        period: period.into(),
        field: field.into(),
        value,
        base_version: 0,
        hlc: Hlc(id),
        author: "An".into(),
    }
}

pub(in crate::db) fn device() -> DeviceId {
    DeviceId(uuid::Uuid::from_u128(1))
}

/// One push of a new value of every field of one report (every indicator
/// of the demo catalogue and the note), the number of values, and the
/// per-tree counts of the batch it wrote.
fn one_report_pushed() -> (usize, BTreeMap<(&'static str, bool), usize>) {
    let engine = Arc::new(counting());
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    let mut mutations = vec![mutation(1, "2022", "note", RawValue::Text("a note".into()))];
    for code in store.catalogue().indicators.keys() {
        let id = mutations.len() as u64 + 1;
        mutations.push(mutation(id, "2022", code, RawValue::Amount("1".into())));
    }
    engine.batches.lock().unwrap().clear();
    let results = store.push(&surveyor(), device(), &mutations, 0, 1).unwrap();
    assert!(results.iter().all(|r| r.outcome == fieldsync::sync::Outcome::Applied), "{results:?}");
    let batches = engine.batches.lock().unwrap();
    assert_eq!(batches.len(), 1, "one push is one batch");
    (mutations.len(), batches[0].clone())
}

/// Records one push of a new report (13 values) wrote per value when the log
/// moved each entity to its head: 173 records, 42 of them the log's (an
/// entry in the log, one in the commune's cut and an `entity_seq` record
/// for each of the 13 fields and the report's review), measured then.
const RECORDS_PER_VALUE_BEFORE: f64 = 173.0 / 13.0;

#[test]
fn a_push_appends_one_entry_per_commit_and_deletes_nothing_of_the_log() {
    let (n, counts) = one_report_pushed();
    let per_tree = |tree: &str, put: bool| counts.get(&(tree, put)).copied().unwrap_or(0);
    assert_eq!(per_tree(CHANGES, true), 1, "{counts:?}");
    assert_eq!(per_tree(CHANGES_BY_COMMUNE, true), 1, "{counts:?}");
    for tree in [CHANGES, CHANGES_BY_COMMUNE, ENTITY_SEQ] {
        assert_eq!(per_tree(tree, false), 0, "{tree}: {counts:?}");
    }
    assert_eq!(per_tree(ENTITY_SEQ, true), 0, "{counts:?}");
    let total: usize = counts.values().sum();
    let per_value = total as f64 / n as f64;
    assert!(per_value < RECORDS_PER_VALUE_BEFORE - 2.0, "{per_value} per value: {counts:?}");
}

#[test]
fn an_edit_of_every_value_again_deletes_nothing_of_the_log() {
    let engine = Arc::new(counting());
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    let codes: Vec<String> = store.catalogue().indicators.keys().cloned().collect();
    let first: Vec<Mutation> = (0..codes.len())
        .map(|i| mutation(i as u64 + 1, "2022", &codes[i], RawValue::Amount("1".into())))
        .collect();
    let results = store.push(&surveyor(), device(), &first, 0, 1).unwrap();
    let again: Vec<Mutation> = results
        .iter()
        .zip(&codes)
        .map(|(r, code)| {
            let id = r.id + codes.len() as u64;
            let mut m = mutation(id, "2022", code, RawValue::Amount("0".into()));
            m.base_version = r.current.as_ref().unwrap().version;
            m
        })
        .collect();
    engine.batches.lock().unwrap().clear();
    let results = store.push(&surveyor(), device(), &again, 0, 2).unwrap();
    assert!(results.iter().all(|r| r.outcome == Outcome::Applied), "{results:?}");
    let counts = engine.batches.lock().unwrap()[0].clone();
    for tree in [CHANGES, CHANGES_BY_COMMUNE, ENTITY_SEQ] {
        assert_eq!(counts.get(&(tree, false)), None, "{tree}: {counts:?}");
    }
    assert_eq!(counts.get(&(CHANGES, true)), Some(&1), "{counts:?}");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

/// Pulls `caller`'s changes from `cursor` in pages of `limit` until caught
/// up, checking each page's bounds, and returns what they held.
fn pages(store: &Store, caller: &User, mut cursor: u64, limit: usize) -> Vec<(u64, Change)> {
    let mut got = Vec::new();
    for _ in 0..10_000 {
        let page = store.pull(caller, cursor, limit).unwrap();
        assert!(page.changes.len() <= limit, "{} changes in a page of {limit}", page.changes.len());
        assert!(page.cursor >= cursor && page.cursor <= store.durable_head());
        assert!(page.changes.iter().all(|(seq, _)| *seq > cursor && *seq <= page.cursor));
        got.extend(page.changes);
        if page.caught_up {
            return got;
        }
        assert!(page.cursor > cursor, "a page that is not the last moves the cursor");
        cursor = page.cursor;
    }
    panic!("no end of pages");
}

/// Each entity at most once, in sequence order.
fn once_each_in_order(changes: &[(u64, Change)]) {
    let seqs: Vec<u64> = changes.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let mut seen = std::collections::HashSet::new();
    for (_, change) in changes {
        let id = match change {
            Change::Field(f) => format!("f {} {}", f.at.submission, f.at.field),
            Change::Conflict(c) => format!("c {} {}", c.at.submission, c.at.field),
            Change::Review(r) => format!("r {}", r.submission),
        };
        assert!(seen.insert(id.clone()), "{id} twice");
    }
}

#[test]
fn pages_stop_inside_a_commit_and_resume_there() {
    let store = Store::open(Arc::new(Memory::new()), demo::catalogue).unwrap();
    let mut mutations = vec![mutation(1, "2022", "note", RawValue::Text("a note".into()))];
    for code in store.catalogue().indicators.keys() {
        let id = mutations.len() as u64 + 1;
        mutations.push(mutation(id, "2022", code, RawValue::Amount("1".into())));
    }
    store.push(&surveyor(), device(), &mutations, 0, 1).unwrap();
    let whole = store.pull(&surveyor(), 0, 10_000).unwrap();
    assert!(whole.caught_up);
    assert_eq!(whole.changes.len(), mutations.len() + 1, "every value and the report's review");
    let first = store.pull(&surveyor(), 0, 3).unwrap();
    assert_eq!(first.changes.len(), 3);
    assert!(first.cursor < store.head().unwrap() && !first.caught_up, "inside the one commit");
    for limit in [1, 2, 3, 7] {
        assert_eq!(pages(&store, &surveyor(), 0, limit), whole.changes, "pages of {limit}");
    }
}

#[test]
fn a_commit_in_two_communes_is_paged_whole_for_a_caller_of_both() {
    let store = Store::open(Arc::new(Memory::new()), demo::catalogue).unwrap();
    let catalogue = store.catalogue();
    let district = catalogue.lineage(demo::SAMPLE_VILLAGE).find(|u| u.level == Level::District);
    let district = district.unwrap().id.clone();
    let villages = catalogue.units_at(Level::Village, Some(&district));
    let mut chosen: Vec<String> = Vec::new();
    for v in villages {
        let cuts: Vec<String> = chosen.iter().map(|c| cut_of(&catalogue, c)).collect();
        if chosen.len() < 4 && cuts.iter().filter(|c| **c == cut_of(&catalogue, &v.id)).count() < 2
        {
            chosen.push(v.id.clone());
        }
    }
    let communes: std::collections::BTreeSet<String> =
        chosen.iter().map(|v| cut_of(&catalogue, v)).collect();
    assert!(communes.len() >= 2, "{chosen:?}");
    let mutations: Vec<Mutation> = chosen
        .iter()
        .enumerate()
        .flat_map(|(i, v)| {
            ["note", "road_km"].map(|field| {
                let id = (i * 2) as u64 + if field == "note" { 1 } else { 2 };
                let value = match field {
                    "note" => RawValue::Text(v.clone()),
                    _ => RawValue::Amount("2".into()),
                };
                Mutation { village_id: v.clone(), ..mutation(id, "2022", field, value) }
            })
        })
        .collect();
    store.push(&surveyor(), device(), &mutations, 0, 1).unwrap();
    let caller = User { areas: communes.iter().cloned().collect(), ..surveyor() };
    let whole = store.pull(&caller, 0, 10_000).unwrap();
    assert_eq!(whole.changes.len(), chosen.len() * 3, "two values and a review per village");
    once_each_in_order(&whole.changes);
    for limit in [1, 2, 5] {
        assert_eq!(pages(&store, &caller, 0, limit), whole.changes, "pages of {limit}");
    }
}

#[test]
fn an_entity_changed_again_is_sent_once_at_its_latest_change() {
    let store = Store::open(Arc::new(Memory::new()), demo::catalogue).unwrap();
    let first = store.push(&surveyor(), device(), &[mutation(1, "2022", "road_km", km("1"))], 0, 1);
    let v1 = first.unwrap()[0].current.clone().unwrap().version;
    let cursor = store.head().unwrap();
    let mut again = mutation(2, "2022", "road_km", km("2"));
    again.base_version = v1;
    let other = mutation(3, "2022", "note", RawValue::Text("later".into()));
    store.push(&surveyor(), device(), &[again, other], 0, 2).unwrap();
    let whole = store.pull(&surveyor(), 0, 100).unwrap();
    once_each_in_order(&whole.changes);
    let roads: Vec<&FieldState> = whole
        .changes
        .iter()
        .filter_map(|(_, c)| match c {
            Change::Field(f) if f.at.field.as_str() == "road_km" => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(roads.len(), 1, "{:?}", whole.changes);
    assert_eq!(roads[0].value.to_string(), "2");
    assert_eq!(whole.changes.len(), 3, "road, review, note: {:?}", whole.changes);
    // The first listing stays in the log (it only ever grows), skipped.
    assert_eq!(store.engine.iter_all(CHANGES).count(), 2);
    let since = store.pull(&surveyor(), cursor, 100).unwrap();
    assert_eq!(since.changes.len(), 2, "{:?}", since.changes);
    for limit in [1, 2] {
        assert_eq!(pages(&store, &surveyor(), 0, limit), whole.changes, "pages of {limit}");
    }
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

/// The version of the sample village's road_km of 2022 (`or` if none).
fn version_of(store: &Store, or: u64) -> u64 {
    let road = fieldsync::FieldKey::parse("road_km");
    let field =
        store.field(&FieldRef::new(demo::SAMPLE_VILLAGE, Period::Year(2022), road)).unwrap();
    field.map_or(or, |f| f.version)
}

fn km(v: &str) -> RawValue {
    RawValue::Amount(v.into())
}

/// A store with values in two communes, a value changed twice, a conflict
/// and a review decision, on an engine the caller keeps.
pub(in crate::db) fn history(engine: Arc<dyn Engine>) -> Store {
    let store = Store::open(engine, demo::catalogue).unwrap();
    let catalogue = store.catalogue();
    let other = catalogue
        .units_at(Level::Village, None)
        .into_iter()
        .find(|v| cut_of(&catalogue, &v.id) != cut_of(&catalogue, demo::SAMPLE_VILLAGE))
        .unwrap()
        .id
        .clone();
    let there = |id, field: &str, value| Mutation {
        village_id: other.clone(),
        ..mutation(id, "2022", field, value)
    };
    let a = [mutation(1, "2022", "road_km", km("3")), there(2, "road_km", km("4"))];
    store.push(&surveyor(), device(), &a, 0, 1).unwrap();
    let b = [mutation(3, "2022", "note", RawValue::Text("n".into())), there(4, "note", km("5"))];
    let b = [b[0].clone(), Mutation { value: RawValue::Text("m".into()), ..b[1].clone() }];
    store.push(&surveyor(), device(), &b, 0, 2).unwrap();
    // Another tablet's value of the same field, on the same base: a conflict.
    let c = Mutation { hlc: Hlc(50), ..there(1, "road_km", km("6")) };
    let r = store.push(&surveyor(), DeviceId(uuid::Uuid::from_u128(2)), &[c], 0, 3).unwrap();
    assert_eq!(r[0].outcome, Outcome::Conflict, "{r:?}");
    let supervisor = User {
        id: "binh".into(),
        name: "Bình".into(),
        role: Role::Supervisor,
        areas: vec![demo::SAMPLE_COMMUNE.into()],
        disabled: false,
    };
    let village = (demo::SAMPLE_VILLAGE.to_owned(), Period::Year(2022));
    store.decide(&supervisor, &[village], Verdict::Approve, "", 4).unwrap();
    let d = [mutation(5, "2022", "road_km", km("7")), there(6, "note", RawValue::Text("o".into()))];
    let d = [Mutation { base_version: version_of(&store, 0), ..d[0].clone() }, d[1].clone()];
    store.push(&surveyor(), device(), &d, 0, 5).unwrap();
    store
}

/// Rewrites the store on `engine` in the layout that moved each entity to
/// the head of the log: one entry per entity at its latest change (in the
/// log and its commune's cut), `entity_seq` pointing at it, conflicts and
/// headers without the number of their latest change, no `log` marker.
pub(in crate::db) fn write_old_layout(engine: &dyn Engine, catalogue: &Catalogue) {
    crate::db::migrate::write_per_record_layout(engine);
    let mut batch = Batch::default();
    for tree in [CHANGES, CHANGES_BY_COMMUNE] {
        for entry in engine.iter_all(tree) {
            batch.delete(tree, entry.unwrap().0);
        }
    }
    let mut latest = Vec::new();
    for entry in engine.iter_all(FIELDS) {
        let f: FieldState = decode(FIELDS, &entry.unwrap().1).unwrap();
        latest.push((f.version, Entity::Field(f.at.submission, f.at.field), f.at.village_id));
    }
    for entry in engine.iter_all(CONFLICTS) {
        let (key, value) = entry.unwrap();
        let (c, seq) = decode_with_seq::<Conflict>(CONFLICTS, &value).unwrap();
        batch.put(CONFLICTS, key, encode(&c));
        latest.push((seq.unwrap(), Entity::Conflict(c.at.submission, c.at.field), c.at.village_id));
    }
    for entry in engine.iter_all(SUBMISSIONS) {
        let (key, value) = entry.unwrap();
        let (h, seq) = decode_with_seq::<SubmissionHeader>(SUBMISSIONS, &value).unwrap();
        batch.put(SUBMISSIONS, key, encode(&h));
        latest.push((seq.unwrap(), Entity::Review(h.id), h.village_id));
    }
    for (seq, entity, village) in latest {
        Key::Change(seq).put(&mut batch, entity.key());
        Key::CommuneChange(cut_of(catalogue, &village), seq).put(&mut batch, entity.key());
        batch.put(ENTITY_SEQ, entity.key(), seq.to_be_bytes());
    }
    batch.delete(META, LOG_KEY.to_vec());
    engine.commit(batch).unwrap();
}

/// What `caller` pulls from every cursor up to the head, in one page.
pub(in crate::db) fn from_every_cursor(store: &Store, caller: &User) -> Vec<Vec<(u64, Change)>> {
    (0..=store.durable_head())
        .map(|cursor| {
            let page = store.pull(caller, cursor, 10_000).unwrap();
            assert!(page.caught_up);
            page.changes
        })
        .collect()
}

fn readers(store: &Store) -> Vec<User> {
    let commune = cut_of(&store.catalogue(), demo::SAMPLE_VILLAGE);
    vec![surveyor(), User { areas: vec![commune], ..surveyor() }]
}

#[test]
fn a_store_in_the_old_layout_is_migrated_on_open_and_pulls_the_same() {
    let memory = Arc::new(Memory::new());
    let store = history(memory.clone());
    let expected: Vec<_> = readers(&store).iter().map(|u| from_every_cursor(&store, u)).collect();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    write_old_layout(memory.as_ref(), &store.catalogue());
    drop(store);
    assert!(memory.last(ENTITY_SEQ).unwrap().is_some());
    let engine = Arc::new(counting_over(memory.clone(), usize::MAX));
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert!(memory.last(ENTITY_SEQ).unwrap().is_none(), "entity_seq emptied");
    for (caller, expected) in readers(&store).iter().zip(&expected) {
        assert_eq!(&from_every_cursor(&store, caller), expected);
        for limit in [1, 2] {
            assert_eq!(pages(&store, caller, 0, limit), expected[0], "pages of {limit}");
        }
    }
    // Writing on goes on from where the old log stood.
    let more = mutation(7, "2023", "note", RawValue::Text("after".into()));
    store.push(&surveyor(), device(), &[more], 0, 9).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_migration_killed_at_any_batch_resumes_when_opened_again() {
    let source = Arc::new(Memory::new());
    let store = history(source.clone());
    let expected = from_every_cursor(&store, &surveyor());
    write_old_layout(source.as_ref(), &store.catalogue());
    let mut killed = 0;
    for writes in 0.. {
        let memory = Arc::new(Memory::new());
        let mut copy = Batch::default();
        for tree in TREES.iter().chain(&retired::MIGRATED).chain([&ENTITY_SEQ]) {
            for entry in (source.as_ref() as &dyn Engine).iter_all(tree) {
                let (key, value) = entry.unwrap();
                copy.put(tree, key, value);
            }
        }
        memory.commit(copy).unwrap();
        let dying = Arc::new(counting_over(memory.clone(), writes));
        if Store::open(dying, demo::catalogue).is_ok() {
            break;
        }
        killed += 1;
        let store = Store::open(Arc::new(counting_over(memory, usize::MAX)), demo::catalogue);
        let store = store.unwrap();
        assert_eq!(store.check().unwrap(), Vec::<String>::new(), "killed after {writes} batches");
        assert_eq!(from_every_cursor(&store, &surveyor()), expected, "after {writes} batches");
    }
    assert!(killed >= 3, "the migration writes in several batches ({killed})");
}

#[test]
fn check_names_a_change_missing_from_the_log_and_a_commune_cut_that_differs() {
    let memory = Arc::new(Memory::new());
    let store = history(memory.clone());
    let (seq, changes) = (memory.as_ref() as &dyn Engine)
        .iter_all(CHANGES)
        .map(|e| {
            let (key, value) = e.unwrap();
            let seq = read_u64(CHANGES, &key).unwrap();
            (seq, PlacedEntry::decode(CHANGES, seq, &value).unwrap().unwrap().changes())
        })
        .filter(|(_, changes)| changes.len() >= 2)
        .last()
        .unwrap();
    let mut batch = Batch::default();
    Key::Change(seq).put(&mut batch, PlacedEntry::of(changes[1..].to_vec()).encode());
    memory.commit(batch).unwrap();
    let problems = store.check().unwrap().join("\n");
    assert!(problems.contains("is not listed in the change log"), "{problems}");
    assert!(problems.contains("is not the log's changes of that commune"), "{problems}");
    assert!(problems.contains("the commune cuts of the change log list"), "{problems}");
}
