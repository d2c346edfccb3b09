//! The append-only change log: what a write costs, what a pull sends.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use fieldsync::access::{Role, User};
use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{demo, DeviceId, Hlc};
use fieldsync_store::{Batch, Engine, Entries, Memory};

use crate::db::Store;

/// An engine that keeps, for every batch written, how many puts and
/// deletes it made in each tree.
#[derive(Default)]
struct Counting {
    inner: Memory,
    batches: Mutex<Vec<BTreeMap<(&'static str, bool), usize>>>,
}

impl Engine for Counting {
    fn get(&self, tree: &'static str, key: &[u8]) -> fieldsync_store::Result<Option<Vec<u8>>> {
        self.inner.get(tree, key)
    }
    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> fieldsync_store::Result<Entries> {
        self.inner.scan(tree, from, to, limit)
    }
    fn last(&self, tree: &'static str) -> fieldsync_store::Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.inner.last(tree)
    }
    fn write(&self, batch: Batch) -> fieldsync_store::Result<()> {
        let mut counts = BTreeMap::new();
        for (tree, _, value) in batch.writes() {
            *counts.entry((tree, value.is_some())).or_insert(0) += 1;
        }
        self.batches.lock().unwrap().push(counts);
        self.inner.write(batch)
    }
    fn flush(&self) -> fieldsync_store::Result<()> {
        Ok(())
    }
}

fn surveyor() -> User {
    User {
        id: "an".into(),
        name: "An".into(),
        role: Role::Surveyor,
        areas: vec![demo::PROVINCE.into()],
        disabled: false,
    }
}

fn mutation(id: u64, period: &str, field: &str, value: RawValue) -> Mutation {
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

fn device() -> DeviceId {
    DeviceId(uuid::Uuid::from_u128(1))
}

/// One push of a new value of every field of one report (every indicator
/// of the demo catalogue and the note), the number of values, and the
/// per-tree counts of the batch it wrote.
fn one_report_pushed() -> (usize, BTreeMap<(&'static str, bool), usize>) {
    let engine = Arc::new(Counting::default());
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

#[test]
fn records_per_value_today() {
    let (n, counts) = one_report_pushed();
    let total: usize = counts.values().sum();
    panic!("{counts:?} total {total} per value {}", total as f64 / n as f64);
}
