//! Every on-open migration: a new store gets its catalogue and the markers
//! of every migration; a store written by an older version is brought up
//! to date, in chunks, each migration rerunnable after a crash and marked
//! done last. The audit trail's move to one record per write is in
//! `migrate/trail.rs`, the totals' to one record per org unit and period
//! in `migrate/totals.rs`, the reports' to one record per commune and
//! period in `migrate/commune.rs`, the log's and `conflicted`'s naming of
//! places (and `report_places` emptied) in `migrate/places.rs`.

mod commune;
mod places;
mod totals;
mod trail;

#[cfg(test)]
pub(super) use commune::tests::write_per_record_layout;
#[cfg(test)]
pub(super) use places::tests::unplaced;

use std::collections::BTreeMap;

use fieldsync::sync::{Conflict, FieldState};
use fieldsync::{Catalogue, SubmissionId};
use fieldsync_store::{Batch, Engine};

use super::log::cut_of;
use super::schema::retired::{CHANGES_BY_DISTRICT, ENTITY_SEQ};
use super::schema::{
    decode, decode_place, decode_with_seq, encode, read_u64, with_seq, Entity, Key, LogEntry,
    Place, PlacedEntry, SubmissionHeader, BY_COMMUNE_KEY, CATALOGUE_KEY, CHANGES,
    CHANGES_BY_COMMUNE, COMMUNES, COMMUNE_KEY, CONFLICTS, CUT_KEY, DERIVED_TOTALS_KEY, FIELDS,
    LISTING_KEY, LOG_KEY, META, PLACES_KEY, SEQ_KEY, SUBMISSIONS, SUBMISSIONS_BY_COMMUNE,
    TOTALS_KEY, TRAIL_KEY, TRAIL_PLACE_KEY, WRITES,
};
use super::{Error, Result};

/// Entries read and written per batch of a migration.
pub(super) const CHUNK: usize = 10_000;

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
    Key::Meta(TRAIL_KEY).put(&mut batch, WRITES);
    Key::Meta(LOG_KEY).put(&mut batch, b"1".as_slice());
    Key::Meta(TOTALS_KEY).put(&mut batch, b"1".as_slice());
    Key::Meta(COMMUNE_KEY).put(&mut batch, COMMUNES);
    Key::Meta(LISTING_KEY).put(&mut batch, b"1".as_slice());
    Key::Meta(TRAIL_PLACE_KEY).put(&mut batch, b"1".as_slice());
    Key::Meta(PLACES_KEY).put(&mut batch, b"1".as_slice());
    Key::Meta(DERIVED_TOTALS_KEY).put(&mut batch, b"1".as_slice());
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
        && Key::Meta(TRAIL_KEY).get(engine)?.is_some()
        && Key::Meta(LOG_KEY).get(engine)?.is_some()
        && Key::Meta(TOTALS_KEY).get(engine)?.is_some()
        && Key::Meta(COMMUNE_KEY).get(engine)?.is_some()
        && Key::Meta(LISTING_KEY).get(engine)?.is_some()
        && Key::Meta(TRAIL_PLACE_KEY).get(engine)?.is_some()
        && Key::Meta(PLACES_KEY).get(engine)?.is_some()
        && Key::Meta(DERIVED_TOTALS_KEY).get(engine)?.is_some())
}

/// Runs every migration the store has not had yet.
pub(super) fn run(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    if Key::Meta(CUT_KEY).get(engine)?.is_none() {
        cut_the_log_by_commune(engine, catalogue)?;
    }
    if Key::Meta(TRAIL_KEY).get(engine)?.is_none() {
        trail::file_the_trail_by_write(engine)?;
    }
    if Key::Meta(LOG_KEY).get(engine)?.is_none() {
        append_only_log(engine)?;
    }
    if Key::Meta(TOTALS_KEY).get(engine)?.is_none() {
        totals::one_record_per_unit(engine)?;
    }
    if Key::Meta(COMMUNE_KEY).get(engine)?.is_none() {
        commune::file_reports_by_commune(engine, catalogue)?;
    }
    if Key::Meta(LISTING_KEY).get(engine)?.is_none() {
        list_from_the_records(engine)?;
    }
    if Key::Meta(TRAIL_PLACE_KEY).get(engine)?.is_none() {
        trail::index_by_place(engine, catalogue)?;
    }
    if Key::Meta(PLACES_KEY).get(engine)?.is_none() {
        places::name_places(engine)?;
    }
    if Key::Meta(DERIVED_TOTALS_KEY).get(engine)?.is_none() {
        totals::no_derived_totals(engine, catalogue)?;
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
    // A store whose reports already live in commune records (its log cut
    // again, say) has its villages there.
    let village = match village {
        Some(v) => Some(v),
        None => match stored_place(engine, entity.submission())? {
            Some(place) => super::commune::Reader::new(engine)
                .report(&place, entity.submission())?
                .map(|r| r.header.village_id),
            None => None,
        },
    };
    village.ok_or_else(|| Error::Corrupt {
        tree: CHANGES,
        why: format!("change {seq} points at a missing record"),
    })
}

/// Where report `sub` lives, as the index of places that stores kept
/// until their log and conflict listings named places kept it (read by
/// migrations only: `None` once it is emptied).
fn stored_place(engine: &dyn Engine, sub: SubmissionId) -> Result<Option<Place>> {
    Key::Place(sub).get(engine)?.map(|b| decode_place(&b)).transpose()
}

/// Builds the commune cut of the change log from the log itself and drops
/// the district cut it replaces, in batches; rerunning it after a crash
/// rewrites the same entries, and the marker is written last.
fn cut_the_log_by_commune(engine: &dyn Engine, catalogue: &Catalogue) -> Result<()> {
    let mut moved = 0usize;
    let mut batch = Batch::default();
    for entry in engine.iter_all(CHANGES).chunk(CHUNK) {
        let (seq, bytes) = entry?;
        let seq = read_u64(CHANGES, &seq)?;
        // An entry that names its places (a store cut again) is cut by them.
        if let Some(placed) = PlacedEntry::decode(CHANGES, seq, &bytes)? {
            for (cut, listed) in placed.by_commune() {
                Key::CommuneChange(cut, seq).put(&mut batch, listed.encode());
            }
            moved += 1;
            continue;
        }
        let (listed, old) = LogEntry::decode(CHANGES, seq, &bytes)?;
        let mut cuts: BTreeMap<String, Vec<(u64, Entity)>> = BTreeMap::new();
        for (at, entity) in listed.0 {
            let cut = cut_of(catalogue, &village_of(engine, at, &entity)?);
            cuts.entry(cut).or_default().push((at, entity));
        }
        for (cut, listed) in cuts {
            // An entry of the old shape is copied as it is, for the
            // migration to one entry per commit to rewrite with the log.
            let value = if old { bytes.clone() } else { LogEntry(listed).encode() };
            Key::CommuneChange(cut, seq).put(&mut batch, value);
        }
        moved += 1;
        if batch.len() >= CHUNK {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    engine.commit(batch)?;
    retire(engine, CHANGES_BY_DISTRICT, CUT_KEY, CHANGES_BY_COMMUNE.as_bytes())?;
    tracing::info!(changes = moved, "cut the change log by commune");
    Ok(())
}

/// Empties `submissions_by_commune`, in batches: areas are listed from
/// their communes' records. A rerun after a crash deletes what is left; the
/// marker is written last.
fn list_from_the_records(engine: &dyn Engine) -> Result<()> {
    empty(engine, SUBMISSIONS_BY_COMMUNE)?;
    let mut batch = Batch::default();
    batch.delete(META, BY_COMMUNE_KEY.to_vec());
    Key::Meta(LISTING_KEY).put(&mut batch, b"1".as_slice());
    engine.commit(batch)?;
    tracing::info!("areas are listed from the commune records");
    Ok(())
}

/// Empties `tree`, which a migration replaced, then writes the migration's
/// `marker` (a rerun after a crash deletes what is left).
fn retire(
    engine: &dyn Engine,
    tree: &'static str,
    marker: &'static [u8],
    value: &[u8],
) -> Result<()> {
    empty(engine, tree)?;
    let mut batch = Batch::default();
    Key::Meta(marker).put(&mut batch, value);
    Ok(engine.commit(batch)?)
}

/// Deletes every entry of `tree`, in batches.
fn empty(engine: &dyn Engine, tree: &'static str) -> Result<()> {
    loop {
        let old = engine.iter_all(tree).chunk(CHUNK).take(CHUNK);
        let mut batch = Batch::default();
        for entry in old {
            batch.delete(tree, entry?.0);
        }
        if batch.is_empty() {
            return Ok(());
        }
        engine.commit(batch)?;
    }
}

/// Brings a log that moved each entity to its head (one entity per entry,
/// found again through `entity_seq`) to one entry per commit: each old
/// entry becomes an entry of one change under the same sequence number, in
/// the log and in its commune's cut, and its conflict's or header's record
/// gets that number after it (a field's version already is it); then
/// `entity_seq` is emptied. In batches: an entry and its record are
/// rewritten in one, a rerun after a crash leaves what is already rewritten
/// (it reads as a new entry), and the marker is written last.
fn append_only_log(engine: &dyn Engine) -> Result<()> {
    let mut moved = 0usize;
    let mut batch = Batch::default();
    for entry in engine.iter_all(CHANGES).chunk(CHUNK) {
        let (key, bytes) = entry?;
        let seq = read_u64(CHANGES, &key)?;
        let (listed, old) = LogEntry::decode(CHANGES, seq, &bytes)?;
        if !old {
            continue;
        }
        mark_latest(engine, &mut batch, seq, &listed.0[0].1)?;
        Key::Change(seq).put(&mut batch, listed.encode());
        moved += 1;
        if batch.len() >= CHUNK {
            engine.commit(std::mem::take(&mut batch))?;
        }
    }
    for entry in engine.iter_all(CHANGES_BY_COMMUNE).chunk(CHUNK) {
        let (key, bytes) = entry?;
        let Key::CommuneChange(cut, seq) = Key::decode(CHANGES_BY_COMMUNE, &key)? else {
            return Err(Error::Corrupt { tree: CHANGES_BY_COMMUNE, why: "not a cut entry".into() });
        };
        let (listed, old) = LogEntry::decode(CHANGES_BY_COMMUNE, seq, &bytes)?;
        if old {
            Key::CommuneChange(cut, seq).put(&mut batch, listed.encode());
            if batch.len() >= CHUNK {
                engine.commit(std::mem::take(&mut batch))?;
            }
        }
    }
    engine.commit(batch)?;
    retire(engine, ENTITY_SEQ, LOG_KEY, b"1")?;
    tracing::info!(changes = moved, "made the change log one entry per commit");
    Ok(())
}

/// Writes into a conflict's or header's record that `seq` is its latest
/// change.
fn mark_latest(engine: &dyn Engine, batch: &mut Batch, seq: u64, entity: &Entity) -> Result<()> {
    let record = entity.record();
    let missing = || Error::Corrupt {
        tree: CHANGES,
        why: format!("change {seq} points at a missing record"),
    };
    let bytes = match entity {
        Entity::Field(..) => return Ok(()),
        Entity::Conflict(..) | Entity::Review(_) => record.get(engine)?.ok_or_else(missing)?,
    };
    let plain = match entity {
        Entity::Conflict(..) => encode(&decode_with_seq::<Conflict>(CONFLICTS, &bytes)?.0),
        _ => encode(&decode_with_seq::<SubmissionHeader>(SUBMISSIONS, &bytes)?.0),
    };
    record.put(batch, with_seq(plain, seq));
    Ok(())
}
