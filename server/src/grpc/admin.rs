//! The `fieldsync.v1.Admin` service: users, tokens, the catalogue.

use std::sync::Arc;

use fieldsync_proto::convert;
use fieldsync_proto::v1::admin_server::Admin;
use fieldsync_proto::v1::{
    self, CreateUserRequest, IssueTokenReply, IssueTokenRequest, ListTokensReply,
    ListTokensRequest, ListUsersReply, ListUsersRequest, RevokeTokenRequest, UpdateUserRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{blocking, caller, invalid};
use crate::app::{App, Enrollment, TokenInfo};

pub struct AdminService {
    app: Arc<App>,
}

impl AdminService {
    pub fn new(app: Arc<App>) -> Self {
        AdminService { app }
    }
}

fn enrollment_to_wire(e: &Enrollment) -> v1::EnrollmentInfo {
    v1::EnrollmentInfo {
        id: e.id.clone(),
        user_id: e.user_id.clone(),
        user_name: e.user_name.clone(),
        created_by: e.created_by.clone(),
        created_ms: e.created_ms,
        expires_ms: e.expires_ms,
        revoked: e.revoked,
        token_id: e.token_id.clone(),
    }
}

pub(super) fn token_to_wire(t: &TokenInfo) -> v1::TokenInfo {
    v1::TokenInfo {
        id: t.id.clone(),
        user_id: t.user_id.clone(),
        label: t.label.clone(),
        created_ms: t.created_ms,
        expires_ms: t.expires_ms,
        revoked: t.revoked,
    }
}

/// Bytes per backup chunk on the wire.
const BACKUP_CHUNK: usize = 1024 * 1024;

#[tonic::async_trait]
impl Admin for AdminService {
    type BackupStream = ReceiverStream<Result<v1::BackupChunk, Status>>;

    /// Open to supervisors and the province office too: the store checks
    /// that the surveyor lies in the caller's areas. Over gRPC the app's
    /// address is the public URL, else the web listener's.
    async fn create_enrollment(
        &self,
        request: Request<v1::CreateEnrollmentRequest>,
    ) -> Result<Response<v1::CreateEnrollmentReply>, Status> {
        let caller = caller(&request)?;
        let req = request.into_inner();
        let made = blocking(&self.app, move |app| {
            app.create_enrollment(&caller, &req.user_id, req.expires_in_s, None)
        })
        .await?;
        Ok(Response::new(v1::CreateEnrollmentReply {
            info: Some(enrollment_to_wire(&made.info)),
            code: made.code,
            app_url: made.app_url,
        }))
    }

    async fn list_enrollments(
        &self,
        request: Request<v1::ListEnrollmentsRequest>,
    ) -> Result<Response<v1::ListEnrollmentsReply>, Status> {
        let caller = caller(&request)?;
        let user = request.into_inner().user_id;
        let found = blocking(&self.app, move |app| app.enrollments(&caller, &user)).await?;
        Ok(Response::new(v1::ListEnrollmentsReply {
            enrollments: found.iter().map(enrollment_to_wire).collect(),
        }))
    }

    async fn revoke_enrollment(
        &self,
        request: Request<v1::RevokeEnrollmentRequest>,
    ) -> Result<Response<v1::EnrollmentInfo>, Status> {
        let caller = caller(&request)?;
        let id = request.into_inner().id;
        let info = blocking(&self.app, move |app| app.revoke_enrollment(&caller, &id)).await?;
        Ok(Response::new(enrollment_to_wire(&info)))
    }

    /// Writes the snapshot to a temporary file first (the store's read lock is
    /// held only for that), then streams the file, so a slow reader never
    /// holds up writers.
    async fn backup(
        &self,
        request: Request<v1::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let admin = caller(&request)?;
        let file = blocking(&self.app, move |app| app.backup(&admin)).await?;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut file = file;
            if let Err(e) = file.rewind() {
                let _ = tx.blocking_send(Err(Status::internal(format!("backup file: {e}"))));
                return;
            }
            let mut buf = vec![0u8; BACKUP_CHUNK];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        let chunk = v1::BackupChunk { data: buf[..n].to_vec() };
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return; // the caller went away
                        }
                    }
                    Err(e) => {
                        let _ =
                            tx.blocking_send(Err(Status::internal(format!("backup file: {e}"))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        let admin = caller(&request)?;
        let user = request
            .into_inner()
            .user
            .ok_or_else(|| Status::invalid_argument("give the user to create"))?;
        let user = convert::user_from_wire(user).map_err(invalid)?;
        let user = blocking(&self.app, move |app| app.create_user(&admin, user)).await?;
        Ok(Response::new(convert::user_to_wire(&user)))
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersReply>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let (users, next) =
            blocking(&self.app, move |app| app.users_page(&admin, &req.after, req.limit)).await?;
        Ok(Response::new(ListUsersReply {
            users: users.iter().map(convert::user_to_wire).collect(),
            next: next.unwrap_or_default(),
        }))
    }

    async fn update_user(
        &self,
        request: Request<UpdateUserRequest>,
    ) -> Result<Response<v1::User>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let areas = req.set_areas.then_some(req.areas);
        let user = blocking(&self.app, move |app| {
            app.update_user(&admin, &req.id, req.name, req.disabled, areas)
        })
        .await?;
        Ok(Response::new(convert::user_to_wire(&user)))
    }

    async fn issue_token(
        &self,
        request: Request<IssueTokenRequest>,
    ) -> Result<Response<IssueTokenReply>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let (token, info) = blocking(&self.app, move |app| {
            app.issue_token(&admin, &req.user_id, req.expires_in_s, &req.label)
        })
        .await?;
        Ok(Response::new(IssueTokenReply { info: Some(token_to_wire(&info)), token }))
    }

    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensReply>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let (tokens, next) = blocking(&self.app, move |app| {
            app.tokens_page(&admin, &req.user_id, &req.after, req.limit)
        })
        .await?;
        Ok(Response::new(ListTokensReply {
            tokens: tokens.iter().map(token_to_wire).collect(),
            next: next.unwrap_or_default(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<v1::TokenInfo>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let info = blocking(&self.app, move |app| app.revoke_token(&admin, &req.id)).await?;
        Ok(Response::new(token_to_wire(&info)))
    }

    async fn add_org_unit(
        &self,
        request: Request<v1::OrgUnit>,
    ) -> Result<Response<v1::OrgUnit>, Status> {
        let admin = caller(&request)?;
        let unit = convert::org_unit_from_wire(request.into_inner()).map_err(invalid)?;
        let unit = blocking(&self.app, move |app| app.add_org_unit(&admin, unit)).await?;
        Ok(Response::new(convert::org_unit_to_wire(&unit)))
    }

    async fn import_catalogue(
        &self,
        request: Request<v1::ImportCatalogueRequest>,
    ) -> Result<Response<v1::ImportCatalogueReply>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        // What cannot even be read is named like the store's own refusals.
        let mut problems = Vec::new();
        if !req.valid_from.is_empty() && req.valid_from.len() != req.org_units.len() {
            return Err(Status::invalid_argument(format!(
                "{} valid-from days for {} org units: give one per unit (empty for none), or none",
                req.valid_from.len(),
                req.org_units.len()
            )));
        }
        let mut units = Vec::with_capacity(req.org_units.len());
        let mut days = req.valid_from.into_iter();
        for (i, u) in req.org_units.into_iter().enumerate() {
            let from = match days.next().filter(|d| !d.trim().is_empty()) {
                None => Ok(None),
                Some(d) => d.trim().parse::<fieldsync::Date>().map(Some),
            };
            match (convert::org_unit_from_wire(u), from) {
                (Ok(u), Ok(from)) => units.push((u, from)),
                (Err(e), _) | (_, Err(e)) => problems.push(format!("org unit {}: {e}", i + 1)),
            }
        }
        let mut indicators = Vec::with_capacity(req.indicators.len());
        for (i, ind) in req.indicators.into_iter().enumerate() {
            match convert::new_indicator_from_wire(ind) {
                Ok(ind) => indicators.push(ind),
                Err(e) => problems.push(format!("indicator {}: {e}", i + 1)),
            }
        }
        if !problems.is_empty() {
            problems.truncate(8);
            let message = format!("nothing was imported; fix these:\n{}", problems.join("\n"));
            return Err(super::clipped(Status::invalid_argument(message)));
        }
        let imported =
            blocking(&self.app, move |app| app.import_catalogue(&admin, units, indicators)).await?;
        Ok(Response::new(v1::ImportCatalogueReply {
            org_units_added: imported.org_units as u32,
            indicators_added: imported.indicators as u32,
            unchanged: imported.unchanged as u32,
        }))
    }

    async fn import_users(
        &self,
        request: Request<v1::ImportUsersRequest>,
    ) -> Result<Response<v1::ImportUsersReply>, Status> {
        let admin = caller(&request)?;
        let mut problems = Vec::new();
        let mut users = Vec::new();
        for (i, u) in request.into_inner().users.into_iter().enumerate() {
            match convert::user_from_wire(u) {
                Ok(u) => users.push(u),
                Err(e) => problems.push(format!("user {}: {e}", i + 1)),
            }
        }
        if !problems.is_empty() {
            problems.truncate(8);
            let message = format!("nothing was imported; fix these:\n{}", problems.join("\n"));
            return Err(super::clipped(Status::invalid_argument(message)));
        }
        let (added, unchanged) =
            blocking(&self.app, move |app| app.import_users(&admin, users)).await?;
        Ok(Response::new(v1::ImportUsersReply { added, unchanged: unchanged as u32 }))
    }

    async fn change_tree(
        &self,
        request: Request<v1::ChangeTreeRequest>,
    ) -> Result<Response<v1::ChangeTreeReply>, Status> {
        use fieldsync::TreeChange;
        use v1::change_tree_request::Change;
        let admin = caller(&request)?;
        let req = request.into_inner();
        let change = match req.change {
            Some(Change::Rename(r)) => TreeChange::Rename { unit: r.unit_id, name: r.name },
            Some(Change::Move(m)) => TreeChange::Move { unit: m.unit_id, parent: m.parent_id },
            Some(Change::Merge(m)) => {
                let new = match m.new_name.trim() {
                    "" => None,
                    name => {
                        // The new unit is of the merged units' level: the store checks it.
                        let level = self
                            .app
                            .catalogue()
                            .org_unit(m.unit_ids.first().map_or("", String::as_str))
                            .map_or(fieldsync::Level::Commune, |u| u.level);
                        Some(fieldsync::OrgUnit {
                            id: m.into_id.clone(),
                            name: name.to_owned(),
                            level,
                            parent: Some(m.new_parent_id).filter(|p| !p.trim().is_empty()),
                        })
                    }
                };
                TreeChange::Merge { units: m.unit_ids, into: m.into_id, new }
            }
            Some(Change::Retire(r)) => TreeChange::Retire { unit: r.unit_id },
            None => {
                return Err(Status::invalid_argument(
                    "name the change: rename, move, merge or retire",
                ))
            }
        };
        let (description, changed) =
            blocking(&self.app, move |app| app.change_tree(&admin, &req.date, change)).await?;
        Ok(Response::new(v1::ChangeTreeReply {
            description,
            users_moved: changed
                .users_moved
                .into_iter()
                .map(|(user, before)| v1::MovedUser {
                    user_id: user.id,
                    areas_before: before,
                    areas: user.areas,
                })
                .collect(),
        }))
    }

    async fn set_review_chain(
        &self,
        request: Request<v1::SetReviewChainRequest>,
    ) -> Result<Response<v1::SetReviewChainReply>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let unset = v1::Level::Unspecified as i32;
        let chain = match (req.approves, req.accepts) {
            (a, b) if a == unset && b == unset => None,
            (a, b) => Some((
                convert::level_from_wire(a).map_err(invalid)?,
                convert::level_from_wire(b).map_err(invalid)?,
            )),
        };
        let description = match chain {
            Some((a, b)) => format!("{} approves, {} accepts", a.as_str(), b.as_str()),
            None => "the chain follows each village's tree".into(),
        };
        blocking(&self.app, move |app| app.set_review_chain(&admin, chain)).await?;
        Ok(Response::new(v1::SetReviewChainReply { description }))
    }

    async fn retire_indicator(
        &self,
        request: Request<v1::RetireIndicatorRequest>,
    ) -> Result<Response<v1::Indicator>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let indicator = blocking(&self.app, move |app| {
            app.retire_indicator(&admin, &req.code, &req.from_period)
        })
        .await?;
        Ok(Response::new(convert::indicator_to_wire(&indicator)))
    }

    async fn get_tree(
        &self,
        request: Request<v1::GetTreeRequest>,
    ) -> Result<Response<v1::GetTreeReply>, Status> {
        let admin = caller(&request)?;
        let date = request.into_inner().date;
        let (tree, catalogue) = blocking(&self.app, move |app| app.tree(&admin, &date)).await?;
        let history = catalogue.history();
        Ok(Response::new(v1::GetTreeReply {
            org_units: tree.org_units.values().map(convert::org_unit_to_wire).collect(),
            retired: history
                .retired
                .values()
                .map(|u| {
                    let end = history.past.get(&u.id).and_then(|p| p.retired.as_ref());
                    v1::RetiredUnit {
                        unit: Some(convert::org_unit_to_wire(u)),
                        retired_on: end.map(|r| r.on.to_string()).unwrap_or_default(),
                        successor_id: end.and_then(|r| r.successor.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
            changes: history
                .changes
                .iter()
                .map(|(date, change)| v1::TreeChangeEntry {
                    date: date.to_string(),
                    description: change.describe(*date),
                })
                .collect(),
        }))
    }

    async fn add_indicator(
        &self,
        request: Request<v1::Indicator>,
    ) -> Result<Response<v1::Indicator>, Status> {
        let admin = caller(&request)?;
        let indicator = convert::new_indicator_from_wire(request.into_inner()).map_err(invalid)?;
        let indicator =
            blocking(&self.app, move |app| app.add_indicator(&admin, indicator)).await?;
        Ok(Response::new(convert::indicator_to_wire(&indicator)))
    }
}
