//! Refusals a person meets, as data: what was refused and the parameters a
//! sentence about it needs. The English sentence is the [`Display`]; an
//! edge that speaks another language (the Vietnamese pages) renders its own
//! sentence, and its own links, from the same parameters.
//!
//! [`Display`]: std::fmt::Display

use crate::review::Verdict;
use crate::typed::Refusal;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Approving (or, with `accept`, accepting) a report whose conflicts on
    /// `fields` are still open.
    OpenConflicts { village: String, period: String, fields: Vec<String>, accept: bool },
    /// A value typed for `field` that it cannot take.
    BadValue { field: String, typed: String, refusal: Refusal },
    /// Settling a conflict with neither a kept value nor a typed one.
    NoChoice,
    /// Settling a conflict with a kept value and a typed one at once.
    ChoiceAndValue,
    /// A period that cannot be read ("2022", "2026-Q3" are periods).
    BadPeriod { typed: String },
    /// Returning or rejecting a report without saying why.
    NeedsReason { verdict: Verdict },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::OpenConflicts { village, period, fields, accept } => write!(
                f,
                "{village} ({period}) has {} open conflict(s): settle them ({}) before it can be \
                 {}",
                fields.len(),
                fields.join(", "),
                if *accept { "accepted" } else { "approved" }
            ),
            Reason::BadValue { field, typed, refusal } => write!(f, "{field} {typed:?}: {refusal}"),
            Reason::NoChoice => {
                write!(f, "choose one of the competing values, or enter the right value")
            }
            Reason::ChoiceAndValue => write!(
                f,
                "a value was both chosen and typed: keep one of the competing values or type \
                 the right one, not both"
            ),
            Reason::NeedsReason { verdict } => write!(
                f,
                "{}ing needs a reason the surveyor can act on",
                verdict.as_str().trim_end_matches('e')
            ),
            Reason::BadPeriod { typed } => write!(
                f,
                "unknown period {typed:?}: write a year (2022), a quarter (2022-Q3) or a month \
                 (2022-07), years {}-{}",
                crate::model::YEARS.start(),
                crate::model::YEARS.end()
            ),
        }
    }
}
