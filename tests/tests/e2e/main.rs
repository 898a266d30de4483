//! The cross-service tests, one module per concern, in one test binary:
//! linked once instead of once per file, which was most of the time a clean
//! `cargo test --workspace` spent compiling (docs/decisions.md). A new test
//! file goes here as a module. `telemetry` stays a binary of its own, since
//! it installs the process-global telemetry pipeline.
//!
//! `cargo test -p e2e --test e2e stream::` runs one module.

mod api;
mod auth;
mod catalog;
mod crash;
mod garbage;
mod isolation;
mod overload;
mod pools;
mod replicas;
mod resilience;
mod rules;
mod skeleton;
mod stream;
