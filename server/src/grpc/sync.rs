//! The `fieldsync.v1.Sync` service: what tablets call.

use std::sync::Arc;

use fieldsync::sync::{Mutation, Page};
use fieldsync::DeviceId;
use fieldsync_proto::convert;
use fieldsync_proto::v1::sync_server::Sync;
use fieldsync_proto::v1::{
    BootstrapReply, BootstrapRequest, PullPage, PullRequest, PushReply, PushRequest, StatusReply,
    StatusRequest,
};
use fieldsync_proto::SCHEMA_VERSION;
use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{blocking, caller, invalid};
use crate::app::{now_ms, server_hlc, App};
use crate::config::Limits;

/// The sync service over the use cases.
pub struct SyncService {
    app: Arc<App>,
    limits: Limits,
    pulls: Arc<Semaphore>,
    pulls_by_user: Arc<Mutex<HashMap<String, usize>>>,
    pushes: Arc<Semaphore>,
}

impl SyncService {
    pub fn new(app: Arc<App>, limits: Limits) -> Self {
        let pulls = Arc::new(Semaphore::new(limits.max_pulls.max(1)));
        let pushes = Arc::new(Semaphore::new(limits.pushes_in_flight.max(1)));
        SyncService { app, limits, pulls, pulls_by_user: Default::default(), pushes }
    }

    /// A place for one more pull by `user`, held until the pull's stream is
    /// dropped.
    async fn pull_slot(&self, user: &str) -> Result<PullSlot, Status> {
        {
            let mut open = self.pulls_by_user.lock().unwrap_or_else(|e| e.into_inner());
            let mine = open.entry(user.to_owned()).or_default();
            if *mine >= self.limits.pulls_per_user {
                return Err(Status::resource_exhausted(format!(
                    "{user} already has {mine} pulls open: let one finish (or close it) first"
                )));
            }
            *mine += 1;
        }
        let counted = UserPull { user: user.to_owned(), open: Arc::clone(&self.pulls_by_user) };
        let permit = tokio::time::timeout(
            self.limits.pull_queue_wait,
            Arc::clone(&self.pulls).acquire_owned(),
        )
        .await
        .map_err(|_| {
            Status::resource_exhausted(
                "the server is sending as many pulls as it may at once: try again shortly",
            )
        })?
        .map_err(|_| Status::unavailable("the server is shutting down"))?;
        Ok(PullSlot { _permit: permit, _user: counted })
    }
}

/// One of the server's pull places, and one of its user's.
struct PullSlot {
    _permit: OwnedSemaphorePermit,
    _user: UserPull,
}

/// Counts one open pull against its user until dropped.
struct UserPull {
    user: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for UserPull {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// A pull's pages, holding its [`PullSlot`] for as long as the stream lives.
pub struct PullPages {
    pages: Pages,
    _slot: PullSlot,
}

/// Where a pull's pages come from: a pull whose first page is its last
/// (most of them) is sent as it is, without a task or a channel.
enum Pages {
    Last(Option<PullPage>),
    Read(ReceiverStream<Result<PullPage, Status>>),
}

impl tokio_stream::Stream for PullPages {
    type Item = Result<PullPage, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match &mut self.pages {
            Pages::Last(page) => std::task::Poll::Ready(page.take().map(Ok)),
            Pages::Read(pages) => std::pin::Pin::new(pages).poll_next(cx),
        }
    }
}

fn check_schema(version: u32) -> Result<(), Status> {
    match version {
        0 => Err(Status::invalid_argument(
            "schema_version is missing: set it to the protocol version the client speaks",
        )),
        SCHEMA_VERSION => Ok(()),
        v => Err(Status::failed_precondition(format!(
            "this server speaks schema version {SCHEMA_VERSION}, the request uses {v}: update the server"
        ))),
    }
}

fn page_to_wire(page: &Page) -> PullPage {
    PullPage {
        changes: page.changes.iter().map(|(seq, c)| convert::change_to_wire(*seq, c)).collect(),
        cursor: page.cursor,
        caught_up: page.caught_up,
        server_hlc: server_hlc().0,
    }
}

fn device_of(id: &str) -> Result<DeviceId, Status> {
    convert::device_from_wire(id).map_err(invalid)
}

#[tonic::async_trait]
impl Sync for SyncService {
    async fn bootstrap(
        &self,
        request: Request<BootstrapRequest>,
    ) -> Result<Response<BootstrapReply>, Status> {
        check_schema(request.get_ref().schema_version)?;
        let user = caller(&request)?;
        let found = self.app.bootstrap(&user);
        Ok(Response::new(BootstrapReply {
            indicators: found
                .indicators
                .iter()
                .map(|(i, retired_from)| convert::offered_indicator_to_wire(i, *retired_from))
                .collect(),
            org_units: found.org_units.iter().map(convert::org_unit_to_wire).collect(),
        }))
    }

    async fn push(&self, request: Request<PushRequest>) -> Result<Response<PushReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        check_schema(req.schema_version)?;
        let device = device_of(&req.device_id)?;
        if req.mutations.len() > self.limits.max_batch {
            return Err(Status::resource_exhausted(format!(
                "{} mutations in one push; at most {} are accepted: split the batch",
                req.mutations.len(),
                self.limits.max_batch
            )));
        }
        let mutations = req
            .mutations
            .into_iter()
            .map(convert::mutation_from_wire)
            .collect::<Result<Vec<Mutation>, _>>()
            .map_err(invalid)?;
        let acked = req.acknowledged_through;
        let count = mutations.len();
        // The turn is held until the store's work ends, even if this call
        // is dropped (past its deadline) while that work still runs.
        let turn = Arc::clone(&self.pushes)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        let results = blocking(&self.app, move |app| {
            let _turn = turn;
            app.push(&user, device, &mutations, acked)
        })
        .await?;
        tracing::info!(%device, mutations = count, "push committed");
        Ok(Response::new(PushReply {
            results: results.iter().map(convert::result_to_wire).collect(),
            server_hlc: server_hlc().0,
        }))
    }

    type PullStream = PullPages;

    async fn pull(
        &self,
        request: Request<PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        check_schema(req.schema_version)?;
        device_of(&req.device_id)?;
        let page_size = self.app.page_size(req.page_size);
        let slot = self.pull_slot(&user.id).await?;
        // Fail before streaming if the cursor is unusable.
        let cursor = req.cursor;
        let reader = user.clone();
        let first = match self.app.nothing_new(cursor) {
            Some(page) => page,
            None => blocking(&self.app, move |app| app.pull(&reader, cursor, page_size)).await?,
        };
        if first.caught_up {
            let pages = Pages::Last(Some(page_to_wire(&first)));
            return Ok(Response::new(PullPages { pages, _slot: slot }));
        }
        let (tx, rx) = mpsc::channel(self.limits.pull_buffer);
        let app = Arc::clone(&self.app);
        tokio::spawn(async move {
            let mut page = first;
            loop {
                let cursor = page.cursor;
                let done = page.caught_up;
                let wire = page_to_wire(&page);
                if tx.send(Ok(wire)).await.is_err() || done {
                    // Sent the last page, or the device went away.
                    return;
                }
                let reader = user.clone();
                page = match blocking(&app, move |app| app.pull(&reader, cursor, page_size)).await {
                    Ok(p) => p,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
            }
        });
        let pages = Pages::Read(ReceiverStream::new(rx));
        Ok(Response::new(PullPages { pages, _slot: slot }))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusReply>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let device = (!req.device_id.is_empty()).then(|| device_of(&req.device_id)).transpose()?;
        let asker = user.clone();
        let status = blocking(&self.app, move |app| app.status(&asker, device)).await?;
        Ok(Response::new(StatusReply {
            schema_version: SCHEMA_VERSION,
            server_time_ms: now_ms(),
            head_seq: status.head,
            last_mutation_id: status.last_mutation_id,
            server_version: env!("CARGO_PKG_VERSION").into(),
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            role: convert::role_to_wire(user.role) as i32,
            areas: user.areas,
        }))
    }
}
