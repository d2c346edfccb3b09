//! The core's error type. Every variant carries a message a person can act on.

/// Errors of the domain core: all of them are about the input, since the core
/// does no I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The input names something that does not exist (village, indicator...).
    #[error("{0}")]
    NotFound(String),
    /// A text is longer than its limit allows: `what` names the field (a
    /// review reason, a user's name...), so every edge can say which.
    #[error("{what} is {chars} characters long; at most {max} are allowed: shorten it")]
    TooLong { what: String, max: usize, chars: usize },
    /// A refusal an edge says in the user's language (see [`Reason`]).
    #[error("{0}")]
    Refused(Reason),
}

use crate::reason::Reason;

pub type Result<T, E = Error> = std::result::Result<T, E>;
