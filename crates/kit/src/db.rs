//! Database connections. SQLite (the embedded default) and PostgreSQL are
//! reached through the same sea-orm API; this module hides where they differ.

use std::{num::NonZeroU32, time::Duration};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, SqlErr};

/// Opens the database at `url`, creating the SQLite file and its folder if
/// needed.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out: one more round trip to
        // the server before each statement or transaction outside one,
        // which every call waits for. A connection used within the last
        // second is known good; one idle longer (a restart, a proxy or
        // firewall timeout may have dropped it) is still checked first. A
        // connection that died while in steady use fails its call once
        // (UNAVAILABLE, which clients retry) and is replaced.
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR);
    if is_sqlite(url) {
        if let Some(dir) =
            sqlite_path(url).and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_owned()))
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&dir)
                .map_err(|err| DbErr::Custom(format!("cannot create {}: {err}", dir.display())))?;
        }
        // One connection serialises every transaction: SQLite allows a
        // single writer, and a deferred transaction that upgrades to a
        // writer can fail with SQLITE_BUSY instead of waiting. The embedded
        // default favours correctness; PostgreSQL is the scalable backend.
        options.max_connections(1).min_connections(1);
    } else {
        options.max_connections(max_connections).min_connections(1);
        #[cfg(unix)]
        if let Ok(pg) = url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>() {
            let server_port = pg.get_port();
            options.map_sqlx_postgres_pool_opts(move |pool| {
                pool.after_connect(move |conn, _| {
                    Box::pin(crate::nodelay::disable_nagle(conn, server_port))
                })
            });
        }
    }
    Database::connect(options).await
}

/// How long a pooled connection may sit idle before it is pinged again
/// when handed out ([`connect`]).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Default size of each service's main pool.
pub const DEFAULT_CONNECTIONS: NonZeroU32 = NonZeroU32::new(16).expect("not zero");
/// Default size of each service's change-stream pool ([`stream_pool`]).
pub const DEFAULT_STREAM_CONNECTIONS: NonZeroU32 = NonZeroU32::new(4).expect("not zero");

/// A pool of its own for what feeds the change streams (their reads, and
/// commit announcements), so that it never queues for a connection behind
/// request transactions: under load those hold every connection of the
/// main pool while they wait for each other's row locks. On SQLite, the
/// main connection (one file, one connection).
pub async fn stream_pool(
    url: &str,
    main: &DatabaseConnection,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    if is_sqlite(url) {
        Ok(main.clone())
    } else {
        connect(url, max_connections).await
    }
}

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL without its password, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether the database could not be reached, rather than refusing or
/// failing a statement: no connection to be had, the connection lost, the
/// login refused, the database gone or shutting down. Such a call changed
/// nothing and can be retried, elsewhere or later (UNAVAILABLE).
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error};
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_ref() {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| unreachable_code(&code)),
        _ => false,
    }
}

/// PostgreSQL's connection exceptions (class 08), operator intervention
/// (57P01–57P05: shutdown, crash recovery, terminated sessions), refused
/// logins (28000, 28P01), a missing database (3D000) and too many
/// connections (53300); SQLite's "cannot open" (14).
fn unreachable_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("57P")
        || matches!(code, "28000" | "28P01" | "3D000" | "53300" | "14")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/inbox"),
            "postgres://app:***@db:5432/inbox"
        );
        assert_eq!(
            redacted("sqlite://data/inbox.db?mode=rwc"),
            "sqlite://data/inbox.db?mode=rwc"
        );
        assert_eq!(
            sqlite_path("sqlite://data/inbox.db?mode=rwc"),
            Some("data/inbox.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}

/// One connection to PostgreSQL before the pool opens: the pool retries
/// refused connections until its timeout and then reports only that it timed
/// out, where start-up should fail at once with the driver's cause
/// (connection refused, no such host, bad password).
pub(crate) async fn probe(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _, postgres::PgConnectOptions};
    if is_sqlite(url) {
        return Ok(());
    }
    let options: PgConnectOptions = url
        .parse()
        .map_err(|err: sea_orm::sqlx::Error| DbErr::Custom(err.to_string()))?;
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => conn
            .close()
            .await
            .map_err(|err| DbErr::Custom(err.to_string())),
        Ok(Err(err)) => Err(DbErr::Custom(format!("cannot connect: {err}"))),
        Err(_) => Err(DbErr::Custom(format!("no answer within {PROBE_TIMEOUT:?}"))),
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates a plain (non-unique) index, for migrations.
pub async fn create_index(
    manager: &sea_orm_migration::SchemaManager<'_>,
    table: &str,
    name: &str,
    columns: &[&str],
) -> Result<(), DbErr> {
    let mut index = sea_orm_migration::prelude::Index::create();
    index.name(name).table(table.to_owned());
    for column in columns {
        index.col(column.to_string());
    }
    manager.create_index(index.to_owned()).await
}

/// What can go wrong inside a transaction: a refusal to pass to the caller,
/// or a database error that the caller of the transaction may resolve (a
/// unique violation means a concurrent writer won a race).
#[derive(Debug)]
pub enum TxError {
    Api(crate::ApiError),
    Db(DbErr),
}

impl TxError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, TxError::Db(err) if is_unique_violation(err))
    }
}

impl From<crate::ApiError> for TxError {
    fn from(err: crate::ApiError) -> Self {
        TxError::Api(err)
    }
}

impl From<DbErr> for TxError {
    fn from(err: DbErr) -> Self {
        TxError::Db(err)
    }
}

impl From<TxError> for crate::ApiError {
    fn from(err: TxError) -> Self {
        match err {
            TxError::Api(err) => err,
            TxError::Db(err) => err.into(),
        }
    }
}

/// On PostgreSQL, tells other replicas' watchers on `channel` that this
/// process committed, whenever `signal` asks. The NOTIFY runs in its own
/// statement after the commits it announces, never inside them: PostgreSQL
/// serialises the commits of notifying transactions on one cluster-wide lock
/// held through their WAL flush, which would queue every writer behind every
/// other. Returns at once on SQLite (a single process).
pub async fn announce_commits(
    db: DatabaseConnection,
    channel: &'static str,
    signal: crate::signal::CommitSignal,
    mut draining: crate::shutdown::Draining,
) {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return;
    }
    // A notification is no data: its transaction need not wait for the WAL
    // to reach the disk, and so holds PostgreSQL's notification lock only
    // briefly. Both statements go in one round trip, as one transaction.
    // The payload is the signal's origin, so this process's own relay can
    // tell its announcements from other replicas'.
    let notify = format!(
        "SET LOCAL synchronous_commit = off; NOTIFY {channel}, '{}'",
        signal.origin()
    );
    loop {
        tokio::select! {
            _ = signal.announcement_wanted() => {}
            _ = draining.wait() => return,
        }
        let sent = tokio::time::Instant::now();
        if let Err(err) = db.execute_unprepared(&notify).await {
            // Watchers elsewhere still poll; the next commit tries again.
            tracing::warn!(channel, %err, "cannot announce commits to other replicas");
        }
        // Under load a commit ends every few hundred microseconds; spacing
        // announcements folds those of a few milliseconds into one, which
        // other replicas cannot tell apart from one per commit. Each one is
        // a transaction of its own that every listening replica must also
        // receive, so fewer is measurably faster (docs/decisions.md).
        tokio::select! {
            _ = tokio::time::sleep_until(sent + ANNOUNCEMENT_SPACING) => {}
            _ = draining.wait() => return,
        }
    }
}

/// The least time between two announcements of one process.
pub const ANNOUNCEMENT_SPACING: Duration = Duration::from_millis(20);

/// Wakes `signal` whenever a transaction of another replica commits a
/// notification on `channel` (PostgreSQL LISTEN). Watchers also poll, so a
/// lost notification only delays them. Returns at once on SQLite.
pub async fn relay_notifications(
    db: DatabaseConnection,
    channel: &'static str,
    signal: crate::signal::CommitSignal,
    mut draining: crate::shutdown::Draining,
) {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return;
    }
    loop {
        match sea_orm::sqlx::postgres::PgListener::connect_with(db.get_postgres_connection_pool())
            .await
        {
            Ok(mut listener) => {
                if let Err(err) = listener.listen(channel).await {
                    tracing::warn!(channel, %err, "cannot LISTEN; relying on polling");
                } else {
                    loop {
                        tokio::select! {
                            received = listener.recv() => match received {
                                // Its own announcement: its watchers were
                                // woken when it committed.
                                Ok(heard) if heard.payload() == signal.origin() => {}
                                Ok(_) => signal.wake(),
                                Err(err) => {
                                    tracing::warn!(channel, %err, "notification listener failed");
                                    break;
                                }
                            },
                            _ = draining.wait() => return,
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(channel, %err, "cannot listen for notifications; relying on polling")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = draining.wait() => return,
        }
    }
}

pub use crate::migrate::{open, open_with_direct};
