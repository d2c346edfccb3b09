//! The change log's entries and the number of their latest change that
//! conflicts and headers carry after their record.

use std::collections::BTreeMap;

use fieldsync::{FieldKey, SubmissionId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{decode, encode, read_u64, Entity, Place};
use crate::db::{Error, Result};

/// An entry of the change log, or of one commune's cut of it: the entities
/// one commit changed, each once, with the sequence number of its change in
/// that commit, in sequence order. The entry's key is the commit's last
/// sequence number, so entries sort in commit order and a cursor inside a
/// commit (one of its sequence numbers) still reads the entry's later part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::db) struct LogEntry(pub(in crate::db) Vec<(u64, Entity)>);

/// The stored form of a [`LogEntry`]. The first three variants are the
/// shape the log had when it moved each entity to its head: one entity per
/// entry, changed at the entry's own sequence number (their bytes are an
/// [`Entity`]'s); they are read as such, so a log half migrated reads whole.
#[derive(Serialize, Deserialize)]
enum StoredEntry {
    Field(SubmissionId, FieldKey),
    Conflict(SubmissionId, FieldKey),
    Review(SubmissionId),
    V1(Vec<(u64, Entity)>),
    V2(Vec<(Place, Vec<(u64, Entity)>)>),
    V3(Compact),
}

/// [`StoredEntry::V3`]: `V2` saying each report once per place, each field
/// once per entry (in a table its changes point into), and each change's
/// sequence number as its distance back from the entry's last.
#[derive(Serialize, Deserialize)]
struct Compact {
    last: u64,
    fields: Vec<FieldKey>,
    places: Vec<(Place, Vec<ReportChanges>)>,
}

/// A report's changes in a [`Compact`] entry: each one's distance back
/// from the entry's last sequence number, and what it changed.
type ReportChanges = (SubmissionId, Vec<(u64, Changed)>);

/// A place's listing as [`PlacedEntry`] holds it.
type Listing = (Place, Vec<(u64, Entity)>);

/// What of a report a change of a [`Compact`] entry names.
#[derive(Serialize, Deserialize)]
enum Changed {
    Field(u32),
    Conflict(u32),
    Review,
}

impl Compact {
    /// `placed` as V3 says it: `None` unless each place lists its changes
    /// in strictly increasing order (as [`PlacedEntry::of`] makes them), so
    /// that reading them back in that order gives the same listing.
    fn of(placed: &[Listing]) -> Option<Compact> {
        let ordered = placed.iter().all(|(_, l)| l.windows(2).all(|w| w[0].0 < w[1].0));
        let last = placed.iter().flat_map(|(_, l)| l.iter().map(|(s, _)| *s)).max()?;
        if !ordered {
            return None;
        }
        let mut fields = super::commune::Table::new();
        let places = placed
            .iter()
            .map(|(place, listed)| {
                let mut reports: Vec<ReportChanges> = Vec::new();
                let mut at: BTreeMap<SubmissionId, usize> = BTreeMap::new();
                for (seq, entity) in listed {
                    let changed = match entity {
                        Entity::Field(_, f) => Changed::Field(fields.at(f)),
                        Entity::Conflict(_, f) => Changed::Conflict(fields.at(f)),
                        Entity::Review(_) => Changed::Review,
                    };
                    let sub = entity.submission();
                    let i = *at.entry(sub).or_insert_with(|| {
                        reports.push((sub, Vec::new()));
                        reports.len() - 1
                    });
                    reports[i].1.push((last - seq, changed));
                }
                (place.clone(), reports)
            })
            .collect();
        Some(Compact { last, fields: fields.values, places })
    }

    fn whole(self, tree: &'static str) -> Result<Vec<Listing>> {
        let bad = |why: &str| Error::Corrupt { tree, why: why.to_owned() };
        let field =
            |i: u32| self.fields.get(i as usize).cloned().ok_or_else(|| bad("no such field"));
        let mut out = Vec::with_capacity(self.places.len());
        for (place, reports) in self.places {
            let mut listed = Vec::new();
            for (sub, changes) in reports {
                for (back, changed) in changes {
                    let seq =
                        self.last.checked_sub(back).ok_or_else(|| bad("a change before 0"))?;
                    let entity = match changed {
                        Changed::Field(f) => Entity::Field(sub, field(f)?),
                        Changed::Conflict(f) => Entity::Conflict(sub, field(f)?),
                        Changed::Review => Entity::Review(sub),
                    };
                    listed.push((seq, entity));
                }
            }
            listed.sort_by_key(|(seq, _)| *seq);
            out.push((place, listed));
        }
        Ok(out)
    }
}

/// [`StoredEntry::V1`] as written, borrowing the listing: the same bytes
/// (the variant's index, then the listing).
struct StoringEntry<'a>(&'a [(u64, Entity)]);

impl Serialize for StoringEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_newtype_variant("StoredEntry", 3, "V1", self.0)
    }
}

/// An entry of the change log as the log writes it now: its listing by
/// place, each report's changes under the commune record that holds it, so
/// that a pull reads each entity from its record without looking its
/// report up (in sequence order within a place).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::db) struct PlacedEntry(pub(in crate::db) Vec<(Place, Vec<(u64, Entity)>)>);

/// [`StoredEntry::V2`] as written, borrowing the listing.
struct StoringPlaced<'a>(&'a [(Place, Vec<(u64, Entity)>)]);

impl Serialize for StoringPlaced<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_newtype_variant("StoredEntry", 4, "V2", self.0)
    }
}

impl PlacedEntry {
    /// The entry listing `changes`, grouped by place, in sequence order
    /// within each place.
    pub(in crate::db) fn of(changes: impl IntoIterator<Item = (u64, Entity, Place)>) -> Self {
        let mut by_place: BTreeMap<Place, Vec<(u64, Entity)>> = BTreeMap::new();
        for (seq, entity, place) in changes {
            by_place.entry(place).or_default().push((seq, entity));
        }
        for listed in by_place.values_mut() {
            listed.sort_by_key(|(seq, _)| *seq);
        }
        PlacedEntry(by_place.into_iter().collect())
    }

    /// The entry's bytes: [`StoredEntry::V3`], or `V2` for a listing V3
    /// cannot say exactly.
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        match Compact::of(&self.0) {
            Some(compact) => encode(&StoredEntry::V3(compact)),
            None => self.encode_v2(),
        }
    }

    /// The entry as [`StoredEntry::V2`] (the form before V3).
    pub(in crate::db) fn encode_v2(&self) -> Vec<u8> {
        encode(&StoringPlaced(&self.0))
    }

    /// The entry stored under sequence number `seq` of `tree` (see
    /// [`LogEntry::decode`]), with its places; `None` for an entry written
    /// before entries carried them (a store not yet migrated).
    pub(in crate::db) fn decode(
        tree: &'static str,
        seq: u64,
        bytes: &[u8],
    ) -> Result<Option<PlacedEntry>> {
        match decode(tree, bytes)? {
            StoredEntry::V2(placed) => Ok(Some(PlacedEntry(placed))),
            StoredEntry::V3(compact) => Ok(Some(PlacedEntry(compact.whole(tree)?))),
            _ => LogEntry::decode(tree, seq, bytes).map(|_| None),
        }
    }

    /// Every change listed, with its place, in sequence order.
    pub(in crate::db) fn changes(&self) -> Vec<(u64, Entity, Place)> {
        let mut out: Vec<_> = self
            .0
            .iter()
            .flat_map(|(place, listed)| {
                listed.iter().map(move |(seq, entity)| (*seq, entity.clone(), place.clone()))
            })
            .collect();
        out.sort_by_key(|(seq, ..)| *seq);
        out
    }

    /// The entry split by commune (the commune's cut of the log lists its
    /// part), in the places' order.
    pub(in crate::db) fn by_commune(self) -> BTreeMap<String, PlacedEntry> {
        let mut cuts: BTreeMap<String, PlacedEntry> = BTreeMap::new();
        for (place, listed) in self.0 {
            cuts.entry(place.0.clone()).or_default().0.push((place, listed));
        }
        cuts
    }
}

impl LogEntry {
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&StoringEntry(&self.0))
    }

    /// The entry stored under sequence number `seq` of `tree` (without its
    /// places, if it has them), and whether it has the one-entity shape of
    /// old stores.
    pub(in crate::db) fn decode(
        tree: &'static str,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(LogEntry, bool)> {
        let old =
            |entity| -> Result<(LogEntry, bool)> { Ok((LogEntry(vec![(seq, entity)]), true)) };
        match decode(tree, bytes)? {
            StoredEntry::Field(sub, field) => old(Entity::Field(sub, field)),
            StoredEntry::Conflict(sub, field) => old(Entity::Conflict(sub, field)),
            StoredEntry::Review(sub) => old(Entity::Review(sub)),
            StoredEntry::V1(listed) => Ok((LogEntry(listed), false)),
            StoredEntry::V2(_) | StoredEntry::V3(_) => {
                let placed = PlacedEntry::decode(tree, seq, bytes)?.unwrap_or_default();
                let changes = placed.changes();
                Ok((LogEntry(changes.into_iter().map(|(seq, e, _)| (seq, e)).collect()), false))
            }
        }
    }
}

/// A record of `conflicts` or `submissions` as stored: its postcard bytes,
/// then the big-endian sequence number of its last change, so that a pull
/// reading an entity's listing in the log can tell, from the record alone,
/// whether a later listing supersedes it (a field's `version` already is
/// that number). postcard reads a value and ignores what follows it, so
/// every other reader of these records reads them as before.
pub(in crate::db) fn with_seq(mut record: Vec<u8>, seq: u64) -> Vec<u8> {
    record.extend_from_slice(&seq.to_be_bytes());
    record
}

/// A record written by [`with_seq`], and the sequence number of its last
/// change (`None`: a record of a store not yet migrated, which has none).
pub(in crate::db) fn decode_with_seq<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<(T, Option<u64>)> {
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| Error::Corrupt { tree, why: e.to_string() })?;
    match rest.len() {
        0 => Ok((value, None)),
        _ => Ok((value, Some(read_u64(tree, rest)?))),
    }
}
