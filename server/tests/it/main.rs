//! The server's integration tests that run its real binary
//! (`CARGO_BIN_EXE_fieldsync-server`, only reachable from this package's
//! tests), as one test binary: a module per former file. `cargo test -p
//! fieldsync-server --test it crash::` runs one module's tests.

mod backup;
mod crash;
mod first_start;
mod kill;
mod logs;
