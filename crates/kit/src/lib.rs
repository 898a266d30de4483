//! What both services share: configuration sources, telemetry, the gRPC
//! server builder and its lifecycle, the error model, database access,
//! caller identity and request idempotency.

pub mod config;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod identity;
pub mod paging;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod time;

pub use error::ApiError;
