//! What the store does about its disk: it refuses writes below a free-space
//! reserve and beyond each user's daily budget, before anything is written;
//! it stops writing when a write or a flush fails (sled's I/O errors are
//! sticky) and reopens the engine in place once it can, which drops what
//! was never flushed; and a read answers only with what is on disk.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use fieldsync::access::{Role, User};
use fieldsync_store::{Batch, Engine, Entries, Snapshot, Space};

use super::schema::{read_u64, META, SEQ_KEY};
use super::{Error, Result, Store};

const MIB: u64 = 1024 * 1024;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// How much of the disk the store leaves alone, and how much each user may
/// write a day. Admins are held to neither, so that an admin can still
/// disable a user or revoke a token to stop what fills the disk.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteLimits {
    /// Writes are refused while less than this is free...
    pub min_free_bytes: u64,
    /// ...or less than this share of the disk (in percent).
    pub min_free_percent: f64,
    /// Bytes of records one user's writes may add in a day (UTC); 0: no limit.
    pub user_bytes_per_day: u64,
}

impl WriteLimits {
    /// No reserve and no budget: what a store has until it is served.
    pub const NONE: WriteLimits =
        WriteLimits { min_free_bytes: 0, min_free_percent: 0.0, user_bytes_per_day: 0 };

    /// The free bytes below which writes are refused, on a disk of `total`.
    pub fn reserve(&self, total: u64) -> u64 {
        let share = (total as f64 * self.min_free_percent.clamp(0.0, 100.0) / 100.0) as u64;
        self.min_free_bytes.max(share)
    }
}

/// Why the store cannot write, once an engine call failed; cleared when the
/// engine is reopened.
type Broken = Arc<Mutex<Option<String>>>;

/// The store's engine, noting its first failure: sled's I/O errors are
/// sticky, so one from a read means as much as one from a write or a flush.
struct Watched {
    inner: Arc<dyn Engine>,
    broken: Broken,
}

/// `engine`, watched for failures, and where they are noted.
pub(super) fn watch(engine: Arc<dyn Engine>) -> (Arc<dyn Engine>, Disk) {
    let broken = Broken::default();
    let disk = Disk { broken: Arc::clone(&broken), ..Disk::default() };
    (Arc::new(Watched { inner: engine, broken }), disk)
}

impl Watched {
    fn noted<T>(&self, result: fieldsync_store::Result<T>) -> fieldsync_store::Result<T> {
        if let Err(e) = &result {
            let mut broken = self.broken.lock().unwrap_or_else(|e| e.into_inner());
            if broken.is_none() {
                tracing::error!(
                    error = %e,
                    "the store cannot use its disk: refusing writes, and reads of what may not \
                     be on disk, until the store is reopened (tried every few seconds)"
                );
                *broken = Some(e.to_string());
            }
        }
        result
    }
}

impl Engine for Watched {
    fn get(&self, tree: &'static str, key: &[u8]) -> fieldsync_store::Result<Option<Vec<u8>>> {
        self.noted(self.inner.get(tree, key))
    }
    fn scan(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> fieldsync_store::Result<Entries> {
        self.noted(self.inner.scan(tree, from, to, limit))
    }
    fn scan_rev(
        &self,
        tree: &'static str,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        limit: usize,
    ) -> fieldsync_store::Result<Entries> {
        self.noted(self.inner.scan_rev(tree, from, to, limit))
    }
    fn last(&self, tree: &'static str) -> fieldsync_store::Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.noted(self.inner.last(tree))
    }
    fn write(&self, batch: Batch) -> fieldsync_store::Result<()> {
        self.noted(self.inner.write(batch))
    }
    fn flush(&self) -> fieldsync_store::Result<()> {
        self.noted(self.inner.flush())
    }
    fn space(&self) -> fieldsync_store::Result<Option<Space>> {
        self.inner.space()
    }
    fn reopen(&self) -> fieldsync_store::Result<()> {
        self.inner.reopen()
    }
    fn snapshot(
        &self,
        trees: &[&'static str],
    ) -> fieldsync_store::Result<Option<Box<dyn Snapshot + '_>>> {
        self.noted(self.inner.snapshot(trees))
    }
}

/// The store's side of its disk.
pub(super) struct Disk {
    limits: Mutex<WriteLimits>,
    broken: Broken,
    /// Writes started, writes applied to the engine, and the latest write
    /// known to be flushed, counted in one sequence: a read may have seen
    /// unflushed data while `flushed < started`.
    started: AtomicU64,
    applied: AtomicU64,
    flushed: AtomicU64,
    /// Signalled when `flushed` moves or the store breaks.
    flush_lock: Mutex<()>,
    flush_moved: Condvar,
    /// Bytes written per user on the day (`now_ms / DAY_MS`) they are counted for.
    spent: Mutex<HashMap<String, (u64, u64)>>,
}

impl Default for Disk {
    fn default() -> Self {
        Disk {
            limits: Mutex::new(WriteLimits::NONE),
            broken: Broken::default(),
            started: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            flush_lock: Mutex::new(()),
            flush_moved: Condvar::new(),
            spent: Mutex::new(HashMap::new()),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

impl Store {
    /// Holds every later write to `limits`.
    pub fn limit_writes(&self, limits: WriteLimits) {
        *self.disk.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// Whether a write by an ordinary user would be taken now: the error
    /// says why not (a failed disk, or free space below the reserve). The
    /// server's health follows this.
    pub fn can_write(&self) -> Result<()> {
        self.unbroken()?;
        self.check_space()
    }

    /// Refuses while the disk has failed (unflushed data may be in the engine).
    pub(super) fn unbroken(&self) -> Result<()> {
        match &*self.disk.broken.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some(why) => Err(Error::Unwritable(format!(
                "the server cannot write to its disk ({why}); nothing more is stored or shown \
                 until it can. It recovers by itself once space is freed on the server: try \
                 again in a minute (the tablet keeps its data)"
            ))),
        }
    }

    fn check_space(&self) -> Result<()> {
        let limits = self.disk.limits.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if limits.min_free_bytes == 0 && limits.min_free_percent <= 0.0 {
            return Ok(());
        }
        let Some(Space { free, total }) = self.engine.space()? else {
            return Ok(());
        };
        let reserve = limits.reserve(total);
        if free >= reserve {
            return Ok(());
        }
        Err(Error::Exhausted(format!(
            "the server's disk is nearly full: {} MiB free, below the {} MiB it keeps in reserve; \
             nothing was stored. An admin must free space on the server (the tablet keeps its \
             data and can sync later)",
            mib(free),
            mib(reserve)
        )))
    }

    /// Lets a write of `bytes` by `caller` through, or says why not: called
    /// under the write lock, before anything is written. The bytes are
    /// counted against the caller's day.
    pub(super) fn admit(&self, caller: &User, bytes: u64, now_ms: u64) -> Result<()> {
        self.unbroken()?;
        if caller.role == Role::Admin {
            return Ok(());
        }
        self.check_space()?;
        let budget = self.disk.limits.lock().unwrap_or_else(|e| e.into_inner()).user_bytes_per_day;
        if budget == 0 {
            return Ok(());
        }
        let today = now_ms / DAY_MS;
        let mut spent = self.disk.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.retain(|_, (day, _)| *day == today);
        let used = spent.get(&caller.id).map_or(0, |(_, used)| *used);
        if used.saturating_add(bytes) > budget {
            return Err(Error::Exhausted(format!(
                "{} has stored {} MiB today and this write needs {} MiB more, past the daily \
                 limit of {} MiB per user; nothing was stored. Sync again after 00:00 UTC, or ask \
                 an admin to raise the limit (--user-mib-per-day)",
                caller.id,
                mib(used),
                mib(bytes),
                mib(budget)
            )));
        }
        spent.insert(caller.id.clone(), (today, used + bytes));
        Ok(())
    }

    /// Numbers a write about to be applied (under the write lock).
    pub(super) fn write_started(&self) -> u64 {
        self.disk.started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Notes that write `n` is applied (under the write lock).
    pub(super) fn write_applied(&self, n: u64) {
        self.disk.applied.fetch_max(n, Ordering::SeqCst);
    }

    /// Notes that every write up to `n` is on disk.
    pub(super) fn flushed_through(&self, n: u64) {
        self.disk.flushed.fetch_max(n, Ordering::SeqCst);
        self.flush_moved();
    }

    fn flush_moved(&self) {
        let _lock = self.disk.flush_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.disk.flush_moved.notify_all();
    }

    /// Stops writing after `e` failed a write or a flush: until the engine
    /// is reopened, writes and reads of what may not be on disk are refused.
    pub(super) fn broke(&self, e: fieldsync_store::Error) -> Error {
        let mut broken = self.disk.broken.lock().unwrap_or_else(|e| e.into_inner());
        if broken.is_none() {
            *broken = Some(e.to_string());
        }
        drop(broken);
        self.flush_moved();
        match self.unbroken() {
            Err(refusal) => refusal,
            Ok(()) => Error::Storage(e),
        }
    }

    /// Makes sure that a read that has just run saw only what is on disk:
    /// if some write may not be flushed yet, waits for the flush its writer
    /// does next (or, should that take long, flushes itself) and, should
    /// that fail, errors instead of letting the read be shown. Costs two
    /// atomic loads when every write is flushed.
    pub fn settle(&self) -> Result<()> {
        self.unbroken()?;
        let started = self.disk.started.load(Ordering::SeqCst);
        if self.disk.flushed.load(Ordering::SeqCst) >= started {
            return Ok(());
        }
        // A writer may be applying its batch; once it has, everything that
        // read could have seen is applied and the flush below covers it.
        drop(self.read_lock());
        let applied = self.disk.applied.load(Ordering::SeqCst);
        let lock = self.disk.flush_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pending = |_: &mut ()| {
            self.disk.flushed.load(Ordering::SeqCst) < applied && self.unbroken().is_ok()
        };
        let (lock, waited) = self
            .disk
            .flush_moved
            .wait_timeout_while(lock, Duration::from_secs(1), pending)
            .unwrap_or_else(|e| e.into_inner());
        drop(lock);
        if !waited.timed_out() {
            return self.unbroken();
        }
        if let Err(e) = self.engine.flush() {
            return Err(self.broke(e));
        }
        self.flushed_through(applied);
        // A write that failed after the read began: its data may have been seen.
        self.unbroken()
    }

    /// Reopens the engine if a write or flush failed, dropping whatever
    /// was not flushed, and reloads what the store keeps in memory beside
    /// the records. Returns whether it reopened; fails (and stays unable
    /// to write) while the engine cannot be opened again.
    pub fn recover(&self) -> Result<bool> {
        if self.unbroken().is_ok() {
            return Ok(false);
        }
        // Opening sled on a disk that is still full can tear its log.
        if let Some(Space { free, total }) = self.engine.space()? {
            let limits = self.disk.limits.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let needed = limits.reserve(total).max(crate::config::REOPEN_FREE_BYTES);
            if free < needed {
                return Err(Error::Unwritable(format!(
                    "{} MiB free: the store is reopened once {} MiB are",
                    mib(free),
                    mib(needed)
                )));
            }
        }
        let mut locked = self.write_lock();
        self.engine.reopen()?;
        let catalogue = Store::stored_catalogue(self.engine.as_ref())?;
        let closed = super::txn::closed_periods(self.engine.as_ref())?;
        let head = self.engine.get(META, SEQ_KEY)?.map_or(Ok(0), |b| read_u64(META, &b))?;
        *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(catalogue);
        locked.writes.closed = closed;
        self.durable.fetch_max(head, Ordering::SeqCst);
        self.forget_sign_ins();
        let started = self.disk.started.load(Ordering::SeqCst);
        self.write_applied(started);
        self.flushed_through(started);
        *self.disk.broken.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!(head, "store reopened: writing again; writes never flushed were dropped");
        Ok(true)
    }
}
