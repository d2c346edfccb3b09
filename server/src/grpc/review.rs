//! The `fieldsync.v1.Review` service: what supervisors and the province
//! office call.

use std::sync::Arc;

use fieldsync_proto::convert;
use fieldsync_proto::v1::review_server::Review;
use fieldsync_proto::v1::{
    resolve_conflict_request, DecideReply, DecideRequest, GetSubmissionRequest, HistoryReply,
    HistoryRequest, ListConflictsReply, ListConflictsRequest, ListSubmissionsReply,
    ListSubmissionsRequest, ResolveConflictReply, ResolveConflictRequest, SetPeriodClosedReply,
    SetPeriodClosedRequest, SubmissionDetail, SubmissionSummary,
};
use tonic::{Request, Response, Status};

use super::{blocking, caller, invalid};
use crate::app::{App, Choice, ConflictQuery, Decision, HistoryFilter, SubmissionQuery};

pub struct ReviewService {
    app: Arc<App>,
}

impl ReviewService {
    pub fn new(app: Arc<App>) -> Self {
        ReviewService { app }
    }
}

#[tonic::async_trait]
impl Review for ReviewService {
    async fn list_submissions(
        &self,
        request: Request<ListSubmissionsRequest>,
    ) -> Result<Response<ListSubmissionsReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let query = SubmissionQuery {
            state: convert::review_state_from_wire(req.state).map_err(invalid)?,
            area: req.area,
            period: req.period,
            after: req.after,
            limit: req.limit,
        };
        let list = blocking(&self.app, move |app| app.list_submissions(&user, &query)).await?;
        Ok(Response::new(ListSubmissionsReply {
            submissions: list
                .rows
                .iter()
                .map(|s| SubmissionSummary {
                    review: Some(convert::review_to_wire(&s.review)),
                    fields: s.fields as u32,
                    open_conflicts: s.open_conflicts as u32,
                })
                .collect(),
            next: list.next.unwrap_or_default(),
        }))
    }

    async fn get_submission(
        &self,
        request: Request<GetSubmissionRequest>,
    ) -> Result<Response<SubmissionDetail>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let detail =
            blocking(&self.app, move |app| app.submission(&user, &req.village_id, &req.period))
                .await?;
        Ok(Response::new(SubmissionDetail {
            review: Some(convert::review_to_wire(&detail.review)),
            fields: detail.fields.iter().map(convert::field_state_to_wire).collect(),
            conflicts: detail.conflicts.iter().map(convert::conflict_to_wire).collect(),
        }))
    }

    async fn decide(
        &self,
        request: Request<DecideRequest>,
    ) -> Result<Response<DecideReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let decision = Decision {
            verdict: convert::verdict_from_wire(req.verdict).map_err(invalid)?,
            only: convert::review_state_from_wire(req.only_state).map_err(invalid)?,
            submissions: req.submissions.into_iter().map(|k| (k.village_id, k.period)).collect(),
            area: req.area,
            period: req.period,
            reason: req.reason,
        };
        let decided = blocking(&self.app, move |app| app.decide(&user, &decision)).await?;
        Ok(Response::new(DecideReply {
            changed: decided.changed.iter().map(convert::review_to_wire).collect(),
            unchanged: decided.unchanged as u32,
        }))
    }

    async fn list_conflicts(
        &self,
        request: Request<ListConflictsRequest>,
    ) -> Result<Response<ListConflictsReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let query = ConflictQuery {
            area: req.area,
            period: req.period,
            include_settled: req.include_settled,
            after: req.after,
            limit: req.limit,
        };
        let list = blocking(&self.app, move |app| app.list_conflicts(&user, &query)).await?;
        Ok(Response::new(ListConflictsReply {
            conflicts: list.conflicts.iter().map(convert::conflict_to_wire).collect(),
            next: list.next,
        }))
    }

    async fn resolve_conflict(
        &self,
        request: Request<ResolveConflictRequest>,
    ) -> Result<Response<ResolveConflictReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
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
        let (conflict, state) = blocking(&self.app, move |app| {
            let at = (req.village_id.as_str(), req.period.as_str(), req.field.as_str());
            app.resolve(&user, at, choice, &req.comment)
        })
        .await?;
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
        let filter = HistoryFilter {
            village: req.village_id,
            period: req.period,
            user_id: req.user_id,
            from_ms: req.from_ms,
            to_ms: req.to_ms,
            after: req.after,
            before: req.before,
            limit: req.limit,
            newest_first: req.newest_first,
        };
        let entries = blocking(&self.app, move |app| app.history(&user, &filter)).await?;
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
        blocking(&self.app, move |app| {
            app.set_period_closed(&user, &req.area, &req.period, req.closed)
        })
        .await?;
        Ok(Response::new(SetPeriodClosedReply {}))
    }
}
