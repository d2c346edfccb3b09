//! The review workflow of a submission, as the province works: the commune
//! approves a village's report, the district accepts it (final). Rejecting or
//! returning needs a reason; a surveyor's edit of a rejected or returned
//! report submits it again; approved and accepted reports are locked.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Level;

/// Where a submission stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewState {
    Submitted,
    /// Approved by the commune; waits for the district.
    Approved,
    /// Accepted by the district: final.
    Accepted,
    Rejected,
    /// Returned to the surveyor for changes.
    Returned,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Submitted => "submitted",
            ReviewState::Approved => "approved",
            ReviewState::Accepted => "accepted",
            ReviewState::Rejected => "rejected",
            ReviewState::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Result<ReviewState> {
        match s {
            "submitted" => Ok(ReviewState::Submitted),
            "approved" => Ok(ReviewState::Approved),
            "accepted" => Ok(ReviewState::Accepted),
            "rejected" => Ok(ReviewState::Rejected),
            "returned" => Ok(ReviewState::Returned),
            _ => Err(Error::Invalid(format!(
                "unknown state {s:?}: submitted, approved, accepted, rejected or returned"
            ))),
        }
    }

    /// Locked reports refuse edits from tablets until reopened.
    pub fn is_locked(self) -> bool {
        matches!(self, ReviewState::Approved | ReviewState::Accepted)
    }
}

impl fmt::Display for ReviewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A supervisor's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    Approve,
    Accept,
    Reject,
    Return,
    Reopen,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
            Verdict::Return => "return",
            Verdict::Reopen => "reopen",
        }
    }

    /// Whether a reason must be given.
    pub fn needs_reason(self) -> bool {
        matches!(self, Verdict::Reject | Verdict::Return)
    }
}

/// The state after `verdict`, given by a reviewer at `level` (the level of
/// their area that covers the village). `None`: already there, nothing to do.
pub fn transition(
    state: ReviewState,
    verdict: Verdict,
    level: Level,
    reason: &str,
) -> Result<Option<ReviewState>> {
    use ReviewState::*;
    use Verdict::*;
    if verdict.needs_reason() && reason.trim().is_empty() {
        return Err(Error::Invalid(format!(
            "{}ing needs a reason the surveyor can act on",
            verdict.as_str().trim_end_matches('e')
        )));
    }
    crate::limits::check_text("the reason", reason)?;
    if level == Level::Village {
        return Err(Error::Invalid("reviews are made at commune level and above".into()));
    }
    let commune = level == Level::Commune;
    let refuse = |why: &str| Err(Error::Invalid(why.to_owned()));
    let next = match (verdict, state) {
        (Approve, _) if !commune => {
            return refuse("approval is the commune's step; the district accepts after it")
        }
        (Approve, Submitted) => Approved,
        (Approve, Approved) => return Ok(None),
        (Approve, Accepted) => return refuse("already accepted by the district"),
        (Approve, Rejected | Returned) => {
            return refuse("the surveyor must resubmit before it can be approved")
        }
        (Accept, _) if commune => {
            return refuse("accepting is the district's step; the commune approves")
        }
        (Accept, Approved) => Accepted,
        (Accept, Accepted) => return Ok(None),
        (Accept, _) => return refuse("the commune must approve it before the district accepts"),
        (Reject | Return, Accepted) if commune => {
            return refuse("accepted by the district: only the district can send it back")
        }
        (Reject | Return, Accepted) => return refuse("accepted: reopen it first"),
        (Reject, Submitted | Approved | Returned | Rejected) => Rejected,
        (Return, Submitted | Approved | Rejected | Returned) => Returned,
        (Reopen, Accepted) if commune => {
            return refuse("accepted by the district: only the district can reopen it")
        }
        (Reopen, Approved | Accepted) => Submitted,
        (Reopen, _) => return refuse("only an approved or accepted report can be reopened"),
    };
    Ok(Some(next))
}

/// The state after a surveyor's edit is accepted, or why it is refused.
pub fn after_edit(state: ReviewState) -> Result<ReviewState> {
    match state {
        ReviewState::Approved => Err(Error::Invalid(
            "this report is approved and locked; ask the supervisor to reopen it".into(),
        )),
        ReviewState::Accepted => Err(Error::Invalid(
            "this report is accepted by the district and locked; ask the district to reopen it"
                .into(),
        )),
        _ => Ok(ReviewState::Submitted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReviewState::*;
    use Verdict::*;

    const C: Level = Level::Commune;
    const D: Level = Level::District;

    #[test]
    fn commune_approves_then_district_accepts() {
        assert_eq!(transition(Submitted, Approve, C, "").unwrap(), Some(Approved));
        assert_eq!(transition(Approved, Accept, D, "").unwrap(), Some(Accepted));
        assert_eq!(transition(Approved, Approve, C, "").unwrap(), None);
    }

    #[test]
    fn levels_keep_their_order() {
        assert!(transition(Submitted, Accept, D, "").is_err(), "no accept before approval");
        assert!(transition(Submitted, Approve, D, "").is_err(), "approval is the commune's");
        assert!(transition(Approved, Accept, C, "").is_err(), "accepting is the district's");
        assert!(transition(Accepted, Reopen, C, "").is_err(), "lower cannot reopen higher");
        assert_eq!(transition(Accepted, Reopen, D, "").unwrap(), Some(Submitted));
        assert_eq!(transition(Approved, Reopen, C, "").unwrap(), Some(Submitted));
    }

    #[test]
    fn sending_back_needs_a_reason() {
        let err = transition(Submitted, Reject, C, " ").unwrap_err();
        assert!(err.to_string().contains("needs a reason"), "{err}");
        assert_eq!(transition(Submitted, Reject, C, "double-counted").unwrap(), Some(Rejected));
        assert_eq!(transition(Approved, Return, D, "add GPS").unwrap(), Some(Returned));
    }

    #[test]
    fn a_reason_is_at_most_2000_characters() {
        let long = "x".repeat(2_001);
        let err = transition(Submitted, Reject, C, &long).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the reason is 2001 characters long; at most 2000 are allowed: shorten it"
        );
        let fits = "x".repeat(2_000);
        assert_eq!(transition(Submitted, Reject, C, &fits).unwrap(), Some(Rejected));
    }

    #[test]
    fn edits_resubmit_or_are_locked_out() {
        assert_eq!(after_edit(Rejected).unwrap(), Submitted);
        assert_eq!(after_edit(Returned).unwrap(), Submitted);
        assert_eq!(after_edit(Submitted).unwrap(), Submitted);
        assert!(after_edit(Approved).unwrap_err().to_string().contains("reopen"));
        assert!(after_edit(Accepted).is_err());
    }
}
