//! The commune records' part of `check`: each record under its own commune
//! and period, holding reports placed there and filed under that commune,
//! each field at a version whose revision holds its value, each conflict
//! on a field that exists and listed in `conflicted`; and every place,
//! filing and listing pointing at a report that is there, so that each
//! commune files exactly the reports its records hold.

use std::collections::BTreeMap;

use fieldsync::{Period, SubmissionId};

use super::super::commune::{commune_of, revision_at, Reader};
use super::super::schema::{
    decode_history, decode_place, CommuneRecord, Key, Report, COMMUNES, CONFLICTED, HISTORY,
    PLACES, SUBMISSIONS_BY_COMMUNE,
};
use super::{show, Problems};
use crate::db::{Result, Store};

impl Store {
    /// Each commune record and the reports it holds.
    pub(super) fn check_communes(&self, problems: &mut Problems) -> Result<()> {
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        self.each_entry(COMMUNES, |key, value| {
            let Ok(Key::Commune(commune, period)) = Key::decode(COMMUNES, key) else {
                problems.add(format!("commune record key {} is malformed", show(key)));
                return Ok(());
            };
            let Ok(record) = CommuneRecord::decode(value) else {
                problems
                    .add(format!("the record of commune {commune:?} for {period} cannot be read"));
                return Ok(());
            };
            for (sub, report) in &record.reports {
                *held.entry(commune.clone()).or_default() += 1;
                self.check_report(problems, &commune, period, *sub, report)?;
            }
            Ok(())
        })?;
        let mut filed: BTreeMap<String, usize> = BTreeMap::new();
        self.each_entry(SUBMISSIONS_BY_COMMUNE, |key, _| {
            match Key::decode(SUBMISSIONS_BY_COMMUNE, key) {
                Ok(Key::SubmissionInCommune(cut, _)) => *filed.entry(cut).or_default() += 1,
                _ => problems.add(format!("submissions_by_commune key {} is malformed", show(key))),
            }
            Ok(())
        })?;
        for commune in held.keys().chain(filed.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (h, f) = (held.get(commune).unwrap_or(&0), filed.get(commune).unwrap_or(&0));
            if h != f {
                problems.add(format!(
                    "commune {commune:?} files {f} report(s) but its records hold {h}"
                ));
            }
        }
        Ok(())
    }

    /// One report of the record of `commune` for `period`.
    fn check_report(
        &self,
        problems: &mut Problems,
        commune: &str,
        period: Period,
        sub: SubmissionId,
        report: &Report,
    ) -> Result<()> {
        let header = &report.header;
        let name = format!("the report of {} for {}", header.village_id, header.period);
        if header.id != sub || header.period != period {
            problems.add(format!("{name} is held as report {sub} of {period}"));
        }
        let catalogue = self.catalogue();
        if commune_of(&catalogue, &header.village_id, header.period) != commune {
            problems.add(format!("{name} is in the record of {commune:?}, not its commune's"));
        }
        let place = Key::Place(sub).get(self.engine.as_ref())?;
        if place.map(|b| decode_place(&b)).transpose().ok().flatten()
            != Some((commune.to_owned(), period))
        {
            problems
                .add(format!("{name} is not placed in the record of {commune:?} that holds it"));
        }
        let filing = Key::SubmissionInCommune(commune.to_owned(), sub);
        if filing.get(self.engine.as_ref())?.is_none() {
            problems.add(format!("{name} is not filed under its commune {commune:?}"));
        }
        let place = (commune.to_owned(), period);
        for (field, held) in &report.fields {
            let at = revision_at(self.engine.as_ref(), &place, sub, field, held.version)?;
            match at {
                None => problems.add(format!(
                    "field {field} of {name} is at version {} but that revision is missing",
                    held.version
                )),
                Some(rev) if rev == *held => {}
                Some(_) => problems.add(format!(
                    "field {field} of {name}: revision {} differs from the field's current value",
                    held.version
                )),
            }
        }
        for (field, (conflict, _)) in &report.conflicts {
            if !report.fields.contains_key(field) {
                problems.add(format!("the conflict on {field} of {name} is on no field"));
            }
            if conflict.at != report.at(field) {
                problems.add(format!("the conflict on {field} of {name} names another field"));
            }
            if Key::Conflicted(sub, field.clone()).get(self.engine.as_ref())?.is_none() {
                problems.add(format!("the conflict on {field} of {name} is not listed"));
            }
        }
        Ok(())
    }

    /// Each record of `history` holds values of reports placed in its
    /// commune record, at versions past the record's previous key and up to
    /// its own, so that each version is found where [`revision_at`] looks.
    pub(super) fn check_history(&self, problems: &mut Problems) -> Result<()> {
        let mut reader = Reader::new(self.engine.as_ref());
        let mut previous: Option<(String, Period, u64)> = None;
        self.each_entry(HISTORY, |key, value| {
            let Ok(Key::History(commune, period, seq)) = Key::decode(HISTORY, key) else {
                problems.add(format!("history key {} is malformed", show(key)));
                return Ok(());
            };
            let after = match &previous {
                Some((c, p, s)) if *c == commune && *p == period => *s,
                _ => 0,
            };
            previous = Some((commune.clone(), period, seq));
            let Ok(values) = decode_history(value) else {
                problems.add(format!(
                    "the history of {commune:?} for {period} at {seq} cannot be read"
                ));
                return Ok(());
            };
            for r in values {
                if r.held.version > seq || r.held.version <= after {
                    problems.add(format!(
                        "version {} of {} of report {} is filed at {seq} of {commune:?}'s {period} \
                         history, after {after}",
                        r.held.version, r.field, r.sub
                    ));
                }
                if !matches!(reader.place(r.sub), Ok(Some((c, p))) if c == commune && p == period) {
                    problems.add(format!(
                        "the history of {commune:?} for {period} holds a value of report {}, \
                         which is not placed there",
                        r.sub
                    ));
                }
            }
            Ok(())
        })
    }

    /// Every place, filing and conflict listing points at a report held
    /// where it says.
    pub(super) fn check_places(&self, problems: &mut Problems) -> Result<()> {
        let mut reader = Reader::new(self.engine.as_ref());
        self.each_entry(PLACES, |key, value| {
            let (Ok(Key::Place(sub)), Ok(_)) = (Key::decode(PLACES, key), decode_place(value))
            else {
                problems.add(format!("report place {} cannot be read", show(key)));
                return Ok(());
            };
            if let Err(e) = reader.report(sub) {
                problems.add(e.to_string());
            }
            Ok(())
        })?;
        self.each_entry(SUBMISSIONS_BY_COMMUNE, |key, _| {
            let Ok(Key::SubmissionInCommune(cut, sub)) = Key::decode(SUBMISSIONS_BY_COMMUNE, key)
            else {
                return Ok(()); // reported with the records
            };
            match reader.place(sub) {
                Ok(Some((commune, _))) if commune == cut => {}
                Ok(Some((commune, _))) => problems.add(format!(
                    "report {sub} is filed under {cut:?} but lives in {commune:?}'s record"
                )),
                Ok(None) => problems.add(format!(
                    "submission {sub} is filed under commune {cut:?} but has no report"
                )),
                Err(_) => {} // reported with the places
            }
            Ok(())
        })?;
        self.each_entry(CONFLICTED, |key, _| {
            let Ok(Key::Conflicted(sub, field)) = Key::decode(CONFLICTED, key) else {
                problems.add(format!("conflicted key {} is malformed", show(key)));
                return Ok(());
            };
            let report = reader.report(sub).ok().flatten();
            if !report.is_some_and(|r| r.conflicts.contains_key(&field)) {
                problems
                    .add(format!("a conflict on {field} of report {sub} is listed but missing"));
            }
            Ok(())
        })
    }
}
