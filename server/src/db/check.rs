//! `Store::check`: verifies the store's invariants and lists every problem
//! found, in plain words. Trees are read in chunks, so memory stays bounded
//! whatever the size of the store.

use fieldsync::sync::{Conflict, FieldState};
use fieldsync::SubmissionId;

use super::log::cut_of;
use super::schema::{
    decode, read_u64, Entity, Key, SubmissionHeader, TokenInfo, CHANGES, CHANGES_BY_COMMUNE,
    CONFLICTS, ENTITY_SEQ, FIELDS, META, SEQ_KEY, SUBMISSIONS, SUBMISSIONS_BY_COMMUNE, TOKENS,
};
use super::{Result, Store};

/// Entries read per scan.
const CHUNK: usize = 1_024;

/// Problems past this many are counted, not listed.
const MAX_LISTED: usize = 1_000;

/// The problems found so far.
#[derive(Default)]
pub(super) struct Problems {
    listed: Vec<String>,
    more: usize,
}

impl Problems {
    pub(super) fn add(&mut self, problem: String) {
        match self.listed.len() < MAX_LISTED {
            true => self.listed.push(problem),
            false => self.more += 1,
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("… and {} more problem(s) not listed", self.more));
        }
        self.listed
    }
}

/// A key for people: its bytes as text where printable, else hex.
pub(super) fn show(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

impl Store {
    /// Checks every invariant of the stored records and returns each problem
    /// as a sentence; empty means the store is healthy.
    pub fn check(&self) -> Result<Vec<String>> {
        let mut problems = Problems::default();
        {
            let _guard = self.read_lock();
            self.check_changes(&mut problems)?;
            self.check_fields(&mut problems)?;
            self.check_conflicts(&mut problems)?;
            self.check_submissions(&mut problems)?;
            self.check_trail(&mut problems)?;
            self.check_tokens(&mut problems)?;
            for p in self.enrollment_problems()? {
                problems.add(p);
            }
        }
        // `check_rollups` takes the read lock itself.
        match self.check_rollups() {
            Ok(diffs) => {
                for d in diffs {
                    problems.add(format!("rollup cell {d}: the kept totals differ"));
                }
            }
            Err(e) => problems.add(format!("the totals could not be recomputed: {e}")),
        }
        Ok(problems.finish())
    }

    /// Calls `each` on every entry of `tree`, in key order, a chunk at a time.
    pub(super) fn each_entry(
        &self,
        tree: &'static str,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        for entry in self.engine.iter_all(tree).chunk(CHUNK) {
            let (key, value) = entry?;
            each(&key, &value)?;
        }
        Ok(())
    }

    /// The change log: its head, each entry's record and its `entity_seq`
    /// back-pointer, and no entity twice.
    fn check_changes(&self, problems: &mut Problems) -> Result<()> {
        let head = match Key::Meta(SEQ_KEY).get(self.engine.as_ref())? {
            None => {
                problems.add("the change-log head (meta `seq`) is missing".into());
                None
            }
            Some(bytes) => match read_u64(META, &bytes) {
                Ok(seq) => Some(seq),
                Err(_) => {
                    problems.add("the change-log head (meta `seq`) is not an 8-byte number".into());
                    None
                }
            },
        };
        let last = match self.engine.last(CHANGES)? {
            Some((key, _)) => read_u64(CHANGES, &key).ok(),
            None => Some(0),
        };
        if let (Some(head), Some(last)) = (head, last) {
            if head != last {
                problems.add(format!(
                    "the change-log head is {head} but the last change in the log is {last}"
                ));
            }
        }
        let catalogue = self.catalogue();
        let mut in_log = 0usize;
        self.each_entry(CHANGES, |key, value| {
            in_log += 1;
            self.check_change(problems, &catalogue, key, value)
        })?;
        let mut in_cuts = 0usize;
        self.each_entry(CHANGES_BY_COMMUNE, |_, _| {
            in_cuts += 1;
            Ok(())
        })?;
        if in_cuts != in_log {
            problems.add(format!(
                "the commune cuts of the change log hold {in_cuts} entries, the log {in_log}"
            ));
        }
        self.each_entry(ENTITY_SEQ, |key, value| {
            let Ok(seq) = read_u64(ENTITY_SEQ, value) else {
                problems.add(format!("entity_seq entry {} is damaged", show(key)));
                return Ok(());
            };
            if Key::Change(seq).get(self.engine.as_ref())?.as_deref() != Some(key) {
                problems.add(format!(
                    "entity_seq points at change {seq}, which is not that entity's change"
                ));
            }
            Ok(())
        })
    }

    /// One entry of the change log: its record, its entry in its commune's
    /// cut, and its `entity_seq` back-pointer.
    fn check_change(
        &self,
        problems: &mut Problems,
        catalogue: &fieldsync::Catalogue,
        key: &[u8],
        value: &[u8],
    ) -> Result<()> {
        let Ok(seq) = read_u64(CHANGES, key) else {
            problems.add(format!("change-log key {} is not a sequence number", show(key)));
            return Ok(());
        };
        let Ok(entity) = decode::<Entity>(CHANGES, value) else {
            problems.add(format!("change {seq} cannot be read"));
            return Ok(());
        };
        let what = match &entity {
            Entity::Field(sub, f) => format!("field {f} of {sub}"),
            Entity::Conflict(sub, f) => format!("the conflict on {f} of {sub}"),
            Entity::Review(sub) => format!("the review of {sub}"),
        };
        let record = entity.record();
        let tree = record.tree();
        match record.get(self.engine.as_ref())? {
            None => problems.add(format!("change {seq} points at {what}, which does not exist")),
            Some(bytes) => {
                // The same change in its commune's cut of the log.
                let village = match tree {
                    FIELDS => decode::<FieldState>(tree, &bytes).map(|f| f.at.village_id),
                    CONFLICTS => decode::<Conflict>(tree, &bytes).map(|c| c.at.village_id),
                    _ => decode::<SubmissionHeader>(tree, &bytes).map(|h| h.village_id),
                };
                if let Ok(village) = village {
                    let commune = cut_of(catalogue, &village);
                    let cut = Key::CommuneChange(commune.clone(), seq).get(self.engine.as_ref())?;
                    if cut.as_deref() != Some(value) {
                        problems.add(format!(
                            "change {seq} ({what}) is missing from commune {commune:?}'s cut of the log"
                        ));
                    }
                }
            }
        }
        match self.engine.get(ENTITY_SEQ, value)?.map(|b| read_u64(ENTITY_SEQ, &b)) {
            None => problems.add(format!("{what} (change {seq}) has no entity_seq entry")),
            Some(Err(_)) => problems.add(format!("the entity_seq entry of {what} is damaged")),
            Some(Ok(s)) if s == seq => {}
            Some(Ok(s)) => {
                let twice = Key::Change(s).get(self.engine.as_ref())?.as_deref() == Some(value);
                match twice {
                    true => problems.add(format!(
                        "{what} appears twice in the change log (changes {seq} and {s})"
                    )),
                    false => problems.add(format!(
                        "change {seq} is {what}, but entity_seq maps it to change {s}"
                    )),
                }
            }
        }
        Ok(())
    }

    /// Each field: readable, under its own key, with its revision and its
    /// submission's header.
    fn check_fields(&self, problems: &mut Problems) -> Result<()> {
        self.each_entry(FIELDS, |key, value| {
            let Ok(state) = decode::<FieldState>(FIELDS, value) else {
                problems.add(format!("field record {} cannot be read", show(key)));
                return Ok(());
            };
            let (sub, field) = (state.at.submission, &state.at.field);
            let name = format!("field {field} of {} {}", state.at.village_id, state.at.period);
            if key != Key::Field(sub, field.clone()).encode() {
                problems.add(format!("{name} is stored under another field's key"));
            }
            let revision = Key::Revision(sub, field.clone(), state.version);
            match revision.get(self.engine.as_ref())? {
                None => problems.add(format!(
                    "{name} is at version {} but that revision is missing",
                    state.version
                )),
                Some(rev) if rev != value => problems.add(format!(
                    "{name}: revision {} differs from the field's current value",
                    state.version
                )),
                Some(_) => {}
            }
            self.check_header(problems, sub, &name)
        })
    }

    /// Each conflict: readable, on a field that exists, in a submission with
    /// a header.
    fn check_conflicts(&self, problems: &mut Problems) -> Result<()> {
        self.each_entry(CONFLICTS, |key, value| {
            let Ok(conflict) = decode::<Conflict>(CONFLICTS, value) else {
                problems.add(format!("conflict record {} cannot be read", show(key)));
                return Ok(());
            };
            let (sub, field) = (conflict.at.submission, &conflict.at.field);
            let name = format!(
                "the conflict on {field} of {} {}",
                conflict.at.village_id, conflict.at.period
            );
            if key != Key::Conflict(sub, field.clone()).encode() {
                problems.add(format!("{name} is stored under another field's key"));
            }
            if self.engine.get(FIELDS, key)?.is_none() {
                problems.add(format!("{name} is on a field that does not exist"));
            }
            self.check_header(problems, sub, &name)
        })
    }

    /// Each header is filed under its commune in `submissions_by_commune`,
    /// and each entry there is a header filed under the right commune.
    fn check_submissions(&self, problems: &mut Problems) -> Result<()> {
        let catalogue = self.catalogue();
        self.each_entry(SUBMISSIONS, |key, value| {
            let Ok(header) = decode::<SubmissionHeader>(SUBMISSIONS, value) else {
                problems.add(format!("submission header {} cannot be read", show(key)));
                return Ok(());
            };
            let cut = cut_of(&catalogue, &header.village_id);
            if Key::SubmissionInCommune(cut.clone(), header.id).get(self.engine.as_ref())?.is_none()
            {
                problems.add(format!(
                    "the report of {} for {} is not filed under its commune {cut:?}",
                    header.village_id, header.period
                ));
            }
            Ok(())
        })?;
        self.each_entry(SUBMISSIONS_BY_COMMUNE, |key, _| {
            let Ok(Key::SubmissionInCommune(cut, sub)) = Key::decode(SUBMISSIONS_BY_COMMUNE, key)
            else {
                problems.add(format!("submissions_by_commune key {} is malformed", show(key)));
                return Ok(());
            };
            let header = Key::Submission(sub).get(self.engine.as_ref())?;
            match header.map(|b| decode::<SubmissionHeader>(SUBMISSIONS, &b)) {
                None => problems.add(format!(
                    "submission {sub} is filed under commune {cut:?} but has no header"
                )),
                // Reported with the headers above.
                Some(Err(_)) => {}
                Some(Ok(h)) if cut_of(&catalogue, &h.village_id) != cut => problems.add(format!(
                    "the report of {} for {} is filed under {cut:?}, not its commune",
                    h.village_id, h.period
                )),
                Some(Ok(_)) => {}
            }
            Ok(())
        })
    }

    fn check_header(&self, problems: &mut Problems, sub: SubmissionId, name: &str) -> Result<()> {
        match Key::Submission(sub).get(self.engine.as_ref())? {
            None => {
                problems.add(format!("{name} belongs to submission {sub}, which has no header"))
            }
            Some(bytes) => {
                if decode::<SubmissionHeader>(SUBMISSIONS, &bytes).is_err() {
                    problems.add(format!("the header of submission {sub} cannot be read"));
                }
            }
        }
        Ok(())
    }

    /// Tokens and their ids match one to one: a token without its id could
    /// sign in and never be listed or revoked; each belongs to a user.
    fn check_tokens(&self, problems: &mut Problems) -> Result<()> {
        self.each_entry(TOKENS, |hash, value| {
            let Ok(info) = decode::<TokenInfo>(TOKENS, value) else {
                problems.add(format!("token {} cannot be read", show(hash)));
                return Ok(());
            };
            match Key::TokenId(info.id.clone()).get(self.engine.as_ref())? {
                Some(h) if h == hash => {}
                Some(_) => problems.add(format!(
                    "token id {:?} points at another token than the one that names it",
                    info.id
                )),
                None => problems.add(format!(
                    "token {:?} of {} has no entry in token_ids: it signs in but cannot be \
                     listed or revoked",
                    info.id, info.user_id
                )),
            }
            if Key::User(info.user_id.clone()).get(self.engine.as_ref())?.is_none() {
                problems.add(format!("token {:?} belongs to no user ({})", info.id, info.user_id));
            }
            Ok(())
        })?;
        self.each_entry(super::schema::TOKEN_IDS, |id, hash| {
            if self.engine.get(TOKENS, hash)?.is_none() {
                problems.add(format!("token id {} points at no token", show(id)));
            }
            Ok(())
        })
    }
}
