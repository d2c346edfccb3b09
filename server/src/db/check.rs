//! `Store::check`: verifies the store's invariants and lists every problem
//! found, in plain words. Trees are read in chunks, so memory stays bounded
//! whatever the size of the store.

use super::schema::{decode, Key, TokenInfo, TOKENS};
use super::{Result, Store};

mod commune;
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
            self.check_communes(&mut problems)?;
            self.check_places(&mut problems)?;
            self.check_history(&mut problems)?;
            self.check_trail(&mut problems)?;
            self.check_tokens(&mut problems)?;
            self.check_tree(&mut problems);
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

    /// The tree in force just before each of its changes and on each
    /// change's day hangs together (every unit under a parent of the right
    /// level, in force then), and users work in units in force now.
    fn check_tree(&self, problems: &mut Problems) {
        let catalogue = self.catalogue();
        for (date, change) in &catalogue.history().changes {
            for day in date.day_before().into_iter().chain([*date]) {
                if let Err(e) = catalogue.tree_at(day) {
                    problems.add(format!("{} ({}): {e}", change.describe(*date), day));
                }
            }
        }
        match self.users() {
            Ok(users) => {
                for user in users {
                    for area in user.areas.iter().filter(|a| catalogue.org_unit(a).is_none()) {
                        problems.add(format!(
                            "user {} works in {area}, which is not in force",
                            user.id
                        ));
                    }
                }
            }
            Err(e) => problems.add(format!("the users could not be read: {e}")),
        }
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
