//! The `fieldsync.v1.Review` service: what supervisors and the province
//! office call.

use std::sync::Arc;

use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::FieldRef;
use fieldsync::{FieldKey, Period, SubmissionId};
use fieldsync_proto::convert;
use fieldsync_proto::v1::review_server::Review;
use fieldsync_proto::v1::{
    resolve_conflict_request, DecideReply, DecideRequest, GetSubmissionRequest, HistoryReply,
    HistoryRequest, ListConflictsReply, ListConflictsRequest, ListSubmissionsReply,
    ListSubmissionsRequest, ResolveConflictReply, ResolveConflictRequest, SetPeriodClosedReply,
    SetPeriodClosedRequest, SubmissionDetail, SubmissionSummary,
};
use tonic::{Request, Response, Status};

use super::{blocking, caller, invalid, optional, read};
use crate::db::{now_ms, Choice, HistoryQuery, Store, MAX_BULK};

/// Most rows one list call returns.
const MAX_LIST: usize = 1_000;

pub struct ReviewService {
    store: Arc<Store>,
}

impl ReviewService {
    pub fn new(store: Arc<Store>) -> Self {
        ReviewService { store }
    }
}

fn limit(requested: u32) -> usize {
    match requested as usize {
        0 => MAX_LIST,
        n => n.min(MAX_LIST),
    }
}

fn period(text: &str) -> Result<Period, Status> {
    text.parse().map_err(invalid)
}

#[tonic::async_trait]
impl Review for ReviewService {
    async fn list_submissions(
        &self,
        request: Request<ListSubmissionsRequest>,
    ) -> Result<Response<ListSubmissionsReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let area = optional(&req.area, |a| Ok(a.to_owned()))?;
        let period = optional(&req.period, str::parse)?;
        let state = convert::review_state_from_wire(req.state).map_err(invalid)?;
        let after = optional(&req.after, |a| {
            uuid::Uuid::parse_str(a).map(SubmissionId).map_err(|_| {
                fieldsync::Error::Invalid(format!("`after` {a:?} is not a submission id"))
            })
        })?;
        let limit = limit(req.limit);
        let rows = read(&self.store, move |store| {
            store.list_submissions(&user, area.as_deref(), period, state, after, limit)
        })
        .await?;
        let next = match rows.len() == limit {
            true => rows.last().map(|(h, _, _)| h.id.to_string()).unwrap_or_default(),
            false => String::new(),
        };
        Ok(Response::new(ListSubmissionsReply {
            submissions: rows
                .iter()
                .map(|(h, fields, open)| SubmissionSummary {
                    review: Some(convert::review_to_wire(&h.review)),
                    fields: *fields as u32,
                    open_conflicts: *open as u32,
                })
                .collect(),
            next,
        }))
    }

    async fn get_submission(
        &self,
        request: Request<GetSubmissionRequest>,
    ) -> Result<Response<SubmissionDetail>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let period = period(&req.period)?;
        let (header, fields, conflicts) = read(&self.store, move |store| {
            let header = store.readable(&user, &req.village_id, period)?;
            Ok((header.clone(), store.fields_of(header.id)?, store.conflicts_of(header.id)?))
        })
        .await?;
        Ok(Response::new(SubmissionDetail {
            review: Some(convert::review_to_wire(&header.review)),
            fields: fields.iter().map(convert::field_state_to_wire).collect(),
            conflicts: conflicts.iter().map(convert::conflict_to_wire).collect(),
        }))
    }

    async fn decide(
        &self,
        request: Request<DecideRequest>,
    ) -> Result<Response<DecideReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let verdict = convert::verdict_from_wire(req.verdict).map_err(invalid)?;
        let mut subs = Vec::new();
        for key in &req.submissions {
            subs.push((key.village_id.clone(), period(&key.period)?));
        }
        let by_filter = !req.area.trim().is_empty();
        if subs.is_empty() != by_filter {
            return Err(Status::invalid_argument(
                "name the submissions, or give an area and period for all of them (not both)",
            ));
        }
        let area = req.area.trim().to_owned();
        let filter_period = optional(&req.period, str::parse)?;
        if by_filter && filter_period.is_none() {
            return Err(Status::invalid_argument("a decision for an area needs a period"));
        }
        // By default a bulk decision takes the submissions it applies to.
        let only = convert::review_state_from_wire(req.only_state).map_err(invalid)?.or(Some(
            match verdict {
                Verdict::Accept | Verdict::Reopen => ReviewState::Approved,
                Verdict::Approve | Verdict::Reject | Verdict::Return => ReviewState::Submitted,
            },
        ));
        let store = Arc::clone(&self.store);
        let (changed, unchanged) = blocking(move || {
            if by_filter {
                let rows = store.list_submissions(
                    &user,
                    Some(&area),
                    filter_period,
                    only,
                    None,
                    MAX_BULK + 1,
                )?;
                if rows.len() > MAX_BULK {
                    return Err(crate::db::Error::Invalid(format!(
                        "more than {MAX_BULK} submissions match; at most {MAX_BULK} in one \
                         decision: narrow the area or period"
                    )));
                }
                subs = rows.into_iter().map(|(h, _, _)| (h.village_id, h.period)).collect();
            }
            store.decide(&user, &subs, verdict, &req.reason, now_ms())
        })
        .await?;
        Ok(Response::new(DecideReply {
            changed: changed.iter().map(convert::review_to_wire).collect(),
            unchanged: unchanged as u32,
        }))
    }

    async fn list_conflicts(
        &self,
        request: Request<ListConflictsRequest>,
    ) -> Result<Response<ListConflictsReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let area = optional(&req.area, |a| Ok(a.to_owned()))?;
        let period = optional(&req.period, str::parse)?;
        let limit = limit(req.limit);
        // The cursor is "village/period/field" of the last conflict returned.
        let after = optional(&req.after, |a| {
            let bad =
                || fieldsync::Error::Invalid(format!("`after` {a:?} is not a conflict cursor"));
            let mut parts = a.splitn(3, '/');
            let (v, p, f) = (parts.next(), parts.next(), parts.next());
            let (Some(v), Some(p), Some(f)) = (v, p, f) else { return Err(bad()) };
            Ok(FieldRef::new(v, p.parse().map_err(|_| bad())?, FieldKey::parse(f)))
        })?;
        let (conflicts, next) = read(&self.store, move |store| {
            store.list_conflicts(
                &user,
                area.as_deref(),
                period,
                req.include_settled,
                after.as_ref(),
                limit,
            )
        })
        .await?;
        Ok(Response::new(ListConflictsReply {
            conflicts: conflicts.iter().map(convert::conflict_to_wire).collect(),
            next: next
                .map(|n| format!("{}/{}/{}", n.village_id, n.period, n.field))
                .unwrap_or_default(),
        }))
    }

    async fn resolve_conflict(
        &self,
        request: Request<ResolveConflictRequest>,
    ) -> Result<Response<ResolveConflictReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let period = period(&req.period)?;
        let choice = match req.choice {
            Some(resolve_conflict_request::Choice::Pick(i)) => Choice::Pick(i as usize),
            Some(resolve_conflict_request::Choice::Value(v)) => {
                Choice::Value(convert::raw_value_from_wire(Some(v)).map_err(invalid)?)
            }
            None => {
                return Err(Status::invalid_argument(
                    "pick one of the competing values (by index) or give a value",
                ))
            }
        };
        let at = FieldRef::new(&req.village_id, period, FieldKey::parse(&req.field));
        let store = Arc::clone(&self.store);
        let (conflict, state) =
            blocking(move || store.resolve(&user, &at, choice, &req.comment, now_ms())).await?;
        Ok(Response::new(ResolveConflictReply {
            conflict: Some(convert::conflict_to_wire(&conflict)),
            field: Some(convert::field_state_to_wire(&state)),
        }))
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let submission = match (req.village_id.trim(), req.period.trim()) {
            ("", "") => None,
            (v, p) if !v.is_empty() && !p.is_empty() => Some(SubmissionId::of(v, period(p)?)),
            _ => {
                return Err(Status::invalid_argument(
                    "give both a village and a period for a submission's history",
                ))
            }
        };
        let village = submission.map(|_| req.village_id.trim().to_owned());
        let query = HistoryQuery {
            submission,
            village,
            user_id: optional(&req.user_id, |u| Ok(u.to_owned()))?,
            from_ms: req.from_ms,
            to_ms: req.to_ms,
            after: req.after,
            limit: limit(req.limit),
            newest_first: req.newest_first,
            before: req.before,
        };
        if req.newest_first && req.after > 0 || !req.newest_first && req.before > 0 {
            return Err(Status::invalid_argument(
                "`after` pages oldest first and `before` newest first: give the one that goes \
                 with `newest_first`",
            ));
        }
        let entries = read(&self.store, move |store| store.history(&user, &query)).await?;
        Ok(Response::new(HistoryReply {
            entries: entries.iter().map(convert::audit_to_wire).collect(),
        }))
    }

    async fn set_period_closed(
        &self,
        request: Request<SetPeriodClosedRequest>,
    ) -> Result<Response<SetPeriodClosedReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let period = period(&req.period)?;
        let store = Arc::clone(&self.store);
        blocking(move || store.set_period_closed(&user, &req.area, period, req.closed, now_ms()))
            .await?;
        Ok(Response::new(SetPeriodClosedReply {}))
    }
}
