//! The review workflow of a submission, as the province works: the level
//! above the village approves a village's report, the level above that
//! accepts it (final) — the commune and the district before 1 July 2025,
//! the commune and the province since (see [`Chain`]). Rejecting or
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

/// Who reviews a village's reports: the level that approves and the one
/// that accepts. By default the tree says ([`Chain::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub approves: Level,
    pub accepts: Level,
}

impl Chain {
    /// The chain a village's lineage gives: its commune approves, and the
    /// unit its commune hangs from (a district, or the province in a tree
    /// without districts) accepts. `lineage` is the village and the units
    /// above it, bottom up.
    pub fn of<'a>(mut lineage: impl Iterator<Item = &'a crate::model::OrgUnit>) -> Chain {
        lineage.next(); // the village
        let approves = lineage.next().map_or(Level::Commune, |u| u.level);
        let accepts = lineage.next().map_or(Level::District, |u| u.level);
        Chain { approves, accepts }
    }

    /// A chain a deployment may set: `approves` below `accepts`, neither
    /// the village level.
    pub fn new(approves: Level, accepts: Level) -> Result<Chain> {
        if approves == Level::Village || approves <= accepts {
            return Err(Error::Invalid(format!(
                "a review chain approves at one level and accepts at a higher one (e.g. commune, \
                 then province), not {} then {}",
                approves.as_str(),
                accepts.as_str()
            )));
        }
        Ok(Chain { approves, accepts })
    }

    /// The chain of the tree before 1 July 2025: commune, then district.
    pub const FOUR_LEVELS: Chain = Chain { approves: Level::Commune, accepts: Level::District };
}

/// The state after `verdict`, given by a reviewer at `level` (the level of
/// their area that covers the village) under `chain`. `None`: already
/// there, nothing to do.
pub fn transition(
    state: ReviewState,
    verdict: Verdict,
    level: Level,
    chain: Chain,
    reason: &str,
) -> Result<Option<ReviewState>> {
    use ReviewState::*;
    use Verdict::*;
    if verdict.needs_reason() && reason.trim().is_empty() {
        return Err(Error::Refused(crate::Reason::NeedsReason { verdict }));
    }
    crate::limits::check_text("the reason", reason)?;
    let (a, b) = (chain.approves.as_str(), chain.accepts.as_str());
    if level > chain.approves {
        return Err(Error::Invalid(format!("reviews are made at {a} level and above")));
    }
    // The approving level, and any between it and the accepting one.
    let commune = level > chain.accepts;
    let refuse = |why: String| Err(Error::Invalid(why));
    let next = match (verdict, state) {
        (Approve, _) if !commune => {
            return refuse(format!("approval is the {a}'s step; the {b} accepts after it"))
        }
        (Approve, Submitted) => Approved,
        (Approve, Approved) => return Ok(None),
        (Approve, Accepted) => return refuse(format!("already accepted by the {b}")),
        (Approve, Rejected | Returned) => {
            return refuse("the surveyor must resubmit before it can be approved".into())
        }
        (Accept, _) if commune => {
            return refuse(format!("accepting is the {b}'s step; the {a} approves"))
        }
        (Accept, Approved) => Accepted,
        (Accept, Accepted) => return Ok(None),
        (Accept, _) => return refuse(format!("the {a} must approve it before the {b} accepts")),
        (Reject | Return, Accepted) if commune => {
            return refuse(format!("accepted by the {b}: only the {b} can send it back"))
        }
        (Reject | Return, Accepted) => return refuse("accepted: reopen it first".into()),
        (Reject, Submitted | Approved | Returned | Rejected) => Rejected,
        (Return, Submitted | Approved | Rejected | Returned) => Returned,
        (Reopen, Accepted) if commune => {
            return refuse(format!("accepted by the {b}: only the {b} can reopen it"))
        }
        (Reopen, Approved | Accepted) => Submitted,
        (Reopen, _) => return refuse("only an approved or accepted report can be reopened".into()),
    };
    Ok(Some(next))
}

/// The state after a surveyor's edit is accepted, or why it is refused
/// (`chain`: who reviews the report).
pub fn after_edit(state: ReviewState, chain: Chain) -> Result<ReviewState> {
    match state {
        ReviewState::Approved => Err(Error::Invalid(
            "this report is approved and locked; ask the supervisor to reopen it".into(),
        )),
        ReviewState::Accepted => {
            let b = chain.accepts.as_str();
            Err(Error::Invalid(format!(
                "this report is accepted by the {b} and locked; ask the {b} to reopen it"
            )))
        }
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
    const P: Level = Level::Province;
    const FOUR: Chain = Chain::FOUR_LEVELS;
    /// Since 1 July 2025: the commune approves, the province accepts.
    const TWO_TIER: Chain = Chain { approves: C, accepts: P };

    fn transition(
        state: ReviewState,
        verdict: Verdict,
        level: Level,
        reason: &str,
    ) -> Result<Option<ReviewState>> {
        super::transition(state, verdict, level, FOUR, reason)
    }

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
    fn without_districts_the_province_accepts_and_the_commune_cannot_undo_it() {
        let t = |state, verdict, level| super::transition(state, verdict, level, TWO_TIER, "why");
        assert_eq!(t(Submitted, Approve, C).unwrap(), Some(Approved));
        assert_eq!(t(Approved, Accept, P).unwrap(), Some(Accepted));
        let err = t(Approved, Accept, C).unwrap_err().to_string();
        assert_eq!(err, "accepting is the province's step; the commune approves");
        let err = t(Accepted, Reopen, C).unwrap_err().to_string();
        assert_eq!(err, "accepted by the province: only the province can reopen it");
        assert!(t(Accepted, Reject, C).is_err(), "nor send it back");
        assert_eq!(t(Accepted, Reopen, P).unwrap(), Some(Submitted));
        let err = t(Submitted, Approve, P).unwrap_err().to_string();
        assert_eq!(err, "approval is the commune's step; the province accepts after it");
        let err = after_edit(Accepted, TWO_TIER).unwrap_err().to_string();
        assert!(err.contains("ask the province to reopen it"), "{err}");
    }

    #[test]
    fn a_chain_follows_the_villages_lineage() {
        use crate::model::OrgUnit;
        let unit =
            |id: &str, level| OrgUnit { id: id.into(), name: id.into(), level, parent: None };
        let (v, c) = (unit("v", Level::Village), unit("c", C));
        let (d, p) = (unit("d", D), unit("p", P));
        assert_eq!(Chain::of([&v, &c, &d, &p].into_iter()), FOUR);
        assert_eq!(Chain::of([&v, &c, &p].into_iter()), TWO_TIER);
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
        assert_eq!(after_edit(Rejected, FOUR).unwrap(), Submitted);
        assert_eq!(after_edit(Returned, FOUR).unwrap(), Submitted);
        assert_eq!(after_edit(Submitted, FOUR).unwrap(), Submitted);
        assert!(after_edit(Approved, FOUR).unwrap_err().to_string().contains("reopen"));
        let err = after_edit(Accepted, FOUR).unwrap_err().to_string();
        assert!(err.contains("accepted by the district and locked"), "{err}");
    }
}
