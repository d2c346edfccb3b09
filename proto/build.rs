//! Generates the `fieldsync.v1` types from `fieldsync/v1/*.proto` with protox,
//! a pure-Rust protobuf compiler, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["fieldsync/v1/sync.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let encoded = prost::Message::encode_to_vec(&descriptors);
    std::fs::write(out.join("fieldsync_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    // The proto3 JSON mapping of the same messages, for the Connect
    // protocol the surveyors' app speaks.
    pbjson_build::Builder::new().register_descriptors(&encoded)?.build(&[".fieldsync"])?;
    Ok(())
}
