//! The common starts of runs of keys, for scans.

use fieldsync::{Period, SubmissionId};
use fieldsync_store::Engine;

use super::{
    pair, CHANGES_BY_COMMUNE, COMMUNES, CONFLICTS, ENROLLMENTS_BY_USER, FIELDS, HISTORY,
    WRITES_BY_PLACE, WRITES_BY_USER,
};

/// The common start of a run of keys of one tree, for scans.
#[derive(Clone, Copy, Debug)]
pub(in crate::db) enum Prefix<'a> {
    /// Every field of a submission.
    FieldsOf(SubmissionId),
    /// Every conflict of a submission.
    ConflictsOf(SubmissionId),
    /// One commune's records, one per period, in period order.
    CommuneRecords(&'a str),
    /// One commune's cut of the change log, in sequence order.
    CommuneChanges(&'a str),
    /// The history of one commune record, in commit order.
    HistoryOf(&'a str, Period),
    /// The writes that name reports of one commune record, in sequence
    /// order.
    WritesAt(&'a str, Period),
    /// One user's writes, in sequence order.
    WritesBy(&'a str),
    /// One user's enrollment codes.
    EnrollmentsOf(&'a str),
    /// The plan figures of one period and org unit.
    Cells(&'static str, Period, &'a str),
    /// The records of `totals` or `plans` whose period starts with a year
    /// (the year, its quarters and its months).
    CellsOfYear(&'static str, u16),
}

impl Prefix<'_> {
    pub(in crate::db) fn tree(&self) -> &'static str {
        match self {
            Prefix::FieldsOf(_) => FIELDS,
            Prefix::ConflictsOf(_) => CONFLICTS,
            Prefix::CommuneRecords(_) => COMMUNES,
            Prefix::CommuneChanges(_) => CHANGES_BY_COMMUNE,
            Prefix::HistoryOf(..) => HISTORY,
            Prefix::WritesAt(..) => WRITES_BY_PLACE,
            Prefix::WritesBy(_) => WRITES_BY_USER,
            Prefix::EnrollmentsOf(_) => ENROLLMENTS_BY_USER,
            Prefix::Cells(tree, ..) | Prefix::CellsOfYear(tree, _) => tree,
        }
    }

    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        match self {
            Prefix::FieldsOf(sub) | Prefix::ConflictsOf(sub) => sub.0.as_bytes().to_vec(),
            Prefix::CommuneRecords(name)
            | Prefix::CommuneChanges(name)
            | Prefix::WritesBy(name)
            | Prefix::EnrollmentsOf(name) => pair(name.as_bytes(), &[]),
            Prefix::HistoryOf(commune, period) | Prefix::WritesAt(commune, period) => {
                pair(&pair(commune.as_bytes(), period.to_string().as_bytes()), &[])
            }
            Prefix::Cells(_, period, unit) => {
                [period.to_string().as_bytes(), &[0], unit.as_bytes(), &[0]].concat()
            }
            Prefix::CellsOfYear(_, year) => year.to_string().into_bytes(),
        }
    }

    /// The entries under this prefix, in key order, read lazily.
    pub(in crate::db) fn iter<'e>(&self, engine: &'e dyn Engine) -> fieldsync_store::ScanIter<'e> {
        engine.iter_prefix(self.tree(), &self.encode())
    }
}
