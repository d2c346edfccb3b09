//! Pull: a page of the changes in a caller's areas after its cursor, read
//! from the change log (or the merge of its communes' cuts) up to the
//! durable head.

use fieldsync::access::User;
use fieldsync::sync::{Change, Page};

use super::log::{cuts_of, entries};
use super::schema::{decode, Entity, SubmissionHeader, CHANGES, CONFLICTS, FIELDS};
use super::{Error, Result, Store};

/// A pull page stops growing once its records pass this many bytes (it
/// always holds at least one change), so pages stay well under the 4 MiB
/// message limit whatever the notes hold.
pub const PAGE_BYTES: usize = 1024 * 1024;

impl Store {
    /// Up to `limit` entities in `caller`'s areas changed after `cursor`,
    /// each once, in the order of their latest change, up to the durable
    /// head of the log. A caller whose areas lie within districts reads only
    /// its communes' part of the log.
    pub fn pull(&self, caller: &User, cursor: u64, limit: usize) -> Result<Page> {
        let _guard = self.read_lock();
        let head = self.durable_head();
        if cursor > head {
            return Err(Error::OutOfSequence(format!(
                "cursor {cursor} is ahead of this server's change log ({head}): the device synced \
                 with another store; re-initialise it"
            )));
        }
        let catalogue = self.catalogue();
        let limit = limit.max(1);
        let cuts = cuts_of(&catalogue, caller);
        let mut log = entries(self.engine.as_ref(), cuts.as_deref(), cursor, head, limit);
        let mut changes = Vec::new();
        let (mut bytes, mut read, mut last_seen) = (0, 0, cursor);
        // At most `limit` entries are read: the page then ends at the last
        // one read, else the log was read whole up to the head.
        let mut stopped = false;
        while read < limit {
            let Some(entry) = log.next() else { break };
            let (seq, entity) = entry?;
            read += 1;
            if bytes >= PAGE_BYTES || changes.len() >= limit {
                stopped = true;
                break;
            }
            last_seen = seq;
            let (change, size) = self.change(seq, &decode(CHANGES, &entity)?)?;
            let village = match &change {
                Change::Field(f) => &f.at.village_id,
                Change::Conflict(c) => &c.at.village_id,
                Change::Review(r) => &r.village_id,
            };
            if caller.covers(&catalogue, village) {
                bytes += size;
                changes.push((seq, change));
            }
        }
        let cursor = if stopped || read == limit { last_seen } else { head };
        Ok(Page { changes, cursor, caught_up: cursor == head })
    }

    /// The change an entry of the log points at, and its record's size.
    fn change(&self, seq: u64, entity: &Entity) -> Result<(Change, usize)> {
        let key = entity.record();
        let tree = key.tree();
        let record = key.get(self.engine.as_ref())?.ok_or_else(|| Error::Corrupt {
            tree,
            why: format!("change {seq} points at a missing record"),
        })?;
        let change = match entity {
            Entity::Field(..) => Change::Field(decode(FIELDS, &record)?),
            Entity::Conflict(..) => Change::Conflict(decode(CONFLICTS, &record)?),
            Entity::Review(_) => Change::Review(decode::<SubmissionHeader>(tree, &record)?.review),
        };
        Ok((change, record.len()))
    }
}
