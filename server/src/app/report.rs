//! Totals against plan: which org units a caller may report on, their rows
//! (done, plan, percent, the "of which" check), read a chunk of units at a
//! time so a national export never sits whole in memory; plan figures; the
//! year a progress page opens on.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync::access::User;
use fieldsync::rollup::percent;
use fieldsync::{Amount, Catalogue, Date, Level, Period};
pub use fieldsync_export::UnitTotal;

use super::{now_ms, optional, App, Error, PlanRow, Result};
use crate::db::Total;

/// Org units per chunk of an export.
pub const CHUNK_UNITS: usize = 500;

/// What to report on: a level, a period, an area (empty: the caller's),
/// and the day whose org tree to report on (empty: the period's last day).
#[derive(Clone, Debug)]
pub struct ExportQuery {
    pub level: Level,
    pub period: String,
    pub area: String,
    pub include_pending: bool,
    pub tree_date: String,
}

/// An export checked and ready to read: its units, in order, period, and
/// the tree it reports on.
#[derive(Clone, Debug)]
pub struct Export {
    pub units: Vec<String>,
    pub period: Period,
    pub include_pending: bool,
    pub tree: Arc<Catalogue>,
    /// On another tree than the period's own: totals summed village by
    /// village.
    pub restated: bool,
}

/// Rows for one chunk's totals, with percent and the "of which" check.
fn rows(catalogue: &Catalogue, totals: &[Total], include_pending: bool) -> Vec<UnitTotal> {
    let done: HashMap<(&str, &str), Amount> = totals
        .iter()
        .map(|t| ((t.unit.as_str(), t.indicator.as_str()), t.cell.done(include_pending)))
        .collect();
    totals
        .iter()
        .map(|t| {
            let unit = catalogue.org_unit(&t.unit);
            let value = done[&(t.unit.as_str(), t.indicator.as_str())];
            let whole = catalogue
                .indicator(&t.indicator)
                .and_then(|i| i.parent.as_deref())
                .and_then(|p| done.get(&(t.unit.as_str(), p)));
            UnitTotal {
                unit_id: t.unit.clone(),
                unit_name: unit.map(|u| u.name.clone()).unwrap_or_default(),
                level: unit.map(|u| u.level),
                parent_id: unit.and_then(|u| u.parent.clone()).unwrap_or_default(),
                indicator: t.indicator.clone(),
                done: value,
                plan: t.plan,
                percent: percent(value, t.plan),
                approved: t.cell.approved,
                pending: t.cell.pending,
                approved_count: t.cell.approved_n,
                pending_count: t.cell.pending_n,
                conflict_count: t.cell.conflicts_n,
                exceeds_whole: whole.is_some_and(|w| value.cmp_value(*w).is_gt()),
            }
        })
        .collect()
}

/// Whether the store's catalogue knows `unit`, in force now or not.
fn catalogue_unit(store: &crate::db::Store, unit: &str) -> bool {
    store.catalogue().any_unit(unit).is_some()
}

impl App {
    /// Checks an export and lists the units it covers (within the caller's
    /// areas).
    pub fn export(&self, user: &User, q: &ExportQuery) -> Result<Export> {
        let period: Period = q.period.trim().parse().map_err(Error::from_core)?;
        let area = optional(&q.area, |a| Ok(a.to_owned()))?;
        let catalogue = self.store.catalogue();
        let day = match q.tree_date.trim() {
            "" => None,
            d => Some(d.parse::<Date>().map_err(Error::from_core)?),
        };
        let (tree, restated) = match (catalogue.has_changed(), day) {
            (false, _) => (catalogue, false),
            (true, day) => {
                let own = catalogue.tree_at(period.last_day()).map_err(Error::from_core)?;
                match day.map(|d| catalogue.tree_at(d)).transpose().map_err(Error::from_core)? {
                    Some(other) if other != own => (Arc::new(other), true),
                    _ => (Arc::new(own), false),
                }
            }
        };
        let on = day.unwrap_or(period.last_day());
        // Units known but not in force on the tree's day (an unknown id is
        // refused below as unknown).
        let gone = |a: &str| tree.org_unit(a).is_none() && catalogue_unit(&self.store, a);
        let missing: Vec<&str> =
            user.areas.iter().map(String::as_str).filter(|a| gone(a)).collect();
        if !user.areas.is_empty() && missing.len() == user.areas.len() && area.is_none() {
            return Err(Error::invalid(format!(
                "your areas ({}) were not in force on {on}: add a tree date on which they were \
                 (e.g. today's) to restate {period} on that tree",
                missing.join(", ")
            )));
        }
        if let Some(a) = area.as_deref().filter(|a| gone(a)) {
            return Err(Error::not_found(format!(
                "{a} was not in force on {on}: choose an area of that day's tree, or a tree date \
                 on which {a} was"
            )));
        }
        let units = self.store.report_units_on(&tree, user, q.level, area.as_deref())?;
        Ok(Export { units, period, include_pending: q.include_pending, tree, restated })
    }

    /// The rows of `units` (a chunk of an [`Export`]'s).
    pub fn export_rows(&self, export: &Export, units: &[String]) -> Result<Vec<UnitTotal>> {
        let totals = match export.restated {
            true => self.store.restated_totals(&export.tree, units, export.period)?,
            false => self.store.totals_of(units, export.period)?,
        };
        let rows = rows(&export.tree, &totals, export.include_pending);
        self.settled(rows)
    }

    /// The rows of an export, at most `max_units` units' worth; `true`
    /// when more units had rows.
    pub fn report(
        &self,
        user: &User,
        q: &ExportQuery,
        max_units: usize,
    ) -> Result<(Vec<UnitTotal>, bool)> {
        let export = self.export(user, q)?;
        let (mut out, mut units, mut last) = (Vec::new(), 0, String::new());
        for chunk in export.units.chunks(CHUNK_UNITS) {
            for row in self.export_rows(&export, chunk)? {
                if row.unit_id != last {
                    units += 1;
                    if units > max_units {
                        return Ok((out, true));
                    }
                    last = row.unit_id.clone();
                }
                out.push(row);
            }
        }
        Ok((out, false))
    }

    pub fn set_plans(&self, user: &User, rows: &[PlanRow]) -> Result<usize> {
        Ok(self.store.set_plans(user, rows, now_ms())?)
    }

    /// This year in Vietnam, or the latest year with totals when this year
    /// has none yet: the year a progress page opens on.
    pub fn year_to_show(&self) -> Result<u16> {
        let ms = now_ms() as i64 + 7 * 3_600_000;
        // Days to years, good enough for picking a default (1970 + days/365.2425).
        let this_year = 1970 + (ms / 86_400_000 * 10_000) / 3_652_425;
        let this_year = u16::try_from(this_year).unwrap_or(u16::MAX);
        Ok(self.store.year_to_show(this_year)?)
    }
}
