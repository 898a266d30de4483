//! What both services share: configuration sources, telemetry, the gRPC
//! server builder and its lifecycle, the error model, database access,
//! caller identity and request idempotency.

pub mod access;
pub mod auth;
pub mod call;
pub mod client_trace;
pub mod config;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod identity;
#[cfg(unix)]
pub mod migrate;
pub mod nodelay;
pub mod observe;
pub mod paging;
#[cfg(unix)]
pub mod pools;
pub mod positional;
pub mod readiness;
pub mod refusals;
pub mod rows;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod signal;
pub mod statements;
pub mod stream;
pub mod telemetry;
pub mod time;
pub mod token;
pub mod transaction;
pub mod validate;

pub use error::ApiError;

/// A new resource id: a UUIDv7, so ids sort roughly by creation time and
/// index inserts stay local.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
