//! The change log's entries and the number of their latest change that
//! conflicts and headers carry after their record.

use fieldsync::{FieldKey, SubmissionId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{decode, encode, read_u64, Entity};
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
}

/// [`StoredEntry::V1`] as written, borrowing the listing: the same bytes
/// (the variant's index, then the listing).
struct StoringEntry<'a>(&'a [(u64, Entity)]);

impl Serialize for StoringEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_newtype_variant("StoredEntry", 3, "V1", self.0)
    }
}

impl LogEntry {
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&StoringEntry(&self.0))
    }

    /// The entry stored under sequence number `seq` of `tree`, and whether
    /// it has the one-entity shape of old stores.
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
