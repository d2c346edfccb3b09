//! [`Hooked`]: another engine seen through a hook that every batch passes
//! before it is written, for tests and benches that count batches or stop
//! them part way (a server killed in the middle of a migration).

use std::ops::{Bound, Deref};
use std::sync::Arc;

use crate::{Batch, Engine, Entries, Result, Snapshot, Space};

/// `inner`, with `hook` run on every batch before it is written (an error
/// refuses the batch). The hook's `state` is reachable through the engine.
pub struct Hooked<S> {
    inner: Arc<dyn Engine>,
    state: S,
    hook: fn(&S, &Batch) -> Result<()>,
}

impl<S> Hooked<S> {
    pub fn new(inner: Arc<dyn Engine>, state: S, hook: fn(&S, &Batch) -> Result<()>) -> Self {
        Hooked { inner, state, hook }
    }
}

impl<S> Deref for Hooked<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.state
    }
}

impl<S: Send + Sync + 'static> Engine for Hooked<S> {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(tree, key)
    }

    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.inner.scan(tree, from, to, limit)
    }

    fn scan_rev(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.inner.scan_rev(tree, from, to, limit)
    }

    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.inner.last(tree)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        (self.hook)(&self.state, &batch)?;
        self.inner.write(batch)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn snapshot(&self, trees: &[&'static str]) -> Result<Option<Box<dyn Snapshot + '_>>> {
        self.inner.snapshot(trees)
    }

    fn space(&self) -> Result<Option<Space>> {
        self.inner.space()
    }

    fn reopen(&self) -> Result<()> {
        self.inner.reopen()
    }
}
