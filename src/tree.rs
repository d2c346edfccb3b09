//! The org tree over time. Vietnam's tree changes: on 1 July 2025 the
//! district level went and most communes merged. A change is dated and
//! applied by an admin — a rename, a move (a village to another commune, a
//! commune to another district or straight under its province), a merge
//! (several units into a new or an existing one, their units below moving
//! with them; districts merged into their province remove the level) or a
//! retirement. Ids stay: a merged unit keeps its id, its reports and its
//! totals, and is marked with its successor.
//!
//! A [`Catalogue`] holds the tree as it stands now; its [`TreeHistory`]
//! holds the units no longer in force and what every other unit was before,
//! so the tree in force on any day can be read back ([`Catalogue::tree_at`]).
//! A report belongs to the tree in force on the last day of its period.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Catalogue, Level, OrgUnit, Period};

/// A calendar day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

fn days_in(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Result<Date> {
        if !(2000..=2100).contains(&year) || !(1..=12).contains(&month) {
            return Err(Error::Invalid(format!("{year:04}-{month:02}-{day:02} is not a day")));
        }
        if day == 0 || day > days_in(year, month) {
            return Err(Error::Invalid(format!("{year:04}-{month:02}-{day:02} is not a day")));
        }
        Ok(Date { year, month, day })
    }

    /// The day before, within the years a day may be.
    pub fn day_before(self) -> Option<Date> {
        match (self.month, self.day) {
            (1, 1) => Date::new(self.year.checked_sub(1)?, 12, 31).ok(),
            (m, 1) => Some(Date { month: m - 1, day: days_in(self.year, m - 1), ..self }),
            (_, d) => Some(Date { day: d - 1, ..self }),
        }
    }

    /// The day in Vietnam (UTC+7) at `ms` since the Unix epoch.
    pub fn in_vietnam(ms: u64) -> Date {
        let days = (ms + 7 * 3_600_000) / 86_400_000;
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }
}

impl FromStr for Date {
    type Err = Error;

    /// "2025-07-01", or "01/07/2025" as Vietnamese write it.
    fn from_str(s: &str) -> Result<Date> {
        let bad =
            || Error::Invalid(format!("{s:?} is not a day: write it 2025-07-01 (or 01/07/2025)"));
        let parts: Vec<&str> = s.trim().split(['-', '/', '.']).collect();
        let [a, b, c] = parts[..] else { return Err(bad()) };
        let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
        let num = |t: &str| t.parse::<u16>().map_err(|_| bad());
        let (y, m, d) = (num(y)?, num(m)?, num(d)?);
        if m > 12 || d > 31 {
            return Err(bad());
        }
        Date::new(y, m as u8, d as u8).map_err(|_| bad())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Period {
    /// The period's first day.
    pub fn first_day(self) -> Date {
        let (year, month) = match self {
            Period::Year(y) => (y, 1),
            Period::Quarter(y, q) => (y, q * 3 - 2),
            Period::Month(y, m) => (y, m),
        };
        Date { year, month, day: 1 }
    }

    /// The period's last day: the day whose tree its reports belong to.
    pub fn last_day(self) -> Date {
        let (year, month) = match self {
            Period::Year(y) => (y, 12),
            Period::Quarter(y, q) => (y, q * 3),
            Period::Month(y, m) => (y, m),
        };
        Date { year, month, day: days_in(year, month) }
    }
}

/// How a unit stood until a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earlier {
    /// The day of the change: this state held before it.
    pub until: Date,
    pub name: String,
    pub parent: Option<String>,
}

/// A unit's end: the day it went out of force, and the unit that took it
/// over (none for a unit simply retired).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub on: Date,
    pub successor: Option<String>,
}

/// What the tree remembers of one unit beyond how it stands now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Past {
    /// In force from this day (none: since before any change).
    pub since: Option<Date>,
    pub retired: Option<Retired>,
    /// Earlier names and parents, oldest first.
    pub earlier: Vec<Earlier>,
}

/// One change of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreeChange {
    Rename {
        unit: String,
        name: String,
    },
    /// A unit to another parent, with everything below it.
    Move {
        unit: String,
        parent: String,
    },
    /// `units` into `into`, which exists or is `new`: the units below them
    /// move to it, and they are retired with it as their successor.
    /// `into` is of their level, or their common parent (which removes
    /// their level there).
    Merge {
        units: Vec<String>,
        into: String,
        new: Option<OrgUnit>,
    },
    /// A unit with nothing left below it goes out of force.
    Retire {
        unit: String,
    },
    /// New units in force from the change's day on (an import's units
    /// given a day they are valid from; see [`Catalogue::added_on`]).
    Add {
        units: Vec<String>,
    },
}

impl TreeChange {
    /// What the change says, for the audit trail and lists.
    pub fn describe(&self, date: Date) -> String {
        match self {
            TreeChange::Rename { unit, name } => format!("renamed {unit} to {name:?} on {date}"),
            TreeChange::Move { unit, parent } => format!("moved {unit} to {parent} on {date}"),
            TreeChange::Merge { units, into, new } => {
                let new = if new.is_some() { " (new)" } else { "" };
                format!("merged {} into {into}{new} on {date}", units.join(", "))
            }
            TreeChange::Retire { unit } => format!("retired {unit} on {date}"),
            TreeChange::Add { units } => {
                let named: Vec<&str> = units.iter().take(3).map(String::as_str).collect();
                let more = if units.len() > 3 { ", …" } else { "" };
                format!("added {} unit(s) ({}{more}) on {date}", units.len(), named.join(", "))
            }
        }
    }
}

/// The tree's past, as stored beside the tree in force now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHistory {
    /// Units no longer in force, as they last stood.
    pub retired: BTreeMap<String, OrgUnit>,
    /// The past of every unit that has one.
    pub past: BTreeMap<String, Past>,
    /// Every change applied, in order.
    pub changes: Vec<(Date, TreeChange)>,
    /// Indicators no longer recorded from a period on (programme phases
    /// change their criteria): kept in earlier reports and totals.
    pub retired_indicators: BTreeMap<String, Period>,
    /// A deployment's own review chain, for every village (none: each
    /// village's lineage gives it, see [`crate::review::Chain::of`]).
    pub review_chain: Option<crate::review::Chain>,
}

/// What applying a change did, for the store to follow up on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Units retired, each with its successor.
    pub retired: Vec<(String, Option<String>)>,
    /// Units whose place in the tree changed from the change's day on: the
    /// reports of the villages below them may belong elsewhere from then.
    pub moved: Vec<String>,
}

impl Catalogue {
    /// The unit with this id, in force now or not.
    pub fn any_unit(&self, id: &str) -> Option<&OrgUnit> {
        self.org_units.get(id).or_else(|| self.history().retired.get(id))
    }

    /// The period from which indicator `code` is no longer recorded.
    pub fn retired_from(&self, code: &str) -> Option<Period> {
        self.history().retired_indicators.get(code).copied()
    }

    /// Whether the tree ever changed (if not, every day's tree is today's).
    pub fn has_changed(&self) -> bool {
        !self.history().changes.is_empty()
    }

    /// The parent of `unit` on `date`; `None` for a province or a unit not
    /// in force then.
    pub fn parent_at(&self, unit: &str, date: Date) -> Option<&str> {
        self.state_at(unit, date).and_then(|(_, parent)| parent)
    }

    /// The name and parent of `unit` on `date`, if it was in force.
    fn state_at(&self, unit: &str, date: Date) -> Option<(&str, Option<&str>)> {
        let held = self.any_unit(unit)?;
        let Some(past) = self.history().past.get(unit) else {
            return Some((held.name.as_str(), held.parent.as_deref()));
        };
        if past.since.is_some_and(|s| date < s)
            || past.retired.as_ref().is_some_and(|r| date >= r.on)
        {
            return None;
        }
        Some(match past.earlier.iter().find(|e| date < e.until) {
            Some(e) => (e.name.as_str(), e.parent.as_deref()),
            None => (held.name.as_str(), held.parent.as_deref()),
        })
    }

    /// `unit` and the units above it on `date`, bottom up.
    pub fn lineage_at<'a>(&'a self, unit: &str, date: Date) -> Vec<&'a OrgUnit> {
        let mut out = Vec::new();
        let mut next = self.any_unit(unit).filter(|_| self.state_at(unit, date).is_some());
        while let Some(u) = next {
            out.push(u);
            next = self.parent_at(&u.id, date).and_then(|p| self.any_unit(p));
            if out.len() > Level::ALL.len() {
                break; // a cycle cannot be built, but a walk stays bounded
            }
        }
        out
    }

    /// `unit` and the units above it in the tree its reports for `period`
    /// belong to — the tree on the period's last day, or today's for a unit
    /// not in force then — bottom up.
    pub fn lineage_in(&self, unit: &str, period: Period) -> Vec<&OrgUnit> {
        if self.has_changed() {
            let at = self.lineage_at(unit, period.last_day());
            if !at.is_empty() {
                return at;
            }
        }
        self.lineage(unit).collect()
    }

    /// Every commune `village` has belonged to, now's first.
    pub fn communes_ever(&self, village: &str) -> Vec<&str> {
        let mut out: Vec<&str> =
            self.any_unit(village).and_then(|u| u.parent.as_deref()).into_iter().collect();
        if let Some(past) = self.history().past.get(village) {
            for e in &past.earlier {
                if let Some(p) = e.parent.as_deref() {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// The tree in force on `date`, as a catalogue of its own (the same
    /// indicators; no history).
    pub fn tree_at(&self, date: Date) -> Result<Catalogue> {
        let units = self.org_units.values().chain(self.history().retired.values());
        let units: Vec<OrgUnit> = units
            .filter_map(|u| {
                let (name, parent) = self.state_at(&u.id, date)?;
                Some(OrgUnit {
                    id: u.id.clone(),
                    name: name.to_owned(),
                    level: u.level,
                    parent: parent.map(str::to_owned),
                })
            })
            .collect();
        Catalogue::new(self.indicators_in_order().cloned().collect(), units)
            .map_err(|e| Error::Invalid(format!("the tree on {date} does not hang together: {e}")))
    }

    /// This catalogue with units `dated` (each in force now, with no past
    /// yet) in force only from their day on: one dated change per day, in
    /// date order among the others, checked like any change (the tree the
    /// day before and on the day hangs together: a unit's parent is in
    /// force from its day).
    pub fn added_on(&self, dated: &[(String, Date)]) -> Result<Catalogue> {
        let mut history = self.history().clone();
        let mut days: BTreeMap<Date, Vec<String>> = BTreeMap::new();
        for (id, date) in dated {
            if self.org_unit(id).is_none() {
                return Err(Error::NotFound(format!("unknown org unit {id:?}")));
            }
            if history.past.contains_key(id) {
                return Err(Error::Invalid(format!("{id} already has a past in the tree")));
            }
            history.past.insert(id.clone(), Past { since: Some(*date), ..Past::default() });
            days.entry(*date).or_default().push(id.clone());
        }
        for (date, units) in &days {
            let at = history.changes.partition_point(|(d, _)| d <= date);
            history.changes.insert(at, (*date, TreeChange::Add { units: units.clone() }));
        }
        let catalogue = self.clone().with_history(history)?;
        for date in days.keys() {
            for day in date.day_before().into_iter().chain([*date]) {
                catalogue.tree_at(day).map_err(|e| {
                    Error::Invalid(format!(
                        "{e} (units valid from {date}: a unit's parent must be in force from the \
                         unit's own day or earlier, and what is below it from the same day or later)"
                    ))
                })?;
            }
        }
        Ok(catalogue)
    }

    /// The catalogue after `change` on `date`, and what it did. Changes are
    /// applied in date order: none may be dated before the last one.
    pub fn apply(&self, date: Date, change: &TreeChange) -> Result<(Catalogue, Applied)> {
        if let Some((last, _)) = self.history().changes.last() {
            if date < *last {
                return Err(Error::Invalid(format!(
                    "the tree's last change is dated {last}: date this one {last} or later"
                )));
            }
        }
        let mut units = self.org_units.clone();
        let mut history = self.history().clone();
        let mut applied = Applied::default();
        let live = |units: &BTreeMap<String, OrgUnit>, id: &str| -> Result<OrgUnit> {
            units.get(id).cloned().ok_or_else(|| match self.history().retired.get(id) {
                Some(_) => Error::Invalid(format!("{id} is no longer in force")),
                None => Error::NotFound(format!("unknown org unit {id:?}")),
            })
        };
        let earlier = |history: &mut TreeHistory, unit: &OrgUnit| {
            history.past.entry(unit.id.clone()).or_default().earlier.push(Earlier {
                until: date,
                name: unit.name.clone(),
                parent: unit.parent.clone(),
            });
        };
        match change {
            TreeChange::Rename { unit, name } => {
                let held = live(&units, unit)?;
                let name = crate::model::nfc(name.trim());
                crate::validate::check_name(&format!("the new name of {unit}"), &name)?;
                if name == held.name {
                    return Err(Error::Invalid(format!("{unit} is already called {name:?}")));
                }
                earlier(&mut history, &held);
                units.get_mut(unit).expect("live").name = name;
            }
            TreeChange::Move { unit, parent } => {
                let held = live(&units, unit)?;
                let to = live(&units, parent)?;
                if held.parent.as_deref() == Some(parent.as_str()) {
                    return Err(Error::Invalid(format!("{unit} is already under {parent}")));
                }
                if !held.level.parents().contains(&to.level) {
                    return Err(Error::Invalid(format!(
                        "a {} cannot hang from {parent}, a {}",
                        held.level.as_str(),
                        to.level.as_str()
                    )));
                }
                earlier(&mut history, &held);
                units.get_mut(unit).expect("live").parent = Some(parent.clone());
                applied.moved.push(unit.clone());
            }
            TreeChange::Merge { units: merged, into, new } => {
                if merged.is_empty() {
                    return Err(Error::Invalid("name the units to merge".into()));
                }
                let first = live(&units, &merged[0])?;
                let level = first.level;
                match (new, units.get(into)) {
                    (Some(_), Some(_)) => {
                        return Err(Error::Invalid(format!("{into} exists already: leave out the new unit")))
                    }
                    (Some(n), None) => {
                        if n.id != *into || n.level != level {
                            return Err(Error::Invalid(format!(
                                "the new unit must be {into}, a {}",
                                level.as_str()
                            )));
                        }
                        n.check_new()?;
                        if history.retired.contains_key(into) {
                            return Err(Error::Invalid(format!("{into} was in force before: choose a new id")));
                        }
                        let parent = n.parent.as_deref().map(|p| live(&units, p)).transpose()?;
                        if !parent.as_ref().is_some_and(|p| level.parents().contains(&p.level)) {
                            return Err(Error::Invalid(format!(
                                "the new {} {into} needs a parent {}",
                                level.as_str(),
                                level.parents().iter().map(|l| l.as_str()).collect::<Vec<_>>().join(" or ")
                            )));
                        }
                        units.insert(into.clone(), OrgUnit { name: crate::model::nfc(n.name.trim()), ..n.clone() });
                        history.past.entry(into.clone()).or_default().since = Some(date);
                    }
                    (None, None) => return Err(Error::NotFound(format!(
                        "unknown org unit {into:?}: to merge into a new unit, give its name and parent"
                    ))),
                    (None, Some(_)) => {}
                }
                let target = units.get(into).cloned().expect("there by now");
                let removes_level = target.level != level;
                for id in merged {
                    let held = live(&units, id)?;
                    if id == into {
                        return Err(Error::Invalid(format!("{id} cannot be merged into itself")));
                    }
                    if held.level != level {
                        return Err(Error::Invalid(format!(
                            "{id} is a {}, {} a {}: merge units of one level",
                            held.level.as_str(),
                            merged[0],
                            level.as_str()
                        )));
                    }
                    if removes_level && held.parent.as_deref() != Some(into.as_str()) {
                        return Err(Error::Invalid(format!(
                            "{into} is a {}: a {} merges into another {} or into its own parent, \
                             and {id}'s parent is {}",
                            target.level.as_str(),
                            level.as_str(),
                            level.as_str(),
                            held.parent.as_deref().unwrap_or("none")
                        )));
                    }
                }
                for id in merged {
                    let children: Vec<OrgUnit> = units
                        .values()
                        .filter(|u| u.parent.as_deref() == Some(id))
                        .cloned()
                        .collect();
                    for child in children {
                        if !child.level.parents().contains(&target.level) {
                            return Err(Error::Invalid(format!(
                                "{} (a {}) cannot move to {into}, a {}",
                                child.id,
                                child.level.as_str(),
                                target.level.as_str()
                            )));
                        }
                        earlier(&mut history, &child);
                        units.get_mut(&child.id).expect("live").parent = Some(into.clone());
                        applied.moved.push(child.id.clone());
                    }
                    let gone = units.remove(id).expect("checked live");
                    history.past.entry(id.clone()).or_default().retired =
                        Some(Retired { on: date, successor: Some(into.clone()) });
                    history.retired.insert(id.clone(), gone);
                    applied.retired.push((id.clone(), Some(into.clone())));
                }
            }
            TreeChange::Retire { unit } => {
                live(&units, unit)?;
                let below = units.values().filter(|u| u.parent.as_deref() == Some(unit)).count();
                if below > 0 {
                    return Err(Error::Invalid(format!(
                        "{unit} still has {below} unit(s) below it: move or merge them first (or \
                         merge {unit} into another unit, which takes them)"
                    )));
                }
                let gone = units.remove(unit).expect("checked live");
                history.past.entry(unit.clone()).or_default().retired =
                    Some(Retired { on: date, successor: None });
                history.retired.insert(unit.clone(), gone);
                applied.retired.push((unit.clone(), None));
            }
            TreeChange::Add { .. } => {
                return Err(Error::Invalid(
                    "units are added by an import: `fieldsync admin org-unit import FILE`, with \
                     a valid-from column for the day they are in force from"
                        .into(),
                ))
            }
        }
        history.changes.push((date, change.clone()));
        let catalogue = Catalogue::new(
            self.indicators_in_order().cloned().collect(),
            units.into_values().collect(),
        )?
        .with_history(history)?;
        Ok((catalogue, applied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    /// A province with two districts, three communes and a village each.
    fn four_levels() -> Catalogue {
        let u = |id: &str, level, parent: Option<&str>| OrgUnit {
            id: id.into(),
            name: format!("N {id}"),
            level,
            parent: parent.map(Into::into),
        };
        let units = vec![
            u("p", Level::Province, None),
            u("d1", Level::District, Some("p")),
            u("d2", Level::District, Some("p")),
            u("a", Level::Commune, Some("d1")),
            u("b", Level::Commune, Some("d1")),
            u("c", Level::Commune, Some("d2")),
            u("a1", Level::Village, Some("a")),
            u("b1", Level::Village, Some("b")),
            u("c1", Level::Village, Some("c")),
        ];
        Catalogue::new(crate::demo::indicators(), units).unwrap()
    }

    #[test]
    fn units_imported_with_a_day_are_in_force_from_it_and_their_parents_first() {
        let cat = four_levels();
        let mut units: Vec<OrgUnit> = cat.org_units.values().cloned().collect();
        let new = |id: &str, level, parent: &str| OrgUnit {
            id: id.into(),
            name: format!("N {id}"),
            level,
            parent: Some(parent.into()),
        };
        units.push(new("e", Level::Commune, "d2"));
        units.push(new("e1", Level::Village, "e"));
        let cat = Catalogue::new(crate::demo::indicators(), units).unwrap();
        let rename = TreeChange::Rename { unit: "a".into(), name: "Xã A mới".into() };
        let (cat, _) = cat.apply(day("2025-05-01"), &rename).unwrap();
        let july = day("2025-07-01");
        let dated = cat.added_on(&[("e".into(), july), ("e1".into(), day("2025-08-01"))]).unwrap();
        assert!(dated.tree_at(day("2025-06-30")).unwrap().org_unit("e").is_none());
        assert!(dated.tree_at(july).unwrap().org_unit("e").is_some());
        assert!(dated.tree_at(july).unwrap().org_unit("e1").is_none());
        assert_eq!(dated.lineage_at("e1", day("2025-08-01")).len(), 4);
        // In date order among the other changes, described for the trail.
        let days: Vec<String> =
            dated.history().changes.iter().map(|(d, _)| d.to_string()).collect();
        assert_eq!(days, ["2025-05-01", "2025-07-01", "2025-08-01"]);
        assert_eq!(
            dated.history().changes[1].1.describe(july),
            "added 1 unit(s) (e) on 2025-07-01"
        );
        // A village before its commune, or a unit with a past already, is refused.
        let err =
            cat.added_on(&[("e".into(), july), ("e1".into(), day("2025-06-01"))]).unwrap_err();
        assert!(err.to_string().contains("2025-06-01"), "{err}");
        assert!(cat.added_on(&[("a".into(), july)]).is_err(), "a has a past");
        assert!(cat.added_on(&[("zz".into(), july)]).is_err());
        // And an import's change is not one an admin applies by hand.
        assert!(cat.apply(july, &TreeChange::Add { units: vec!["e".into()] }).is_err());
    }

    #[test]
    fn days_parse_both_ways_and_periods_end_on_their_last_day() {
        assert_eq!(day("2025-07-01"), day("01/07/2025"));
        assert_eq!(day("2024-02-29").to_string(), "2024-02-29");
        for bad in ["2025-02-29", "2025-13-01", "2025-07", "tomorrow", "31/04/2025"] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert_eq!(Period::Year(2022).last_day(), day("2022-12-31"));
        assert_eq!(day("2025-07-01").day_before(), Some(day("2025-06-30")));
        assert_eq!(day("2024-03-01").day_before(), Some(day("2024-02-29")));
        assert_eq!(day("2026-01-01").day_before(), Some(day("2025-12-31")));
        assert_eq!(Period::Quarter(2025, 2).last_day(), day("2025-06-30"));
        assert_eq!(Period::Month(2024, 2).last_day(), day("2024-02-29"));
        // 2025-06-30 17:00 UTC is already 1 July in Vietnam.
        assert_eq!(Date::in_vietnam(1_751_302_800_000), day("2025-07-01"));
        assert_eq!(Date::in_vietnam(1_751_302_799_999), day("2025-06-30"));
    }

    #[test]
    fn the_two_tier_restructure_keeps_the_old_tree_readable() {
        let cat = four_levels();
        let july = day("2025-07-01");
        // The communes of d1 merge into a new commune ab, then the districts
        // merge into the province.
        let ab = OrgUnit {
            id: "ab".into(),
            name: "Xã AB".into(),
            level: Level::Commune,
            parent: Some("d1".into()),
        };
        let merge = TreeChange::Merge {
            units: vec!["a".into(), "b".into()],
            into: "ab".into(),
            new: Some(ab),
        };
        let (cat, applied) = cat.apply(july, &merge).unwrap();
        assert_eq!(
            applied.retired,
            [("a".into(), Some("ab".into())), ("b".into(), Some("ab".into()))]
        );
        let districts = TreeChange::Merge {
            units: vec!["d1".into(), "d2".into()],
            into: "p".into(),
            new: None,
        };
        let (cat, _) = cat.apply(july, &districts).unwrap();

        assert_eq!(cat.levels(), [Level::Province, Level::Commune, Level::Village]);
        assert_eq!(cat.org_unit("a1").unwrap().parent.as_deref(), Some("ab"));
        assert_eq!(cat.org_unit("ab").unwrap().parent.as_deref(), Some("p"));
        assert!(cat.org_unit("a").is_none() && cat.any_unit("a").is_some());

        let before = cat.tree_at(day("2025-06-30")).unwrap();
        assert_eq!(before.levels(), Level::ALL);
        assert_eq!(before.org_unit("a1").unwrap().parent.as_deref(), Some("a"));
        assert_eq!(before.org_unit("a").unwrap().parent.as_deref(), Some("d1"));
        assert!(before.org_unit("ab").is_none(), "ab was made on 1 July");
        let after = cat.tree_at(july).unwrap();
        assert_eq!(after.org_units.len(), cat.org_units.len());
        assert_eq!(
            after,
            Catalogue::new(
                cat.indicators_in_order().cloned().collect(),
                cat.org_units.values().cloned().collect()
            )
            .unwrap()
        );

        let ids = |units: Vec<&OrgUnit>| units.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(cat.lineage_at("a1", Period::Year(2022).last_day())),
            ["a1", "a", "d1", "p"]
        );
        assert_eq!(ids(cat.lineage_at("a1", Period::Year(2026).last_day())), ["a1", "ab", "p"]);
        assert_eq!(
            ids(cat.lineage_at("c1", Period::Quarter(2025, 2).last_day())),
            ["c1", "c", "d2", "p"]
        );
        assert_eq!(cat.communes_ever("a1"), ["ab", "a"]);
    }

    #[test]
    fn changes_are_checked_and_dated_in_order() {
        let cat = four_levels();
        let at = day("2025-07-01");
        let refused = |cat: &Catalogue, date, change: TreeChange, why: &str| {
            let err = cat.apply(date, &change).unwrap_err().to_string();
            assert!(err.contains(why), "{change:?}: {err}");
        };
        refused(
            &cat,
            at,
            TreeChange::Move { unit: "a1".into(), parent: "d1".into() },
            "a village cannot hang from d1, a district",
        );
        refused(&cat, at, TreeChange::Retire { unit: "a".into() }, "still has 1 unit(s) below it");
        refused(
            &cat,
            at,
            TreeChange::Merge { units: vec!["a".into(), "a1".into()], into: "b".into(), new: None },
            "merge units of one level",
        );
        refused(
            &cat,
            at,
            TreeChange::Merge { units: vec!["a".into()], into: "p".into(), new: None },
            "into its own parent",
        );
        refused(
            &cat,
            at,
            TreeChange::Merge { units: vec!["a".into()], into: "a".into(), new: None },
            "into itself",
        );

        let (cat, applied) =
            cat.apply(at, &TreeChange::Move { unit: "a1".into(), parent: "c".into() }).unwrap();
        assert_eq!(applied.moved, ["a1"]);
        assert_eq!(cat.parent_at("a1", day("2025-06-30")), Some("a"));
        assert_eq!(cat.parent_at("a1", at), Some("c"));
        refused(
            &cat,
            day("2025-06-01"),
            TreeChange::Rename { unit: "c".into(), name: "X".into() },
            "date this one 2025-07-01 or later",
        );
        let (cat, _) = cat
            .apply(
                day("2025-08-01"),
                &TreeChange::Rename { unit: "c".into(), name: "Xã C mới".into() },
            )
            .unwrap();
        assert_eq!(cat.tree_at(day("2025-07-31")).unwrap().org_unit("c").unwrap().name, "N c");
        assert_eq!(cat.org_unit("c").unwrap().name, "Xã C mới");
        let (cat, _) =
            cat.apply(day("2025-08-01"), &TreeChange::Retire { unit: "a".into() }).unwrap();
        assert!(cat.tree_at(day("2025-07-31")).unwrap().org_unit("a").is_some());
        assert!(cat.tree_at(day("2025-08-01")).unwrap().org_unit("a").is_none());
        refused(
            &cat,
            day("2025-08-02"),
            TreeChange::Rename { unit: "a".into(), name: "Y".into() },
            "no longer in force",
        );
    }
}
