//! The change log's part of `Store::check`: one entry per commit, each
//! listing records that exist, numbered within its commit and never past
//! the head; every record's latest change listed where the record says;
//! and the commune cuts holding exactly the log's changes, each in its
//! commune's cut.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::{show, Problems};
use crate::db::commune::commune_of;
use crate::db::commune::{revision_at, Reader};
use crate::db::log::latest;
use crate::db::schema::retired::ENTITY_SEQ;
use crate::db::schema::{
    read_u64, CommuneRecord, Entity, Key, LogEntry, Place, PlacedEntry, CHANGES,
    CHANGES_BY_COMMUNE, COMMUNES, META, SEQ_KEY,
};
use crate::db::{Result, Store};

/// An entity, for people.
fn what(entity: &Entity) -> String {
    match entity {
        Entity::Field(sub, f) => format!("field {f} of {sub}"),
        Entity::Conflict(sub, f) => format!("the conflict on {f} of {sub}"),
        Entity::Review(sub) => format!("the review of {sub}"),
    }
}

impl Store {
    /// The head, and the number of its last entry.
    fn check_head(&self, problems: &mut Problems) -> Result<Option<u64>> {
        let head = match Key::Meta(SEQ_KEY).get(self.engine.as_ref())? {
            None => {
                problems.add("the change-log head (meta `seq`) is missing".into());
                None
            }
            Some(bytes) => match read_u64(META, &bytes) {
                Ok(seq) => Some(seq),
                Err(_) => {
                    problems.add("the change-log head (meta `seq`) is not an 8-byte number".into());
                    None
                }
            },
        };
        let last = match self.engine.last(CHANGES)? {
            Some((key, _)) => read_u64(CHANGES, &key).ok(),
            None => Some(0),
        };
        if let (Some(head), Some(last)) = (head, last) {
            if head != last {
                problems.add(format!(
                    "the change-log head is {head} but the last change in the log is {last}"
                ));
            }
        }
        Ok(head)
    }

    /// The change log and its commune cuts: each entry of the log, the cuts
    /// listing as many changes as the log, no cut entry without its
    /// commit's entry in the log, and no `entity_seq` left of the layout
    /// before.
    pub(super) fn check_log(&self, problems: &mut Problems) -> Result<()> {
        let head = self.check_head(problems)?.unwrap_or(u64::MAX);
        let mut previous = 0u64;
        let mut in_log = 0usize;
        self.each_entry(CHANGES, |key, value| {
            let Ok(seq) = read_u64(CHANGES, key) else {
                problems.add(format!("change-log key {} is not a sequence number", show(key)));
                return Ok(());
            };
            let Ok(entry) = PlacedEntry::decode(CHANGES, seq, value) else {
                problems.add(format!("change-log entry {seq} cannot be read"));
                return Ok(());
            };
            let Some(entry) = entry else {
                problems.add(format!(
                    "change-log entry {seq} has the shape of an older version (no places): the \
                     store was not migrated"
                ));
                return Ok(());
            };
            let changes = entry.changes();
            in_log += changes.len();
            self.check_entry(problems, head, previous, seq, &changes)?;
            previous = seq;
            Ok(())
        })?;
        let mut in_cuts = 0usize;
        self.each_entry(CHANGES_BY_COMMUNE, |key, value| {
            let Ok(Key::CommuneChange(cut, seq)) = Key::decode(CHANGES_BY_COMMUNE, key) else {
                problems.add(format!("changes_by_commune key {} is malformed", show(key)));
                return Ok(());
            };
            match PlacedEntry::decode(CHANGES_BY_COMMUNE, seq, value) {
                Err(_) => problems.add(format!("commune {cut:?}'s entry {seq} cannot be read")),
                Ok(None) => problems.add(format!(
                    "commune {cut:?}'s entry {seq} has the shape of an older version (no \
                     places): the store was not migrated"
                )),
                Ok(Some(entry)) => in_cuts += entry.changes().len(),
            }
            if Key::Change(seq).get(self.engine.as_ref())?.is_none() {
                problems.add(format!(
                    "commune {cut:?}'s cut of the log holds entry {seq}, which the log does not"
                ));
            }
            Ok(())
        })?;
        if in_cuts != in_log {
            problems.add(format!(
                "the commune cuts of the change log list {in_cuts} changes, the log {in_log}"
            ));
        }
        if self.engine.last(ENTITY_SEQ)?.is_some() {
            problems.add("entity_seq still holds entries: the store was not migrated".into());
        }
        Ok(())
    }

    /// One entry of the log (commit `seq`, after the entry of commit
    /// `previous`): its changes numbered after `previous`, in order, its
    /// last at `seq`, no entity twice, each naming a record at the place it
    /// gives whose latest change is this one or later and not past `head`
    /// (a field's value since replaced found in its record's history);
    /// and each commune's share of it the entry of that commune's cut.
    fn check_entry(
        &self,
        problems: &mut Problems,
        head: u64,
        previous: u64,
        seq: u64,
        entry: &[(u64, Entity, Place)],
    ) -> Result<()> {
        let numbers: Vec<u64> = entry.iter().map(|(s, ..)| *s).collect();
        let in_order = numbers.windows(2).all(|w| w[0] < w[1]);
        if numbers.first().is_none_or(|&s| s <= previous)
            || numbers.last() != Some(&seq)
            || !in_order
        {
            problems.add(format!(
                "change-log entry {seq} lists changes {numbers:?}: not in order, after entry \
                 {previous}, ending at {seq}"
            ));
        }
        let distinct: HashSet<&Entity> = entry.iter().map(|(_, e, _)| e).collect();
        if distinct.len() != entry.len() {
            problems.add(format!("change-log entry {seq} lists an entity twice"));
        }
        let catalogue = self.catalogue();
        let mut by_cut: BTreeMap<String, Vec<(u64, Entity, Place)>> = BTreeMap::new();
        let mut reader = Reader::new(self.engine.as_ref());
        for (s, entity, place) in entry {
            let now = match latest(&mut reader, entity, place) {
                Ok(Some(now)) => now,
                Ok(None) => {
                    problems.add(format!(
                        "change {s} points at {}, which does not exist in the record of {:?} \
                         for {}",
                        what(entity),
                        place.0,
                        place.1
                    ));
                    continue;
                }
                Err(e) => {
                    problems.add(format!("change {s} points at {}: {e}", what(entity)));
                    continue;
                }
            };
            match now.seq {
                None => problems.add(format!(
                    "{} (change {s}) does not say its latest change: the store was not migrated",
                    what(entity)
                )),
                Some(l) if l < *s => problems.add(format!(
                    "{} is listed at change {s} but its record says its latest change is {l}",
                    what(entity)
                )),
                Some(l) if l > head => problems.add(format!(
                    "{}'s latest change {l} is past the change-log head {head}",
                    what(entity)
                )),
                // A value since replaced is kept in its record's history.
                Some(l) if l > *s => {
                    if let Entity::Field(sub, field) = entity {
                        let engine = self.engine.as_ref();
                        let why = match revision_at(engine, place, *sub, field, *s) {
                            Ok(Some(_)) => None,
                            Ok(None) => Some("missing from".to_owned()),
                            Err(e) => Some(format!("unreadable ({e}) in")),
                        };
                        if let Some(why) = why {
                            problems.add(format!(
                                "{} held version {s}, since replaced, but that revision is \
                                 {why} the history of {:?} for {}",
                                what(entity),
                                place.0,
                                place.1
                            ));
                        }
                    }
                }
                Some(_) => {}
            }
            let cut = commune_of(&catalogue, now.village(), place.1);
            if cut != place.0 {
                problems.add(format!(
                    "change {s} places {} in commune {:?}, not its village's {cut:?}",
                    what(entity),
                    place.0
                ));
            }
            by_cut.entry(cut).or_default().push((*s, entity.clone(), place.clone()));
        }
        for (cut, listed) in by_cut {
            let stored = Key::CommuneChange(cut.clone(), seq).get(self.engine.as_ref())?;
            let stored = stored.map(|b| PlacedEntry::decode(CHANGES_BY_COMMUNE, seq, &b));
            match stored {
                None => problems.add(format!(
                    "commit {seq}'s changes in commune {cut:?} are missing from its cut of the log"
                )),
                Some(Ok(Some(cut_entry))) if cut_entry.changes() == listed => {}
                Some(_) => problems.add(format!(
                    "commune {cut:?}'s entry {seq} is not the log's changes of that commune"
                )),
            }
        }
        Ok(())
    }

    /// Every field, conflict and review's latest change (a field's version,
    /// the number after a conflict's or header's record) is listed, for
    /// that entity, in the entry of the commit that made it.
    pub(super) fn check_latest_listed(&self, problems: &mut Problems) -> Result<()> {
        // The entry read last, as a set: the records of one big commit
        // are looked up in it without reading it again for each.
        let mut last: Option<(u64, HashSet<(u64, Entity)>)> = None;
        self.each_entry(COMMUNES, |_, value| {
            let Ok(record) = CommuneRecord::decode(value) else {
                return Ok(()); // reported with the records
            };
            for (sub, report) in record.reports {
                let fields =
                    report.fields.iter().map(|(f, h)| (Entity::Field(sub, f.clone()), h.version));
                let conflicts = report
                    .conflicts
                    .iter()
                    .map(|(f, (_, seq))| (Entity::Conflict(sub, f.clone()), *seq));
                let review = std::iter::once((Entity::Review(sub), report.header_seq));
                for (entity, seq) in fields.chain(conflicts).chain(review) {
                    if !self.listed(&mut last, seq, entity.clone())? {
                        problems.add(format!(
                            "{}'s latest change {seq} is not listed in the change log",
                            what(&entity)
                        ));
                    }
                }
            }
            Ok(())
        })
    }

    /// Whether `entity`'s change `seq` is listed in the log's entry of its
    /// commit (the first entry at or after `seq`), read into `last` unless
    /// it is the one there.
    fn listed(
        &self,
        last: &mut Option<(u64, HashSet<(u64, Entity)>)>,
        seq: u64,
        entity: Entity,
    ) -> Result<bool> {
        let change = (seq, entity);
        // Each change is listed once: found in the entry read last, it is
        // listed in its commit's.
        if last.as_ref().is_some_and(|(_, listed)| listed.contains(&change)) {
            return Ok(true);
        }
        let from = Key::Change(seq).encode();
        let found =
            self.engine.iter(CHANGES, Bound::Included(&from), Bound::Unbounded).chunk(1).next();
        let Some((key, value)) = found.transpose()? else {
            return Ok(false);
        };
        let at = read_u64(CHANGES, &key)?;
        let Ok((entry, _)) = LogEntry::decode(CHANGES, at, &value) else {
            return Ok(false);
        };
        let listed: HashSet<(u64, Entity)> = entry.0.into_iter().collect();
        let found = listed.contains(&change);
        *last = Some((at, listed));
        Ok(found)
    }
}
