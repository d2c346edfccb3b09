//! fieldsync core: the domain of the New Rural Development survey (org units,
//! indicators, periods, submissions), validation, and the sans-IO per-field
//! merge that the server and the client both drive.
//!
//! Nothing here does I/O, and nothing here knows protobuf or sled: the
//! `fieldsync-server` and `fieldsync-client` crates convert at their edges.

pub mod access;
pub mod amount;
pub mod demo;
pub mod error;
pub mod hlc;
pub mod limits;
pub mod merge;
pub mod model;
pub mod reason;
pub mod review;
pub mod rollup;
pub mod sync;
pub mod tree;
pub mod typed;
pub mod validate;

pub use amount::Amount;
pub use error::{Error, Result};
pub use hlc::Hlc;
pub use model::{
    Catalogue, DeviceId, FieldKey, GeoPoint, Indicator, Level, OrgUnit, Period, SubmissionId,
    Value, ValueKind,
};
pub use reason::Reason;
pub use tree::{Date, TreeChange, TreeHistory};
