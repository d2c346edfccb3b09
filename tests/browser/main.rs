//! The tests in headless Chromium, as one test binary: the web pages
//! (`web`), the surveyors' app (`app`) and its sync scenarios and shared
//! validation cases (`app_sync`). They take turns on the one lock of the
//! harness (`util::browser::TURN`), so no two browsers run at once.
//! `cargo test -p fieldsync-tests --test browser app::` runs one module's
//! tests.

#[path = "../util/mod.rs"]
mod util;

mod app;
mod app_sync;
mod web;
