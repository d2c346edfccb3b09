//! The change log and its commune cuts. Every write moves the entities it
//! touches to the head of the log (`changes`) and of their commune's cut
//! (`changes_by_commune`); a pull reads the whole log, or merges the cuts
//! of the caller's communes. [`Merged`] is the one merge of per-commune
//! parts, over lazy scans: the pull's cuts and the listing of reports by
//! commune both use it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;

use fieldsync::access::User;
use fieldsync::{Catalogue, Level};
use fieldsync_store::{Engine, ScanIter};

use super::schema::{read_u64, Entity, Key, Prefix, CHANGES, ENTITY_SEQ};
use super::txn::Work;
use super::Result;

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
/// (sequence number, entity bytes) in sequence order, read lazily: the
/// whole log when `cuts` is `None`, else the merge of those communes' cuts.
/// `hint` is about how many the caller means to read.
pub(super) fn entries<'a>(
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

/// The cuts (communes) that `area` lies in or spans, each once.
pub(super) fn cuts_under(catalogue: &Catalogue, area: &str) -> Vec<String> {
    let mut cuts: Vec<String> = match catalogue.org_unit(area).map(|u| u.level) {
        Some(Level::Village) => vec![cut_of(catalogue, area)],
        _ => catalogue
            .units_at(Level::Village, Some(area))
            .into_iter()
            .map(|v| cut_of(catalogue, &v.id))
            .collect(),
    };
    cuts.sort();
    cuts.dedup();
    cuts
}

impl Work<'_> {
    /// Moves an entity to the head of the change log.
    pub(super) fn touch(&mut self, entity: Entity, village: &str) -> Result<u64> {
        self.seq += 1;
        let cut = cut_of(&self.catalogue, village);
        self.touched.insert(entity.submission());
        // A record this batch found missing has no log entry to move (every
        // entry points at a record), so there is nothing to look up.
        let missing = match &entity {
            Entity::Field(sub, f) => matches!(self.fields.get(&(*sub, f.clone())), Some(None)),
            Entity::Conflict(sub, f) => {
                matches!(self.conflicts.get(&(*sub, f.clone())), Some(None))
            }
            Entity::Review(sub) => matches!(self.headers.get(sub), Some(None)),
        };
        let old = match self.entity_seqs.get(&entity) {
            Some(s) => *s,
            None if missing => None,
            None => Key::EntitySeq(entity.clone())
                .get(self.store.engine.as_ref())?
                .map(|b| read_u64(ENTITY_SEQ, &b))
                .transpose()?,
        };
        if let Some(old) = old {
            Key::Change(old).delete(&mut self.batch);
            Key::CommuneChange(cut.clone(), old).delete(&mut self.batch);
        }
        Key::Change(self.seq).put(&mut self.batch, entity.key());
        Key::CommuneChange(cut, self.seq).put(&mut self.batch, entity.key());
        Key::EntitySeq(entity.clone()).put(&mut self.batch, self.seq.to_be_bytes());
        self.entity_seqs.insert(entity, Some(self.seq));
        Ok(self.seq)
    }
}

#[cfg(test)]
mod tests;
