//! The record of one commune × period: the reports of that commune's
//! villages for that period, each with its header and review state, every
//! field with its value, version and stamp, and its conflicts. A write
//! rewrites the records it touched, once each, whatever the number of
//! values it carries; a report's fields cost no record of their own.

use std::collections::BTreeMap;

use fieldsync::sync::{Conflict, FieldRef, FieldState, Stamp};
use fieldsync::{FieldKey, Period, SubmissionId, Value};
use serde::{Deserialize, Serialize};

use super::{decode, encode, SubmissionHeader, COMMUNES, CONFLICTED, HISTORY, PLACES};
use crate::db::{Error, Result};

/// Where a report lives: the commune its village belonged to when the
/// report was made, and its period (the key of its [`CommuneRecord`]).
pub(in crate::db) type Place = (String, Period);

/// The reports of one commune's villages for one period, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::db) struct CommuneRecord {
    pub(in crate::db) reports: BTreeMap<SubmissionId, Report>,
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

    /// One of its fields' revisions, whole.
    pub(in crate::db) fn revision(&self, revision: &Revision) -> FieldState {
        self.state(&revision.field, &revision.held)
    }
}

/// The stored form of a [`CommuneRecord`], versioned.
#[derive(Serialize, Deserialize)]
enum StoredCommune {
    V1(CommuneRecord),
}

/// [`StoredCommune`] as written, borrowing the record (the same bytes).
#[derive(Serialize)]
enum StoringCommune<'a> {
    V1(&'a CommuneRecord),
}

impl CommuneRecord {
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&StoringCommune::V1(self))
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<CommuneRecord> {
        match decode::<StoredCommune>(COMMUNES, bytes)? {
            StoredCommune::V1(r) => Ok(r),
        }
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

/// The stored form of a record of `history`, versioned.
#[derive(Serialize, Deserialize)]
enum StoredHistory {
    V1(Vec<Revision>),
}

/// [`StoredHistory`] as written, borrowing the values (the same bytes).
#[derive(Serialize)]
enum StoringHistory<'a> {
    V1(&'a [Revision]),
}

pub(in crate::db) fn encode_history(values: &[Revision]) -> Vec<u8> {
    encode(&StoringHistory::V1(values))
}

pub(in crate::db) fn decode_history(bytes: &[u8]) -> Result<Vec<Revision>> {
    match decode::<StoredHistory>(HISTORY, bytes)? {
        StoredHistory::V1(values) => Ok(values),
    }
}
