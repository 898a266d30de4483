//! The conversation change log behind WatchConversations, and the outbox of
//! reports to ticketing.

use prost::Message;
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::entities::{change_head, conversation, conversation_change, outbox};
use crate::convert;

/// The PostgreSQL notification channel of conversation-change commits.
pub const CHANGES_CHANNEL: &str = "inbox_changes";

/// Appends a change of `row` to its account's log. Call as the last write
/// of the transaction: the head row stays locked until commit, so sequence
/// order is commit order within the account.
pub async fn append(
    conn: &impl ConnectionTrait,
    row: &conversation::Model,
    kind: pb::ConversationChangeKind,
) -> Result<i64, DbErr> {
    // One statement creates or bumps the head and returns the new sequence.
    let sequence = change_head::Entity::insert(change_head::ActiveModel {
        account_id: Set(row.account_id.clone()),
        last_sequence: Set(1),
    })
    .on_conflict(
        OnConflict::column(change_head::Column::AccountId)
            .value(
                change_head::Column::LastSequence,
                Expr::col((change_head::Entity, change_head::Column::LastSequence)).add(1),
            )
            .to_owned(),
    )
    .exec_with_returning(conn)
    .await?
    .last_sequence;
    conversation_change::Entity::insert(conversation_change::ActiveModel {
        account_id: Set(row.account_id.clone()),
        sequence: Set(sequence),
        conversation_id: Set(row.id.clone()),
        kind: Set(kind as i32),
        snapshot: Set(convert::conversation_to_proto(row).encode_to_vec()),
        created_at: Set(kit::time::now_micros()),
    })
    .exec(conn)
    .await?;
    Ok(sequence)
}

pub async fn head(conn: &impl ConnectionTrait, account_id: &str) -> Result<i64, DbErr> {
    Ok(change_head::Entity::find_by_id(account_id.to_owned())
        .one(conn)
        .await?
        .map_or(0, |h| h.last_sequence))
}

pub async fn read_after(
    conn: &impl ConnectionTrait,
    account_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<pb::ConversationChanged>, DbErr> {
    let rows = conversation_change::Entity::find()
        .filter(conversation_change::Column::AccountId.eq(account_id))
        .filter(conversation_change::Column::Sequence.gt(after))
        .order_by_asc(conversation_change::Column::Sequence)
        .limit(limit)
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            let conversation =
                pb::Conversation::decode(row.snapshot.as_slice()).map_err(|err| {
                    DbErr::Custom(format!("change {} does not decode: {err}", row.sequence))
                })?;
            Ok(pb::ConversationChanged {
                sequence: row.sequence,
                kind: row.kind,
                conversation: Some(conversation),
            })
        })
        .collect()
}

/// Queues a report of `row` (after its change) for ticketing.
pub async fn enqueue_report(
    conn: &impl ConnectionTrait,
    row: &conversation::Model,
    change: tpb::ConversationChange,
    caller: &kit::identity::Caller,
) -> Result<outbox::Model, DbErr> {
    let report = outbox::Model {
        id: kit::new_id(),
        account_id: row.account_id.clone(),
        user_id: caller.user_id.clone(),
        traceparent: caller.trace_context.get("traceparent").cloned(),
        request_id: kit::new_id(),
        change: change as i32,
        snapshot: convert::snapshot(row).encode_to_vec(),
        created_at: kit::time::now_micros(),
    };
    outbox::Entity::insert(report.clone().into_active_model())
        .exec(conn)
        .await?;
    Ok(report)
}

/// The oldest reports, in creation order.
pub async fn pending_reports(
    conn: &impl ConnectionTrait,
    queued_before: i64,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    outbox::Entity::find()
        .filter(outbox::Column::CreatedAt.lt(queued_before))
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

pub async fn delete_report(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    outbox::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await
        .map(|_| ())
}
