//! The server's store: submissions, field states, revisions, conflicts,
//! reviews, the change log, the audit trail, users and tokens, laid out on an
//! [`Engine`]. Every write (a push, a review decision, an admin change) is
//! one atomic, flushed batch that also moves the sequence counters, so what
//! the caller is told happened is on disk, whole.
//!
//! Trees (keys → values, values postcard-encoded):
//! - `meta`: `seq` → head of the change log; `audit_seq` → head of the audit
//!   trail; `catalogue` → the catalogue.
//! - `fields`: submission ‖ field → [`FieldState`].
//! - `revisions`: submission ‖ field ‖ 0 ‖ version → [`FieldState`]; every value a field held.
//! - `conflicts`: submission ‖ field → [`Conflict`], open or settled.
//! - `submissions`: submission → [`SubmissionHeader`] (with its review).
//! - `changes`: seq → entity key; one entry per entity, at its latest change.
//! - `changes_by_commune`: commune ‖ 0 ‖ seq → entity key: the same log cut
//!   by commune, so a tablet's pull reads only its communes' changes.
//! - `entity_seq`: entity key → seq; finds the entry to move.
//! - `devices`: device → [`DeviceState`]; `results`: device ‖ mutation id → result.
//! - `digests`: device ‖ mutation id → SHA-256 of the mutation, kept once its
//!   result is released, so a different mutation under a used id is told
//!   from a replay.
//! - `audit`: audit seq → [`AuditEntry`]; `audit_by_sub`, `audit_by_user`:
//!   submission or user ‖ audit seq → ().
//! - `closed`: org unit ‖ 0 ‖ period → who closed it.
//! - `users`: user id → [`User`]; `tokens`: SHA-256 of a token → [`TokenInfo`];
//!   `token_ids`: token id → SHA-256.
//! - `enrollments`, `enrollment_ids`, `enrollments_by_user`: one-time
//!   enrollment codes by the SHA-256 of the code (see `enroll.rs`).
//! - `rollups`, `plans`: totals and plan figures per period, org unit and
//!   indicator (see `rollup.rs`), moved in the same batch as the records.

mod admin;
mod backup;
mod check;
mod disk;
mod enroll;
mod review;
mod rollup;

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use fieldsync::access::{Action, User};
use fieldsync::merge::{self, Edit};
use fieldsync::review::{after_edit, ReviewState};
use fieldsync::sync::{
    AuditEntry, AuditKind, Change, Conflict, FieldRef, FieldState, Mutation, MutationResult,
    Outcome, Page, Stamp, SubmissionReview,
};
use fieldsync::validate::{check_parts, part_siblings, validate};
use fieldsync::{Catalogue, DeviceId, FieldKey, Hlc, Level, Period, SubmissionId, Value};
use fieldsync_store::{scan_prefix, Batch, Engine};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use admin::{TokenInfo, ADMIN_TOKEN_ENV};
pub use disk::WriteLimits;
pub use enroll::{display_code, Enrollment, Redeemed, NOT_VALID};
pub use review::{Choice, HistoryQuery, MAX_BULK};
pub use rollup::{PlanRow, Total};

const META: &str = "meta";
const FIELDS: &str = "fields";
const REVISIONS: &str = "revisions";
const CONFLICTS: &str = "conflicts";
const CHANGES: &str = "changes";
const ENTITY_SEQ: &str = "entity_seq";
const SUBMISSIONS: &str = "submissions";
const DEVICES: &str = "devices";
const RESULTS: &str = "results";
const DIGESTS: &str = "digests";
const AUDIT: &str = "audit";
const AUDIT_BY_SUB: &str = "audit_by_sub";
const AUDIT_BY_USER: &str = "audit_by_user";
const CLOSED: &str = "closed";
const USERS: &str = "users";
const TOKENS: &str = "tokens";
const TOKEN_IDS: &str = "token_ids";
const ENROLLMENTS: &str = "enrollments";
const ENROLLMENT_IDS: &str = "enrollment_ids";
const ENROLLMENTS_BY_USER: &str = "enrollments_by_user";
const ROLLUPS: &str = "rollups";
const PLANS: &str = "plans";
const CHANGES_BY_COMMUNE: &str = "changes_by_commune";
/// Every submission under its commune: `cut ‖ 0 ‖ submission id` (empty
/// values), so that listing an area reads only its communes' reports.
const SUBMISSIONS_BY_COMMUNE: &str = "submissions_by_commune";
/// A caller whose areas span more communes than this reads the whole log.
const MAX_CUTS: usize = 512;
/// Every tree of the store, for backups: a new tree must be listed here.
const TREES: &[&str] = &[
    META,
    FIELDS,
    REVISIONS,
    CONFLICTS,
    CHANGES,
    ENTITY_SEQ,
    SUBMISSIONS,
    DEVICES,
    RESULTS,
    DIGESTS,
    AUDIT,
    AUDIT_BY_SUB,
    AUDIT_BY_USER,
    CLOSED,
    USERS,
    TOKENS,
    TOKEN_IDS,
    ROLLUPS,
    PLANS,
    CHANGES_BY_COMMUNE,
    SUBMISSIONS_BY_COMMUNE,
    ENROLLMENTS,
    ENROLLMENT_IDS,
    ENROLLMENTS_BY_USER,
];

const SEQ_KEY: &[u8] = b"seq";
const AUDIT_SEQ_KEY: &[u8] = b"audit_seq";
const CATALOGUE_KEY: &[u8] = b"catalogue";
/// Names the cut of the change log the store keeps (stores written before
/// the log was cut by commune lack it).
const CUT_KEY: &[u8] = b"cut";
/// Present once every submission is in `submissions_by_commune` (stores
/// written before that index get it when opened).
const BY_COMMUNE_KEY: &[u8] = b"submissions_by_commune";

/// A pull page stops growing once its records pass this many bytes (it
/// always holds at least one change), so pages stay well under the 4 MiB
/// message limit whatever the notes hold.
pub const PAGE_BYTES: usize = 1024 * 1024;

/// How far ahead of the server's clock a tablet's clock may claim to be.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

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
        }
    }
}

impl From<fieldsync::access::Denied> for Error {
    fn from(e: fieldsync::access::Denied) -> Self {
        Error::Denied(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A submission the server has heard of, and where it stands in review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionHeader {
    pub id: SubmissionId,
    pub village_id: String,
    pub period: Period,
    pub first_seq: u64,
    pub review: SubmissionReview,
}

/// A mutation's result, with a digest of the mutation so that a replay can be
/// told from a different mutation reusing the id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredResult {
    digest: [u8; 32],
    result: MutationResult,
}

fn digest(m: &Mutation) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(encode(m)).into()
}

/// What the server remembers of a device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    pub last_mutation_id: u64,
    pub last_push_ms: u64,
    /// The user whose pushes this tablet id carries; set by its first push.
    pub owner: String,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("in-memory serialization of plain data cannot fail")
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt { tree, why: e.to_string() })
}

fn field_key(sub: SubmissionId, field: &FieldKey) -> Vec<u8> {
    let mut key = sub.0.as_bytes().to_vec();
    key.extend_from_slice(field.as_str().as_bytes());
    key
}

fn revision_key(sub: SubmissionId, field: &FieldKey, version: u64) -> Vec<u8> {
    let mut key = field_key(sub, field);
    key.push(0);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

fn result_key(device: DeviceId, id: u64) -> Vec<u8> {
    let mut key = device.0.as_bytes().to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `prefix ‖ 0 ‖ seq`: an index entry ordered by sequence within its prefix.
fn indexed(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// What a change-log entry points at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Entity {
    Field(SubmissionId, FieldKey),
    Conflict(SubmissionId, FieldKey),
    Review(SubmissionId),
}

impl Entity {
    fn key(&self) -> Vec<u8> {
        encode(self)
    }
}

fn read_u64(tree: &'static str, bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] =
        bytes.try_into().map_err(|_| Error::Corrupt { tree, why: "expected 8 bytes".into() })?;
    Ok(u64::from_be_bytes(array))
}

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
        if engine.get(META, CATALOGUE_KEY)?.is_none() {
            let catalogue = initial();
            let mut batch = Batch::default();
            batch.put(META, CATALOGUE_KEY, encode(&catalogue));
            batch.put(META, SEQ_KEY, 0u64.to_be_bytes());
            batch.put(META, CUT_KEY, CHANGES_BY_COMMUNE);
            batch.put(META, BY_COMMUNE_KEY, b"1".as_slice());
            engine.commit(batch)?;
            tracing::info!(
                indicators = catalogue.indicators.len(),
                org_units = catalogue.org_units.len(),
                "new store: loaded the catalogue"
            );
        }
        let catalogue = Self::stored_catalogue(engine.as_ref())?;
        if engine.get(META, CUT_KEY)?.is_none() {
            cut_the_log_by_commune(engine.as_ref(), &catalogue)?;
        }
        if engine.get(META, BY_COMMUNE_KEY)?.is_none() {
            index_submissions_by_commune(engine.as_ref(), &catalogue)?;
        }
        Self::with(engine, disk, catalogue)
    }

    /// Opens a store that must already exist, to read it (`check`, `backup`):
    /// nothing is written, not even the migrations [`Store::open`] would run.
    pub fn open_existing(engine: Arc<dyn Engine>) -> Result<Self> {
        let (engine, disk) = disk::watch(engine);
        let catalogue = Self::stored_catalogue(engine.as_ref())?;
        let current =
            engine.get(META, CUT_KEY)?.is_some() && engine.get(META, BY_COMMUNE_KEY)?.is_some();
        if !current {
            return Err(Error::Invalid(
                "this store was written by an older fieldsync: start the server on it once to \
                 bring it up to date"
                    .into(),
            ));
        }
        Self::with(engine, disk, catalogue)
    }

    fn stored_catalogue(engine: &dyn Engine) -> Result<Catalogue> {
        match engine.get(META, CATALOGUE_KEY)? {
            Some(bytes) => decode(META, &bytes),
            None => Err(Error::Corrupt {
                tree: META,
                why: "the store has no catalogue: it is empty or damaged".into(),
            }),
        }
    }

    fn with(engine: Arc<dyn Engine>, disk: disk::Disk, catalogue: Catalogue) -> Result<Self> {
        let closed = closed_periods(engine.as_ref())?;
        let durable = engine.get(META, SEQ_KEY)?.map_or(Ok(0), |b| read_u64(META, &b))?;
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

    fn counter(&self, key: &[u8]) -> Result<u64> {
        self.engine.get(META, key)?.map_or(Ok(0), |b| read_u64(META, &b))
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
        self.engine
            .get(DEVICES, device.0.as_bytes())?
            .map_or(Ok(DeviceState::default()), |b| decode(DEVICES, &b))
    }

    pub fn flush(&self) -> Result<()> {
        self.engine.flush().map_err(|e| self.broke(e))
    }

    /// Applies a device's batch of mutations on behalf of `caller`: replays
    /// get their stored results, new mutations are checked, validated and
    /// merged, and everything is committed atomically and flushed before this
    /// returns.
    pub fn push(
        &self,
        caller: &User,
        device: DeviceId,
        mutations: &[Mutation],
        acknowledged_through: u64,
        now_ms: u64,
    ) -> Result<Vec<MutationResult>> {
        if !caller.may(Action::Record) {
            return Err(Error::Denied(format!(
                "permission denied: a {} may not record values",
                caller.role.as_str()
            )));
        }
        for pair in mutations.windows(2) {
            if pair[0].id.checked_add(1) != Some(pair[1].id) {
                return Err(Error::Invalid(format!(
                    "mutation ids must be consecutive within a push: {} is followed by {}",
                    pair[0].id, pair[1].id
                )));
            }
        }
        if mutations.first().is_some_and(|m| m.id == 0) {
            return Err(Error::Invalid("mutation ids start at 1".into()));
        }
        if device == SERVER_DEVICE {
            return Err(Error::Invalid(
                "the all-zero device id is the server's own: give the tablet a random UUID".into(),
            ));
        }
        let guard = self.write_lock();
        self.unbroken()?;
        let mut state = self.device(device)?;
        if state.owner.is_empty() {
            state.owner = caller.id.clone();
        } else if state.owner != caller.id {
            return Err(Error::Denied(format!(
                "permission denied: tablet {device} belongs to another user; set this tablet up \
                 again with `fieldsync init` to get an id of its own"
            )));
        }
        let first_new = state.last_mutation_id + 1;
        if let Some(m) = mutations.iter().find(|m| m.id > state.last_mutation_id) {
            if m.id != first_new {
                return Err(Error::OutOfSequence(format!(
                    "the server has this device's mutations up to {}, so the next is {first_new}, \
                     not {}: resend the outbox from {first_new}",
                    state.last_mutation_id, m.id
                )));
            }
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        let mut results = Vec::with_capacity(mutations.len());
        for m in mutations {
            let result = if m.id < first_new {
                self.replay(device, m, state.last_mutation_id)?
            } else {
                let stamp = Stamp {
                    hlc: m.hlc.bounded(now_ms, MAX_CLOCK_SKEW_MS),
                    device,
                    author: caller.name.clone(),
                    received_at_ms: now_ms,
                    mutation_id: m.id,
                };
                let result = work.apply(m, stamp)?;
                let stored = StoredResult { digest: digest(m), result };
                work.batch.put(RESULTS, result_key(device, m.id), encode(&stored));
                state.last_mutation_id = m.id;
                stored.result
            };
            results.push(result);
        }
        let forget_through = acknowledged_through.min(state.last_mutation_id);
        if forget_through > 0 {
            let from = result_key(device, 0);
            let to = result_key(device, forget_through);
            let range = (Bound::Included(from.as_slice()), Bound::Included(to.as_slice()));
            for (key, bytes) in self.engine.scan(RESULTS, range.0, range.1, usize::MAX)? {
                // The digest outlives the result: a later mutation under the
                // same id must still be told from a replay.
                let stored: StoredResult = decode(RESULTS, &bytes)?;
                work.batch.put(DIGESTS, key.clone(), stored.digest.to_vec());
                work.batch.delete(RESULTS, key);
            }
        }
        state.last_push_ms = now_ms;
        work.batch.put(DEVICES, device.0.as_bytes().to_vec(), encode(&state));
        work.commit()?;
        Ok(results)
    }

    /// The answer to a mutation under an id the server has committed for
    /// `device`: its stored result, or "forgotten" once the tablet has
    /// acknowledged it, if it is the mutation that was committed; refused if
    /// it differs (only ids released before digests were kept go unchecked).
    fn replay(&self, device: DeviceId, m: &Mutation, last: u64) -> Result<MutationResult> {
        let key = result_key(device, m.id);
        let reused = Error::Reused { id: m.id, last };
        if let Some(bytes) = self.engine.get(RESULTS, &key)? {
            let stored: StoredResult = decode(RESULTS, &bytes)?;
            return match stored.digest == digest(m) {
                true => Ok(stored.result),
                false => Err(reused),
            };
        }
        if let Some(kept) = self.engine.get(DIGESTS, &key)? {
            if kept.as_slice() != digest(m).as_slice() {
                return Err(reused);
            }
        }
        Ok(MutationResult {
            id: m.id,
            outcome: Outcome::Forgotten,
            reason: "committed earlier; the detailed result was released".into(),
            current: None,
        })
    }

    /// Up to `limit` entities in `caller`'s areas changed after `cursor`,
    /// each once, in the order of their latest change, up to the durable
    /// head of the log. A caller whose areas lie within districts reads only
    /// its communes' part of the log.
    pub fn pull(&self, caller: &User, cursor: u64, limit: usize) -> Result<Page> {
        let _guard = self.read_lock();
        let head = self.durable_head();
        if cursor > head {
            return Err(Error::OutOfSequence(format!(
                "cursor {cursor} is ahead of this server's change log ({head}): the device synced \
                 with another store; re-initialise it"
            )));
        }
        let catalogue = self.catalogue();
        let limit = limit.max(1);
        // (seq, entity) in order, and the seq up to which the log was read whole.
        let (entries, read_through) = match cuts_of(&catalogue, caller) {
            None => {
                let (from, to) = (cursor.to_be_bytes(), head.to_be_bytes());
                let entries = self.engine.scan(
                    CHANGES,
                    Bound::Excluded(&from),
                    Bound::Included(&to),
                    limit,
                )?;
                let full = entries.len() < limit;
                let entries = entries
                    .into_iter()
                    .map(|(k, v)| Ok((read_u64(CHANGES, &k)?, v)))
                    .collect::<Result<Vec<_>>>()?;
                let through = if full { head } else { entries.last().map_or(head, |e| e.0) };
                (entries, through)
            }
            Some(cuts) => merge_cuts(self.engine.as_ref(), &cuts, cursor, head, limit)?,
        };
        let mut changes = Vec::new();
        let mut bytes = 0;
        let mut last_seen = cursor;
        let mut stopped = false;
        for (seq, entity) in entries {
            if bytes >= PAGE_BYTES || changes.len() >= limit {
                stopped = true;
                break;
            }
            let (tree, key) = match decode::<Entity>(CHANGES, &entity)? {
                Entity::Field(sub, field) => (FIELDS, field_key(sub, &field)),
                Entity::Conflict(sub, field) => (CONFLICTS, field_key(sub, &field)),
                Entity::Review(sub) => (SUBMISSIONS, sub.0.as_bytes().to_vec()),
            };
            let record = self.engine.get(tree, &key)?.ok_or_else(|| Error::Corrupt {
                tree,
                why: format!("change {seq} points at a missing record"),
            })?;
            last_seen = seq;
            let change = match tree {
                FIELDS => Change::Field(decode(tree, &record)?),
                CONFLICTS => Change::Conflict(decode(tree, &record)?),
                _ => Change::Review(decode::<SubmissionHeader>(tree, &record)?.review),
            };
            let village = match &change {
                Change::Field(f) => &f.at.village_id,
                Change::Conflict(c) => &c.at.village_id,
                Change::Review(r) => &r.village_id,
            };
            if caller.covers(&catalogue, village) {
                bytes += record.len();
                changes.push((seq, change));
            }
        }
        let cursor = if stopped { last_seen } else { read_through.max(cursor) };
        Ok(Page { changes, cursor, caught_up: cursor == head })
    }

    /// The current state of one field.
    pub fn field(&self, sub: SubmissionId, field: &FieldKey) -> Result<Option<FieldState>> {
        self.engine.get(FIELDS, &field_key(sub, field))?.map(|b| decode(FIELDS, &b)).transpose()
    }

    /// Every field of one submission.
    pub fn fields_of(&self, sub: SubmissionId) -> Result<Vec<FieldState>> {
        scan_prefix(self.engine.as_ref(), FIELDS, sub.0.as_bytes(), usize::MAX)?
            .iter()
            .map(|(_, v)| decode(FIELDS, v))
            .collect()
    }

    /// The conflict on one field, open or settled, if any.
    pub fn conflict(&self, sub: SubmissionId, field: &FieldKey) -> Result<Option<Conflict>> {
        self.engine
            .get(CONFLICTS, &field_key(sub, field))?
            .map(|b| decode(CONFLICTS, &b))
            .transpose()
    }

    /// The conflicts of one submission, open or settled.
    pub fn conflicts_of(&self, sub: SubmissionId) -> Result<Vec<Conflict>> {
        scan_prefix(self.engine.as_ref(), CONFLICTS, sub.0.as_bytes(), usize::MAX)?
            .iter()
            .map(|(_, v)| decode(CONFLICTS, v))
            .collect()
    }

    /// Every conflict, open or settled, in field order.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.engine
            .scan(CONFLICTS, Bound::Unbounded, Bound::Unbounded, usize::MAX)?
            .iter()
            .map(|(_, v)| decode(CONFLICTS, v))
            .collect()
    }

    /// One submission's header.
    pub fn submission(&self, sub: SubmissionId) -> Result<Option<SubmissionHeader>> {
        self.engine.get(SUBMISSIONS, sub.0.as_bytes())?.map(|b| decode(SUBMISSIONS, &b)).transpose()
    }

    /// Every submission, in id order.
    pub fn submissions(&self) -> Result<Vec<SubmissionHeader>> {
        self.engine
            .scan(SUBMISSIONS, Bound::Unbounded, Bound::Unbounded, usize::MAX)?
            .iter()
            .map(|(_, v)| decode(SUBMISSIONS, v))
            .collect()
    }

    /// Every value one field has held, oldest first.
    pub fn revisions(&self, sub: SubmissionId, field: &FieldKey) -> Result<Vec<FieldState>> {
        let mut prefix = field_key(sub, field);
        prefix.push(0);
        scan_prefix(self.engine.as_ref(), REVISIONS, &prefix, usize::MAX)?
            .iter()
            .map(|(_, v)| decode(REVISIONS, v))
            .collect()
    }
}

/// What the write lock guards: what a write decides on and only a write
/// changes, so that a check and the write it allows happen under one hold
/// of the lock (a settlement cannot land in a period closed meanwhile).
struct Writes {
    /// The keys of the `closed` tree, kept in memory (a handful per year) so
    /// that checking a value against them costs no reads.
    closed: std::collections::HashSet<Vec<u8>>,
}

impl Writes {
    /// Whether `period` is closed for `village` (by any area above it, for
    /// the period itself, its quarter or its whole year).
    fn is_closed(&self, catalogue: &Catalogue, village: &str, period: Period) -> bool {
        if self.closed.is_empty() {
            return false;
        }
        let mut enclosing = vec![period, Period::Year(period.year())];
        if let Period::Month(y, m) = period {
            enclosing.push(Period::Quarter(y, (m - 1) / 3 + 1));
        }
        catalogue
            .lineage(village)
            .any(|unit| enclosing.iter().any(|&p| self.closed.contains(&closed_key(&unit.id, p))))
    }
}

/// The keys of the `closed` tree, as [`Writes::closed`] keeps them.
fn closed_periods(engine: &dyn Engine) -> Result<std::collections::HashSet<Vec<u8>>> {
    Ok(engine
        .scan(CLOSED, Bound::Unbounded, Bound::Unbounded, usize::MAX)?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

/// The store's write lock, held. A [`Work`] is built from it and keeps it
/// until committed, so no write is built without the lock, and what it
/// checks (closed periods, the catalogue, the records) is read under it.
struct Locked<'a> {
    store: &'a Store,
    writes: parking_lot::RwLockWriteGuard<'a, Writes>,
}

/// (sequence number, entity key) entries of the change log, in order.
type LogEntries = Vec<(u64, Vec<u8>)>;

/// The entries of the change log's `cuts` after `cursor` and up to `head`,
/// merged in sequence order, at most `limit`; and the sequence number up to
/// which every cut was read whole. Each cut is read a chunk at a time, so a
/// caller of many communes reads about `limit` entries, not `limit` per cut.
fn merge_cuts(
    engine: &dyn Engine,
    cuts: &[String],
    cursor: u64,
    head: u64,
    limit: usize,
) -> Result<(LogEntries, u64)> {
    struct Cut<'a> {
        name: &'a str,
        after: u64,
        next: std::collections::VecDeque<(u64, Vec<u8>)>,
        done: bool,
    }
    let chunk = (limit / cuts.len().max(1)).clamp(8, limit.max(8));
    let mut open: Vec<Cut> = cuts
        .iter()
        .map(|name| Cut { name, after: cursor, next: Default::default(), done: false })
        .collect();
    let mut merged = Vec::new();
    while merged.len() < limit {
        for cut in open.iter_mut().filter(|c| c.next.is_empty() && !c.done) {
            let from = indexed(cut.name.as_bytes(), cut.after);
            let end = indexed(cut.name.as_bytes(), head);
            let part = engine.scan(
                CHANGES_BY_COMMUNE,
                Bound::Excluded(&from),
                Bound::Included(&end),
                chunk,
            )?;
            cut.done = part.len() < chunk;
            for (k, v) in part {
                let seq = read_u64(CHANGES_BY_COMMUNE, &k[k.len().saturating_sub(8)..])?;
                cut.after = seq;
                cut.next.push_back((seq, v));
            }
        }
        // Every cut not yet read whole has its next entry in hand, so the
        // smallest of them is the next entry of the merged log.
        let Some(cut) = open.iter_mut().filter(|c| !c.next.is_empty()).min_by_key(|c| c.next[0].0)
        else {
            break;
        };
        merged.extend(cut.next.pop_front());
    }
    let whole = open.iter().all(|c| c.done && c.next.is_empty());
    let through = match whole {
        true => head,
        false => merged.last().map_or(cursor, |e| e.0),
    };
    Ok((merged, through))
}

/// The cut of the change log a village's changes go to: its commune (its
/// nearest unit above the village level, if the catalogue skips communes).
fn cut_of(catalogue: &Catalogue, village: &str) -> String {
    catalogue
        .lineage(village)
        .find(|u| u.level < Level::Village)
        .map_or(String::new(), |u| u.id.clone())
}

/// The cuts of the change log that hold everything `caller` may read, or
/// `None` when that is the whole log (admins, areas that are provinces, and
/// areas spanning more than [`MAX_CUTS`] communes).
fn cuts_of(catalogue: &Catalogue, caller: &User) -> Option<Vec<String>> {
    if caller.role == fieldsync::access::Role::Admin {
        return None;
    }
    let mut cuts = Vec::new();
    for area in &caller.areas {
        if catalogue.org_unit(area)?.level == Level::Province {
            return None;
        }
        cuts.extend(cuts_under(catalogue, area));
        cuts.sort();
        cuts.dedup();
        if cuts.len() > MAX_CUTS {
            return None;
        }
    }
    Some(cuts)
}

/// The cuts (communes) that `area` lies in or spans, each once.
fn cuts_under(catalogue: &Catalogue, area: &str) -> Vec<String> {
    let mut cuts: Vec<String> = match catalogue.org_unit(area).map(|u| u.level) {
        Some(Level::Village) => vec![cut_of(catalogue, area)],
        _ => catalogue
            .units_at(Level::Village, Some(area))
            .into_iter()
            .map(|v| cut_of(catalogue, &v.id))
            .collect(),
    };
    cuts.sort();
    cuts.dedup();
    cuts
}

/// Builds the commune cut of the change log from the log itself and drops
/// the district cut it replaces, in batches; rerunning it after a crash
/// rewrites the same entries, and the marker is written last.
fn cut_the_log_by_commune(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    const CHUNK: usize = 10_000;
    // The earlier cut, by district: no longer one of the store's trees.
    const CHANGES_BY_DISTRICT: &str = "changes_by_district";
    let mut after: Option<Vec<u8>> = None;
    let mut moved = 0usize;
    loop {
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let entries = engine.scan(CHANGES, from, Bound::Unbounded, CHUNK)?;
        let mut batch = Batch::default();
        for (seq, entity) in &entries {
            let seq = read_u64(CHANGES, seq)?;
            let village = match decode::<Entity>(CHANGES, entity)? {
                Entity::Field(sub, field) => engine
                    .get(FIELDS, &field_key(sub, &field))?
                    .map(|b| decode::<FieldState>(FIELDS, &b).map(|f| f.at.village_id)),
                Entity::Conflict(sub, field) => engine
                    .get(CONFLICTS, &field_key(sub, &field))?
                    .map(|b| decode::<Conflict>(CONFLICTS, &b).map(|c| c.at.village_id)),
                Entity::Review(sub) => engine
                    .get(SUBMISSIONS, sub.0.as_bytes())?
                    .map(|b| decode::<SubmissionHeader>(SUBMISSIONS, &b).map(|h| h.village_id)),
            }
            .transpose()?
            .ok_or_else(|| Error::Corrupt {
                tree: CHANGES,
                why: format!("change {seq} points at a missing record"),
            })?;
            let cut = cut_of(catalogue, &village);
            batch.put(CHANGES_BY_COMMUNE, indexed(cut.as_bytes(), seq), entity.clone());
        }
        moved += entries.len();
        engine.commit(batch)?;
        match entries.last() {
            Some((k, _)) if entries.len() == CHUNK => after = Some(k.clone()),
            _ => break,
        }
    }
    loop {
        let old = engine.scan(CHANGES_BY_DISTRICT, Bound::Unbounded, Bound::Unbounded, CHUNK)?;
        if old.is_empty() {
            break;
        }
        let mut batch = Batch::default();
        for (k, _) in old {
            batch.delete(CHANGES_BY_DISTRICT, k);
        }
        engine.commit(batch)?;
    }
    let mut batch = Batch::default();
    batch.put(META, CUT_KEY, CHANGES_BY_COMMUNE);
    engine.commit(batch)?;
    tracing::info!(changes = moved, "cut the change log by commune");
    Ok(())
}

/// The key of a submission in `submissions_by_commune`.
fn by_commune_key(cut: &str, sub: SubmissionId) -> Vec<u8> {
    let mut key = cut.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(sub.0.as_bytes());
    key
}

/// Files every submission under its commune, in batches; rerunning it after
/// a crash rewrites the same entries, and the marker is written last.
fn index_submissions_by_commune(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    const CHUNK: usize = 10_000;
    let mut after: Option<Vec<u8>> = None;
    let mut filed = 0usize;
    loop {
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let headers = engine.scan(SUBMISSIONS, from, Bound::Unbounded, CHUNK)?;
        let mut batch = Batch::default();
        for (_, bytes) in &headers {
            let header: SubmissionHeader = decode(SUBMISSIONS, bytes)?;
            let cut = cut_of(catalogue, &header.village_id);
            batch.put(SUBMISSIONS_BY_COMMUNE, by_commune_key(&cut, header.id), Vec::new());
        }
        filed += headers.len();
        engine.commit(batch)?;
        match headers.last() {
            Some((k, _)) if headers.len() == CHUNK => after = Some(k.clone()),
            _ => break,
        }
    }
    let mut batch = Batch::default();
    batch.put(META, BY_COMMUNE_KEY, b"1".as_slice());
    engine.commit(batch)?;
    tracing::info!(submissions = filed, "filed the submissions by commune");
    Ok(())
}

/// Checks that `area` is an org unit the caller may read.
fn readable_area(catalogue: &Catalogue, caller: &User, area: &str) -> Result<()> {
    catalogue.org_unit(area).ok_or_else(|| Error::NotFound(format!("unknown area {area:?}")))?;
    Ok(caller.check(catalogue, Action::Read, area)?)
}

fn closed_key(unit: &str, period: Period) -> Vec<u8> {
    let mut key = unit.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(period.to_string().as_bytes());
    key
}

/// The effects of one write, accumulated in memory: later steps see earlier
/// ones, and nothing reaches the engine until [`Work::commit`] writes it all
/// in one batch with the moved counters.
struct Work<'a> {
    store: &'a Store,
    /// The write lock, held from the start of the write until its batch is
    /// written.
    lock: parking_lot::RwLockWriteGuard<'a, Writes>,
    caller: &'a User,
    now_ms: u64,
    catalogue: Arc<Catalogue>,
    seq: u64,
    audit_seq: u64,
    fields: HashMap<(SubmissionId, FieldKey), Option<FieldState>>,
    conflicts: HashMap<(SubmissionId, FieldKey), Option<Conflict>>,
    headers: HashMap<SubmissionId, Option<SubmissionHeader>>,
    entity_seqs: HashMap<Entity, Option<u64>>,
    /// Values written in this batch, by (submission, field, version).
    revisions: HashMap<(SubmissionId, FieldKey, u64), Value>,
    /// Submissions whose totals may have moved.
    touched: std::collections::BTreeSet<SubmissionId>,
    batch: Batch,
}

impl<'a> Work<'a> {
    /// Starts a write under the store's write lock, which it keeps.
    fn new(locked: Locked<'a>, caller: &'a User, now_ms: u64) -> Result<Self> {
        let Locked { store, writes } = locked;
        store.unbroken()?;
        Ok(Work {
            store,
            lock: writes,
            caller,
            now_ms,
            catalogue: store.catalogue(),
            seq: store.head()?,
            audit_seq: store.counter(AUDIT_SEQ_KEY)?,
            fields: HashMap::new(),
            conflicts: HashMap::new(),
            headers: HashMap::new(),
            entity_seqs: HashMap::new(),
            revisions: HashMap::new(),
            touched: Default::default(),
            batch: Batch::default(),
        })
    }

    fn field(&mut self, sub: SubmissionId, field: &FieldKey) -> Result<Option<FieldState>> {
        if let Some(f) = self.fields.get(&(sub, field.clone())) {
            return Ok(f.clone());
        }
        let f = self.store.field(sub, field)?;
        self.fields.insert((sub, field.clone()), f.clone());
        Ok(f)
    }

    fn conflict(&mut self, sub: SubmissionId, field: &FieldKey) -> Result<Option<Conflict>> {
        if let Some(c) = self.conflicts.get(&(sub, field.clone())) {
            return Ok(c.clone());
        }
        let c = self.store.conflict(sub, field)?;
        self.conflicts.insert((sub, field.clone()), c.clone());
        Ok(c)
    }

    fn header(&mut self, sub: SubmissionId) -> Result<Option<SubmissionHeader>> {
        if let Some(h) = self.headers.get(&sub) {
            return Ok(h.clone());
        }
        let h = self.store.submission(sub)?;
        self.headers.insert(sub, h.clone());
        Ok(h)
    }

    /// The value a field held at `version`, if that is one of its versions.
    fn value_at(&mut self, at: &FieldRef, version: u64) -> Result<Option<Value>> {
        if version == 0 {
            return Ok(Some(Value::Deleted));
        }
        if let Some(v) = self.revisions.get(&(at.submission, at.field.clone(), version)) {
            return Ok(Some(v.clone()));
        }
        let key = revision_key(at.submission, &at.field, version);
        Ok(self
            .store
            .engine
            .get(REVISIONS, &key)?
            .map(|b| decode::<FieldState>(REVISIONS, &b))
            .transpose()?
            .map(|f| f.value))
    }

    /// Moves an entity to the head of the change log.
    fn touch(&mut self, entity: Entity, village: &str) -> Result<u64> {
        self.seq += 1;
        let cut = cut_of(&self.catalogue, village);
        match &entity {
            Entity::Field(sub, _) | Entity::Conflict(sub, _) | Entity::Review(sub) => {
                self.touched.insert(*sub);
            }
        }
        // A record this batch found missing has no log entry to move (every
        // entry points at a record), so there is nothing to look up.
        let missing = match &entity {
            Entity::Field(sub, f) => matches!(self.fields.get(&(*sub, f.clone())), Some(None)),
            Entity::Conflict(sub, f) => {
                matches!(self.conflicts.get(&(*sub, f.clone())), Some(None))
            }
            Entity::Review(sub) => matches!(self.headers.get(sub), Some(None)),
        };
        let old = match self.entity_seqs.get(&entity) {
            Some(s) => *s,
            None if missing => None,
            None => self
                .store
                .engine
                .get(ENTITY_SEQ, &entity.key())?
                .map(|b| read_u64(ENTITY_SEQ, &b))
                .transpose()?,
        };
        if let Some(old) = old {
            self.batch.delete(CHANGES, old.to_be_bytes().to_vec());
            self.batch.delete(CHANGES_BY_COMMUNE, indexed(cut.as_bytes(), old));
        }
        self.batch.put(CHANGES, self.seq.to_be_bytes().to_vec(), entity.key());
        self.batch.put(CHANGES_BY_COMMUNE, indexed(cut.as_bytes(), self.seq), entity.key());
        self.batch.put(ENTITY_SEQ, entity.key(), self.seq.to_be_bytes().to_vec());
        self.entity_seqs.insert(entity, Some(self.seq));
        Ok(self.seq)
    }

    fn write_field(&mut self, at: &FieldRef, value: Value, stamp: Stamp) -> Result<FieldState> {
        let version = self.touch(Entity::Field(at.submission, at.field.clone()), &at.village_id)?;
        let state = FieldState { at: at.clone(), value, version, stamp };
        let bytes = encode(&state);
        self.batch.put(FIELDS, field_key(at.submission, &at.field), bytes.clone());
        self.batch.put(REVISIONS, revision_key(at.submission, &at.field, version), bytes);
        self.fields.insert((at.submission, at.field.clone()), Some(state.clone()));
        self.revisions.insert((at.submission, at.field.clone(), version), state.value.clone());
        if self.header(at.submission)?.is_none() {
            let review = SubmissionReview {
                submission: at.submission,
                village_id: at.village_id.clone(),
                period: at.period,
                state: ReviewState::Submitted,
                reason: String::new(),
                user_id: self.caller.id.clone(),
                user_name: self.caller.name.clone(),
                at_ms: self.now_ms,
            };
            let header = SubmissionHeader {
                id: at.submission,
                village_id: at.village_id.clone(),
                period: at.period,
                first_seq: version,
                review,
            };
            let cut = cut_of(&self.catalogue, &at.village_id);
            self.batch.put(SUBMISSIONS_BY_COMMUNE, by_commune_key(&cut, at.submission), Vec::new());
            self.write_header(header)?;
        }
        Ok(state)
    }

    fn write_conflict(&mut self, conflict: Conflict) -> Result<()> {
        let at = conflict.at.clone();
        self.touch(Entity::Conflict(at.submission, at.field.clone()), &at.village_id)?;
        self.batch.put(CONFLICTS, field_key(at.submission, &at.field), encode(&conflict));
        self.conflicts.insert((at.submission, at.field.clone()), Some(conflict));
        Ok(())
    }

    /// Stores a submission's header; its review syncs down like any change.
    fn write_header(&mut self, header: SubmissionHeader) -> Result<()> {
        self.touch(Entity::Review(header.id), &header.village_id)?;
        self.batch.put(SUBMISSIONS, header.id.0.as_bytes().to_vec(), encode(&header));
        self.headers.insert(header.id, Some(header));
        Ok(())
    }

    /// Moves a submission to a new review state, with an audit entry.
    fn set_review(
        &mut self,
        mut header: SubmissionHeader,
        state: ReviewState,
        reason: &str,
        detail: String,
        device: Option<DeviceId>,
    ) -> Result<SubmissionReview> {
        let from = header.review.state;
        header.review = SubmissionReview {
            state,
            reason: reason.trim().to_owned(),
            user_id: self.caller.id.clone(),
            user_name: self.caller.name.clone(),
            at_ms: self.now_ms,
            ..header.review
        };
        let review = header.review.clone();
        let detail = format!("{from} → {state}{detail}");
        let mut entry = self.entry(AuditKind::Review, detail);
        entry.device = device;
        entry.submission = Some(header.id);
        entry.village_id = header.village_id.clone();
        entry.period = header.period.to_string();
        self.write_header(header)?;
        self.audit(entry);
        Ok(review)
    }

    /// A blank audit entry by the caller, now.
    fn entry(&self, kind: AuditKind, detail: String) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms: self.now_ms,
            user_id: self.caller.id.clone(),
            device: None,
            kind,
            submission: None,
            village_id: String::new(),
            period: String::new(),
            field: String::new(),
            old: None,
            new: None,
            hlc: Hlc::default(),
            mutation_id: 0,
            detail,
        }
    }

    /// Appends to the audit trail and its indexes.
    fn audit(&mut self, mut entry: AuditEntry) {
        self.audit_seq += 1;
        entry.seq = self.audit_seq;
        if let Some(sub) = entry.submission {
            self.batch.put(AUDIT_BY_SUB, indexed(sub.0.as_bytes(), entry.seq), Vec::new());
        }
        self.batch.put(AUDIT_BY_USER, indexed(entry.user_id.as_bytes(), entry.seq), Vec::new());
        self.batch.put(AUDIT, entry.seq.to_be_bytes().to_vec(), encode(&entry));
    }

    /// Writes everything, with both counters, in one atomic batch; releases
    /// the write lock; and returns once the batch is durable. Flushing
    /// outside the lock lets the writers that queued behind this one share
    /// its flush (group commit); pulls see the new changes only once
    /// flushed (see [`Store::pull`]).
    fn commit(self) -> Result<()> {
        self.commit_then(|_| {})
    }

    /// [`Work::commit`], running `written` once the batch is written and
    /// before the lock is released: what the store keeps in memory beside
    /// the records (the catalogue, closed periods) changes with them, so no
    /// later writer sees the records without it.
    fn commit_then(mut self, written: impl FnOnce(&mut Writes)) -> Result<()> {
        self.update_rollups()?;
        self.batch.put(META, SEQ_KEY, self.seq.to_be_bytes());
        self.batch.put(META, AUDIT_SEQ_KEY, self.audit_seq.to_be_bytes());
        let (store, seq) = (self.store, self.seq);
        store.admit(self.caller, self.batch.bytes(), self.now_ms)?;
        let n = store.write_started();
        store.engine.write(self.batch).map_err(|e| store.broke(e))?;
        store.write_applied(n);
        let mut lock = self.lock;
        written(&mut lock);
        drop(lock);
        store.engine.flush().map_err(|e| store.broke(e))?;
        store.flushed_through(n);
        store.durable.fetch_max(seq, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Validates and merges one new mutation, and records it in the audit
    /// trail whatever its outcome.
    fn apply(&mut self, m: &Mutation, stamp: Stamp) -> Result<MutationResult> {
        let checked = validate(&self.catalogue, m);
        let old = match &checked {
            Ok(t) => self.field(t.at.submission, &t.at.field)?.map(|f| f.value),
            Err(_) => None,
        };
        let target = checked.as_ref().ok().cloned();
        let result = self.merge(m, checked, stamp.clone())?;
        let kind = match result.outcome {
            Outcome::Applied => AuditKind::Value,
            Outcome::Conflict => AuditKind::Conflict,
            Outcome::Unchanged => AuditKind::Unchanged,
            Outcome::Rejected | Outcome::Forgotten => AuditKind::Refused,
        };
        let mut entry = self.entry(kind, result.reason.clone());
        entry.device = Some(stamp.device);
        entry.village_id = clip(&m.village_id, 100);
        entry.period = clip(&m.period, 20);
        entry.field = clip(&m.field, 100);
        entry.hlc = stamp.hlc;
        entry.mutation_id = m.id;
        // Filed under the report only when the caller works there: a refusal
        // from outside the caller's areas must not crowd a report's trail.
        if let Ok(period) = m.period.parse::<Period>() {
            let village = &m.village_id;
            if self.catalogue.village(village).is_ok()
                && self.caller.covers(&self.catalogue, village)
            {
                entry.submission = Some(SubmissionId::of(&m.village_id, period));
            }
        }
        match result.outcome {
            Outcome::Rejected => {
                entry.detail = clip(&format!("{} (sent {})", result.reason, m.value), 500)
            }
            _ => {
                entry.new = target.map(|t| t.value);
                entry.old = old;
            }
        }
        let resubmit = entry
            .submission
            .filter(|_| matches!(result.outcome, Outcome::Applied | Outcome::Conflict));
        self.audit(entry);
        // A surveyor's accepted edit sends a rejected or returned report back to review.
        if let Some(h) = resubmit.map(|sub| self.header(sub)).transpose()?.flatten() {
            if matches!(h.review.state, ReviewState::Rejected | ReviewState::Returned) {
                let detail = " (edited)".to_owned();
                self.set_review(h, ReviewState::Submitted, "", detail, Some(stamp.device))?;
            }
        }
        Ok(result)
    }

    /// Merges one mutation, `checked` by [`validate`].
    fn merge(
        &mut self,
        m: &Mutation,
        checked: fieldsync::Result<fieldsync::validate::Target>,
        stamp: Stamp,
    ) -> Result<MutationResult> {
        let rejected = |reason: String| MutationResult {
            id: m.id,
            outcome: Outcome::Rejected,
            reason: clip(&reason, 1_000),
            current: None,
        };
        let catalogue = Arc::clone(&self.catalogue);
        let target = match checked {
            Ok(t) => t,
            Err(e) => return Ok(rejected(e.to_string())),
        };
        let at = target.at;
        if let Err(denied) = self.caller.check(&catalogue, Action::Record, &at.village_id) {
            return Ok(rejected(denied.to_string()));
        }
        if self.lock.is_closed(&catalogue, &at.village_id, at.period) {
            return Ok(rejected(format!(
                "period {} is closed for this area: the value stays on the tablet until an admin \
                 or the province office reopens it",
                at.period
            )));
        }
        let header = self.header(at.submission)?;
        if let Some(h) = &header {
            if let Err(e) = after_edit(h.review.state) {
                return Ok(rejected(e.to_string()));
            }
        }
        let current = self.field(at.submission, &at.field)?;
        let head = current.as_ref().map_or(0, |c| c.version);
        if m.base_version > head {
            return Ok(rejected(format!(
                "base version {} of {} is newer than the server's ({head}): the device's copy is \
                 from another store",
                m.base_version, at.field
            )));
        }
        let Some(base_value) = self.value_at(&at, m.base_version)? else {
            return Ok(rejected(format!(
                "base version {} is not a version of {}: sync (pull) and record the value again",
                m.base_version, at.field
            )));
        };
        let open = self.conflict(at.submission, &at.field)?.filter(|c| c.open);
        let edit = Edit { value: target.value, base_version: m.base_version, base_value, stamp };
        let mut owners = HashMap::new();
        for device in merge::owners_to_read(open.as_ref(), edit.stamp.device) {
            owners.insert(device, self.store.device(device)?.owner);
        }
        let parts = self.check_parts(&catalogue, &at, &edit.value)?;
        let effect = merge::apply(merge::Inputs {
            at: &at,
            current: current.as_ref(),
            open: open.as_ref(),
            edit: &edit,
            user: &self.caller.id,
            owners: &owners,
            parts: &parts,
        });
        if let Some(conflict) = effect.conflict {
            self.write_conflict(conflict)?;
        }
        let current = match effect.current {
            true => Some(self.write_field(&at, edit.value, edit.stamp)?),
            false => current,
        };
        let outcome = match effect.outcome {
            merge::Outcome::Applied => Outcome::Applied,
            merge::Outcome::Unchanged => Outcome::Unchanged,
            merge::Outcome::Conflict => Outcome::Conflict,
            merge::Outcome::Refused => return Ok(rejected(effect.reason)),
        };
        Ok(MutationResult { id: m.id, outcome, reason: effect.reason, current })
    }

    /// Whether `value` in `at` keeps every "of which" part within its whole,
    /// given the other fields of the submission as they stand in this batch.
    fn check_parts(
        &mut self,
        catalogue: &Catalogue,
        at: &FieldRef,
        value: &Value,
    ) -> Result<Result<(), fieldsync::Error>> {
        let sub = at.submission;
        let read = |key: &FieldKey| Ok::<_, Error>(self.field(sub, key)?.map(|f| f.value));
        let siblings = part_siblings(catalogue, &at.field, read)?;
        Ok(check_parts(catalogue, &at.field, value, |code| siblings.get(code).copied()))
    }
}

/// At most `max` characters of `text`, so refused input cannot bloat the
/// append-only audit trail.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The server's HLC reading right now.
pub fn server_hlc() -> Hlc {
    Hlc::from_millis(now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldsync::sync::RawValue;
    use fieldsync::{demo, Hlc};
    use fieldsync_store::{Batch, Memory};

    fn store() -> Store {
        Store::open(Arc::new(Memory::new()), demo::catalogue).unwrap()
    }

    fn surveyor() -> User {
        User {
            id: "an".into(),
            name: "An".into(),
            role: fieldsync::access::Role::Surveyor,
            areas: vec![demo::PROVINCE.into()],
            disabled: false,
        }
    }

    fn device(n: u128) -> DeviceId {
        DeviceId(uuid::Uuid::from_u128(n))
    }

    fn m(id: u64, period: &str, field: &str, value: RawValue, hlc: u64) -> Mutation {
        Mutation {
            id,
            village_id: demo::SAMPLE_VILLAGE.into(),
            period: period.into(),
            field: field.into(),
            value,
            base_version: 0,
            hlc: Hlc(hlc),
            author: "An".into(),
        }
    }

    fn km(id: u64, field: &str, v: &str, hlc: u64) -> Mutation {
        m(id, "2022", field, RawValue::Amount(v.into()), hlc)
    }

    /// A store with a note in every demo village for 100 months (300 reports
    /// per commune: more than one read of a commune's part holds), on an
    /// engine the test keeps.
    fn every_village_reported() -> (Arc<Memory>, Store) {
        let engine = Arc::new(Memory::new());
        let store = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap();
        let catalogue = store.catalogue();
        let villages = catalogue.units_at(fieldsync::Level::Village, None);
        let mut batch = Vec::new();
        let periods: Vec<String> =
            (0..100).map(|k| format!("{}-{:02}", 2020 + k / 12, k % 12 + 1)).collect();
        for p in &periods {
            for v in &villages {
                let id = batch.len() as u64 + 1;
                let mut note = m(id, p, "note", RawValue::Text(format!("{} {p}", v.id)), id);
                note.village_id = v.id.clone();
                batch.push(note);
            }
        }
        store.push(&surveyor(), device(1), &batch, 0, now_ms()).unwrap();
        (engine, store)
    }

    /// The reports of `area` (and `period`) among all headers, in id order.
    fn brute_force(store: &Store, area: &str, period: Option<Period>) -> Vec<SubmissionId> {
        let catalogue = store.catalogue();
        let mut all = store.submissions().unwrap();
        all.sort_by_key(|h| h.id);
        all.into_iter()
            .filter(|h| catalogue.within(&h.village_id, area))
            .filter(|h| period.is_none_or(|p| p == h.period))
            .map(|h| h.id)
            .collect()
    }

    fn listed(
        store: &Store,
        caller: &User,
        area: Option<&str>,
        period: Option<Period>,
        page: usize,
    ) -> Vec<SubmissionId> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let rows = store.list_submissions(caller, area, period, None, after, page).unwrap();
            let Some((last, _, _)) = rows.last() else { return out };
            after = Some(last.id);
            out.extend(rows.into_iter().map(|(h, _, _)| h.id));
        }
    }

    #[test]
    fn listing_an_area_reads_its_communes_and_finds_what_every_header_says() {
        let (_, store) = every_village_reported();
        let catalogue = store.catalogue();
        let mut units: Vec<String> = catalogue
            .units_at(fieldsync::Level::District, None)
            .iter()
            .map(|u| u.id.clone())
            .collect();
        units.push(demo::PROVINCE.into());
        for level in [fieldsync::Level::Commune, fieldsync::Level::Village] {
            units.extend(catalogue.units_at(level, None).iter().take(3).map(|u| u.id.clone()));
        }
        let month: Period = "2021-03".parse().unwrap();
        for unit in &units {
            for (period, page) in [(None, 1_000), (Some(month), 1_000), (None, 97)] {
                assert_eq!(
                    listed(&store, &surveyor(), Some(unit), period, page),
                    brute_force(&store, unit, period),
                    "{unit} {period:?} in pages of {page}"
                );
            }
        }
        // A caller's own areas, two communes, with no area given.
        let communes = catalogue.units_at(fieldsync::Level::Commune, None);
        let two =
            User { areas: vec![communes[0].id.clone(), communes[5].id.clone()], ..surveyor() };
        let mut expected: Vec<SubmissionId> = [
            brute_force(&store, &communes[0].id, None),
            brute_force(&store, &communes[5].id, None),
        ]
        .concat();
        expected.sort();
        assert_eq!(listed(&store, &two, None, None, 5), expected);
        assert!(store.check().unwrap().is_empty());
    }

    #[test]
    fn a_store_without_the_commune_index_is_filed_when_opened_and_check_finds_a_gap() {
        let (engine, store) = every_village_reported();
        let commune = store.catalogue().units_at(fieldsync::Level::Commune, None)[2].id.clone();
        let before = listed(&store, &surveyor(), Some(&commune), None, 1_000);
        drop(store);
        // As a store written before the index: no entries, no marker.
        let mut batch = Batch::default();
        for (k, _) in engine
            .scan(SUBMISSIONS_BY_COMMUNE, Bound::Unbounded, Bound::Unbounded, usize::MAX)
            .unwrap()
        {
            batch.delete(SUBMISSIONS_BY_COMMUNE, k);
        }
        batch.delete(META, BY_COMMUNE_KEY.to_vec());
        engine.commit(batch).unwrap();
        let store = Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap();
        assert_eq!(listed(&store, &surveyor(), Some(&commune), None, 1_000), before);
        assert!(store.check().unwrap().is_empty());
        // One entry lost: `check` names the report.
        let (first, _) = engine
            .scan(SUBMISSIONS_BY_COMMUNE, Bound::Unbounded, Bound::Unbounded, 1)
            .unwrap()
            .remove(0);
        let mut batch = Batch::default();
        batch.delete(SUBMISSIONS_BY_COMMUNE, first);
        engine.commit(batch).unwrap();
        let problems = store.check().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("is not filed under its commune"), "{problems:?}");
    }

    #[test]
    fn the_submission_list_pages_through_more_headers_than_one_read_holds() {
        let store = store();
        let catalogue = store.catalogue();
        let villages: Vec<String> = catalogue
            .units_at(fieldsync::Level::Village, None)
            .iter()
            .map(|u| u.id.clone())
            .collect();
        let periods: Vec<String> =
            (0..24).map(|k| format!("{}-{:02}", 2000 + k / 12, k % 12 + 1)).collect();
        let mut batch = Vec::new();
        for p in &periods {
            for v in &villages {
                let id = batch.len() as u64 + 1;
                let mut note = m(id, p, "note", RawValue::Text(format!("{v} {p}")), id);
                note.village_id = v.clone();
                batch.push(note);
            }
        }
        let results = store.push(&surveyor(), device(1), &batch, 0, now_ms()).unwrap();
        assert!(results.iter().all(|r| r.outcome == Outcome::Applied));
        let all = store.submissions().unwrap();
        assert_eq!(all.len(), villages.len() * periods.len());
        assert!(all.len() > 2 * 1_024, "more headers than two reads of the tree");

        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_submissions(&surveyor(), None, None, None, after, 1_000).unwrap();
            assert!(page.len() <= 1_000);
            let Some((last, _, _)) = page.last() else { break };
            after = Some(last.id);
            listed.extend(page.into_iter().map(|(h, fields, open)| {
                assert_eq!((fields, open), (1, 0));
                h.id
            }));
        }
        assert_eq!(listed, all.iter().map(|h| h.id).collect::<Vec<_>>(), "each once, in order");

        // A narrow filter finds its few headers spread over the whole tree.
        let commune = &catalogue.units_at(fieldsync::Level::Commune, None)[0].id;
        let period: Period = "2001-07".parse().unwrap();
        let found = store
            .list_submissions(&surveyor(), Some(commune), Some(period), None, None, 1_000)
            .unwrap();
        let expected = catalogue.units_at(fieldsync::Level::Village, Some(commune)).len();
        assert_eq!(found.len(), expected);
        assert!(found.iter().all(|(h, _, _)| h.period == period));
    }

    #[test]
    fn a_competing_value_that_breaks_a_total_is_kept_not_dropped() {
        let s = store();
        let a = [km(1, "road_km", "10", 10), km(2, "road_cement_km", "8", 11)];
        s.push(&surveyor(), device(1), &a, 0, 1).unwrap();
        // B's later 5 km would win, but cement 8 km cannot be part of 5 km.
        let r = s.push(&surveyor(), device(2), &[km(1, "road_km", "5", 20)], 0, 1).unwrap();
        assert_eq!(r[0].outcome, Outcome::Conflict);
        assert!(r[0].reason.contains("less than its part"), "{}", r[0].reason);
        let sub = SubmissionId::of(demo::SAMPLE_VILLAGE, Period::Year(2022));
        let road = FieldKey::parse("road_km");
        assert_eq!(s.field(sub, &road).unwrap().unwrap().value.to_string(), "10");
        let conflict = s.conflict(sub, &road).unwrap().unwrap();
        let values: Vec<String> = conflict.candidates.iter().map(|c| c.value.to_string()).collect();
        assert!(values.contains(&"5".to_string()), "{values:?}");
    }

    #[test]
    fn a_pull_sees_a_push_only_once_it_is_on_disk() {
        let disk = Arc::new(fieldsync_store::Faulty::new());
        let s = Arc::new(Store::open(disk.clone(), demo::catalogue).unwrap());
        s.push(&surveyor(), device(1), &[km(1, "road_km", "1", 1)], 0, 1).unwrap();
        let before = s.pull(&surveyor(), 0, 100).unwrap();
        assert!(before.caught_up);
        disk.hold();
        let pusher = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                s.push(&surveyor(), device(1), &[km(2, "road_km", "2", 2)], 0, 1).unwrap()
            })
        };
        // The push is written (the head moved) but waits for its flush.
        while s.head().unwrap() == before.cursor {
            std::thread::yield_now();
        }
        let during = s.pull(&surveyor(), before.cursor, 100).unwrap();
        assert!(during.changes.is_empty(), "{:?}", during.changes);
        assert_eq!(during.cursor, before.cursor);
        assert!(!pusher.is_finished(), "the push is acknowledged only once flushed");
        disk.release();
        assert_eq!(pusher.join().unwrap()[0].outcome, Outcome::Applied);
        let after = s.pull(&surveyor(), before.cursor, 100).unwrap();
        assert_eq!(after.changes.len(), 1, "{:?}", after.changes);
        assert!(after.caught_up);
    }

    #[test]
    fn pages_open_on_this_year_or_the_latest_year_with_totals() {
        let s = store();
        assert_eq!(s.year_to_show(2026).unwrap(), 2026, "nothing recorded yet");
        s.push(&surveyor(), device(1), &[km(1, "road_km", "3", 1)], 0, 1).unwrap();
        let q = m(2, "2019-Q3", "road_km", RawValue::Amount("1".into()), 2);
        s.push(&surveyor(), device(1), &[q], 0, 1).unwrap();
        assert_eq!(s.year_to_show(2026).unwrap(), 2022);
        assert_eq!(s.year_to_show(2022).unwrap(), 2022);
        assert_eq!(s.year_to_show(2020).unwrap(), 2020, "never a later year");
        assert_eq!(s.year_to_show(2019).unwrap(), 2019);
    }

    #[test]
    fn a_pull_across_many_communes_returns_the_log_in_order_page_by_page() {
        let s = store();
        let cat = demo::catalogue();
        let villages: Vec<String> =
            cat.units_at(Level::Village, None).iter().map(|u| u.id.clone()).collect();
        let mut id = 0;
        // Values across every village, three rounds, so entries move in the log.
        for round in 0..3u64 {
            let batch: Vec<Mutation> = villages
                .iter()
                .enumerate()
                .filter(|(i, _)| (*i as u64 + round).is_multiple_of(2))
                .map(|(_, v)| {
                    id += 1;
                    let mut m = km(id, "road_km", &(id % 9 + 1).to_string(), 100 + id);
                    m.village_id = v.clone();
                    m
                })
                .collect();
            s.push(&surveyor(), device(1), &batch, 0, 1).unwrap();
        }
        let district = User { areas: vec!["ha-tinh.huong-khe".into()], ..surveyor() };
        let everything = s.pull(&surveyor(), 0, 10_000).unwrap();
        assert!(everything.caught_up);
        let expected: Vec<u64> = everything
            .changes
            .iter()
            .filter(|(_, c)| match c {
                Change::Field(f) => district.covers(&cat, &f.at.village_id),
                Change::Review(r) => district.covers(&cat, &r.village_id),
                Change::Conflict(c) => district.covers(&cat, &c.at.village_id),
            })
            .map(|(seq, _)| *seq)
            .collect();
        assert!(expected.len() > 20, "{}", expected.len());
        for limit in [1, 3, 7, 500] {
            let (mut cursor, mut got) = (0, Vec::new());
            loop {
                let page = s.pull(&district, cursor, limit).unwrap();
                assert!(page.changes.len() <= limit);
                got.extend(page.changes.iter().map(|(seq, _)| *seq));
                cursor = page.cursor;
                if page.caught_up {
                    break;
                }
            }
            assert_eq!(got, expected, "pages of {limit}");
        }
    }

    #[test]
    fn a_signed_in_token_follows_every_change_to_its_user_and_itself() {
        let s = store();
        s.ensure_admin(Some("admin-token-0123456789-abcdef"), 1).unwrap();
        let admin = s.user("admin").unwrap().unwrap();
        s.create_user(&admin, surveyor(), 1).unwrap();
        let (token, info) = s.issue_token(&admin, "an", 0, "tablet", 1).unwrap();
        assert_eq!(s.authenticate(&token, 2).unwrap().areas, surveyor().areas);
        let commune = vec![demo::SAMPLE_COMMUNE.to_owned()];
        s.update_user(&admin, "an", None, None, Some(commune.clone()), 3).unwrap();
        assert_eq!(s.authenticate(&token, 4).unwrap().areas, commune, "new areas at once");
        s.update_user(&admin, "an", None, Some(true), None, 5).unwrap();
        assert!(matches!(s.authenticate(&token, 6), Err(Error::Unauthenticated(_))));
        s.update_user(&admin, "an", None, Some(false), None, 7).unwrap();
        assert!(s.authenticate(&token, 8).is_ok());
        s.revoke_token(&admin, &info.id, 9).unwrap();
        assert!(matches!(s.authenticate(&token, 10), Err(Error::Unauthenticated(_))));
    }

    /// A sign-in that read the token just before a revoke must not leave
    /// the token remembered as live once the revoke has emptied the map.
    #[test]
    fn a_sign_in_racing_a_revoke_is_not_remembered() {
        let s = store();
        s.ensure_admin(Some("admin-token-0123456789-abcdef"), 1).unwrap();
        let admin = s.user("admin").unwrap().unwrap();
        s.create_user(&admin, surveyor(), 1).unwrap();
        let (token, info) = s.issue_token(&admin, "an", 0, "tablet", 1).unwrap();
        // The racing sign-in: notes the map's generation, reads the live token...
        let generation = s.sign_in_generation();
        let read = (info.clone(), s.user("an").unwrap().unwrap());
        // ...the revoke lands and empties the map...
        s.revoke_token(&admin, &info.id, 2).unwrap();
        // ...then the sign-in would remember what it read.
        s.remember_sign_in(generation, admin::hash(&token), read);
        assert!(
            matches!(s.authenticate(&token, 3), Err(Error::Unauthenticated(_))),
            "the revoked token signs nobody in"
        );
    }

    #[test]
    fn a_different_mutation_under_a_used_id_is_refused() {
        let s = store();
        s.push(&surveyor(), device(1), &[km(1, "road_km", "1", 1)], 0, 1).unwrap();
        let head = s.head().unwrap();
        let err = s.push(&surveyor(), device(1), &[km(1, "road_km", "2", 1)], 0, 1).unwrap_err();
        assert!(matches!(err, Error::Reused { id: 1, last: 1 }), "{err}");
        assert!(err.to_string().contains("differs"), "{err}");
        assert_eq!(s.head().unwrap(), head);
    }

    /// A tablet restored from an older copy of its store reuses ids whose
    /// results the server has already released: the digest kept for each
    /// still tells its new edit from a replay.
    #[test]
    fn a_different_mutation_under_a_released_id_is_refused_and_a_replay_is_not() {
        let s = store();
        let (one, two, three) =
            (km(1, "road_km", "1", 1), km(2, "road_km", "2", 2), km(3, "playground", "3", 3));
        s.push(&surveyor(), device(1), std::slice::from_ref(&one), 0, 1).unwrap();
        s.push(&surveyor(), device(1), std::slice::from_ref(&two), 1, 1).unwrap();
        s.push(&surveyor(), device(1), std::slice::from_ref(&three), 2, 1).unwrap();
        let head = s.head().unwrap();
        // Ids 1 and 2 were acknowledged, so their results are gone; a replay
        // of either is still answered as committed.
        let replayed = s.push(&surveyor(), device(1), &[one, two], 0, 1).unwrap();
        assert!(replayed.iter().all(|r| r.outcome == Outcome::Forgotten), "{replayed:?}");
        // A new edit made under id 2 (the copy's next id) is refused, whole.
        let new = km(2, "drainage_km", "0.4", 4);
        let err = s.push(&surveyor(), device(1), std::slice::from_ref(&new), 2, 1).unwrap_err();
        assert!(matches!(err, Error::Reused { id: 2, last: 3 }), "{err}");
        assert!(err.to_string().contains("number the unsent edits from 4"), "{err}");
        assert_eq!(s.head().unwrap(), head, "nothing stored");
        // Renumbered after the server's last id, it applies once.
        let renumbered = Mutation { id: 4, ..new };
        let applied = s.push(&surveyor(), device(1), &[renumbered], 2, 1).unwrap();
        assert_eq!(applied[0].outcome, Outcome::Applied);
        assert_eq!(s.device(device(1)).unwrap().last_mutation_id, 4);
    }

    #[test]
    fn pages_stop_at_their_byte_budget() {
        let s = store();
        let note = "𠀀".repeat(2_000); // 8 KB
        let months: Vec<Mutation> = (1..=400u64)
            .map(|i| {
                let period = format!("{}-{:02}", 2000 + (i - 1) / 12, (i - 1) % 12 + 1);
                m(i, &period, "note", RawValue::Text(note.clone()), i)
            })
            .collect();
        s.push(&surveyor(), device(1), &months, 0, 1).unwrap();
        let first = s.pull(&surveyor(), 0, 500).unwrap();
        assert!(!first.caught_up);
        let n = first.changes.len();
        assert!(n < 300, "{n} changes (half of them 8 KB notes) in a 1 MiB page");
        let mut cursor = first.cursor;
        let mut total = n;
        loop {
            let page = s.pull(&surveyor(), cursor, 500).unwrap();
            total += page.changes.len();
            cursor = page.cursor;
            if page.caught_up {
                break;
            }
        }
        assert_eq!(total, 800, "every note and every report's review, exactly once");
    }

    #[test]
    fn a_settlement_racing_a_period_close_never_lands_in_the_closed_period() {
        let engine = Arc::new(fieldsync_store::Faulty::new());
        let s =
            Arc::new(Store::open(Arc::clone(&engine) as Arc<dyn Engine>, demo::catalogue).unwrap());
        s.push(
            &surveyor(),
            device(1),
            &[km(1, "road_km", "10", 10), km(2, "road_cement_km", "8", 11)],
            0,
            1,
        )
        .unwrap();
        let r = s.push(&surveyor(), device(2), &[km(1, "road_km", "5", 20)], 0, 1).unwrap();
        assert_eq!(r[0].outcome, Outcome::Conflict);
        let sub = SubmissionId::of(demo::SAMPLE_VILLAGE, Period::Year(2022));
        let road = FieldKey::parse("road_km");
        let at = s.conflict(sub, &road).unwrap().unwrap().at;
        let user = |id: &str, role| User {
            id: id.into(),
            name: id.into(),
            role,
            areas: vec![demo::PROVINCE.into()],
            disabled: false,
        };
        let supervisor = user("binh", fieldsync::access::Role::Supervisor);
        let province = user("chi", fieldsync::access::Role::Province);

        // The close is written while it holds the write lock; the settlement
        // is asked for meanwhile, before the close is committed.
        engine.hold_writes();
        let closer = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                s.set_period_closed(&province, demo::PROVINCE, Period::Year(2022), true, 2)
            })
        };
        while engine.waiting_writes() == 0 {
            std::thread::yield_now();
        }
        let settler = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.resolve(&supervisor, &at, Choice::Pick(0), "", 3))
        };
        // Long enough for the settlement to reach the write lock and wait.
        std::thread::sleep(std::time::Duration::from_millis(300));
        engine.release_writes();
        closer.join().unwrap().unwrap();
        let settled = settler.join().unwrap();

        let err = settled.expect_err("the period was closed before the settlement committed");
        assert!(err.to_string().contains("closed"), "{err}");
        assert!(s.conflict(sub, &road).unwrap().unwrap().open, "the conflict is still open");
        assert_eq!(s.field(sub, &road).unwrap().unwrap().value.to_string(), "10");
    }
}
