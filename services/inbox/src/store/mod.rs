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

/// A migrated SQLite file of a unit test's own, removed when dropped.
#[cfg(test)]
pub(crate) struct Scratch {
    pub db: sea_orm::DatabaseConnection,
    pub url: String,
    file: std::path::PathBuf,
}

#[cfg(test)]
impl Scratch {
    pub async fn open(label: &str) -> Self {
        let file = std::env::temp_dir().join(format!("inbox-{label}-{}.db", kit::new_id()));
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let db = kit::db::open::<migration::Migrator>(&url, 1)
            .await
            .expect("open");
        Self { db, url, file }
    }
}

#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
