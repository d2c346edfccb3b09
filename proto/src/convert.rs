//! Conversions between `fieldsync.v1` messages and domain types. Decoding is
//! strict: a message that does not make sense is an error naming the field.

use fieldsync::access::{Role, User};
use fieldsync::hlc::Hlc;
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::{
    AuditEntry, Candidate, Change, Conflict, FieldRef, FieldState, Mutation, MutationResult,
    Outcome, RawValue, Resolution, Stamp, SubmissionReview,
};
use fieldsync::{
    Amount, DeviceId, Error, FieldKey, GeoPoint, Indicator, Level, OrgUnit, Period, Result,
    SubmissionId, Value, ValueKind,
};
use uuid::Uuid;

use crate::v1;

fn invalid(what: impl Into<String>) -> Error {
    Error::Invalid(what.into())
}

pub fn level_to_wire(level: Level) -> v1::Level {
    match level {
        Level::Province => v1::Level::Province,
        Level::District => v1::Level::District,
        Level::Commune => v1::Level::Commune,
        Level::Village => v1::Level::Village,
    }
}

pub fn level_from_wire(level: i32) -> Result<Level> {
    match v1::Level::try_from(level) {
        Ok(v1::Level::Province) => Ok(Level::Province),
        Ok(v1::Level::District) => Ok(Level::District),
        Ok(v1::Level::Commune) => Ok(Level::Commune),
        Ok(v1::Level::Village) => Ok(Level::Village),
        _ => Err(invalid(format!("unknown org unit level {level}"))),
    }
}

pub fn org_unit_to_wire(u: &OrgUnit) -> v1::OrgUnit {
    v1::OrgUnit {
        id: u.id.clone(),
        name: u.name.clone(),
        level: level_to_wire(u.level) as i32,
        parent_id: u.parent.clone().unwrap_or_default(),
    }
}

pub fn org_unit_from_wire(u: v1::OrgUnit) -> Result<OrgUnit> {
    Ok(OrgUnit {
        level: level_from_wire(u.level)?,
        id: u.id,
        name: u.name,
        parent: Some(u.parent_id).filter(|p| !p.is_empty()),
    })
}

pub fn indicator_to_wire(i: &Indicator) -> v1::Indicator {
    let kind = match i.kind {
        ValueKind::Integer => v1::ValueKind::Integer,
        ValueKind::Decimal { .. } => v1::ValueKind::Decimal,
    };
    v1::Indicator {
        code: i.code.clone(),
        name_vi: i.name_vi.clone(),
        name_en: i.name_en.clone(),
        unit: i.unit.clone(),
        kind: kind as i32,
        scale: u32::from(i.kind.scale()),
        parent_code: i.parent.clone().unwrap_or_default(),
        max_per_village: i.max_per_village.to_string(),
        retired_from: String::new(),
    }
}

/// An indicator as bootstrap offers it: with the first period it is no
/// longer recorded for, if it is retired.
pub fn offered_indicator_to_wire(i: &Indicator, retired_from: Option<Period>) -> v1::Indicator {
    v1::Indicator {
        retired_from: retired_from.map(|p| p.to_string()).unwrap_or_default(),
        ..indicator_to_wire(i)
    }
}

/// An indicator from bootstrap, with the period it is retired from.
pub fn offered_indicator_from_wire(i: v1::Indicator) -> Result<(Indicator, Option<Period>)> {
    let retired_from = match i.retired_from.as_str() {
        "" => None,
        p => Some(
            p.parse::<Period>()
                .map_err(|e| invalid(format!("{}: bad retired_from: {e}", i.code)))?,
        ),
    };
    Ok((indicator_from_wire(i)?, retired_from))
}

/// An indicator being added or imported: it cannot come retired, since a
/// retirement is its own audited step (`RetireIndicator`).
pub fn new_indicator_from_wire(i: v1::Indicator) -> Result<Indicator> {
    if !i.retired_from.is_empty() {
        return Err(invalid(format!(
            "{}: retired_from cannot be set when adding an indicator; add it, then retire it",
            i.code
        )));
    }
    indicator_from_wire(i)
}

pub fn indicator_from_wire(i: v1::Indicator) -> Result<Indicator> {
    let scale = u8::try_from(i.scale).map_err(|_| invalid(format!("{}: bad scale", i.code)))?;
    let kind = match v1::ValueKind::try_from(i.kind) {
        Ok(v1::ValueKind::Integer) => ValueKind::Integer,
        Ok(v1::ValueKind::Decimal) => ValueKind::Decimal { scale },
        _ => return Err(invalid(format!("{}: unknown value kind", i.code))),
    };
    Ok(Indicator {
        max_per_village: i.max_per_village.parse()?,
        code: i.code,
        name_vi: i.name_vi,
        name_en: i.name_en,
        unit: i.unit,
        kind,
        parent: Some(i.parent_code).filter(|p| !p.is_empty()),
    })
}

pub fn point_to_wire(p: GeoPoint) -> v1::GeoPoint {
    v1::GeoPoint { lat_e7: p.lat_e7, lon_e7: p.lon_e7 }
}

fn point_from_wire(p: v1::GeoPoint) -> GeoPoint {
    GeoPoint { lat_e7: p.lat_e7, lon_e7: p.lon_e7 }
}

pub fn value_to_wire(v: &Value) -> v1::Value {
    use v1::value::Kind;
    let kind = match v {
        Value::Amount(a) => Kind::Amount(a.to_string()),
        Value::Text(t) => Kind::Text(t.clone()),
        Value::Point(p) => Kind::Point(point_to_wire(*p)),
        Value::Deleted => Kind::Deleted(true),
    };
    v1::Value { kind: Some(kind) }
}

pub fn raw_value_to_wire(v: &RawValue) -> v1::Value {
    use v1::value::Kind;
    let kind = match v {
        RawValue::Amount(a) => Kind::Amount(a.clone()),
        RawValue::Text(t) => Kind::Text(t.clone()),
        RawValue::Point(p) => Kind::Point(point_to_wire(*p)),
        RawValue::Deleted => Kind::Deleted(true),
    };
    v1::Value { kind: Some(kind) }
}

/// A value as a tablet sent it; amounts stay text until the indicator is known.
pub fn raw_value_from_wire(v: Option<v1::Value>) -> Result<RawValue> {
    use v1::value::Kind;
    match v.and_then(|v| v.kind) {
        Some(Kind::Amount(a)) => Ok(RawValue::Amount(a)),
        Some(Kind::Text(t)) => Ok(RawValue::Text(t)),
        Some(Kind::Point(p)) => Ok(RawValue::Point(point_from_wire(p))),
        Some(Kind::Deleted(true)) => Ok(RawValue::Deleted),
        Some(Kind::Deleted(false)) | None => Err(invalid("no value given")),
    }
}

/// A value as the server stored it.
pub fn value_from_wire(v: Option<v1::Value>) -> Result<Value> {
    Ok(match raw_value_from_wire(v)? {
        RawValue::Amount(a) => Value::Amount(a.parse::<Amount>()?),
        RawValue::Text(t) => Value::Text(t),
        RawValue::Point(p) => Value::Point(p),
        RawValue::Deleted => Value::Deleted,
    })
}

pub fn mutation_to_wire(m: &Mutation) -> v1::Mutation {
    v1::Mutation {
        id: m.id,
        village_id: m.village_id.clone(),
        period: m.period.clone(),
        field: m.field.clone(),
        value: Some(raw_value_to_wire(&m.value)),
        base_version: m.base_version,
        hlc: m.hlc.0,
        author: m.author.clone(),
    }
}

pub fn mutation_from_wire(m: v1::Mutation) -> Result<Mutation> {
    let value =
        raw_value_from_wire(m.value).map_err(|e| invalid(format!("mutation {}: {e}", m.id)))?;
    Ok(Mutation {
        id: m.id,
        village_id: m.village_id,
        period: m.period,
        field: m.field,
        value,
        base_version: m.base_version,
        hlc: Hlc(m.hlc),
        author: m.author,
    })
}

pub fn device_from_wire(id: &str) -> Result<DeviceId> {
    id.parse()
}

fn uuid_from_wire(id: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| invalid(format!("{what} {id:?} is not a UUID")))
}

fn field_ref_from_wire(sub: &str, village: String, period: &str, field: &str) -> Result<FieldRef> {
    let period: Period = period.parse()?;
    let at = FieldRef::new(&village, period, FieldKey::parse(field));
    if at.submission != SubmissionId(uuid_from_wire(sub, "submission id")?) {
        return Err(invalid(format!("submission id {sub} does not match {village} {period}")));
    }
    Ok(at)
}

pub fn field_state_to_wire(s: &FieldState) -> v1::FieldState {
    v1::FieldState {
        submission_id: s.at.submission.to_string(),
        village_id: s.at.village_id.clone(),
        period: s.at.period.to_string(),
        field: s.at.field.to_string(),
        value: Some(value_to_wire(&s.value)),
        version: s.version,
        hlc: s.stamp.hlc.0,
        device_id: s.stamp.device.to_string(),
        author: s.stamp.author.clone(),
        received_at_ms: s.stamp.received_at_ms,
        mutation_id: s.stamp.mutation_id,
    }
}

pub fn field_state_from_wire(s: v1::FieldState) -> Result<FieldState> {
    Ok(FieldState {
        at: field_ref_from_wire(&s.submission_id, s.village_id, &s.period, &s.field)?,
        value: value_from_wire(s.value)?,
        version: s.version,
        stamp: Stamp {
            hlc: Hlc(s.hlc),
            device: device_from_wire(&s.device_id)?,
            author: s.author,
            received_at_ms: s.received_at_ms,
            mutation_id: s.mutation_id,
        },
    })
}

pub fn conflict_to_wire(c: &Conflict) -> v1::Conflict {
    v1::Conflict {
        submission_id: c.at.submission.to_string(),
        village_id: c.at.village_id.clone(),
        period: c.at.period.to_string(),
        field: c.at.field.to_string(),
        base_value: Some(value_to_wire(&c.base_value)),
        base_version: c.base_version,
        candidates: c
            .candidates
            .iter()
            .map(|c| v1::Candidate {
                value: Some(value_to_wire(&c.value)),
                device_id: c.stamp.device.to_string(),
                author: c.stamp.author.clone(),
                hlc: c.stamp.hlc.0,
                received_at_ms: c.stamp.received_at_ms,
                mutation_id: c.stamp.mutation_id,
            })
            .collect(),
        open: c.open,
        resolution: c.resolution.as_ref().map(|r| v1::Resolution {
            value: Some(value_to_wire(&r.value)),
            user_id: r.user_id.clone(),
            user_name: r.user_name.clone(),
            comment: r.comment.clone(),
            at_ms: r.at_ms,
        }),
    }
}

pub fn conflict_from_wire(c: v1::Conflict) -> Result<Conflict> {
    let candidates = c
        .candidates
        .into_iter()
        .map(|k| {
            Ok(Candidate {
                value: value_from_wire(k.value)?,
                stamp: Stamp {
                    hlc: Hlc(k.hlc),
                    device: device_from_wire(&k.device_id)?,
                    author: k.author,
                    received_at_ms: k.received_at_ms,
                    mutation_id: k.mutation_id,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Conflict {
        at: field_ref_from_wire(&c.submission_id, c.village_id, &c.period, &c.field)?,
        base_value: value_from_wire(c.base_value)?,
        base_version: c.base_version,
        candidates,
        open: c.open,
        resolution: c
            .resolution
            .map(|r| {
                Ok::<_, Error>(Resolution {
                    value: value_from_wire(r.value)?,
                    user_id: r.user_id,
                    user_name: r.user_name,
                    comment: r.comment,
                    at_ms: r.at_ms,
                })
            })
            .transpose()?,
    })
}

pub fn outcome_to_wire(o: Outcome) -> v1::Outcome {
    match o {
        Outcome::Applied => v1::Outcome::Applied,
        Outcome::Unchanged => v1::Outcome::Unchanged,
        Outcome::Conflict => v1::Outcome::Conflict,
        Outcome::Rejected => v1::Outcome::Rejected,
        Outcome::Forgotten => v1::Outcome::Forgotten,
    }
}

pub fn result_to_wire(r: &MutationResult) -> v1::MutationResult {
    v1::MutationResult {
        id: r.id,
        outcome: outcome_to_wire(r.outcome) as i32,
        reason: r.reason.clone(),
        current: r.current.as_ref().map(field_state_to_wire),
    }
}

pub fn result_from_wire(r: v1::MutationResult) -> Result<MutationResult> {
    let outcome = match v1::Outcome::try_from(r.outcome) {
        Ok(v1::Outcome::Applied) => Outcome::Applied,
        Ok(v1::Outcome::Unchanged) => Outcome::Unchanged,
        Ok(v1::Outcome::Conflict) => Outcome::Conflict,
        Ok(v1::Outcome::Rejected) => Outcome::Rejected,
        Ok(v1::Outcome::Forgotten) => Outcome::Forgotten,
        _ => return Err(invalid(format!("mutation {}: unknown outcome", r.id))),
    };
    Ok(MutationResult {
        id: r.id,
        outcome,
        reason: r.reason,
        current: r.current.map(field_state_from_wire).transpose()?,
    })
}

pub fn change_to_wire(seq: u64, c: &Change) -> v1::Change {
    let kind = match c {
        Change::Field(f) => v1::change::Kind::Field(field_state_to_wire(f)),
        Change::Conflict(c) => v1::change::Kind::Conflict(conflict_to_wire(c)),
        Change::Review(r) => v1::change::Kind::Review(review_to_wire(r)),
    };
    v1::Change { seq, kind: Some(kind) }
}

pub fn change_from_wire(c: v1::Change) -> Result<(u64, Change)> {
    let change = match c.kind {
        Some(v1::change::Kind::Field(f)) => Change::Field(field_state_from_wire(f)?),
        Some(v1::change::Kind::Conflict(k)) => Change::Conflict(conflict_from_wire(k)?),
        Some(v1::change::Kind::Review(r)) => Change::Review(review_from_wire(r)?),
        None => return Err(invalid(format!("change {} is empty", c.seq))),
    };
    Ok((c.seq, change))
}

pub fn review_state_to_wire(s: ReviewState) -> v1::ReviewState {
    match s {
        ReviewState::Submitted => v1::ReviewState::Submitted,
        ReviewState::Approved => v1::ReviewState::Approved,
        ReviewState::Accepted => v1::ReviewState::Accepted,
        ReviewState::Rejected => v1::ReviewState::Rejected,
        ReviewState::Returned => v1::ReviewState::Returned,
    }
}

/// `None` for "unspecified" (no filter).
pub fn review_state_from_wire(s: i32) -> Result<Option<ReviewState>> {
    Ok(match v1::ReviewState::try_from(s) {
        Ok(v1::ReviewState::Unspecified) => None,
        Ok(v1::ReviewState::Submitted) => Some(ReviewState::Submitted),
        Ok(v1::ReviewState::Approved) => Some(ReviewState::Approved),
        Ok(v1::ReviewState::Accepted) => Some(ReviewState::Accepted),
        Ok(v1::ReviewState::Rejected) => Some(ReviewState::Rejected),
        Ok(v1::ReviewState::Returned) => Some(ReviewState::Returned),
        Err(_) => return Err(invalid(format!("unknown review state {s}"))),
    })
}

pub fn review_to_wire(r: &SubmissionReview) -> v1::SubmissionReview {
    v1::SubmissionReview {
        submission_id: r.submission.to_string(),
        village_id: r.village_id.clone(),
        period: r.period.to_string(),
        state: review_state_to_wire(r.state) as i32,
        reason: r.reason.clone(),
        user_id: r.user_id.clone(),
        user_name: r.user_name.clone(),
        at_ms: r.at_ms,
    }
}

pub fn review_from_wire(r: v1::SubmissionReview) -> Result<SubmissionReview> {
    let period: Period = r.period.parse()?;
    let submission = SubmissionId::of(&r.village_id, period);
    if submission.to_string() != r.submission_id {
        return Err(invalid(format!("submission id {} does not match", r.submission_id)));
    }
    Ok(SubmissionReview {
        submission,
        state: review_state_from_wire(r.state)?
            .ok_or_else(|| invalid("a review without a state"))?,
        village_id: r.village_id,
        period,
        reason: r.reason,
        user_id: r.user_id,
        user_name: r.user_name,
        at_ms: r.at_ms,
    })
}

pub fn verdict_from_wire(v: i32) -> Result<Verdict> {
    match v1::Verdict::try_from(v) {
        Ok(v1::Verdict::Approve) => Ok(Verdict::Approve),
        Ok(v1::Verdict::Accept) => Ok(Verdict::Accept),
        Ok(v1::Verdict::Reject) => Ok(Verdict::Reject),
        Ok(v1::Verdict::Return) => Ok(Verdict::Return),
        Ok(v1::Verdict::Reopen) => Ok(Verdict::Reopen),
        _ => Err(invalid("say what to do: approve, accept, reject, return or reopen")),
    }
}

pub fn verdict_to_wire(v: Verdict) -> v1::Verdict {
    match v {
        Verdict::Approve => v1::Verdict::Approve,
        Verdict::Accept => v1::Verdict::Accept,
        Verdict::Reject => v1::Verdict::Reject,
        Verdict::Return => v1::Verdict::Return,
        Verdict::Reopen => v1::Verdict::Reopen,
    }
}

pub fn role_to_wire(r: Role) -> v1::Role {
    match r {
        Role::Surveyor => v1::Role::Surveyor,
        Role::Supervisor => v1::Role::Supervisor,
        Role::Province => v1::Role::Province,
        Role::Admin => v1::Role::Admin,
    }
}

pub fn role_from_wire(r: i32) -> Result<Role> {
    match v1::Role::try_from(r) {
        Ok(v1::Role::Surveyor) => Ok(Role::Surveyor),
        Ok(v1::Role::Supervisor) => Ok(Role::Supervisor),
        Ok(v1::Role::Province) => Ok(Role::Province),
        Ok(v1::Role::Admin) => Ok(Role::Admin),
        _ => Err(invalid("a user needs a role: surveyor, supervisor, province or admin")),
    }
}

pub fn user_to_wire(u: &User) -> v1::User {
    v1::User {
        id: u.id.clone(),
        name: u.name.clone(),
        role: role_to_wire(u.role) as i32,
        areas: u.areas.clone(),
        disabled: u.disabled,
    }
}

pub fn user_from_wire(u: v1::User) -> Result<User> {
    Ok(User {
        role: role_from_wire(u.role)?,
        id: u.id,
        name: u.name,
        areas: u.areas,
        disabled: u.disabled,
    })
}

pub fn audit_to_wire(e: &AuditEntry) -> v1::AuditEntry {
    v1::AuditEntry {
        seq: e.seq,
        at_ms: e.at_ms,
        user_id: e.user_id.clone(),
        device_id: e.device.map(|d| d.to_string()).unwrap_or_default(),
        kind: e.kind.as_str().into(),
        submission_id: e.submission.map(|s| s.to_string()).unwrap_or_default(),
        village_id: e.village_id.clone(),
        period: e.period.clone(),
        field: e.field.clone(),
        old_value: e.old.as_ref().map(value_to_wire),
        new_value: e.new.as_ref().map(value_to_wire),
        hlc: e.hlc.0,
        mutation_id: e.mutation_id,
        detail: e.detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_exactly() {
        for v in [
            Value::Amount("102.73".parse().unwrap()),
            Value::Amount(Amount::parse("0.3", 2).unwrap()),
            Value::Text("Thôn 3 — đường bê tông".into()),
            Value::Point(GeoPoint { lat_e7: 183_559_000, lon_e7: 1_058_877_000 }),
            Value::Deleted,
        ] {
            assert_eq!(value_from_wire(Some(value_to_wire(&v))).unwrap(), v);
        }
        assert!(value_from_wire(None).is_err());
    }
}
