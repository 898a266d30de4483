//! Compiles `proto/` with the pure-Rust `protox` compiler, so no system
//! `protoc` is needed, and keeps everything it generates in `OUT_DIR`.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("ticketing/v1/ticketing.proto"),
        root.join("inbox/v1/inbox.proto"),
    ];
    println!("cargo:rerun-if-changed={}", root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&root])?;
    // `compile_fds` does not write the descriptor set; reflection needs it.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        // Ordered maps encode deterministically, so the bytes of two equal
        // requests are equal: idempotency compares request fingerprints.
        .btree_map(".")
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
