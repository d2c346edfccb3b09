//! Totals up the hierarchy, kept current in the same batch as every change
//! that moves them, so that asking for totals reads one cell per org unit and
//! indicator, whatever the number of records. Plans (KH) sit beside them.
//!
//! `rollups`: period ‖ 0 ‖ org unit ‖ 0 ‖ indicator → [`Cell`];
//! `plans`: the same key → [`Amount`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fieldsync::access::{Action, Role, User};
use fieldsync::rollup::{contributions, Cell, Contributions};
use fieldsync::sync::AuditKind;
use fieldsync::{Amount, Level, Period, SubmissionId};

use super::schema::{
    decode, encode, CommuneRecord, Key, Prefix, SubmissionHeader, COMMUNES, PLANS, ROLLUPS,
};
use super::txn::Work;
use super::{readable_area, Error, Result, Store};

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

impl Work<'_> {
    /// A submission's contributions as they stand in this batch, with its
    /// header.
    fn contributions_now(
        &mut self,
        sub: SubmissionId,
    ) -> Result<Option<(SubmissionHeader, Contributions)>> {
        let Some(report) = self.reports.get(sub)? else {
            return Ok(None);
        };
        let c = contributions(report.header.review.state, &report.fields(), &report.conflicts());
        Ok(Some((report.header.clone(), c)))
    }

    /// Moves the rollup cells of every submission this batch touched from
    /// their old contributions to their new ones.
    pub(super) fn update_rollups(&mut self) -> Result<()> {
        let touched: BTreeSet<SubmissionId> = std::mem::take(&mut self.touched);
        let mut cells: HashMap<Vec<u8>, Cell> = HashMap::new();
        for sub in touched {
            let before = match self.reports.before(sub)? {
                Some(r) => contributions(r.header.review.state, &r.fields(), &r.conflicts()),
                // A new submission has nothing stored yet.
                None => Contributions::new(),
            };
            let Some((header, after)) = self.contributions_now(sub)? else {
                continue;
            };
            let codes: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for code in codes {
                let (old, new) = (before.get(code), after.get(code));
                if old == new {
                    continue;
                }
                for unit in self.catalogue.lineage(&header.village_id) {
                    let key = Key::Rollup(header.period, unit.id.clone(), code.clone()).encode();
                    let cell = match cells.get_mut(&key) {
                        Some(cell) => cell,
                        None => {
                            let stored = self.store.engine.get(ROLLUPS, &key)?;
                            let cell = stored
                                .map(|b| decode(ROLLUPS, &b))
                                .transpose()?
                                .unwrap_or_default();
                            cells.entry(key.clone()).or_insert(cell)
                        }
                    };
                    let overflow =
                        || Error::Invalid(format!("the total of {code} for {} overflows", unit.id));
                    if let Some(old) = old {
                        cell.apply(old, -1).ok_or_else(overflow)?;
                    }
                    if let Some(new) = new {
                        cell.apply(new, 1).ok_or_else(overflow)?;
                    }
                }
            }
        }
        for (key, cell) in cells {
            match cell.is_empty() {
                true => self.batch.delete(ROLLUPS, key),
                false => self.batch.put(ROLLUPS, key, encode(&cell)),
            }
        }
        Ok(())
    }
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
        let catalogue = self.catalogue();
        if let Some(area) = area {
            readable_area(&catalogue, caller, area)?;
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
        units.retain(|u| caller.covers(&catalogue, u));
        Ok(units)
    }

    /// The year pages should open on: `this_year` if anything was recorded
    /// for it, else the latest year with totals, if that is earlier.
    pub fn year_to_show(&self, this_year: u16) -> Result<u16> {
        if Prefix::CellsOfYear(ROLLUPS, this_year).iter(self.engine.as_ref()).next().is_some() {
            return Ok(this_year);
        }
        let latest = self.engine.last(ROLLUPS)?.and_then(|(key, _)| {
            match Key::decode(ROLLUPS, &key).ok()? {
                Key::Rollup(period, ..) => Some(period),
                _ => None,
            }
        });
        Ok(latest.map(Period::year).filter(|&y| y < this_year).unwrap_or(this_year))
    }

    /// Totals of every indicator for each of `units`, with plans: one cell
    /// read per unit and indicator.
    pub fn totals_of(&self, units: &[String], period: Period) -> Result<Vec<Total>> {
        let catalogue = self.catalogue();
        let _guard = self.read_lock();
        let mut out = Vec::with_capacity(units.len() * catalogue.indicators.len());
        for unit in units {
            let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
            for entry in Prefix::Cells(ROLLUPS, period, unit).iter(self.engine.as_ref()) {
                let (key, bytes) = entry?;
                cells.insert(code_of(ROLLUPS, &key)?, decode(ROLLUPS, &bytes)?);
            }
            let mut plans: BTreeMap<String, Amount> = BTreeMap::new();
            for entry in Prefix::Cells(PLANS, period, unit).iter(self.engine.as_ref()) {
                let (key, bytes) = entry?;
                plans.insert(code_of(PLANS, &key)?, decode(PLANS, &bytes)?);
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

    /// Recomputes every rollup cell from the submissions themselves and lists
    /// each cell where the kept totals differ. Empty: they match exactly.
    pub fn check_rollups(&self) -> Result<Vec<String>> {
        let _guard = self.read_lock();
        let catalogue = self.catalogue();
        let mut expected: BTreeMap<Vec<u8>, Cell> = BTreeMap::new();
        self.each_entry(COMMUNES, |_, bytes| {
            for report in CommuneRecord::decode(bytes)?.reports.values() {
                let (header, fields) = (&report.header, report.fields());
                for (code, c) in contributions(header.review.state, &fields, &report.conflicts()) {
                    for unit in catalogue.lineage(&header.village_id) {
                        let key = Key::Rollup(header.period, unit.id.clone(), code.clone());
                        let cell = expected.entry(key.encode()).or_default();
                        let overflow = || Error::Invalid("a total overflows".into());
                        cell.apply(&c, 1).ok_or_else(overflow)?;
                    }
                }
            }
            Ok(())
        })?;
        expected.retain(|_, c| !c.is_empty());
        let mut kept: BTreeMap<Vec<u8>, Cell> = BTreeMap::new();
        self.each_entry(ROLLUPS, |key, bytes| {
            kept.insert(key.to_vec(), decode(ROLLUPS, bytes)?);
            Ok(())
        })?;
        let keys: BTreeSet<&Vec<u8>> = expected.keys().chain(kept.keys()).collect();
        let show = |k: &[u8]| String::from_utf8_lossy(k).replace('\0', " / ");
        Ok(keys
            .into_iter()
            .filter(|k| expected.get(*k) != kept.get(*k))
            .map(|k| {
                format!("{}: kept {:?}, recomputed {:?}", show(k), kept.get(k), expected.get(k))
            })
            .collect())
    }
}

/// The indicator code of a cell key of `tree` (`rollups` or `plans`).
fn code_of(tree: &'static str, key: &[u8]) -> Result<String> {
    match Key::decode(tree, key)? {
        Key::Rollup(_, _, code) | Key::Plan(_, _, code) => Ok(code),
        _ => Err(Error::Corrupt { tree, why: "not a cell key".into() }),
    }
}
