//! Storage engines: ordered key-value trees with atomic, durable multi-tree
//! batches. The server and the client build their stores on [`Engine`]; tests
//! use [`Memory`], production uses [`Sled`]. One conformance suite runs
//! against both.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

/// Storage failures: the disk, not the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("storage error: {0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Key-value pairs, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One write of a batch: a put, or a delete when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    tree: &'static str,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// Writes to several trees that land together or not at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Write>,
}

impl Batch {
    pub fn put(&mut self, tree: &'static str, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Write { tree, key: key.into(), value: Some(value.into()) });
    }

    pub fn delete(&mut self, tree: &'static str, key: impl Into<Vec<u8>>) {
        self.ops.push(Write { tree, key: key.into(), value: None });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
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

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory engine for tests: nothing survives the process.
#[derive(Debug, Default)]
pub struct Memory {
    trees: RwLock<HashMap<&'static str, Tree>>,
}

impl Memory {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Other("a previous operation panicked while holding the store".into())
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
        let trees = self.trees.read().map_err(poisoned)?;
        let Some(t) = trees.get(tree) else {
            return Ok(Vec::new());
        };
        if inverted(from, to) {
            return Ok(Vec::new());
        }
        let range = (from.map(<[u8]>::to_vec), to.map(<[u8]>::to_vec));
        Ok(t.range(range).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let trees = self.trees.read().map_err(poisoned)?;
        Ok(trees.get(tree).and_then(|t| t.last_key_value()).map(|(k, v)| (k.clone(), v.clone())))
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut trees = self.trees.write().map_err(poisoned)?;
        for Write { tree, key, value } in batch.ops {
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
}

/// The production engine: an embedded sled database in one directory.
///
/// Every named tree lives in sled's one default tree, its keys prefixed by
/// `name ‖ 0`, so that a batch touching many trees is one `apply_batch`:
/// atomic, and several times cheaper than a sled transaction across trees.
/// (Tree names are plain words without a zero byte, so the prefixes never
/// overlap.)
pub struct Sled {
    /// `None` only while [`Engine::reopen`] runs, or after it failed.
    db: RwLock<Option<sled::Db>>,
    dir: PathBuf,
}

/// The most sled keeps cached in memory (its default is 1 GiB; the process
/// then grows to several times that on a large store).
pub const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Marks a database in this layout (its key sorts before every tree's).
const LAYOUT_KEY: &[u8] = b"\0layout";

/// `tree ‖ 0 ‖ key`.
fn stored_key(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(tree.len() + 1 + key.len());
    k.extend_from_slice(tree.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// The first key after every key of `tree`: `tree ‖ 1`.
fn tree_end(tree: &str) -> Vec<u8> {
    let mut k = tree.as_bytes().to_vec();
    k.push(1);
    k
}

impl Sled {
    /// Opens (creating if needed) the database in `dir`. A database that was
    /// just closed in this process may hold its file lock for a moment while
    /// sled's background thread winds down; that is waited out, briefly.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Self::open_db(dir)?;
        absorb_named_trees(&db)?;
        Ok(Sled { db: RwLock::new(Some(db)), dir: dir.to_owned() })
    }

    fn open_db(dir: &Path) -> Result<sled::Db> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open() {
                Ok(db) => return Ok(db),
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The open database, for one operation.
    fn db(&self) -> Result<sled::Db> {
        let db = self.db.read().map_err(poisoned)?;
        db.clone().ok_or_else(|| {
            Error::Other(format!(
                "the store in {} is closed: reopening it after a failed write did not succeed",
                self.dir.display()
            ))
        })
    }
}

/// Moves the records of a database written with one sled tree per named
/// tree (the earlier layout) into the prefixed default tree. Each tree
/// is copied in one batch, flushed, then dropped, so an interrupted move
/// simply resumes on the next open.
fn absorb_named_trees(db: &sled::Db) -> Result<()> {
    const CHUNK: usize = 10_000;
    let default = db.name();
    let named: Vec<_> = db.tree_names().into_iter().filter(|n| *n != default).collect();
    if db.get(LAYOUT_KEY)?.is_some() {
        match named.iter().find(|n| db.open_tree(n).is_ok_and(|t| !t.is_empty())) {
                None => return Ok(()),
                Some(n) => {
                    return Err(Error::Other(format!(
                        "this database has records in a separate tree {:?} as well as in the                          current layout: an older fieldsync wrote to it after it was moved;                          restore it from a backup",
                        String::from_utf8_lossy(n)
                    )))
                }
            }
    }
    for name in named {
        let tree = db.open_tree(&name)?;
        let mut batch = sled::Batch::default();
        let mut held = 0;
        for entry in tree.iter() {
            let (k, v) = entry?;
            let mut key = name.to_vec();
            key.push(0);
            key.extend_from_slice(&k);
            batch.insert(key, v);
            held += 1;
            if held == CHUNK {
                db.apply_batch(std::mem::take(&mut batch))?;
                held = 0;
            }
        }
        db.apply_batch(batch)?;
        db.flush()?;
        db.drop_tree(&name)?;
        db.flush()?;
    }
    db.insert(LAYOUT_KEY, &b"one tree"[..])?;
    db.flush()?;
    Ok(())
}

impl Engine for Sled {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db()?.get(stored_key(tree, key))?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        if inverted(from, to) {
            return Ok(Vec::new());
        }
        let from = match from {
            Bound::Included(k) => Bound::Included(stored_key(tree, k)),
            Bound::Excluded(k) => Bound::Excluded(stored_key(tree, k)),
            Bound::Unbounded => Bound::Included(stored_key(tree, &[])),
        };
        let to = match to {
            Bound::Included(k) => Bound::Included(stored_key(tree, k)),
            Bound::Excluded(k) => Bound::Excluded(stored_key(tree, k)),
            Bound::Unbounded => Bound::Excluded(tree_end(tree)),
        };
        let skip = tree.len() + 1;
        self.db()?
            .range((from, to))
            .take(limit)
            .map(|r| r.map(|(k, v)| (k[skip..].to_vec(), v.to_vec())).map_err(Error::from))
            .collect()
    }

    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let range = stored_key(tree, &[])..tree_end(tree);
        let skip = tree.len() + 1;
        Ok(self
            .db()?
            .range(range)
            .next_back()
            .transpose()?
            .map(|(k, v)| (k[skip..].to_vec(), v.to_vec())))
    }

    fn write(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut writes = sled::Batch::default();
        for Write { tree, key, value } in batch.ops {
            let key = stored_key(tree, &key);
            match value {
                Some(v) => writes.insert(key, v),
                None => writes.remove(key),
            }
        }
        Ok(self.db()?.apply_batch(writes)?)
    }

    fn flush(&self) -> Result<()> {
        self.db()?.flush()?;
        Ok(())
    }

    fn space(&self) -> Result<Option<Space>> {
        space_of(&self.dir)
    }

    fn reopen(&self) -> Result<()> {
        let mut db = self.db.write().map_err(poisoned)?;
        // The old database must be gone (its file lock released) before the
        // directory is opened again.
        drop(db.take());
        *db = Some(Self::open_db(&self.dir)?);
        Ok(())
    }
}

/// The free and total bytes of the file system holding `dir`.
#[cfg(unix)]
fn space_of(dir: &Path) -> Result<Option<Space>> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| {
        Error::Other(format!("cannot read the free space of {}: {e}", dir.display()))
    })?;
    Ok(Some(Space {
        free: stat.f_bavail.saturating_mul(stat.f_frsize),
        total: stat.f_blocks.saturating_mul(stat.f_frsize),
    }))
}

#[cfg(not(unix))]
fn space_of(_dir: &Path) -> Result<Option<Space>> {
    Ok(None)
}

/// An in-memory engine whose disk can fail, for tests of what a store does
/// when a write or a flush fails. It keeps what was flushed apart from what
/// was only written, as a real disk does: a failure is sticky, as sled's
/// I/O errors are (every later write and flush fails too), until
/// [`Engine::reopen`], which drops what was not flushed. Its free space is
/// whatever the test sets.
#[derive(Debug, Default)]
pub struct Faulty {
    /// What readers see: everything written.
    live: Memory,
    /// What survives a reopen: everything flushed.
    disk: Memory,
    /// Written since the last flush, in order.
    unflushed: Mutex<Vec<Batch>>,
    /// The disk refuses writes (it is full).
    full: AtomicBool,
    /// A write or flush failed; nothing more is written until reopened.
    stuck: AtomicBool,
    space: Mutex<Option<Space>>,
}

impl Faulty {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on every write and flush fails, and so does reopening.
    pub fn fill(&self) {
        self.full.store(true, Ordering::SeqCst);
    }

    /// The disk takes writes again (space was freed); the engine still
    /// fails until it is reopened if a write or flush failed meanwhile.
    pub fn free(&self) {
        self.full.store(false, Ordering::SeqCst);
    }

    /// What [`Engine::space`] reports from now on.
    pub fn set_space(&self, space: Option<Space>) {
        *self.space.lock().unwrap_or_else(|e| e.into_inner()) = space;
    }

    fn refuse(&self) -> Result<()> {
        if self.full.load(Ordering::SeqCst) {
            self.stuck.store(true, Ordering::SeqCst);
        }
        match self.stuck.load(Ordering::SeqCst) {
            true => Err(Error::Other("No space left on device (os error 28)".into())),
            false => Ok(()),
        }
    }
}

impl Engine for Faulty {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.live.get(tree, key)
    }

    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Entries> {
        self.live.scan(tree, from, to, limit)
    }

    fn last(&self, tree: &'static str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.live.last(tree)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        self.refuse()?;
        self.live.write(batch.clone())?;
        unflushed.push(batch);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        self.refuse()?;
        for batch in unflushed.drain(..) {
            self.disk.write(batch)?;
        }
        Ok(())
    }

    fn space(&self) -> Result<Option<Space>> {
        Ok(*self.space.lock().map_err(poisoned)?)
    }

    fn reopen(&self) -> Result<()> {
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        if self.full.load(Ordering::SeqCst) {
            return Err(Error::Other("No space left on device (os error 28)".into()));
        }
        let disk = self.disk.trees.read().map_err(poisoned)?.clone();
        *self.live.trees.write().map_err(poisoned)? = disk;
        unflushed.clear();
        self.stuck.store(false, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod conformance {
    //! The same expectations of every engine.

    use super::*;

    fn engines() -> Vec<(&'static str, Box<dyn Engine>, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let sled = Sled::open(dir.path()).unwrap();
        vec![
            ("memory", Box::new(Memory::new()), None),
            ("faulty", Box::new(Faulty::new()), None),
            ("sled", Box::new(sled), Some(dir)),
        ]
    }

    #[test]
    fn a_faulty_disk_is_stuck_after_a_failure_until_reopened_which_drops_what_was_not_flushed() {
        let e = Faulty::new();
        let put = |k: &[u8]| {
            let mut b = Batch::default();
            b.put("t", k.to_vec(), b"v".to_vec());
            b
        };
        e.commit(put(b"flushed")).unwrap();
        e.write(put(b"written")).unwrap();
        e.fill();
        assert!(e.flush().is_err());
        assert!(e.reopen().is_err(), "a full disk cannot be reopened");
        e.free();
        assert!(e.write(put(b"later")).is_err(), "the failure is sticky");
        e.reopen().unwrap();
        assert_eq!(e.get("t", b"flushed").unwrap(), Some(b"v".to_vec()));
        assert_eq!(e.get("t", b"written").unwrap(), None, "never flushed");
        e.commit(put(b"later")).unwrap();
    }

    #[test]
    fn sled_reopens_in_place_with_what_it_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let e = Sled::open(dir.path()).unwrap();
        let mut b = Batch::default();
        b.put("t", b"k".to_vec(), b"v".to_vec());
        e.commit(b).unwrap();
        e.reopen().unwrap();
        assert_eq!(e.get("t", b"k").unwrap(), Some(b"v".to_vec()));
        let space = e.space().unwrap().expect("a directory on a disk");
        assert!(space.free <= space.total && space.total > 0, "{space:?}");
    }

    #[test]
    fn batches_apply_in_order_across_trees() {
        for (name, e, _dir) in engines() {
            let mut b = Batch::default();
            b.put("a", b"k1".to_vec(), b"1".to_vec());
            b.put("b", b"k1".to_vec(), b"2".to_vec());
            b.put("a", b"k2".to_vec(), b"3".to_vec());
            b.delete("a", b"k2".to_vec());
            e.commit(b).unwrap();
            assert_eq!(e.get("a", b"k1").unwrap(), Some(b"1".to_vec()), "{name}");
            assert_eq!(e.get("b", b"k1").unwrap(), Some(b"2".to_vec()), "{name}");
            assert_eq!(e.get("a", b"k2").unwrap(), None, "{name}");
            assert_eq!(e.get("c", b"k1").unwrap(), None, "{name}");
        }
    }

    #[test]
    fn scans_are_ordered_bounded_and_limited() {
        for (name, e, _dir) in engines() {
            let mut b = Batch::default();
            for i in 0u8..10 {
                b.put("t", vec![1, i], vec![i]);
            }
            b.put("t", vec![2, 0], vec![99]);
            e.commit(b).unwrap();
            let got = e.scan("t", Bound::Excluded(&[1, 3]), Bound::Unbounded, 3).unwrap();
            let keys: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(keys, vec![vec![1, 4], vec![1, 5], vec![1, 6]], "{name}");
            assert_eq!(scan_prefix(e.as_ref(), "t", &[1], 100).unwrap().len(), 10, "{name}");
            assert_eq!(e.last("t").unwrap().unwrap().1, vec![99], "{name}");
            assert!(e.last("empty").unwrap().is_none(), "{name}");
            let none = e.scan("t", Bound::Included(&[3]), Bound::Excluded(&[1]), 10).unwrap();
            assert!(none.is_empty(), "{name}");
            let none = e.scan("t", Bound::Excluded(&[1, 3]), Bound::Excluded(&[1, 3]), 10).unwrap();
            assert!(none.is_empty(), "{name}");
        }
    }

    #[test]
    fn trees_whose_names_share_a_start_stay_apart() {
        for (name, e, _dir) in engines() {
            let mut b = Batch::default();
            b.put("audit", vec![0xFF], b"a".to_vec());
            b.put("audit_by_sub", vec![0x00], b"b".to_vec());
            b.put("auditx", vec![], b"c".to_vec());
            e.commit(b).unwrap();
            let all = e.scan("audit", Bound::Unbounded, Bound::Unbounded, 10).unwrap();
            assert_eq!(all, vec![(vec![0xFF], b"a".to_vec())], "{name}");
            assert_eq!(e.last("audit").unwrap(), Some((vec![0xFF], b"a".to_vec())), "{name}");
            assert_eq!(e.last("audit_by_sub").unwrap().unwrap().1, b"b".to_vec(), "{name}");
            assert_eq!(e.get("auditx", &[]).unwrap(), Some(b"c".to_vec()), "{name}");
            let below = e.scan("audit", Bound::Unbounded, Bound::Excluded(&[0xFF]), 10).unwrap();
            assert!(below.is_empty(), "{name}");
        }
    }

    #[test]
    fn sled_moves_a_database_with_one_tree_per_name_into_its_layout() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let fields = db.open_tree("fields").unwrap();
            fields.insert(b"k1", b"v1").unwrap();
            fields.insert(b"k2", b"v2").unwrap();
            db.open_tree("meta").unwrap().insert(b"seq", b"7").unwrap();
            db.flush().unwrap();
        }
        let e = Sled::open(dir.path()).unwrap();
        let fields = e.scan("fields", Bound::Unbounded, Bound::Unbounded, 10).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(e.get("fields", b"k2").unwrap(), Some(b"v2".to_vec()));
        assert_eq!(e.get("meta", b"seq").unwrap(), Some(b"7".to_vec()));
        assert_eq!(e.db().unwrap().tree_names().len(), 1, "the old trees are dropped once moved");
        drop(e);
        let e = Sled::open(dir.path()).unwrap();
        assert_eq!(e.get("fields", b"k1").unwrap(), Some(b"v1".to_vec()));
        drop(e);
        // An older binary writing its own layout into the moved database is
        // refused rather than merged.
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            db.open_tree("meta").unwrap().insert(b"seq", b"0").unwrap();
            db.flush().unwrap();
        }
        let err = Sled::open(dir.path()).err().expect("refused").to_string();
        assert!(err.contains("older fieldsync wrote to it"), "{err}");
    }

    #[test]
    fn sled_keeps_commits_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = Sled::open(dir.path()).unwrap();
            let mut b = Batch::default();
            b.put("t", b"k".to_vec(), b"v".to_vec());
            e.commit(b).unwrap();
        }
        let e = Sled::open(dir.path()).unwrap();
        assert_eq!(e.get("t", b"k").unwrap(), Some(b"v".to_vec()));
    }
}
