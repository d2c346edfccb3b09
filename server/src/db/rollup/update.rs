//! Moving the totals in the same batch as the records they count: every
//! change a write makes to what its submissions contribute is summed into
//! one [`Delta`] per org unit, period and indicator, and each unit's record
//! is read and written once per write (a push of one commune's villages
//! writes each ancestor once, not once per value).

use std::collections::{BTreeMap, BTreeSet};

use fieldsync::rollup::{Contributions, Delta};
use fieldsync::{Period, SubmissionId};

use super::super::schema::{Key, Place, SubmissionHeader, UnitTotals};
use super::super::txn::Work;
use super::super::{Error, Result};
use super::kept_at;

/// How a write moves one unit's totals, by indicator code.
type Deltas = BTreeMap<String, Delta>;

fn overflow(code: &str, unit: &str) -> Error {
    Error::Invalid(format!("the total of {code} for {unit} overflows"))
}

impl Work<'_> {
    /// A submission's contributions as they stand in this batch, with its
    /// header.
    fn contributions_now(
        &mut self,
        place: &Place,
        sub: SubmissionId,
    ) -> Result<Option<(SubmissionHeader, Contributions)>> {
        let Some(report) = self.reports.get(place, sub)? else {
            return Ok(None);
        };
        let c = report.contributions();
        Ok(Some((report.header.clone(), c)))
    }

    /// Moves the totals of every unit above the submissions this batch
    /// touched from their old contributions to their new ones. A village's
    /// and a commune's totals are read from their reports, not kept (see
    /// `kept_at`).
    pub(in crate::db) fn update_rollups(&mut self) -> Result<()> {
        let mut by_unit: BTreeMap<(Period, String), Deltas> = BTreeMap::new();
        for ((period, village), deltas) in self.village_deltas()? {
            let lineage = self.catalogue.lineage_in(&village, period);
            for unit in lineage.into_iter().filter(|u| kept_at(u.level)) {
                let into = by_unit.entry((period, unit.id.clone())).or_default();
                for (code, d) in &deltas {
                    let sum = into.entry(code.clone()).or_default();
                    sum.merge(d).ok_or_else(|| overflow(code, &unit.id))?;
                }
            }
        }
        for ((period, unit), deltas) in by_unit {
            self.move_totals(period, &unit, &deltas)?;
        }
        Ok(())
    }

    /// What every submission this batch touched moves, summed by village
    /// and period.
    fn village_deltas(&mut self) -> Result<BTreeMap<(Period, String), Deltas>> {
        let touched: BTreeSet<(SubmissionId, Place)> = std::mem::take(&mut self.touched);
        let mut out: BTreeMap<(Period, String), Deltas> = BTreeMap::new();
        for (sub, place) in touched {
            let before = match self.reports.before(&place, sub)? {
                Some(r) => r.contributions(),
                // A new submission has nothing stored yet.
                None => Contributions::new(),
            };
            let Some((header, after)) = self.contributions_now(&place, sub)? else {
                continue;
            };
            let deltas = out.entry((header.period, header.village_id.clone())).or_default();
            let codes: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for code in codes {
                let (old, new) = (before.get(code), after.get(code));
                if old == new {
                    continue;
                }
                let delta = deltas.entry(code.clone()).or_default();
                let bad = || overflow(code, &header.village_id);
                if let Some(old) = old {
                    delta.add(old, -1).ok_or_else(bad)?;
                }
                if let Some(new) = new {
                    delta.add(new, 1).ok_or_else(bad)?;
                }
            }
        }
        Ok(out)
    }

    /// Reads one unit's totals, moves them by `deltas` and puts the record
    /// in the batch (or its delete, once nothing counts there).
    fn move_totals(&mut self, period: Period, unit: &str, deltas: &Deltas) -> Result<()> {
        let moving: Vec<(&String, &Delta)> = deltas.iter().filter(|(_, d)| !d.is_zero()).collect();
        if moving.is_empty() {
            return Ok(());
        }
        let key = Key::Totals(period, unit.to_owned());
        let mut totals = match key.get(self.store.engine.as_ref())? {
            Some(bytes) => UnitTotals::decode(&bytes)?,
            None => UnitTotals::default(),
        };
        for (code, delta) in moving {
            let cell = totals.0.get(code).copied().unwrap_or_default();
            let moved = cell.moved(delta).ok_or_else(|| overflow(code, unit))?;
            match moved.is_empty() {
                true => totals.0.remove(code),
                false => totals.0.insert(code.clone(), moved),
            };
        }
        match totals.0.is_empty() {
            true => key.delete(&mut self.batch),
            false => key.put(&mut self.batch, totals.encode()),
        }
        Ok(())
    }
}
