//! The unit of work: [`Work`] gathers the effects of one write in memory
//! and commits them as one batch with both counters. It is built only from
//! the held write lock ([`Locked`]) and keeps it until its batch is written,
//! so a write cannot happen without the lock, and everything it decides on
//! (the closed periods, the catalogue, the records) is read under it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use fieldsync::access::User;
use fieldsync::review::ReviewState;
use fieldsync::sync::{
    AuditEntry, AuditKind, Conflict, FieldRef, FieldState, Stamp, SubmissionReview,
};
use fieldsync::{Catalogue, DeviceId, Hlc, Period, SubmissionId, Value};
use fieldsync_store::{Batch, Engine};

use super::commune::{place_of, revision_at, Reports};
use super::schema::{
    encode, encode_history, Entity, Held, Key, Place, Pushed, Report, Revision, SubmissionHeader,
    AUDIT_SEQ_KEY, CLOSED, SEQ_KEY,
};
use super::{Error, Result, Store};

/// What the write lock guards: what a write decides on and only a write
/// changes, so that a check and the write it allows happen under one hold
/// of the lock (a settlement cannot land in a period closed meanwhile).
pub(super) struct Writes {
    /// The keys of the `closed` tree, kept in memory (a handful per year) so
    /// that checking a value against them costs no reads.
    pub(super) closed: HashSet<Vec<u8>>,
}

impl Writes {
    /// Whether `period` is closed for `village` (by any area above it, for
    /// the period itself, its quarter or its whole year).
    pub(super) fn is_closed(&self, catalogue: &Catalogue, village: &str, period: Period) -> bool {
        if self.closed.is_empty() {
            return false;
        }
        let mut enclosing = vec![period, Period::Year(period.year())];
        if let Period::Month(y, m) = period {
            enclosing.push(Period::Quarter(y, (m - 1) / 3 + 1));
        }
        catalogue.lineage(village).any(|unit| {
            enclosing
                .iter()
                .any(|&p| self.closed.contains(&Key::Closed(unit.id.clone(), p).encode()))
        })
    }
}

/// The keys of the `closed` tree, as [`Writes::closed`] keeps them.
pub(super) fn closed_periods(engine: &dyn Engine) -> Result<HashSet<Vec<u8>>> {
    engine.iter_all(CLOSED).map(|e| Ok(e?.0)).collect()
}

/// The store's write lock, held. A [`Work`] is built from it and keeps it
/// until committed, so no write is built without the lock, and what it
/// checks (closed periods, the catalogue, the records) is read under it.
pub(super) struct Locked<'a> {
    pub(super) store: &'a Store,
    pub(super) writes: parking_lot::RwLockWriteGuard<'a, Writes>,
}

impl Locked<'_> {
    /// The catalogue, as it stands under the held lock (only a write,
    /// which needs the lock, changes it).
    pub(super) fn catalogue(&self) -> Arc<Catalogue> {
        self.store.catalogue()
    }

    /// Whether `period` is closed for `village`, as the held lock keeps it.
    pub(super) fn is_closed(&self, catalogue: &Catalogue, village: &str, period: Period) -> bool {
        self.writes.is_closed(catalogue, village, period)
    }
}

/// The effects of one write, accumulated in memory: later steps see earlier
/// ones, and nothing reaches the engine until [`Work::commit`] writes it all
/// in one batch with the moved counters.
pub(super) struct Work<'a> {
    pub(super) store: &'a Store,
    /// The write lock, held from the start of the write until its batch is
    /// written.
    pub(super) lock: parking_lot::RwLockWriteGuard<'a, Writes>,
    pub(super) caller: &'a User,
    pub(super) now_ms: u64,
    pub(super) catalogue: Arc<Catalogue>,
    pub(super) seq: u64,
    pub(super) audit_seq: u64,
    /// The reports as they stand in this write, through their commune
    /// records (each read and written once).
    pub(super) reports: Reports<'a>,
    /// The entities this write changed, each with the sequence number of
    /// its last change and its report's place: the commit's log entry.
    pub(super) changed: HashMap<Entity, (u64, Place)>,
    /// The values this write replaced, by commune record, filed in its
    /// history on commit (a value still current is read from its record).
    pub(super) history: HashMap<Place, Vec<Revision>>,
    /// The commune of each village and period this write named (see
    /// [`Work::place`]).
    places: HashMap<String, HashMap<Period, String>>,
    /// Submissions whose totals may have moved, with their places.
    pub(super) touched: BTreeSet<(SubmissionId, Place)>,
    /// The write's audit entries, numbered, filed as one record on commit.
    pub(super) entries: Vec<AuditEntry>,
    /// A push's new mutations: their digests and results, filed with them.
    pub(super) pushed: Option<Pushed>,
    pub(super) batch: Batch,
}

impl<'a> Work<'a> {
    /// Starts a write under the store's write lock, which it keeps.
    pub(super) fn new(locked: Locked<'a>, caller: &'a User, now_ms: u64) -> Result<Self> {
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
            reports: Reports::new(store.engine.as_ref()),
            changed: HashMap::new(),
            history: HashMap::new(),
            places: HashMap::new(),
            touched: Default::default(),
            entries: Vec::new(),
            pushed: None,
            batch: Batch::default(),
        })
    }

    /// The place of the report of `village` for `period` (see [`place_of`]),
    /// each village's looked up in the catalogue once per write.
    pub(super) fn place(&mut self, village: &str, period: Period) -> Place {
        if let Some(commune) = self.places.get(village).and_then(|by| by.get(&period)) {
            return (commune.clone(), period);
        }
        let place = place_of(&self.catalogue, village, period);
        let by_period = self.places.entry(village.to_owned()).or_default();
        by_period.insert(period, place.0.clone());
        place
    }

    /// Field `at` as it stands in this write.
    pub(super) fn field(&mut self, at: &FieldRef) -> Result<Option<FieldState>> {
        let place = self.place(&at.village_id, at.period);
        Ok(self.reports.get(&place, at.submission)?.and_then(|r| r.field(&at.field)))
    }

    /// The conflict on field `at` as it stands in this write.
    pub(super) fn conflict(&mut self, at: &FieldRef) -> Result<Option<Conflict>> {
        let place = self.place(&at.village_id, at.period);
        let report = self.reports.get(&place, at.submission)?;
        Ok(report.and_then(|r| r.conflicts.get(&at.field)).map(|(c, _)| c.clone()))
    }

    /// The header of report `sub` at `place` as it stands in this write.
    pub(super) fn header(
        &mut self,
        place: &Place,
        sub: SubmissionId,
    ) -> Result<Option<SubmissionHeader>> {
        Ok(self.reports.get(place, sub)?.map(|r| r.header.clone()))
    }

    /// The value a field held at `version`, if that is one of its versions:
    /// as it stands in this write, replaced in this write (not yet in the
    /// stored history), or in the stored history.
    pub(super) fn value_at(&mut self, at: &FieldRef, version: u64) -> Result<Option<Value>> {
        if version == 0 {
            return Ok(Some(Value::Deleted));
        }
        if let Some(current) = self.field(at)?.filter(|f| f.version == version) {
            return Ok(Some(current.value));
        }
        let place = self.place(&at.village_id, at.period);
        let replaced = self.history.get(&place).and_then(|values| {
            values.iter().find(|r| {
                r.sub == at.submission && r.field == at.field && r.held.version == version
            })
        });
        if let Some(r) = replaced {
            return Ok(Some(r.held.value.clone()));
        }
        let engine = self.store.engine.as_ref();
        let held = revision_at(engine, &place, at.submission, &at.field, version)?;
        Ok(held.map(|h| h.value))
    }

    /// Whether `period` is closed for `village`, as the write lock holds it.
    pub(super) fn is_closed(&self, village: &str, period: Period) -> bool {
        self.lock.is_closed(&self.catalogue, village, period)
    }

    pub(super) fn write_field(
        &mut self,
        at: &FieldRef,
        value: Value,
        stamp: Stamp,
    ) -> Result<FieldState> {
        let place = self.place(&at.village_id, at.period);
        let version = self.touch(Entity::Field(at.submission, at.field.clone()), &place);
        let state = FieldState { at: at.clone(), value, version, stamp };
        if self.header(&place, at.submission)?.is_none() {
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
            self.write_header(header)?;
        }
        let report = self.report_mut(&place, at.submission)?;
        if let Some(replaced) = report.fields.insert(at.field.clone(), Held::of(&state)) {
            // A later mutation of this batch may be based on it (`value_at`).
            let revision = Revision { sub: at.submission, field: at.field.clone(), held: replaced };
            self.history.entry(place).or_default().push(revision);
        }
        Ok(state)
    }

    /// Report `sub` at `place`, to change: one this write has read or made.
    fn report_mut(&mut self, place: &Place, sub: SubmissionId) -> Result<&mut Report> {
        let report = self.reports.get_mut(place, sub)?;
        report.ok_or_else(|| Error::Invalid(format!("no report {sub}")))
    }

    pub(super) fn write_conflict(&mut self, conflict: Conflict) -> Result<()> {
        let at = conflict.at.clone();
        let place = self.place(&at.village_id, at.period);
        let seq = self.touch(Entity::Conflict(at.submission, at.field.clone()), &place);
        let report = self.reports.get_mut(&place, at.submission)?.ok_or_else(|| {
            Error::Invalid(format!("a conflict on {} of a report that does not exist", at.field))
        })?;
        if report.conflicts.insert(at.field.clone(), (conflict, seq)).is_none() {
            Key::Conflicted(at.submission, at.field.clone()).put(&mut self.batch, encode(&place));
        }
        Ok(())
    }

    /// Stores a submission's header; its review syncs down like any change.
    /// A new report's header makes it, in its commune's record.
    pub(super) fn write_header(&mut self, header: SubmissionHeader) -> Result<()> {
        let place = self.place(&header.village_id, header.period);
        let seq = self.touch(Entity::Review(header.id), &place);
        if let Some(report) = self.reports.get_mut(&place, header.id)? {
            report.header = header;
            report.header_seq = seq;
            return Ok(());
        }
        self.reports.create(&place, Report::new(header, seq))
    }

    /// Moves a submission to a new review state, with an audit entry.
    pub(super) fn set_review(
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
    pub(super) fn entry(&self, kind: AuditKind, detail: String) -> AuditEntry {
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

    /// Appends to the audit trail: the write's entries are filed together
    /// when it commits (see `trail.rs`).
    pub(super) fn audit(&mut self, mut entry: AuditEntry) {
        self.audit_seq += 1;
        entry.seq = self.audit_seq;
        self.entries.push(entry);
    }

    /// Writes everything, with both counters, in one atomic batch; releases
    /// the write lock; and returns once the batch is durable. Flushing
    /// outside the lock lets the writers that queued behind this one share
    /// its flush (group commit); pulls see the new changes only once
    /// flushed (see [`Store::pull`]).
    pub(super) fn commit(self) -> Result<()> {
        self.commit_then(|_| {})
    }

    /// [`Work::commit`], running `written` once the batch is written and
    /// before the lock is released: what the store keeps in memory beside
    /// the records (the catalogue, closed periods) changes with them, so no
    /// later writer sees the records without it.
    pub(super) fn commit_then(mut self, written: impl FnOnce(&mut Writes)) -> Result<()> {
        self.update_rollups()?;
        // Before the records are written: it lists itself in those it names.
        self.file_trail()?;
        self.reports.write(&mut self.batch);
        for ((commune, period), values) in self.history.drain() {
            let history = encode_history(&values);
            Key::History(commune, period, self.seq).put_new(&mut self.batch, history);
        }
        self.append_to_log();
        Key::Meta(SEQ_KEY).put(&mut self.batch, self.seq.to_be_bytes());
        Key::Meta(AUDIT_SEQ_KEY).put(&mut self.batch, self.audit_seq.to_be_bytes());
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
}

/// At most `max` characters of `text`, so refused input cannot bloat the
/// append-only audit trail.
pub(super) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
