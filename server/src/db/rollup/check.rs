//! `check`'s part for the totals: every kept cell against a recomputation
//! from the reports themselves.

use std::collections::{BTreeMap, BTreeSet};

use fieldsync::rollup::Cell;
use fieldsync::Period;

use super::super::schema::{retired, CommuneRecord, Key, UnitTotals};
use super::super::schema::{COMMUNES, TOTALS};
use super::super::{Error, Result, Store};
use super::kept_at;

/// Cells by org unit and period, then indicator code.
type Cells = BTreeMap<(Period, String), BTreeMap<String, Cell>>;

impl Store {
    /// Recomputes the totals of every unit above the communes from the
    /// submissions themselves and lists each cell where the kept totals
    /// differ (villages' and communes' are read from their reports, so
    /// none is kept), each record that keeps
    /// no cell, and cells left in the earlier layout. Empty: they match
    /// exactly.
    pub fn check_rollups(&self) -> Result<Vec<String>> {
        let _guard = self.read_lock();
        let expected = self.recomputed_totals()?;
        let mut problems = Vec::new();
        let mut kept: Cells = BTreeMap::new();
        self.each_entry(TOTALS, |key, bytes| {
            let Key::Totals(period, unit) = Key::decode(TOTALS, key)? else {
                return Err(Error::Corrupt { tree: TOTALS, why: "not a totals key".into() });
            };
            let totals = UnitTotals::decode(bytes)?;
            if totals.0.is_empty() {
                problems.push(format!("{period} / {unit}: a record with no cell is kept"));
            }
            kept.insert((period, unit), totals.0);
            Ok(())
        })?;
        let none = BTreeMap::new();
        let units: BTreeSet<&(Period, String)> = expected.keys().chain(kept.keys()).collect();
        for at in units {
            let (want, have) = (expected.get(at).unwrap_or(&none), kept.get(at).unwrap_or(&none));
            let codes: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
            for code in codes.into_iter().filter(|c| want.get(*c) != have.get(*c)) {
                problems.push(format!(
                    "{} / {} / {code}: kept {:?}, recomputed {:?}",
                    at.0,
                    at.1,
                    have.get(code),
                    want.get(code)
                ));
            }
        }
        let left = self.engine.iter_all(retired::ROLLUPS).take(1_000).count();
        if left > 0 {
            problems.push(format!(
                "{left}{} cell(s) are still kept in the earlier layout (one record per \
                 indicator)",
                if left == 1_000 { " or more" } else { "" }
            ));
        }
        Ok(problems)
    }

    /// The totals of every unit above the communes as the submissions make
    /// them, without empty cells.
    fn recomputed_totals(&self) -> Result<Cells> {
        let catalogue = self.catalogue();
        let mut expected: Cells = BTreeMap::new();
        self.each_entry(COMMUNES, |_, bytes| {
            for report in CommuneRecord::decode(bytes)?.reports.values() {
                let header = &report.header;
                let made = report.contributions();
                for (code, c) in made {
                    let lineage = catalogue.lineage_in(&header.village_id, header.period);
                    let kept = lineage.into_iter().filter(|u| kept_at(u.level));
                    for unit in kept {
                        let cells = expected.entry((header.period, unit.id.clone())).or_default();
                        let cell = cells.entry(code.clone()).or_default();
                        let overflow = || Error::Invalid("a total overflows".into());
                        cell.apply(&c, 1).ok_or_else(overflow)?;
                    }
                }
            }
            Ok(())
        })?;
        for cells in expected.values_mut() {
            cells.retain(|_, c| !c.is_empty());
        }
        expected.retain(|_, cells| !cells.is_empty());
        Ok(expected)
    }
}
