//! Storage engines: ordered key-value trees with atomic, durable multi-tree
//! batches. The server and the client build their stores on [`Engine`]; tests
//! use [`Memory`] (and `Faulty`, a disk that fails on demand, behind the
//! `testing` feature that the crates whose tests use it turn on), production
//! uses [`Sled`]. One conformance suite (`conformance.rs`) runs against all
//! of them. [`ScanIter`] walks a key range lazily, a bounded chunk at a time.

use std::ops::Bound;

#[cfg(any(test, feature = "testing"))]
mod faulty;
#[cfg(any(test, feature = "testing"))]
mod hooked;
mod iter;
mod mark;
mod memory;
mod pieces;
mod sled_engine;
mod snapshot;

#[cfg(any(test, feature = "testing"))]
pub use faulty::Faulty;
#[cfg(any(test, feature = "testing"))]
pub use hooked::Hooked;
pub use iter::ScanIter;
pub use mark::{sync_dir, FILE as MARK_FILE};
pub use memory::Memory;
pub use pieces::entries as sled_entries;
pub use sled_engine::{
    record_damage, Sled, CACHE_BYTES, DAMAGED_FILE, RESTORE, SNAPSHOT_EVERY_BYTES,
};
pub use snapshot::{Scanning, Snapshot};

/// Storage failures: the disk, not the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("storage error: {0}")]
    Other(String),
    /// There is no store where one was expected (a mistyped directory).
    #[error("{0}")]
    NoStore(String),
    /// The files are there but do not hold what was acknowledged: refuse
    /// to serve them and say how to recover.
    #[error("{0}")]
    Damaged(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Key-value pairs, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One write of a batch: a put, or a delete when `value` is `None`;
/// `fresh` when the key never held a value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    tree: &'static str,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    fresh: bool,
}

/// Writes to several trees that land together or not at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Write>,
}

impl Batch {
    pub fn put(&mut self, tree: &'static str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Write { tree, key: key.into(), value: Some(value.into()), fresh: false });
    }

    /// A put of a key that never held a value (the next key of an
    /// append-only tree): the engine need not look for what it held. Were
    /// the key written before after all, what a read returns is the same;
    /// only the old value's space may not be freed.
    pub fn put_new(
        &mut self,
        tree: &'static str,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) {
        self.ops.push(Write { tree, key: key.into(), value: Some(value.into()), fresh: true });
    }

    pub fn delete(&mut self, tree: &'static str, key: impl Into<Vec<u8>>) {
        self.ops.push(Write { tree, key: key.into(), value: None, fresh: false });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Each write in order: its tree, its key, and its value (`None`: a
    /// delete). For engines that wrap another, and for tests that count.
    pub fn writes(&self) -> impl Iterator<Item = (&'static str, &[u8], Option<&[u8]>)> {
        self.ops.iter().map(|w| (w.tree, w.key.as_slice(), w.value.as_deref()))
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The bytes of keys and values the batch writes: what it costs the
    /// disk, before the engine's own overhead.
    pub fn bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|w| (w.tree.len() + 1 + w.key.len() + w.value.as_ref().map_or(0, Vec::len)) as u64)
            .sum()
    }
}

/// The disk an engine writes to: what is left of it, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged writer may still use.
    pub free: u64,
    pub total: u64,
}

/// An ordered key-value store of named trees.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// At most `limit` entries with keys in `(from, to)`, in key order.
    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries>;

    /// At most `limit` entries with keys in `(from, to)`, largest key first:
    /// the newest end of a tree keyed by sequence number. (The default reads
    /// the whole range; both engines here read only what they return.)
    fn scan_rev(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        let mut all = self.scan(tree, from, to, usize::MAX)?;
        let keep = all.len().saturating_sub(limit);
        let mut newest = all.split_off(keep);
        newest.reverse();
        Ok(newest)
    }

    /// The entry with the largest key, if any.
    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// Applies every write of the batch atomically, in order: readers see
    /// all of it or none of it, and a crash keeps all of it or none of it.
    /// It is durable once a later [`Engine::flush`] returns.
    fn write(&self, batch: Batch) -> Result<()>;

    /// Waits until everything written so far is durable on disk.
    fn flush(&self) -> Result<()>;

    /// [`Engine::write`], then [`Engine::flush`].
    fn commit(&self, batch: Batch) -> Result<()> {
        self.write(batch)?;
        self.flush()
    }

    /// A consistent view of `trees` as they are now, to read while writes
    /// go on (a backup); `None` if this engine has none, and then the
    /// caller must keep writers out while it reads.
    fn snapshot(&self, trees: &[&'static str]) -> Result<Option<Box<dyn Snapshot + '_>>> {
        let _ = trees;
        Ok(None)
    }

    /// The disk under the engine, if it writes to one.
    fn space(&self) -> Result<Option<Space>> {
        Ok(None)
    }

    /// Closes the engine and opens it again from what is on disk, dropping
    /// every write that was not flushed. Sled's I/O errors are sticky: once a
    /// write or flush fails (a full disk), this is how it writes again. The
    /// caller makes sure nothing else uses the engine meanwhile.
    fn reopen(&self) -> Result<()> {
        Ok(())
    }
}

/// Entries whose key starts with `prefix`, at most `limit`.
pub fn scan_prefix(
    engine: &dyn Engine,
    tree: &'static str,
    prefix: &[u8],
    limit: usize,
) -> Result<Entries> {
    let end = prefix_end(prefix);
    let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    engine.scan(tree, Bound::Included(prefix), to, limit)
}

/// Whether the range ends before it starts: such a scan is empty (and the
/// engines' own range types would panic on it).
fn inverted(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a > b,
        _ => false,
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`:
/// there is none, every key from `prefix` on starts with it).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn poisoned<T>(_: T) -> Error {
    Error::Other("a previous operation panicked while holding the store".into())
}

#[cfg(test)]
mod conformance;
