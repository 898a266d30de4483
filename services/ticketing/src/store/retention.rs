//! Event retention: acknowledgements of durable consumers, and pruning of
//! events older than the retention that every known consumer has applied.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::entities::{event, event_consumer, event_head};

/// Records how far `consumer` applied each account's events (never backwards).
pub async fn acknowledge(
    conn: &impl ConnectionTrait,
    consumer: &str,
    cursors: &[(String, i64)],
) -> Result<(), DbErr> {
    let now = kit::time::now_micros();
    for (account_id, sequence) in cursors {
        let newer = Expr::col((
            event_consumer::Entity,
            event_consumer::Column::AckedSequence,
        ))
        .lte(Expr::col((
            sea_orm::sea_query::Alias::new("excluded"),
            event_consumer::Column::AckedSequence,
        )));
        event_consumer::Entity::insert(event_consumer::ActiveModel {
            consumer: Set(consumer.to_owned()),
            account_id: Set(account_id.clone()),
            acked_sequence: Set(*sequence),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                event_consumer::Column::Consumer,
                event_consumer::Column::AccountId,
            ])
            .update_columns([
                event_consumer::Column::AckedSequence,
                event_consumer::Column::UpdatedAt,
            ])
            .action_and_where(newer)
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// Prunes one account's events created before `cutoff` and acknowledged by
/// every consumer heard from since `consumers_since`. Returns how many went.
pub async fn prune_account(
    conn: &impl ConnectionTrait,
    head: &event_head::Model,
    cutoff: i64,
    consumers_since: i64,
) -> Result<u64, DbErr> {
    let slowest: Option<i64> = event_consumer::Entity::find()
        .select_only()
        .column_as(event_consumer::Column::AckedSequence.min(), "slowest")
        .filter(event_consumer::Column::AccountId.eq(&head.account_id))
        .filter(event_consumer::Column::UpdatedAt.gte(consumers_since))
        .into_tuple::<Option<i64>>()
        .one(conn)
        .await?
        .flatten();
    let newest_old: Option<i64> = event::Entity::find()
        .select_only()
        .column_as(event::Column::Sequence.max(), "newest")
        .filter(event::Column::AccountId.eq(&head.account_id))
        .filter(event::Column::CreatedAt.lt(cutoff))
        .into_tuple::<Option<i64>>()
        .one(conn)
        .await?
        .flatten();
    let Some(through) = newest_old.map(|n| slowest.map_or(n, |s| std::cmp::min(n, s))) else {
        return Ok(0);
    };
    if through <= head.pruned_through {
        return Ok(0);
    }
    let deleted = event::Entity::delete_many()
        .filter(event::Column::AccountId.eq(&head.account_id))
        .filter(event::Column::Sequence.lte(through))
        .exec(conn)
        .await?;
    event_head::Entity::update_many()
        .col_expr(event_head::Column::PrunedThrough, Expr::value(through))
        .filter(event_head::Column::AccountId.eq(&head.account_id))
        .filter(event_head::Column::PrunedThrough.lt(through))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}
