//! Reads and writes of merges (R14, R15): the merge records, and the one
//! statement that moves conversations from one ticket to another.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};

use super::entities::{ticket_conversation, ticket_merge};

/// Moves the conversations `ids` that are on ticket `from` to ticket `to`:
/// the one way a conversation changes ticket (R2's exception, R14 and R15).
/// The guard on `from` keeps a move from taking a conversation that is
/// somewhere else by now. Returns how many moved.
pub async fn move_links(
    conn: &impl ConnectionTrait,
    account_id: &str,
    ids: &[String],
    from: &str,
    to: &str,
    now: i64,
) -> Result<u64, DbErr> {
    use ticket_conversation::Column as C;
    if ids.is_empty() {
        return Ok(0);
    }
    let result = ticket_conversation::Entity::update_many()
        .col_expr(C::TicketId, Some(to.to_owned()).into())
        .col_expr(C::LinkedAt, Some(now).into())
        .filter(C::AccountId.eq(account_id))
        .filter(C::ConversationId.is_in(ids.iter().cloned()))
        .filter(C::TicketId.eq(from))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

pub async fn insert_merge(
    conn: &impl ConnectionTrait,
    merge: ticket_merge::Model,
) -> Result<(), DbErr> {
    ticket_merge::Entity::insert(merge.into_active_model())
        .exec(conn)
        .await
        .map(|_| ())
}

/// The merge that made `secondary_id` a redirect and is not undone.
pub async fn active_merge_of(
    conn: &impl ConnectionTrait,
    account_id: &str,
    secondary_id: &str,
) -> Result<Option<ticket_merge::Model>, DbErr> {
    use ticket_merge::Column as C;
    ticket_merge::Entity::find()
        .filter(C::AccountId.eq(account_id))
        .filter(C::SecondaryId.eq(secondary_id))
        .filter(C::UnmergedAt.is_null())
        .order_by_desc(C::MergedAt)
        .one(conn)
        .await
}

pub async fn mark_unmerged(
    conn: &impl ConnectionTrait,
    merge: ticket_merge::Model,
    now: i64,
) -> Result<(), DbErr> {
    let mut active = merge.into_active_model();
    active.unmerged_at = sea_orm::ActiveValue::Set(Some(now));
    active.update(conn).await.map(|_| ())
}

/// The conversation ids a merge record lists.
pub fn brought(merge: &ticket_merge::Model) -> Vec<String> {
    merge
        .conversation_ids
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}
