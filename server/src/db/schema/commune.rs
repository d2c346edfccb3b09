//! The record of one commune × period: the reports of that commune's
//! villages for that period, each with its header and review state, every
//! field with its value, version and stamp, and its conflicts. A write
//! rewrites the records it touched, once each, whatever the number of
//! values it carries; a report's fields cost no record of their own.

use std::collections::BTreeMap;

use fieldsync::review::ReviewState;
use fieldsync::sync::{Conflict, FieldRef, FieldState, Stamp, SubmissionReview};
use fieldsync::{DeviceId, FieldKey, Hlc, Period, SubmissionId, Value};
use serde::{Deserialize, Serialize};

use super::{decode, encode, SubmissionHeader, COMMUNES, CONFLICTED, HISTORY, PLACES};
use crate::db::{Error, Result};

/// Where a report lives: the commune its village belonged to when the
/// report was made, and its period (the key of its [`CommuneRecord`]).
pub(in crate::db) type Place = (String, Period);

/// The reports of one commune's villages for one period, by id, and the
/// latest writes that named them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::db) struct CommuneRecord {
    pub(in crate::db) reports: BTreeMap<SubmissionId, Report>,
    /// The trail's index for this record, latest part: each write (by its
    /// record's key in `writes`) that named reports here and rewrote this
    /// record anyway, with the reports it named, oldest first; at most
    /// [`MAX_WRITES_KEPT`], then moved to `writes_by_place` (which also
    /// files the writes that named a report here without rewriting it).
    pub(in crate::db) writes: Vec<(u64, Vec<SubmissionId>)>,
}

/// Most writes a commune record lists (see [`CommuneRecord::writes`]).
pub(in crate::db) const MAX_WRITES_KEPT: usize = 64;

/// A record's reports in the stored forms without writes (`V1`, and the
/// reports of `V4`), serialized as the record itself once was.
#[derive(Serialize, Deserialize)]
struct Whole {
    reports: BTreeMap<SubmissionId, Report>,
}

#[derive(Serialize)]
struct WholeRef<'a> {
    reports: &'a BTreeMap<SubmissionId, Report>,
}

/// One report as its commune record holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct Report {
    pub(in crate::db) header: SubmissionHeader,
    /// The sequence number of the header's (its review's) latest change.
    pub(in crate::db) header_seq: u64,
    pub(in crate::db) fields: BTreeMap<FieldKey, Held>,
    /// Open or settled, each with the sequence number of its latest change.
    pub(in crate::db) conflicts: BTreeMap<FieldKey, (Conflict, u64)>,
}

/// A field's current state without what the report already says (its
/// submission, village and period).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct Held {
    pub(in crate::db) value: Value,
    pub(in crate::db) version: u64,
    pub(in crate::db) stamp: Stamp,
}

impl Held {
    pub(in crate::db) fn of(state: &FieldState) -> Held {
        Held { value: state.value.clone(), version: state.version, stamp: state.stamp.clone() }
    }
}

impl Report {
    pub(in crate::db) fn new(header: SubmissionHeader, header_seq: u64) -> Self {
        Report { header, header_seq, fields: BTreeMap::new(), conflicts: BTreeMap::new() }
    }

    /// Where one of its fields is.
    pub(in crate::db) fn at(&self, field: &FieldKey) -> FieldRef {
        FieldRef {
            submission: self.header.id,
            village_id: self.header.village_id.clone(),
            period: self.header.period,
            field: field.clone(),
        }
    }

    pub(in crate::db) fn field(&self, field: &FieldKey) -> Option<FieldState> {
        self.fields.get(field).map(|h| self.state(field, h))
    }

    fn state(&self, field: &FieldKey, held: &Held) -> FieldState {
        FieldState {
            at: self.at(field),
            value: held.value.clone(),
            version: held.version,
            stamp: held.stamp.clone(),
        }
    }

    /// Every field, in the order of the fields' names (as the earlier
    /// layout's keys listed them).
    pub(in crate::db) fn fields(&self) -> Vec<FieldState> {
        let mut fields: Vec<_> = self.fields.iter().map(|(k, h)| self.state(k, h)).collect();
        fields.sort_by(|a, b| a.at.field.as_str().cmp(b.at.field.as_str()));
        fields
    }

    /// Every conflict, open or settled, in the order of the fields' names.
    pub(in crate::db) fn conflicts(&self) -> Vec<Conflict> {
        let mut conflicts: Vec<_> = self.conflicts.values().map(|(c, _)| c.clone()).collect();
        conflicts.sort_by(|a, b| a.at.field.as_str().cmp(b.at.field.as_str()));
        conflicts
    }

    pub(in crate::db) fn put_field(&mut self, state: &FieldState) {
        self.fields.insert(state.at.field.clone(), Held::of(state));
    }

    /// What it adds to the totals (see [`fieldsync::rollup::contributions`]).
    pub(in crate::db) fn contributions(&self) -> fieldsync::rollup::Contributions {
        let fields = self.fields.iter().map(|(k, held)| (k, &held.value));
        let open = self.conflicts.iter().filter(|(_, (c, _))| c.open).map(|(k, _)| k);
        fieldsync::rollup::contributions(self.header.review.state, fields, open)
    }

    /// One of its fields' revisions, whole.
    pub(in crate::db) fn revision(&self, revision: &Revision) -> FieldState {
        self.state(&revision.field, &revision.held)
    }
}

/// The stored form of a [`CommuneRecord`], versioned. `V1` wrote every
/// report whole: its id, village and period again in its review, every
/// field's device and author in full. `V2` says each once: the record's
/// period, each report's village, and each (device, author) a value was
/// stamped by, in a table its values point into. `V3` and `V4` are `V2`
/// and `V1` with the writes the record lists (in `V3` each report named
/// by its place in the record's list); a record listing none is written
/// as `V2` or `V1`.
#[derive(Serialize, Deserialize)]
enum StoredCommune {
    V1(Whole),
    V2(Compact),
    V3(Compact, Vec<(u64, Vec<u32>)>),
    V4(Whole, Vec<(u64, Vec<SubmissionId>)>),
}

/// [`StoredCommune`] as written, borrowing the record where it can (the
/// same bytes).
#[derive(Serialize)]
enum StoringCommune<'a> {
    V1(WholeRef<'a>),
    V2(Compact),
    V3(Compact, Vec<(u64, Vec<u32>)>),
    V4(WholeRef<'a>, &'a [(u64, Vec<SubmissionId>)]),
}

/// [`StoredCommune::V2`]'s record.
#[derive(Serialize, Deserialize)]
struct Compact {
    /// The period of every report (`None` for a record with none).
    period: Option<Period>,
    /// The (device, author) pairs the values were stamped by.
    stampers: Vec<(DeviceId, String)>,
    reports: Vec<CompactReport>,
}

#[derive(Serialize, Deserialize)]
struct CompactReport {
    id: SubmissionId,
    village_id: String,
    first_seq: u64,
    header_seq: u64,
    state: ReviewState,
    reason: String,
    user_id: String,
    user_name: String,
    at_ms: u64,
    fields: Vec<(FieldKey, CompactHeld)>,
    conflicts: Vec<(FieldKey, (Conflict, u64))>,
}

/// A [`Held`] whose device and author are entry `stamper` of the record's
/// table.
#[derive(Serialize, Deserialize)]
struct CompactHeld {
    value: Value,
    version: u64,
    hlc: Hlc,
    stamper: u32,
    received_at_ms: u64,
    mutation_id: u64,
}

/// The distinct values a compact record names, each stored once and
/// pointed at by its index (the commune, history and trail records').
pub(super) struct Table<T> {
    pub(super) values: Vec<T>,
    index: BTreeMap<T, u32>,
}

impl<T: Ord + Clone> Table<T> {
    pub(super) fn new() -> Self {
        Table { values: Vec::new(), index: BTreeMap::new() }
    }

    /// The index of `value`, added if new.
    pub(super) fn at(&mut self, value: &T) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = self.values.len() as u32;
        self.values.push(value.clone());
        self.index.insert(value.clone(), i);
        i
    }
}

/// Entry `i` of a compact record's table, or what is wrong.
fn entry<'t, T>(table: &'t [T], i: u32, tree: &'static str) -> Result<&'t T> {
    table.get(i as usize).ok_or_else(|| Error::Corrupt {
        tree,
        why: "a value points past the record's table".into(),
    })
}

impl CommuneRecord {
    /// The record's bytes: compact ([`StoredCommune::V2`], or `V3` with
    /// writes) when that says everything the record holds (every report of
    /// one period, its review naming the report itself, every write naming
    /// reports it holds), else whole (`V1`, or `V4` with writes).
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        let period = self.reports.values().next().map(|r| r.header.period);
        let exact = self.reports.iter().all(|(id, r)| {
            let (h, review) = (&r.header, &r.header.review);
            h.id == *id
                && Some(h.period) == period
                && review.submission == h.id
                && review.village_id == h.village_id
                && review.period == h.period
        }) && self
            .writes
            .iter()
            .all(|(_, subs)| subs.iter().all(|s| self.reports.contains_key(s)));
        let whole = WholeRef { reports: &self.reports };
        match (exact, self.writes.is_empty()) {
            (true, true) => encode(&StoringCommune::V2(self.compact())),
            (true, false) => encode(&StoringCommune::V3(self.compact(), self.compact_writes())),
            (false, true) => encode(&StoringCommune::V1(whole)),
            (false, false) => encode(&StoringCommune::V4(whole, &self.writes)),
        }
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<CommuneRecord> {
        Ok(match decode::<StoredCommune>(COMMUNES, bytes)? {
            StoredCommune::V1(w) => CommuneRecord { reports: w.reports, writes: Vec::new() },
            StoredCommune::V2(c) => CommuneRecord::whole(c)?,
            StoredCommune::V3(c, writes) => {
                let mut record = CommuneRecord::whole(c)?;
                let ids: Vec<SubmissionId> = record.reports.keys().copied().collect();
                record.writes = writes
                    .into_iter()
                    .map(|(seq, subs)| {
                        let subs = subs.iter().map(|&i| entry(&ids, i, COMMUNES).copied());
                        Ok((seq, subs.collect::<Result<_>>()?))
                    })
                    .collect::<Result<_>>()?;
                record
            }
            StoredCommune::V4(w, writes) => CommuneRecord { reports: w.reports, writes },
        })
    }

    /// The writes the record lists, each report named by its place among
    /// the record's reports (every one a report of the record: see
    /// `file_trail`; one that is not makes the record be kept whole).
    fn compact_writes(&self) -> Vec<(u64, Vec<u32>)> {
        let at: BTreeMap<&SubmissionId, u32> = self.reports.keys().zip(0..).collect();
        self.writes.iter().map(|(seq, subs)| (*seq, subs.iter().map(|s| at[s]).collect())).collect()
    }

    /// The record as [`StoredCommune::V2`] stores it.
    fn compact(&self) -> Compact {
        let mut stampers: Table<(DeviceId, String)> = Table::new();
        let mut reports = Vec::with_capacity(self.reports.len());
        for (id, report) in &self.reports {
            let mut fields = Vec::with_capacity(report.fields.len());
            for (key, held) in &report.fields {
                let stamp = &held.stamp;
                let at = stampers.at(&(stamp.device, stamp.author.clone()));
                fields.push((
                    key.clone(),
                    CompactHeld {
                        value: held.value.clone(),
                        version: held.version,
                        hlc: stamp.hlc,
                        stamper: at,
                        received_at_ms: stamp.received_at_ms,
                        mutation_id: stamp.mutation_id,
                    },
                ));
            }
            let (header, review) = (&report.header, &report.header.review);
            reports.push(CompactReport {
                id: *id,
                village_id: header.village_id.clone(),
                first_seq: header.first_seq,
                header_seq: report.header_seq,
                state: review.state,
                reason: review.reason.clone(),
                user_id: review.user_id.clone(),
                user_name: review.user_name.clone(),
                at_ms: review.at_ms,
                fields,
                conflicts: report.conflicts.iter().map(|(k, c)| (k.clone(), c.clone())).collect(),
            });
        }
        let period = self.reports.values().next().map(|r| r.header.period);
        Compact { period, stampers: stampers.values, reports }
    }

    /// The record a [`Compact`] stores, whole.
    fn whole(c: Compact) -> Result<CommuneRecord> {
        let bad = |why: &str| Error::Corrupt { tree: COMMUNES, why: why.to_owned() };
        let mut reports = BTreeMap::new();
        for r in c.reports {
            let period = c.period.ok_or_else(|| bad("a record with reports names no period"))?;
            let mut fields = BTreeMap::new();
            for (key, h) in r.fields {
                let (device, author) = entry(&c.stampers, h.stamper, COMMUNES)?;
                let stamp = Stamp {
                    hlc: h.hlc,
                    device: *device,
                    author: author.clone(),
                    received_at_ms: h.received_at_ms,
                    mutation_id: h.mutation_id,
                };
                fields.insert(key, Held { value: h.value, version: h.version, stamp });
            }
            let review = SubmissionReview {
                submission: r.id,
                village_id: r.village_id.clone(),
                period,
                state: r.state,
                reason: r.reason,
                user_id: r.user_id,
                user_name: r.user_name,
                at_ms: r.at_ms,
            };
            let header = SubmissionHeader {
                id: r.id,
                village_id: r.village_id,
                period,
                first_seq: r.first_seq,
                review,
            };
            let conflicts = r.conflicts.into_iter().collect();
            reports.insert(r.id, Report { header, header_seq: r.header_seq, fields, conflicts });
        }
        Ok(CommuneRecord { reports, writes: Vec::new() })
    }
}

/// A report's place as `report_places` keeps it.
pub(in crate::db) fn encode_place(place: &Place) -> Vec<u8> {
    encode(place)
}

pub(in crate::db) fn decode_place(bytes: &[u8]) -> Result<Place> {
    decode(PLACES, bytes)
}

/// The value of an entry of `conflicted`: the place of the conflict's
/// report (empty in stores written before, until they are migrated).
pub(in crate::db) fn decode_conflicted(bytes: &[u8]) -> Result<Place> {
    if bytes.is_empty() {
        return Err(Error::Corrupt {
            tree: CONFLICTED,
            why: "an entry names no place: the store was not brought up to date (open it with \
                  the server once)"
                .into(),
        });
    }
    decode(CONFLICTED, bytes)
}

/// A value a field was given, as one commit's record of `history` keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct Revision {
    pub(in crate::db) sub: SubmissionId,
    pub(in crate::db) field: FieldKey,
    pub(in crate::db) held: Held,
}

/// The stored form of a record of `history`, versioned. `V1` wrote every
/// value's report id and stamp in full; `V2` keeps each report id and each
/// (device, author, receive time) once, in tables its values point into
/// (one commit's values share them).
#[derive(Serialize, Deserialize)]
enum StoredHistory {
    V1(Vec<Revision>),
    V2(CompactHistory),
}

#[derive(Serialize, Deserialize)]
struct CompactHistory {
    subs: Vec<SubmissionId>,
    stampers: Vec<(DeviceId, String, u64)>,
    values: Vec<CompactRevision>,
}

#[derive(Serialize, Deserialize)]
struct CompactRevision {
    sub: u32,
    field: FieldKey,
    value: Value,
    version: u64,
    hlc: Hlc,
    stamper: u32,
    mutation_id: u64,
}

pub(in crate::db) fn encode_history(values: &[Revision]) -> Vec<u8> {
    let (mut subs, mut stampers) = (Table::new(), Table::new());
    let values = values
        .iter()
        .map(|r| {
            let stamp = &r.held.stamp;
            CompactRevision {
                sub: subs.at(&r.sub),
                field: r.field.clone(),
                value: r.held.value.clone(),
                version: r.held.version,
                hlc: stamp.hlc,
                stamper: stampers.at(&(stamp.device, stamp.author.clone(), stamp.received_at_ms)),
                mutation_id: stamp.mutation_id,
            }
        })
        .collect();
    let compact = CompactHistory { subs: subs.values, stampers: stampers.values, values };
    encode(&StoredHistory::V2(compact))
}

pub(in crate::db) fn decode_history(bytes: &[u8]) -> Result<Vec<Revision>> {
    let c = match decode::<StoredHistory>(HISTORY, bytes)? {
        StoredHistory::V1(values) => return Ok(values),
        StoredHistory::V2(c) => c,
    };
    let mut out = Vec::with_capacity(c.values.len());
    for r in c.values {
        let (device, author, received_at_ms) = entry(&c.stampers, r.stamper, HISTORY)?;
        let stamp = Stamp {
            hlc: r.hlc,
            device: *device,
            author: author.clone(),
            received_at_ms: *received_at_ms,
            mutation_id: r.mutation_id,
        };
        let held = Held { value: r.value, version: r.version, stamp };
        out.push(Revision { sub: *entry(&c.subs, r.sub, HISTORY)?, field: r.field, held });
    }
    Ok(out)
}
