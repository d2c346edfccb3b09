//! The records of the audit trail and of pushes' results: one record per
//! write, holding its audit entries and, for a device's push, every
//! mutation's result and digest (so that a write costs the trail one record
//! whatever the number of values it carries), and the pointers by which a
//! replay finds its push. Both are versioned, so a later field never breaks
//! reading what is on disk.

use fieldsync::sync::{AuditEntry, MutationResult};
use fieldsync::{DeviceId, SubmissionId};
use serde::{Deserialize, Serialize};

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

/// The stored form of a [`Write`], versioned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum StoredWrite {
    V1(Write),
}

/// [`StoredWrite`] as written, borrowing the write (the same bytes).
#[derive(Serialize)]
enum StoringWrite<'a> {
    V1(&'a Write),
}

impl Write {
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&StoringWrite::V1(self))
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<Write> {
        match decode::<StoredWrite>(WRITES, bytes)? {
            StoredWrite::V1(w) => Ok(w),
        }
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
