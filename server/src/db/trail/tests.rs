//! The trail's layout: what one push costs it, history paged across a
//! write of many entries, and a store in the earlier layout (one record per
//! entry, result and digest) migrated on open, even after a kill.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fieldsync::access::{Role, User};
use fieldsync::sync::{AuditEntry, Mutation, MutationResult, Outcome, RawValue};
use fieldsync::{demo, DeviceId, Hlc, Period, SubmissionId};
use fieldsync_store::{Batch, Engine, Hooked, Memory};

use super::super::schema::{
    encode, encode_named, retired, CommuneRecord, Key, StoredResult, Write, COMMUNES, DEVICES,
    TRAIL_KEY, TRAIL_PLACE_KEY, TREES, WRITES, WRITES_BY_DEVICE, WRITES_BY_PLACE, WRITES_BY_USER,
};
use super::super::{Error, HistoryQuery, Store};

fn user(id: &str, role: Role) -> User {
    let areas = match role {
        Role::Admin => vec![],
        _ => vec![demo::PROVINCE.into()],
    };
    User { id: id.into(), name: id.to_uppercase(), role, areas, disabled: false }
}

fn device(n: u128) -> DeviceId {
    DeviceId(uuid::Uuid::from_u128(n))
}

/// A note for `village` in 2022, under mutation `id`.
fn note(id: u64, village: &str, text: &str) -> Mutation {
    Mutation {
        id,
        village_id: village.into(),
        period: "2022".into(),
        field: "note".into(),
        value: RawValue::Text(text.into()),
        base_version: 0,
        hlc: Hlc(id),
        author: "An".into(),
    }
}

/// Two villages of the demo's sample commune.
fn villages(store: &Store) -> (String, String) {
    let catalogue = store.catalogue();
    let all = catalogue.units_at(fieldsync::Level::Village, Some(demo::SAMPLE_COMMUNE));
    (all[0].id.clone(), all[1].id.clone())
}

/// Records per tree, over the store's trees and those earlier layouts kept.
fn records_per_tree(engine: &dyn Engine) -> BTreeMap<&'static str, i64> {
    let mut trees: Vec<&'static str> = TREES.to_vec();
    trees.extend(retired::MIGRATED);
    trees.into_iter().map(|t| (t, engine.iter_all(t).count() as i64)).collect()
}

fn moved(
    a: &BTreeMap<&'static str, i64>,
    b: &BTreeMap<&'static str, i64>,
) -> Vec<(&'static str, i64)> {
    a.iter().map(|(t, n)| (*t, b[t] - n)).filter(|(_, d)| *d != 0).collect()
}

/// The trees of the audit trail and of pushes' results, old and new.
fn trail_part(moves: &[(&'static str, i64)]) -> Vec<(&'static str, i64)> {
    let trail = [WRITES, WRITES_BY_USER, WRITES_BY_PLACE, WRITES_BY_DEVICE];
    let trail: Vec<&str> = trail.into_iter().chain(retired::MIGRATED).collect();
    moves.iter().copied().filter(|(t, _)| trail.contains(t)).collect()
}

/// One push of N new values in one report costs the trail one record, the
/// entry by user and the pointer its replays use, whatever N: the report's
/// commune record, rewritten anyway, lists the write; acknowledging the
/// results later costs it nothing. (The earlier layout wrote 4 records per
/// value and, on release, 2 more; the one before this an entry by place.)
#[test]
fn a_push_costs_the_trail_a_record_and_one_per_commune_record_not_one_per_value() {
    for n in [1u64, 10, 200] {
        let engine = Arc::new(Memory::new());
        let store = Store::open(engine.clone(), demo::catalogue).unwrap();
        let (village, _) = villages(&store);
        let notes: Vec<Mutation> = (1..=n).map(|i| note(i, &village, &format!("n{i}"))).collect();
        let surveyor = user("an", Role::Surveyor);
        let before = records_per_tree(engine.as_ref());
        store.push(&surveyor, device(1), &notes, 0, 1).unwrap();
        let pushed = records_per_tree(engine.as_ref());
        let moves = moved(&before, &pushed);
        eprintln!("{n} values, records added per tree: {moves:?}");
        let expected = vec![(WRITES, 1), (WRITES_BY_DEVICE, 1), (WRITES_BY_USER, 1)];
        let mut trail = trail_part(&moves);
        trail.sort();
        assert_eq!(trail, expected, "{n} values");
        assert_eq!(store.audit_of(&village, "2022".parse().unwrap()).unwrap().len(), n as usize);
        store.push(&surveyor, device(1), &[], n, 2).unwrap();
        let released = moved(&pushed, &records_per_tree(engine.as_ref()));
        assert_eq!(trail_part(&released), vec![], "releasing {n} results");
        let replay = store.push(&surveyor, device(1), &notes[..1], n, 3).unwrap();
        assert_eq!(replay[0].outcome, Outcome::Forgotten, "a released result is forgotten");
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
    }
}

/// A store with a push of many entries across two reports between other
/// writes, and one of those reports (its village and period).
pub(in crate::db) fn busy_store(engine: Arc<dyn Engine>) -> (Store, (String, Period)) {
    let store = Store::open(engine, demo::catalogue).unwrap();
    let (a, b) = villages(&store);
    let (admin, an) = (user("admin", Role::Admin), user("an", Role::Surveyor));
    let binh = user("binh", Role::Surveyor);
    store.push(&an, device(1), &[note(1, &a, "first")], 0, 1).unwrap();
    let many: Vec<Mutation> =
        (2..=40).map(|i| note(i, if i % 3 == 0 { &b } else { &a }, &format!("{i}"))).collect();
    store.push(&an, device(1), &many, 1, 2).unwrap();
    let period: Period = "2022".parse().unwrap();
    store.set_period_closed(&admin, demo::SAMPLE_COMMUNE, period, true, 3).unwrap();
    store.set_period_closed(&admin, demo::SAMPLE_COMMUNE, period, false, 4).unwrap();
    store.push(&binh, device(2), &[note(1, &b, "binh"), note(2, &a, "binh")], 0, 5).unwrap();
    (store, (a, period))
}

fn history(store: &Store, query: HistoryQuery) -> Vec<AuditEntry> {
    store.history(&user("admin", Role::Admin), &query).unwrap()
}

/// Pages of `limit` entries either way, with `after` or `before` from the
/// last entry of each page, until an empty page.
fn paged(store: &Store, query: &HistoryQuery, limit: usize, newest_first: bool) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::new();
    loop {
        let cursor = out.last().map_or(0, |e| e.seq);
        let (after, before) = if newest_first { (0, cursor) } else { (cursor, 0) };
        let q = HistoryQuery { limit, newest_first, after, before, ..query.clone() };
        let page = history(store, q);
        assert!(page.len() <= limit);
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[test]
fn history_pages_through_a_write_of_many_entries_either_way() {
    let (store, report) = busy_store(Arc::new(Memory::new()));
    let sub = SubmissionId::of(&report.0, report.1);
    let all = history(&store, HistoryQuery { limit: 10_000, ..Default::default() });
    let head = all.len() as u64;
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>());
    assert!(all.iter().filter(|e| e.at_ms == 2).count() > 30, "one write of many entries");
    let queries = [
        (HistoryQuery::default(), all.clone()),
        (
            HistoryQuery { report: Some(report.clone()), ..Default::default() },
            all.iter().filter(|e| e.submission == Some(sub)).cloned().collect(),
        ),
        (
            HistoryQuery { user_id: Some("an".into()), ..Default::default() },
            all.iter().filter(|e| e.user_id == "an").cloned().collect(),
        ),
    ];
    for (query, expected) in queries {
        assert!(expected.len() > 20, "{query:?}");
        for limit in [1, 4, 7, 13] {
            assert_eq!(paged(&store, &query, limit, false), expected, "{query:?} by {limit}");
            let mut back = paged(&store, &query, limit, true);
            back.reverse();
            assert_eq!(back, expected, "{query:?} newest first by {limit}");
        }
        // A cursor inside the write of many entries reads on from there.
        let mid = expected[expected.len() / 2].seq;
        let after = history(&store, HistoryQuery { after: mid, limit: 10_000, ..query.clone() });
        let later: Vec<AuditEntry> = expected.iter().filter(|e| e.seq > mid).cloned().collect();
        assert_eq!(after, later, "{query:?} after {mid}");
    }
    assert_eq!(
        store.audit_of(&report.0, report.1).unwrap(),
        history(&store, HistoryQuery { report: Some(report), limit: 10_000, ..Default::default() })
    );
}

/// A report named by more writes than its commune record lists: the
/// oldest move to `writes_by_place` together, and its trail still reads
/// whole, in order, either way, in pages; so do a neighbour's, and the
/// refusals filed under a report never made (by place alone).
#[test]
fn a_report_named_by_more_writes_than_its_record_lists_keeps_its_whole_trail() {
    use super::super::schema::MAX_WRITES_KEPT;
    let engine = Arc::new(Memory::new());
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    let (a, b) = villages(&store);
    let an = user("an", Role::Surveyor);
    let n = MAX_WRITES_KEPT as u64 * 2 + 7;
    for id in 1..=n {
        let mut push = vec![note(2 * id - 1, &a, &format!("a{id}"))];
        if id % 5 == 0 {
            push.push(note(2 * id, &b, &format!("b{id}")));
        } else {
            // Refused: no such field. Filed under b's report before it is made.
            push.push(Mutation { field: "no_such_field".into(), ..note(2 * id, &b, "x") });
        }
        store.push(&an, device(1), &push, 0, id).unwrap();
    }
    let indexed = (engine.as_ref() as &dyn Engine).iter_all(WRITES_BY_PLACE).count();
    assert!(indexed > MAX_WRITES_KEPT, "moved to the index by place: {indexed}");
    let all = history(&store, HistoryQuery { limit: 100_000, ..Default::default() });
    for village in [&a, &b] {
        let report = (village.clone(), "2022".parse::<Period>().unwrap());
        let sub = SubmissionId::of(village, report.1);
        let expected: Vec<AuditEntry> =
            all.iter().filter(|e| e.submission == Some(sub)).cloned().collect();
        assert!(expected.len() as u64 >= n, "{village}: {}", expected.len());
        assert_eq!(store.audit_of(village, report.1).unwrap(), expected, "{village}");
        let query = HistoryQuery { report: Some(report), ..Default::default() };
        for limit in [1, 9, 64] {
            assert_eq!(paged(&store, &query, limit, false), expected, "{village} by {limit}");
            let mut back = paged(&store, &query, limit, true);
            back.reverse();
            assert_eq!(back, expected, "{village} newest first by {limit}");
        }
    }
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    // A record listing a write that names none of its reports is named.
    let (key, bytes) = (engine.as_ref() as &dyn Engine).iter_all(COMMUNES).next().unwrap().unwrap();
    let mut record = CommuneRecord::decode(&bytes).unwrap();
    let sub = *record.reports.keys().next().unwrap();
    let first = all.iter().find(|e| e.submission != Some(sub)).unwrap().seq;
    record.writes.insert(0, (first, vec![sub]));
    let mut batch = Batch::default();
    batch.put(COMMUNES, key, record.encode());
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap().join("\n");
    assert!(problems.contains("but no such entry is there"), "{problems}");
}

/// `prefix ‖ 0 ‖ seq`: the key of the earlier layout's audit indexes.
fn old_index(prefix: &[u8], seq: u64) -> Vec<u8> {
    [prefix, &[0], &seq.to_be_bytes()].concat()
}

/// Rewrites a store as it was before commune records listed the writes
/// that named their reports: every write the records list filed in
/// `writes_by_place` instead. Every older layout is built from this one.
pub(in crate::db) fn unlisted(engine: &dyn Engine) {
    let mut batch = Batch::default();
    for entry in engine.iter_all(COMMUNES) {
        let (key, bytes) = entry.unwrap();
        let Key::Commune(commune, period) = Key::decode(COMMUNES, &key).unwrap() else {
            unreachable!()
        };
        let mut record = CommuneRecord::decode(&bytes).unwrap();
        for (seq, subs) in std::mem::take(&mut record.writes) {
            let named = subs.into_iter().collect();
            Key::WriteAtPlace(commune.clone(), period, seq).put(&mut batch, encode_named(&named));
        }
        batch.put(COMMUNES, key, record.encode());
    }
    engine.commit(batch).unwrap();
}

/// Rewrites the trail and the results of a store in the earlier layout:
/// one `audit` record per entry with its two index entries, a `results`
/// record per unreleased result and a `digests` record per released one,
/// device records without the released mark, and no marker.
pub(in crate::db) fn to_old_layout(engine: &dyn Engine) {
    unlisted(engine);
    let mut batch = Batch::default();
    let mut released = BTreeMap::new();
    for entry in engine.iter_all(DEVICES) {
        let (key, bytes) = entry.unwrap();
        let state = super::super::schema::DeviceState::decode(&bytes).unwrap();
        released.insert(key.clone(), state.released_through);
        let old = (state.last_mutation_id, state.last_push_ms, state.owner.as_str());
        batch.put(DEVICES, key, encode(&old));
    }
    for entry in engine.iter_all(WRITES) {
        let (key, bytes) = entry.unwrap();
        let write = Write::decode(&bytes).unwrap();
        for e in &write.entries {
            Key::Audit(e.seq).put(&mut batch, encode(e));
            batch.put(retired::AUDIT_BY_USER, old_index(e.user_id.as_bytes(), e.seq), vec![]);
            if let Some(sub) = e.submission {
                batch.put(retired::AUDIT_BY_SUB, old_index(sub.0.as_bytes(), e.seq), vec![]);
            }
        }
        if let Some(p) = write.push {
            let through = released[&p.device.0.as_bytes().to_vec()];
            for ((digest, result), id) in p.digests.into_iter().zip(p.results).zip(p.first_id..) {
                match id <= through {
                    true => Key::Digest(p.device, id).put(&mut batch, digest.to_vec()),
                    false => Key::Result(p.device, id)
                        .put(&mut batch, encode(&StoredResult { digest, result })),
                }
            }
        }
        batch.delete(WRITES, key);
    }
    for tree in [WRITES_BY_USER, WRITES_BY_PLACE, WRITES_BY_DEVICE] {
        for entry in engine.iter_all(tree) {
            batch.delete(tree, entry.unwrap().0);
        }
    }
    batch.delete(super::super::schema::META, TRAIL_KEY.to_vec());
    batch.delete(super::super::schema::META, TRAIL_PLACE_KEY.to_vec());
    engine.commit(batch).unwrap();
}

/// Every reader's history, and the replays of every mutation sent.
pub(in crate::db) type Answers = (Vec<Vec<AuditEntry>>, Vec<Vec<MutationResult>>);

/// What a store answers that its trail and results decide: every reader's
/// history and the replays of every mutation sent.
pub(in crate::db) fn answers(store: &Store, report: &(String, Period)) -> Answers {
    let queries = [
        HistoryQuery { limit: 10_000, ..Default::default() },
        HistoryQuery { report: Some(report.clone()), limit: 10_000, ..Default::default() },
        HistoryQuery {
            user_id: Some("an".into()),
            newest_first: true,
            limit: 9,
            ..Default::default()
        },
    ];
    let histories = queries.into_iter().map(|q| history(store, q)).collect();
    let (a, b) = villages(store);
    let mut replays = Vec::new();
    let an = user("an", Role::Surveyor);
    let many: Vec<Mutation> = (1..=40)
        .map(|i| match i {
            1 => note(1, &a, "first"),
            _ => note(i, if i % 3 == 0 { &b } else { &a }, &format!("{i}")),
        })
        .collect();
    replays.push(store.push(&an, device(1), &many, 0, 9).unwrap());
    let binh = user("binh", Role::Surveyor);
    replays.push(
        store.push(&binh, device(2), &[note(1, &b, "binh"), note(2, &a, "binh")], 0, 9).unwrap(),
    );
    (histories, replays)
}

/// A different mutation under a used id is refused, released or not.
fn refuses_reused_ids(store: &Store) {
    let (a, _) = villages(store);
    let an = user("an", Role::Surveyor);
    for id in [1, 30] {
        let err = store.push(&an, device(1), &[note(id, &a, "other")], 0, 10).unwrap_err();
        assert!(matches!(err, Error::Reused { last: 40, .. }), "{id}: {err}");
    }
}

#[test]
fn a_store_in_the_earlier_layout_is_migrated_on_open_and_answers_as_before() {
    let engine = Arc::new(Memory::new());
    let (store, sub) = busy_store(engine.clone());
    let before = answers(&store, &sub);
    assert!(before.1[0][..1].iter().all(|r| r.outcome == Outcome::Forgotten));
    assert!(before.1[0][1..].iter().all(|r| r.outcome != Outcome::Forgotten));
    drop(store);
    to_old_layout(engine.as_ref());
    assert!(engine.last(WRITES).unwrap().is_none());
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    for tree in retired::MIGRATED {
        assert!(engine.last(tree).unwrap().is_none(), "{tree} is emptied");
    }
    assert_eq!(answers(&store, &sub), before);
    refuses_reused_ids(&store);
    // New writes go on from the migrated trail.
    let (a, _) = villages(&store);
    let an = user("an", Role::Surveyor);
    let applied = store.push(&an, device(1), &[note(41, &a, "after")], 40, 11).unwrap();
    assert_eq!(applied[0].outcome, Outcome::Applied);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    let replay = store.push(&an, device(1), &[note(41, &a, "after")], 0, 12).unwrap();
    assert_eq!(replay, applied);
}

/// `inner`, failing every write after the first `left`, as a server killed
/// part way through would have stopped writing.
pub(in crate::db) fn dying(inner: Arc<Memory>, left: usize) -> Hooked<AtomicUsize> {
    Hooked::new(inner, AtomicUsize::new(left), |left, _| {
        match left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Ok(()),
            Err(_) => Err(fieldsync_store::Error::Other("killed".into())),
        }
    })
}

/// Copies `trees` of `source` into engines killed after 0, 1, 2, … batches
/// and opens the store on each until an open finishes: after every kill the
/// store opened again (its migration resumed) passes `check` and answers as
/// `before`. Returns how many opens were killed.
pub(in crate::db) fn killed_after_each_batch<T: PartialEq + std::fmt::Debug>(
    source: &Memory,
    trees: &[&'static str],
    before: &T,
    answers: impl Fn(&Store) -> T,
) -> usize {
    let mut killed = 0;
    for left in 0.. {
        let engine = Arc::new(Memory::new());
        let mut copy = Batch::default();
        for tree in trees {
            for entry in (source as &dyn Engine).iter_all(tree) {
                let (key, value) = entry.unwrap();
                copy.put(tree, key, value);
            }
        }
        engine.commit(copy).unwrap();
        let dying = Arc::new(dying(engine.clone(), left));
        if Store::open(dying, demo::catalogue).is_ok() {
            break;
        }
        killed += 1;
        let store = Store::open(engine.clone(), demo::catalogue).unwrap();
        assert_eq!(store.check().unwrap(), Vec::<String>::new(), "killed after {left} batches");
        assert_eq!(&answers(&store), before, "killed after {left} batches");
    }
    killed
}

/// A busy store rewritten by `earlier` into an earlier layout, then opened
/// on copies killed after each batch ([`killed_after_each_batch`]): the
/// store's engine (migrated), its report, what it answered, and how many
/// opens were killed.
fn migrated_after_kills(
    earlier: impl Fn(&Memory),
) -> (Arc<Memory>, (String, Period), Answers, usize) {
    let source = Arc::new(Memory::new());
    let (store, report) = busy_store(source.clone());
    let before = answers(&store, &report);
    drop(store);
    earlier(source.as_ref());
    let trees: Vec<&'static str> = records_per_tree(source.as_ref()).into_keys().collect();
    let killed = killed_after_each_batch(&source, &trees, &before, |s| answers(s, &report));
    (source, report, before, killed)
}

#[test]
fn a_migration_killed_after_any_batch_finishes_when_opened_again() {
    let (_, _, _, killed) = migrated_after_kills(|engine| to_old_layout(engine));
    assert!(killed >= 4, "the migration writes in several batches ({killed})");
}

/// A store whose trail is indexed by report (`writes_by_sub`, as before the
/// index by place) is indexed by place when opened, even when killed after
/// any batch, and answers as before; an index entry lost is named.
#[test]
fn a_trail_indexed_by_report_is_indexed_by_place_when_opened() {
    let (source, report, before, killed) = migrated_after_kills(indexed_by_report);
    assert!(killed >= 2, "the index is built, then the old one emptied ({killed})");
    let store = Store::open(source.clone(), demo::catalogue).unwrap();
    assert!(source.last(retired::WRITES_BY_SUB).unwrap().is_none());
    assert_eq!(answers(&store, &report), before);
    let (first, _) =
        (source.as_ref() as &dyn Engine).iter_all(WRITES_BY_PLACE).next().unwrap().unwrap();
    let mut batch = Batch::default();
    batch.delete(WRITES_BY_PLACE, first);
    source.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert!(problems.iter().any(|p| p.contains("missing from the index by place")), "{problems:?}");
}

/// Rewrites a store's trail index as it was before the index by place:
/// one `writes_by_sub` entry per report a write names, no marker.
fn indexed_by_report(source: &Memory) {
    unlisted(source);
    let mut batch = Batch::default();
    for entry in (source as &dyn Engine).iter_all(WRITES) {
        let (key, bytes) = entry.unwrap();
        let subs: std::collections::BTreeSet<SubmissionId> =
            Write::decode(&bytes).unwrap().entries.iter().filter_map(|e| e.submission).collect();
        for sub in subs {
            batch.put(retired::WRITES_BY_SUB, [sub.0.as_bytes(), &[0][..], &key].concat(), vec![]);
        }
    }
    for entry in (source as &dyn Engine).iter_all(WRITES_BY_PLACE) {
        batch.delete(WRITES_BY_PLACE, entry.unwrap().0);
    }
    batch.delete(super::super::schema::META, TRAIL_PLACE_KEY.to_vec());
    source.commit(batch).unwrap();
}
