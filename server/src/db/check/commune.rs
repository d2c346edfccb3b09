//! The commune records' part of `check`: each record under its own commune
//! and period, holding reports whose place it is, each conflict on a field
//! that exists and listed in `conflicted` with its place; each replaced
//! value in the history filed where it is found; and every listing pointing
//! at a report that is there.

use fieldsync::{Period, SubmissionId};

use super::super::commune::{commune_of, Reader};
use super::super::schema::{
    decode_conflicted, decode_history, CommuneRecord, Key, Report, COMMUNES, CONFLICTED, HISTORY,
    PLACES, SUBMISSIONS_BY_COMMUNE,
};
use super::{show, Problems};
use crate::db::{Result, Store};

impl Store {
    /// Each commune record and the reports it holds.
    pub(super) fn check_communes(&self, problems: &mut Problems) -> Result<()> {
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
                self.check_report(problems, &commune, period, *sub, report)?;
            }
            Ok(())
        })?;
        if self.engine.last(SUBMISSIONS_BY_COMMUNE)?.is_some() {
            problems.add(
                "submissions_by_commune still holds entries: the store was not migrated".into(),
            );
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
        if header.id != SubmissionId::of(&header.village_id, header.period) {
            problems.add(format!("{name} has id {}, not its village's and period's", header.id));
        }
        let catalogue = self.catalogue();
        if commune_of(&catalogue, &header.village_id, header.period) != commune {
            problems.add(format!("{name} is in the record of {commune:?}, not its commune's"));
        }
        let place = (commune.to_owned(), period);
        for (field, (conflict, _)) in &report.conflicts {
            if !report.fields.contains_key(field) {
                problems.add(format!("the conflict on {field} of {name} is on no field"));
            }
            if conflict.at != report.at(field) {
                problems.add(format!("the conflict on {field} of {name} names another field"));
            }
            match Key::Conflicted(sub, field.clone()).get(self.engine.as_ref())? {
                None => problems.add(format!("the conflict on {field} of {name} is not listed")),
                Some(listed) if decode_conflicted(&listed).ok().as_ref() != Some(&place) => {
                    problems.add(format!(
                        "the conflict on {field} of {name} is listed at another place"
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Each record of `history` holds values of reports placed in its
    /// commune record, each at a version up to the record's key (a value is
    /// filed by the commit that replaced it, so `revision_at` finds it
    /// reading on from its version) and not past its field's current one:
    /// equal to it only in stores written before, which filed values still
    /// current, and then holding that value.
    pub(super) fn check_history(&self, problems: &mut Problems) -> Result<()> {
        let mut reader = Reader::new(self.engine.as_ref());
        self.each_entry(HISTORY, |key, value| {
            let Ok(Key::History(commune, period, seq)) = Key::decode(HISTORY, key) else {
                problems.add(format!("history key {} is malformed", show(key)));
                return Ok(());
            };
            let Ok(values) = decode_history(value) else {
                problems.add(format!(
                    "the history of {commune:?} for {period} at {seq} cannot be read"
                ));
                return Ok(());
            };
            let place = (commune.clone(), period);
            for r in values {
                let what = format!("version {} of {} of report {}", r.held.version, r.field, r.sub);
                if r.held.version > seq {
                    problems.add(format!(
                        "{what} is filed at {seq} of {commune:?}'s {period} history, before it"
                    ));
                }
                let current = reader
                    .with_report(&place, r.sub, |report| report.fields.get(&r.field).cloned());
                match current {
                    Ok(Some(Some(held))) if held.version > r.held.version => {}
                    Ok(Some(Some(held))) if held == r.held => {}
                    Ok(Some(Some(held))) if held.version == r.held.version => {
                        problems.add(format!(
                            "{what} in the history of {commune:?} for {period} differs from the \
                         field's current value"
                        ))
                    }
                    Ok(Some(Some(_))) => problems.add(format!(
                        "{what} in the history of {commune:?} for {period} is past the field's \
                         current version"
                    )),
                    Ok(Some(None)) => problems.add(format!(
                        "{what} in the history of {commune:?} for {period} is of a field the \
                         report does not hold"
                    )),
                    _ => problems.add(format!(
                        "the history of {commune:?} for {period} holds a value of report {}, \
                         but the record does not hold it",
                        r.sub
                    )),
                }
            }
            Ok(())
        })
    }

    /// Every conflict listing points at a report held where it says, and
    /// the retired index of places is empty.
    pub(super) fn check_places(&self, problems: &mut Problems) -> Result<()> {
        if self.engine.last(PLACES)?.is_some() {
            problems.add("report_places still holds entries: the store was not migrated".into());
        }
        let mut reader = Reader::new(self.engine.as_ref());
        self.each_entry(CONFLICTED, |key, value| {
            let (Ok(Key::Conflicted(sub, field)), Ok(place)) =
                (Key::decode(CONFLICTED, key), decode_conflicted(value))
            else {
                problems.add(format!("conflicted entry {} cannot be read", show(key)));
                return Ok(());
            };
            let report = reader.report(&place, sub).ok().flatten();
            if !report.is_some_and(|r| r.conflicts.contains_key(&field)) {
                problems
                    .add(format!("a conflict on {field} of report {sub} is listed but missing"));
            }
            Ok(())
        })
    }
}
