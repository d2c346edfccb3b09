//! Totals up the hierarchy, kept current in the same batch as every change
//! that moves them, so that asking for totals reads one record per org
//! unit, whatever the number of reports. Plans (KH) sit beside them.
//!
//! `totals`: period ‖ 0 ‖ org unit → [`UnitTotals`], every indicator's
//! [`Cell`] of a unit above the communes (moved by `rollup/update.rs`,
//! checked by `rollup/check.rs`); a village's cells are its one report's
//! contributions for the period and a commune's those of the reports in
//! its record for the period, read from that record, which every write to
//! them rewrites anyway ([`kept_at`]). `plans`: period ‖ 0 ‖ org unit ‖ 0
//! ‖ indicator → [`Amount`].
//!
//! [`UnitTotals`]: super::schema::UnitTotals

mod check;
mod update;

use std::collections::BTreeMap;

use fieldsync::access::{Action, Role, User};
use fieldsync::rollup::{Cell, Contributions};
use fieldsync::sync::AuditKind;
use fieldsync::{Amount, Catalogue, Level, OrgUnit, Period, SubmissionId};

use super::commune::{place_of, Reader};
use super::schema::{decode, encode, Key, Prefix, Report, UnitTotals, PLANS, TOTALS};
use super::txn::Work;
use super::{readable_area, Error, Result, Store};

/// Whether the totals of units at `level` are kept in `totals`: those of
/// a village (its one report for the period) and of a commune (the reports
/// of its commune record for the period, which holds all of its villages')
/// are read from the reports themselves, which every write to them
/// rewrites anyway.
pub(super) fn kept_at(level: Level) -> bool {
    level < Level::Commune
}

/// The cells of `unit` (a village or a commune: see [`kept_at`]) for
/// `period`, from its reports' contributions (no cell where they count
/// nothing).
fn read_from_reports(
    reader: &mut Reader<'_>,
    catalogue: &Catalogue,
    unit: &OrgUnit,
    period: Period,
) -> Result<BTreeMap<String, Cell>> {
    let overflow =
        |code: &str| Error::Invalid(format!("the total of {code} for {} overflows", unit.id));
    let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
    let mut add = |made: Contributions| -> Result<()> {
        for (code, c) in made {
            let moved = cells.entry(code.clone()).or_default().apply(&c, 1);
            moved.ok_or_else(|| overflow(&code))?;
        }
        Ok(())
    };
    let of = |report: &Report| report.contributions();
    if unit.level == Level::Village {
        let place = place_of(catalogue, &unit.id, period);
        let sub = SubmissionId::of(&unit.id, period);
        if let Some(made) = reader.with_report(&place, sub, of)? {
            add(made)?;
        }
    } else {
        for report in reader.record(&(unit.id.clone(), period))?.reports.values() {
            add(of(report))?;
        }
    }
    cells.retain(|_, c| !c.is_empty());
    Ok(cells)
}

/// The totals of one indicator for one org unit, with its plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Total {
    pub unit: String,
    pub indicator: String,
    pub cell: Cell,
    pub plan: Option<Amount>,
}

/// One plan figure to set, as written in a file or a request: an empty
/// value clears the figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRow {
    pub unit: String,
    pub indicator: String,
    pub period: String,
    pub value: String,
}

impl Store {
    /// The units at `level` in `area` (or in the caller's areas) a report
    /// covers, in id order.
    pub fn report_units(
        &self,
        caller: &User,
        level: Level,
        area: Option<&str>,
    ) -> Result<Vec<String>> {
        self.report_units_on(&self.catalogue(), caller, level, area)
    }

    /// [`Store::report_units`] on `catalogue`'s tree (the tree of another
    /// day, see [`Catalogue::tree_at`]).
    pub fn report_units_on(
        &self,
        catalogue: &Catalogue,
        caller: &User,
        level: Level,
        area: Option<&str>,
    ) -> Result<Vec<String>> {
        if let Some(area) = area {
            readable_area(catalogue, caller, area)?;
        }
        // A level above the area holds nothing of it: say so rather than answer empty.
        let below = |a: &str| catalogue.org_unit(a).filter(|u| u.level > level);
        let refuse = |unit: &fieldsync::OrgUnit| {
            format!(
                "{} ({}) is a {}: it holds no {}-level units; ask for that level or below, or \
                 name a larger area you may read",
                unit.name,
                unit.id,
                unit.level.as_str(),
                level.as_str()
            )
        };
        match area {
            Some(a) => {
                if let Some(unit) = below(a) {
                    return Err(Error::Invalid(refuse(unit)));
                }
            }
            None if caller.role != Role::Admin
                && !caller.areas.is_empty()
                && caller.areas.iter().all(|a| below(a).is_some()) =>
            {
                let unit = below(&caller.areas[0]).expect("checked above");
                return Err(Error::Denied(format!("permission denied: {}", refuse(unit))));
            }
            None => {}
        }
        let mut units: Vec<String> = match (area, caller.role) {
            (Some(a), _) => {
                catalogue.units_at(level, Some(a)).iter().map(|u| u.id.clone()).collect()
            }
            (None, Role::Admin) => {
                catalogue.units_at(level, None).iter().map(|u| u.id.clone()).collect()
            }
            (None, _) => caller
                .areas
                .iter()
                .flat_map(|a| catalogue.units_at(level, Some(a)))
                .map(|u| u.id.clone())
                .collect(),
        };
        // Areas may nest or the caller may not cover every unit (admins do).
        units.sort();
        units.dedup();
        units.retain(|u| caller.covers(catalogue, u));
        Ok(units)
    }

    /// The year pages should open on: `this_year` if anything was recorded
    /// for it, else the latest year with totals, if that is earlier.
    pub fn year_to_show(&self, this_year: u16) -> Result<u16> {
        if Prefix::CellsOfYear(TOTALS, this_year).iter(self.engine.as_ref()).next().is_some() {
            return Ok(this_year);
        }
        let latest = self.engine.last(TOTALS)?.and_then(|(key, _)| {
            match Key::decode(TOTALS, &key).ok()? {
                Key::Totals(period, _) => Some(period),
                _ => None,
            }
        });
        Ok(latest.map(Period::year).filter(|&y| y < this_year).unwrap_or(this_year))
    }

    /// Totals of every indicator for each of `units`, with plans: one
    /// record read per unit (for a village or a commune its commune record,
    /// read once for all of them), and its plan figures.
    pub fn totals_of(&self, units: &[String], period: Period) -> Result<Vec<Total>> {
        let catalogue = self.catalogue();
        let _guard = self.read_lock();
        let mut out = Vec::with_capacity(units.len() * catalogue.indicators.len());
        let mut reader = Reader::new(self.engine.as_ref());
        for unit in units {
            let derived = catalogue.any_unit(unit).filter(|u| !kept_at(u.level));
            let cells = match derived {
                Some(u) => read_from_reports(&mut reader, &catalogue, u, period)?,
                None => match Key::Totals(period, unit.clone()).get(self.engine.as_ref())? {
                    Some(bytes) => UnitTotals::decode(&bytes)?.0,
                    None => BTreeMap::new(),
                },
            };
            let mut plans: BTreeMap<String, Amount> = BTreeMap::new();
            for entry in Prefix::Cells(PLANS, period, unit).iter(self.engine.as_ref()) {
                let (key, bytes) = entry?;
                plans.insert(code_of(&key)?, decode(PLANS, &bytes)?);
            }
            for code in catalogue.indicators_in_order().map(|i| &i.code) {
                out.push(Total {
                    unit: unit.clone(),
                    indicator: code.clone(),
                    cell: cells.get(code).copied().unwrap_or_default(),
                    plan: plans.get(code).copied(),
                });
            }
        }
        Ok(out)
    }

    /// Totals at `level` in `area` (or the caller's areas).
    pub fn totals(
        &self,
        caller: &User,
        level: Level,
        area: Option<&str>,
        period: Period,
    ) -> Result<Vec<Total>> {
        let units = self.report_units(caller, level, area)?;
        self.totals_of(&units, period)
    }

    /// Totals of every indicator for each of `units` of `tree` (the tree
    /// of another day than `period`'s), restated village by village: each
    /// unit sums the reports of the villages it holds in `tree`, wherever
    /// they were filed. Plans are those set for the unit and period.
    pub fn restated_totals(
        &self,
        tree: &Catalogue,
        units: &[String],
        period: Period,
    ) -> Result<Vec<Total>> {
        let catalogue = self.catalogue();
        let _guard = self.read_lock();
        let mut out = Vec::with_capacity(units.len() * catalogue.indicators.len());
        let mut reader = Reader::new(self.engine.as_ref());
        for unit in units {
            let overflow =
                |code: &str| Error::Invalid(format!("the total of {code} for {unit} overflows"));
            let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
            for village in tree.units_at(Level::Village, Some(unit)) {
                let place = place_of(&catalogue, &village.id, period);
                let sub = SubmissionId::of(&village.id, period);
                if let Some(made) = reader.with_report(&place, sub, |r| r.contributions())? {
                    for (code, c) in made {
                        cells
                            .entry(code.clone())
                            .or_default()
                            .apply(&c, 1)
                            .ok_or_else(|| overflow(&code))?;
                    }
                }
            }
            let mut plans: BTreeMap<String, Amount> = BTreeMap::new();
            for entry in Prefix::Cells(PLANS, period, unit).iter(self.engine.as_ref()) {
                let (key, bytes) = entry?;
                plans.insert(code_of(&key)?, decode(PLANS, &bytes)?);
            }
            for code in catalogue.indicators_in_order().map(|i| &i.code) {
                out.push(Total {
                    unit: unit.clone(),
                    indicator: code.clone(),
                    cell: cells.get(code).copied().unwrap_or_default(),
                    plan: plans.get(code).copied(),
                });
            }
        }
        Ok(out)
    }

    /// Sets plan figures, all or none: any bad row refuses the whole set,
    /// naming every bad row (numbered from 1).
    pub fn set_plans(&self, caller: &User, rows: &[PlanRow], now_ms: u64) -> Result<usize> {
        if !caller.may(Action::Plan) {
            return Err(Error::Denied(format!(
                "permission denied: a {} may not set plan figures (the province office or an admin does)",
                caller.role.as_str()
            )));
        }
        // The rows are checked against the catalogue under the write lock.
        let guard = self.write_lock();
        let catalogue = self.catalogue();
        let mut problems = Vec::new();
        let mut figures = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let n = i + 1;
            let mut bad = |why: String| problems.push(format!("row {n}: {why}"));
            let unit = catalogue.org_unit(row.unit.trim());
            let ind = catalogue.indicator(row.indicator.trim());
            let period = row.period.trim().parse::<Period>();
            match (unit, ind, period) {
                (None, _, _) => bad(format!("unknown org unit {:?}", row.unit)),
                (_, None, _) => bad(format!("unknown indicator {:?}", row.indicator)),
                (_, _, Err(e)) => bad(e.to_string()),
                (Some(unit), Some(ind), Ok(period)) => {
                    if let Err(denied) = caller.check(&catalogue, Action::Plan, &unit.id) {
                        bad(denied.to_string());
                        continue;
                    }
                    let value = match row.value.trim() {
                        "" => None,
                        text => match Amount::parse(text, ind.kind.scale()) {
                            Ok(v) if v.is_negative() => {
                                bad(format!("a plan cannot be negative ({text})"));
                                continue;
                            }
                            Ok(v) => Some(v),
                            Err(e) => {
                                bad(format!("{}: {e}", ind.code));
                                continue;
                            }
                        },
                    };
                    figures.push((Key::Plan(period, unit.id.clone(), ind.code.clone()), value));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(format!(
                "nothing was imported; fix these rows:\n{}",
                problems.join("\n")
            )));
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        for (key, value) in figures {
            match value {
                Some(v) => key.put(&mut work.batch, encode(&v)),
                None => key.delete(&mut work.batch),
            }
        }
        let entry = work.entry(AuditKind::Catalogue, format!("set {} plan figure(s)", rows.len()));
        work.audit(entry);
        work.commit()?;
        Ok(rows.len())
    }
}

/// The indicator code of a plan figure's key.
fn code_of(key: &[u8]) -> Result<String> {
    match Key::decode(PLANS, key)? {
        Key::Plan(_, _, code) => Ok(code),
        _ => Err(Error::Corrupt { tree: PLANS, why: "not a plan key".into() }),
    }
}

#[cfg(test)]
mod tests;
