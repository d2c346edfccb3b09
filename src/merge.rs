//! The per-field merge policy, whole: [`apply`] decides one pushed edit from
//! inputs the server gathers and returns the [`Effect`] it writes. Plain
//! functions over domain types; no I/O.
//!
//! An edit carries the version of the field its device last saw (its base).
//! - Base is the current version, or the device itself wrote the current
//!   value: the edit is a plain update and applies.
//! - Otherwise the field changed concurrently. If the edit leaves the value
//!   as it was at its base, only the other side changed it: nothing to do.
//!   Otherwise a [`Conflict`] records it: the larger [`Stamp`] provisionally
//!   wins, and the conflict keeps *every* device's latest value for the field
//!   since the base (one candidate per device). Equal values are not a
//!   conflict.
//! - While a conflict is open, any later edit of the field by a device updates
//!   that device's candidate, so the conflict always shows where each device
//!   stands; values a device replaced itself stay in the field's history.
//!
//! - A device new to an open conflict is refused while the conflict is full
//!   or its user's tablets hold their share. A value that breaks an "of
//!   which" total is refused as an update and kept, but not made current, as
//!   a competing value.
//!
//! Counts are never added up: 12 and 14 houses are a disagreement, not 26.
//! For edits that share a base, the current value and stamp, the conflict's
//! base and the set of competing values do not depend on arrival order.

use std::collections::HashMap;

use crate::model::{DeviceId, Value};
use crate::sync::{Candidate, Conflict, FieldRef, FieldState, Stamp};

/// Most devices one conflict keeps; a further device's value is refused (it
/// stays on its tablet) until a supervisor settles the conflict.
pub const MAX_CANDIDATES: usize = 32;

/// Most candidates the tablets of one user hold in one conflict (a user may
/// have replaced a tablet), so that one user's many tablet ids cannot fill
/// the conflict and leave colleagues' values refused.
pub const MAX_CANDIDATES_PER_USER: usize = 2;

/// Why an open conflict has no room for an edit from a new device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRoom {
    /// The conflict holds [`MAX_CANDIDATES`] values.
    Full,
    /// The user's other tablets hold [`MAX_CANDIDATES_PER_USER`] of them.
    Yours,
}

/// What became of one edit, as the sender is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The edit is the field's current value.
    Applied,
    /// The field already held this value, or only the other side changed it.
    Unchanged,
    /// A concurrent edit, kept in the field's conflict for a supervisor.
    Conflict,
    /// Not recorded: the value stays on the tablet ([`Effect::reason`] says why).
    Refused,
}

/// An edit to one field, after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub value: Value,
    pub base_version: u64,
    /// The value at `base_version` (`Value::Deleted` if the field was empty).
    pub base_value: Value,
    pub stamp: Stamp,
}

/// Everything [`apply`] decides on, gathered by the caller from its store.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The field the edit is for.
    pub at: &'a FieldRef,
    /// The field's current state, if it has a value.
    pub current: Option<&'a FieldState>,
    /// The field's conflict, if one is open.
    pub open: Option<&'a Conflict>,
    pub edit: &'a Edit,
    /// The user whose tablet sent the edit.
    pub user: &'a str,
    /// Whose tablets the open conflict's candidates are on; needed only for
    /// the devices [`owners_to_read`] names.
    pub owners: &'a HashMap<DeviceId, String>,
    /// Whether the edit's value keeps every "of which" part within its whole
    /// (`validate::check_parts` over `validate::part_siblings`).
    pub parts: &'a crate::Result<()>,
}

/// What to write for one edit: the caller writes `conflict` (if any), then
/// the edit as the field's current value if `current`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub outcome: Outcome,
    /// Why, in words for the sender; empty when applied or unchanged.
    pub reason: String,
    /// The edit becomes the field's current value, with its stamp.
    pub current: bool,
    /// The field's conflict as it stands after the edit: opened, joined or
    /// updated.
    pub conflict: Option<Conflict>,
}

impl Effect {
    fn refused(reason: String) -> Self {
        Effect { outcome: Outcome::Refused, reason, current: false, conflict: None }
    }
}

/// The devices whose owner [`apply`] needs in [`Inputs::owners`]: the open
/// conflict's candidates when `device` is new to it, none otherwise.
pub fn owners_to_read(open: Option<&Conflict>, device: DeviceId) -> Vec<DeviceId> {
    match open {
        Some(c) if c.candidates.iter().all(|k| k.stamp.device != device) => {
            c.candidates.iter().map(|k| k.stamp.device).collect()
        }
        _ => Vec::new(),
    }
}

/// The whole merge policy for one edit of one field, in order: a new device
/// is refused when the open conflict has no room for it; an update that
/// breaks an "of which" total is refused; a competing value that breaks one
/// is kept in the conflict but does not become current; otherwise the
/// three-way merge decides (see the module documentation).
pub fn apply(input: Inputs<'_>) -> Effect {
    let Inputs { at, current, open, edit, user, owners, parts } = input;
    if let Err(no_room) = room_for(open, edit, user, |d| owners.get(d).cloned()) {
        let held = match no_room {
            NoRoom::Full => format!("{MAX_CANDIDATES} competing values"),
            NoRoom::Yours => {
                format!("{MAX_CANDIDATES_PER_USER} competing values from your tablets")
            }
        };
        return Effect::refused(format!(
            "{} already has {held}: a supervisor must settle the conflict first",
            at.field
        ));
    }
    let mut decision = decide(current, open, edit);
    let mut why = String::new();
    if let Err(e) = parts {
        match &mut decision {
            Decision::Apply => return Effect::refused(e.to_string()),
            Decision::Conflict { incoming_wins, .. } if *incoming_wins => {
                // A competing value is kept, but cannot be current while it breaks a total.
                *incoming_wins = false;
                why = format!(" (it cannot be the current value: {e})");
            }
            _ => {}
        }
    }
    match decision {
        Decision::Unchanged => Effect {
            outcome: Outcome::Unchanged,
            reason: String::new(),
            current: false,
            conflict: None,
        },
        Decision::Apply => {
            let conflict = open.cloned().map(|mut c| {
                upsert(&mut c, &edit.value, &edit.stamp);
                c
            });
            Effect { outcome: Outcome::Applied, reason: String::new(), current: true, conflict }
        }
        Decision::Conflict { incoming_wins, now } => Effect {
            outcome: Outcome::Conflict,
            reason: format!(
                "{} was changed on another device too; every value is kept in a conflict for a \
                 supervisor to settle{why}",
                at.field
            ),
            current: incoming_wins,
            conflict: Some(record_conflict(open.cloned(), at, now, edit)),
        },
    }
}

/// What the three-way merge makes of one edit, before the room and "of
/// which" rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision<'a> {
    /// The edit becomes the field's current value.
    Apply,
    /// The field already holds this value; nothing to write.
    Unchanged,
    /// A concurrent edit against the current state `now`: record it in the
    /// field's conflict. If `incoming_wins`, it also becomes the current value.
    Conflict { incoming_wins: bool, now: &'a FieldState },
}

/// Decides an edit against the field's current state and its conflict, if
/// one is open.
fn decide<'a>(
    current: Option<&'a FieldState>,
    open: Option<&Conflict>,
    edit: &Edit,
) -> Decision<'a> {
    let Some(current) = current else {
        return Decision::Apply;
    };
    let device = edit.stamp.device;
    let own = current.stamp.device == device;
    let incoming_wins = edit.stamp.wins_over(&current.stamp);
    let conflict = Decision::Conflict { incoming_wins, now: current };
    // A device already in the conflict continues its own line of edits.
    if let Some(mine) = open.and_then(|c| c.candidates.iter().find(|k| k.stamp.device == device)) {
        return match (own, edit.value == mine.value) {
            (_, true) => Decision::Unchanged,
            (true, false) => Decision::Apply,
            (false, false) => conflict,
        };
    }
    let concurrent = !own && edit.base_version != current.version;
    let same_value = edit.value == current.value;
    match (concurrent, same_value) {
        (false, true) => Decision::Unchanged,
        (false, false) => Decision::Apply,
        // Only the other side changed the field.
        (true, _) if edit.value == edit.base_value => Decision::Unchanged,
        // Agreement is not a conflict, but the later stamp is kept so that the
        // winner does not depend on arrival order.
        (true, true) if open.is_none() => match incoming_wins {
            true => Decision::Apply,
            false => Decision::Unchanged,
        },
        (true, _) => conflict,
    }
}

/// Records a concurrent edit in the field's conflict, opening one if needed
/// (with the current value as the other side).
fn record_conflict(
    existing: Option<Conflict>,
    at: &FieldRef,
    current: &FieldState,
    edit: &Edit,
) -> Conflict {
    let mut conflict = match existing {
        Some(c) if c.open => c,
        _ => Conflict {
            at: at.clone(),
            base_value: edit.base_value.clone(),
            base_version: edit.base_version,
            candidates: Vec::new(),
            open: true,
            resolution: None,
        },
    };
    if !conflict.candidates.iter().any(|k| k.stamp.device == current.stamp.device) {
        upsert(&mut conflict, &current.value, &current.stamp);
    }
    upsert(&mut conflict, &edit.value, &edit.stamp);
    conflict
}

/// Whether the open conflict has room for `edit`, sent by `user`: a device
/// already in it always has; a new device needs room in the conflict and
/// within its user's share. `owner` tells whose a candidate's device is.
fn room_for(
    open: Option<&Conflict>,
    edit: &Edit,
    user: &str,
    owner: impl Fn(&DeviceId) -> Option<String>,
) -> Result<(), NoRoom> {
    let Some(c) = open else { return Ok(()) };
    if c.candidates.iter().any(|k| k.stamp.device == edit.stamp.device) {
        return Ok(());
    }
    let held =
        c.candidates.iter().filter(|k| owner(&k.stamp.device).as_deref() == Some(user)).count();
    if held >= MAX_CANDIDATES_PER_USER {
        return Err(NoRoom::Yours);
    }
    match c.candidates.len() >= MAX_CANDIDATES {
        true => Err(NoRoom::Full),
        false => Ok(()),
    }
}

/// Sets a device's candidate to its latest value, keeping candidates ordered
/// by stamp (the provisional winner last).
fn upsert(conflict: &mut Conflict, value: &Value, stamp: &Stamp) {
    let candidate = Candidate { value: value.clone(), stamp: stamp.clone() };
    match conflict.candidates.iter_mut().find(|k| k.stamp.device == stamp.device) {
        Some(k) if stamp.wins_over(&k.stamp) => *k = candidate,
        Some(_) => {}
        None => conflict.candidates.push(candidate),
    }
    conflict.candidates.sort_by_key(|c| (c.stamp.hlc, c.stamp.device));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::hlc::Hlc;
    use crate::model::{FieldKey, Period};
    use proptest::prelude::*;
    use std::collections::HashMap;
    use uuid::Uuid;

    fn stamp(device: u128, hlc: u64) -> Stamp {
        Stamp {
            hlc: Hlc(hlc),
            device: DeviceId(Uuid::from_u128(device)),
            author: format!("surveyor {device}"),
            received_at_ms: 0,
            mutation_id: hlc,
        }
    }

    fn amount(n: i64) -> Value {
        Value::Amount(Amount::whole(n))
    }

    fn at() -> FieldRef {
        FieldRef::new("v1", Period::Year(2022), FieldKey::Indicator("houses".into()))
    }

    /// One field's store: gathers the inputs of an edit, calls [`apply`] and
    /// writes its effect, as the server does.
    #[derive(Debug, Default, PartialEq)]
    struct Field {
        state: Option<FieldState>,
        conflict: Option<Conflict>,
        next_version: u64,
    }

    impl Field {
        fn start(value: Value) -> Self {
            let state = FieldState { at: at(), value, version: 1, stamp: stamp(0, 1) };
            Field { state: Some(state), conflict: None, next_version: 2 }
        }

        /// An edit whose value passes the "of which" check.
        fn push(&mut self, edit: &Edit) -> Effect {
            self.push_as(edit, "surveyor", &HashMap::new(), &Ok(()))
        }

        fn push_as(
            &mut self,
            edit: &Edit,
            user: &str,
            owners: &HashMap<DeviceId, String>,
            parts: &crate::Result<()>,
        ) -> Effect {
            let open = self.conflict.as_ref().filter(|c| c.open);
            let effect = apply(Inputs {
                at: &at(),
                current: self.state.as_ref(),
                open,
                edit,
                user,
                owners,
                parts,
            });
            if let Some(c) = &effect.conflict {
                self.conflict = Some(c.clone());
            }
            if effect.current {
                self.state = Some(FieldState {
                    at: at(),
                    value: edit.value.clone(),
                    version: self.next_version,
                    stamp: edit.stamp.clone(),
                });
                self.next_version += 1;
            }
            effect
        }

        fn current(&self) -> (Value, Stamp) {
            let s = self.state.as_ref().unwrap();
            (s.value.clone(), s.stamp.clone())
        }
    }

    /// An edit from a device that last saw version `base`; every test field
    /// starts at version 1 holding `start`.
    fn edit(device: u128, hlc: u64, value: Value, base: u64) -> Edit {
        Edit { value, base_version: base, base_value: amount(0), stamp: stamp(device, hlc) }
    }

    #[test]
    fn update_on_the_seen_version_applies() {
        let mut f = Field::start(amount(3));
        assert_eq!(f.push(&edit(1, 10, amount(5), 1)).outcome, Outcome::Applied);
        assert_eq!(f.current().0, amount(5));
        assert!(f.conflict.is_none());
    }

    #[test]
    fn different_values_from_one_base_conflict_and_keep_both() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, amount(12), 1));
        let d = f.push(&edit(2, 11, amount(14), 1));
        assert_eq!((d.outcome, d.current), (Outcome::Conflict, true));
        let c = f.conflict.as_ref().unwrap();
        let values: Vec<_> = c.candidates.iter().map(|c| c.value.clone()).collect();
        assert_eq!(values, vec![amount(12), amount(14)]);
        assert_eq!(c.base_value, amount(0));
        // Never summed: the current value is one of the two.
        assert_eq!(f.current().0, amount(14));
    }

    #[test]
    fn equal_values_are_not_a_conflict() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, amount(7), 1));
        let d = f.push(&edit(2, 9, amount(7), 1));
        assert_eq!(d.outcome, Outcome::Unchanged);
        assert!(f.conflict.is_none());
    }

    #[test]
    fn an_edit_that_keeps_the_base_value_yields_to_the_other_side() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, amount(5), 1));
        assert_eq!(f.push(&edit(2, 20, amount(0), 1)).outcome, Outcome::Unchanged);
        assert_eq!(f.current().0, amount(5));
        assert!(f.conflict.is_none());
    }

    #[test]
    fn a_device_does_not_conflict_with_its_own_earlier_edit() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, amount(7), 1));
        // Same device, still on base 1 because it has not pulled yet.
        assert_eq!(f.push(&edit(1, 11, amount(8), 1)).outcome, Outcome::Applied);
        assert!(f.conflict.is_none());
    }

    #[test]
    fn an_edit_racing_a_delete_is_a_conflict() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, Value::Deleted, 1));
        let d = f.push(&edit(2, 5, amount(6), 1));
        assert_eq!((d.outcome, d.current), (Outcome::Conflict, false));
        assert_eq!(f.current().0, Value::Deleted);
        let values: Vec<_> = f.conflict.unwrap().candidates.into_iter().map(|c| c.value).collect();
        assert_eq!(values, vec![amount(6), Value::Deleted]);
    }

    #[test]
    fn a_device_correcting_itself_offline_wins_in_any_order() {
        // A types 7 then corrects back to 0 (the base); B types 9 in between.
        let a1 = edit(1, 10, amount(7), 1);
        let a2 = edit(1, 12, amount(0), 1);
        let b = edit(2, 11, amount(9), 1);
        for order in [[&a1, &a2, &b], [&b, &a1, &a2], [&a1, &b, &a2]] {
            let mut f = Field::start(amount(0));
            for e in order {
                f.push(e);
            }
            assert_eq!(f.current().0, amount(0), "A's latest word wins: {order:?}");
            let c = f.conflict.expect("B disagrees");
            let mut values: Vec<_> = c.candidates.iter().map(|k| k.value.clone()).collect();
            values.sort_by_key(|v| v.to_string());
            assert_eq!(values, vec![amount(0), amount(9)], "{order:?}");
        }
    }

    #[test]
    fn an_open_conflict_follows_later_edits() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, amount(7), 1));
        f.push(&edit(2, 9, amount(9), 1)); // loses to A's 7
        f.push(&edit(1, 20, amount(8), 1)); // A again, still on its old base
        assert_eq!(f.current().0, amount(8));
        let c = f.conflict.unwrap();
        let winner = c.candidates.last().unwrap();
        assert_eq!(winner.value, amount(8), "the conflict shows A's latest value");
        assert_eq!(c.candidates.len(), 2);
    }

    fn breaks_a_total() -> crate::Result<()> {
        Err(crate::Error::Invalid("houses = 9 is more than its whole".into()))
    }

    #[test]
    fn an_update_that_breaks_a_total_is_refused_and_changes_nothing() {
        let mut f = Field::start(amount(3));
        let e = f.push_as(&edit(1, 10, amount(9), 1), "a", &HashMap::new(), &breaks_a_total());
        assert_eq!(e.outcome, Outcome::Refused);
        assert!(e.reason.contains("more than its whole"), "{}", e.reason);
        assert_eq!(f.current().0, amount(3));
        assert!(f.conflict.is_none());
    }

    #[test]
    fn a_competing_value_that_breaks_a_total_is_kept_but_not_current() {
        let mut f = Field::start(amount(0));
        f.push(&edit(1, 10, amount(5), 1));
        let e = f.push_as(&edit(2, 20, amount(9), 1), "b", &HashMap::new(), &breaks_a_total());
        assert_eq!((e.outcome, e.current), (Outcome::Conflict, false));
        assert!(e.reason.contains("cannot be the current value"), "{}", e.reason);
        assert_eq!(f.current().0, amount(5), "the later stamp does not win");
        let values: Vec<_> = f.conflict.unwrap().candidates.into_iter().map(|k| k.value).collect();
        assert_eq!(values, vec![amount(5), amount(9)]);
    }

    #[test]
    fn an_edit_that_changes_nothing_is_not_refused_for_a_total() {
        let mut f = Field::start(amount(3));
        let e = f.push_as(&edit(1, 10, amount(3), 1), "a", &HashMap::new(), &breaks_a_total());
        assert_eq!(e.outcome, Outcome::Unchanged);
    }

    #[test]
    fn a_full_conflict_refuses_a_new_device_before_anything_else() {
        let mut f = Field::start(amount(0));
        for d in 1..=MAX_CANDIDATES as u128 {
            f.push(&edit(d, 10 + d as u64, amount(d as i64), 1));
        }
        assert_eq!(f.conflict.as_ref().unwrap().candidates.len(), MAX_CANDIDATES);
        let late = edit(999, 5_000, amount(77), 1);
        assert_eq!(merge_owners(&f, &late).len(), MAX_CANDIDATES);
        let e = f.push_as(&late, "late", &HashMap::new(), &breaks_a_total());
        assert_eq!(e.outcome, Outcome::Refused);
        assert!(e.reason.contains("a supervisor must settle the conflict first"), "{}", e.reason);
        // A device already in it keeps its line of edits.
        let again = edit(1, 6_000, amount(78), 1);
        assert!(merge_owners(&f, &again).is_empty());
        assert_eq!(f.push(&again).outcome, Outcome::Conflict);
    }

    fn merge_owners(f: &Field, e: &Edit) -> Vec<DeviceId> {
        owners_to_read(f.conflict.as_ref().filter(|c| c.open), e.stamp.device)
    }

    proptest! {
        // Seeded so a failure reproduces; FIELDSYNC_SEED picks another seed.
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(
                std::env::var("FIELDSYNC_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(2022),
            ),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// One user's many tablet ids hold at most their share of a
        /// conflict, whatever the order of arrival: every colleague's value
        /// is still kept.
        #[test]
        fn one_user_cannot_crowd_colleagues_out_of_a_conflict(
            tablets in 1usize..48,
            colleagues in 1usize..16,
            order in proptest::collection::vec(any::<u64>(), 64),
        ) {
            // Device 1..=tablets: the attacker's; then one per colleague.
            let mut owners = HashMap::new();
            owners.insert(DeviceId(Uuid::from_u128(0)), "first".to_owned());
            let mut edits = Vec::new();
            for d in 1..=tablets {
                owners.insert(DeviceId(Uuid::from_u128(d as u128)), "attacker".to_owned());
                edits.push(("attacker".to_owned(), edit(d as u128, 100 + d as u64, amount(1000 + d as i64), 1)));
            }
            for c in 0..colleagues {
                let d = (100 + c) as u128;
                let who = format!("colleague {c}");
                owners.insert(DeviceId(Uuid::from_u128(d)), who.clone());
                edits.push((who, edit(d, 50 + c as u64, amount(c as i64 + 1), 1)));
            }
            // A shuffle drawn from `order`.
            for i in (1..edits.len()).rev() {
                edits.swap(i, (order[i % order.len()] as usize) % (i + 1));
            }
            let mut f = Field::start(amount(0));
            for (user, e) in &edits {
                let effect = f.push_as(e, user, &owners, &Ok(()));
                if user.starts_with("colleague") {
                    prop_assert!(effect.outcome != Outcome::Refused, "{user} was refused: {}", effect.reason);
                }
            }
            let held = |who: &str| f.conflict.as_ref().map_or(0, |c| {
                c.candidates.iter().filter(|k| owners[&k.stamp.device] == who).count()
            });
            prop_assert!(held("attacker") <= MAX_CANDIDATES_PER_USER);
            for c in 0..colleagues {
                let value = amount(c as i64 + 1);
                let kept = f.current().0 == value
                    || f.conflict.as_ref().is_some_and(|k| k.candidates.iter().any(|k| k.value == value));
                prop_assert!(kept, "colleague {}'s value is lost", c);
            }
        }

        /// Edits that share a base reach the same current value and the same
        /// conflict whatever order they arrive in, and every value survives.
        #[test]
        fn merge_is_order_independent(
            edits in proptest::collection::vec((0u128..4, 0u64..6, 0i64..3, any::<bool>()), 1..6),
            order in any::<proptest::sample::Index>(),
            seed in any::<u64>(),
        ) {
            // One edit per device (a device's own edits are ordered, not
            // concurrent), clocks that may tie across devices.
            let edits: Vec<Edit> = edits
                .iter()
                .enumerate()
                .map(|(i, (dev, hlc, v, del))| {
                    let value = if *del { Value::Deleted } else { amount(*v) };
                    edit(10 + i as u128, 100 + hlc * 10 + *dev as u64, value, 1)
                })
                .collect();
            let mut permuted = edits.clone();
            // A deterministic shuffle from the drawn numbers.
            let mut s = seed | 1;
            for i in (1..permuted.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                permuted.swap(i, (s as usize ^ order.index(i + 1)) % (i + 1));
            }
            // The current value and stamp, the base, and the competing values.
            // (Which devices are listed for a value two of them agreed on may
            // differ; the values may not.)
            let run = |list: &[Edit]| {
                let mut f = Field::start(amount(0));
                for e in list { f.push(e); }
                let conflict = f.conflict.clone().map(|c| {
                    let mut values: Vec<String> =
                        c.candidates.iter().map(|k| k.value.to_string()).collect();
                    values.sort();
                    values.dedup();
                    (c.base_value, values)
                });
                (f.current(), conflict)
            };
            let (a, b) = (run(&edits), run(&permuted));
            prop_assert_eq!(&a, &b);
            // Nothing lost: every value that changed the base is current or a
            // candidate.
            for e in edits.iter().filter(|e| e.value != e.base_value) {
                let kept = a.0 .0 == e.value
                    || a.1.as_ref().is_some_and(|(_, c)| c.contains(&e.value.to_string()));
                prop_assert!(kept, "value {:?} lost", e.value);
            }
        }
    }
}
