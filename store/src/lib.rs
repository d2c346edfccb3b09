//! Storage engines: ordered key-value trees with atomic, durable multi-tree
//! batches. The server and the client build their stores on [`Engine`]; tests
//! use [`Memory`], production uses [`Sled`]. One conformance suite runs
//! against both.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
#[cfg(any(test, feature = "testing"))]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

mod mark;
mod snapshot;

pub use mark::{sync_dir, FILE as MARK_FILE};
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

/// The production engine: an embedded sled database in one directory.
///
/// Every named tree lives in sled's one default tree, its keys prefixed by
/// `name ‖ 0`, so that a batch touching many trees is one `apply_batch`:
/// atomic, and several times cheaper than a sled transaction across trees.
/// (Tree names are plain words without a zero byte, so the prefixes never
/// overlap.)
///
/// Beside sled's files the directory holds a high-water mark (see
/// [`mark`]): every batch carries the next epoch, every flush records the
/// epoch it made durable, and a database that comes back behind its mark
/// (cut, damaged, an older copy of its files) is refused, never served.
pub struct Sled {
    /// `None` only while [`Engine::reopen`] runs, or after it failed.
    db: RwLock<Option<sled::Db>>,
    dir: PathBuf,
    /// The mark, advanced after each flush; `None` when opened read-only.
    mark: Option<Mutex<mark::Mark>>,
    /// Batches are applied under this lock: each takes the next epoch, so
    /// epochs follow the order batches land in, and saves what the open
    /// snapshot still needs.
    writes: Mutex<Writes>,
    written: AtomicU64,
    /// The highest epoch a finished flush made durable.
    flushed: AtomicU64,
}

#[derive(Debug)]
struct Writes {
    epoch: u64,
    capture: Option<snapshot::Capture>,
    /// Counts snapshots (and reopens, which end the open one).
    generation: u64,
}

/// The open snapshot of a [`Sled`]: closes (and stops saving) when dropped.
struct SledSnapshot<'a> {
    engine: &'a Sled,
    generation: u64,
}

impl Snapshot for SledSnapshot<'_> {
    fn next_chunk(&mut self, limit: usize) -> Result<Option<(&'static str, Entries)>> {
        let mut writes = self.engine.writes.lock().map_err(poisoned)?;
        let db = self.engine.db()?;
        let current = writes.generation == self.generation;
        match writes.capture.as_mut() {
            Some(capture) if current => capture.next_chunk(&db, limit),
            _ => Err(Error::Other(
                "the store was reopened while the backup was read: take the backup again".into(),
            )),
        }
    }
}

impl Drop for SledSnapshot<'_> {
    fn drop(&mut self) {
        if let Ok(mut writes) = self.engine.writes.lock() {
            if writes.generation == self.generation {
                writes.capture = None;
            }
        }
    }
}

/// The most sled keeps cached in memory (its default is 1 GiB; the process
/// then grows to several times that on a large store).
pub const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Marks a database in this layout (its key sorts before every tree's).
const LAYOUT_KEY: &[u8] = b"\0layout";
/// The epoch of the last batch written (outside every tree, like the layout).
const EPOCH_KEY: &[u8] = b"\0epoch";

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

/// What to restore from, said the same way by every refusal to open.
const RESTORE: &str =
    "restore the last backup into a new directory (fieldsync-server restore --from FILE --data \
     NEW_DIR) and serve that";

/// Whether `dir` holds sled's files.
fn holds_sled(dir: &Path) -> bool {
    dir.join("db").is_file() || dir.join("conf").is_file()
}

/// The entries of `dir` (`None`: it does not exist).
fn entries(dir: &Path) -> Result<Option<usize>> {
    match std::fs::read_dir(dir) {
        Ok(d) => Ok(Some(d.count())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Other(format!("cannot read {}: {e}", dir.display()))),
    }
}

/// A range of `tree`'s keys as a range of stored keys.
fn sled_range(
    tree: &str,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
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
    (from, to)
}

impl Sled {
    /// Opens the store in `dir`, or creates a new one when `dir` is missing
    /// or empty. A directory that holds files is never initialised: files
    /// that are not a store, a store without its records, or one behind its
    /// high-water mark are refused with what to do.
    pub fn open(dir: &Path) -> Result<Self> {
        match entries(dir)? {
            None | Some(0) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Other(format!("cannot create {}: {e}", dir.display())))?;
                let mark = mark::Mark::create(dir)?;
                let db = open_db(dir)?;
                db.insert(LAYOUT_KEY, &b"one tree"[..])?;
                db.flush()?;
                let engine = Sled::with(dir, db, Some(mark))?;
                Ok(engine)
            }
            Some(_) => {
                let mark = mark::Mark::open(dir, true)?;
                if mark.is_none() && !holds_sled(dir) {
                    return Err(Error::NoStore(format!(
                        "{} is not empty and holds no fieldsync store: give the store a new or \
                         empty directory",
                        dir.display()
                    )));
                }
                let legacy = mark.is_none();
                let db = open_db(dir)?;
                let mut engine = Sled::with(dir, db.clone(), mark)?;
                if legacy {
                    // A store from before the mark: it must hold records,
                    // or it is a damaged one that would be served as new.
                    let default = db.name();
                    let named_records = db
                        .tree_names()
                        .into_iter()
                        .any(|n| n != default && db.open_tree(&n).is_ok_and(|t| !t.is_empty()));
                    if db.first()?.is_none() && !named_records {
                        return Err(Error::Damaged(format!(
                            "{} holds sled's files but no records: if this server never held \
                             data, remove the directory and start again; otherwise {RESTORE}",
                            dir.display()
                        )));
                    }
                    absorb_named_trees(&db)?;
                    let mut mark = mark::Mark::create(dir)?;
                    mark.advance(engine.written.load(Ordering::SeqCst))?;
                    engine.mark = Some(Mutex::new(mark));
                } else {
                    absorb_named_trees(&db)?;
                }
                Ok(engine)
            }
        }
    }

    /// Opens the existing store in `dir` to read it, writing nothing into
    /// it: a missing or empty directory, one without a store, or a store
    /// behind its high-water mark is refused.
    pub fn open_existing(dir: &Path) -> Result<Self> {
        let mark = match entries(dir)? {
            None | Some(0) => None,
            Some(_) => mark::Mark::open(dir, false)?,
        };
        if mark.is_none() && !holds_sled(dir) {
            return Err(Error::NoStore(format!(
                "there is no fieldsync store in {} (check --data)",
                dir.display()
            )));
        }
        let db = open_db(dir)?;
        let engine = Sled::with(dir, db.clone(), None)?;
        if let Some(mark) = &mark {
            engine.behind(dir, mark.epoch())?;
        }
        if db.get(LAYOUT_KEY)?.is_none() || db.tree_names().len() > 1 {
            return Err(Error::Other(format!(
                "the store in {} was written by an older fieldsync: start the server on it once \
                 to bring it up to date",
                dir.display()
            )));
        }
        Ok(engine)
    }

    fn with(dir: &Path, db: sled::Db, mark: Option<mark::Mark>) -> Result<Self> {
        let written = epoch_of(&db)?;
        let writes = Mutex::new(Writes { epoch: written, capture: None, generation: 0 });
        let engine = Sled {
            db: RwLock::new(Some(db)),
            dir: dir.to_owned(),
            mark: None,
            writes,
            written: written.into(),
            flushed: written.into(),
        };
        if let Some(mark) = mark {
            engine.behind(dir, mark.epoch())?;
            return Ok(Sled { mark: Some(Mutex::new(mark)), ..engine });
        }
        Ok(engine)
    }

    /// Refuses a database whose last batch is older than the mark.
    fn behind(&self, dir: &Path, marked: u64) -> Result<()> {
        let held = self.written.load(Ordering::SeqCst);
        if held < marked {
            return Err(Error::Damaged(format!(
                "the store in {} is damaged: it holds {held} of the {marked} write batches \
                 already acknowledged to users (its files were cut, damaged or replaced by an \
                 older copy). Nothing was changed and nothing will be served from it; {RESTORE}",
                dir.display()
            )));
        }
        Ok(())
    }

    /// At most `limit` entries of `(from, to)` in `tree`, in key order or
    /// reversed.
    fn range(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
        rev: bool,
    ) -> Result<Entries> {
        if inverted(from, to) {
            return Ok(Vec::new());
        }
        let range = self.db()?.range(sled_range(tree, from, to));
        let skip = tree.len() + 1;
        let pair = |r: sled::Result<(sled::IVec, sled::IVec)>| {
            r.map(|(k, v)| (k[skip..].to_vec(), v.to_vec())).map_err(Error::from)
        };
        match rev {
            false => range.take(limit).map(pair).collect(),
            true => range.rev().take(limit).map(pair).collect(),
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

/// The epoch of the last batch `db` holds.
fn epoch_of(db: &sled::Db) -> Result<u64> {
    match db.get(EPOCH_KEY)? {
        Some(b) => Ok(u64::from_be_bytes(b.as_ref().try_into().map_err(|_| {
            Error::Damaged(format!("the store's epoch record is damaged; {RESTORE}"))
        })?)),
        None => Ok(0),
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

/// Opens sled in `dir`. A database that was just closed in this process may
/// hold its file lock for a moment while sled's background thread winds
/// down; that is waited out, briefly. sled panics on some damage: that
/// becomes an error that says so.
fn open_db(dir: &Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        // sled's panic is the symptom, not news for the person running
        // the command: keep it out of the terminal and say what it means.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(|| {
            sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open()
        });
        std::panic::set_hook(hook);
        match opened {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(sled::Error::Io(e)))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(Err(sled::Error::Corruption { .. })) | Err(_) => {
                return Err(Error::Damaged(format!(
                    "the store in {} is damaged and cannot be read; {RESTORE}",
                    dir.display()
                )))
            }
            Ok(Err(e)) => return Err(e.into()),
        }
    }
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
        let mut state = self.writes.lock().map_err(poisoned)?;
        let db = self.db()?;
        let mut writes = sled::Batch::default();
        for Write { tree, key, value } in batch.ops {
            let key = stored_key(tree, &key);
            if let Some(capture) = state.capture.as_mut() {
                if capture.wants(tree, &key) {
                    let old = db.get(&key)?;
                    capture.save(key.clone(), old);
                }
            }
            match value {
                Some(v) => writes.insert(key, v),
                None => writes.remove(key),
            }
        }
        let next = state.epoch + 1;
        writes.insert(EPOCH_KEY, &next.to_be_bytes()[..]);
        db.apply_batch(writes)?;
        state.epoch = next;
        self.written.store(next, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let written = self.written.load(Ordering::SeqCst);
        self.db()?.flush()?;
        if let Some(mark) = &self.mark {
            // Flushes that finished while this one waited for the mark are
            // written with it, once (group commit of the mark).
            self.flushed.fetch_max(written, Ordering::SeqCst);
            let mut mark = mark.lock().map_err(poisoned)?;
            mark.advance(self.flushed.load(Ordering::SeqCst))?;
        }
        Ok(())
    }

    /// One snapshot at a time: a second is refused while the first is open.
    fn snapshot(&self, trees: &[&'static str]) -> Result<Option<Box<dyn Snapshot + '_>>> {
        let mut writes = self.writes.lock().map_err(poisoned)?;
        if writes.capture.is_some() {
            return Err(Error::Other(
                "another backup is being taken: try again once it has finished".into(),
            ));
        }
        writes.capture = Some(snapshot::Capture::new(trees));
        writes.generation += 1;
        let generation = writes.generation;
        Ok(Some(Box::new(SledSnapshot { engine: self, generation })))
    }

    fn space(&self) -> Result<Option<Space>> {
        space_of(&self.dir)
    }

    /// Writers wait meanwhile; an open snapshot ends (its reader is told to
    /// start again); the epoch is read back from what was flushed, and a
    /// database that came back behind its mark is refused, as on open.
    fn reopen(&self) -> Result<()> {
        let mut writes = self.writes.lock().map_err(poisoned)?;
        let mut db = self.db.write().map_err(poisoned)?;
        // The old database must be gone (its file lock released) before the
        // directory is opened again.
        drop(db.take());
        let reopened = open_db(&self.dir)?;
        let epoch = epoch_of(&reopened)?;
        *db = Some(reopened);
        drop(db);
        writes.epoch = epoch;
        writes.capture = None;
        writes.generation += 1;
        self.written.store(epoch, Ordering::SeqCst);
        self.flushed.store(epoch, Ordering::SeqCst);
        if let Some(mark) = &self.mark {
            let marked = mark.lock().map_err(poisoned)?.epoch();
            self.behind(&self.dir, marked)?;
        }
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
/// whatever the test sets, and its flushes or its writes can be held (a
/// disk that is slow to answer; a held write keeps its writer, and whatever
/// lock the writer holds, waiting inside [`Engine::write`]). Only with the
/// `testing` feature, which the crates whose tests use it turn on.
#[cfg(any(test, feature = "testing"))]
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
    /// Flushes wait while this is set.
    held: Mutex<bool>,
    released: std::sync::Condvar,
    /// Writes wait while this is set; how many wait now.
    writes_held: Mutex<bool>,
    writes_released: std::sync::Condvar,
    writes_waiting: std::sync::atomic::AtomicUsize,
}

#[cfg(any(test, feature = "testing"))]
impl Faulty {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on flushes wait (writes do not) until [`Faulty::release`].
    pub fn hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Lets the held flushes go on (failing, if the disk was filled meanwhile).
    pub fn release(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.released.notify_all();
    }

    /// From now on writes wait inside [`Engine::write`] until
    /// [`Faulty::release_writes`].
    pub fn hold_writes(&self) {
        *self.writes_held.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Lets the held writes go on.
    pub fn release_writes(&self) {
        *self.writes_held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.writes_released.notify_all();
    }

    /// How many writes are waiting for [`Faulty::release_writes`] now.
    pub fn waiting_writes(&self) -> usize {
        self.writes_waiting.load(Ordering::SeqCst)
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

#[cfg(any(test, feature = "testing"))]
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
        let held = self.writes_held.lock().map_err(poisoned)?;
        self.writes_waiting.fetch_add(1, Ordering::SeqCst);
        let waited = self.writes_released.wait_while(held, |held| *held).map_err(poisoned);
        self.writes_waiting.fetch_sub(1, Ordering::SeqCst);
        drop(waited?);
        let mut unflushed = self.unflushed.lock().map_err(poisoned)?;
        self.refuse()?;
        self.live.write(batch.clone())?;
        unflushed.push(batch);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let held = self.held.lock().map_err(poisoned)?;
        drop(self.released.wait_while(held, |held| *held).map_err(poisoned)?);
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
        // Batches after the reopen carry on the epochs, and the mark follows.
        let mut b = Batch::default();
        b.put("t", b"k2".to_vec(), b"v2".to_vec());
        e.commit(b).unwrap();
        drop(e);
        let e = Sled::open(dir.path()).unwrap();
        assert_eq!(e.get("t", b"k2").unwrap(), Some(b"v2".to_vec()));
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
            let back = e.scan_rev("t", Bound::Included(&[1]), Bound::Excluded(&[1, 7]), 3).unwrap();
            let keys: Vec<_> = back.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(keys, vec![vec![1, 6], vec![1, 5], vec![1, 4]], "{name}");
            let newest = e.scan_rev("t", Bound::Unbounded, Bound::Unbounded, 1).unwrap();
            assert_eq!(newest[0].1, vec![99], "{name}");
            assert!(e.scan_rev("empty", Bound::Unbounded, Bound::Unbounded, 5).unwrap().is_empty());
            assert!(e
                .scan_rev("t", Bound::Included(&[3]), Bound::Excluded(&[1]), 9)
                .unwrap()
                .is_empty());
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

    fn read_all(snap: &mut dyn Snapshot, limit: usize) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        while let Some((tree, chunk)) = snap.next_chunk(limit).unwrap() {
            all.extend(chunk.into_iter().map(|(k, v)| (tree, k, v)));
        }
        all
    }

    #[test]
    fn a_snapshot_reads_the_trees_as_they_were_while_writes_go_on() {
        for (name, e, _dir) in engines() {
            let mut b = Batch::default();
            for i in 0u8..50 {
                b.put("a", vec![i], vec![i]);
                b.put("b", vec![i], vec![i, i]);
            }
            b.put("c", vec![1], vec![1]);
            e.commit(b).unwrap();
            let expected: Vec<_> = ["a", "b"]
                .into_iter()
                .flat_map(|t| {
                    let entries = e.scan(t, Bound::Unbounded, Bound::Unbounded, 1000).unwrap();
                    entries.into_iter().map(move |(k, v)| (t, k, v))
                })
                .collect();
            let Some(mut snap) = e.snapshot(&["a", "b"]).unwrap() else {
                assert_eq!(name, "faulty", "memory and sled keep snapshots");
                continue;
            };
            let mut seen = Vec::new();
            let (tree, first) = snap.next_chunk(10).unwrap().unwrap();
            seen.extend(first.into_iter().map(|(k, v)| (tree, k, v)));
            // Writes behind the reader, ahead of it, deletes, new keys, and
            // a tree that is not in the snapshot: none shows in it.
            let mut b = Batch::default();
            b.put("a", vec![2], b"changed behind".to_vec());
            b.put("a", vec![30], b"changed ahead".to_vec());
            b.delete("a", vec![31]);
            b.put("a", vec![200], b"new".to_vec());
            b.delete("b", vec![0]);
            b.put("b", vec![7], b"changed".to_vec());
            b.put("c", vec![1], b"other".to_vec());
            e.commit(b).unwrap();
            let mut b = Batch::default();
            b.put("a", vec![30], b"changed twice".to_vec());
            b.put("b", vec![7], b"changed twice".to_vec());
            e.commit(b).unwrap();
            seen.extend(read_all(snap.as_mut(), 7));
            assert_eq!(seen, expected, "{name}");
            drop(snap);
            // The writes themselves all landed.
            assert_eq!(e.get("a", &[30]).unwrap(), Some(b"changed twice".to_vec()), "{name}");
            assert_eq!(e.get("a", &[31]).unwrap(), None, "{name}");
            // Closed, a new snapshot sees them.
            let mut snap = e.snapshot(&["a"]).unwrap().unwrap();
            let now = read_all(snap.as_mut(), 1000);
            assert!(now.iter().any(|(_, k, v)| k == &vec![200] && v == b"new"), "{name}");
        }
    }

    /// A store of `batches` flushed batches in `dir`.
    fn filled(dir: &Path, batches: u32) {
        let e = Sled::open(dir).unwrap();
        for i in 0..batches {
            let mut b = Batch::default();
            b.put("t", i.to_be_bytes().to_vec(), vec![7u8; 2_000]);
            e.commit(b).unwrap();
        }
    }

    #[test]
    fn sled_refuses_a_database_cut_behind_its_mark() {
        for keep in [0.5, 0.99] {
            let dir = tempfile::tempdir().unwrap();
            filled(dir.path(), 600);
            let db = dir.path().join("db");
            let len = std::fs::metadata(&db).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
            file.set_len((len as f64 * keep) as u64).unwrap();
            drop(file);
            for (how, err) in [
                ("open", Sled::open(dir.path()).err()),
                ("open_existing", Sled::open_existing(dir.path()).err()),
            ] {
                let err = err.unwrap_or_else(|| panic!("{how} served a db cut to {keep}"));
                let text = err.to_string();
                assert!(matches!(err, Error::Damaged(_)), "{how} at {keep}: {text}");
                assert!(text.contains("restore"), "{how} at {keep}: {text}");
            }
        }
    }

    fn copy_files(from: &Path, to: &Path, skip: &str) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_name() == skip {
                continue;
            }
            match entry.file_type().unwrap().is_dir() {
                true => copy_files(&entry.path(), &target, skip),
                false => drop(std::fs::copy(entry.path(), target).unwrap()),
            }
        }
    }

    #[test]
    fn sled_refuses_older_files_put_back_under_a_newer_mark() {
        let root = tempfile::tempdir().unwrap();
        let (dir, old) = (root.path().join("store"), root.path().join("old"));
        filled(&dir, 5);
        copy_files(&dir, &old, MARK_FILE);
        {
            let e = Sled::open(&dir).unwrap();
            let mut b = Batch::default();
            b.put("t", b"later".to_vec(), b"acknowledged".to_vec());
            e.commit(b).unwrap();
        }
        // sled's files as they were before the last commit, the mark as it is.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if !path.ends_with(MARK_FILE) {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        copy_files(&old, &dir, MARK_FILE);
        for err in [Sled::open(&dir).err(), Sled::open_existing(&dir).err()] {
            let text = err.expect("refused").to_string();
            assert!(text.contains("holds 5 of the 6 write batches"), "{text}");
            assert!(text.contains("restore the last backup"), "{text}");
        }
    }

    #[test]
    fn sled_never_initialises_a_directory_that_holds_files() {
        // Someone else's files.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let err = Sled::open(dir.path()).err().expect("refused");
        assert!(matches!(err, Error::NoStore(_)), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing was created");
        // sled's files without a record and without a mark: damaged, not new.
        let dir = tempfile::tempdir().unwrap();
        drop(sled::Config::new().path(dir.path()).open().unwrap());
        let err = Sled::open(dir.path()).err().expect("refused");
        assert!(matches!(err, Error::Damaged(_)), "{err}");
        // The mark without sled's files: everything acknowledged is gone.
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 3);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if !path.ends_with(MARK_FILE) {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        let err = Sled::open(dir.path()).err().expect("refused");
        assert!(matches!(err, Error::Damaged(_)), "{err}");
    }

    #[test]
    fn opening_an_existing_store_to_read_it_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("typo");
        let err = Sled::open_existing(&missing).err().expect("refused");
        assert!(matches!(err, Error::NoStore(_)), "{err}");
        assert!(!missing.exists(), "a mistyped directory is not created");
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(Sled::open_existing(&empty).is_err());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

        let dir = root.path().join("store");
        filled(&dir, 5);
        let mark = std::fs::read(dir.join(MARK_FILE)).unwrap();
        let e = Sled::open_existing(&dir).unwrap();
        assert_eq!(e.get("t", &4u32.to_be_bytes()).unwrap(), Some(vec![7u8; 2_000]));
        drop(e);
        assert_eq!(std::fs::read(dir.join(MARK_FILE)).unwrap(), mark);
        // The writable open that follows finds the store as it was.
        let e = Sled::open(&dir).unwrap();
        assert_eq!(e.scan("t", Bound::Unbounded, Bound::Unbounded, 100).unwrap().len(), 5);
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
