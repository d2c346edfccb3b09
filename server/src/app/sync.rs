//! What tablets and the surveyors' app ask: their part of the catalogue,
//! push, pull pages, and where the server stands.

use fieldsync::access::User;
use fieldsync::sync::{Mutation, MutationResult, Page};
use fieldsync::{DeviceId, Indicator, OrgUnit};

use super::{now_ms, App, Result};

/// A tablet's catalogue: every indicator, in order, and the org units its
/// user may see.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub indicators: Vec<Indicator>,
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

impl App {
    pub fn bootstrap(&self, user: &User) -> Bootstrap {
        let cat = self.catalogue();
        Bootstrap {
            indicators: cat.indicators_in_order().cloned().collect(),
            org_units: cat.visible_to(user).into_iter().cloned().collect(),
        }
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
        Ok(self.store.pull(user, cursor, page_size)?)
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
