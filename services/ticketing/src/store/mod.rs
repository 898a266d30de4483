//! Persistence of the ticketing service: schema, migrations and queries.
//! Every query takes the account it is scoped to.

pub mod entities;
pub mod events;
pub mod merges;
pub mod migration;
pub mod migration_links;
mod migration_merge;
mod migration_owner_order;
pub mod queries;
pub mod retention;

pub use entities::*;
