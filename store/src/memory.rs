//! [`Memory`]: the in-memory engine tests run on; nothing survives the
//! process.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use crate::{inverted, poisoned, snapshot, Batch, Engine, Entries, Result, Snapshot, Write};

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory engine for tests: nothing survives the process.
#[derive(Debug, Default)]
pub struct Memory {
    pub(crate) trees: RwLock<HashMap<&'static str, Tree>>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `limit` entries of `(from, to)`, in key order or reversed.
    fn range(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
        rev: bool,
    ) -> Result<Entries> {
        let trees = self.trees.read().map_err(poisoned)?;
        let Some(t) = trees.get(tree) else {
            return Ok(Vec::new());
        };
        if inverted(from, to) {
            return Ok(Vec::new());
        }
        let range = t.range((from.map(<[u8]>::to_vec), to.map(<[u8]>::to_vec)));
        let pair = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(match rev {
            false => range.take(limit).map(pair).collect(),
            true => range.rev().take(limit).map(pair).collect(),
        })
    }
}

impl Engine for Memory {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let trees = self.trees.read().map_err(poisoned)?;
        Ok(trees.get(tree).and_then(|t| t.get(key).cloned()))
    }

    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.range(tree, from, to, limit, false)
    }

    fn scan_rev(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.range(tree, from, to, limit, true)
    }

    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let trees = self.trees.read().map_err(poisoned)?;
        Ok(trees.get(tree).and_then(|t| t.last_key_value()).map(|(k, v)| (k.clone(), v.clone())))
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut trees = self.trees.write().map_err(poisoned)?;
        for Write { tree, key, value, .. } in batch.ops {
            let t = trees.entry(tree).or_default();
            match value {
                Some(v) => t.insert(key, v),
                None => t.remove(&key),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn snapshot(&self, names: &[&'static str]) -> Result<Option<Box<dyn Snapshot + '_>>> {
        let trees = self.trees.read().map_err(poisoned)?;
        let copy = names
            .iter()
            .map(|&name| {
                let entries = trees
                    .get(name)
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                (name, entries)
            })
            .collect();
        Ok(Some(Box::new(snapshot::Copied { trees: copy })))
    }
}
