//! `Store::check`: verifies the store's invariants and lists every problem
//! found, in plain words. Trees are read in chunks, so memory stays bounded
//! whatever the size of the store.

use fieldsync::sync::{Conflict, FieldState};
use fieldsync::SubmissionId;

use super::log::cut_of;
use super::schema::{
    decode, Key, SubmissionHeader, TokenInfo, CONFLICTS, FIELDS, SUBMISSIONS,
    SUBMISSIONS_BY_COMMUNE, TOKENS,
};
use super::{Result, Store};

mod log;

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
            self.check_log(&mut problems)?;
            self.check_latest_listed(&mut problems)?;
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
