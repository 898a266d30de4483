//! The rule core: plain types and pure decisions, free of transport and
//! storage, so every rule can be tested without a server or a database.

pub mod merge;
pub mod model;
pub mod properties;
pub mod rules;

pub use model::*;
