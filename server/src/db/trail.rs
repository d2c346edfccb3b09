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
    decode_named, encode_named, CommuneRecord, Key, Place, Prefix, PushRef, Run, Write,
    MAX_WRITES_KEPT, WRITES, WRITES_BY_DEVICE,
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
    /// find it by. A write with no audit entry files nothing. A commune
    /// record the write rewrites anyway, holding every report named there,
    /// lists the write itself (see [`CommuneRecord::writes`]); it must be
    /// filed before the records are written.
    ///
    /// [`CommuneRecord::writes`]: super::schema::CommuneRecord::writes
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
        for (place, named) in places {
            let batch = &mut self.batch;
            let listed = self
                .reports
                .changed_mut(&place)
                .filter(|record| named.iter().all(|sub| record.reports.contains_key(sub)));
            let Some(record) = listed else {
                Key::WriteAtPlace(place.0, place.1, first).put_new(batch, encode_named(&named));
                continue;
            };
            record.writes.push((first, named.into_iter().collect()));
            if record.writes.len() > MAX_WRITES_KEPT {
                for (seq, subs) in record.writes.drain(..) {
                    let subs = subs.into_iter().collect();
                    Key::WriteAtPlace(place.0.clone(), place.1, seq)
                        .put_new(batch, encode_named(&subs));
                }
            }
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
        // The writes the index files that hold entries of the trail.
        let filed = scan.chunk(INDEX_CHUNK).filter_map(move |e| {
            let read = |(key, value): (Vec<u8>, Vec<u8>)| -> Result<Option<u64>> {
                let seq = indexed_seq(tree, &key)?;
                // A record's other reports' writes are passed over unread.
                match trail {
                    Trail::Of(_, _, sub) if !decode_named(&value)?.contains(&sub) => Ok(None),
                    _ => Ok(Some(seq)),
                }
            };
            e.map_err(Error::from).and_then(read).transpose()
        });
        let listed = match self.listed_in_record(trail, newest_first, cursor) {
            Ok(listed) => listed,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let read = move |seq: Result<u64>| -> Result<Write> {
            let seq = seq?;
            match Key::Write(seq).get(self.engine.as_ref())? {
                Some(bytes) => Write::decode(&bytes),
                None => Err(Error::Corrupt {
                    tree,
                    why: format!("index points at missing entry {seq}"),
                }),
            }
        };
        Box::new(merged(filed, listed, newest_first).map(read))
    }

    /// The writes a report's commune record lists that name it, in the
    /// walk's order from the one `cursor` falls in (see [`Store::records`]);
    /// none for other trails.
    fn listed_in_record(
        &self,
        trail: Trail<'_>,
        newest_first: bool,
        cursor: u64,
    ) -> Result<Vec<u64>> {
        let Trail::Of(commune, period, sub) = trail else {
            return Ok(Vec::new());
        };
        let Some(bytes) = Key::Commune(commune.to_owned(), period).get(self.engine.as_ref())?
        else {
            return Ok(Vec::new());
        };
        let record = CommuneRecord::decode(&bytes)?;
        let mut seqs: Vec<u64> = record
            .writes
            .into_iter()
            .filter(|(_, named)| named.contains(&sub))
            .map(|(seq, _)| seq)
            .collect();
        if newest_first {
            let before = Some(cursor).filter(|c| *c > 0).unwrap_or(u64::MAX);
            seqs.retain(|&seq| seq < before);
            seqs.reverse();
        } else {
            // The last write at or before the cursor may hold entries after it.
            let from = seqs.partition_point(|&seq| seq <= cursor).saturating_sub(1);
            seqs.drain(..from);
        }
        Ok(seqs)
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

/// Two sequences of record keys in the same order (descending when
/// `newest_first`), merged into one in that order, each key once.
fn merged<'a>(
    filed: impl Iterator<Item = Result<u64>> + 'a,
    listed: Vec<u64>,
    newest_first: bool,
) -> impl Iterator<Item = Result<u64>> + 'a {
    let (mut filed, mut listed) = (filed.peekable(), listed.into_iter().peekable());
    let first = move |a: u64, b: u64| if newest_first { a > b } else { a < b };
    std::iter::from_fn(move || match (filed.peek(), listed.peek()) {
        (None, None) => None,
        (Some(Err(_)), _) | (Some(Ok(_)), None) => filed.next(),
        (None, Some(_)) => listed.next().map(Ok),
        (Some(Ok(a)), Some(&b)) if *a == b => {
            listed.next();
            filed.next()
        }
        (Some(Ok(a)), Some(&b)) => match first(*a, b) {
            true => filed.next(),
            false => listed.next().map(Ok),
        },
    })
}

/// The key of the first entry of a reversed scan, if any: the last key at or
/// before where the scan starts.
fn last_at_or_before(scan: ScanIter<'_>) -> Result<Option<Vec<u8>>> {
    Ok(scan.chunk(1).next().transpose()?.map(|(key, _)| key))
}
