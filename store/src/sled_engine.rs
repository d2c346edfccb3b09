//! [`Sled`]: the production engine, every named tree under a prefix of
//! sled's one default tree, with its high-water mark beside the files.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::{
    inverted, mark, pieces, poisoned, snapshot, Batch, Engine, Entries, Error, Result, Snapshot,
    Space, Write,
};

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
    /// Bytes written since sled last opened, and how many make it reopen
    /// (see [`SNAPSHOT_EVERY_BYTES`]).
    since_open: AtomicU64,
    pub(crate) snapshot_every: u64,
    /// Why the last reopen after [`SNAPSHOT_EVERY_BYTES`] failed, for the
    /// errors of the closed engine.
    failed_reopen: Mutex<Option<String>>,
}

/// sled writes the index it recovers from (its snapshot) only when it opens,
/// so an open after a crash, or after months of serving, reads back all the
/// log written since the last open: 2.9 GB and 3–7 s for a store of
/// 1,000,000 values, 0.5–0.7 s once a snapshot is fresh. So the engine
/// reopens sled after a flush once this much has been written since it
/// last opened (not while a backup is being read): an open then reads at
/// most about this much log, and writers wait for one reopen meanwhile.
pub const SNAPSHOT_EVERY_BYTES: u64 = 256 << 20;

/// The free space below which that reopen waits (the snapshot it writes is
/// about 10 MB at 1,000,000 values).
pub const SNAPSHOT_FREE_BYTES: u64 = 64 << 20;

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

/// The whole value of the stored `key` whose own entry holds `first` (see
/// [`pieces::whole`]).
pub(crate) fn whole(db: &sled::Db, key: &[u8], first: &[u8]) -> Result<Option<Vec<u8>>> {
    pieces::whole(db, EPOCH_KEY, key, first)
}

/// `tree ‖ 0 ‖ key`.
pub(crate) fn stored_key(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(tree.len() + 1 + key.len());
    k.extend_from_slice(tree.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// The first key after every key of `tree`: `tree ‖ 1`.
pub(crate) fn tree_end(tree: &str) -> Vec<u8> {
    let mut k = tree.as_bytes().to_vec();
    k.push(1);
    k
}

/// What to restore from, said the same way by every refusal to open.
pub const RESTORE: &str =
    "restore the last backup into a new directory (fieldsync-server restore --from FILE --data \
     NEW_DIR) and serve that";

/// The note left in a store's directory once it was found damaged.
///
/// sled's failed open is not read-only: before it gives up it may rewrite
/// the end of its log, and the next open can then succeed on what is left.
/// A store refused once is refused from then on, whatever sled makes of it
/// later, until it is restored into a new directory.
pub const DAMAGED_FILE: &str = "DAMAGED.txt";

/// Refuses a store that was found damaged before.
fn refused_before(dir: &Path) -> Result<()> {
    match std::fs::read_to_string(dir.join(DAMAGED_FILE)) {
        Ok(why) => Err(Error::Damaged(format!(
            "the store in {} was found damaged before and is not opened again (see {}: {}); \
             {RESTORE}",
            dir.display(),
            dir.join(DAMAGED_FILE).display(),
            why.lines().next().unwrap_or_default().trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(Error::Other(format!("cannot read {}: {e}", dir.join(DAMAGED_FILE).display())))
        }
    }
}

/// Leaves the note that keeps a damaged store refused, and passes the
/// error on. A note that cannot be written is said beside the error.
fn remember_damage(dir: &Path, e: Error) -> Error {
    let Error::Damaged(why) = &e else { return e };
    match record_damage(dir, why) {
        Ok(()) => e,
        Err(io) => Error::Damaged(format!("{why} ({io})")),
    }
}

/// Leaves the note ([`DAMAGED_FILE`]) that keeps the store in `dir`
/// refused from now on, saying `why`: for a store found damaged by sled's
/// open, by its high-water mark, or by a check of its records.
pub fn record_damage(dir: &Path, why: &str) -> Result<()> {
    let path = dir.join(DAMAGED_FILE);
    let text = format!(
        "{why}\n\nfieldsync refuses to open this store from now on. Restore the last backup into \
         a new directory (fieldsync-server restore --from FILE --data NEW_DIR) and serve that. \
         Remove this file only to serve the store as it is, knowing that what it lost is lost.\n"
    );
    std::fs::File::create(&path)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| {
            Error::Other(format!("the note {} could not be written: {e}", path.display()))
        })?;
    mark::sync_dir(dir)
}

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
    /// high-water mark are refused with what to do, and stay refused (see
    /// [`DAMAGED_FILE`]).
    pub fn open(dir: &Path) -> Result<Self> {
        refused_before(dir)?;
        Self::open_or_create(dir).map_err(|e| remember_damage(dir, e))
    }

    fn open_or_create(dir: &Path) -> Result<Self> {
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
    /// it but, when it is found damaged, the note that keeps it refused: a
    /// missing or empty directory, one without a store, or a store behind
    /// its high-water mark is refused.
    pub fn open_existing(dir: &Path) -> Result<Self> {
        refused_before(dir)?;
        Self::open_to_read(dir).map_err(|e| remember_damage(dir, e))
    }

    fn open_to_read(dir: &Path) -> Result<Self> {
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
            since_open: 0.into(),
            snapshot_every: SNAPSHOT_EVERY_BYTES,
            failed_reopen: Mutex::new(None),
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
        let db = self.db()?;
        let range = db.range(sled_range(tree, from, to));
        let skip = tree.len() + 1;
        let pair = |r: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, v) = r?;
            // A long value deleted since the range read its key is left out.
            Ok(whole(&db, &k, &v)?.map(|v| (k[skip..].to_vec(), v)))
        };
        let entries: Result<Vec<_>> = match rev {
            false => range.take(limit).map(pair).collect(),
            true => range.rev().take(limit).map(pair).collect(),
        };
        Ok(entries?.into_iter().flatten().collect())
    }

    /// The open database, for one operation.
    pub(crate) fn db(&self) -> Result<sled::Db> {
        let db = self.db.read().map_err(poisoned)?;
        db.clone().ok_or_else(|| {
            let why = self.failed_reopen.lock().ok().and_then(|w| w.clone());
            Error::Other(format!(
                "the store in {} is closed: reopening it {} did not succeed{}",
                self.dir.display(),
                if why.is_some() {
                    "to refresh its recovery snapshot"
                } else {
                    "after a failed write"
                },
                why.map(|w| format!(" ({w})")).unwrap_or_default()
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
        let db = self.db()?;
        let key = stored_key(tree, key);
        match db.get(&key)? {
            Some(first) => whole(&db, &key, &first),
            None => Ok(None),
        }
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
        let db = self.db()?;
        for entry in db.range(range).rev() {
            let (k, v) = entry?;
            if let Some(v) = whole(&db, &k, &v)? {
                return Ok(Some((k[skip..].to_vec(), v)));
            }
        }
        Ok(None)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut state = self.writes.lock().map_err(poisoned)?;
        let db = self.db()?;
        self.since_open.fetch_add(batch.bytes(), Ordering::Relaxed);
        // The last write of each key is the one that lands (as in sled's
        // own batch), so a key's pieces are planned once.
        let mut last: std::collections::BTreeMap<Vec<u8>, (Option<Vec<u8>>, bool)> =
            Default::default();
        for Write { tree, key, value, fresh } in batch.ops {
            let key = stored_key(tree, &key);
            if let Some(capture) = state.capture.as_mut() {
                if capture.wants(tree, &key) {
                    let old = match db.get(&key)? {
                        Some(first) => whole(&db, &key, &first)?,
                        None => None,
                    };
                    capture.save(key.clone(), old.map(sled::IVec::from));
                }
            }
            // A key put twice in one batch is fresh only if both puts say so.
            let fresh = fresh && last.get(&key).is_none_or(|(_, f)| *f);
            last.insert(key, (value, fresh));
        }
        let mut writes = sled::Batch::default();
        for (key, (value, fresh)) in last {
            pieces::write(&db, &mut writes, key, value, fresh)?;
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
        if self.since_open.load(Ordering::Relaxed) >= self.snapshot_every {
            self.refresh()?;
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
        self.reopen_locked(&mut writes)
    }
}

impl Sled {
    /// The reopen [`SNAPSHOT_EVERY_BYTES`] asks for, once due: not while a
    /// backup is being read, nor on a disk with less than
    /// [`SNAPSHOT_FREE_BYTES`] free (sled writes its snapshot as it opens);
    /// everything written so far is flushed first, and a failed flush
    /// fails this one as any failed flush does. The flush that got here has
    /// already made its own writes durable, so a reopen that then fails is
    /// not its failure: the next use of the engine says the store is closed,
    /// and the server reopens it as after a full disk.
    fn refresh(&self) -> Result<()> {
        let mut writes = self.writes.lock().map_err(poisoned)?;
        let due = self.since_open.load(Ordering::Relaxed) >= self.snapshot_every;
        let room = space_of(&self.dir)?.is_none_or(|s| s.free >= SNAPSHOT_FREE_BYTES);
        if !due || writes.capture.is_some() || !room {
            return Ok(());
        }
        self.db()?.flush()?;
        if let Err(e) = self.reopen_locked(&mut writes) {
            *self.failed_reopen.lock().map_err(poisoned)? = Some(e.to_string());
        }
        Ok(())
    }

    /// [`Engine::reopen`], under the writers' lock the caller holds.
    fn reopen_locked(&self, writes: &mut Writes) -> Result<()> {
        let mut db = self.db.write().map_err(poisoned)?;
        // The old database must be gone (its file lock released) before the
        // directory is opened again.
        drop(db.take());
        let reopened = open_db(&self.dir).map_err(|e| remember_damage(&self.dir, e))?;
        let epoch = epoch_of(&reopened)?;
        *db = Some(reopened);
        drop(db);
        *self.failed_reopen.lock().map_err(poisoned)? = None;
        writes.epoch = epoch;
        writes.capture = None;
        writes.generation += 1;
        self.written.store(epoch, Ordering::SeqCst);
        self.flushed.store(epoch, Ordering::SeqCst);
        self.since_open.store(0, Ordering::Relaxed);
        if let Some(mark) = &self.mark {
            let marked = mark.lock().map_err(poisoned)?.epoch();
            self.behind(&self.dir, marked).map_err(|e| remember_damage(&self.dir, e))?;
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
