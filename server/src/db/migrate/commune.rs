//! Brings a store written with a record per field, conflict and report
//! header (`fields`, `conflicts`, `submissions`) to one record per commune
//! × period (`communes`), with each report's place and each conflict's
//! listing. Each batch moves a chunk of reports whole (writes their
//! records, deletes the old ones), so a rerun after a kill goes on with
//! the reports left; the marker is written last.

use std::collections::HashMap;

use fieldsync::sync::{Conflict, FieldState};
use fieldsync::{Catalogue, SubmissionId};
use fieldsync_store::{Batch, Engine};

use super::super::commune::place_of;
use super::super::schema::{
    decode, decode_place, decode_with_seq, encode_history, encode_place, CommuneRecord, Held, Key,
    Place, Prefix, Report, Revision, SubmissionHeader, COMMUNES, COMMUNE_KEY, CONFLICTS, FIELDS,
    REVISIONS, SUBMISSIONS,
};
use super::super::{Error, Result};
use super::CHUNK;

/// Reports moved per batch (each with its fields and conflicts); a few in
/// the tests, so that a small store moves in several batches.
#[cfg(not(test))]
const REPORTS_PER_BATCH: usize = 500;
#[cfg(test)]
const REPORTS_PER_BATCH: usize = 4;

/// Moves every report into its commune record and marks the store as
/// migrated.
pub(super) fn file_reports_by_commune(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    let mut moved = 0;
    loop {
        let chunk: Vec<_> = engine
            .iter_all(SUBMISSIONS)
            .chunk(REPORTS_PER_BATCH)
            .take(REPORTS_PER_BATCH)
            .collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            break;
        }
        let mut batch = Batch::default();
        let mut records: HashMap<Place, CommuneRecord> = HashMap::new();
        for (key, bytes) in chunk {
            let (place, report) = gather(engine, catalogue, &bytes, &mut batch)?;
            batch.delete(SUBMISSIONS, key);
            if !records.contains_key(&place) {
                let stored = Key::Commune(place.0.clone(), place.1).get(engine)?;
                let record = stored.map(|b| CommuneRecord::decode(&b)).transpose()?;
                records.insert(place.clone(), record.unwrap_or_default());
            }
            let record = records.get_mut(&place).expect("just inserted");
            record.reports.insert(report.header.id, report);
            moved += 1;
        }
        for ((commune, period), record) in records {
            Key::Commune(commune, period).put(&mut batch, record.encode());
        }
        engine.commit(batch)?;
    }
    let revisions = move_revisions(engine)?;
    for tree in [FIELDS, CONFLICTS] {
        if let Some((key, _)) = engine.last(tree)? {
            return Err(Error::Corrupt {
                tree,
                why: format!(
                    "record {} belongs to no report header, so it was not moved into a \
                     commune record (the store is damaged; restore a backup)",
                    super::super::check::show(&key)
                ),
            });
        }
    }
    let mut batch = Batch::default();
    Key::Meta(COMMUNE_KEY).put(&mut batch, COMMUNES);
    engine.commit(batch)?;
    tracing::info!(
        reports = moved,
        revisions,
        "moved the reports into one record per commune and period"
    );
    Ok(())
}

/// Moves each old revision into its report's commune history, under its
/// own version (so it is the first record at or after it), a chunk at a
/// time; the reports are placed first.
fn move_revisions(engine: &dyn Engine) -> Result<usize> {
    let mut moved = 0;
    let mut places: HashMap<SubmissionId, Place> = HashMap::new();
    loop {
        let chunk: Vec<_> =
            engine.iter_all(REVISIONS).chunk(CHUNK).take(CHUNK).collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            return Ok(moved);
        }
        let mut batch = Batch::default();
        for (key, bytes) in chunk {
            let state: FieldState = decode(REVISIONS, &bytes)?;
            let sub = state.at.submission;
            let (commune, period) = match places.entry(sub) {
                std::collections::hash_map::Entry::Occupied(place) => place.get().clone(),
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    let place = Key::Place(sub).get(engine)?.ok_or_else(|| Error::Corrupt {
                        tree: REVISIONS,
                        why: format!("a revision of {} belongs to no report", state.at.field),
                    })?;
                    vacant.insert(decode_place(&place)?).clone()
                }
            };
            let held = Held::of(&state);
            let revision = Revision { sub, field: state.at.field, held };
            let values = encode_history(&[revision]);
            Key::History(commune, period, state.version).put(&mut batch, values);
            batch.delete(REVISIONS, key);
            moved += 1;
        }
        engine.commit(batch)?;
    }
}

/// One report read from the old layout (its header `bytes`, its fields and
/// conflicts), with their deletes, its place and its conflicts' listings
/// put in `batch`.
fn gather(
    engine: &dyn Engine,
    catalogue: &Catalogue,
    bytes: &[u8],
    batch: &mut Batch,
) -> Result<(Place, Report)> {
    let (header, seq) = decode_with_seq::<SubmissionHeader>(SUBMISSIONS, bytes)?;
    let sub = header.id;
    let unmarked = |tree| Error::Corrupt {
        tree,
        why: format!("a record of report {sub} does not say its latest change"),
    };
    let seq = seq.ok_or_else(|| unmarked(SUBMISSIONS))?;
    let place = place_of(catalogue, &header.village_id, header.period);
    let mut report = Report::new(header, seq);
    for entry in Prefix::FieldsOf(sub).iter(engine) {
        let (key, value) = entry?;
        report.put_field(&decode::<FieldState>(FIELDS, &value)?);
        batch.delete(FIELDS, key);
    }
    for entry in Prefix::ConflictsOf(sub).iter(engine) {
        let (key, value) = entry?;
        let (conflict, seq) = decode_with_seq::<Conflict>(CONFLICTS, &value)?;
        let field = conflict.at.field.clone();
        Key::Conflicted(sub, field.clone()).put(batch, Vec::new());
        report.conflicts.insert(field, (conflict, seq.ok_or_else(|| unmarked(CONFLICTS))?));
        batch.delete(CONFLICTS, key);
    }
    Key::Place(sub).put(batch, encode_place(&place));
    Ok((place, report))
}

#[cfg(test)]
pub(in crate::db) mod tests;
