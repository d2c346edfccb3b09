//! Changes of the org tree: dated, audited, applied by an admin (see
//! [`fieldsync::tree`]). A change never moves a report already filed: it
//! is refused when a report exists for a period ending on or after its day
//! in the part of the tree it changes. Users whose area a merge retires
//! follow its successor, each such move audited.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fieldsync::access::User;
use fieldsync::sync::AuditKind;
use fieldsync::{Catalogue, Date, Level, Period, TreeChange};

use super::log::cut_of;
use super::schema::{encode, CommuneRecord, Key, Prefix, CATALOGUE_KEY, COMMUNES, TREE_KEY};
use super::txn::Work;
use super::{Error, Result, Store};

/// What a change of the tree did.
#[derive(Clone, Debug)]
pub struct TreeChanged {
    pub catalogue: Arc<Catalogue>,
    /// Users whose areas followed a merged unit to its successor: the user
    /// with their new areas, and their areas before.
    pub users_moved: Vec<(User, Vec<String>)>,
}

impl Store {
    /// Applies `change` on `date` (today in Vietnam or earlier).
    pub fn change_tree(
        &self,
        caller: &User,
        date: Date,
        change: &TreeChange,
        now_ms: u64,
    ) -> Result<TreeChanged> {
        self.require_admin(caller)?;
        let today = Date::in_vietnam(now_ms);
        if date > today {
            return Err(Error::Invalid(format!(
                "a change takes effect on its day: date it today ({today}) or earlier, and apply \
                 it once that day has come"
            )));
        }
        let guard = self.write_lock();
        let current = self.catalogue();
        let (next, applied) = current.apply(date, change)?;
        let mut affected: BTreeSet<String> = BTreeSet::new();
        for unit in applied.moved.iter().chain(applied.retired.iter().map(|(u, _)| u)) {
            for below in current.subtree(unit) {
                if below.level == Level::Village {
                    affected.insert(below.id.clone());
                }
            }
        }
        self.refuse_moving_filed_reports(&current, &affected, date)?;

        let mut users_moved = Vec::new();
        for user in self.users()? {
            let mut areas: Vec<String> = Vec::with_capacity(user.areas.len());
            for area in &user.areas {
                let area = match applied.retired.iter().find(|(gone, _)| gone == area) {
                    None => area.clone(),
                    Some((_, Some(successor))) => successor.clone(),
                    Some((gone, None)) => {
                        return Err(Error::Invalid(format!(
                            "{} ({}) works in {gone}, which this retires: give them another \
                             area first (`fieldsync admin user areas {} --area ID`)",
                            user.id, user.name, user.id
                        )))
                    }
                };
                if !areas.contains(&area) {
                    areas.push(area);
                }
            }
            if areas != user.areas {
                let before = user.areas.clone();
                users_moved.push((User { areas, ..user }, before));
            }
        }

        let next = Arc::new(next);
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Meta(CATALOGUE_KEY).put(&mut work.batch, encode(next.as_ref()));
        Key::Meta(TREE_KEY).put(&mut work.batch, encode(next.history()));
        let mut detail = change.describe(date);
        if !applied.moved.is_empty() {
            detail += &format!("; moved with it: {}", applied.moved.join(", "));
        }
        let entry = work.entry(AuditKind::Catalogue, detail);
        work.audit(entry);
        for (user, before) in &users_moved {
            Key::User(user.id.clone()).put(&mut work.batch, encode(user));
            let detail = format!(
                "areas of {} ({}) follow the tree's change of {date}: {} → {}",
                user.id,
                user.name,
                before.join(", "),
                user.areas.join(", ")
            );
            let entry = work.entry(AuditKind::User, detail);
            work.audit(entry);
        }
        let swapped = Arc::clone(&next);
        work.commit_then(|_| {
            *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = swapped;
        })?;
        self.forget_sign_ins();
        Ok(TreeChanged { catalogue: next, users_moved })
    }

    /// Stops indicator `code` being recorded for `from` and every later
    /// period; its values in earlier reports, and their totals, stay.
    pub fn retire_indicator(
        &self,
        caller: &User,
        code: &str,
        from: Period,
        now_ms: u64,
    ) -> Result<Arc<Catalogue>> {
        self.require_admin(caller)?;
        let guard = self.write_lock();
        let current = self.catalogue();
        let indicator = current
            .indicator(code)
            .ok_or_else(|| Error::NotFound(format!("unknown indicator {code:?}")))?;
        if let Some(since) = current.retired_from(code) {
            return Err(Error::Invalid(format!("{code} is retired already, from {since} on")));
        }
        let mut history = current.history().clone();
        history.retired_indicators.insert(code.to_owned(), from);
        let next = Arc::new(Catalogue::clone(&current).with_history(history)?);
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Meta(TREE_KEY).put(&mut work.batch, encode(next.history()));
        let detail = format!("retired indicator {code} ({}) from {from} on", indicator.name_vi);
        let entry = work.entry(AuditKind::Catalogue, detail);
        work.audit(entry);
        let swapped = Arc::clone(&next);
        work.commit_then(|_| {
            *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = swapped;
        })?;
        Ok(next)
    }

    /// Sets the deployment's review chain for every village (`None`: each
    /// village's lineage gives it again).
    pub fn set_review_chain(
        &self,
        caller: &User,
        chain: Option<fieldsync::review::Chain>,
        now_ms: u64,
    ) -> Result<Arc<Catalogue>> {
        self.require_admin(caller)?;
        let guard = self.write_lock();
        let current = self.catalogue();
        let mut history = current.history().clone();
        history.review_chain = chain;
        let next = Arc::new(Catalogue::clone(&current).with_history(history)?);
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Meta(TREE_KEY).put(&mut work.batch, encode(next.history()));
        let detail = match chain {
            Some(c) => format!(
                "review chain set: {} approves, {} accepts",
                c.approves.as_str(),
                c.accepts.as_str()
            ),
            None => {
                "review chain follows the tree: the commune approves, the unit above it accepts"
                    .into()
            }
        };
        let entry = work.entry(AuditKind::Catalogue, detail);
        work.audit(entry);
        let swapped = Arc::clone(&next);
        work.commit_then(|_| {
            *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = swapped;
        })?;
        Ok(next)
    }

    /// Refuses a change on `date` that would place elsewhere a report of
    /// one of `villages` already filed for a period ending on or after it.
    fn refuse_moving_filed_reports(
        &self,
        current: &Catalogue,
        villages: &BTreeSet<String>,
        date: Date,
    ) -> Result<()> {
        let mut by_commune: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for village in villages {
            // Changes come in date order, so a period ending on or after
            // this one's day is filed by today's tree.
            by_commune.entry(cut_of(current, village)).or_default().push(village);
        }
        for (commune, villages) in by_commune {
            for entry in Prefix::CommuneRecords(&commune).iter(self.engine.as_ref()) {
                let (key, bytes) = entry?;
                let Key::Commune(_, period) = Key::decode(COMMUNES, &key)? else { continue };
                if period.last_day() < date {
                    continue;
                }
                let record = CommuneRecord::decode(&bytes)?;
                if let Some(report) = record
                    .reports
                    .values()
                    .find(|r| villages.contains(&r.header.village_id.as_str()))
                {
                    let village = &report.header.village_id;
                    let name = current.org_unit(village).map_or(village.as_str(), |u| &u.name);
                    return Err(Error::Invalid(format!(
                        "{name} ({village}) has a report for {period}, a period that ends on or \
                         after {date}: a change dated {date} would file it elsewhere than it was \
                         filed. Date the change after {} (the end of the last period with \
                         reports there), or apply it before such reports are made",
                        period.last_day()
                    )));
                }
            }
        }
        Ok(())
    }
}
