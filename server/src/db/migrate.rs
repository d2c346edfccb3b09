//! Every on-open migration: a new store gets its catalogue and the markers
//! of every migration; a store written by an older version is brought up
//! to date, in chunks, each migration rerunnable after a crash and marked
//! done last. The audit trail's move to one record per write is in
//! `migrate/trail.rs`.

mod trail;

use fieldsync::sync::{Conflict, FieldState};
use fieldsync::Catalogue;
use fieldsync_store::{Batch, Engine};

use super::log::cut_of;
use super::schema::retired::CHANGES_BY_DISTRICT;
use super::schema::{
    decode, encode, read_u64, Entity, Key, SubmissionHeader, BY_COMMUNE_KEY, CATALOGUE_KEY,
    CHANGES, CHANGES_BY_COMMUNE, CONFLICTS, CUT_KEY, FIELDS, SEQ_KEY, SUBMISSIONS, TRAIL_KEY,
    WRITES,
};
use super::{Error, Result};

/// Entries read and written per batch of a migration.
const CHUNK: usize = 10_000;

/// Gives an empty store `initial` as its catalogue, marked as needing no
/// migration; a store that has a catalogue is left as it is.
pub(super) fn initialise(engine: &dyn Engine, initial: impl FnOnce() -> Catalogue) -> Result<()> {
    if Key::Meta(CATALOGUE_KEY).get(engine)?.is_some() {
        return Ok(());
    }
    let catalogue = initial();
    let mut batch = Batch::default();
    Key::Meta(CATALOGUE_KEY).put(&mut batch, encode(&catalogue));
    Key::Meta(SEQ_KEY).put(&mut batch, 0u64.to_be_bytes());
    Key::Meta(CUT_KEY).put(&mut batch, CHANGES_BY_COMMUNE);
    Key::Meta(BY_COMMUNE_KEY).put(&mut batch, b"1".as_slice());
    Key::Meta(TRAIL_KEY).put(&mut batch, WRITES);
    engine.commit(batch)?;
    tracing::info!(
        indicators = catalogue.indicators.len(),
        org_units = catalogue.org_units.len(),
        "new store: loaded the catalogue"
    );
    Ok(())
}

/// Whether every migration has run (a store opened only to be read must be).
pub(super) fn is_current(engine: &dyn Engine) -> Result<bool> {
    Ok(Key::Meta(CUT_KEY).get(engine)?.is_some()
        && Key::Meta(BY_COMMUNE_KEY).get(engine)?.is_some()
        && Key::Meta(TRAIL_KEY).get(engine)?.is_some())
}

/// Runs every migration the store has not had yet.
pub(super) fn run(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    if Key::Meta(CUT_KEY).get(engine)?.is_none() {
        cut_the_log_by_commune(engine, catalogue)?;
    }
    if Key::Meta(BY_COMMUNE_KEY).get(engine)?.is_none() {
        index_submissions_by_commune(engine, catalogue)?;
    }
    if Key::Meta(TRAIL_KEY).get(engine)?.is_none() {
        trail::file_the_trail_by_write(engine)?;
    }
    Ok(())
}

/// The village a change-log entry's record belongs to.
fn village_of(engine: &dyn Engine, seq: u64, entity: &Entity) -> Result<String> {
    let record = entity.record();
    let village = match record.get(engine)? {
        None => None,
        Some(bytes) => Some(match entity {
            Entity::Field(..) => decode::<FieldState>(FIELDS, &bytes)?.at.village_id,
            Entity::Conflict(..) => decode::<Conflict>(CONFLICTS, &bytes)?.at.village_id,
            Entity::Review(_) => decode::<SubmissionHeader>(SUBMISSIONS, &bytes)?.village_id,
        }),
    };
    village.ok_or_else(|| Error::Corrupt {
        tree: CHANGES,
        why: format!("change {seq} points at a missing record"),
    })
}

/// Builds the commune cut of the change log from the log itself and drops
/// the district cut it replaces, in batches; rerunning it after a crash
/// rewrites the same entries, and the marker is written last.
fn cut_the_log_by_commune(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    let mut moved = 0usize;
    let mut batch = Batch::default();
    for entry in engine.iter_all(CHANGES).chunk(CHUNK) {
        let (seq, entity) = entry?;
        let seq = read_u64(CHANGES, &seq)?;
        let village = village_of(engine, seq, &decode(CHANGES, &entity)?)?;
        let cut = cut_of(catalogue, &village);
        Key::CommuneChange(cut, seq).put(&mut batch, entity);
        moved += 1;
        if batch.len() == CHUNK {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    engine.commit(batch)?;
    loop {
        let old = engine.iter_all(CHANGES_BY_DISTRICT).chunk(CHUNK).take(CHUNK);
        let mut batch = Batch::default();
        for entry in old {
            batch.delete(CHANGES_BY_DISTRICT, entry?.0);
        }
        if batch.is_empty() {
            break;
        }
        engine.commit(batch)?;
    }
    let mut batch = Batch::default();
    Key::Meta(CUT_KEY).put(&mut batch, CHANGES_BY_COMMUNE);
    engine.commit(batch)?;
    tracing::info!(changes = moved, "cut the change log by commune");
    Ok(())
}

/// Files every submission under its commune, in batches; rerunning it after
/// a crash rewrites the same entries, and the marker is written last.
fn index_submissions_by_commune(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    let mut filed = 0usize;
    let mut batch = Batch::default();
    for entry in engine.iter_all(SUBMISSIONS).chunk(CHUNK) {
        let header: SubmissionHeader = decode(SUBMISSIONS, &entry?.1)?;
        let cut = cut_of(catalogue, &header.village_id);
        Key::SubmissionInCommune(cut, header.id).put(&mut batch, Vec::new());
        filed += 1;
        if batch.len() == CHUNK {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    engine.commit(batch)?;
    let mut batch = Batch::default();
    Key::Meta(BY_COMMUNE_KEY).put(&mut batch, b"1".as_slice());
    engine.commit(batch)?;
    tracing::info!(submissions = filed, "filed the submissions by commune");
    Ok(())
}
