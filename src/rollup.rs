//! Totals up the hierarchy: what one submission adds to the totals of its
//! village, commune, district and province, the arithmetic of a total, and
//! percent of plan. Exact decimals throughout; percent is rounded once, for
//! display.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::model::{FieldKey, Value};
use crate::review::ReviewState;

/// How a submission counts towards totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Standing {
    /// Approved by the commune or accepted by the district.
    Approved,
    /// Submitted, waiting for review.
    Pending,
    /// Rejected or returned: counts nowhere.
    Excluded,
}

impl Standing {
    pub fn of(state: ReviewState) -> Standing {
        match state {
            ReviewState::Approved | ReviewState::Accepted => Standing::Approved,
            ReviewState::Submitted => Standing::Pending,
            ReviewState::Rejected | ReviewState::Returned => Standing::Excluded,
        }
    }
}

/// What one submission adds to one indicator's totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub standing: Standing,
    /// `None`: no number to add (the field is in conflict with a deletion
    /// current), but the conflict still counts.
    pub value: Option<Amount>,
    /// The field has an open conflict.
    pub in_conflict: bool,
}

/// A submission's contributions, by indicator code.
pub type Contributions = BTreeMap<String, Contribution>;

/// What a submission in review `state`, with these fields' values and
/// open conflicts, adds to the totals of each indicator it has a value or
/// an open conflict for.
pub fn contributions<'a>(
    state: ReviewState,
    fields: impl IntoIterator<Item = (&'a FieldKey, &'a Value)>,
    open_conflicts: impl IntoIterator<Item = &'a FieldKey>,
) -> Contributions {
    let standing = Standing::of(state);
    let mut out = Contributions::new();
    for (field, value) in fields {
        if let (FieldKey::Indicator(code), Value::Amount(value)) = (field, value) {
            let c = Contribution { standing, value: Some(*value), in_conflict: false };
            out.insert(code.clone(), c);
        }
    }
    for field in open_conflicts {
        if let FieldKey::Indicator(code) = field {
            out.entry(code.clone())
                .or_insert(Contribution { standing, value: None, in_conflict: false })
                .in_conflict = true;
        }
    }
    out
}

/// The totals of one indicator for one org unit and period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Sum over approved submissions.
    pub approved: Amount,
    pub approved_n: u32,
    /// Sum over submitted, not yet reviewed submissions.
    pub pending: Amount,
    pub pending_n: u32,
    /// Submissions whose value for this indicator is in conflict.
    pub conflicts_n: u32,
}

impl Cell {
    /// Adds (`sign` = 1) or removes (`sign` = -1) a contribution.
    pub fn apply(&mut self, c: &Contribution, sign: i64) -> Option<()> {
        let step = |n: u32| if sign > 0 { n.checked_add(1) } else { n.checked_sub(1) };
        if let Some(value) = c.value {
            let signed = Amount::new(value.units().checked_mul(sign)?, value.scale());
            match c.standing {
                Standing::Approved => {
                    self.approved = self.approved.checked_add(signed)?;
                    self.approved_n = step(self.approved_n)?;
                }
                Standing::Pending => {
                    self.pending = self.pending.checked_add(signed)?;
                    self.pending_n = step(self.pending_n)?;
                }
                Standing::Excluded => {}
            }
        }
        if c.in_conflict && c.standing != Standing::Excluded {
            self.conflicts_n = step(self.conflicts_n)?;
        }
        Some(())
    }

    /// Whether nothing counts here any more.
    pub fn is_empty(&self) -> bool {
        self.approved_n == 0 && self.pending_n == 0 && self.conflicts_n == 0
    }

    /// The total: approved only, or approved and pending.
    pub fn done(&self, include_pending: bool) -> Amount {
        match include_pending {
            true => self.approved.checked_add(self.pending).unwrap_or(self.approved),
            false => self.approved,
        }
    }
}

impl Cell {
    /// The cell moved by `delta`; `None` if a count would drop below zero
    /// or a sum overflow.
    pub fn moved(&self, delta: &Delta) -> Option<Cell> {
        let count = |n: u32, by: i64| u32::try_from(i64::from(n).checked_add(by)?).ok();
        Some(Cell {
            approved: self.approved.checked_add(delta.approved)?,
            approved_n: count(self.approved_n, delta.approved_n)?,
            pending: self.pending.checked_add(delta.pending)?,
            pending_n: count(self.pending_n, delta.pending_n)?,
            conflicts_n: count(self.conflicts_n, delta.conflicts_n)?,
        })
    }
}

/// How a write moves one indicator's totals: the contributions it adds and
/// removes, summed, so that each total is read and written once per write
/// however many submissions below it change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub approved: Amount,
    pub approved_n: i64,
    pub pending: Amount,
    pub pending_n: i64,
    pub conflicts_n: i64,
}

impl Delta {
    /// Adds (`sign` = 1) or removes (`sign` = -1) a contribution; `None` on
    /// overflow.
    pub fn add(&mut self, c: &Contribution, sign: i64) -> Option<()> {
        if let Some(value) = c.value {
            let signed = Amount::new(value.units().checked_mul(sign)?, value.scale());
            match c.standing {
                Standing::Approved => {
                    self.approved = self.approved.checked_add(signed)?;
                    self.approved_n = self.approved_n.checked_add(sign)?;
                }
                Standing::Pending => {
                    self.pending = self.pending.checked_add(signed)?;
                    self.pending_n = self.pending_n.checked_add(sign)?;
                }
                Standing::Excluded => {}
            }
        }
        if c.in_conflict && c.standing != Standing::Excluded {
            self.conflicts_n = self.conflicts_n.checked_add(sign)?;
        }
        Some(())
    }

    /// Sums `other` into this delta; `None` on overflow.
    pub fn merge(&mut self, other: &Delta) -> Option<()> {
        *self = Delta {
            approved: self.approved.checked_add(other.approved)?,
            approved_n: self.approved_n.checked_add(other.approved_n)?,
            pending: self.pending.checked_add(other.pending)?,
            pending_n: self.pending_n.checked_add(other.pending_n)?,
            conflicts_n: self.conflicts_n.checked_add(other.conflicts_n)?,
        };
        Some(())
    }

    /// Whether it moves nothing (what it added it also removed).
    pub fn is_zero(&self) -> bool {
        let zero = Amount::whole(0);
        self.approved == zero
            && self.pending == zero
            && (self.approved_n, self.pending_n, self.conflicts_n) == (0, 0, 0)
    }
}

/// Percent achieved, to one decimal, rounded half away from zero once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percent {
    /// Tenths of a percent: 961 is 96.1 %.
    pub tenths: i64,
}

/// `done ÷ plan`, or `None` when there is no plan (or it is zero): no plan, no
/// percent — never 0 % or infinity.
pub fn percent(done: Amount, plan: Option<Amount>) -> Option<Percent> {
    let plan = plan?;
    let scale = done.scale().max(plan.scale());
    let widen = |a: Amount| i128::from(a.units()) * 10i128.pow(u32::from(scale - a.scale()));
    let (d, p) = (widen(done), widen(plan));
    if p <= 0 {
        return None;
    }
    let num = d * 1000;
    let tenths = (num + p / 2).div_euclid(p);
    Some(Percent { tenths: i64::try_from(tenths).ok()? })
}

impl Percent {
    /// "96.1" (machine) or "96,1" (Vietnamese).
    pub fn format(self, vietnamese: bool) -> String {
        let sep = if vietnamese { ',' } else { '.' };
        let sign = if self.tenths < 0 { "-" } else { "" };
        let t = self.tenths.unsigned_abs();
        format!("{sign}{}{sep}{}", t / 10, t % 10)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(false))
    }
}

/// An amount as people in the province write it: "1.960,5" for 1960.5.
pub fn vietnamese(a: Amount) -> String {
    let plain = a.to_string();
    let (sign, rest) = match plain.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", plain.as_str()),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{grouped},{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn km(s: &str) -> Amount {
        Amount::parse(s, 2).unwrap()
    }

    #[test]
    fn percent_is_computed_not_copied() {
        // The report prints 96,3 % for 440/458; it is 96.1 %.
        let p = percent(km("440"), Some(km("458"))).unwrap();
        assert_eq!(p.to_string(), "96.1");
        assert_eq!(p.format(true), "96,1");
        assert_eq!(percent(km("61.5"), Some(km("79.8"))).unwrap().to_string(), "77.1");
        assert_eq!(
            percent(Amount::whole(147), Some(Amount::whole(100))).unwrap().to_string(),
            "147.0"
        );
        assert_eq!(percent(km("1"), None), None, "no plan, no percent");
        assert_eq!(percent(km("1"), Some(km("0"))), None, "a zero plan is no plan");
    }

    #[test]
    fn percent_rounds_half_up_once() {
        // 1/8 = 12.5 % exactly; 1/16 = 6.25 % → 6.3; 1/3 = 33.33… → 33.3.
        assert_eq!(percent(Amount::whole(1), Some(Amount::whole(8))).unwrap().to_string(), "12.5");
        assert_eq!(percent(Amount::whole(1), Some(Amount::whole(16))).unwrap().to_string(), "6.3");
        assert_eq!(percent(Amount::whole(1), Some(Amount::whole(3))).unwrap().to_string(), "33.3");
        assert_eq!(percent(Amount::whole(2), Some(Amount::whole(3))).unwrap().to_string(), "66.7");
    }

    #[test]
    fn vietnamese_number_format() {
        assert_eq!(vietnamese(km("1960.5")), "1.960,5");
        assert_eq!(vietnamese(km("102.73")), "102,73");
        assert_eq!(vietnamese(Amount::whole(1_234_567)), "1.234.567");
        assert_eq!(vietnamese(Amount::whole(440)), "440");
    }

    #[test]
    fn cells_add_and_remove_exactly() {
        let mut cell = Cell::default();
        let a = Contribution {
            standing: Standing::Approved,
            value: Some(km("0.1")),
            in_conflict: false,
        };
        let b = Contribution {
            standing: Standing::Approved,
            value: Some(km("0.2")),
            in_conflict: true,
        };
        let p =
            Contribution { standing: Standing::Pending, value: Some(km("5")), in_conflict: false };
        let d = Contribution { standing: Standing::Pending, value: None, in_conflict: true };
        cell.apply(&a, 1).unwrap();
        cell.apply(&b, 1).unwrap();
        cell.apply(&p, 1).unwrap();
        cell.apply(&d, 1).unwrap();
        assert_eq!(cell.approved, km("0.3"));
        assert_eq!((cell.approved_n, cell.pending_n, cell.conflicts_n), (2, 1, 2));
        cell.apply(&d, -1).unwrap();
        assert_eq!(cell.done(true), km("5.3"));
        cell.apply(&b, -1).unwrap();
        cell.apply(&a, -1).unwrap();
        cell.apply(&p, -1).unwrap();
        assert!(cell.is_empty());
        assert_eq!(cell.approved, km("0"));
    }

    #[test]
    fn a_summed_delta_moves_a_cell_as_its_contributions_one_by_one_do() {
        let approved = |v: &str| Contribution {
            standing: Standing::Approved,
            value: Some(km(v)),
            in_conflict: false,
        };
        let p =
            Contribution { standing: Standing::Pending, value: Some(km("5")), in_conflict: true };
        let mut by_one = Cell::default();
        by_one.apply(&approved("2.5"), 1).unwrap();
        by_one.apply(&p, 1).unwrap();
        let start = by_one;
        // A value corrected from 2.5 to 4, a pending one approved, a new one.
        let steps = [(approved("2.5"), -1), (approved("4"), 1), (p, -1), (approved("5"), 1)];
        let mut delta = Delta::default();
        for (c, sign) in &steps {
            by_one.apply(c, *sign).unwrap();
            delta.add(c, *sign).unwrap();
        }
        let mut other = Delta::default();
        other.add(&approved("0.25"), 1).unwrap();
        by_one.apply(&approved("0.25"), 1).unwrap();
        delta.merge(&other).unwrap();
        assert_eq!(start.moved(&delta), Some(by_one));
        assert_eq!(by_one.approved, km("9.25"));
        assert_eq!((by_one.approved_n, by_one.pending_n, by_one.conflicts_n), (3, 0, 0));

        let mut undone = Delta::default();
        undone.add(&p, 1).unwrap();
        undone.add(&p, -1).unwrap();
        assert!(undone.is_zero(), "what a write adds and removes moves nothing");
        let mut gone = Delta::default();
        gone.add(&p, -1).unwrap();
        gone.add(&p, -1).unwrap();
        assert_eq!(start.moved(&gone), None, "no count goes below zero");
    }
}
