//! Brings a store written when every audit entry, result and digest was a
//! record of its own (`audit`, `audit_by_sub`, `audit_by_user`, `results`,
//! `digests`) to one record per write: each old entry becomes a record of
//! one entry with its index entries, each device's results and digests
//! become runs kept beside its pushes, and the old trees are emptied. Each
//! batch moves records (writes the new, deletes the old), so a rerun after
//! a crash goes on with what is left; the marker is written last.

use fieldsync::sync::{AuditEntry, MutationResult};
use fieldsync::{Catalogue, DeviceId};
use fieldsync_store::{Batch, Engine, ScanIter};

use super::super::schema::retired::{
    AUDIT, AUDIT_BY_SUB, AUDIT_BY_USER, DIGESTS, RESULTS, WRITES_BY_SUB,
};
use super::super::schema::{
    decode, encode_named, read_u64, Key, PushRef, StoredResult, Write, TRAIL_KEY, TRAIL_PLACE_KEY,
    WRITES,
};
use super::super::trail::{named_by_place, RECORD_CHUNK};
use super::super::{Error, Result};
use super::{empty, retire, CHUNK};

/// Most mutations one migrated run holds, so that no record grows past a
/// push's.
const MAX_RUN: usize = 1_000;

/// Moves the old trail, results and digests into the new layout and marks
/// the store as migrated.
pub(super) fn file_the_trail_by_write(engine: &dyn Engine) -> Result<()> {
    let entries = move_audit_entries(engine)?;
    let kept = move_results(engine)?;
    for tree in [AUDIT_BY_SUB, AUDIT_BY_USER] {
        empty(engine, tree)?;
    }
    let mut batch = Batch::default();
    Key::Meta(TRAIL_KEY).put(&mut batch, WRITES);
    engine.commit(batch)?;
    tracing::info!(entries, kept, "filed the audit trail and the results by write");
    Ok(())
}

/// Each old audit entry becomes a record of its own, indexed by its user
/// (by its report's place later: [`index_by_place`]), under its sequence
/// number.
fn move_audit_entries(engine: &dyn Engine) -> Result<usize> {
    let mut moved = 0;
    loop {
        let mut batch = Batch::default();
        for entry in engine.iter_all(AUDIT).chunk(CHUNK).take(CHUNK) {
            let (key, bytes) = entry?;
            let seq = read_u64(AUDIT, &key)?;
            // The key is the entry's place in the trail.
            let entry = AuditEntry { seq, ..decode(AUDIT, &bytes)? };
            Key::WriteByUser(entry.user_id.clone(), seq).put(&mut batch, Vec::new());
            Key::Write(seq).put(&mut batch, Write { entries: vec![entry], push: None }.encode());
            batch.delete(AUDIT, key);
            moved += 1;
        }
        if batch.is_empty() {
            return Ok(moved);
        }
        engine.commit(batch)?;
    }
}

/// Indexes every record of the trail by the commune records its entries
/// name (`writes_by_place`), as a write files it, then empties the index by
/// report it replaces. A rerun after a crash rewrites the same entries; the
/// marker is written last.
pub(super) fn index_by_place(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    let (mut indexed, mut batch) = (0usize, Batch::default());
    for record in engine.iter_all(WRITES).chunk(RECORD_CHUNK) {
        let (key, bytes) = record?;
        let seq = read_u64(WRITES, &key)?;
        let write = Write::decode(&bytes)?;
        for ((commune, period), named) in named_by_place(&write.entries, catalogue)? {
            Key::WriteAtPlace(commune, period, seq).put(&mut batch, encode_named(&named));
        }
        indexed += 1;
        if batch.len() >= CHUNK {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    engine.commit(batch)?;
    retire(engine, WRITES_BY_SUB, TRAIL_PLACE_KEY, b"1")?;
    tracing::info!(records = indexed, "indexed the audit trail by commune record");
    Ok(())
}

/// One id of a device as the old layout kept it: a result (with its
/// digest), or once released the digest alone.
struct Old {
    device: DeviceId,
    id: u64,
    digest: [u8; 32],
    result: Option<MutationResult>,
}

/// A run of consecutive ids of one device, being gathered.
struct Gathering {
    device: DeviceId,
    first_id: u64,
    digests: Vec<[u8; 32]>,
    results: Vec<Option<MutationResult>>,
}

impl Gathering {
    fn takes(&self, old: &Old) -> bool {
        old.device == self.device
            && old.id == self.first_id + self.digests.len() as u64
            && self.digests.len() < MAX_RUN
    }

    fn put(self, batch: &mut Batch) {
        let run = PushRef::Kept { digests: self.digests, results: self.results };
        Key::PushOf(self.device, self.first_id).put(batch, run.encode());
    }
}

/// Each device's results and digests, in id order, become runs of
/// consecutive ids filed with its pushes; ids the old layout kept nothing
/// of stay unkept (they answer "forgotten", unchecked, as before).
fn move_results(engine: &dyn Engine) -> Result<usize> {
    let mut moved = 0;
    loop {
        let mut results = engine.iter_all(RESULTS).chunk(CHUNK).peekable();
        let mut digests = engine.iter_all(DIGESTS).chunk(CHUNK).peekable();
        let mut batch = Batch::default();
        let mut run: Option<Gathering> = None;
        let mut taken = 0;
        while taken < CHUNK {
            let Some(old) = next_old(&mut results, &mut digests, &mut batch)? else { break };
            taken += 1;
            match &mut run {
                // A digest beside its own result (never written so): the
                // result holds it already.
                Some(r)
                    if r.device == old.device
                        && r.first_id + r.digests.len() as u64 == old.id + 1 => {}
                Some(r) if r.takes(&old) => {
                    r.digests.push(old.digest);
                    r.results.push(old.result);
                }
                _ => {
                    if let Some(done) = run.take() {
                        done.put(&mut batch);
                    }
                    run = Some(Gathering {
                        device: old.device,
                        first_id: old.id,
                        digests: vec![old.digest],
                        results: vec![old.result],
                    });
                }
            }
        }
        let Some(last) = run else { return Ok(moved) };
        last.put(&mut batch);
        moved += taken;
        engine.commit(batch)?;
    }
}

/// The next old result or digest in (device, id) order, its old record
/// deleted in `batch`.
fn next_old<'e>(
    results: &mut std::iter::Peekable<ScanIter<'e>>,
    digests: &mut std::iter::Peekable<ScanIter<'e>>,
    batch: &mut Batch,
) -> Result<Option<Old>> {
    let key_of = |e: Option<&fieldsync_store::Result<(Vec<u8>, Vec<u8>)>>| {
        e.map(|e| e.as_ref().map_or(&[][..], |(k, _)| k.as_slice()).to_vec())
    };
    let (r, d) = (key_of(results.peek()), key_of(digests.peek()));
    let (tree, scan) = match (r, d) {
        (None, None) => return Ok(None),
        (Some(r), Some(d)) if d < r => (DIGESTS, digests),
        (Some(_), _) => (RESULTS, results),
        (None, Some(_)) => (DIGESTS, digests),
    };
    let Some(entry) = scan.next() else { return Ok(None) };
    let (key, value) = entry?;
    let (device, id) = match Key::decode(tree, &key)? {
        Key::Result(device, id) | Key::Digest(device, id) => (device, id),
        _ => return Err(Error::Corrupt { tree, why: "not device ‖ mutation id".into() }),
    };
    let (digest, result) = match tree {
        RESULTS => {
            let stored: StoredResult = decode(RESULTS, &value)?;
            (stored.digest, Some(stored.result))
        }
        _ => {
            let digest = value.as_slice().try_into().map_err(|_| Error::Corrupt {
                tree,
                why: format!("the digest of mutation {id} of {device} is not 32 bytes"),
            })?;
            (digest, None)
        }
    };
    batch.delete(tree, key);
    Ok(Some(Old { device, id, digest, result }))
}
