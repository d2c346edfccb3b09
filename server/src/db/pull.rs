//! Pull: a page of the changes in a caller's areas after its cursor, read
//! from the change log (or the merge of its communes' cuts) up to the
//! durable head.

use fieldsync::access::User;
use fieldsync::sync::Page;

use super::commune::Reader;
use super::log::{changes, cuts_of, latest};
use super::schema::{Entity, Place, COMMUNES};
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
    ///
    /// The log lists every change, each commit's together in one entry; an
    /// entity listed again later is skipped at its earlier listings (its
    /// record says which change is its latest), so the page reads at most
    /// `limit` listed changes, sent or skipped. It may end inside a commit:
    /// its cursor is then the sequence number of the last change it read,
    /// and the next page reads that commit's entry again from the change
    /// after it, so a cursor means, as it always has, "every change up to
    /// this number has been seen", and a page never holds more than `limit`
    /// changes.
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
        let mut log = changes(self.engine.as_ref(), cuts.as_deref(), cursor, head, limit);
        // The commune records this page read, each decoded once.
        let mut reader = Reader::new(self.engine.as_ref());
        let mut changes = Vec::new();
        let (mut bytes, mut read, mut last_seen) = (0, 0, cursor);
        // At most `limit` listed changes are read: the page then ends at the
        // last one read, else the log was read whole up to the head.
        let mut stopped = false;
        while read < limit {
            let Some(listed) = log.next() else { break };
            let (seq, entity, place) = listed?;
            read += 1;
            if bytes >= PAGE_BYTES || changes.len() >= limit {
                stopped = true;
                break;
            }
            last_seen = seq;
            let Some(change) = latest_at(&mut reader, seq, &entity, &place)? else {
                continue; // listed again later: sent there
            };
            if caller.covers(&catalogue, change.village()) {
                bytes += change.size;
                changes.push((seq, change.change));
            }
        }
        let cursor = if stopped || read == limit { last_seen } else { head };
        Ok(Page { changes, cursor, caught_up: cursor == head })
    }
}

/// The entity a change `seq` of the log lists, if `seq` is its latest
/// change; `None` if it changed again since.
fn latest_at(
    reader: &mut Reader<'_>,
    seq: u64,
    entity: &Entity,
    place: &Place,
) -> Result<Option<super::log::Latest>> {
    let now = latest(reader, entity, place)?.ok_or_else(|| Error::Corrupt {
        tree: COMMUNES,
        why: format!("change {seq} points at a missing record"),
    })?;
    match now.seq {
        Some(latest) if latest == seq => Ok(Some(now)),
        Some(_) => Ok(None),
        None => Err(Error::Corrupt {
            tree: COMMUNES,
            why: format!("the record of change {seq} does not say its latest change"),
        }),
    }
}
