//! Schema migrations under a lock, and the check that keeps a process off
//! a schema newer than it knows (docs/operations.md, "Schema changes").

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

use crate::db::{connect, is_sqlite};

/// Connects and brings the schema up to date, on one connection pool.
///
/// Any number of processes may start at once (replicas rolling out, an
/// init container beside them): on PostgreSQL the migrations run under a
/// session advisory lock ([`MIGRATION_LOCK`]), so one migrates while the
/// others wait, then finds nothing left to do. A database whose schema is
/// newer than this binary is refused ([`SchemaCheck`]), unless the newer
/// migrations are all expansions the previous release works with
/// (docs/operations.md, "Schema changes").
pub async fn open<M: sea_orm_migration::MigratorTrait>(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    open_with_direct::<M>(url, url, max_connections).await
}

/// [`open`], for a pool behind a transaction pooler (PgBouncer): the lock
/// is a session's, so it is taken on `direct_url`, straight to PostgreSQL.
pub async fn open_with_direct<M: sea_orm_migration::MigratorTrait>(
    url: &str,
    direct_url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    crate::db::probe(url).await?;
    let db = connect(url, max_connections).await?;
    let lock = MigrationLock::acquire(direct_url).await?;
    let migrated = migrate::<M>(&db).await;
    lock.release().await;
    migrated?;
    Ok(db)
}

/// The advisory lock key that serialises migrations (a database-scoped
/// number: the bytes of "migrate" read as an integer). Both services use
/// it; they have databases of their own, and if they ever shared one they
/// would merely take turns.
pub const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

/// Marks a migration that only adds (tables, nullable columns, indexes):
/// the previous release still works on the schema it leaves, so a process of
/// that release may serve a database that has it.
pub const EXPANSION_MARKER: &str = "_expand_";

async fn migrate<M: sea_orm_migration::MigratorTrait>(
    db: &DatabaseConnection,
) -> Result<(), DbErr> {
    let known: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let applied: Vec<String> = M::get_migration_models(db)
        .await?
        .into_iter()
        .map(|model| model.version)
        .collect();
    match SchemaCheck::of(&known, &applied) {
        SchemaCheck::Newer { unknown } => Err(DbErr::Custom(format!(
            "the database schema is newer than this binary: migration(s) {} were applied by a \
             later release and may change what this one reads or writes; refusing to serve \
             (deploy that release, or see \"Schema changes\" in docs/operations.md)",
            unknown.join(", ")
        ))),
        SchemaCheck::Expanded { unknown } => {
            tracing::warn!(
                migrations = %unknown.join(", "),
                "the database has expansions from a later release; serving on it"
            );
            Ok(())
        }
        SchemaCheck::Known => M::up(db, None).await,
    }
}

/// How a database's applied migrations compare with those a binary knows.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaCheck {
    /// Every applied migration is known: bring the rest up.
    Known,
    /// Later migrations that only expand the schema: serve without
    /// migrating (a rollback during a rollout lands here).
    Expanded { unknown: Vec<String> },
    /// A later migration that may contract or change what this binary uses.
    Newer { unknown: Vec<String> },
}

impl SchemaCheck {
    pub fn of(known: &[String], applied: &[String]) -> SchemaCheck {
        let unknown: Vec<String> = applied
            .iter()
            .filter(|name| !known.contains(name))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return SchemaCheck::Known;
        }
        // The schema is ahead: every migration this binary knows must be in
        // it too, or the two releases have diverged.
        let all_known_applied = known.iter().all(|name| applied.contains(name));
        if all_known_applied && unknown.iter().all(|name| name.contains(EXPANSION_MARKER)) {
            SchemaCheck::Expanded { unknown }
        } else {
            SchemaCheck::Newer { unknown }
        }
    }
}

/// A session advisory lock on a connection of its own (outside the pool,
/// which may hold a single connection). If the process dies, PostgreSQL
/// ends the session and the lock goes with it, so a crashed migrator never
/// blocks the next one. Nothing on SQLite: one file has one writer, and
/// its processes are a developer's.
struct MigrationLock(Option<sea_orm::sqlx::PgConnection>);

impl MigrationLock {
    async fn acquire(url: &str) -> Result<MigrationLock, DbErr> {
        use sea_orm::sqlx::Connection;
        if is_sqlite(url) {
            return Ok(MigrationLock(None));
        }
        let mut conn = sea_orm::sqlx::PgConnection::connect(url)
            .await
            .map_err(|err| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err.into())))?;
        let started = std::time::Instant::now();
        sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut conn)
            .await
            .map_err(|err| DbErr::Exec(sea_orm::RuntimeErr::SqlxError(err.into())))?;
        let waited = started.elapsed();
        if waited > Duration::from_millis(100) {
            tracing::info!(
                waited_ms = waited.as_millis() as u64,
                "waited for another process's migrations"
            );
        }
        Ok(MigrationLock(Some(conn)))
    }

    async fn release(self) {
        use sea_orm::sqlx::Connection;
        if let Some(mut conn) = self.0 {
            // Closing the session releases the lock even if the unlock fails.
            let _ = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::SchemaCheck;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_schema_newer_than_the_binary_is_refused_unless_only_expanded() {
        let known = names(&["m1", "m2"]);
        assert_eq!(SchemaCheck::of(&known, &names(&[])), SchemaCheck::Known);
        assert_eq!(SchemaCheck::of(&known, &names(&["m1"])), SchemaCheck::Known);
        assert_eq!(
            SchemaCheck::of(&known, &names(&["m1", "m2", "m3_expand_index"])),
            SchemaCheck::Expanded {
                unknown: names(&["m3_expand_index"])
            }
        );
        assert_eq!(
            SchemaCheck::of(&known, &names(&["m1", "m2", "m3_expand_a", "m4_drop_b"])),
            SchemaCheck::Newer {
                unknown: names(&["m3_expand_a", "m4_drop_b"])
            }
        );
        // Diverged: a later expansion without one of ours.
        assert_eq!(
            SchemaCheck::of(&known, &names(&["m1", "m3_expand_a"])),
            SchemaCheck::Newer {
                unknown: names(&["m3_expand_a"])
            }
        );
    }
}
