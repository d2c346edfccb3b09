//! The client's error type: each variant says what the surveyor can do.

/// Errors of the tablet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The edit or command is wrong; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist in the catalogue.
    #[error("{0}")]
    NotFound(String),
    #[error(
        "this tablet is not set up yet: run `fieldsync init --server URL --author NAME` first"
    )]
    NotInitialised,
    /// The server could not be reached or did not answer in time; retrying may help.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered with an error that retrying will not fix.
    #[error("the server refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] fieldsync_store::Error),
    #[error("the tablet's store is damaged: {0}")]
    Corrupt(String),
}

impl Error {
    /// Worth trying again after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unreachable(_))
    }
}

impl From<fieldsync::Error> for Error {
    fn from(e: fieldsync::Error) -> Self {
        match e {
            fieldsync::Error::Invalid(m) => Error::Invalid(m),
            fieldsync::Error::NotFound(m) => Error::NotFound(m),
            e @ fieldsync::Error::TooLong { .. } => Error::Invalid(e.to_string()),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        match s.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::ResourceExhausted => {
                Error::Unreachable(format!("{} ({:?})", s.message(), s.code()))
            }
            Code::Unauthenticated => Error::Refused(format!(
                "{} — check the token (`fieldsync init --token`, or FIELDSYNC_TOKEN)",
                s.message()
            )),
            _ => Error::Refused(format!("{} ({:?})", s.message(), s.code())),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
