//! Decoding rows by column position, for the few reads whose cost is the
//! rows themselves (a page of conversations). sea-orm's derived models read
//! each column by name through its own layer: a name lookup per column, and
//! an error message formatted for every NULL before it becomes `None`. Read
//! through the driver by position, a column costs only the driver's type
//! check and decode. The order is the entity's default select list (its
//! `Column` enum, which follows the model's fields), so an implementation
//! lists the fields in declaration order; a test per entity checks it
//! against sea-orm's own decoding.

use sea_orm::{
    ConnectionTrait, DbErr, FromQueryResult, QueryResult, QueryTrait,
    sqlx::{self, Postgres, Row, Sqlite},
};

/// A value both drivers decode.
pub trait Value:
    for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
    + for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
{
}

impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
{
}

/// The columns of one row, read left to right.
pub struct Columns<'a> {
    row: &'a QueryResult,
    next: usize,
}

impl<'a> Columns<'a> {
    /// The row's columns from the first, for a select written by hand
    /// whose column order its decoder knows.
    pub fn of(row: &'a QueryResult) -> Self {
        Self { row, next: 0 }
    }

    /// The next column's value (`Option<T>` for a nullable one).
    pub fn read<T: Value>(&mut self) -> Result<T, DbErr> {
        let index = self.next;
        self.next += 1;
        let decoded = if let Some(row) = self.row.try_as_pg_row() {
            row.try_get::<T, usize>(index)
        } else if let Some(row) = self.row.try_as_sqlite_row() {
            row.try_get::<T, usize>(index)
        } else {
            return Err(DbErr::Type("a row of an unsupported driver".into()));
        };
        decoded.map_err(|e| DbErr::Type(format!("column {index}: {e}")))
    }
}

/// A model that can be read from its entity's default select by position.
pub trait ByPosition: Sized {
    fn decode(columns: &mut Columns<'_>) -> Result<Self, DbErr>;
}

/// `select.into_model::<Positional<M>>()` decodes `M` by position.
pub struct Positional<M>(pub M);

impl<M: ByPosition> FromQueryResult for Positional<M> {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        // Nested selects prefix their columns; positions would then be
        // the outer select's, so they are not supported.
        if !prefix.is_empty() {
            return Err(DbErr::Type(format!(
                "positional decoding under the prefix {prefix:?}"
            )));
        }
        M::decode(&mut Columns::of(row)).map(Positional)
    }
}

/// [`crate::rows::at_most`], each row decoded by position.
pub async fn at_most<M: ByPosition>(
    conn: &impl ConnectionTrait,
    query: impl QueryTrait,
    limit: u64,
) -> Result<Vec<M>, DbErr> {
    let rows: Vec<Positional<M>> = crate::rows::at_most(conn, query, limit).await?;
    Ok(rows.into_iter().map(|row| row.0).collect())
}
