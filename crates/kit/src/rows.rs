//! Account-scoped, versioned rows: the reads and the guarded write both
//! services' stores do for their main rows (tickets, conversations). Every
//! read names the account, so one account's ids never reach another's rows;
//! every write is guarded by the version it was computed from (optimistic
//! concurrency: sea-orm has none built in).

use std::fmt::Write as _;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    IntoActiveModel, ModelTrait, QueryFilter, QuerySelect, QueryTrait, Select,
};

/// An entity whose rows each belong to one account.
pub trait Scoped: EntityTrait {
    /// The primary key, a single string column.
    const ID: Self::Column;
    const ACCOUNT: Self::Column;
}

/// A scoped entity with a version that every change bumps.
pub trait Versioned: Scoped {
    const VERSION: Self::Column;
}

/// The row `id` of `account_id`, if there is one.
pub async fn find<E: Scoped>(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<E::Model>, DbErr> {
    one_of::<E>(account_id, id).one(conn).await
}

/// Reads a row and locks it until the transaction ends (PostgreSQL;
/// SQLite's single connection serialises anyway), so concurrent changes of
/// one row queue instead of failing their version check.
pub async fn find_for_update<E: Scoped>(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<E::Model>, DbErr> {
    one_of::<E>(account_id, id).lock_exclusive().one(conn).await
}

fn one_of<E: Scoped>(account_id: &str, id: &str) -> Select<E> {
    E::find()
        .filter(E::ID.eq(id))
        .filter(E::ACCOUNT.eq(account_id))
}

/// Writes `updated` only if the stored version is still `expected_version`;
/// returns whether it did. The id and the account are never rewritten.
pub async fn update_if_version<E>(
    conn: &impl ConnectionTrait,
    updated: &E::Model,
    expected_version: i64,
) -> Result<bool, DbErr>
where
    E: Versioned,
    E::Model: IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let mut active = updated.clone().into_active_model().reset_all();
    active.not_set(E::ID);
    active.not_set(E::ACCOUNT);
    let result = E::update_many()
        .set(active)
        .filter(E::ID.eq(updated.get(E::ID)))
        .filter(E::VERSION.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Runs `query` (ordered, with no LIMIT, OFFSET or lock of its own) for
/// at most `limit` rows, the limit written into the statement's text.
/// Bound as a parameter, as sea-orm's `limit` binds it, PostgreSQL cannot
/// cost the statement's generic plan (it assumes a tenth of the rows), so a
/// prepared list query whose filter matches many rows is planned again on
/// every execution: a ListConversations call cost PostgreSQL 289 µs of CPU
/// with the limit bound and 148 µs with it written (docs/decisions.md). A
/// written limit is one cached statement per page size.
pub async fn at_most<M: FromQueryResult>(
    conn: &impl ConnectionTrait,
    query: impl QueryTrait,
    limit: u64,
) -> Result<Vec<M>, DbErr> {
    let mut statement = query.build(conn.get_database_backend());
    // A u64 written in decimal: nothing of a caller's text reaches the SQL.
    let _ = write!(statement.sql, " LIMIT {limit}");
    M::find_by_statement(statement).all(conn).await
}
