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
use crate::db::{display_code, now_ms, Enrollment, Error, Store, TokenInfo};

pub struct AdminService {
    store: Arc<Store>,
    app_url: AppUrl,
}

impl AdminService {
    pub fn new(store: Arc<Store>) -> Self {
        AdminService { store, app_url: AppUrl::default() }
    }

    /// Where enrollment codes send devices.
    pub fn with_app_url(mut self, app_url: AppUrl) -> Self {
        self.app_url = app_url;
        self
    }
}

/// What the web page of surveyors' devices asks beside the RPCs: who the
/// caller may enroll, their live tokens, and revoking one. The rules are
/// the store's (`User::may_enroll`), as for the enrollment RPCs.
impl AdminService {
    /// Most surveyors listed.
    pub const MAX_SURVEYORS: usize = 500;

    pub async fn enrollable(&self, request: Request<()>) -> Result<(Vec<v1::User>, bool), Status> {
        let caller = caller(&request)?;
        let (users, more) =
            read(&self.store, move |store| store.enrollable_users(&caller, Self::MAX_SURVEYORS))
                .await?;
        Ok((users.iter().map(convert::user_to_wire).collect(), more))
    }

    pub async fn device_tokens(&self, request: Request<()>) -> Result<Vec<v1::TokenInfo>, Status> {
        let caller = caller(&request)?;
        let tokens = read(&self.store, move |store| store.device_tokens(&caller, now_ms())).await?;
        Ok(tokens.iter().map(token_to_wire).collect())
    }

    pub async fn revoke_device_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<v1::TokenInfo, Status> {
        let caller = caller(&request)?;
        let id = request.into_inner().id;
        let store = Arc::clone(&self.store);
        let info = blocking(move || store.revoke_device_token(&caller, &id, now_ms())).await?;
        Ok(token_to_wire(&info))
    }
}

/// The surveyors' app's address that enrollment codes carry: the public
/// URL the server was given, else the web address the caller used (put on
/// the request as a [`WebOrigin`] by the web pages), else the web
/// listener's own address; empty when the server serves no web pages.
#[derive(Clone, Debug, Default)]
pub struct AppUrl {
    /// `--public-url`, e.g. `https://ntm.example.vn`.
    pub public: Option<String>,
    /// `http://127.0.0.1:8080`: the web listener.
    pub listener: Option<String>,
}

/// The scheme and host a web page was asked for (`http://host:port`).
#[derive(Clone, Debug)]
pub struct WebOrigin(pub String);

impl AppUrl {
    fn for_request<T>(&self, request: &Request<T>) -> String {
        let base = self
            .public
            .clone()
            .or_else(|| request.extensions().get::<WebOrigin>().map(|o| o.0.clone()))
            .or_else(|| self.listener.clone());
        match base {
            None => String::new(),
            Some(base) if base.trim_end_matches('/').ends_with("/app") => {
                format!("{}/", base.trim_end_matches('/'))
            }
            Some(base) => format!("{}/app/", base.trim_end_matches('/')),
        }
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

    /// Open to supervisors and the province office too: the store checks
    /// that the surveyor lies in the caller's areas.
    async fn create_enrollment(
        &self,
        request: Request<v1::CreateEnrollmentRequest>,
    ) -> Result<Response<v1::CreateEnrollmentReply>, Status> {
        let caller = caller(&request)?;
        let app_url = self.app_url.for_request(&request);
        let req = request.into_inner();
        let store = Arc::clone(&self.store);
        let (code, info) = blocking(move || {
            store.create_enrollment(&caller, &req.user_id, req.expires_in_s, now_ms())
        })
        .await?;
        Ok(Response::new(v1::CreateEnrollmentReply {
            info: Some(enrollment_to_wire(&info)),
            code: display_code(&code),
            app_url,
        }))
    }

    async fn list_enrollments(
        &self,
        request: Request<v1::ListEnrollmentsRequest>,
    ) -> Result<Response<v1::ListEnrollmentsReply>, Status> {
        let caller = caller(&request)?;
        let user = Some(request.into_inner().user_id).filter(|u| !u.trim().is_empty());
        let found = read(&self.store, move |store| {
            store.enrollments(&caller, user.as_deref().map(str::trim), now_ms())
        })
        .await?;
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
        let store = Arc::clone(&self.store);
        let info = blocking(move || store.revoke_enrollment(&caller, &id, now_ms())).await?;
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
