//! The server's store: submissions, field states, revisions, conflicts,
//! reviews, the change log, the audit trail, users and tokens, laid out on an
//! [`Engine`] (the layout: `schema.rs`). Every write (a push, a review
//! decision, an admin change) is one unit of work (`txn.rs`): one atomic,
//! flushed batch that also moves the sequence counters, so what the caller
//! is told happened is on disk, whole.
//!
//! By job: `schema` (trees, keys, records), `txn` (the unit of work, built
//! from the write lock), `log` (the change log and its commune cuts),
//! `migrate` (on open), `push` and `pull` (sync), `clock`, and beside them
//! review, admin, enrollment, rollups, backups, the disk and the checks.

mod admin;
mod backup;
mod check;
mod clock;
mod commune;
mod disk;
mod enroll;
mod log;
mod migrate;
mod pull;
mod push;
mod review;
mod rollup;
mod schema;
mod trail;
mod tree;
mod txn;

use std::sync::{Arc, RwLock};

use fieldsync::access::{Action, User};
use fieldsync::sync::FieldRef;
use fieldsync::sync::{Conflict, FieldState};
use fieldsync::{Catalogue, DeviceId, Period, SubmissionId};
use fieldsync_store::Engine;

use schema::{decode, read_u64, Key, CATALOGUE_KEY, META, SEQ_KEY, TREE_KEY};
use txn::{Locked, Writes};

pub use admin::{Imported, ADMIN_TOKEN_ENV};
pub use clock::{now_ms, server_hlc, MAX_CLOCK_SKEW_MS};
pub use disk::WriteLimits;
pub use enroll::{display_code, Redeemed, NOT_VALID};
pub use pull::PAGE_BYTES;
pub use review::{Choice, HistoryQuery, MAX_BULK};
pub use rollup::{PlanRow, Total};
pub use schema::{DeviceState, Enrollment, SubmissionHeader, TokenInfo};
pub use tree::TreeChanged;

/// The device recorded for changes made on the server itself (resolutions).
pub const SERVER_DEVICE: DeviceId = DeviceId(uuid::Uuid::nil());

/// Errors of the server's store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request as a whole is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The request does not follow from what the server has (a gap in a
    /// device's mutation ids, a cursor from another store).
    #[error("{0}")]
    OutOfSequence(String),
    /// A device sent a mutation under an id the server committed for a
    /// different mutation: the tablet's store is older than what it sent
    /// (restored from a copy). Its unsent edits belong after `last`.
    #[error(
        "mutation {id} differs from the one this tablet sent under that id before (its store was \
         restored from an older copy?): the server has its mutations up to {last}; number the \
         unsent edits from {next} and send them again (`fieldsync sync` does this)",
        next = last + 1
    )]
    Reused { id: u64, last: u64 },
    #[error("{0}")]
    NotFound(String),
    /// Input refused in terms each edge words in its user's language.
    #[error("{0}")]
    Refused(fieldsync::Reason),
    /// No valid token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Outside the caller's role or areas.
    #[error("{0}")]
    Denied(String),
    /// Past a limit on what may be stored: the disk's free-space reserve,
    /// or the caller's daily write budget. Nothing was stored.
    #[error("{0}")]
    Exhausted(String),
    /// The disk failed a write or a flush: nothing more is stored (or shown
    /// from what may not be on disk) until the store is reopened.
    #[error("{0}")]
    Unwritable(String),
    #[error(transparent)]
    Storage(#[from] fieldsync_store::Error),
    /// A stored record cannot be read: the store is damaged.
    #[error("corrupt record in {tree}: {why}")]
    Corrupt { tree: &'static str, why: String },
}

impl From<fieldsync::Error> for Error {
    fn from(e: fieldsync::Error) -> Self {
        match e {
            fieldsync::Error::Invalid(m) => Error::Invalid(m),
            fieldsync::Error::NotFound(m) => Error::NotFound(m),
            e @ fieldsync::Error::TooLong { .. } => Error::Invalid(e.to_string()),
            fieldsync::Error::Refused(r) => Error::Refused(r),
        }
    }
}

impl From<fieldsync::access::Denied> for Error {
    fn from(e: fieldsync::access::Denied) -> Self {
        Error::Denied(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The server's store. Writers are serialized and pull pages read under the
/// same lock, so a page never sees half a batch.
pub struct Store {
    engine: Arc<dyn Engine>,
    catalogue: RwLock<Arc<Catalogue>>,
    /// The write lock, over what every write checks and only a write
    /// changes (pull pages take it to read, so they never see half a batch).
    lock: parking_lot::RwLock<Writes>,
    /// The change-log head as far as it is on disk: pulls read up to here,
    /// so no tablet learns of a change that a crash could still undo.
    durable: std::sync::atomic::AtomicU64,
    /// Tokens seen lately (by SHA-256) with their user, so that signing a
    /// call in reads no record; emptied by every change to users or tokens.
    sign_ins: RwLock<admin::SignIns>,
    /// Free-space reserve, write budgets, and whether the disk failed.
    disk: disk::Disk,
}

impl Store {
    /// Opens a store; an empty one is given `initial` as its catalogue, and
    /// a store written by an older version is brought up to date.
    pub fn open(engine: Arc<dyn Engine>, initial: impl FnOnce() -> Catalogue) -> Result<Self> {
        let (engine, disk) = disk::watch(engine);
        migrate::initialise(engine.as_ref(), initial)?;
        let catalogue = Self::stored_catalogue(engine.as_ref())?;
        migrate::run(engine.as_ref(), &catalogue)?;
        Self::with(engine, disk, catalogue)
    }

    /// Opens a store that must already exist, to read it (`check`, `backup`):
    /// nothing is written, not even the migrations [`Store::open`] would run.
    pub fn open_existing(engine: Arc<dyn Engine>) -> Result<Self> {
        let (engine, disk) = disk::watch(engine);
        let catalogue = Self::stored_catalogue(engine.as_ref())?;
        if !migrate::is_current(engine.as_ref())? {
            return Err(Error::Invalid(
                "this store was written by an older fieldsync: start the server on it once to \
                 bring it up to date"
                    .into(),
            ));
        }
        Self::with(engine, disk, catalogue)
    }

    /// The stored catalogue with the tree's past, if it has one.
    pub(super) fn stored_catalogue(engine: &dyn Engine) -> Result<Catalogue> {
        let catalogue: Catalogue = match Key::Meta(CATALOGUE_KEY).get(engine)? {
            Some(bytes) => decode(META, &bytes)?,
            None => {
                return Err(Error::Corrupt {
                    tree: META,
                    why: "the store has no catalogue: it is empty or damaged".into(),
                })
            }
        };
        match Key::Meta(TREE_KEY).get(engine)? {
            None => Ok(catalogue),
            Some(bytes) => catalogue
                .with_history(decode(META, &bytes)?)
                .map_err(|e| Error::Corrupt { tree: META, why: e.to_string() }),
        }
    }

    fn with(engine: Arc<dyn Engine>, disk: disk::Disk, catalogue: Catalogue) -> Result<Self> {
        let closed = txn::closed_periods(engine.as_ref())?;
        let durable = Key::Meta(SEQ_KEY).get(engine.as_ref())?;
        let durable = durable.map_or(Ok(0), |b| read_u64(META, &b))?;
        Ok(Store {
            durable: durable.into(),
            sign_ins: RwLock::new(admin::SignIns::default()),
            disk,
            engine,
            catalogue: RwLock::new(Arc::new(catalogue)),
            lock: parking_lot::RwLock::new(Writes { closed }),
        })
    }

    /// The catalogue as it stands now.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        Arc::clone(&self.catalogue.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes the write lock: the only way to start a [`Work`].
    fn write_lock(&self) -> Locked<'_> {
        Locked { store: self, writes: self.lock.write() }
    }

    fn read_lock(&self) -> parking_lot::RwLockReadGuard<'_, Writes> {
        self.lock.read()
    }

    fn counter(&self, key: &'static [u8]) -> Result<u64> {
        Key::Meta(key).get(self.engine.as_ref())?.map_or(Ok(0), |b| read_u64(META, &b))
    }

    /// The sequence number of the latest committed change.
    pub fn head(&self) -> Result<u64> {
        self.counter(SEQ_KEY)
    }

    /// The sequence number of the latest change on disk: what pulls reach.
    pub fn durable_head(&self) -> u64 {
        self.durable.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn device(&self, device: DeviceId) -> Result<DeviceState> {
        Key::Device(device)
            .get(self.engine.as_ref())?
            .map_or(Ok(DeviceState::default()), |b| DeviceState::decode(&b))
    }

    pub fn flush(&self) -> Result<()> {
        self.engine.flush().map_err(|e| self.broke(e))
    }

    /// The report of `village` for `period` as stored, through its commune
    /// record.
    fn report(&self, village: &str, period: Period) -> Result<Option<schema::Report>> {
        let place = commune::place_of(&self.catalogue(), village, period);
        let sub = SubmissionId::of(village, period);
        commune::Reader::new(self.engine.as_ref()).report(&place, sub)
    }

    /// The current state of one field.
    pub fn field(&self, at: &FieldRef) -> Result<Option<FieldState>> {
        Ok(self.report(&at.village_id, at.period)?.and_then(|r| r.field(&at.field)))
    }

    /// Every field of the report of `village` for `period`.
    pub fn fields_of(&self, village: &str, period: Period) -> Result<Vec<FieldState>> {
        Ok(self.report(village, period)?.map(|r| r.fields()).unwrap_or_default())
    }

    /// The conflict on one field, open or settled, if any.
    pub fn conflict(&self, at: &FieldRef) -> Result<Option<Conflict>> {
        let report = self.report(&at.village_id, at.period)?;
        Ok(report.and_then(|r| r.conflicts.get(&at.field).map(|(c, _)| c.clone())))
    }

    /// The conflicts of the report of `village` for `period`, open or
    /// settled.
    pub fn conflicts_of(&self, village: &str, period: Period) -> Result<Vec<Conflict>> {
        Ok(self.report(village, period)?.map(|r| r.conflicts()).unwrap_or_default())
    }

    /// Every conflict, open or settled, in (submission, field) order.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        let mut reader = commune::Reader::new(self.engine.as_ref());
        let mut out = Vec::new();
        for entry in self.engine.iter_all(schema::CONFLICTED) {
            let (key, value) = entry?;
            let Key::Conflicted(sub, field) = Key::decode(schema::CONFLICTED, &key)? else {
                unreachable!("the conflicted tree decodes to its keys")
            };
            let place = schema::decode_conflicted(&value)?;
            let report = reader.report(&place, sub)?;
            if let Some((c, _)) = report.as_ref().and_then(|r| r.conflicts.get(&field)) {
                out.push(c.clone());
            }
        }
        Ok(out)
    }

    /// The header of the report of `village` for `period`.
    pub fn submission(&self, village: &str, period: Period) -> Result<Option<SubmissionHeader>> {
        Ok(self.report(village, period)?.map(|r| r.header))
    }

    /// Every submission, in (commune, period, id) order.
    pub fn submissions(&self) -> Result<Vec<SubmissionHeader>> {
        let mut out = Vec::new();
        for entry in self.engine.iter_all(schema::COMMUNES) {
            let record = schema::CommuneRecord::decode(&entry?.1)?;
            out.extend(record.reports.into_values().map(|r| r.header));
        }
        Ok(out)
    }

    /// Every value one field has held, oldest first.
    pub fn revisions(&self, at: &FieldRef) -> Result<Vec<FieldState>> {
        let place = commune::place_of(&self.catalogue(), &at.village_id, at.period);
        let Some(report) = self.report(&at.village_id, at.period)? else {
            return Ok(Vec::new());
        };
        let engine = self.engine.as_ref();
        let mut revisions = commune::revisions_of(engine, &place, at.submission, &at.field)?;
        let current = report.fields.get(&at.field);
        revisions.retain(|r| current.is_none_or(|c| r.held.version < c.version));
        let mut states: Vec<FieldState> = revisions.iter().map(|r| report.revision(r)).collect();
        states.extend(report.field(&at.field));
        Ok(states)
    }
}

/// Checks that `area` is an org unit the caller may read.
fn readable_area(catalogue: &Catalogue, caller: &User, area: &str) -> Result<()> {
    catalogue.org_unit(area).ok_or_else(|| Error::NotFound(format!("unknown area {area:?}")))?;
    Ok(caller.check(catalogue, Action::Read, area)?)
}

#[cfg(test)]
mod tests;
