//! The cross-service tests, one module per concern, in one test binary:
//! linked once instead of once per file, which was most of the time a clean
//! `cargo test --workspace` spent compiling (docs/decisions.md). A new test
//! file goes here as a module. `telemetry` stays a binary of its own, since
//! it installs the process-global telemetry pipeline.
//!
//! `cargo test -p e2e --test e2e stream::` runs one module.

mod api;
mod api_discovery;
mod api_requests;
mod api_stream;
mod auth;
mod catalog;
mod crash;
mod database_faults;
mod duplicates;
mod garbage;
mod hostile;
mod isolation;
mod links;
mod merge;
mod merge_races;
mod migration_lock;
mod migrations;
mod outages;
mod overload;
mod plans;
mod pools;
mod replica_failover;
mod replicas;
mod replies;
mod resilience;
mod roles;
mod rules;
mod rules_help_desk;
mod rules_sidebar;
mod rules_trash;
mod skeleton;
mod stream;
mod token_rotation;
mod unmerge;
mod watch_conversations;
