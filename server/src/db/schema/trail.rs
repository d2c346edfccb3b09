//! The records of the audit trail and of pushes' results: one record per
//! write, holding its audit entries and, for a device's push, every
//! mutation's result and digest (so that a write costs the trail one record
//! whatever the number of values it carries), and the pointers by which a
//! replay finds its push. Both are versioned, so a later field never breaks
//! reading what is on disk.

use std::collections::HashMap;

use fieldsync::sync::{
    AuditEntry, AuditKind, FieldRef, FieldState, MutationResult, Outcome, Stamp,
};
use fieldsync::{DeviceId, FieldKey, Hlc, SubmissionId, Value};
use serde::{Deserialize, Serialize};

use super::commune::Table;
use super::{decode, encode, DEVICES, WRITES, WRITES_BY_DEVICE, WRITES_BY_PLACE};
use crate::db::{Error, Result};

/// What the server remembers of a device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub last_mutation_id: u64,
    pub last_push_ms: u64,
    /// The user whose pushes this tablet id carries; set by its first push.
    pub owner: String,
    /// The tablet has acknowledged the results up to this mutation id: a
    /// replay of one is answered "forgotten" (its digest still checked).
    pub released_through: u64,
}

/// What follows the fields a device record has always begun with,
/// versioned: a record without it is one written before (nothing released
/// by mark).
#[derive(Serialize, Deserialize)]
enum DeviceTail {
    V1 { released_through: u64 },
}

impl DeviceState {
    /// The stored form: the fields earlier versions wrote, in their order,
    /// then the versioned tail.
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        let mut bytes = encode(&(self.last_mutation_id, self.last_push_ms, &self.owner));
        bytes.extend(encode(&DeviceTail::V1 { released_through: self.released_through }));
        bytes
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<DeviceState> {
        let ((last_mutation_id, last_push_ms, owner), tail) =
            postcard::take_from_bytes::<(u64, u64, String)>(bytes)
                .map_err(|e| Error::Corrupt { tree: DEVICES, why: e.to_string() })?;
        let released_through = match tail {
            [] => 0,
            _ => match decode::<DeviceTail>(DEVICES, tail)? {
                DeviceTail::V1 { released_through } => released_through,
            },
        };
        Ok(DeviceState { last_mutation_id, last_push_ms, owner, released_through })
    }
}

/// A mutation's result with its digest, as the earlier layout kept it
/// under its device and id (read only by the migration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct StoredResult {
    pub(in crate::db) digest: [u8; 32],
    pub(in crate::db) result: MutationResult,
}

/// One write's part of the audit trail, stored under the audit sequence
/// number of its first entry: its entries (numbered on from there, each
/// with its own sequence number) and, for a push, what it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct Write {
    pub(in crate::db) entries: Vec<AuditEntry>,
    pub(in crate::db) push: Option<Pushed>,
}

/// What a device's push committed: its new mutations, numbered from
/// `first_id` on, each with its SHA-256 (so a replay is told from a
/// different mutation under a used id) and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct Pushed {
    pub(in crate::db) device: DeviceId,
    pub(in crate::db) first_id: u64,
    pub(in crate::db) digests: Vec<[u8; 32]>,
    pub(in crate::db) results: Vec<MutationResult>,
}

/// The stored form of a [`Write`], versioned. V2 keeps a push's result
/// whose field state is the one its own audit entry names (an applied
/// value: the entry's place, new value and clock, at a version, stamped
/// by the push's author) as that version alone, instead of the value again.
/// V3 also says each user, device, time and place (village and period) of
/// its entries once, in tables the entries point into, numbers the entries
/// on from the first, and says of a report an entry names only that it is
/// its place's; a write whose entries V3 cannot say exactly is kept as V2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum StoredWrite {
    V1(Write),
    V2 { entries: Vec<AuditEntry>, push: Option<CompactPush> },
    V3 { entries: CompactEntries, push: Option<CompactPush> },
}

/// [`StoredWrite::V3`]'s entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CompactEntries {
    /// The first entry's sequence number; the others follow one by one.
    first: u64,
    times: Vec<u64>,
    users: Vec<String>,
    devices: Vec<DeviceId>,
    /// (village, period) as the entries name them.
    places: Vec<(String, String)>,
    entries: Vec<CompactEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CompactEntry {
    at: u32,
    user: u32,
    device: Option<u32>,
    kind: AuditKind,
    place: u32,
    /// The entry names its place's report.
    named: bool,
    field: String,
    old: Option<Value>,
    new: Option<Value>,
    hlc: Hlc,
    mutation_id: u64,
    detail: String,
}

impl CompactEntries {
    /// `entries` as V3 says them, if it can say them exactly.
    fn of(entries: &[AuditEntry]) -> Option<CompactEntries> {
        let first = entries.first()?.seq;
        let (mut times, mut users) = (Table::new(), Table::new());
        let (mut devices, mut places) = (Table::new(), Table::new());
        let mut ids: HashMap<u32, Option<SubmissionId>> = HashMap::new();
        let mut compact = Vec::with_capacity(entries.len());
        for (e, seq) in entries.iter().zip(first..) {
            let place = places.at(&(e.village_id.clone(), e.period.clone()));
            let of = *ids.entry(place).or_insert_with(|| place_id(&e.village_id, &e.period));
            let named = match e.submission {
                None => false,
                Some(sub) if Some(sub) == of => true,
                Some(_) => return None,
            };
            if e.seq != seq {
                return None;
            }
            compact.push(CompactEntry {
                at: times.at(&e.at_ms),
                user: users.at(&e.user_id),
                device: e.device.map(|d| devices.at(&d)),
                kind: e.kind,
                place,
                named,
                field: e.field.clone(),
                old: e.old.clone(),
                new: e.new.clone(),
                hlc: e.hlc,
                mutation_id: e.mutation_id,
                detail: e.detail.clone(),
            });
        }
        Some(CompactEntries {
            first,
            times: times.values,
            users: users.values,
            devices: devices.values,
            places: places.values,
            entries: compact,
        })
    }

    fn whole(self) -> Result<Vec<AuditEntry>> {
        let ids: Vec<Option<SubmissionId>> =
            self.places.iter().map(|(village, period)| place_id(village, period)).collect();
        let mut out = Vec::with_capacity(self.entries.len());
        for (e, seq) in self.entries.into_iter().zip(self.first..) {
            let (village_id, period) = get(&self.places, e.place)?;
            let submission = match e.named {
                true => Some(get(&ids, e.place)?.ok_or_else(|| past("report"))?),
                false => None,
            };
            out.push(AuditEntry {
                seq,
                at_ms: get(&self.times, e.at)?,
                user_id: get(&self.users, e.user)?,
                device: e.device.map(|d| get(&self.devices, d)).transpose()?,
                kind: e.kind,
                submission,
                village_id,
                period,
                field: e.field,
                old: e.old,
                new: e.new,
                hlc: e.hlc,
                mutation_id: e.mutation_id,
                detail: e.detail,
            });
        }
        Ok(out)
    }
}

/// Entry `i` of one of a compact write's tables.
fn get<T: Clone>(table: &[T], i: u32) -> Result<T> {
    table.get(i as usize).cloned().ok_or_else(|| past("table"))
}

fn past(what: &str) -> Error {
    Error::Corrupt { tree: WRITES, why: format!("an audit entry points past its record's {what}") }
}

/// The id of the report of `village` for `period` as an audit entry names
/// them, if the period is one.
fn place_id(village: &str, period: &str) -> Option<SubmissionId> {
    period.parse().ok().map(|p| SubmissionId::of(village, p))
}

/// [`StoredWrite::V2`] as written, borrowing the entries: the same bytes
/// (the variant's index, then its fields).
struct StoringWrite<'a> {
    entries: &'a [AuditEntry],
    push: Option<CompactPush>,
}

impl Serialize for StoringWrite<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let mut v = s.serialize_struct_variant("StoredWrite", 1, "V2", 2)?;
        v.serialize_field("entries", self.entries)?;
        v.serialize_field("push", &self.push)?;
        v.end()
    }
}

/// [`StoredWrite::V3`] as written, borrowing the push's part.
struct StoringCompact<'a> {
    entries: CompactEntries,
    push: &'a Option<CompactPush>,
}

impl Serialize for StoringCompact<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let mut v = s.serialize_struct_variant("StoredWrite", 2, "V3", 2)?;
        v.serialize_field("entries", &self.entries)?;
        v.serialize_field("push", self.push)?;
        v.end()
    }
}

/// A [`Pushed`] as V2 stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CompactPush {
    device: DeviceId,
    first_id: u64,
    digests: Vec<[u8; 32]>,
    /// The name its mutations were stamped with.
    author: String,
    results: Vec<CompactResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum CompactResult {
    /// The mutation's own audit entry holds its field state, at `version`.
    AsAudited {
        outcome: Outcome,
        reason: String,
        version: u64,
    },
    Whole(MutationResult),
    /// As `AsAudited`, its reason the entry's detail.
    AsAuditedSaid {
        outcome: Outcome,
        version: u64,
    },
}

/// The field state mutation `entry` left, if its entry says it all (the
/// push's own entry of a value, at `version`, by `author`).
fn as_audited(entry: &AuditEntry, version: u64, author: &str) -> Option<FieldState> {
    Some(FieldState {
        at: FieldRef {
            submission: entry.submission?,
            village_id: entry.village_id.clone(),
            period: entry.period.parse().ok()?,
            field: FieldKey::parse(&entry.field),
        },
        value: entry.new.clone()?,
        version,
        stamp: Stamp {
            hlc: entry.hlc,
            device: entry.device?,
            author: author.to_owned(),
            received_at_ms: entry.at_ms,
            mutation_id: entry.mutation_id,
        },
    })
}

/// The audit entry of each of the push's mutations, by mutation id.
fn entries_of(entries: &[AuditEntry], device: DeviceId) -> HashMap<u64, &AuditEntry> {
    entries.iter().filter(|e| e.device == Some(device)).map(|e| (e.mutation_id, e)).collect()
}

impl Pushed {
    fn compact(&self, entries: &[AuditEntry]) -> CompactPush {
        // The push's own stamp, on the first value it wrote.
        let author = self.results.iter().find_map(|r| {
            let stamp = &r.current.as_ref()?.stamp;
            (stamp.device == self.device && stamp.mutation_id == r.id).then(|| stamp.author.clone())
        });
        let author = author.unwrap_or_default();
        let by_id = entries_of(entries, self.device);
        let results = self
            .results
            .iter()
            .map(|r| {
                let current = r.current.as_ref();
                let audited = current.zip(by_id.get(&r.id)).and_then(|(current, entry)| {
                    let rebuilt = as_audited(entry, current.version, &author)?;
                    (rebuilt == *current).then_some((current.version, entry))
                });
                let outcome = r.outcome;
                match audited {
                    Some((version, e)) if e.detail == r.reason => {
                        CompactResult::AsAuditedSaid { outcome, version }
                    }
                    Some((version, _)) => {
                        CompactResult::AsAudited { outcome, reason: r.reason.clone(), version }
                    }
                    None => CompactResult::Whole(r.clone()),
                }
            })
            .collect();
        CompactPush {
            device: self.device,
            first_id: self.first_id,
            digests: self.digests.clone(),
            author,
            results,
        }
    }
}

impl CompactPush {
    fn whole(self, entries: &[AuditEntry]) -> Result<Pushed> {
        let by_id = entries_of(entries, self.device);
        let results = self.results.into_iter().zip(self.first_id..).map(|(r, id)| match r {
            CompactResult::Whole(r) => Ok(r),
            CompactResult::AsAudited { outcome, version, .. }
            | CompactResult::AsAuditedSaid { outcome, version } => {
                let entry = by_id.get(&id);
                let current = entry.and_then(|e| as_audited(e, version, &self.author));
                let (Some(entry), Some(current)) = (entry, current) else {
                    return Err(Error::Corrupt {
                        tree: WRITES,
                        why: format!("the result of mutation {id} points at no audit entry of it"),
                    });
                };
                let reason = match r {
                    CompactResult::AsAudited { reason, .. } => reason,
                    _ => entry.detail.clone(),
                };
                Ok(MutationResult { id, outcome, reason, current: Some(current) })
            }
        });
        Ok(Pushed {
            device: self.device,
            first_id: self.first_id,
            digests: self.digests,
            results: results.collect::<Result<_>>()?,
        })
    }
}

impl Write {
    /// The record's bytes: [`StoredWrite::V3`], or `V2` for entries V3
    /// cannot say exactly.
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        let push = self.push.as_ref().map(|p| p.compact(&self.entries));
        match CompactEntries::of(&self.entries) {
            Some(entries) => encode(&StoringCompact { entries, push: &push }),
            None => self.encode_v2(),
        }
    }

    /// The record as [`StoredWrite::V2`] (the form before V3).
    pub(in crate::db) fn encode_v2(&self) -> Vec<u8> {
        let push = self.push.as_ref().map(|p| p.compact(&self.entries));
        encode(&StoringWrite { entries: &self.entries, push })
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<Write> {
        let (entries, push) = match decode::<StoredWrite>(WRITES, bytes)? {
            StoredWrite::V1(w) => return Ok(w),
            StoredWrite::V2 { push, entries } => (entries, push),
            StoredWrite::V3 { push, entries } => (entries.whole()?, push),
        };
        let push = push.map(|p| p.whole(&entries)).transpose()?;
        Ok(Write { entries, push })
    }
}

/// Where a run of a device's mutations is answered from, filed under the
/// device and the run's first mutation id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) enum PushRef {
    /// A push, whose [`Write`] is under this audit sequence number.
    Trail(u64),
    /// Mutations an earlier layout kept a result or a digest of, one per id
    /// from the run's first: the digest, and the result unless it was
    /// released.
    Kept { digests: Vec<[u8; 32]>, results: Vec<Option<MutationResult>> },
}

/// The stored form of a [`PushRef`], versioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum StoredPushRef {
    V1(PushRef),
}

/// [`StoredPushRef`] as written, borrowing the pointer (the same bytes).
#[derive(Serialize)]
enum StoringPushRef<'a> {
    V1(&'a PushRef),
}

impl PushRef {
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&StoringPushRef::V1(self))
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<PushRef> {
        match decode::<StoredPushRef>(WRITES_BY_DEVICE, bytes)? {
            StoredPushRef::V1(p) => Ok(p),
        }
    }
}

/// A run of one device's mutations as a replay reads it: from `first_id`
/// on, each one's digest and, unless released, its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::db) struct Run {
    pub(in crate::db) first_id: u64,
    pub(in crate::db) digests: Vec<[u8; 32]>,
    pub(in crate::db) results: Vec<Option<MutationResult>>,
}

impl Run {
    /// The digest and the stored result of mutation `id`, if the run holds it.
    pub(in crate::db) fn get(&self, id: u64) -> Option<(&[u8; 32], Option<&MutationResult>)> {
        let at = usize::try_from(id.checked_sub(self.first_id)?).ok()?;
        let digest = self.digests.get(at)?;
        Some((digest, self.results.get(at).and_then(Option::as_ref)))
    }
}

impl From<Pushed> for Run {
    fn from(p: Pushed) -> Run {
        Run {
            first_id: p.first_id,
            digests: p.digests,
            results: p.results.into_iter().map(Some).collect(),
        }
    }
}

/// The value of a `writes_by_place` entry: the ids of the reports of that
/// commune record a write's entries name, their 16 bytes each, in order.
pub(in crate::db) fn encode_named(reports: &std::collections::BTreeSet<SubmissionId>) -> Vec<u8> {
    reports.iter().flat_map(|sub| *sub.0.as_bytes()).collect()
}

/// A `writes_by_place` entry's report ids back.
pub(in crate::db) fn decode_named(bytes: &[u8]) -> Result<Vec<SubmissionId>> {
    let (ids, rest) = bytes.as_chunks::<16>();
    if !rest.is_empty() || ids.is_empty() {
        return Err(Error::Corrupt {
            tree: WRITES_BY_PLACE,
            why: format!("{} bytes are not a list of report ids", bytes.len()),
        });
    }
    Ok(ids.iter().map(|id| SubmissionId(uuid::Uuid::from_bytes(*id))).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fieldsync::sync::{Mutation, Outcome, RawValue};
    use fieldsync::{demo, DeviceId, Hlc};
    use fieldsync_store::{Engine, Memory};

    use super::*;
    use crate::db::Store;

    fn amount(id: u64, field: &str, v: &str, hlc: u64) -> Mutation {
        Mutation {
            id,
            village_id: demo::SAMPLE_VILLAGE.into(),
            period: "2022".into(),
            field: field.into(),
            value: RawValue::Amount(v.into()),
            base_version: 0,
            hlc: Hlc(hlc),
            author: "An".into(),
        }
    }

    /// A push's record keeps an applied value's field state as its version
    /// alone and reads back whole; results its audit entry does not
    /// describe (a conflict keeping another value, a refusal) stay whole.
    #[test]
    fn a_pushs_record_keeps_an_applied_value_once_and_reads_back_whole() {
        let engine = Arc::new(Memory::new());
        let store = Store::open(engine.clone(), demo::catalogue).unwrap();
        let an = fieldsync::access::User {
            id: "an".into(),
            name: "An".into(),
            role: fieldsync::access::Role::Surveyor,
            areas: vec![demo::PROVINCE.into()],
            disabled: false,
        };
        let (one, two) = (DeviceId(uuid::Uuid::from_u128(1)), DeviceId(uuid::Uuid::from_u128(2)));
        let first = [amount(1, "road_km", "10", 10), amount(2, "road_cement_km", "8", 11)];
        store.push(&an, one, &first, 0, 1).unwrap();
        let second = [
            amount(1, "road_km", "5", 20),    // breaks the cement total: a conflict
            amount(2, "playground", "3", 21), // applied
            amount(3, "no_such_field", "1", 22), // refused
        ];
        let results = store.push(&an, two, &second, 0, 2).unwrap();
        let outcomes: Vec<Outcome> = results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Conflict, Outcome::Applied, Outcome::Rejected]);
        let mut compact = 0;
        for entry in (engine.as_ref() as &dyn Engine).iter_all(WRITES) {
            let (_, bytes) = entry.unwrap();
            let write = Write::decode(&bytes).unwrap();
            let Some(push) = &write.push else { continue };
            assert_eq!(Write::decode(&write.encode()).unwrap(), write, "read back whole");
            let whole = encode(&StoredWrite::V1(write.clone()));
            assert!(bytes.len() < whole.len(), "{} bytes, {} whole", bytes.len(), whole.len());
            let CompactPush { results, .. } = push.compact(&write.entries);
            for (r, stored) in push.results.iter().zip(&results) {
                let short = matches!(
                    stored,
                    CompactResult::AsAudited { .. } | CompactResult::AsAuditedSaid { .. }
                );
                match (r.outcome, short) {
                    (Outcome::Applied, true) => compact += 1,
                    (Outcome::Applied, false) => panic!("applied {} kept whole", r.id),
                    (_, true) => panic!("{:?} kept short", r.outcome),
                    _ => {}
                }
            }
            // The entries' users, devices, times and places are said once
            // (V3); the form before still reads, and is longer.
            assert_eq!(bytes[0], 2, "V3");
            let v2 = write.encode_v2();
            assert_eq!(v2[0], 1);
            assert_eq!(Write::decode(&v2).unwrap(), write);
            assert!(bytes.len() < v2.len(), "{} bytes, {} as V2", bytes.len(), v2.len());
            // An entry naming another report than its place's is kept as V2.
            let mut odd = write.clone();
            odd.entries[0].submission = Some(SubmissionId(uuid::Uuid::from_u128(7)));
            assert_eq!(odd.encode()[0], 1);
            assert_eq!(Write::decode(&odd.encode()).unwrap(), odd);
        }
        assert_eq!(compact, 3, "the three applied values");
        // Replays answer exactly what the pushes did.
        assert_eq!(store.push(&an, two, &second, 0, 3).unwrap(), results);
        assert_eq!(store.check().unwrap(), Vec::<String>::new());
    }
}
