//! Database leases: among inbox replicas sharing a database, one holds each
//! singleton role at a time, and another takes over once the holder stops
//! renewing (it died). Exactly-once effects do not depend on the lease (the
//! cursor fence guarantees them); the lease only saves duplicate work.

use std::time::Duration;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{ExprTrait, OnConflict},
};

use super::entities::lease;

/// Takes or renews the lease `name` for `holder` for `ttl`. Returns whether
/// `holder` holds it now.
pub async fn acquire(
    conn: &impl ConnectionTrait,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, DbErr> {
    let now = kit::time::now_micros();
    let until = now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
    lease::Entity::insert(lease::ActiveModel {
        name: Set(name.to_owned()),
        holder: Set(holder.to_owned()),
        expires_at: Set(until),
    })
    .on_conflict(
        OnConflict::column(lease::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let taken = lease::Entity::update_many()
        .col_expr(lease::Column::Holder, holder.into())
        .col_expr(lease::Column::ExpiresAt, until.into())
        .filter(lease::Column::Name.eq(name))
        .filter(
            lease::Column::Holder
                .eq(holder)
                .or(lease::Column::ExpiresAt.lt(now)),
        )
        .exec(conn)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Gives the lease up (on drain), so another replica takes over at once.
pub async fn release(conn: &impl ConnectionTrait, name: &str, holder: &str) -> Result<(), DbErr> {
    lease::Entity::update_many()
        .col_expr(lease::Column::ExpiresAt, 0i64.into())
        .filter(lease::Column::Name.eq(name))
        .filter(lease::Column::Holder.eq(holder))
        .exec(conn)
        .await
        .map(|_| ())
}
