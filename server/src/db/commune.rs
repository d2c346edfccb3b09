//! Reports read and written through their commune records
//! (`schema/commune.rs`). [`place_of`] says which record a report lives
//! in (every reader finds it there, from its village and period: nothing
//! maps a report's id to its place); [`Reader`] keeps each record it
//! decoded, so a pull page or a listing reads a commune's record once;
//! [`Reports`] is a write's view: the records as they stand in this batch,
//! each read and written once however many of its values the write
//! changes.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use fieldsync::{Catalogue, FieldKey, Period, SubmissionId};
use fieldsync_store::{prefix_end, Batch, Engine};

use super::log::cut_of;
use super::schema::{
    decode_history, CommuneRecord, Entity, Held, Key, LogEntry, Place, Prefix, Report, Revision,
    CHANGES_BY_COMMUNE, HISTORY,
};
use super::Result;

/// The commune whose record holds the report of `village` for `period`:
/// the village's commune on the period's last day (see
/// [`Catalogue::lineage_in`]), so a report stays where it was filed when
/// its village later moves or its commune merges.
pub(super) fn commune_of(catalogue: &Catalogue, village: &str, period: Period) -> String {
    if !catalogue.has_changed() {
        return cut_of(catalogue, village);
    }
    catalogue
        .lineage_in(village, period)
        .into_iter()
        .find(|u| u.level < fieldsync::Level::Village)
        .map_or(String::new(), |u| u.id.clone())
}

/// The place of the report of `village` for `period`: its commune's record
/// for that period (`check` verifies every report is there).
pub(super) fn place_of(catalogue: &Catalogue, village: &str, period: Period) -> Place {
    (commune_of(catalogue, village, period), period)
}

/// Most decoded records a [`Reader`] keeps.
const MAX_KEPT: usize = 256;

/// Reads reports at their places, keeping the records it decoded.
pub(super) struct Reader<'e> {
    engine: &'e dyn Engine,
    records: HashMap<Place, Arc<CommuneRecord>>,
}

impl<'e> Reader<'e> {
    pub(super) fn new(engine: &'e dyn Engine) -> Self {
        Reader { engine, records: HashMap::new() }
    }

    /// The record at `place` as stored (empty if there is none yet).
    pub(super) fn record(&mut self, place: &Place) -> Result<Arc<CommuneRecord>> {
        if let Some(record) = self.records.get(place) {
            return Ok(Arc::clone(record));
        }
        // Bounded: a long walk (a check, a listing) keeps the latest only.
        if self.records.len() >= MAX_KEPT {
            self.records.clear();
        }
        let key = Key::Commune(place.0.clone(), place.1);
        let record = match key.get(self.engine)? {
            Some(bytes) => CommuneRecord::decode(&bytes)?,
            None => CommuneRecord::default(),
        };
        let record = Arc::new(record);
        self.records.insert(place.clone(), Arc::clone(&record));
        Ok(record)
    }

    /// Report `sub` at `place` as stored, if it exists.
    pub(super) fn report(&mut self, place: &Place, sub: SubmissionId) -> Result<Option<Report>> {
        self.with_report(place, sub, Report::clone)
    }

    /// What `read` makes of report `sub` at `place` as stored, if it
    /// exists, without copying the report.
    pub(super) fn with_report<T>(
        &mut self,
        place: &Place,
        sub: SubmissionId,
        read: impl FnOnce(&Report) -> T,
    ) -> Result<Option<T>> {
        Ok(self.record(place)?.reports.get(&sub).map(read))
    }
}

/// A write's view of the reports: the stored records, and those this
/// write changed as they stand now (written by [`Reports::write`]).
pub(super) struct Reports<'e> {
    stored: Reader<'e>,
    changed: HashMap<Place, CommuneRecord>,
}

impl<'e> Reports<'e> {
    pub(super) fn new(engine: &'e dyn Engine) -> Self {
        Reports { stored: Reader::new(engine), changed: HashMap::new() }
    }

    /// Report `sub` at `place` as it stands in this write.
    pub(super) fn get(&mut self, place: &Place, sub: SubmissionId) -> Result<Option<&Report>> {
        if !self.changed.contains_key(place) {
            self.stored.record(place)?;
            // Kept by the reader: looked up again there, for the borrow.
            return Ok(self.stored.records[place].reports.get(&sub));
        }
        Ok(self.changed[place].reports.get(&sub))
    }

    /// Report `sub` at `place` as stored before this write.
    pub(super) fn before(&mut self, place: &Place, sub: SubmissionId) -> Result<Option<Report>> {
        self.stored.report(place, sub)
    }

    /// Report `sub` at `place`, to change in this write.
    pub(super) fn get_mut(
        &mut self,
        place: &Place,
        sub: SubmissionId,
    ) -> Result<Option<&mut Report>> {
        Ok(self.record_mut(place)?.reports.get_mut(&sub))
    }

    fn record_mut(&mut self, place: &Place) -> Result<&mut CommuneRecord> {
        if !self.changed.contains_key(place) {
            let stored = self.stored.record(place)?;
            self.changed.insert(place.clone(), CommuneRecord::clone(&stored));
        }
        Ok(self.changed.get_mut(place).expect("just inserted"))
    }

    /// Adds a new report at `place`.
    pub(super) fn create(&mut self, place: &Place, report: Report) -> Result<()> {
        self.record_mut(place)?.reports.insert(report.header.id, report);
        Ok(())
    }

    /// The record at `place` as this write changed it, if it did.
    pub(super) fn changed_mut(&mut self, place: &Place) -> Option<&mut CommuneRecord> {
        self.changed.get_mut(place)
    }

    /// Puts every record this write changed into `batch`, once each.
    pub(super) fn write(&mut self, batch: &mut Batch) {
        for ((commune, period), record) in self.changed.drain() {
            Key::Commune(commune, period).put(batch, record.encode());
        }
    }
}

/// Records of a place's history read per chunk when looking for a version.
const HISTORY_CHUNK: usize = 16;

/// The value `field` of report `sub` (at `place`) was given at `version`,
/// if that is one of its versions and no longer its current one (the
/// record holds that). A replaced value is filed in the place's history
/// under the last sequence number of the commit that replaced it (stores
/// written before filed every value under the commit that wrote it). The
/// commit that made `version` is the first entry at or after it in its
/// commune's cut of the log: if that entry lists `version` as the field's
/// last change there, the value lasted past that commit and is read on
/// from there to the first record holding it; if not, it was replaced in
/// that same commit and filed no later than its key (or was never a
/// version: a base version a tablet made up costs a few reads, not a walk
/// of the history).
pub(super) fn revision_at(
    engine: &dyn Engine,
    place: &Place,
    sub: SubmissionId,
    field: &FieldKey,
    version: u64,
) -> Result<Option<Held>> {
    let cut = Prefix::CommuneChanges(&place.0);
    let (from, end) = (Key::CommuneChange(place.0.clone(), version).encode(), cut.encode());
    let end = prefix_end(&end);
    let to = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let made = engine.iter(cut.tree(), Bound::Included(&from), to).chunk(1).next().transpose()?;
    let Some((key, entry)) = made else {
        return Ok(None);
    };
    let Key::CommuneChange(_, commit) = Key::decode(CHANGES_BY_COMMUNE, &key)? else {
        return Ok(None);
    };
    let (listed, _) = LogEntry::decode(CHANGES_BY_COMMUNE, commit, &entry)?;
    let field_at = Entity::Field(sub, field.clone());
    let lasted = listed.0.iter().any(|(seq, entity)| *seq == version && *entity == field_at);
    let from = Key::History(place.0.clone(), place.1, version).encode();
    let upto = Key::History(place.0.clone(), place.1, commit).encode();
    let end = prefix_end(&Prefix::HistoryOf(&place.0, place.1).encode());
    let to = match (lasted, end.as_deref()) {
        (false, _) => Bound::Included(upto.as_slice()),
        (true, Some(end)) => Bound::Excluded(end),
        (true, None) => Bound::Unbounded,
    };
    for entry in engine.iter(HISTORY, Bound::Included(&from), to).chunk(HISTORY_CHUNK) {
        let values = decode_history(&entry?.1)?;
        let mut values = values.into_iter();
        if let Some(r) =
            values.find(|r| r.sub == sub && r.field == *field && r.held.version == version)
        {
            return Ok(Some(r.held));
        }
    }
    Ok(None)
}

/// Every value `field` of report `sub` (at `place`) was given and then
/// replaced, oldest first (the current one is in the record): the
/// place's history read whole. Stores written before also filed values
/// still current; each version is listed once.
pub(super) fn revisions_of(
    engine: &dyn Engine,
    place: &Place,
    sub: SubmissionId,
    field: &FieldKey,
) -> Result<Vec<Revision>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in Prefix::HistoryOf(&place.0, place.1).iter(engine) {
        let values = decode_history(&entry?.1)?;
        for r in values.into_iter().filter(|r| r.sub == sub && r.field == *field) {
            out.insert(r.held.version, r);
        }
    }
    Ok(out.into_values().collect())
}
