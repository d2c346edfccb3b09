//! The application layer: every use case of the server (push, pull,
//! bootstrap and status; review; admin and enrollment; reports; signing a
//! caller in) with domain types in and out, and every access check the
//! store does not make itself. The gRPC services ([`crate::grpc`]) and the
//! web pages ([`crate::web`]) are adapters side by side over one [`App`]:
//! each decodes its input, calls a method here and encodes the answer.
//! Nothing here knows protobuf, tonic or HTTP.
//!
//! The methods are blocking (they run the store); adapters call them on the
//! blocking pool. Reads that answer a caller wait until everything they may
//! have seen is on disk ([`Store::settle`]) before returning.

pub mod admin;
pub mod auth;
mod bootstraps;
mod error;
pub mod report;
pub mod review;
pub mod sync;

use std::sync::Arc;

use fieldsync::{Catalogue, Period};

use crate::db::Store;

pub use admin::{AppUrl, NewEnrollment};
pub use auth::Caller;
pub use error::{Error, Kind, Result, MAX_MESSAGE_CHARS};
pub use report::ExportQuery;
pub use review::{ConflictQuery, Decision, HistoryFilter, SubmissionQuery};

pub use crate::db::{
    display_code, now_ms, server_hlc, Choice, Enrollment, PlanRow, Redeemed, TokenInfo, MAX_BULK,
    NOT_VALID,
};

/// What the use cases are held to, taken from the server's limits.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Calls per second each user may make, on average...
    pub calls_per_second: u32,
    /// ...and in a burst.
    pub call_burst: u32,
    /// Changes per pull page, at most.
    pub max_page: usize,
    /// Where enrollment codes send devices.
    pub app_url: AppUrl,
    /// Wrong enrollment codes one address may try a minute.
    pub enroll_failures_per_minute: u32,
}

/// The use cases over one store, shared by every adapter (so a user's call
/// rate, and an address's wrong enrollment codes, are one budget for gRPC,
/// the app's Connect calls and the web pages).
pub struct App {
    store: Arc<Store>,
    max_page: usize,
    app_url: AppUrl,
    rate: auth::Rate,
    guesses: auth::Guesses,
    bootstraps: bootstraps::Bootstraps,
}

impl App {
    pub fn new(store: Arc<Store>, settings: Settings) -> App {
        App {
            rate: auth::Rate::new(settings.calls_per_second, settings.call_burst),
            guesses: auth::Guesses::per_minute(settings.enroll_failures_per_minute),
            max_page: settings.max_page,
            app_url: settings.app_url,
            bootstraps: bootstraps::Bootstraps::default(),
            store,
        }
    }

    /// The catalogue as it is now (org units, indicators).
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.store.catalogue()
    }

    /// `answer`, once everything it may have seen is on disk.
    fn settled<T>(&self, answer: T) -> Result<T> {
        self.store.settle()?;
        Ok(answer)
    }
}

/// A period as a caller wrote it ("2022", "2022-Q3", "2022-07").
pub fn period(text: &str) -> Result<Period> {
    text.parse().map_err(Error::from_core)
}

#[cfg(test)]
mod tests;

/// An optional filter: empty means none.
fn optional<T>(text: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<Option<T>> {
    match text.trim() {
        "" => Ok(None),
        t => parse(t).map(Some),
    }
}
