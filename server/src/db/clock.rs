//! The server's clock: wall-clock milliseconds, its HLC reading, and how
//! far ahead of it a tablet's clock may claim to be.

use fieldsync::Hlc;

/// How far ahead of the server's clock a tablet's clock may claim to be.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The server's HLC reading right now.
pub fn server_hlc() -> Hlc {
    Hlc::from_millis(now_ms())
}
