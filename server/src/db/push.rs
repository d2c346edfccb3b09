//! Push: a device's batch of mutations checked, validated, merged and
//! audited in one unit of work, its results kept in its record of the
//! trail, with replays answered from there.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync::access::{Action, User};
use fieldsync::merge::{self, Edit};
use fieldsync::review::{after_edit, ReviewState};
use fieldsync::sync::{AuditKind, FieldRef, FieldState, Mutation, MutationResult, Outcome, Stamp};
use fieldsync::validate::{check_parts, part_siblings, validate, Target};
use fieldsync::{Catalogue, DeviceId, FieldKey, Period, SubmissionId, Value};

use super::clock::MAX_CLOCK_SKEW_MS;
use super::schema::{encode, DeviceState, Key, Pushed, Run};
use super::txn::{clip, Work};
use super::{Error, Result, Store, SERVER_DEVICE};

fn digest(m: &Mutation) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(encode(m)).into()
}

/// Refuses a batch that is malformed whatever the store holds.
fn check_batch(caller: &User, device: DeviceId, mutations: &[Mutation]) -> Result<()> {
    if !caller.may(Action::Record) {
        return Err(Error::Denied(format!(
            "permission denied: a {} may not record values",
            caller.role.as_str()
        )));
    }
    for pair in mutations.windows(2) {
        if pair[0].id.checked_add(1) != Some(pair[1].id) {
            return Err(Error::Invalid(format!(
                "mutation ids must be consecutive within a push: {} is followed by {}",
                pair[0].id, pair[1].id
            )));
        }
    }
    if mutations.first().is_some_and(|m| m.id == 0) {
        return Err(Error::Invalid("mutation ids start at 1".into()));
    }
    if device == SERVER_DEVICE {
        return Err(Error::Invalid(
            "the all-zero device id is the server's own: give the tablet a random UUID".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Applies a device's batch of mutations on behalf of `caller`: replays
    /// get their stored results, new mutations are checked, validated and
    /// merged, and everything is committed atomically and flushed before this
    /// returns.
    pub fn push(
        &self,
        caller: &User,
        device: DeviceId,
        mutations: &[Mutation],
        acknowledged_through: u64,
        now_ms: u64,
    ) -> Result<Vec<MutationResult>> {
        check_batch(caller, device, mutations)?;
        // What depends on the mutations alone is worked out before the
        // write lock is taken, so that other writers meanwhile go on: the
        // digests, and validation against the catalogue as it stands (done
        // again under the lock only if an admin changed it meanwhile).
        let catalogue = self.catalogue();
        let prepared: Vec<_> =
            mutations.iter().map(|m| (digest(m), validate(&catalogue, m))).collect();
        let guard = self.write_lock();
        self.unbroken()?;
        let mut state = self.device(device)?;
        if state.owner.is_empty() {
            state.owner = caller.id.clone();
        } else if state.owner != caller.id {
            return Err(Error::Denied(format!(
                "permission denied: tablet {device} belongs to another user; set this tablet up \
                 again with `fieldsync init` to get an id of its own"
            )));
        }
        let first_new = state.last_mutation_id + 1;
        if let Some(m) = mutations.iter().find(|m| m.id > state.last_mutation_id) {
            if m.id != first_new {
                return Err(Error::OutOfSequence(format!(
                    "the server has this device's mutations up to {}, so the next is {first_new}, \
                     not {}: resend the outbox from {first_new}",
                    state.last_mutation_id, m.id
                )));
            }
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        let same_catalogue = Arc::ptr_eq(&work.catalogue, &catalogue);
        let mut results = Vec::with_capacity(mutations.len());
        let mut run = None;
        for (m, (digest, checked)) in mutations.iter().zip(prepared) {
            let result = if m.id < first_new {
                self.replay(&mut run, device, m, &digest, &state)?
            } else {
                let stamp = Stamp {
                    hlc: m.hlc.bounded(now_ms, MAX_CLOCK_SKEW_MS),
                    device,
                    author: caller.name.clone(),
                    received_at_ms: now_ms,
                    mutation_id: m.id,
                };
                let checked = match same_catalogue {
                    true => checked,
                    false => validate(&work.catalogue, m),
                };
                let result = work.apply(m, stamp, checked)?;
                let pushed = work.pushed.get_or_insert_with(|| Pushed {
                    device,
                    first_id: m.id,
                    digests: Vec::new(),
                    results: Vec::new(),
                });
                pushed.digests.push(digest);
                pushed.results.push(result.clone());
                state.last_mutation_id = m.id;
                result
            };
            results.push(result);
        }
        // Results the tablet has acknowledged are released by moving the
        // mark (their digests stay, to tell a replay from a reused id); the
        // ids this push commits are released only by a later push.
        let through = acknowledged_through.min(first_new - 1);
        state.released_through = state.released_through.max(through);
        state.last_push_ms = now_ms;
        Key::Device(device).put(&mut work.batch, state.encode());
        work.commit()?;
        Ok(results)
    }

    /// The answer to a mutation under an id the server has committed for
    /// `device`: its stored result, or "forgotten" once the tablet has
    /// acknowledged it, if it is the mutation that was committed; refused if
    /// it differs (only ids released before digests were kept go unchecked).
    /// `run` keeps the run of results read last, for the next id.
    fn replay(
        &self,
        run: &mut Option<Run>,
        device: DeviceId,
        m: &Mutation,
        digest: &[u8; 32],
        state: &DeviceState,
    ) -> Result<MutationResult> {
        if run.as_ref().and_then(|r| r.get(m.id)).is_none() {
            *run = self.run_of(device, m.id)?;
        }
        let forgotten = MutationResult {
            id: m.id,
            outcome: Outcome::Forgotten,
            reason: "committed earlier; the detailed result was released".into(),
            current: None,
        };
        let Some((kept, result)) = run.as_ref().and_then(|r| r.get(m.id)) else {
            return Ok(forgotten);
        };
        if kept != digest {
            return Err(Error::Reused { id: m.id, last: state.last_mutation_id });
        }
        match result {
            Some(result) if m.id > state.released_through => Ok(result.clone()),
            _ => Ok(forgotten),
        }
    }
}

/// What a mutation that may be merged is merged with: the field's current
/// state and its value at the mutation's base version.
type Mergeable = (Option<FieldState>, Value);

impl Work<'_> {
    /// Merges one new mutation, `checked` by [`validate`] against this
    /// write's catalogue, and records it in the audit trail whatever its
    /// outcome.
    fn apply(
        &mut self,
        m: &Mutation,
        stamp: Stamp,
        checked: fieldsync::Result<Target>,
    ) -> Result<MutationResult> {
        let old = match &checked {
            Ok(t) => self.field(&t.at)?.map(|f| f.value),
            Err(_) => None,
        };
        let target = checked.as_ref().ok().cloned();
        let result = self.merge(m, checked, stamp.clone())?;
        let kind = match result.outcome {
            Outcome::Applied => AuditKind::Value,
            Outcome::Conflict => AuditKind::Conflict,
            Outcome::Unchanged => AuditKind::Unchanged,
            Outcome::Rejected | Outcome::Forgotten => AuditKind::Refused,
        };
        let mut entry = self.entry(kind, result.reason.clone());
        entry.device = Some(stamp.device);
        entry.village_id = clip(&m.village_id, 100);
        entry.period = clip(&m.period, 20);
        entry.field = clip(&m.field, 100);
        entry.hlc = stamp.hlc;
        entry.mutation_id = m.id;
        // Filed under the report only when the caller works there: a refusal
        // from outside the caller's areas must not crowd a report's trail.
        let sub = match &target {
            Some(t) => Some(t.at.submission),
            None => m.period.parse::<Period>().ok().map(|p| SubmissionId::of(&m.village_id, p)),
        };
        let village = &m.village_id;
        if self.catalogue.village(village).is_ok() && self.caller.covers(&self.catalogue, village) {
            entry.submission = sub;
        }
        match result.outcome {
            Outcome::Rejected => {
                entry.detail = clip(&format!("{} (sent {})", result.reason, m.value), 500)
            }
            _ => {
                entry.new = target.map(|t| t.value);
                entry.old = old;
            }
        }
        let resubmit = match (entry.submission, &result.outcome) {
            (Some(sub), Outcome::Applied | Outcome::Conflict) => m
                .period
                .parse::<Period>()
                .ok()
                .map(|period| (self.place(&m.village_id, period), sub)),
            _ => None,
        };
        self.audit(entry);
        // A surveyor's accepted edit sends a rejected or returned report back to review.
        let resubmitted = resubmit.map(|(place, sub)| self.header(&place, sub));
        if let Some(h) = resubmitted.transpose()?.flatten() {
            if matches!(h.review.state, ReviewState::Rejected | ReviewState::Returned) {
                let detail = " (edited)".to_owned();
                self.set_review(h, ReviewState::Submitted, "", detail, Some(stamp.device))?;
            }
        }
        Ok(result)
    }

    /// Merges one mutation, `checked` by [`validate`].
    fn merge(
        &mut self,
        m: &Mutation,
        checked: fieldsync::Result<Target>,
        stamp: Stamp,
    ) -> Result<MutationResult> {
        let rejected = |reason: String| MutationResult {
            id: m.id,
            outcome: Outcome::Rejected,
            reason: clip(&reason, 1_000),
            current: None,
        };
        let catalogue = Arc::clone(&self.catalogue);
        let target = match checked {
            Ok(t) => t,
            Err(e) => return Ok(rejected(e.to_string())),
        };
        let at = target.at;
        let (current, base_value) = match self.precheck(m, &at)? {
            Ok(found) => found,
            Err(reason) => return Ok(rejected(reason)),
        };
        let open = self.conflict(&at)?.filter(|c| c.open);
        let edit = Edit { value: target.value, base_version: m.base_version, base_value, stamp };
        let mut owners = HashMap::new();
        for device in merge::owners_to_read(open.as_ref(), edit.stamp.device) {
            owners.insert(device, self.store.device(device)?.owner);
        }
        let parts = self.check_parts(&catalogue, &at, &edit.value)?;
        let effect = merge::apply(merge::Inputs {
            at: &at,
            current: current.as_ref(),
            open: open.as_ref(),
            edit: &edit,
            user: &self.caller.id,
            owners: &owners,
            parts: &parts,
        });
        if let Some(conflict) = effect.conflict {
            self.write_conflict(conflict)?;
        }
        let current = match effect.current {
            true => Some(self.write_field(&at, edit.value, edit.stamp)?),
            false => current,
        };
        let outcome = match effect.outcome {
            merge::Outcome::Applied => Outcome::Applied,
            merge::Outcome::Unchanged => Outcome::Unchanged,
            merge::Outcome::Conflict => Outcome::Conflict,
            merge::Outcome::Refused => return Ok(rejected(effect.reason)),
        };
        Ok(MutationResult { id: m.id, outcome, reason: effect.reason, current })
    }

    /// Why `m` may not be merged into `at`, if it may not: outside the
    /// caller's areas, a closed period, a locked report, a base version the
    /// field never had. Else the field's current state and its value at the
    /// base version.
    fn precheck(&mut self, m: &Mutation, at: &FieldRef) -> Result<Result<Mergeable, String>> {
        if let Err(denied) = self.caller.check(&self.catalogue, Action::Record, &at.village_id) {
            return Ok(Err(denied.to_string()));
        }
        if self.is_closed(&at.village_id, at.period) {
            return Ok(Err(format!(
                "period {} is closed for this area: the value stays on the tablet until an admin \
                 or the province office reopens it",
                at.period
            )));
        }
        let place = self.place(&at.village_id, at.period);
        let header = self.header(&place, at.submission)?;
        if let Some(h) = &header {
            if let Err(e) = after_edit(h.review.state, self.catalogue.chain(&at.village_id)) {
                return Ok(Err(e.to_string()));
            }
        }
        let current = self.field(at)?;
        let head = current.as_ref().map_or(0, |c| c.version);
        if m.base_version > head {
            return Ok(Err(format!(
                "base version {} of {} is newer than the server's ({head}): the device's copy is \
                 from another store",
                m.base_version, at.field
            )));
        }
        // Based on the current version (the usual edit), the base value is
        // the current one: no history read.
        let base = match &current {
            Some(c) if c.version == m.base_version => Some(c.value.clone()),
            _ => self.value_at(at, m.base_version)?,
        };
        let Some(base_value) = base else {
            return Ok(Err(format!(
                "base version {} is not a version of {}: sync (pull) and record the value again",
                m.base_version, at.field
            )));
        };
        Ok(Ok((current, base_value)))
    }

    /// Whether `value` in `at` keeps every "of which" part within its whole,
    /// given the other fields of the submission as they stand in this batch.
    pub(super) fn check_parts(
        &mut self,
        catalogue: &Catalogue,
        at: &FieldRef,
        value: &Value,
    ) -> Result<Result<(), fieldsync::Error>> {
        let read = |key: &FieldKey| {
            let sibling = FieldRef { field: key.clone(), ..at.clone() };
            Ok::<_, Error>(self.field(&sibling)?.map(|f| f.value))
        };
        let siblings = part_siblings(catalogue, &at.field, read)?;
        Ok(check_parts(catalogue, &at.field, value, |code| siblings.get(code).copied()))
    }
}
