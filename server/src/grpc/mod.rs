//! The gRPC edge: the `Sync`, `Review`, `Report` and `Admin` services of
//! `fieldsync.v1`. Each checks its request, converts it to domain types, runs
//! the store on the blocking pool and converts back. Callers are known by
//! their bearer token ([`authenticate`]); store errors become `tonic::Status`
//! here and nowhere else.

mod admin;
mod report;
mod review;
mod sync;

use std::sync::Arc;

use fieldsync::access::User;
use tonic::{Request, Status};

use crate::store::{self, now_ms, Store};

pub use admin::AdminService;
pub use report::ReportService;
pub use review::ReviewService;
pub use sync::{Limits, SyncService};

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller(pub User);

/// An interceptor that turns `authorization: Bearer <token>` into a
/// [`Caller`], or refuses the call. Token lookups are single sled reads.
pub fn authenticate(
    store: Arc<Store>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
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

fn status_of(e: store::Error) -> Status {
    match e {
        store::Error::Invalid(m) => Status::invalid_argument(m),
        store::Error::OutOfSequence(m) => Status::failed_precondition(m),
        store::Error::NotFound(m) => Status::not_found(m),
        store::Error::Unauthenticated(m) => Status::unauthenticated(m),
        store::Error::Denied(m) => Status::permission_denied(m),
        store::Error::Storage(e) => {
            tracing::error!(error = %e, "storage failure");
            Status::unavailable(format!("the server could not reach its store ({e}); try again"))
        }
        store::Error::Corrupt { .. } => {
            tracing::error!(error = %e, "corrupt store");
            Status::internal(e.to_string())
        }
    }
}

fn invalid(e: fieldsync::Error) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Runs blocking store work off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> store::Result<T> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(status_of)
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
