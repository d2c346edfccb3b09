//! The `Review` service: reports, decisions, conflicts, the audit trail and
//! closed periods, in domain types.

use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::{Conflict, FieldState, RawValue, SubmissionReview};
use fieldsync::{DeviceId, FieldKey, Hlc, Period, Value};
use fieldsync_proto::convert;
use fieldsync_proto::v1::{
    self, resolve_conflict_request, DecideRequest, GetSubmissionRequest, HistoryRequest,
    ListConflictsRequest, ListSubmissionsRequest, ResolveConflictRequest, SetPeriodClosedRequest,
    SubmissionKey,
};

use super::{next_of, pages, unreadable, Api, Page};
use crate::error::{Error, Result};

/// Which reports to list; every part left out matches everything.
#[derive(Clone, Debug, Default)]
pub struct SubmissionFilter {
    /// This org unit and what lies below it [default: the caller's areas].
    pub area: Option<String>,
    pub period: Option<Period>,
    pub state: Option<ReviewState>,
}

/// One report of a listing: its review and how much it holds.
#[derive(Clone, Debug)]
pub struct SubmissionSummary {
    pub review: SubmissionReview,
    pub fields: u32,
    pub open_conflicts: u32,
}

/// One report whole: where it stands, every field, its conflicts.
#[derive(Clone, Debug)]
pub struct SubmissionDetail {
    pub review: SubmissionReview,
    pub fields: Vec<FieldState>,
    pub conflicts: Vec<Conflict>,
}

/// The reports a decision is about.
#[derive(Clone, Debug)]
pub enum Reports {
    /// These reports: (village id, period).
    These(Vec<(String, Period)>),
    /// Every report of an area and period in state `only` (by default:
    /// submitted ones to approve, reject or return; approved ones to accept
    /// or reopen).
    Area { area: String, period: Period, only: Option<ReviewState> },
}

/// A decision on one or many reports, all or none.
#[derive(Clone, Debug)]
pub struct Decision {
    pub verdict: Verdict,
    /// Why (needed to reject or return).
    pub reason: String,
    pub reports: Reports,
}

/// What a decision changed.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The reports whose state changed, as they stand now.
    pub changed: Vec<SubmissionReview>,
    /// Reports already in the state asked for.
    pub unchanged: u32,
}

/// Which conflicts to list.
#[derive(Clone, Debug, Default)]
pub struct ConflictFilter {
    pub area: Option<String>,
    pub period: Option<Period>,
    /// Settled conflicts too.
    pub include_settled: bool,
}

/// How a conflict is settled.
#[derive(Clone, Debug)]
pub enum Settle {
    /// The competing value of this index in `Conflict::candidates`.
    Pick(u32),
    /// A value of the supervisor's own.
    Value(RawValue),
}

/// A settled conflict and the field it wrote.
#[derive(Clone, Debug)]
pub struct Settled {
    pub conflict: Conflict,
    pub field: Option<FieldState>,
}

/// Which entries of the audit trail to read; every part narrows it.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    /// One report: a village id and its period.
    pub report: Option<(String, Period)>,
    pub user_id: Option<String>,
    /// From this time on (ms since the epoch; 0: from the start).
    pub from_ms: u64,
    /// Up to this time (0: up to now).
    pub to_ms: u64,
    /// Only the newest this many entries (still returned oldest first).
    pub limit: Option<usize>,
}

/// One entry of the audit trail, as the server tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub user_id: String,
    /// The tablet it came from: none for changes made on the server.
    pub device: Option<DeviceId>,
    /// The edit's clock (zero for changes made on the server): the order in
    /// which edits of one field were made, whatever order they arrived in.
    pub hlc: Hlc,
    /// "value", "conflict", "refused", "review", "resolve", "user", …
    pub kind: String,
    pub village_id: String,
    pub period: String,
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub mutation_id: u64,
    /// What happened, in words.
    pub detail: String,
}

/// Most entries asked for in one history page.
const HISTORY_PAGE: usize = 1_000;

fn review_of(r: Option<v1::SubmissionReview>) -> Result<SubmissionReview> {
    let r =
        r.ok_or_else(|| Error::Unreadable("the server sent a report without its review".into()))?;
    convert::review_from_wire(r).map_err(unreadable)
}

fn all<W, T>(items: Vec<W>, from_wire: impl Fn(W) -> fieldsync::Result<T>) -> Result<Vec<T>> {
    items.into_iter().map(from_wire).collect::<fieldsync::Result<_>>().map_err(unreadable)
}

fn history_entry(e: v1::AuditEntry) -> Result<HistoryEntry> {
    let value = |v: Option<v1::Value>| match v {
        Some(v) => convert::value_from_wire(Some(v)).map(Some).map_err(unreadable),
        None => Ok(None),
    };
    let device = match e.device_id.as_str() {
        "" => None,
        id => Some(convert::device_from_wire(id).map_err(unreadable)?),
    };
    Ok(HistoryEntry {
        old: value(e.old_value)?,
        new: value(e.new_value)?,
        seq: e.seq,
        at_ms: e.at_ms,
        user_id: e.user_id,
        device,
        hlc: Hlc(e.hlc),
        kind: e.kind,
        village_id: e.village_id,
        period: e.period,
        field: e.field,
        mutation_id: e.mutation_id,
        detail: e.detail,
    })
}

impl Api {
    /// Every report matching `filter`, in the server's order.
    pub async fn submissions(&self, filter: &SubmissionFilter) -> Result<Vec<SubmissionSummary>> {
        let client = self.grpc.review();
        pages(None, |after: Option<String>, _| {
            let mut client = client.clone();
            let request = ListSubmissionsRequest {
                area: filter.area.clone().unwrap_or_default(),
                period: filter.period.map(|p| p.to_string()).unwrap_or_default(),
                state: filter.state.map_or(0, |s| convert::review_state_to_wire(s) as i32),
                limit: self.page_size,
                after: after.unwrap_or_default(),
            };
            async move {
                let reply = client.list_submissions(request).await.map_err(Error::status)?;
                let reply = reply.into_inner();
                let mut items = Vec::with_capacity(reply.submissions.len());
                for s in reply.submissions {
                    let review = review_of(s.review)?;
                    items.push(SubmissionSummary {
                        review,
                        fields: s.fields,
                        open_conflicts: s.open_conflicts,
                    });
                }
                Ok(Page { items, next: next_of(reply.next) })
            }
        })
        .await
    }

    /// One report: its review, every field, its conflicts.
    pub async fn submission(&self, village_id: &str, period: Period) -> Result<SubmissionDetail> {
        let request =
            GetSubmissionRequest { village_id: village_id.to_owned(), period: period.to_string() };
        let detail = self.grpc.review().get_submission(request).await.map_err(Error::status)?;
        let detail = detail.into_inner();
        Ok(SubmissionDetail {
            review: review_of(detail.review)?,
            fields: all(detail.fields, convert::field_state_from_wire)?,
            conflicts: all(detail.conflicts, convert::conflict_from_wire)?,
        })
    }

    /// Approves, accepts, rejects, returns or reopens reports, all or none.
    pub async fn decide(&self, decision: &Decision) -> Result<Decided> {
        let mut request = DecideRequest {
            verdict: convert::verdict_to_wire(decision.verdict) as i32,
            reason: decision.reason.clone(),
            ..DecideRequest::default()
        };
        match &decision.reports {
            Reports::These(reports) => {
                request.submissions = reports
                    .iter()
                    .map(|(village, period)| SubmissionKey {
                        village_id: village.clone(),
                        period: period.to_string(),
                    })
                    .collect();
            }
            Reports::Area { area, period, only } => {
                request.area = area.clone();
                request.period = period.to_string();
                request.only_state = only.map_or(0, |s| convert::review_state_to_wire(s) as i32);
            }
        }
        let reply = self.grpc.review().decide(request).await.map_err(Error::status)?.into_inner();
        let changed = all(reply.changed, convert::review_from_wire)?;
        Ok(Decided { changed, unchanged: reply.unchanged })
    }

    /// Every conflict matching `filter`, in the server's order.
    pub async fn conflicts(&self, filter: &ConflictFilter) -> Result<Vec<Conflict>> {
        let client = self.grpc.review();
        pages(None, |after: Option<String>, _| {
            let mut client = client.clone();
            let request = ListConflictsRequest {
                area: filter.area.clone().unwrap_or_default(),
                period: filter.period.map(|p| p.to_string()).unwrap_or_default(),
                include_settled: filter.include_settled,
                limit: self.page_size,
                after: after.unwrap_or_default(),
            };
            async move {
                let reply = client.list_conflicts(request).await.map_err(Error::status)?;
                let reply = reply.into_inner();
                let items = all(reply.conflicts, convert::conflict_from_wire)?;
                Ok(Page { items, next: next_of(reply.next) })
            }
        })
        .await
    }

    /// Settles the conflict on one field of a report.
    pub async fn settle(
        &self,
        village_id: &str,
        period: Period,
        field: &FieldKey,
        choice: &Settle,
        comment: &str,
    ) -> Result<Settled> {
        let choice = match choice {
            Settle::Pick(i) => resolve_conflict_request::Choice::Pick(*i),
            Settle::Value(raw) => {
                resolve_conflict_request::Choice::Value(convert::raw_value_to_wire(raw))
            }
        };
        let request = ResolveConflictRequest {
            village_id: village_id.to_owned(),
            period: period.to_string(),
            field: field.to_string(),
            choice: Some(choice),
            comment: comment.to_owned(),
        };
        let mut client = self.grpc.review();
        let reply = client.resolve_conflict(request).await.map_err(Error::status)?.into_inner();
        let conflict = reply.conflict.ok_or_else(|| {
            Error::Unreadable("the server sent no conflict with its answer".into())
        })?;
        Ok(Settled {
            conflict: convert::conflict_from_wire(conflict).map_err(unreadable)?,
            field: reply
                .field
                .map(convert::field_state_from_wire)
                .transpose()
                .map_err(unreadable)?,
        })
    }

    /// The audit trail matching `filter`, oldest first. With a limit, the
    /// newest entries are read back from the head of the trail, no further
    /// than needed.
    pub async fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>> {
        let client = self.grpc.review();
        let newest_first = filter.limit.is_some();
        let (village, period) = match &filter.report {
            Some((village, period)) => (village.clone(), period.to_string()),
            None => (String::new(), String::new()),
        };
        let mut entries = pages(filter.limit, |cursor: Option<u64>, wanted| {
            let mut client = client.clone();
            let cursor = cursor.unwrap_or(0);
            let request = HistoryRequest {
                village_id: village.clone(),
                period: period.clone(),
                user_id: filter.user_id.clone().unwrap_or_default(),
                from_ms: filter.from_ms,
                to_ms: filter.to_ms,
                after: if newest_first { 0 } else { cursor },
                limit: wanted.map_or(self.page_size, |n| n.min(HISTORY_PAGE) as u32),
                newest_first,
                before: if newest_first { cursor } else { 0 },
            };
            async move {
                let reply = client.history(request).await.map_err(Error::status)?.into_inner();
                let next = reply.entries.last().map(|e| e.seq);
                let items = reply.entries.into_iter().map(history_entry).collect::<Result<_>>()?;
                Ok(Page { items, next })
            }
        })
        .await?;
        if newest_first {
            entries.reverse();
        }
        Ok(entries)
    }

    /// Closes (or reopens) a period for an area: tablets' edits for it are
    /// refused while it is closed.
    pub async fn set_period_closed(&self, area: &str, period: Period, closed: bool) -> Result<()> {
        let request =
            SetPeriodClosedRequest { area: area.to_owned(), period: period.to_string(), closed };
        self.grpc.review().set_period_closed(request).await.map_err(Error::status)?;
        Ok(())
    }
}
