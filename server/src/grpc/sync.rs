//! The `fieldsync.v1.Sync` service: what tablets call.

use std::sync::Arc;

use fieldsync::sync::Mutation;
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
use crate::app::{self, now_ms, server_hlc, App};

/// Bounds on what one request may ask of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Mutations per push.
    pub max_batch: usize,
    /// Changes per pull page.
    pub max_page: usize,
    /// Pages buffered for a slow reader before the server waits for it.
    pub pull_buffer: usize,
    /// Calls per second each user may make, on average...
    pub calls_per_second: u32,
    /// ...and in a burst.
    pub call_burst: u32,
    /// Open connections; further ones are closed as they arrive.
    pub max_connections: usize,
    /// Open gRPC connections from one IP address (a commune office's
    /// tablets may share one); further ones from it are closed as they
    /// arrive, so one address cannot fill `max_connections`. The machine's
    /// own address (a reverse proxy on it) is not held to this.
    pub connections_per_ip: usize,
    /// Longest a new connection may take, from being accepted, to begin its
    /// first call (TLS handshake, HTTP/2 preface and request head included);
    /// it is closed after that.
    pub handshake_timeout: std::time::Duration,
    /// Open web connections from one IP address (the web listener holds at
    /// most [`MAX_CONNECTIONS`](crate::web::MAX_CONNECTIONS)).
    pub web_connections_per_ip: usize,
    /// Longest a browser may take to send a whole request head (and, on a
    /// kept-alive connection, to begin the next one); bytes sent slowly do
    /// not extend it.
    pub header_read_timeout: std::time::Duration,
    /// Longest a call may take to produce its reply (DEADLINE_EXCEEDED after).
    pub request_timeout: std::time::Duration,
    /// Pull streams open at once, server-wide: a pull beyond them waits up
    /// to `pull_queue_wait` for one to end, then gets RESOURCE_EXHAUSTED.
    /// Each open pull holds at most `pull_buffer` + 1 pages of at most
    /// [`PAGE_BYTES`](crate::db::PAGE_BYTES), so this bounds the memory
    /// that readers too slow (or unwilling) to read can pin.
    pub max_pulls: usize,
    pub pull_queue_wait: std::time::Duration,
    /// Pull streams one user may have open at once.
    pub pulls_per_user: usize,
    /// Pushes handed to the store at once; later ones wait their turn, in
    /// arrival order, without holding a thread, so a burst of pushes never
    /// fills the blocking pool ahead of the pulls and reads queued behind it.
    pub pushes_in_flight: usize,
    /// Writes are refused with RESOURCE_EXHAUSTED while the disk of the
    /// store has less than this free...
    pub min_free_bytes: u64,
    /// ...or less than this share of the disk, in percent (admins' writes
    /// excepted, so that an admin can still stop what fills it).
    pub min_free_percent: f64,
    /// Bytes of records each user's writes may add per day (UTC), far
    /// above a surveyor's real day, so that one token cannot fill the
    /// disk; 0 means no limit.
    pub user_bytes_per_day: u64,
    /// How often the server checks that its store can write (health says
    /// NOT_SERVING while it cannot) and, after a failed write, tries to
    /// reopen it.
    pub disk_check_interval: std::time::Duration,
    /// Wrong enrollment codes one address may try a minute (`Enroll.Redeem`);
    /// beyond that its redeems are refused RESOURCE_EXHAUSTED until the
    /// minute has given some back.
    pub enroll_failures_per_minute: u32,
    /// The server's address as surveyors' devices reach it
    /// (`--public-url`, e.g. `https://ntm.example.vn`): the app's URL in
    /// enrollment codes is this with `/app/`. Unset: the web address the
    /// caller used (web pages) or the web listener's (gRPC).
    pub public_url: Option<String>,
}

impl Limits {
    /// The limits the store holds every write to.
    pub fn write_limits(&self) -> crate::db::WriteLimits {
        crate::db::WriteLimits {
            min_free_bytes: self.min_free_bytes,
            min_free_percent: self.min_free_percent,
            user_bytes_per_day: self.user_bytes_per_day,
        }
    }

    /// What the use cases are held to; `app_url` is where enrollment codes
    /// send devices.
    pub fn app_settings(&self, app_url: app::AppUrl) -> app::Settings {
        app::Settings {
            calls_per_second: self.calls_per_second,
            call_burst: self.call_burst,
            max_page: self.max_page,
            app_url,
            enroll_failures_per_minute: self.enroll_failures_per_minute,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 1_000,
            max_page: 500,
            pull_buffer: 2,
            calls_per_second: 50,
            call_burst: 1_000,
            max_connections: 10_000,
            connections_per_ip: 500,
            handshake_timeout: crate::HANDSHAKE_TIMEOUT,
            web_connections_per_ip: 32,
            header_read_timeout: crate::web::HEADER_READ_TIMEOUT,
            request_timeout: crate::REQUEST_TIMEOUT,
            max_pulls: 256,
            pull_queue_wait: std::time::Duration::from_secs(10),
            pulls_per_user: 8,
            pushes_in_flight: 8,
            min_free_bytes: 256 * 1024 * 1024,
            min_free_percent: 2.0,
            user_bytes_per_day: 64 * 1024 * 1024,
            disk_check_interval: std::time::Duration::from_secs(2),
            enroll_failures_per_minute: 10,
            public_url: None,
        }
    }
}

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
    pages: ReceiverStream<Result<PullPage, Status>>,
    _slot: PullSlot,
}

impl tokio_stream::Stream for PullPages {
    type Item = Result<PullPage, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.pages).poll_next(cx)
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
            indicators: found.indicators.iter().map(convert::indicator_to_wire).collect(),
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
        let first = blocking(&self.app, move |app| app.pull(&reader, cursor, page_size)).await?;
        let (tx, rx) = mpsc::channel(self.limits.pull_buffer);
        let app = Arc::clone(&self.app);
        tokio::spawn(async move {
            let mut page = first;
            loop {
                let cursor = page.cursor;
                let done = page.caught_up;
                let wire = PullPage {
                    changes: page
                        .changes
                        .iter()
                        .map(|(seq, c)| convert::change_to_wire(*seq, c))
                        .collect(),
                    cursor: page.cursor,
                    caught_up: page.caught_up,
                    server_hlc: server_hlc().0,
                };
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
        Ok(Response::new(PullPages { pages: ReceiverStream::new(rx), _slot: slot }))
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
