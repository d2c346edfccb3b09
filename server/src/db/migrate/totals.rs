//! Brings a store written when every rollup cell was a record of its own
//! (`rollups`: period ‖ 0 ‖ org unit ‖ 0 ‖ indicator → cell) to one record
//! per org unit and period (`totals`). Each batch moves a chunk of cells:
//! it deletes them and writes their units' records, merged with what an
//! earlier batch (or an earlier run, killed part way) already moved of the
//! same unit, so a rerun goes on with what is left; the marker is written
//! last. Then the totals of villages and communes are dropped
//! (`no_derived_totals`): theirs are read from their reports.

use std::collections::btree_map::{BTreeMap, Entry};

use fieldsync::rollup::Cell;
use fieldsync::{Catalogue, Period};
use fieldsync_store::{Batch, Engine};

use super::super::rollup::kept_at;
use super::super::schema::retired::ROLLUPS;
use super::super::schema::{decode, Key, UnitTotals, DERIVED_TOTALS_KEY, TOTALS, TOTALS_KEY};
use super::super::{Error, Result};

/// Cells moved per batch. Tests take a handful, so that the stores they
/// build migrate in many batches and a kill can be tried after each one.
#[cfg(not(test))]
const CELLS: usize = super::CHUNK;
#[cfg(test)]
const CELLS: usize = 7;

/// Moves every cell of the earlier layout into its unit's record and marks
/// the store as migrated.
pub(super) fn one_record_per_unit(engine: &dyn Engine) -> Result<()> {
    let mut moved = 0usize;
    loop {
        let mut batch = Batch::default();
        let mut units: BTreeMap<(Period, String), UnitTotals> = BTreeMap::new();
        for entry in engine.iter_all(ROLLUPS).chunk(CELLS).take(CELLS) {
            let (key, bytes) = entry?;
            let Key::Rollup(period, unit, code) = Key::decode(ROLLUPS, &key)? else {
                return Err(Error::Corrupt { tree: ROLLUPS, why: "not a cell key".into() });
            };
            let cell: Cell = decode(ROLLUPS, &bytes)?;
            let totals = match units.entry((period, unit)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let (period, unit) = e.key().clone();
                    let kept = match Key::Totals(period, unit).get(engine)? {
                        Some(bytes) => UnitTotals::decode(&bytes)?,
                        None => UnitTotals::default(),
                    };
                    e.insert(kept)
                }
            };
            if !cell.is_empty() {
                totals.0.insert(code, cell);
            }
            batch.delete(ROLLUPS, key);
            moved += 1;
        }
        if batch.is_empty() {
            break;
        }
        for ((period, unit), totals) in units {
            let key = Key::Totals(period, unit);
            match totals.0.is_empty() {
                true => key.delete(&mut batch),
                false => key.put(&mut batch, totals.encode()),
            }
        }
        engine.commit(batch)?;
    }
    let mut batch = Batch::default();
    Key::Meta(TOTALS_KEY).put(&mut batch, b"1".as_slice());
    engine.commit(batch)?;
    tracing::info!(cells = moved, "kept the totals one record per org unit and period");
    Ok(())
}

/// Deletes the totals kept for villages and communes (read from their
/// reports instead: see `rollup::kept_at`), in batches; a rerun after a
/// crash deletes what is left, and the marker is written last.
pub(super) fn no_derived_totals(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    let mut dropped = 0usize;
    let mut batch = Batch::default();
    for entry in engine.iter_all(TOTALS).chunk(super::CHUNK) {
        let (key, _) = entry?;
        let Key::Totals(_, unit) = Key::decode(TOTALS, &key)? else {
            return Err(Error::Corrupt { tree: TOTALS, why: "not a totals key".into() });
        };
        if catalogue.org_unit(&unit).is_some_and(|u| !kept_at(u.level)) {
            batch.delete(TOTALS, key);
            dropped += 1;
        }
        if batch.len() >= CELLS {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    Key::Meta(DERIVED_TOTALS_KEY).put(&mut batch, b"1".as_slice());
    engine.commit(batch)?;
    tracing::info!(records = dropped, "no totals are kept for villages and communes");
    Ok(())
}
