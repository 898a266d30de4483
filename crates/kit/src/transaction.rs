//! A span per database transaction, from asking the pool for a connection
//! to its COMMIT or ROLLBACK, and `db.client.connection.wait_time`: how
//! long each transaction waited for its pooled connection.
//!
//! sea-orm reports statements (`kit::statements`) but not transactions, and
//! sqlx measures a pool's acquire time only into a log line. So both
//! services open every transaction here: [`Transactions::begin`] names it
//! after its use case, and the [`Tx`] it returns runs the transaction's
//! statements inside that span, so the trace reads RPC → transaction →
//! statements.
//!
//! The wait time is the duration of sea-orm's `begin`: acquiring the
//! connection (waiting for a free one, or opening a new one) and then the
//! BEGIN statement's round trip, which sea-orm runs before it returns and
//! does not report apart. On SQLite BEGIN costs microseconds; on PostgreSQL
//! it adds one round trip (well under a millisecond beside the database),
//! so a pool that makes callers wait shows plainly above that floor.

use std::time::Instant;

use opentelemetry::{KeyValue, metrics::Histogram, trace::TraceContextExt as _};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Opens the transactions of one pool (a service's main pool), each in a
/// span of its own, and measures their wait for a connection.
#[derive(Clone)]
pub struct Transactions {
    db: DatabaseConnection,
    /// `db.system.name`: postgresql or sqlite.
    system: &'static str,
    /// The pool's attributes on the wait-time histogram.
    attributes: [KeyValue; 2],
    wait: Histogram<f64>,
}

impl Transactions {
    /// `pool` names the pool in metrics (`db.client.connection.pool.name`,
    /// as `observe::observe_pool` does); `db` should carry the statement
    /// callback (`statements::observe`) already.
    pub fn new(pool: &'static str, db: DatabaseConnection) -> Self {
        let system = system_name(db.get_database_backend());
        let wait = opentelemetry::global::meter(pool)
            .f64_histogram("db.client.connection.wait_time")
            .with_unit("s")
            .with_description(
                "time a transaction waited for a pooled connection (including its BEGIN)",
            )
            .with_boundaries(WAIT_BOUNDARIES.to_vec())
            .build();
        Self {
            db,
            system,
            attributes: [
                KeyValue::new("db.system.name", system),
                KeyValue::new("db.client.connection.pool.name", pool),
            ],
            wait,
        }
    }

    /// Begins a transaction for `use_case` (the span is `transaction
    /// {use_case}`), as a child of the current span. Outside a sampled
    /// trace (a background loop between calls) there is no span: it would
    /// start a trace of its own for every round of the loop.
    pub async fn begin(&self, use_case: &'static str) -> Result<Tx, DbErr> {
        let parent = tracing::Span::current();
        let span = if parent.context().span().span_context().is_sampled() {
            tracing::info_span!(
                "transaction",
                otel.name = %format_args!("transaction {use_case}"),
                otel.status_code = tracing::field::Empty,
                db.system.name = self.system,
                db.operation.name = tracing::field::Empty,
                "error.type" = tracing::field::Empty,
            )
        } else {
            tracing::Span::none()
        };
        let started = Instant::now();
        match self.db.begin().instrument(span.clone()).await {
            Ok(txn) => {
                self.wait
                    .record(started.elapsed().as_secs_f64(), &self.attributes);
                Ok(Tx {
                    txn: Some(txn),
                    span,
                    parent: parent.id(),
                    backend: self.db.get_database_backend(),
                })
            }
            Err(err) => {
                failed(&span, "BEGIN", &err);
                Err(err)
            }
        }
    }
}

/// Wait-time buckets (seconds) from 100 µs to 10 s: a free connection is
/// had in well under a millisecond, and the latency buckets start at 1 ms.
const WAIT_BOUNDARIES: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The database semantic conventions' `db.system.name` of a backend.
pub fn system_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "postgresql",
        DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    }
}

/// An open transaction and its span. Statements run through it as through
/// sea-orm's `DatabaseTransaction`; [`Tx::commit`] ends the span, and so
/// does dropping it (sea-orm then rolls the transaction back).
pub struct Tx {
    /// Taken when the transaction ends by [`Tx::commit`] or [`Tx::rollback`].
    txn: Option<DatabaseTransaction>,
    span: tracing::Span,
    /// The span the transaction began in: its statements run inside the
    /// transaction's span unless a narrower span of their own is current.
    parent: Option<tracing::Id>,
    backend: DbBackend,
}

impl Tx {
    pub async fn commit(mut self) -> Result<(), DbErr> {
        let txn = self.open()?;
        let committed = txn.commit().instrument(self.span.clone()).await;
        match &committed {
            Ok(()) => self.ended("COMMIT"),
            Err(err) => failed(&self.span, "COMMIT", err),
        }
        committed
    }

    pub async fn rollback(mut self) -> Result<(), DbErr> {
        let txn = self.open()?;
        let rolled_back = txn.rollback().instrument(self.span.clone()).await;
        match &rolled_back {
            Ok(()) => self.ended("ROLLBACK"),
            Err(err) => failed(&self.span, "ROLLBACK", err),
        }
        rolled_back
    }

    /// Takes the transaction to end it.
    fn open(&mut self) -> Result<DatabaseTransaction, DbErr> {
        self.txn.take().ok_or_else(ended)
    }

    fn txn(&self) -> Result<&DatabaseTransaction, DbErr> {
        self.txn.as_ref().ok_or_else(ended)
    }

    fn ended(&self, operation: &'static str) {
        self.span.record("db.operation.name", operation);
    }

    /// The span a statement runs in: the transaction's, when the code that
    /// runs it is in the span the transaction began in; otherwise the
    /// current one (an `append events` span, say, that owns its
    /// statements).
    fn statement_span(&self) -> tracing::Span {
        let current = tracing::Span::current();
        if current.id() == self.parent {
            self.span.clone()
        } else {
            current
        }
    }

    /// Runs one statement in its span and marks the transaction failed if
    /// the statement failed: a failed statement ends the transaction (an
    /// aborted PostgreSQL transaction accepts no other).
    async fn run<T>(
        &self,
        statement: impl Future<Output = Result<T, DbErr>> + Send,
    ) -> Result<T, DbErr> {
        let result = statement.instrument(self.statement_span()).await;
        if let Err(err) = &result {
            failed(&self.span, "", err);
        }
        result
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Dropped open (an early return, an error): sea-orm rolls back.
        if self.txn.is_some() {
            self.ended("ROLLBACK");
        }
    }
}

/// Unreachable: committing or rolling back consumes the [`Tx`].
fn ended() -> DbErr {
    DbErr::Custom("the transaction has ended".into())
}

/// Marks `span` failed by `err` in `operation` (BEGIN, COMMIT, ROLLBACK;
/// empty for a statement, whose own span names it). `error.type` is the
/// database's error code when it gave one (a PostgreSQL SQLSTATE such as
/// 40001, a SQLite result code), else the kind of failure; never the
/// message, which can quote the data.
fn failed(span: &tracing::Span, operation: &'static str, err: &DbErr) {
    if !operation.is_empty() {
        span.record("db.operation.name", operation);
    }
    span.record("otel.status_code", "error");
    span.record("error.type", error_type(err).as_str());
}

fn error_type(err: &DbErr) -> String {
    use sea_orm::{RuntimeErr, sqlx::Error};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            Error::Database(db) => db.code().map_or_else(|| "database".into(), |c| c.into()),
            Error::PoolTimedOut => "pool_timeout".into(),
            Error::Io(_) => "io".into(),
            _ => "driver".into(),
        },
        DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout) => "pool_timeout".into(),
        DbErr::ConnectionAcquire(_) => "connection_closed".into(),
        DbErr::RecordNotFound(_) => "record_not_found".into(),
        _ => "other".into(),
    }
}

#[tonic::async_trait]
impl ConnectionTrait for Tx {
    fn get_database_backend(&self) -> DbBackend {
        self.backend
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.run(self.txn()?.execute_raw(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.run(self.txn()?.execute_unprepared(sql)).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.run(self.txn()?.query_one_raw(stmt)).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.run(self.txn()?.query_all_raw(stmt)).await
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbErr};

    use super::{Transactions, error_type};

    async fn count(db: &impl ConnectionTrait) -> i64 {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM t",
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get("", "n").expect("n")
    }

    /// The wrapper runs statements in its transaction: what a commit keeps,
    /// a rollback or a drop leaves out; a failed statement names its
    /// database code, never its message.
    #[tokio::test]
    async fn statements_run_in_the_transaction_and_end_with_it() {
        let db = crate::db::connect("sqlite::memory:", 1).await.expect("db");
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .expect("table");
        let transactions = Transactions::new("test", db.clone());

        let txn = transactions.begin("insert").await.expect("begin");
        txn.execute_unprepared("INSERT INTO t (id) VALUES (1)")
            .await
            .expect("insert");
        assert_eq!(count(&txn).await, 1);
        txn.commit().await.expect("commit");

        let txn = transactions.begin("rolled_back").await.expect("begin");
        txn.execute_unprepared("INSERT INTO t (id) VALUES (2)")
            .await
            .expect("insert");
        txn.rollback().await.expect("rollback");

        let txn = transactions.begin("dropped").await.expect("begin");
        txn.execute_unprepared("INSERT INTO t (id) VALUES (3)")
            .await
            .expect("insert");
        let duplicate = txn
            .execute_unprepared("INSERT INTO t (id) VALUES (1)")
            .await
            .expect_err("duplicate key");
        // SQLITE_CONSTRAINT_PRIMARYKEY
        assert_eq!(error_type(&duplicate), "1555");
        drop(txn);

        assert_eq!(count(&db).await, 1);
        assert_eq!(
            error_type(&DbErr::RecordNotFound("x".into())),
            "record_not_found"
        );
    }
}
