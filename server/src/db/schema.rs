//! The layout of the store on its [`Engine`]: every tree's name, the typed
//! key of every tree with its order-preserving encoding, the records kept
//! and their encoding. Every key is built and read back here and nowhere
//! else; the bytes are exactly those earlier versions wrote (the tests at
//! the end pin them).
//!
//! Trees (keys → values, values postcard-encoded):
//! - `meta`: `seq` → head of the change log; `audit_seq` → head of the audit
//!   trail; `catalogue` → the catalogue; `cut`, `submissions_by_commune`,
//!   `trail`, `log`, `totals`, `communes`, `listing`, `writes_by_place`,
//!   `places`, `derived_totals` → markers of
//!   migrations done.
//! - `communes`: commune ‖ 0 ‖ period → [`CommuneRecord`]: the reports of
//!   the commune's villages for the period, each with its header (and
//!   review), its fields (value, version, stamp) and its conflicts, with
//!   the sequence number of the header's and each conflict's latest change,
//!   and the latest writes (at most 64) that named its reports, each with
//!   the reports it named: the trail's index for writes that rewrote it.
//!   One record per commune × period, so a write costs one record per
//!   commune and period it touches, whatever the values it carries.
//! - `conflicted`: submission ‖ field → the (commune, period) of its
//!   report's record, written when a field's first conflict opens, so
//!   conflicts are listed in (report, field) order.
//! - `report_places` (retired): submission → the (commune, period) of its
//!   record, emptied when a store is opened: a report is found from its
//!   village and period, and the log and `conflicted` name places.
//! - `history`: commune ‖ 0 ‖ period ‖ 0 ‖ seq → the values one commit
//!   replaced in fields of that commune record's reports (each at a
//!   version before `seq`, the commit's last): with the record, which holds
//!   the current ones, every value a field held, one record per commit and
//!   commune record that replaced any. A value replaced is read on from
//!   its version. Stores written before filed every value a commit wrote,
//!   current or not, at or before its key; those records read the same way.
//! - `revisions` (retired): submission ‖ field ‖ 0 ‖ version →
//!   [`FieldState`], moved into `history` when a store is opened.
//! - `fields`, `conflicts`, `submissions` (retired): a record per field,
//!   conflict and report header, moved into `communes` when a store is
//!   opened (`migrate/commune.rs`).
//! - `submissions_by_commune` (retired): commune ‖ 0 ‖ submission → (),
//!   emptied when a store is opened: an area's reports are listed from its
//!   communes' records.
//! - `changes`: seq → [`PlacedEntry`]: one entry per commit, under the
//!   commit's last sequence number, listing every entity it changed with
//!   the sequence number of that change, by the place of its report.
//!   Append-only: an entity changed again later is listed again later, and
//!   its earlier listings are superseded (its record says which change is
//!   its latest).
//! - `changes_by_commune`: commune ‖ 0 ‖ seq → [`PlacedEntry`]: the same log cut
//!   by commune (one entry per commune a commit touched, under the same
//!   seq), so a tablet's pull reads only its communes' changes.
//! - `devices`: device → [`DeviceState`] (with how far its results are
//!   released).
//! - `writes`: audit seq of a write's first entry → `Write`: one record
//!   per write (a push, a decision, an admin change) holding its
//!   [`AuditEntry`]s, numbered on from the key, and for a push its results
//!   and their digests; `writes_by_place`: commune ‖ 0 ‖ period ‖ 0 ‖
//!   record's audit seq → the ids of the reports there that the write's
//!   entries name (16 bytes each), one per commune record a write names
//!   without rewriting it, or names before the record's own list of the
//!   writes that named its reports overflowed and moved here;
//!   `writes_by_user`: user ‖ 0 ‖ record's audit seq → (), one per user.
//! - `writes_by_sub` (retired): submission ‖ 0 ‖ audit seq → (), emptied
//!   when a store is opened: a report's trail is found through its place.
//! - `writes_by_device`: device ‖ first mutation id → `PushRef`: where a
//!   replay finds the results of a run of the device's mutations.
//! - `closed`: org unit ‖ 0 ‖ period → who closed it.
//! - `users`: user id → [`User`]; `tokens`: SHA-256 of a token →
//!   [`TokenInfo`]; `token_ids`: token id → SHA-256.
//! - `enrollments`: SHA-256 of a code → [`Enrollment`] (versioned);
//!   `enrollment_ids`: id → SHA-256; `enrollments_by_user`: user ‖ 0 ‖ id → ().
//! - `totals`: period ‖ 0 ‖ org unit → [`UnitTotals`]: the unit's totals
//!   of every indicator, one record per unit and period, moved in the same
//!   batch as the records; `plans`: period ‖ 0 ‖ org unit ‖ 0 ‖ indicator →
//!   a plan figure.
//!
//! Integers are big-endian, so keys sort as their numbers do; ids, names
//! and periods are their UTF-8 bytes (none holds a zero byte), submission
//! and device ids their 16 bytes.
//!
//! [`Engine`]: fieldsync_store::Engine
//! [`FieldState`]: fieldsync::sync::FieldState
//! [`Conflict`]: fieldsync::sync::Conflict
//! [`AuditEntry`]: fieldsync::sync::AuditEntry
//! [`User`]: fieldsync::access::User

mod totals;
mod trail;

pub(super) use totals::UnitTotals;
pub use trail::DeviceState;
pub(super) use trail::{decode_named, encode_named, PushRef, Pushed, Run, StoredResult, Write};

use fieldsync::sync::SubmissionReview;
use fieldsync::{DeviceId, FieldKey, Period, SubmissionId};
use fieldsync_store::{Batch, Engine};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{Error, Result};

pub(super) const META: &str = "meta";
pub(super) const CHANGES: &str = "changes";
pub(super) const DEVICES: &str = "devices";
pub(super) const WRITES: &str = "writes";
pub(super) const WRITES_BY_PLACE: &str = "writes_by_place";
pub(super) const WRITES_BY_USER: &str = "writes_by_user";
pub(super) const WRITES_BY_DEVICE: &str = "writes_by_device";
pub(super) const CLOSED: &str = "closed";
pub(super) const USERS: &str = "users";
pub(super) const TOKENS: &str = "tokens";
pub(super) const TOKEN_IDS: &str = "token_ids";
pub(super) const ENROLLMENTS: &str = "enrollments";
pub(super) const ENROLLMENT_IDS: &str = "enrollment_ids";
pub(super) const ENROLLMENTS_BY_USER: &str = "enrollments_by_user";
/// `totals`: the totals of each org unit above the communes, per period.
pub(super) const TOTALS: &str = "totals";
pub(super) const PLANS: &str = "plans";
pub(super) const CHANGES_BY_COMMUNE: &str = "changes_by_commune";
pub(super) const COMMUNES: &str = "communes";
pub(super) const CONFLICTED: &str = "conflicted";
pub(super) const HISTORY: &str = "history";

/// Trees earlier versions kept and a migration empties: not the store's.
pub(super) use retired::{
    CONFLICTS, FIELDS, PLACES, REVISIONS, SUBMISSIONS, SUBMISSIONS_BY_COMMUNE,
};

pub(super) mod retired {
    /// A record per field, conflict and report header: moved into the
    /// commune records (see `migrate/commune.rs`).
    pub(in crate::db) const FIELDS: &str = "fields";
    pub(in crate::db) const CONFLICTS: &str = "conflicts";
    pub(in crate::db) const SUBMISSIONS: &str = "submissions";
    /// Each report filed under its commune, for listing an area: listed
    /// from the commune records instead (emptied when a store is opened).
    pub(in crate::db) const SUBMISSIONS_BY_COMMUNE: &str = "submissions_by_commune";
    /// The trail's index by report: by the report's place instead
    /// (`writes_by_place`, built when a store is opened).
    pub(in crate::db) const WRITES_BY_SUB: &str = "writes_by_sub";
    /// Each report's place (commune and period), for finding a report by
    /// id: every reader finds it from its village and period instead, and
    /// the log and `conflicted` name their places (`migrate/places.rs`).
    pub(in crate::db) const PLACES: &str = "report_places";
    /// A record per value a field held: moved into `history`.
    pub(in crate::db) const REVISIONS: &str = "revisions";
    /// The earlier cut of the change log, by district (see `migrate.rs`).
    pub(in crate::db) const CHANGES_BY_DISTRICT: &str = "changes_by_district";
    /// A record per audit entry, result and released digest, with the
    /// entries' indexes: moved to one record per write (`migrate/trail.rs`).
    pub(in crate::db) const AUDIT: &str = "audit";
    pub(in crate::db) const AUDIT_BY_SUB: &str = "audit_by_sub";
    pub(in crate::db) const AUDIT_BY_USER: &str = "audit_by_user";
    pub(in crate::db) const RESULTS: &str = "results";
    pub(in crate::db) const DIGESTS: &str = "digests";
    /// A record per rollup cell (period ‖ 0 ‖ org unit ‖ 0 ‖ indicator →
    /// cell): moved to one record per org unit and period
    /// (`migrate/totals.rs`).
    pub(in crate::db) const ROLLUPS: &str = "rollups";
    /// The retired trees a backup restores, for the migration to move:
    /// the old trail's, the records per field, conflict and report that
    /// moved into the commune records (see `migrate/commune.rs`), and the
    /// record per rollup cell, the listing by commune, the trail's index
    /// by report and the index of places.
    pub(in crate::db) const MIGRATED: [&str; 13] = [
        AUDIT,
        AUDIT_BY_SUB,
        AUDIT_BY_USER,
        RESULTS,
        DIGESTS,
        FIELDS,
        CONFLICTS,
        SUBMISSIONS,
        REVISIONS,
        ROLLUPS,
        SUBMISSIONS_BY_COMMUNE,
        WRITES_BY_SUB,
        PLACES,
    ];
    /// Entity → the sequence number of its one entry, when the log moved
    /// each entity to its head (see `migrate.rs`).
    pub(in crate::db) const ENTITY_SEQ: &str = "entity_seq";
}

/// Every tree of the store, for backups: a new tree must be listed here.
pub(super) const TREES: &[&str] = &[
    META,
    COMMUNES,
    CONFLICTED,
    HISTORY,
    CHANGES,
    DEVICES,
    WRITES,
    WRITES_BY_PLACE,
    WRITES_BY_USER,
    WRITES_BY_DEVICE,
    CLOSED,
    USERS,
    TOKENS,
    TOKEN_IDS,
    TOTALS,
    PLANS,
    CHANGES_BY_COMMUNE,
    ENROLLMENTS,
    ENROLLMENT_IDS,
    ENROLLMENTS_BY_USER,
];

/// The head of the change log, in `meta`.
pub(super) const SEQ_KEY: &[u8] = b"seq";
/// The head of the audit trail, in `meta`.
pub(super) const AUDIT_SEQ_KEY: &[u8] = b"audit_seq";
/// The catalogue, in `meta`: the indicators and the org tree in force now.
pub(super) const CATALOGUE_KEY: &[u8] = b"catalogue";
/// The org tree's past ([`fieldsync::TreeHistory`]), in `meta`; absent
/// until the tree first changes.
pub(super) const TREE_KEY: &[u8] = b"tree_history";
/// Names the cut of the change log the store keeps (stores written before
/// the log was cut by commune lack it).
pub(super) const CUT_KEY: &[u8] = b"cut";
/// Marked the retired `submissions_by_commune` as complete: deleted with
/// that tree's entries when a store is opened.
pub(super) const BY_COMMUNE_KEY: &[u8] = b"submissions_by_commune";
/// Names the tree the audit trail is kept in, one record per write (stores
/// written before, with a record per entry, lack it).
pub(super) const TRAIL_KEY: &[u8] = b"trail";
/// Present once the change log holds one entry per commit and the records
/// carry the sequence number of their last change (stores written before
/// get it when opened).
pub(super) const LOG_KEY: &[u8] = b"log";
/// Present once the totals are kept one record per org unit and period
/// (stores written before, with a record per cell, get it when opened).
pub(super) const TOTALS_KEY: &[u8] = b"totals";
/// Present once the reports live in commune records (stores written
/// before, with a record per field, conflict and header, get it when
/// opened).
pub(super) const COMMUNE_KEY: &[u8] = b"communes";
/// Present once areas are listed from the commune records and
/// `submissions_by_commune` is empty (stores written before get it when
/// opened).
pub(super) const LISTING_KEY: &[u8] = b"listing";
/// Present once the trail is indexed by place (`writes_by_place`) and
/// `writes_by_sub` is empty (stores written before get it when opened).
pub(super) const TRAIL_PLACE_KEY: &[u8] = b"writes_by_place";
/// Marks the log's entries and `conflicted` as naming their reports'
/// places, and `report_places` as emptied.
pub(super) const PLACES_KEY: &[u8] = b"places";
/// Present once no totals are kept for villages and communes (theirs are
/// read from their reports): stores written before get it when opened.
pub(super) const DERIVED_TOTALS_KEY: &[u8] = b"derived_totals";

/// The key of one record, typed: which tree it lives in and what names it.
/// [`Key::encode`] and [`Key::decode`] are the only place key bytes are
/// made or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Key {
    /// `meta`: one of the `*_KEY` names.
    Meta(&'static [u8]),
    Field(SubmissionId, FieldKey),
    Revision(SubmissionId, FieldKey, u64),
    Conflict(SubmissionId, FieldKey),
    Submission(SubmissionId),
    /// The record of one commune's reports for one period.
    Commune(String, Period),
    /// Where a report lives: its commune record's place.
    Place(SubmissionId),
    /// A field of a report that has a conflict, open or settled.
    Conflicted(SubmissionId, FieldKey),
    /// The values one commit (by its last sequence number) gave fields of
    /// one commune record's reports.
    History(String, Period, u64),
    /// An entry of the change log, by sequence number.
    Change(u64),
    /// An entry of one commune's cut of the change log.
    CommuneChange(String, u64),
    Device(DeviceId),
    /// A write's audit entries (and a push's results), by its first
    /// entry's audit sequence number.
    Write(u64),
    /// A write that names reports of one commune record (by its commune
    /// and period), or by a user, by its record's key.
    WriteAtPlace(String, Period, u64),
    WriteByUser(String, u64),
    /// A run of a device's mutations, by its first mutation id.
    PushOf(DeviceId, u64),
    /// Retired (read by a migration): a mutation's result, a released
    /// one's digest (by device and mutation id), an audit entry.
    Result(DeviceId, u64),
    Digest(DeviceId, u64),
    Audit(u64),
    /// A period closed for an org unit.
    Closed(String, Period),
    User(String),
    /// A token, by its SHA-256.
    Token(Vec<u8>),
    TokenId(String),
    /// An enrollment code, by its SHA-256.
    Enrollment(Vec<u8>),
    EnrollmentId(String),
    EnrollmentByUser(String, String),
    /// Retired (read by a migration): a rollup cell, by period, org unit
    /// and indicator.
    Rollup(Period, String, String),
    /// One org unit's totals for one period.
    Totals(Period, String),
    /// A plan figure: period, org unit, indicator.
    Plan(Period, String, String),
}

/// `prefix ‖ 0 ‖ seq`: an index entry ordered by sequence within its prefix.
fn indexed(prefix: &[u8], seq: u64) -> Vec<u8> {
    [prefix, &[0], &seq.to_be_bytes()].concat()
}

/// `a ‖ 0 ‖ b`.
fn pair(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, &[0], b].concat()
}

fn cell(period: Period, unit: &str, indicator: &str) -> Vec<u8> {
    [&Prefix::Cells(PLANS, period, unit).encode()[..], indicator.as_bytes()].concat()
}

impl Key {
    /// The tree the key belongs to.
    pub(super) fn tree(&self) -> &'static str {
        match self {
            Key::Meta(_) => META,
            Key::Field(..) => FIELDS,
            Key::Revision(..) => REVISIONS,
            Key::Conflict(..) => CONFLICTS,
            Key::Submission(_) => SUBMISSIONS,
            Key::Commune(..) => COMMUNES,
            Key::Place(_) => PLACES,
            Key::Conflicted(..) => CONFLICTED,
            Key::History(..) => HISTORY,
            Key::Change(_) => CHANGES,
            Key::CommuneChange(..) => CHANGES_BY_COMMUNE,
            Key::Device(_) => DEVICES,
            Key::Write(_) => WRITES,
            Key::WriteAtPlace(..) => WRITES_BY_PLACE,
            Key::WriteByUser(..) => WRITES_BY_USER,
            Key::PushOf(..) => WRITES_BY_DEVICE,
            Key::Result(..) => retired::RESULTS,
            Key::Digest(..) => retired::DIGESTS,
            Key::Audit(_) => retired::AUDIT,
            Key::Closed(..) => CLOSED,
            Key::User(_) => USERS,
            Key::Token(_) => TOKENS,
            Key::TokenId(_) => TOKEN_IDS,
            Key::Enrollment(_) => ENROLLMENTS,
            Key::EnrollmentId(_) => ENROLLMENT_IDS,
            Key::EnrollmentByUser(..) => ENROLLMENTS_BY_USER,
            Key::Rollup(..) => retired::ROLLUPS,
            Key::Totals(..) => TOTALS,
            Key::Plan(..) => PLANS,
        }
    }

    /// The key's bytes: keys of one tree sort as what they name does
    /// (sequence numbers and versions numerically).
    pub(super) fn encode(&self) -> Vec<u8> {
        match self {
            Key::Meta(name) => name.to_vec(),
            Key::Field(sub, field) | Key::Conflict(sub, field) | Key::Conflicted(sub, field) => {
                [sub.0.as_bytes(), field.as_str().as_bytes()].concat()
            }
            Key::Revision(sub, field, version) => {
                indexed(&[sub.0.as_bytes(), field.as_str().as_bytes()].concat(), *version)
            }
            Key::Submission(sub) | Key::Place(sub) => sub.0.as_bytes().to_vec(),
            Key::Commune(commune, period) => {
                pair(commune.as_bytes(), period.to_string().as_bytes())
            }
            Key::History(commune, period, seq) | Key::WriteAtPlace(commune, period, seq) => {
                indexed(&pair(commune.as_bytes(), period.to_string().as_bytes()), *seq)
            }
            Key::Change(seq) | Key::Write(seq) | Key::Audit(seq) => seq.to_be_bytes().to_vec(),
            Key::CommuneChange(cut, seq) => indexed(cut.as_bytes(), *seq),
            Key::Device(device) => device.0.as_bytes().to_vec(),
            Key::PushOf(device, id) | Key::Result(device, id) | Key::Digest(device, id) => {
                [device.0.as_bytes().as_slice(), &id.to_be_bytes()].concat()
            }
            Key::WriteByUser(user, seq) => indexed(user.as_bytes(), *seq),
            Key::Closed(unit, period) => pair(unit.as_bytes(), period.to_string().as_bytes()),
            Key::Totals(period, unit) => pair(period.to_string().as_bytes(), unit.as_bytes()),
            Key::User(id) | Key::TokenId(id) | Key::EnrollmentId(id) => id.as_bytes().to_vec(),
            Key::Token(hash) | Key::Enrollment(hash) => hash.clone(),
            Key::EnrollmentByUser(user, id) => pair(user.as_bytes(), id.as_bytes()),
            Key::Rollup(period, unit, indicator) | Key::Plan(period, unit, indicator) => {
                cell(*period, unit, indicator)
            }
        }
    }

    /// Reads a key of `tree` back; a key that does not have the tree's
    /// shape is a damaged store.
    pub(super) fn decode(tree: &'static str, bytes: &[u8]) -> Result<Key> {
        let raw = Raw { tree, bytes };
        Ok(match tree {
            FIELDS => {
                let (sub, field) = raw.field_at(bytes)?;
                Key::Field(sub, field)
            }
            CONFLICTS => {
                let (sub, field) = raw.field_at(bytes)?;
                Key::Conflict(sub, field)
            }
            REVISIONS => {
                let (at, version) = raw.indexed()?;
                let (sub, field) = raw.field_at(at)?;
                Key::Revision(sub, field, version)
            }
            CONFLICTED => {
                let (sub, field) = raw.field_at(bytes)?;
                Key::Conflicted(sub, field)
            }
            SUBMISSIONS => Key::Submission(SubmissionId(raw.id16(bytes)?)),
            PLACES => Key::Place(SubmissionId(raw.id16(bytes)?)),
            COMMUNES => {
                let (commune, period) = raw.split(bytes)?;
                Key::Commune(raw.text(commune)?, raw.period(period)?)
            }
            HISTORY | WRITES_BY_PLACE => {
                let (place, seq) = raw.indexed()?;
                let (commune, period) = raw.split(place)?;
                let (commune, period) = (raw.text(commune)?, raw.period(period)?);
                match tree {
                    HISTORY => Key::History(commune, period, seq),
                    _ => Key::WriteAtPlace(commune, period, seq),
                }
            }
            CHANGES => Key::Change(read_u64(tree, bytes)?),
            WRITES => Key::Write(read_u64(tree, bytes)?),
            retired::AUDIT => Key::Audit(read_u64(tree, bytes)?),
            CHANGES_BY_COMMUNE => {
                let (cut, seq) = raw.indexed()?;
                Key::CommuneChange(raw.text(cut)?, seq)
            }
            DEVICES => Key::Device(DeviceId(raw.id16(bytes)?)),
            WRITES_BY_DEVICE | retired::RESULTS | retired::DIGESTS => {
                let (device, id) =
                    bytes.split_at_checked(16).ok_or_else(|| raw.bad("too short"))?;
                let (device, id) = (DeviceId(raw.id16(device)?), read_u64(tree, id)?);
                match tree {
                    WRITES_BY_DEVICE => Key::PushOf(device, id),
                    retired::RESULTS => Key::Result(device, id),
                    _ => Key::Digest(device, id),
                }
            }
            WRITES_BY_USER => {
                let (user, seq) = raw.indexed()?;
                Key::WriteByUser(raw.text(user)?, seq)
            }
            _ => raw.decode_named()?,
        })
    }

    /// The record under this key, if any.
    pub(super) fn get(&self, engine: &dyn Engine) -> Result<Option<Vec<u8>>> {
        Ok(engine.get(self.tree(), &self.encode())?)
    }

    /// Adds a put of `value` under this key to `batch`.
    pub(super) fn put(&self, batch: &mut Batch, value: impl Into<Vec<u8>>) {
        batch.put(self.tree(), self.encode(), value);
    }

    /// [`Key::put`] of a key that never held a value: an append-only
    /// tree's next key, a report's place when it is made.
    pub(super) fn put_new(&self, batch: &mut Batch, value: impl Into<Vec<u8>>) {
        batch.put_new(self.tree(), self.encode(), value);
    }

    /// Adds a delete of this key to `batch`.
    pub(super) fn delete(&self, batch: &mut Batch) {
        batch.delete(self.tree(), self.encode());
    }
}

impl Raw<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::Corrupt { tree: self.tree, why: format!("key {:?}: {what}", self.bytes) }
    }

    fn text(&self, b: &[u8]) -> Result<String> {
        String::from_utf8(b.to_vec()).map_err(|_| self.bad("not UTF-8"))
    }

    fn id16(&self, b: &[u8]) -> Result<uuid::Uuid> {
        Ok(uuid::Uuid::from_bytes(b.try_into().map_err(|_| self.bad("not a 16-byte id"))?))
    }

    fn period(&self, b: &[u8]) -> Result<Period> {
        self.text(b)?.parse().map_err(|_| self.bad("not a period"))
    }

    /// `prefix ‖ 0 ‖ seq`, split.
    fn indexed(&self) -> Result<(&[u8], u64)> {
        let (b, n) = (self.bytes, self.bytes.len());
        match n >= 9 && b[n - 9] == 0 {
            true => Ok((&b[..n - 9], read_u64(self.tree, &b[n - 8..])?)),
            false => Err(self.bad("not prefix ‖ 0 ‖ sequence number")),
        }
    }

    /// `a ‖ 0 ‖ b` at the first zero byte.
    fn split<'b>(&self, b: &'b [u8]) -> Result<(&'b [u8], &'b [u8])> {
        let at = b.iter().position(|&c| c == 0).ok_or_else(|| self.bad("no separator"))?;
        Ok((&b[..at], &b[at + 1..]))
    }

    fn field_at(&self, b: &[u8]) -> Result<(SubmissionId, FieldKey)> {
        let (sub, field) = b.split_at_checked(16).ok_or_else(|| self.bad("too short"))?;
        Ok((SubmissionId(self.id16(sub)?), FieldKey::parse(&self.text(field)?)))
    }

    /// The keys of the trees of names and hashes: closed periods, users,
    /// tokens, enrollments, totals and plans.
    fn decode_named(&self) -> Result<Key> {
        let (tree, bytes) = (self.tree, self.bytes);
        Ok(match tree {
            CLOSED => {
                let (unit, period) = self.split(bytes)?;
                Key::Closed(self.text(unit)?, self.period(period)?)
            }
            USERS => Key::User(self.text(bytes)?),
            TOKENS => Key::Token(bytes.to_vec()),
            TOKEN_IDS => Key::TokenId(self.text(bytes)?),
            ENROLLMENTS => Key::Enrollment(bytes.to_vec()),
            ENROLLMENT_IDS => Key::EnrollmentId(self.text(bytes)?),
            ENROLLMENTS_BY_USER => {
                let (user, id) = self.split(bytes)?;
                Key::EnrollmentByUser(self.text(user)?, self.text(id)?)
            }
            TOTALS => {
                let (period, unit) = self.split(bytes)?;
                Key::Totals(self.period(period)?, self.text(unit)?)
            }
            retired::ROLLUPS | PLANS => {
                let (period, rest) = self.split(bytes)?;
                let (unit, indicator) = self.split(rest)?;
                let (period, unit, indicator) =
                    (self.period(period)?, self.text(unit)?, self.text(indicator)?);
                match tree {
                    retired::ROLLUPS => Key::Rollup(period, unit, indicator),
                    _ => Key::Plan(period, unit, indicator),
                }
            }
            _ => return Err(self.bad("no typed key for this tree")),
        })
    }
}

/// A key's bytes being read back, with the tree they came from.
struct Raw<'a> {
    tree: &'static str,
    bytes: &'a [u8],
}

/// A submission the server has heard of, and where it stands in review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionHeader {
    pub id: SubmissionId,
    pub village_id: String,
    pub period: Period,
    pub first_seq: u64,
    pub review: SubmissionReview,
}

/// What a change-log entry points at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) enum Entity {
    Field(SubmissionId, FieldKey),
    Conflict(SubmissionId, FieldKey),
    Review(SubmissionId),
}

impl Entity {
    /// The entity's bytes: an entry of the log as old stores wrote it.
    #[cfg(test)]
    pub(super) fn key(&self) -> Vec<u8> {
        encode(self)
    }

    /// The key of the record the entity names.
    pub(super) fn record(&self) -> Key {
        match self {
            Entity::Field(sub, field) => Key::Field(*sub, field.clone()),
            Entity::Conflict(sub, field) => Key::Conflict(*sub, field.clone()),
            Entity::Review(sub) => Key::Submission(*sub),
        }
    }

    pub(super) fn submission(&self) -> SubmissionId {
        match self {
            Entity::Field(sub, _) | Entity::Conflict(sub, _) | Entity::Review(sub) => *sub,
        }
    }
}

/// A record's bytes (postcard).
pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("in-memory serialization of plain data cannot fail")
}

/// A record of `tree` read back; one that cannot be read is a damaged store.
pub(super) fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt { tree, why: e.to_string() })
}

/// A big-endian counter or sequence number.
pub(super) fn read_u64(tree: &'static str, bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] =
        bytes.try_into().map_err(|_| Error::Corrupt { tree, why: "expected 8 bytes".into() })?;
    Ok(u64::from_be_bytes(array))
}

mod commune;
mod entry;
mod prefix;
mod records;
pub(super) use commune::{
    decode_conflicted, decode_history, decode_place, encode_history, encode_place, CommuneRecord,
    Held, Place, Report, Revision, MAX_WRITES_KEPT,
};
pub(super) use entry::{decode_with_seq, with_seq, LogEntry, PlacedEntry};
pub(super) use prefix::Prefix;
pub use records::{Enrollment, TokenInfo};

#[cfg(test)]
mod tests;
