//! The end-to-end tests without a browser, as one test binary (one link of
//! the server, the tablet and their clients instead of one per file): a
//! module per area, each starting its own servers on port 0 over temp dirs
//! through the shared harness (`tests/util/`). `cargo test -p
//! fieldsync-tests --test e2e review::` runs one module's tests.

#[path = "../util/mod.rs"]
mod util;

mod access;
mod backup_rpc;
mod bad_input;
mod connect;
mod disk;
mod enroll;
mod fuzz;
mod limits;
mod review;
mod rules;
mod simulation;
mod sync;
mod tls;
mod validation_cases;
mod web_http;
