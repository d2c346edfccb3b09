//! The gRPC edge: the `Sync`, `Review`, `Report`, `Admin` and `Enroll`
//! services of `fieldsync.v1`. Each checks its request, converts it to domain types, runs
//! the store on the blocking pool and converts back. Callers are known by
//! their bearer token ([`authenticate`]); store errors become `tonic::Status`
//! here and nowhere else.

mod admin;
mod edge;
mod enroll;
mod report;
mod review;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldsync::access::User;
use tonic::{Request, Status};

use crate::db::{self, now_ms, Store};

pub use admin::{AdminService, AppUrl, WebOrigin};
pub use edge::{too_many_mutations, Batched, Connection, Edge};
pub use enroll::EnrollService;
pub use report::ReportService;
pub use review::ReviewService;
pub use sync::{Limits, SyncService};

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller(pub User);

/// Per-user token buckets: each call takes a token; tokens come back at
/// `rate` per second up to `burst`.
struct Buckets {
    rate: f64,
    burst: f64,
    users: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Buckets {
    fn take(&self, user: &str) -> bool {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        // Forget users whose bucket has long been full again (bounded memory).
        if users.len() > 10_000 {
            let full = Duration::from_secs_f64(self.burst / self.rate.max(f64::MIN_POSITIVE));
            users.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = users.entry(user.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// An interceptor that turns `authorization: Bearer <token>` into a
/// [`Caller`], or refuses the call; it also holds each user to
/// `limits.calls_per_second`. A token seen before is looked up in memory;
/// a new one costs two record reads.
pub fn authenticate(
    store: Arc<Store>,
    limits: &Limits,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    let buckets = Arc::new(Buckets {
        rate: f64::from(limits.calls_per_second),
        burst: f64::from(limits.call_burst.max(1)),
        users: Mutex::new(HashMap::new()),
    });
    let per_second = limits.calls_per_second;
    move |mut request: Request<()>| {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated(
                "no token: send `authorization: Bearer <token>` (ask an admin for a token)",
            )
        })?;
        // The scheme name is case-insensitive (RFC 7235).
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header must be `Bearer <token>`")
            })?;
        let user = store.authenticate(token, now_ms()).map_err(status_of)?;
        if !buckets.take(&user.id) {
            return Err(Status::resource_exhausted(format!(
                "too many calls from {}: at most {per_second} a second on average; slow down and \
                 retry",
                user.id
            )));
        }
        request.extensions_mut().insert(Caller(user));
        Ok(request)
    }
}

/// The caller the interceptor put on the request.
fn caller<T>(request: &Request<T>) -> Result<User, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

pub(crate) fn status_of(e: db::Error) -> Status {
    let reused = match e {
        db::Error::Reused { id, last } => Some((id, last)),
        _ => None,
    };
    let mut status = clipped(status_of_unclipped(e));
    // The tablet renumbers its unsent edits from what these say.
    if let Some((id, last)) = reused {
        let metadata = status.metadata_mut();
        metadata.insert(fieldsync_proto::REUSED_ID_KEY, id.into());
        metadata.insert(fieldsync_proto::LAST_MUTATION_ID_KEY, last.into());
    }
    status
}

fn status_of_unclipped(e: db::Error) -> Status {
    match e {
        db::Error::Invalid(m) => Status::invalid_argument(m),
        db::Error::OutOfSequence(m) => Status::failed_precondition(m),
        e @ db::Error::Reused { .. } => Status::failed_precondition(e.to_string()),
        db::Error::NotFound(m) => Status::not_found(m),
        db::Error::Unauthenticated(m) => Status::unauthenticated(m),
        db::Error::Denied(m) => Status::permission_denied(m),
        db::Error::Exhausted(m) => Status::resource_exhausted(m),
        db::Error::Unwritable(m) => Status::unavailable(m),
        db::Error::Storage(e) => {
            tracing::error!(error = %e, "storage failure");
            Status::unavailable(format!("the server could not reach its store ({e}); try again"))
        }
        db::Error::Corrupt { .. } => {
            tracing::error!(error = %e, "corrupt store");
            Status::internal(e.to_string())
        }
    }
}

fn invalid(e: fieldsync::Error) -> Status {
    clipped(Status::invalid_argument(e.to_string()))
}

/// Longest status message sent: messages quote what was wrong, and a status
/// travels in an HTTP/2 trailer that cannot be large.
const MAX_STATUS_CHARS: usize = 1_000;

/// The status with its message cut to [`MAX_STATUS_CHARS`].
fn clipped(status: Status) -> Status {
    let message = status.message();
    match message.char_indices().nth(MAX_STATUS_CHARS) {
        Some((i, _)) => Status::new(status.code(), format!("{}…", &message[..i])),
        None => status,
    }
}

/// Runs blocking store work off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> db::Result<T> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(status_of)
}

/// [`blocking`] for a read: its answer leaves only once everything it may
/// have seen is on disk ([`Store::settle`]), so no caller is shown a write
/// that a failed flush or a crash could still undo.
async fn read<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> db::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let store = Arc::clone(store);
    blocking(move || {
        let answer = work(&store)?;
        store.settle()?;
        Ok(answer)
    })
    .await
}

/// Parses an optional filter: empty means none.
fn optional<T>(
    text: &str,
    parse: impl FnOnce(&str) -> fieldsync::Result<T>,
) -> Result<Option<T>, Status> {
    match text.trim() {
        "" => Ok(None),
        t => parse(t).map(Some).map_err(invalid),
    }
}
