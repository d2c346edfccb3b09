//! What supervisors and the province office do: list and read reports,
//! decide on them (one by one, or every report of an area and period),
//! list and settle conflicts, read the audit trail, close periods.

use std::collections::{BTreeSet, HashMap};

use fieldsync::access::User;
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::{AuditEntry, Conflict, FieldRef, FieldState, SubmissionReview};
use fieldsync::FieldKey;

use super::{now_ms, optional, period, App, Choice, Error, Result, MAX_BULK};
use crate::db::HistoryQuery;

/// Most rows one list returns.
pub const MAX_LIST: usize = 1_000;

/// Rows for a request of `requested` (0: the most).
pub fn list_limit(requested: u32) -> usize {
    match requested as usize {
        0 => MAX_LIST,
        n => n.min(MAX_LIST),
    }
}

/// Which reports to list: texts as the caller gave them, empty for "any".
#[derive(Clone, Debug, Default)]
pub struct SubmissionQuery {
    pub area: String,
    pub period: String,
    pub state: Option<ReviewState>,
    /// The id of the last report of the page before.
    pub after: String,
    pub limit: u32,
}

/// One listed report.
#[derive(Clone, Debug)]
pub struct SubmissionRow {
    pub review: SubmissionReview,
    pub fields: usize,
    pub open_conflicts: usize,
}

/// A page of reports, and where the next begins (`None`: the last page):
/// the last report's village and period, `village/period`.
#[derive(Clone, Debug)]
pub struct SubmissionList {
    pub rows: Vec<SubmissionRow>,
    pub next: Option<String>,
}

/// One report whole: its review, its values, its conflicts.
#[derive(Clone, Debug)]
pub struct SubmissionDetail {
    pub review: SubmissionReview,
    pub fields: Vec<FieldState>,
    pub conflicts: Vec<Conflict>,
}

/// A decision on the named reports (`village`, `period`), or on every
/// report of `area` in `period` that stands in `only`.
#[derive(Clone, Debug)]
pub struct Decision {
    pub verdict: Verdict,
    pub submissions: Vec<(String, String)>,
    pub area: String,
    pub period: String,
    /// By default the state the verdict applies to.
    pub only: Option<ReviewState>,
    pub reason: String,
}

/// What a decision changed, and how many it left as they were.
#[derive(Clone, Debug)]
pub struct Decided {
    pub changed: Vec<SubmissionReview>,
    pub unchanged: usize,
}

/// Which conflicts to list.
#[derive(Clone, Debug, Default)]
pub struct ConflictQuery {
    pub area: String,
    pub period: String,
    pub include_settled: bool,
    /// `village/period/field` of the last conflict of the page before.
    pub after: String,
    pub limit: u32,
}

/// A page of conflicts, and the cursor of the next (empty: the last page).
#[derive(Clone, Debug)]
pub struct ConflictList {
    pub conflicts: Vec<Conflict>,
    pub next: String,
}

/// Which audit entries to read: one report's (village and period) or all
/// the caller may see, by user and time.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub village: String,
    pub period: String,
    pub user_id: String,
    pub from_ms: u64,
    pub to_ms: u64,
    pub after: u64,
    pub before: u64,
    pub limit: u32,
    pub newest_first: bool,
}

fn text(t: &str) -> Result<String> {
    Ok(t.to_owned())
}

/// `village/period/field` of a conflict: a cursor.
pub(super) fn cursor(a: &str) -> Result<FieldRef> {
    let bad = || Error::invalid(format!("`after` {a:?} is not a conflict cursor"));
    let mut parts = a.splitn(3, '/');
    let (v, p, f) = (parts.next(), parts.next(), parts.next());
    let (Some(v), Some(p), Some(f)) = (v, p, f) else { return Err(bad()) };
    Ok(FieldRef::new(v, p.parse().map_err(|_| bad())?, FieldKey::parse(f)))
}

impl App {
    pub fn list_submissions(&self, user: &User, q: &SubmissionQuery) -> Result<SubmissionList> {
        let area = optional(&q.area, text)?;
        let period = optional(&q.period, |p| p.parse().map_err(Error::from_core))?;
        let after = optional(&q.after, |a| {
            let bad = || Error::invalid(format!("`after` {a:?} is not a submission cursor"));
            let (village, p) = a.rsplit_once('/').ok_or_else(bad)?;
            Ok((village.to_owned(), p.parse().map_err(|_| bad())?))
        })?;
        let limit = list_limit(q.limit);
        let rows =
            self.store.list_submissions(user, area.as_deref(), period, q.state, after, limit)?;
        let next = match rows.len() == limit {
            true => rows.last().map(|(h, _, _)| format!("{}/{}", h.village_id, h.period)),
            false => None,
        };
        let rows = rows
            .into_iter()
            .map(|(h, fields, open_conflicts)| SubmissionRow {
                review: h.review,
                fields,
                open_conflicts,
            })
            .collect();
        self.settled(SubmissionList { rows, next })
    }

    pub fn submission(&self, user: &User, village: &str, period: &str) -> Result<SubmissionDetail> {
        let period = super::period(period)?;
        let header = self.store.readable(user, village, period)?;
        let detail = SubmissionDetail {
            fields: self.store.fields_of(&header.village_id, header.period)?,
            conflicts: self.store.conflicts_of(&header.village_id, header.period)?,
            review: header.review,
        };
        self.settled(detail)
    }

    /// Decides on the named reports, or on those of an area and period
    /// (at most [`MAX_BULK`]): all or none.
    pub fn decide(&self, user: &User, d: &Decision) -> Result<Decided> {
        let mut subs = Vec::new();
        for (village, p) in &d.submissions {
            subs.push((village.clone(), period(p)?));
        }
        let by_filter = !d.area.trim().is_empty();
        if subs.is_empty() != by_filter {
            return Err(Error::invalid(
                "name the submissions, or give an area and period for all of them (not both)",
            ));
        }
        let filter_period = optional(&d.period, |p| p.parse().map_err(Error::from_core))?;
        if by_filter && filter_period.is_none() {
            return Err(Error::invalid("a decision for an area needs a period"));
        }
        // By default a bulk decision takes the submissions it applies to.
        let only = d.only.or(Some(match d.verdict {
            Verdict::Accept | Verdict::Reopen => ReviewState::Approved,
            Verdict::Approve | Verdict::Reject | Verdict::Return => ReviewState::Submitted,
        }));
        if by_filter {
            let area = d.area.trim();
            let rows = self.store.list_submissions(
                user,
                Some(area),
                filter_period,
                only,
                None,
                MAX_BULK + 1,
            )?;
            if rows.len() > MAX_BULK {
                return Err(Error::invalid(format!(
                    "more than {MAX_BULK} submissions match; at most {MAX_BULK} in one \
                     decision: narrow the area or period"
                )));
            }
            subs = rows.into_iter().map(|(h, _, _)| (h.village_id, h.period)).collect();
        }
        let (changed, unchanged) =
            self.store.decide(user, &subs, d.verdict, &d.reason, now_ms())?;
        Ok(Decided { changed, unchanged })
    }

    pub fn list_conflicts(&self, user: &User, q: &ConflictQuery) -> Result<ConflictList> {
        let area = optional(&q.area, text)?;
        let period = optional(&q.period, |p| p.parse().map_err(Error::from_core))?;
        let limit = list_limit(q.limit);
        let after = optional(&q.after, cursor)?;
        let (conflicts, next) = self.store.list_conflicts(
            user,
            area.as_deref(),
            period,
            q.include_settled,
            after.as_ref(),
            limit,
        )?;
        let next =
            next.map(|n| format!("{}/{}/{}", n.village_id, n.period, n.field)).unwrap_or_default();
        self.settled(ConflictList { conflicts, next })
    }

    /// Settles the conflict of `field` of a report by a pick or a value.
    pub fn resolve(
        &self,
        user: &User,
        (village, period, field): (&str, &str, &str),
        choice: Choice,
        comment: &str,
    ) -> Result<(Conflict, FieldState)> {
        let at = FieldRef::new(village, super::period(period)?, FieldKey::parse(field));
        Ok(self.store.resolve(user, &at, choice, comment, now_ms())?)
    }

    pub fn history(&self, user: &User, f: &HistoryFilter) -> Result<Vec<AuditEntry>> {
        let report = match (f.village.trim(), f.period.trim()) {
            ("", "") => None,
            (v, p) if !v.is_empty() && !p.is_empty() => Some((v.to_owned(), period(p)?)),
            _ => {
                return Err(Error::invalid(
                    "give both a village and a period for a submission's history",
                ))
            }
        };
        let query = HistoryQuery {
            report,
            user_id: optional(&f.user_id, text)?,
            from_ms: f.from_ms,
            to_ms: f.to_ms,
            after: f.after,
            limit: list_limit(f.limit),
            newest_first: f.newest_first,
            before: f.before,
        };
        if f.newest_first && f.after > 0 || !f.newest_first && f.before > 0 {
            return Err(Error::invalid(
                "`after` pages oldest first and `before` newest first: give the one that goes \
                 with `newest_first`",
            ));
        }
        let entries = self.store.history(user, &query)?;
        self.settled(entries)
    }

    /// The names of the users an audit trail names by id (an unknown id
    /// stands for itself).
    pub fn user_names(&self, ids: BTreeSet<String>) -> HashMap<String, String> {
        ids.into_iter()
            .map(|id| {
                let name =
                    self.store.user(&id).ok().flatten().map_or_else(|| id.clone(), |u| u.name);
                (id, name)
            })
            .collect()
    }

    pub fn set_period_closed(
        &self,
        user: &User,
        area: &str,
        period: &str,
        closed: bool,
    ) -> Result<()> {
        let period = super::period(period)?;
        Ok(self.store.set_period_closed(user, area, period, closed, now_ms())?)
    }
}
