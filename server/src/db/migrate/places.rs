//! Brings a store whose reports were found by id through `report_places`
//! (one record per report) to one where every reader finds a report at its
//! place, from its village and period: each entry of the change log and of
//! its commune cuts is rewritten with its reports' places, each entry of
//! `conflicted` gets its report's place, then `report_places` is emptied.
//! In batches: an entry already rewritten reads as such and is left, so a
//! rerun after a crash goes on with what is left; the marker is written
//! last.

use std::collections::HashMap;

use fieldsync::SubmissionId;
use fieldsync_store::{Batch, Engine};

use super::super::schema::{
    encode, Key, LogEntry, Place, PlacedEntry, CHANGES, CHANGES_BY_COMMUNE, CONFLICTED, PLACES,
    PLACES_KEY,
};
use super::{retire, stored_place, CHUNK};
use crate::db::{Error, Result};

/// Places looked up, kept for a batch.
struct Places<'e> {
    engine: &'e dyn Engine,
    known: HashMap<SubmissionId, Place>,
}

impl Places<'_> {
    fn of(&mut self, tree: &'static str, sub: SubmissionId) -> Result<Place> {
        if let Some(place) = self.known.get(&sub) {
            return Ok(place.clone());
        }
        let place = stored_place(self.engine, sub)?.ok_or_else(|| Error::Corrupt {
            tree,
            why: format!("an entry names report {sub}, which has no place"),
        })?;
        if self.known.len() >= CHUNK {
            self.known.clear();
        }
        self.known.insert(sub, place.clone());
        Ok(place)
    }
}

/// Rewrites the log, its cuts and `conflicted` with places, then empties
/// `report_places` and writes the marker.
pub(super) fn name_places(engine: &dyn Engine) -> Result<()> {
    let mut places = Places { engine, known: HashMap::new() };
    let mut batch = Batch::default();
    let mut moved = 0usize;
    for tree in [CHANGES, CHANGES_BY_COMMUNE] {
        for entry in engine.iter_all(tree).chunk(CHUNK) {
            let (key, bytes) = entry?;
            let seq = match Key::decode(tree, &key)? {
                Key::Change(seq) | Key::CommuneChange(_, seq) => seq,
                _ => return Err(Error::Corrupt { tree, why: "not a log key".into() }),
            };
            if PlacedEntry::decode(tree, seq, &bytes)?.is_some() {
                continue;
            }
            let (LogEntry(listed), _) = LogEntry::decode(tree, seq, &bytes)?;
            let mut placed = Vec::with_capacity(listed.len());
            for (at, entity) in listed {
                let place = places.of(tree, entity.submission())?;
                placed.push((at, entity, place));
            }
            batch.put(tree, key, PlacedEntry::of(placed).encode());
            moved += 1;
            if batch.len() >= CHUNK {
                engine.commit(std::mem::take(&mut batch))?;
            }
        }
    }
    for entry in engine.iter_all(CONFLICTED).chunk(CHUNK) {
        let (key, value) = entry?;
        if !value.is_empty() {
            continue;
        }
        let Key::Conflicted(sub, _) = Key::decode(CONFLICTED, &key)? else {
            unreachable!("the conflicted tree decodes to its keys")
        };
        batch.put(CONFLICTED, key, encode(&places.of(CONFLICTED, sub)?));
        if batch.len() >= CHUNK {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    engine.commit(batch)?;
    retire(engine, PLACES, PLACES_KEY, b"1")?;
    tracing::info!(entries = moved, "the change log names its reports' places");
    Ok(())
}

#[cfg(test)]
pub(super) mod tests;
