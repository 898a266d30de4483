//! Persistence of the inbox: schema, migrations and queries. Every query
//! takes the account it is scoped to.

pub mod changes;
pub mod entities;
pub mod lease;
pub mod migration;
mod migration_expand_contact_index;
mod migration_log_identity;
pub mod queries;
pub mod sidebar;

pub use entities::*;
