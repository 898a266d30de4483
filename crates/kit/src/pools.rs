//! A service's database at start-up, as both services configure and open
//! it: connect and migrate under the lock, observe the statements and the
//! pool, and open the pool WatchEvents/WatchConversations read from. A
//! failure names the setting and the database (password hidden), so that a
//! bad URL says which one.

use std::num::NonZeroU32;

use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    config::{self, ConfigError, Source},
    db::{open_with_direct, redacted, stream_pool},
};

/// Where a service's database is and how many connections it may hold:
/// `<SERVICE>_DATABASE_URL`, `<SERVICE>_DIRECT_DATABASE_URL`,
/// `<SERVICE>_DB_MAX_CONNECTIONS` and `<SERVICE>_STREAM_DB_CONNECTIONS`.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// The setting that names the database, quoted in start-up errors.
    pub variable: String,
    pub url: String,
    /// PostgreSQL reached without a transaction pooler, for what needs a
    /// session of its own: LISTEN, the migration lock, the change streams'
    /// pool. `None`: `url` (docs/operations.md, "PgBouncer").
    pub direct_url: Option<String>,
    pub max_connections: NonZeroU32,
    /// Connections of the change streams' own pool (PostgreSQL).
    pub stream_connections: NonZeroU32,
}

/// The database could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={url}: {source}")]
pub struct OpenError {
    pub variable: String,
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

impl DatabaseConfig {
    /// The settings under `service`'s prefix (`INBOX`, `TICKETING`), with
    /// `default_url` when none is set.
    pub fn from_source(
        source: &dyn Source,
        service: &str,
        default_url: &str,
    ) -> Result<Self, ConfigError> {
        let variable = format!("{service}_DATABASE_URL");
        Ok(Self {
            url: config::database_url_or(source, &variable, default_url)?,
            direct_url: {
                let url = config::secret_or(source, &format!("{service}_DIRECT_DATABASE_URL"), "")?;
                (!url.is_empty()).then_some(url)
            },
            max_connections: config::parse_or(
                source,
                &format!("{service}_DB_MAX_CONNECTIONS"),
                crate::db::DEFAULT_CONNECTIONS,
            )?,
            stream_connections: config::parse_or(
                source,
                &format!("{service}_STREAM_DB_CONNECTIONS"),
                crate::db::DEFAULT_STREAM_CONNECTIONS,
            )?,
            variable,
        })
    }

    /// Where sessions of their own go: the direct URL, else the main one.
    pub fn direct_url(&self) -> &str {
        self.direct_url.as_deref().unwrap_or(&self.url)
    }

    fn error(&self) -> impl FnOnce(DbErr) -> OpenError + '_ {
        |source| OpenError {
            variable: self.variable.clone(),
            url: redacted(&self.url),
            source,
        }
    }

    /// Connects and migrates: all a migration job does.
    pub async fn open<M: sea_orm_migration::MigratorTrait>(
        &self,
    ) -> Result<DatabaseConnection, OpenError> {
        open_with_direct::<M>(&self.url, self.direct_url(), self.max_connections.get())
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
        let stream_db = stream_pool(self.direct_url(), &db, self.stream_connections.get())
            .await
            .map_err(self.error())?;
        Ok(Pools { db, stream_db })
    }
}
