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
        "this tablet is not set up yet: run `fieldsync init --server URL --token TOKEN` first \
         (an admin gives the token: `fieldsync admin token issue`)"
    )]
    NotInitialised,
    /// The server could not be reached or did not answer in time; retrying may help.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered with an error that retrying will not fix.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The server committed a different mutation under an id this tablet
    /// used: its store was restored from an older copy. The unsent edits
    /// from `id` on belong after the server's `last`.
    #[error("the server refused: {message}")]
    Reused { id: u64, last: u64, message: String },
    /// A call of the review, admin or report services ([`crate::api`]) was
    /// refused: the server's words, which are written for people, and its
    /// status code, so that each caller can add the hint that fits.
    #[error("the server refused: {message} ({code:?})")]
    Status { code: tonic::Code, message: String },
    /// The server's answer to a [`crate::api`] call does not make sense to
    /// this client; the words say what was wrong.
    #[error("{0}")]
    Unreadable(String),
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
            fieldsync::Error::Refused(r) => Error::Invalid(r.to_string()),
        }
    }
}

impl From<fieldsync_export::Error> for Error {
    fn from(e: fieldsync_export::Error) -> Self {
        match e {
            fieldsync_export::Error::Row(e) => e.into(),
            e @ fieldsync_export::Error::Write(_) => Error::Invalid(e.to_string()),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let number = |key: &str| {
            s.metadata().get(key).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
        };
        if s.code() == Code::FailedPrecondition {
            let id = number(fieldsync_proto::REUSED_ID_KEY);
            if let (Some(id), Some(last)) = (id, number(fieldsync_proto::LAST_MUTATION_ID_KEY)) {
                return Error::Reused { id, last, message: s.message().to_owned() };
            }
        }
        // A web page where a gRPC answer was expected: '<' (60) is read as
        // the first byte of a gRPC frame.
        let mut causes = String::new();
        let mut source = std::error::Error::source(&s);
        while let Some(e) = source {
            causes.push_str(&format!(": {e}"));
            source = e.source();
        }
        let said = format!("{}{causes}", s.message());
        let html = said.contains("compression flag: 60") || said.contains("text/html");
        match s.code() {
            _ if html => Error::Refused(
                "this address is the web pages' port: tablets sync over the gRPC port (50051 by \
                 default), e.g. `--server http://HOST:50051`"
                    .into(),
            ),
            Code::Cancelled | Code::DeadlineExceeded if s.message() == "Timeout expired" => {
                Error::Unreachable("no answer in time".into())
            }
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::ResourceExhausted => Error::Unreachable(format!("{said} ({:?})", s.code())),
            Code::Unauthenticated => Error::Refused(format!(
                "{} — check the token: an admin issues a new one (`fieldsync admin token issue`), \
                 and `fieldsync login --token TOKEN` gives it to this tablet, keeping its edits",
                s.message()
            )),
            _ => Error::Refused(format!("{} ({:?})", s.message(), s.code())),
        }
    }
}

impl Error {
    /// A refusal of a [`crate::api`] call, kept with its status code.
    pub fn status(s: tonic::Status) -> Error {
        Error::Status { code: s.code(), message: s.message().to_owned() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
