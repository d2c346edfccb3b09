//! [`ScanIter`]: a lazy scan of a key range, read a bounded chunk at a
//! time through [`Engine::scan`], so that walking a whole tree holds one
//! chunk in memory, never the tree.

use std::collections::VecDeque;
use std::ops::Bound;

use crate::{prefix_end, Engine, Result};

/// Entries read per [`Engine::scan`] unless [`ScanIter::chunk`] says otherwise.
pub const CHUNK: usize = 1_024;

/// The entries of a key range in key order (or largest key first), read
/// lazily a chunk at a time.
/// An error ends the iteration after it is returned. Each chunk is one
/// consistent read; entries written between chunks may or may not be seen.
pub struct ScanIter<'a> {
    engine: &'a dyn Engine,
    tree: &'static str,
    /// Where the next chunk starts: the range's start, then just after the
    /// last key read (its end, then just before, when reversed).
    from: Bound<Vec<u8>>,
    to: Bound<Vec<u8>>,
    rev: bool,
    chunk: usize,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl dyn Engine {
    /// The entries of `tree` with keys in `(from, to)`, in key order, read
    /// lazily in chunks of [`CHUNK`] entries.
    pub fn iter(&self, tree: &'static str, from: Bound<&[u8]>, to: Bound<&[u8]>) -> ScanIter<'_> {
        ScanIter {
            engine: self,
            tree,
            from: from.map(<[u8]>::to_vec),
            to: to.map(<[u8]>::to_vec),
            rev: false,
            chunk: CHUNK,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The entries of `tree` with keys in `(from, to)`, largest key first,
    /// read lazily through [`Engine::scan_rev`].
    pub fn iter_rev(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> ScanIter<'_> {
        ScanIter { rev: true, ..self.iter(tree, from, to) }
    }

    /// Every entry of `tree`, in key order, read lazily.
    pub fn iter_all(&self, tree: &'static str) -> ScanIter<'_> {
        self.iter(tree, Bound::Unbounded, Bound::Unbounded)
    }

    /// The entries of `tree` whose key starts with `prefix`, read lazily.
    pub fn iter_prefix(&self, tree: &'static str, prefix: &[u8]) -> ScanIter<'_> {
        let end = prefix_end(prefix);
        let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.iter(tree, Bound::Included(prefix), to)
    }
}

impl ScanIter<'_> {
    /// Reads `entries` per scan from now on (at least one).
    pub fn chunk(mut self, entries: usize) -> Self {
        self.chunk = entries.max(1);
        self
    }

    fn fill(&mut self) -> Result<()> {
        let from = self.from.as_ref().map(Vec::as_slice);
        let to = self.to.as_ref().map(Vec::as_slice);
        let entries = match self.rev {
            false => self.engine.scan(self.tree, from, to, self.chunk)?,
            true => self.engine.scan_rev(self.tree, from, to, self.chunk)?,
        };
        self.done = entries.len() < self.chunk;
        if let Some((last, _)) = entries.last() {
            match self.rev {
                false => self.from = Bound::Excluded(last.clone()),
                true => self.to = Bound::Excluded(last.clone()),
            }
        }
        self.buffer.extend(entries);
        Ok(())
    }
}

impl Iterator for ScanIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}
