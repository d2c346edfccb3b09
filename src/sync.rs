//! The sync protocol in domain terms: mutations a tablet sends, the state of a
//! field, conflicts, and the changes a pull returns. The gRPC layers convert
//! these to and from `fieldsync.v1` messages; nothing here knows protobuf.

use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::model::{DeviceId, FieldKey, GeoPoint, Period, SubmissionId, Value};
use crate::review::ReviewState;

/// A value as the tablet sent it, before the catalogue says how to read it
/// (an amount's scale depends on its indicator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RawValue {
    Amount(String),
    Text(String),
    Point(GeoPoint),
    Deleted,
}

impl std::fmt::Display for RawValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawValue::Amount(a) => f.write_str(a),
            RawValue::Text(t) => write!(f, "{t:?}"),
            RawValue::Point(p) => write!(f, "@{p}"),
            RawValue::Deleted => f.write_str("(delete)"),
        }
    }
}

/// One field change on one submission, as recorded on a tablet. Mutation ids
/// are per device, start at 1 and increase by exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    pub id: u64,
    pub village_id: String,
    pub period: String,
    pub field: String,
    pub value: RawValue,
    /// The version of the field the device last saw; 0 if it never saw one.
    pub base_version: u64,
    pub hlc: Hlc,
    pub author: String,
}

/// Who wrote a value, and when. Orders competing values: the larger stamp is
/// the provisional winner of a conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub hlc: Hlc,
    pub device: DeviceId,
    pub author: String,
    /// Server receive time, milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    pub mutation_id: u64,
}

impl Stamp {
    /// Hybrid logical clock first, then device id: a total order every replica
    /// computes the same way.
    pub fn wins_over(&self, other: &Stamp) -> bool {
        (self.hlc, self.device) > (other.hlc, other.device)
    }
}

/// Where a field lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldRef {
    pub submission: SubmissionId,
    pub village_id: String,
    pub period: Period,
    pub field: FieldKey,
}

impl FieldRef {
    pub fn new(village_id: &str, period: Period, field: FieldKey) -> Self {
        FieldRef {
            submission: SubmissionId::of(village_id, period),
            village_id: village_id.to_owned(),
            period,
            field,
        }
    }
}

/// The current value of one field of one submission, as the server holds it.
/// `version` is the change-log sequence number that last changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldState {
    pub at: FieldRef,
    pub value: Value,
    pub version: u64,
    pub stamp: Stamp,
}

/// One competing value of a conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub value: Value,
    pub stamp: Stamp,
}

/// Devices changed the same field from the same base to different values.
/// Every competing value is kept, each once, with its latest author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub at: FieldRef,
    /// The value the competing edits started from (`Deleted`: the field was empty).
    pub base_value: Value,
    pub base_version: u64,
    /// Ordered by stamp, oldest first; the last one is the provisional winner.
    pub candidates: Vec<Candidate>,
    pub open: bool,
    /// How a supervisor settled it.
    pub resolution: Option<Resolution>,
}

/// A supervisor's settlement of a conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub value: Value,
    pub user_id: String,
    pub user_name: String,
    pub comment: String,
    pub at_ms: u64,
}

/// Where a submission stands in review, and the last decision on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionReview {
    pub submission: SubmissionId,
    pub village_id: String,
    pub period: Period,
    pub state: ReviewState,
    /// Why it was rejected or returned; empty otherwise.
    pub reason: String,
    pub user_id: String,
    pub user_name: String,
    pub at_ms: u64,
}

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditKind {
    /// A pushed value became current.
    Value,
    /// A pushed value joined a conflict.
    Conflict,
    /// A pushed value equal to what the field held.
    Unchanged,
    /// A pushed value the server refused.
    Refused,
    Review,
    Resolve,
    User,
    Token,
    Period,
    Catalogue,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Value => "value",
            AuditKind::Conflict => "conflict",
            AuditKind::Unchanged => "unchanged",
            AuditKind::Refused => "refused",
            AuditKind::Review => "review",
            AuditKind::Resolve => "resolve",
            AuditKind::User => "user",
            AuditKind::Token => "token",
            AuditKind::Period => "period",
            AuditKind::Catalogue => "catalogue",
        }
    }
}

/// One entry of the append-only audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub user_id: String,
    pub device: Option<DeviceId>,
    pub kind: AuditKind,
    pub submission: Option<SubmissionId>,
    pub village_id: String,
    /// Empty when not about a period.
    pub period: String,
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub hlc: Hlc,
    pub mutation_id: u64,
    pub detail: String,
}

/// What happened to one mutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    Unchanged,
    Conflict,
    Rejected,
    /// Committed long ago; the server has let go of the detailed result.
    Forgotten,
}

/// The server's answer to one mutation. Stored, so a replay gets the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationResult {
    pub id: u64,
    pub outcome: Outcome,
    pub reason: String,
    /// The field as it stood right after this mutation.
    pub current: Option<FieldState>,
}

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Field(FieldState),
    Conflict(Conflict),
    Review(SubmissionReview),
}

/// A page of changes returned by a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub changes: Vec<(u64, Change)>,
    pub cursor: u64,
    pub caught_up: bool,
}
