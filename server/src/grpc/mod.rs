//! The gRPC edge: the `Sync`, `Review`, `Report`, `Admin` and `Enroll`
//! services of `fieldsync.v1`, thin adapters over [`App`]. Each decodes its
//! request into domain types (`fieldsync_proto::convert`), runs the use case
//! on the blocking pool and encodes the answer; what stays here is the
//! wire's own: schema versions, message and batch sizes, streaming with its
//! back-pressure, pull places, metadata. Callers are known by their bearer
//! token ([`authenticate`]); an [`app::Error`] becomes a `tonic::Status`
//! here ([`status_of`]) and nowhere else.

mod admin;
mod edge;
mod enroll;
mod report;
mod review;
mod sync;

use std::sync::Arc;

use tonic::{Code, Request, Status};

use crate::app::{self, App};

pub use crate::app::Caller;
pub use admin::AdminService;
pub use edge::{too_many_mutations, Batched, Connection, Edge};
pub use enroll::EnrollService;
pub use report::ReportService;
pub use review::ReviewService;
pub use sync::{Limits, SyncService};

/// An interceptor that turns `authorization: Bearer <token>` into a
/// [`Caller`], or refuses the call, as [`App::sign_in_bearer`] decides
/// (the token, disabled users, the user's call rate).
pub fn authenticate(app: Arc<App>) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        // A header that is not text is no `Bearer <token>` either.
        let header = request.metadata().get("authorization").map(|h| h.to_str().unwrap_or(""));
        let user = app.sign_in_bearer(header).map_err(status_of)?;
        request.extensions_mut().insert(Caller(user));
        Ok(request)
    }
}

/// The caller the interceptor put on the request.
fn caller<T>(request: &Request<T>) -> Result<fieldsync::access::User, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

/// The gRPC status of a refused use case: one code per kind.
pub(crate) fn status_of(e: app::Error) -> Status {
    let code = match e.kind {
        app::Kind::Invalid => Code::InvalidArgument,
        app::Kind::OutOfSequence => Code::FailedPrecondition,
        app::Kind::NotFound => Code::NotFound,
        app::Kind::Unauthenticated => Code::Unauthenticated,
        app::Kind::Denied => Code::PermissionDenied,
        app::Kind::Exhausted => Code::ResourceExhausted,
        app::Kind::Unavailable => Code::Unavailable,
        app::Kind::Internal => Code::Internal,
    };
    let mut status = clipped(Status::new(code, e.message));
    // The tablet renumbers its unsent edits from what these say.
    if let Some((id, last)) = e.reused {
        let metadata = status.metadata_mut();
        metadata.insert(fieldsync_proto::REUSED_ID_KEY, id.into());
        metadata.insert(fieldsync_proto::LAST_MUTATION_ID_KEY, last.into());
    }
    status
}

fn invalid(e: fieldsync::Error) -> Status {
    clipped(Status::invalid_argument(e.to_string()))
}

/// The status with its message cut to [`app::MAX_MESSAGE_CHARS`].
fn clipped(status: Status) -> Status {
    let message = status.message();
    match message.char_indices().nth(app::MAX_MESSAGE_CHARS) {
        Some((i, _)) => Status::new(status.code(), format!("{}…", &message[..i])),
        None => status,
    }
}

/// Runs a use case on the blocking pool (it reads or writes the store).
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    work: impl FnOnce(&App) -> app::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let app = Arc::clone(app);
    tokio::task::spawn_blocking(move || work(&app))
        .await
        .map_err(|e| Status::internal(format!("store task failed: {e}")))?
        .map_err(status_of)
}
