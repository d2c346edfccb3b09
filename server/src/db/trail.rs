//! The audit trail and pushes' results, one record per write (the records:
//! `schema/trail.rs`). [`Work::file_trail`] writes a write's record and its
//! index entries in the write's batch; [`Store::trail`] reads entries back
//! in sequence order either way from a cursor, from the whole trail or
//! through an index; [`Store::run_of`] finds what a replay is answered from.

mod check;
#[cfg(test)]
pub(super) mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use fieldsync::sync::AuditEntry;
use fieldsync::{Catalogue, DeviceId, Period, SubmissionId};
use fieldsync_store::{prefix_end, ScanIter};

use super::commune::place_of;
use super::schema::{
    decode_named, encode_named, Key, Place, Prefix, PushRef, Run, Write, WRITES, WRITES_BY_DEVICE,
};
use super::txn::Work;
use super::{Error, Result, Store};

/// Index entries read per chunk.
const INDEX_CHUNK: usize = 1_024;
/// Records of the trail read per chunk: each holds a whole write, up to a
/// push of a thousand mutations.
pub(super) const RECORD_CHUNK: usize = 16;

impl Work<'_> {
    /// Files the write's audit entries, with its push's results, as one
    /// record under the first entry's sequence number, with one index entry
    /// per user and per commune record its entries name (listing the
    /// reports there they name), and for a push the pointer its replays
    /// find it by. A write with no audit entry files nothing.
    pub(super) fn file_trail(&mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.entries);
        let push = self.pushed.take();
        let Some(first) = entries.first().map(|e| e.seq) else {
            // Every new mutation of a push is audited.
            debug_assert!(push.is_none(), "a push with results but no audit entry");
            return Ok(());
        };
        let users: BTreeSet<&str> = entries.iter().map(|e| e.user_id.as_str()).collect();
        for user in users {
            Key::WriteByUser(user.to_owned(), first).put_new(&mut self.batch, Vec::new());
        }
        let places = named_by_place(&entries, &self.catalogue)?;
        for ((commune, period), named) in places {
            Key::WriteAtPlace(commune, period, first)
                .put_new(&mut self.batch, encode_named(&named));
        }
        if let Some(p) = &push {
            let pointer = PushRef::Trail(first).encode();
            Key::PushOf(p.device, p.first_id).put_new(&mut self.batch, pointer);
        }
        Key::Write(first).put_new(&mut self.batch, Write { entries, push }.encode());
        Ok(())
    }
}

/// The reports `entries` name, by the commune record each is filed under:
/// its report's place, from its village and period (for a report never
/// made, every mutation refused, the place it would have).
pub(super) fn named_by_place(
    entries: &[AuditEntry],
    catalogue: &Catalogue,
) -> Result<BTreeMap<Place, BTreeSet<SubmissionId>>> {
    let mut places: BTreeMap<Place, BTreeSet<SubmissionId>> = BTreeMap::new();
    for entry in entries {
        let Some(sub) = entry.submission else { continue };
        let period: Period = entry.period.parse().map_err(|_| Error::Corrupt {
            tree: WRITES,
            why: format!("audit entry {} names a report but no period", entry.seq),
        })?;
        places.entry(place_of(catalogue, &entry.village_id, period)).or_default().insert(sub);
    }
    Ok(places)
}

/// Which entries of the trail a walk yields: all of them, or those one
/// index files.
#[derive(Clone, Copy, Debug)]
pub(super) enum Trail<'a> {
    All,
    /// The entries about one report, filed under its commune record (its
    /// commune and period).
    Of(&'a str, Period, SubmissionId),
    /// The entries by one user.
    By(&'a str),
}

impl Trail<'_> {
    fn holds(&self, entry: &AuditEntry) -> bool {
        match self {
            Trail::All => true,
            Trail::Of(_, _, sub) => entry.submission == Some(*sub),
            Trail::By(user) => entry.user_id == *user,
        }
    }

    /// The index it is read through, if any.
    fn index(&self) -> Option<Prefix<'_>> {
        match self {
            Trail::All => None,
            Trail::Of(commune, period, _) => Some(Prefix::WritesAt(commune, *period)),
            Trail::By(user) => Some(Prefix::WritesBy(user)),
        }
    }
}

/// An index entry's key for a record of the trail.
fn index_key(index: Prefix<'_>, seq: u64) -> Vec<u8> {
    match index {
        Prefix::WritesAt(commune, period) => {
            Key::WriteAtPlace(commune.to_owned(), period, seq).encode()
        }
        Prefix::WritesBy(user) => Key::WriteByUser(user.to_owned(), seq).encode(),
        _ => unreachable!("an index of the trail"),
    }
}

/// The record an index entry points at.
fn indexed_seq(tree: &'static str, key: &[u8]) -> Result<u64> {
    match Key::decode(tree, key)? {
        Key::WriteAtPlace(_, _, seq) | Key::WriteByUser(_, seq) => Ok(seq),
        _ => Err(Error::Corrupt { tree, why: "not an index of the trail".into() }),
    }
}

type Entries<'a> = Box<dyn Iterator<Item = Result<AuditEntry>> + 'a>;

impl Store {
    /// The entries of `trail`, read lazily: oldest first after the
    /// sequence number `cursor`, or newest first before it (0: from the
    /// newest). A record holds a whole write, so the one the cursor falls
    /// in is read from the cursor on.
    pub(super) fn trail<'a>(
        &'a self,
        trail: Trail<'a>,
        newest_first: bool,
        cursor: u64,
    ) -> Entries<'a> {
        let before = Some(cursor).filter(|c| *c > 0).unwrap_or(u64::MAX);
        let records = self.records(trail, newest_first, cursor);
        Box::new(records.flat_map(move |record| {
            let mut entries: Vec<Result<AuditEntry>> = match record {
                Err(e) => vec![Err(e)],
                Ok(write) => write
                    .entries
                    .into_iter()
                    .filter(|e| trail.holds(e))
                    .filter(|e| match newest_first {
                        true => e.seq < before,
                        false => e.seq > cursor,
                    })
                    .map(Ok)
                    .collect(),
            };
            if newest_first {
                entries.reverse();
            }
            entries
        }))
    }

    /// The records of `trail` from the one `cursor` falls in, in order.
    fn records<'a>(
        &'a self,
        trail: Trail<'a>,
        newest_first: bool,
        cursor: u64,
    ) -> Box<dyn Iterator<Item = Result<Write>> + 'a> {
        let engine = self.engine.as_ref();
        let before = Some(cursor).filter(|c| *c > 0).unwrap_or(u64::MAX);
        let Some(index) = trail.index() else {
            let scan = match newest_first {
                true => {
                    let end = Key::Write(before).encode();
                    engine.iter_rev(WRITES, Bound::Unbounded, Bound::Excluded(&end))
                }
                false => {
                    let at = Key::Write(cursor).encode();
                    let rev = engine.iter_rev(WRITES, Bound::Unbounded, Bound::Included(&at));
                    let from = match last_at_or_before(rev) {
                        Ok(from) => from,
                        Err(e) => return Box::new(std::iter::once(Err(e))),
                    };
                    let start =
                        from.as_ref().map_or(Bound::Unbounded, |k| Bound::Included(k.as_slice()));
                    engine.iter(WRITES, start, Bound::Unbounded)
                }
            };
            return Box::new(scan.chunk(RECORD_CHUNK).map(|e| Write::decode(&e?.1)));
        };
        let (tree, start) = (index.tree(), index.encode());
        let scan = match newest_first {
            true => {
                let end = index_key(index, before);
                engine.iter_rev(tree, Bound::Included(&start), Bound::Excluded(&end))
            }
            false => {
                let at = index_key(index, cursor);
                let rev = engine.iter_rev(tree, Bound::Included(&start), Bound::Included(&at));
                let from = match last_at_or_before(rev) {
                    Ok(from) => from.unwrap_or(start.clone()),
                    Err(e) => return Box::new(std::iter::once(Err(e))),
                };
                let end = prefix_end(&start);
                let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                engine.iter(tree, Bound::Included(&from), to)
            }
        };
        let read = move |(key, value): (Vec<u8>, Vec<u8>)| -> Result<Option<Write>> {
            let seq = indexed_seq(tree, &key)?;
            // A record's other reports' writes are passed over unread.
            if let Trail::Of(_, _, sub) = trail {
                if !decode_named(&value)?.contains(&sub) {
                    return Ok(None);
                }
            }
            match Key::Write(seq).get(self.engine.as_ref())? {
                Some(bytes) => Write::decode(&bytes).map(Some),
                None => Err(Error::Corrupt {
                    tree,
                    why: format!("index points at missing entry {seq}"),
                }),
            }
        };
        Box::new(scan.chunk(INDEX_CHUNK).filter_map(move |e| match e {
            Ok(entry) => read(entry).transpose(),
            Err(e) => Some(Err(e.into())),
        }))
    }

    /// Where the trail files the entries about the report of `village` for
    /// `period`: its place (or the one it would have), and its id.
    pub(super) fn filed_at(&self, village: &str, period: Period) -> Result<(Place, SubmissionId)> {
        Ok((place_of(&self.catalogue(), village, period), SubmissionId::of(village, period)))
    }

    /// Every audit entry about the report of `village` for `period`, oldest
    /// first (for tests and checks).
    pub fn audit_of(&self, village: &str, period: Period) -> Result<Vec<AuditEntry>> {
        let ((commune, period), sub) = self.filed_at(village, period)?;
        self.trail(Trail::Of(&commune, period, sub), false, 0).collect()
    }

    /// The run of `device`'s mutations that holds mutation `id`, if one is
    /// kept: a push's results, or what an earlier layout kept.
    pub(super) fn run_of(&self, device: DeviceId, id: u64) -> Result<Option<Run>> {
        let engine = self.engine.as_ref();
        let (from, to) = (Key::PushOf(device, 0).encode(), Key::PushOf(device, id).encode());
        let scan = engine.iter_rev(WRITES_BY_DEVICE, Bound::Included(&from), Bound::Included(&to));
        let Some(entry) = scan.chunk(1).next() else {
            return Ok(None);
        };
        let (key, value) = entry?;
        let Key::PushOf(_, first_id) = Key::decode(WRITES_BY_DEVICE, &key)? else {
            return Err(Error::Corrupt { tree: WRITES_BY_DEVICE, why: "not a push's key".into() });
        };
        let run = match PushRef::decode(&value)? {
            PushRef::Kept { digests, results } => Run { first_id, digests, results },
            PushRef::Trail(seq) => {
                let missing = |what: &str| Error::Corrupt {
                    tree: WRITES_BY_DEVICE,
                    why: format!("push {first_id} of device {device} points at {what}"),
                };
                let bytes = Key::Write(seq).get(engine)?.ok_or_else(|| missing("no record"))?;
                let push = Write::decode(&bytes)?.push.ok_or_else(|| missing("no push"))?;
                Run::from(push)
            }
        };
        Ok(Some(run).filter(|r| r.get(id).is_some()))
    }
}

/// The key of the first entry of a reversed scan, if any: the last key at or
/// before where the scan starts.
fn last_at_or_before(scan: ScanIter<'_>) -> Result<Option<Vec<u8>>> {
    Ok(scan.chunk(1).next().transpose()?.map(|(key, _)| key))
}
