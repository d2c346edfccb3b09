//! Review decisions, conflict settlement, closing periods, and reading the
//! audit trail. Each decision is one atomic batch; a bulk decision is all or
//! nothing.

use std::ops::Bound;
use std::sync::Arc;

use fieldsync::access::{Action, User};
use fieldsync::review::{transition, ReviewState, Verdict};
use fieldsync::sync::{
    AuditEntry, AuditKind, Conflict, FieldRef, FieldState, Mutation, RawValue, Resolution, Stamp,
    SubmissionReview,
};
use fieldsync::validate::{check_text, validate};
use fieldsync::{Hlc, Period, SubmissionId, Value};
use fieldsync_store::prefix_end;

use super::commune::Reader;
use super::log::cuts_under;
use super::schema::{
    decode_conflicted, encode, CommuneRecord, Key, Place, Prefix, Report, SubmissionHeader,
    COMMUNES, CONFLICTED,
};
use super::trail::Trail;
use super::txn::Work;
use super::{readable_area, Error, Result, Store, SERVER_DEVICE};

/// Audit entries read per chunk, and at most per History call.
const HISTORY_CHUNK: usize = 1_024;
const HISTORY_SCAN_BUDGET: usize = 100_000;

/// Most submissions one bulk decision may change.
pub const MAX_BULK: usize = 10_000;

/// How a supervisor settles a conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// One of the competing values, by its index in the conflict.
    Pick(usize),
    /// A value of the supervisor's own.
    Value(RawValue),
}

/// Which audit entries to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// One report's entries: its village (checked against the caller's
    /// areas) and period.
    pub report: Option<(String, Period)>,
    pub user_id: Option<String>,
    pub from_ms: u64,
    /// 0: no upper bound.
    pub to_ms: u64,
    /// Oldest first: entries after this sequence number.
    pub after: u64,
    pub limit: usize,
    /// Newest first instead, from the head of the trail back (the way a
    /// report's page shows its history).
    pub newest_first: bool,
    /// Newest first: entries before this sequence number (0: from the newest).
    pub before: u64,
}

impl Store {
    /// The submission for (village, period), if the caller may read it.
    pub fn readable(
        &self,
        caller: &User,
        village: &str,
        period: Period,
    ) -> Result<SubmissionHeader> {
        let catalogue = self.catalogue();
        catalogue.village(village)?;
        caller.check(&catalogue, Action::Read, village)?;
        self.submission(village, period)?
            .ok_or_else(|| Error::NotFound(format!("nothing recorded for {village} in {period}")))
    }

    /// Submissions in `area` (or all the caller's areas), in (commune,
    /// period, id) order after the report of `after` (a village and period).
    pub fn list_submissions(
        &self,
        caller: &User,
        area: Option<&str>,
        period: Option<Period>,
        state: Option<ReviewState>,
        after: Option<(String, Period)>,
        limit: usize,
    ) -> Result<Vec<(SubmissionHeader, usize, usize)>> {
        let catalogue = self.catalogue();
        if let Some(area) = area {
            readable_area(&catalogue, caller, area)?;
        }
        let wanted = |header: &SubmissionHeader| {
            let village = &header.village_id;
            caller.covers(&catalogue, village)
                && area.is_none_or(|a| catalogue.within(village, a))
                && period.is_none_or(|p| p == header.period)
                && state.is_none_or(|s| s == header.review.state)
        };
        // The communes to read, or `None` for every record (an admin's).
        let areas: Vec<&str> = match area {
            Some(a) => vec![a],
            None if caller.role == fieldsync::access::Role::Admin => Vec::new(),
            None => caller.areas.iter().map(String::as_str).collect(),
        };
        let mut cuts: Vec<String> = areas.iter().flat_map(|a| cuts_under(&catalogue, a)).collect();
        cuts.sort();
        cuts.dedup();
        let cuts = Some(cuts).filter(|_| !areas.is_empty());
        let mut out = Vec::new();
        for report in self.reports(cuts, period, after) {
            let report = report?;
            if !wanted(&report.header) {
                continue;
            }
            let fields = report.fields.values().filter(|f| f.value != Value::Deleted).count();
            let open = report.conflicts.values().filter(|(c, _)| c.open).count();
            out.push((report.header, fields, open));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Applies one verdict to every submission given (village, period), all
    /// or none.
    pub fn decide(
        &self,
        caller: &User,
        subs: &[(String, Period)],
        verdict: Verdict,
        reason: &str,
        now_ms: u64,
    ) -> Result<(Vec<SubmissionReview>, usize)> {
        if !caller.may(Action::Review) {
            return Err(Error::Denied(format!(
                "permission denied: a {} may not review submissions",
                caller.role.as_str()
            )));
        }
        check_text("the reason", reason)?;
        if subs.len() > MAX_BULK {
            return Err(Error::Invalid(format!(
                "{} submissions in one decision; at most {MAX_BULK}: narrow the area or period",
                subs.len()
            )));
        }
        let guard = self.write_lock();
        let mut work = Work::new(guard, caller, now_ms)?;
        let catalogue = Arc::clone(&work.catalogue);
        let mut changed = Vec::new();
        let mut unchanged = 0;
        for (village, period) in subs {
            let name = format!("{village} ({period})");
            let level = caller.reviewer(&catalogue, village)?;
            let sub = SubmissionId::of(village, *period);
            let place = work.place(village, *period);
            let header = work
                .header(&place, sub)?
                .ok_or_else(|| Error::NotFound(format!("nothing recorded for {name}")))?;
            let chain = catalogue.chain(village);
            let next = transition(header.review.state, verdict, level, chain, reason).map_err(
                |e| match e {
                    fieldsync::Error::Refused(r) => Error::Refused(r),
                    e => Error::Invalid(format!("{name}: {e}")),
                },
            )?;
            let Some(next) = next else {
                unchanged += 1;
                continue;
            };
            if matches!(verdict, Verdict::Approve | Verdict::Accept) {
                let report = work.reports.get(&place, sub)?;
                let conflicts = report.map(|r| r.conflicts.values());
                let fields: Vec<String> = conflicts
                    .into_iter()
                    .flatten()
                    .filter(|(c, _)| c.open)
                    .map(|(c, _)| c.at.field.to_string())
                    .collect();
                if !fields.is_empty() {
                    return Err(Error::Refused(fieldsync::Reason::OpenConflicts {
                        village: village.clone(),
                        period: period.to_string(),
                        fields,
                        accept: verdict == Verdict::Accept,
                    }));
                }
            }
            let detail = match reason.trim() {
                "" => String::new(),
                r => format!(": {r}"),
            };
            changed.push(work.set_review(header, next, reason, detail, None)?);
        }
        work.commit()?;
        Ok((changed, unchanged))
    }

    /// Conflicts in `area` (or all the caller's areas), in (submission,
    /// field) order after the cursor `after`, at most `limit`; with the
    /// cursor to continue from when there may be more.
    pub fn list_conflicts(
        &self,
        caller: &User,
        area: Option<&str>,
        period: Option<Period>,
        include_settled: bool,
        after: Option<&FieldRef>,
        limit: usize,
    ) -> Result<(Vec<Conflict>, Option<FieldRef>)> {
        let catalogue = self.catalogue();
        if let Some(area) = area {
            readable_area(&catalogue, caller, area)?;
        }
        let from = after.map(|a| Key::Conflicted(a.submission, a.field.clone()).encode());
        let lower = from.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        let mut reader = Reader::new(self.engine.as_ref());
        for entry in self.engine.iter(CONFLICTED, lower, Bound::Unbounded) {
            let (key, value) = entry?;
            let Key::Conflicted(sub, field) = Key::decode(CONFLICTED, &key)? else {
                unreachable!("the conflicted tree decodes to its keys")
            };
            let report = reader.report(&decode_conflicted(&value)?, sub)?;
            let Some((c, _)) = report.and_then(|mut r| r.conflicts.remove(&field)) else {
                return Err(Error::Corrupt {
                    tree: CONFLICTED,
                    why: format!("the conflict on {field} of report {sub} is listed but missing"),
                });
            };
            let village = &c.at.village_id;
            let wanted = (c.open || include_settled)
                && caller.covers(&catalogue, village)
                && area.is_none_or(|a| catalogue.within(village, a))
                && period.is_none_or(|p| p == c.at.period);
            if wanted {
                out.push(c);
                if out.len() >= limit {
                    let next = out.last().map(|c| c.at.clone());
                    return Ok((out, next));
                }
            }
        }
        Ok((out, None))
    }

    /// Settles an open conflict: the chosen value becomes the field's value
    /// on the server and, at their next sync, on every tablet.
    pub fn resolve(
        &self,
        caller: &User,
        at: &FieldRef,
        choice: Choice,
        comment: &str,
        now_ms: u64,
    ) -> Result<(Conflict, FieldState)> {
        let (village, period, field, sub) = (&at.village_id, at.period, &at.field, at.submission);
        check_text("the comment", comment)?;
        // Everything the settlement depends on is read under the write lock,
        // so a period closed before it commits refuses it.
        let guard = self.write_lock();
        let catalogue = guard.catalogue();
        catalogue.village(village)?;
        caller.reviewer(&catalogue, village)?;
        if guard.is_closed(&catalogue, village, period) {
            return Err(Error::Invalid(format!(
                "period {period} is closed for this area: reopen it before settling its conflicts"
            )));
        }
        let mut conflict = self.conflict(at)?.filter(|c| c.open).ok_or_else(|| {
            Error::NotFound(format!("no open conflict on {field} of {village} {period}"))
        })?;
        let value = chosen(&catalogue, caller, at, &conflict, choice)?;
        let mut work = Work::new(guard, caller, now_ms)?;
        let at = conflict.at.clone();
        if let Err(e) = work.check_parts(&catalogue, &at, &value)? {
            return Err(Error::Invalid(e.to_string()));
        }
        let current = work.field(&at)?;
        // Causally after every competing value, so tablets order it last.
        let latest = conflict
            .candidates
            .iter()
            .map(|k| k.stamp.hlc)
            .chain(current.as_ref().map(|c| c.stamp.hlc))
            .max()
            .unwrap_or_default();
        let stamp = Stamp {
            hlc: latest.tick(now_ms),
            device: SERVER_DEVICE,
            author: caller.name.clone(),
            received_at_ms: now_ms,
            mutation_id: 0,
        };
        let state = work.write_field(&at, value.clone(), stamp)?;
        conflict.open = false;
        conflict.resolution = Some(Resolution {
            value: value.clone(),
            user_id: caller.id.clone(),
            user_name: caller.name.clone(),
            comment: comment.trim().to_owned(),
            at_ms: now_ms,
        });
        work.write_conflict(conflict.clone())?;
        let mut entry = work.entry(AuditKind::Resolve, comment.trim().to_owned());
        entry.submission = Some(sub);
        entry.village_id = village.clone();
        entry.period = period.to_string();
        entry.field = field.to_string();
        entry.old = current.map(|c| c.value);
        entry.new = Some(value);
        entry.hlc = state.stamp.hlc;
        work.audit(entry);
        work.commit()?;
        Ok((conflict, state))
    }

    /// Closes (or reopens) `period` for `area`.
    pub fn set_period_closed(
        &self,
        caller: &User,
        area: &str,
        period: Period,
        closed: bool,
        now_ms: u64,
    ) -> Result<()> {
        let guard = self.write_lock();
        let catalogue = self.catalogue();
        catalogue
            .org_unit(area)
            .ok_or_else(|| Error::NotFound(format!("unknown area {area:?}")))?;
        caller.check(&catalogue, Action::ClosePeriod, area)?;
        let mut work = Work::new(guard, caller, now_ms)?;
        let closing = Key::Closed(area.to_owned(), period);
        match closed {
            true => closing.put(&mut work.batch, encode(&(caller.id.clone(), now_ms))),
            false => closing.delete(&mut work.batch),
        }
        let key = closing.encode();
        let verb = if closed { "closed" } else { "reopened" };
        let mut entry = work.entry(AuditKind::Period, format!("{verb} {period} for {area}"));
        entry.period = period.to_string();
        entry.village_id = area.to_owned();
        work.audit(entry);
        // The set changes with the record, under the write lock, so that no
        // push slips in between.
        work.commit_then(|writes| {
            match closed {
                true => writes.closed.insert(key),
                false => writes.closed.remove(&key),
            };
        })
    }

    /// Audit entries matching `query`, oldest first after `query.after` (or
    /// newest first before `query.before`). Readers see only entries about
    /// their areas; admins see everything.
    pub fn history(&self, caller: &User, query: &HistoryQuery) -> Result<Vec<AuditEntry>> {
        let catalogue = self.catalogue();
        if let Some((village, _)) = &query.report {
            caller.check(&catalogue, Action::Read, village)?;
        }
        let report = match &query.report {
            Some((village, period)) => Some(self.filed_at(village, *period)?),
            None => None,
        };
        let limit = query.limit.clamp(1, 10_000);
        let mut out = Vec::new();
        // Read the trail in chunks, and never more than a budget of whole
        // chunks per call: the caller pages on with `after` (or `before`).
        let budget = HISTORY_SCAN_BUDGET.div_ceil(HISTORY_CHUNK) * HISTORY_CHUNK;
        let trail = match (&report, &query.user_id) {
            (Some(((commune, period), sub)), _) => Trail::Of(commune, *period, *sub),
            (None, Some(user)) => Trail::By(user),
            (None, None) => Trail::All,
        };
        let cursor = if query.newest_first { query.before } else { query.after };
        for entry in self.trail(trail, query.newest_first, cursor).take(budget) {
            let entry = entry?;
            let in_time =
                entry.at_ms >= query.from_ms && (query.to_ms == 0 || entry.at_ms <= query.to_ms);
            let matches = in_time
                && query.user_id.as_ref().is_none_or(|u| &entry.user_id == u)
                && report.as_ref().is_none_or(|(_, s)| entry.submission == Some(*s));
            let visible = caller.role == fieldsync::access::Role::Admin
                || (!entry.village_id.is_empty() && caller.covers(&catalogue, &entry.village_id));
            if matches && visible {
                out.push(entry);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The value `choice` settles `conflict` with: one of its candidates, or
/// a new value, validated.
fn chosen(
    catalogue: &fieldsync::Catalogue,
    caller: &User,
    at: &FieldRef,
    conflict: &Conflict,
    choice: Choice,
) -> Result<Value> {
    Ok(match choice {
        Choice::Pick(i) => {
            conflict.candidates.get(i).map(|k| k.value.clone()).ok_or_else(|| {
                Error::Invalid(format!(
                    "there are {} competing values (0 to {}); {i} is not one of them",
                    conflict.candidates.len(),
                    conflict.candidates.len().saturating_sub(1)
                ))
            })?
        }
        Choice::Value(raw) => {
            let m = Mutation {
                id: 0,
                village_id: at.village_id.clone(),
                period: at.period.to_string(),
                field: at.field.to_string(),
                value: raw,
                base_version: 0,
                hlc: Hlc::default(),
                author: caller.name.clone(),
            };
            validate(catalogue, &m)?.value
        }
    })
}

/// Commune records read per chunk of a listing: each holds a commune's
/// reports for a period.
const RECORD_CHUNK: usize = 8;

type Records<'a> = Box<dyn Iterator<Item = Result<(Place, CommuneRecord)>> + 'a>;

impl Store {
    /// Reports in (commune, period, id) order, after the report of `after`
    /// (a village and period), read lazily a commune record at a time: from
    /// every record, or from those of the communes `cuts` (sorted), only of
    /// `period` when one is given.
    fn reports<'a>(
        &'a self,
        cuts: Option<Vec<String>>,
        period: Option<Period>,
        after: Option<(String, Period)>,
    ) -> Box<dyn Iterator<Item = Result<Report>> + 'a> {
        let catalogue = self.catalogue();
        let start = after.map(|(village, p)| {
            let place = super::commune::place_of(&catalogue, &village, p);
            (place, SubmissionId::of(&village, p))
        });
        let from = start.as_ref().map(|((c, p), _)| Key::Commune(c.clone(), *p).encode());
        let records: Records<'a> = match cuts {
            None => Box::new(
                self.records_in(
                    from.as_deref().map_or(Bound::Unbounded, Bound::Included),
                    Bound::Unbounded,
                )
                .filter(move |r| {
                    r.as_ref().map_or(true, |((_, p), _)| period.is_none_or(|w| w == *p))
                }),
            ),
            Some(cuts) => Box::new(cuts.into_iter().flat_map(move |cut| -> Records<'a> {
                let (lower, upper) = match period {
                    // A commune's one record of that period.
                    Some(p) => {
                        let key = Key::Commune(cut, p).encode();
                        (key.clone(), Bound::Included(key))
                    }
                    None => {
                        let prefix = Prefix::CommuneRecords(&cut).encode();
                        let end = prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
                        (prefix, end)
                    }
                };
                // A listing resumed goes on from the record it stopped in.
                let lower = match &from {
                    Some(f) if *f > lower => f.clone(),
                    _ => lower,
                };
                let empty = match &upper {
                    Bound::Included(u) => lower > *u,
                    Bound::Excluded(u) => lower >= *u,
                    Bound::Unbounded => false,
                };
                match empty {
                    true => Box::new(std::iter::empty()),
                    false => {
                        self.records_in(Bound::Included(&lower), upper.as_ref().map(Vec::as_slice))
                    }
                }
            })),
        };
        Box::new(records.flat_map(move |record| {
            let (place, record) = match record {
                Ok(r) => r,
                Err(e) => return vec![Err(e)],
            };
            let after = start.as_ref().filter(|(at, _)| *at == place).map(|(_, sub)| *sub);
            let reports = record.reports.into_iter();
            reports.filter(|(id, _)| after.is_none_or(|a| *id > a)).map(|(_, r)| Ok(r)).collect()
        }))
    }

    /// The commune records with keys in (`from`, `to`), decoded, in key order.
    fn records_in<'a>(&'a self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Records<'a> {
        let scan = self.engine.iter(COMMUNES, from, to).chunk(RECORD_CHUNK);
        Box::new(scan.map(|entry| {
            let (key, bytes) = entry?;
            let Key::Commune(commune, period) = Key::decode(COMMUNES, &key)? else {
                unreachable!("the communes tree decodes to its keys")
            };
            Ok(((commune, period), CommuneRecord::decode(&bytes)?))
        }))
    }
}
