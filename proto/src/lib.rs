//! The edge of fieldsync: the wire types of the `fieldsync.v1` protocol,
//! generated from `proto/fieldsync/v1/sync.proto`, and their conversions to
//! and from the domain types of the core. Only the gRPC layers of the server
//! and the client use this crate.

pub mod convert;

/// Generated messages, client and server of `fieldsync.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("fieldsync.v1");
    include!(concat!(env!("OUT_DIR"), "/fieldsync.v1.serde.rs"));
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fieldsync_descriptor.bin"));

/// The protocol schema version this build speaks.
pub const SCHEMA_VERSION: u32 = 1;

/// Metadata of the FAILED_PRECONDITION a push gets when a mutation differs
/// from the one the server committed under its id (the tablet's store was
/// restored from an older copy): the first such id...
pub const REUSED_ID_KEY: &str = "fieldsync-reused-id";
/// ...and the last mutation id the server has for the device; the tablet
/// numbers its unsent edits after it.
pub const LAST_MUTATION_ID_KEY: &str = "fieldsync-last-mutation-id";
