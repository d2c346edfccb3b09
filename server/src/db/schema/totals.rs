//! The record of `totals`: one org unit's totals for one period, the cell
//! of every indicator in one record, so that a write moving a unit's totals
//! writes one record for it whatever the number of indicators it touches.

use std::collections::BTreeMap;

use fieldsync::rollup::Cell;
use serde::{Deserialize, Serialize};

use super::super::Result;
use super::{decode, encode, TOTALS};

/// One org unit's totals for one period, by indicator code: only cells
/// where something counts (a unit with none has no record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::db) struct UnitTotals(pub(in crate::db) BTreeMap<String, Cell>);

/// The stored form of [`UnitTotals`], versioned so that a later field
/// never breaks reading what is on disk.
#[derive(Serialize, Deserialize)]
enum Stored {
    V1(BTreeMap<String, Cell>),
}

/// [`Stored`] as written, borrowing the cells (the same bytes).
#[derive(Serialize)]
enum Storing<'a> {
    V1(&'a BTreeMap<String, Cell>),
}

impl UnitTotals {
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&Storing::V1(&self.0))
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<UnitTotals> {
        match decode::<Stored>(TOTALS, bytes)? {
            Stored::V1(cells) => Ok(UnitTotals(cells)),
        }
    }
}
