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

use super::{blocking, caller, invalid, read};
use crate::store::{now_ms, Error, Store, TokenInfo};

pub struct AdminService {
    store: Arc<Store>,
}

impl AdminService {
    pub fn new(store: Arc<Store>) -> Self {
        AdminService { store }
    }
}

fn token_to_wire(t: &TokenInfo) -> v1::TokenInfo {
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

/// Users or tokens per page of a list: a page of either stays far below the
/// 4 MiB message limit however many there are.
pub const LIST_PAGE: usize = 1_000;

fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => LIST_PAGE,
        n => n.min(LIST_PAGE),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    type BackupStream = ReceiverStream<Result<v1::BackupChunk, Status>>;

    async fn create_enrollment(
        &self,
        _request: Request<v1::CreateEnrollmentRequest>,
    ) -> Result<Response<v1::CreateEnrollmentReply>, Status> {
        Err(Status::unimplemented("enrollment codes are not served yet"))
    }

    async fn list_enrollments(
        &self,
        _request: Request<v1::ListEnrollmentsRequest>,
    ) -> Result<Response<v1::ListEnrollmentsReply>, Status> {
        Err(Status::unimplemented("enrollment codes are not served yet"))
    }

    async fn revoke_enrollment(
        &self,
        _request: Request<v1::RevokeEnrollmentRequest>,
    ) -> Result<Response<v1::EnrollmentInfo>, Status> {
        Err(Status::unimplemented("enrollment codes are not served yet"))
    }

    /// Writes the snapshot to a temporary file first (the store's read lock is
    /// held only for that), then streams the file, so a slow reader never
    /// holds up writers.
    async fn backup(
        &self,
        request: Request<v1::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let admin = caller(&request)?;
        let store = Arc::clone(&self.store);
        let file = blocking(move || {
            store.require_admin(&admin)?;
            let mut file = tempfile::tempfile()
                .map_err(|e| Error::Invalid(format!("cannot make a temporary file: {e}")))?;
            store.backup(&mut file)?;
            Ok(file)
        })
        .await?;
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
        let store = Arc::clone(&self.store);
        let user = blocking(move || store.create_user(&admin, user, now_ms())).await?;
        Ok(Response::new(convert::user_to_wire(&user)))
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersReply>, Status> {
        let admin = caller(&request)?;
        let req = request.into_inner();
        let after = Some(req.after).filter(|a| !a.is_empty());
        let (users, next) = read(&self.store, move |store| {
            if !admin.may(fieldsync::access::Action::Administer) {
                return Err(Error::Denied("permission denied: only an admin lists users".into()));
            }
            store.users_page(after.as_deref(), page_size(req.limit))
        })
        .await?;
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
        let store = Arc::clone(&self.store);
        let user = blocking(move || {
            store.update_user(&admin, &req.id, req.name, req.disabled, areas, now_ms())
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
        let store = Arc::clone(&self.store);
        let (token, info) = blocking(move || {
            store.issue_token(&admin, &req.user_id, req.expires_in_s, &req.label, now_ms())
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
        let user = Some(req.user_id).filter(|u| !u.trim().is_empty());
        let after = Some(req.after).filter(|a| !a.is_empty());
        let limit = page_size(req.limit);
        let (tokens, next) = read(&self.store, move |store| {
            store.tokens_page(&admin, user.as_deref(), after.as_deref(), limit)
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
        let store = Arc::clone(&self.store);
        let info = blocking(move || store.revoke_token(&admin, &req.id, now_ms())).await?;
        Ok(Response::new(token_to_wire(&info)))
    }

    async fn add_org_unit(
        &self,
        request: Request<v1::OrgUnit>,
    ) -> Result<Response<v1::OrgUnit>, Status> {
        let admin = caller(&request)?;
        let unit = convert::org_unit_from_wire(request.into_inner()).map_err(invalid)?;
        let id = unit.id.clone();
        let store = Arc::clone(&self.store);
        let catalogue =
            blocking(move || store.extend_catalogue(&admin, Some(unit), None, now_ms())).await?;
        let unit = catalogue.org_unit(&id).ok_or_else(|| Status::internal("added unit missing"))?;
        Ok(Response::new(convert::org_unit_to_wire(unit)))
    }

    async fn add_indicator(
        &self,
        request: Request<v1::Indicator>,
    ) -> Result<Response<v1::Indicator>, Status> {
        let admin = caller(&request)?;
        let indicator = convert::indicator_from_wire(request.into_inner()).map_err(invalid)?;
        let code = indicator.code.clone();
        let store = Arc::clone(&self.store);
        let catalogue =
            blocking(move || store.extend_catalogue(&admin, None, Some(indicator), now_ms()))
                .await?;
        let indicator = catalogue
            .indicator(&code)
            .ok_or_else(|| Status::internal("added indicator missing"))?;
        Ok(Response::new(convert::indicator_to_wire(indicator)))
    }
}
