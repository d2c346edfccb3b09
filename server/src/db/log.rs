//! The change log and its commune cuts, append-only. Every commit appends
//! one entry to the log (`changes`) listing the entities it changed, and
//! one to the cut of each commune it touched (`changes_by_commune`); it
//! reads and deletes nothing of the log. A pull reads the whole log, or
//! merges the cuts of the caller's communes, and sends each entity at its
//! latest listing only ([`latest`] tells it from the entity's record).
//! [`Merged`] is the one merge of per-commune parts, over lazy scans: the
//! pull's cuts and the listing of reports by commune both use it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::Bound;

use fieldsync::access::User;
use fieldsync::sync::Change;
use fieldsync::{Catalogue, Level};
use fieldsync_store::{Engine, ScanIter};

use super::commune::Reader;
use super::schema::{
    encode, read_u64, Entity, Key, Place, PlacedEntry, Prefix, CHANGES, CHANGES_BY_COMMUNE,
};
use super::txn::Work;
use super::Result;

/// Entries of the log read per scan by a pull: each may list a whole push.
const ENTRIES_PER_READ: usize = 64;

/// A caller whose areas span more communes than this reads the whole log.
pub(super) const MAX_CUTS: usize = 512;

/// An entry of a [`Merged`] sequence: what it is ordered by, its key and
/// its value.
pub(super) type Entry<O> = (O, Vec<u8>, Vec<u8>);

/// The entries of several sorted parts of one tree (each a key range, such
/// as one commune's cut), merged into one sequence ordered by `order` (what
/// each part's keys are sorted by: a sequence number, a submission id).
/// Each part is read lazily a chunk at a time, so memory holds one chunk per
/// part, whatever the parts hold.
pub(super) struct Merged<'a, O> {
    parts: Vec<ScanIter<'a>>,
    /// The next entry of each part not yet exhausted, smallest first.
    heads: BinaryHeap<Reverse<(O, usize)>>,
    /// The entry behind each head, by part.
    held: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    order: fn(&[u8]) -> Result<O>,
    started: bool,
}

impl<'a, O: Ord> Merged<'a, O> {
    pub(super) fn new(parts: Vec<ScanIter<'a>>, order: fn(&[u8]) -> Result<O>) -> Self {
        let held = parts.iter().map(|_| None).collect();
        Merged { parts, heads: BinaryHeap::new(), held, order, started: false }
    }

    /// Takes part `i`'s next entry into the heap.
    fn advance(&mut self, i: usize) -> Result<()> {
        if let Some(entry) = self.parts[i].next() {
            let (key, value) = entry?;
            self.heads.push(Reverse(((self.order)(&key)?, i)));
            self.held[i] = Some((key, value));
        }
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<Entry<O>>> {
        if !self.started {
            self.started = true;
            for i in 0..self.parts.len() {
                self.advance(i)?;
            }
        }
        let Some(Reverse((order, i))) = self.heads.pop() else {
            return Ok(None);
        };
        let (key, value) = self.held[i].take().expect("a head holds its entry");
        self.advance(i)?;
        Ok(Some((order, key, value)))
    }
}

impl<O: Ord> Iterator for Merged<'_, O> {
    type Item = Result<Entry<O>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// The sequence number at the end of a key of a commune's cut.
fn seq_in_cut(key: &[u8]) -> Result<u64> {
    match Key::decode(super::schema::CHANGES_BY_COMMUNE, key)? {
        Key::CommuneChange(_, seq) => Ok(seq),
        _ => Err(super::Error::Corrupt {
            tree: super::schema::CHANGES_BY_COMMUNE,
            why: "a key of the cut is not a cut entry".into(),
        }),
    }
}

/// The entries of the change log after `cursor` and up to `head`, as
/// (sequence number, entry bytes) in sequence order, read lazily: the
/// whole log when `cuts` is `None`, else the merge of those communes' cuts
/// (where one commit has an entry in each commune it touched, one after
/// the other). `hint` is about how many the caller means to read.
fn entries<'a>(
    engine: &'a dyn Engine,
    cuts: Option<&[String]>,
    cursor: u64,
    head: u64,
    hint: usize,
) -> Box<dyn Iterator<Item = Result<(u64, Vec<u8>)>> + 'a> {
    let Some(cuts) = cuts else {
        let (from, to) = (Key::Change(cursor).encode(), Key::Change(head).encode());
        let log = engine.iter(CHANGES, Bound::Excluded(&from), Bound::Included(&to));
        return Box::new(log.chunk(hint).map(|e| {
            let (key, entity) = e?;
            Ok((read_u64(CHANGES, &key)?, entity))
        }));
    };
    let chunk = (hint / cuts.len().max(1)).clamp(8, hint.max(8));
    let parts = cuts
        .iter()
        .map(|cut| {
            let from = Key::CommuneChange(cut.clone(), cursor).encode();
            let to = Key::CommuneChange(cut.clone(), head).encode();
            let tree = Prefix::CommuneChanges(cut).tree();
            engine.iter(tree, Bound::Excluded(&from), Bound::Included(&to)).chunk(chunk)
        })
        .collect();
    Box::new(Merged::new(parts, seq_in_cut).map(|e| e.map(|(seq, _, entity)| (seq, entity))))
}

/// The changes listed in the log after `cursor` and up to `head`, as
/// (sequence number, entity, its report's place) in sequence order, read lazily (see
/// [`entries`] for `cuts`). A commit's entries are read whole (in every cut
/// read) and its changes after `cursor` sent in order, so a cursor inside a
/// commit resumes at its next change. Superseded listings are included: the
/// caller tells them by [`latest`].
pub(super) fn changes<'a>(
    engine: &'a dyn Engine,
    cuts: Option<&[String]>,
    cursor: u64,
    head: u64,
    hint: usize,
) -> impl Iterator<Item = Result<(u64, Entity, Place)>> + 'a {
    let tree = if cuts.is_some() { CHANGES_BY_COMMUNE } else { CHANGES };
    let hint = hint.clamp(1, ENTRIES_PER_READ);
    let mut entries = entries(engine, cuts, cursor, head, hint).peekable();
    let mut pending = VecDeque::new();
    std::iter::from_fn(move || loop {
        if let Some(change) = pending.pop_front() {
            return Some(Ok(change));
        }
        let mut commit = Vec::new();
        let mut at = None;
        // The entries of one commit (one per commune cut read) follow each
        // other: a commit is its entries' changes, merged.
        while let Some(entry) =
            entries.next_if(|e| at.is_none() || e.as_ref().ok().map(|e| e.0) == at)
        {
            let (seq, bytes) = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            at = Some(seq);
            match PlacedEntry::decode(tree, seq, &bytes) {
                Ok(Some(entry)) => commit.extend(entry.changes()),
                Ok(None) => return Some(Err(unplaced(tree, seq))),
                Err(e) => return Some(Err(e)),
            }
        }
        at?;
        commit.sort_by_key(|(seq, ..)| *seq);
        pending.extend(commit.into_iter().filter(|(seq, ..)| *seq > cursor));
    })
}

/// An entry of the log written before entries named their places: the
/// migration that gives them their places has not run.
fn unplaced(tree: &'static str, seq: u64) -> super::Error {
    super::Error::Corrupt {
        tree,
        why: format!(
            "entry {seq} names no places: the store was not brought up to date (open it with \
             the server once)"
        ),
    }
}

/// An entity's record as it stands: what a pull sends of it, the sequence
/// number of its latest change, and its size encoded.
pub(super) struct Latest {
    pub(super) change: Change,
    /// `None` for a conflict or header written before records carried it
    /// (a store not yet migrated).
    pub(super) seq: Option<u64>,
    pub(super) size: usize,
}

impl Latest {
    pub(super) fn village(&self) -> &str {
        match &self.change {
            Change::Field(f) => &f.at.village_id,
            Change::Conflict(c) => &c.at.village_id,
            Change::Review(r) => &r.village_id,
        }
    }
}

/// What `entity` names, read from its report's commune record (at
/// `place`) through `reader`, with the sequence number of its latest change (a field's
/// version; the number the record keeps for a conflict or a header);
/// `None` if there is no such report, field or conflict.
pub(super) fn latest(
    reader: &mut Reader<'_>,
    entity: &Entity,
    place: &Place,
) -> Result<Option<Latest>> {
    let found = reader.with_report(place, entity.submission(), |report| match entity {
        Entity::Field(_, field) => report.field(field).map(|state| {
            let version = state.version;
            (Change::Field(state), version)
        }),
        Entity::Conflict(_, field) => {
            report.conflicts.get(field).map(|(c, seq)| (Change::Conflict(c.clone()), *seq))
        }
        Entity::Review(_) => {
            Some((Change::Review(report.header.review.clone()), report.header_seq))
        }
    })?;
    Ok(found.flatten().map(|(change, seq)| {
        let size = encode(&change).len();
        Latest { change, seq: Some(seq), size }
    }))
}

/// The cut of the change log a village's changes go to: its commune (its
/// nearest unit above the village level, if the catalogue skips communes).
pub(super) fn cut_of(catalogue: &Catalogue, village: &str) -> String {
    catalogue
        .lineage(village)
        .find(|u| u.level < Level::Village)
        .map_or(String::new(), |u| u.id.clone())
}

/// The cuts of the change log that hold everything `caller` may read, or
/// `None` when that is the whole log (admins, areas that are provinces, and
/// areas spanning more than [`MAX_CUTS`] communes).
pub(super) fn cuts_of(catalogue: &Catalogue, caller: &User) -> Option<Vec<String>> {
    if caller.role == fieldsync::access::Role::Admin {
        return None;
    }
    let mut cuts = Vec::new();
    for area in &caller.areas {
        if catalogue.org_unit(area)?.level == Level::Province {
            return None;
        }
        cuts.extend(cuts_under(catalogue, area));
        cuts.sort();
        cuts.dedup();
        if cuts.len() > MAX_CUTS {
            return None;
        }
    }
    Some(cuts)
}

/// The cuts (communes) that `area` lies in or spans, each once: with a
/// tree that changed, also every commune its villages belonged to before
/// (their earlier reports stay filed there).
pub(super) fn cuts_under(catalogue: &Catalogue, area: &str) -> Vec<String> {
    let villages: Vec<&str> = match catalogue.org_unit(area).map(|u| u.level) {
        Some(Level::Village) => vec![area],
        _ => catalogue
            .units_at(Level::Village, Some(area))
            .into_iter()
            .map(|v| v.id.as_str())
            .collect(),
    };
    let mut cuts: Vec<String> = Vec::with_capacity(villages.len());
    for village in villages {
        cuts.push(cut_of(catalogue, village));
        if catalogue.has_changed() {
            cuts.extend(catalogue.communes_ever(village).into_iter().map(str::to_owned));
        }
    }
    cuts.sort();
    cuts.dedup();
    cuts
}

impl Work<'_> {
    /// Numbers a change of `entity` (the next sequence number, returned) and
    /// lists it in this commit's entry of the log; an entity changed twice
    /// in one commit is listed once, at its last change.
    pub(super) fn touch(&mut self, entity: Entity, place: &Place) -> u64 {
        self.seq += 1;
        self.touched.insert((entity.submission(), place.clone()));
        self.changed.insert(entity, (self.seq, place.clone()));
        self.seq
    }

    /// Appends this commit's entry to the log, under its last sequence
    /// number, and one entry to the cut of each commune it touched: puts
    /// only, no reads.
    pub(super) fn append_to_log(&mut self) {
        if self.changed.is_empty() {
            return;
        }
        let all = PlacedEntry::of(self.changed.drain().map(|(e, (seq, place))| (seq, e, place)));
        Key::Change(self.seq).put_new(&mut self.batch, all.encode());
        for (cut, listed) in all.by_commune() {
            Key::CommuneChange(cut, self.seq).put_new(&mut self.batch, listed.encode());
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
