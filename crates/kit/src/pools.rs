//! A service's database at start-up, as both services configure and open
//! it: connect and migrate under the lock, observe the statements and the
//! pool, and open the pool WatchEvents/WatchConversations read from. A
//! failure names the setting and the database (password hidden), so that a
//! bad URL says which one.

use sea_orm::{DatabaseConnection, DbErr};

use crate::db::{open_with_direct, redacted, stream_pool};

/// Where a service's database is and how many connections it may hold
/// (`<SERVICE>_DATABASE_URL` and the settings beside it).
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The setting that names the database, quoted in start-up errors.
    pub variable: &'static str,
    pub url: &'a str,
    /// The URL straight to PostgreSQL when `url` is a pooler's; else `url`.
    pub direct_url: &'a str,
    pub max_connections: u32,
    pub stream_connections: u32,
}

/// The database could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={url}: {source}")]
pub struct OpenError {
    pub variable: &'static str,
    /// The URL with its password hidden.
    pub url: String,
    pub source: DbErr,
}

/// The main pool and the pool the change streams read from (the same one
/// on SQLite).
pub struct Pools {
    pub db: DatabaseConnection,
    pub stream_db: DatabaseConnection,
}

impl Settings<'_> {
    fn error(&self) -> impl FnOnce(DbErr) -> OpenError + '_ {
        |source| OpenError {
            variable: self.variable,
            url: redacted(self.url),
            source,
        }
    }

    /// Connects and migrates: all a migration job does.
    pub async fn open<M: sea_orm_migration::MigratorTrait>(
        &self,
    ) -> Result<DatabaseConnection, OpenError> {
        open_with_direct::<M>(self.url, self.direct_url, self.max_connections)
            .await
            .map_err(self.error())
    }

    /// Connects and migrates, observes the statements and the pool under
    /// `service`'s name, and opens the stream pool.
    pub async fn pools<M: sea_orm_migration::MigratorTrait>(
        &self,
        service: &'static str,
    ) -> Result<Pools, OpenError> {
        let mut db = self.open::<M>().await?;
        crate::statements::observe(service, &mut db);
        crate::observe::observe_pool(service, db.clone());
        let stream_db = stream_pool(self.direct_url, &db, self.stream_connections)
            .await
            .map_err(self.error())?;
        Ok(Pools { db, stream_db })
    }
}
