//! The one error of the use cases: a kind (what an adapter turns into its
//! own status: one gRPC code each, one HTTP status each) and a message a
//! person can act on.

use crate::db;

/// Longest message kept: messages quote what was wrong, and a gRPC status
/// travels in an HTTP/2 trailer that cannot be large.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// What went wrong, as far as a caller is concerned. Each kind is one gRPC
/// status code (named beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Malformed input or a refused transition (INVALID_ARGUMENT).
    Invalid,
    /// The request does not follow from what the server has: a gap in
    /// mutation ids, a reused id, a cursor from another store, a schema
    /// from the future (FAILED_PRECONDITION).
    OutOfSequence,
    /// An unknown submission, user, code... (NOT_FOUND).
    NotFound,
    /// No valid token (UNAUTHENTICATED).
    Unauthenticated,
    /// Outside the caller's role or areas (PERMISSION_DENIED).
    Denied,
    /// Past a limit: a call rate, the disk's reserve, a daily budget
    /// (RESOURCE_EXHAUSTED).
    Exhausted,
    /// The store cannot be reached or written now (UNAVAILABLE).
    Unavailable,
    /// A damaged store or a failed task (INTERNAL).
    Internal,
}

/// A refused or failed use case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// A tablet sent a different mutation under id `.0`; the server has its
    /// mutations up to `.1` (the tablet renumbers its unsent edits from it).
    pub reused: Option<(u64, u64)>,
    /// What was refused, for the pages to say in the user's language.
    pub reason: Option<Box<fieldsync::Reason>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`, its message cut to [`MAX_MESSAGE_CHARS`].
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        let mut message = message.into();
        if let Some((i, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message.truncate(i);
            message.push('…');
        }
        Error { kind, message, reused: None, reason: None }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Kind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(Kind::NotFound, message)
    }

    pub fn denied(message: impl Into<String>) -> Error {
        Error::new(Kind::Denied, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Error {
        Error::new(Kind::Unauthenticated, message)
    }

    pub fn exhausted(message: impl Into<String>) -> Error {
        Error::new(Kind::Exhausted, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(Kind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Kind::Internal, message)
    }

    /// Input the core refused (a bad period, amount, id...): always
    /// invalid input, whatever the core's own kind.
    pub fn from_core(e: fieldsync::Error) -> Error {
        match e {
            fieldsync::Error::Refused(r) => Error::refused(r),
            e => Error::invalid(e.to_string()),
        }
    }

    /// Invalid input, with the reason the pages word.
    pub fn refused(reason: fieldsync::Reason) -> Error {
        Error::invalid(reason.to_string()).with_reason(reason)
    }

    fn with_reason(mut self, reason: fieldsync::Reason) -> Error {
        self.reason = Some(Box::new(reason));
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<db::Error> for Error {
    fn from(e: db::Error) -> Error {
        match e {
            db::Error::Invalid(m) => Error::invalid(m),
            db::Error::OutOfSequence(m) => Error::new(Kind::OutOfSequence, m),
            e @ db::Error::Reused { id, last } => {
                Error { reused: Some((id, last)), ..Error::new(Kind::OutOfSequence, e.to_string()) }
            }
            db::Error::NotFound(m) => Error::not_found(m),
            db::Error::Refused(r) => Error::refused(r),
            db::Error::Unauthenticated(m) => Error::unauthenticated(m),
            db::Error::Denied(m) => Error::denied(m),
            db::Error::Exhausted(m) => Error::exhausted(m),
            db::Error::Unwritable(m) => Error::unavailable(m),
            db::Error::Storage(e) => {
                tracing::error!(error = %e, "storage failure");
                Error::unavailable(format!("the server could not reach its store ({e}); try again"))
            }
            e @ db::Error::Corrupt { .. } => {
                tracing::error!(error = %e, "corrupt store");
                Error::internal(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_clipped_and_reuse_keeps_its_numbers() {
        let e = Error::invalid("x".repeat(5_000));
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(e.message.ends_with('…'));
        let e = Error::from(db::Error::Reused { id: 7, last: 5 });
        assert_eq!((e.kind, e.reused), (Kind::OutOfSequence, Some((7, 5))));
    }
}
