//! The fieldsync tablet: a local store that works fully offline
//! ([`local::Tablet`]), the sync engine that reconciles it with the server
//! ([`sync::sync`]) over a [`remote::Remote`], and the `fieldsync` CLI on top.

pub mod error;
pub mod export;
pub mod local;
pub mod remote;
pub mod sync;

pub use error::{Error, Result};
pub use local::{Meta, Tablet};
pub use remote::{Grpc, Remote};

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
