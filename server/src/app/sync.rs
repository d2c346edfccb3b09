//! What tablets and the surveyors' app ask: their part of the catalogue,
//! push, pull pages, and where the server stands.

use std::sync::Arc;

use fieldsync::access::User;
use fieldsync::sync::{Mutation, MutationResult, Page};
use fieldsync::{Catalogue, DeviceId, Indicator, OrgUnit, Period};

use super::{now_ms, App, Result};

/// A tablet's catalogue: every indicator, in order, each with the period
/// it is retired from if it is (so tablets stop offering it), and the org
/// units of the tree in force that its user may see.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub indicators: Vec<(Indicator, Option<Period>)>,
    pub org_units: Vec<OrgUnit>,
}

/// Where the server stands, for one tablet.
#[derive(Clone, Copy, Debug)]
pub struct SyncStatus {
    /// The change log's head as far as it is on disk.
    pub head: u64,
    /// The last mutation id the server has from the tablet (0: none, or the
    /// tablet is not the caller's).
    pub last_mutation_id: u64,
}

impl Bootstrap {
    /// `user`'s part of `catalogue`.
    pub fn of(catalogue: &Catalogue, user: &User) -> Bootstrap {
        Bootstrap {
            indicators: catalogue
                .indicators_in_order()
                .map(|i| (i.clone(), catalogue.retired_from(&i.code)))
                .collect(),
            org_units: catalogue.visible_to(user).into_iter().cloned().collect(),
        }
    }
}

impl App {
    /// `user`'s part of the current catalogue; callers of the same areas
    /// share one, built once per catalogue.
    pub fn bootstrap(&self, user: &User) -> Arc<Bootstrap> {
        self.bootstraps.of(&self.catalogue(), user)
    }

    /// Changes per pull page for a request of `requested` (0: the most).
    pub fn page_size(&self, requested: u32) -> usize {
        match requested as usize {
            0 => self.max_page,
            n => n.min(self.max_page),
        }
    }

    /// Checks, validates, merges and commits one batch from `device`.
    pub fn push(
        &self,
        user: &User,
        device: DeviceId,
        mutations: &[Mutation],
        acknowledged_through: u64,
    ) -> Result<Vec<MutationResult>> {
        Ok(self.store.push(user, device, mutations, acknowledged_through, now_ms())?)
    }

    /// One page of the changes in the caller's areas after `cursor`.
    pub fn pull(&self, user: &User, cursor: u64, page_size: usize) -> Result<Page> {
        if let Some(page) = self.nothing_new(cursor) {
            return Ok(page);
        }
        Ok(self.store.pull(user, cursor, page_size)?)
    }

    /// The empty, caught-up page of a tablet whose cursor is the durable
    /// head: nothing to read, so it is answered at once, without the
    /// store's lock (it does not wait behind a write) or the blocking pool.
    pub fn nothing_new(&self, cursor: u64) -> Option<Page> {
        let head = self.store.durable_head();
        (cursor == head).then(|| Page { changes: Vec::new(), cursor: head, caught_up: true })
    }

    pub fn status(&self, user: &User, device: Option<DeviceId>) -> Result<SyncStatus> {
        // What the server knows of a tablet is told to its owner only.
        let last = device.map(|d| self.store.device(d)).transpose()?;
        let mine = last.filter(|d| d.owner.is_empty() || d.owner == user.id);
        let last = mine.map_or(0, |d| d.last_mutation_id);
        // A tablet the server has not heard of shows nothing that may not
        // be on disk, so its answer need not wait for a slow disk.
        if last > 0 {
            self.store.settle()?;
        }
        Ok(SyncStatus { head: self.store.durable_head(), last_mutation_id: last })
    }
}
