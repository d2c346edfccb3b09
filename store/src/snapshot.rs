//! Snapshots: a point-in-time view of some trees, read a chunk at a time
//! while writers go on.
//!
//! sled 0.34 has no snapshots of its own, so [`crate::Sled`] keeps one by
//! copy-on-write: while a snapshot is open, every batch first saves the
//! value each of its keys held (or that it held none) unless the reader
//! has already passed that key; the reader merges those saved values over
//! what it reads. Memory is what the writes during the snapshot touched
//! ahead of the reader, and each saved value is dropped once read past.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::sled_engine::{stored_key, tree_end};
use crate::{Engine, Entries, Result};

/// A consistent view of trees, in the order asked for.
pub trait Snapshot {
    /// The next entries of the next tree that has any, at most about
    /// `limit` of them: `None` once every tree is read.
    fn next_chunk(&mut self, limit: usize) -> Result<Option<(&'static str, Entries)>>;
}

/// What the open snapshot of a sled store still needs saved.
#[derive(Debug)]
pub(crate) struct Capture {
    trees: Vec<&'static str>,
    /// The tree being read (trees before it are done).
    current: usize,
    /// The last stored key read of the current tree.
    passed: Option<Vec<u8>>,
    /// Stored key → its value when the snapshot was taken.
    saved: BTreeMap<Vec<u8>, Option<sled::IVec>>,
}

impl Capture {
    pub(crate) fn new(trees: &[&'static str]) -> Capture {
        Capture { trees: trees.to_vec(), current: 0, passed: None, saved: BTreeMap::new() }
    }

    /// Whether a write of `key` (stored form) in `tree` must save its old
    /// value first: the reader has yet to reach it.
    pub(crate) fn wants(&self, tree: &str, key: &[u8]) -> bool {
        let Some(at) = self.trees.iter().position(|t| *t == tree) else {
            return false;
        };
        if at < self.current {
            return false;
        }
        if at == self.current && self.passed.as_deref().is_some_and(|p| key <= p) {
            return false;
        }
        !self.saved.contains_key(key)
    }

    pub(crate) fn save(&mut self, key: Vec<u8>, old: Option<sled::IVec>) {
        self.saved.insert(key, old);
    }

    /// Reads the next chunk from `db` as it was when the snapshot was
    /// taken. The caller holds the writers' lock, so no batch lands between
    /// reading `db` and merging what was saved.
    pub(crate) fn next_chunk(
        &mut self,
        db: &sled::Db,
        limit: usize,
    ) -> Result<Option<(&'static str, Entries)>> {
        while let Some(&tree) = self.trees.get(self.current) {
            let start = stored_key(tree, &[]);
            let from = match &self.passed {
                Some(p) => Bound::Excluded(p.clone()),
                None => Bound::Included(start.clone()),
            };
            let mut now: BTreeMap<Vec<u8>, Option<sled::IVec>> = BTreeMap::new();
            for entry in db.range((from.clone(), Bound::Excluded(tree_end(tree)))).take(limit) {
                let (k, v) = entry?;
                // The writers' lock is held: no batch lands while this reads.
                let whole = crate::sled_engine::whole(db, &k, &v)?;
                now.insert(k.to_vec(), whole.map(sled::IVec::from));
            }
            let full = now.len() == limit.max(1);
            let upper = match (full, now.keys().next_back()) {
                (true, Some(last)) => Bound::Included(last.clone()),
                _ => Bound::Excluded(tree_end(tree)),
            };
            let read: Vec<Vec<u8>> =
                self.saved.range((from, upper.clone())).map(|(k, _)| k.clone()).collect();
            for key in read {
                let old = self.saved.remove(&key).flatten();
                now.insert(key, old);
            }
            match (full, upper) {
                (true, Bound::Included(last)) => self.passed = Some(last),
                _ => {
                    self.current += 1;
                    self.passed = None;
                }
            }
            let skip = tree.len() + 1;
            let entries: Entries = now
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k[skip..].to_vec(), v.to_vec())))
                .collect();
            if !entries.is_empty() {
                return Ok(Some((tree, entries)));
            }
        }
        Ok(None)
    }
}

/// Trees read through [`Engine::scan`] a chunk at a time: consistent only
/// while nothing writes, for engines without snapshots of their own.
pub struct Scanning<'a> {
    engine: &'a dyn Engine,
    trees: Vec<&'static str>,
    current: usize,
    after: Option<Vec<u8>>,
}

impl<'a> Scanning<'a> {
    pub fn new(engine: &'a dyn Engine, trees: &[&'static str]) -> Self {
        Scanning { engine, trees: trees.to_vec(), current: 0, after: None }
    }
}

impl Snapshot for Scanning<'_> {
    fn next_chunk(&mut self, limit: usize) -> Result<Option<(&'static str, Entries)>> {
        while let Some(&tree) = self.trees.get(self.current) {
            let from = self.after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let chunk = self.engine.scan(tree, from, Bound::Unbounded, limit.max(1))?;
            match chunk.last() {
                Some((last, _)) if chunk.len() == limit.max(1) => self.after = Some(last.clone()),
                _ => {
                    self.current += 1;
                    self.after = None;
                }
            }
            if !chunk.is_empty() {
                return Ok(Some((tree, chunk)));
            }
        }
        Ok(None)
    }
}

/// A snapshot that is a copy (the in-memory engine's).
pub(crate) struct Copied {
    pub(crate) trees: std::collections::VecDeque<(&'static str, Entries)>,
}

impl Snapshot for Copied {
    fn next_chunk(&mut self, limit: usize) -> Result<Option<(&'static str, Entries)>> {
        while let Some((tree, entries)) = self.trees.front_mut() {
            if entries.is_empty() {
                self.trees.pop_front();
                continue;
            }
            let rest = entries.split_off(limit.min(entries.len()));
            let chunk = std::mem::replace(entries, rest);
            return Ok(Some((tree, chunk)));
        }
        Ok(None)
    }
}
