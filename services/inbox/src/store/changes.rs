//! The conversation change log behind WatchConversations, and the outbox of
//! reports to ticketing.

use prost::Message;
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::entities::{change_head, conversation_change, outbox};

/// The PostgreSQL notification channel of conversation-change commits.
pub const CHANGES_CHANNEL: &str = "inbox_changes";

/// Changes made in a transaction whose log entries are still to be
/// appended. Applying ticketing's decisions may touch many rows (a batch of
/// events, a ticket's conversations); their entries are appended together,
/// after every row lock the transaction takes, so that the account's head
/// row is always the last lock taken. A transaction that held the head while
/// waiting for a row could deadlock with one that holds the row and waits
/// for the head (PostgreSQL breaks that only after its deadlock timeout).
#[derive(Default)]
pub struct Pending(Vec<(pb::Conversation, pb::ConversationChangeKind)>);

impl Pending {
    pub fn push(&mut self, conversation: pb::Conversation, kind: pb::ConversationChangeKind) {
        self.0.push((conversation, kind));
    }

    /// Appends every pending entry, in the order the changes were made:
    /// per account one head bump and one insert.
    pub async fn append(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut accounts: Vec<&str> = Vec::new();
        for (row, _) in &self.0 {
            if !accounts.contains(&row.account_id.as_str()) {
                accounts.push(&row.account_id);
            }
        }
        for account_id in accounts {
            let entries: Vec<_> = self
                .0
                .iter()
                .filter(|(row, _)| row.account_id == account_id)
                .collect();
            let count = entries.len() as i64;
            let last = bump_head(conn, account_id, count).await?;
            let now = kit::time::now_micros();
            let rows = entries.iter().enumerate().map(|(i, (row, kind))| {
                conversation_change::ActiveModel {
                    account_id: Set(row.account_id.clone()),
                    sequence: Set(last - count + 1 + i as i64),
                    conversation_id: Set(row.id.clone()),
                    kind: Set(*kind as i32),
                    snapshot: Set(row.encode_to_vec()),
                    created_at: Set(now),
                }
            });
            conversation_change::Entity::insert_many(rows)
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }
}

/// Creates or moves the account's head by `count` in one statement and
/// returns the new last sequence.
async fn bump_head(
    conn: &impl ConnectionTrait,
    account_id: &str,
    count: i64,
) -> Result<i64, DbErr> {
    Ok(change_head::Entity::insert(change_head::ActiveModel {
        account_id: Set(account_id.to_owned()),
        last_sequence: Set(count),
    })
    .on_conflict(
        OnConflict::column(change_head::Column::AccountId)
            .value(
                change_head::Column::LastSequence,
                Expr::col((change_head::Entity, change_head::Column::LastSequence)).add(count),
            )
            .to_owned(),
    )
    .exec_with_returning(conn)
    .await?
    .last_sequence)
}

/// Appends a change of `row` (the conversation as it is after the change)
/// to its account's log. Call as the last write of the transaction: the head
/// row stays locked until commit, so sequence order is commit order within
/// the account.
pub async fn append(
    conn: &impl ConnectionTrait,
    row: &pb::Conversation,
    kind: pb::ConversationChangeKind,
) -> Result<i64, DbErr> {
    let sequence = bump_head(conn, &row.account_id, 1).await?;
    conversation_change::Entity::insert(conversation_change::ActiveModel {
        account_id: Set(row.account_id.clone()),
        sequence: Set(sequence),
        conversation_id: Set(row.id.clone()),
        kind: Set(kind as i32),
        snapshot: Set(row.encode_to_vec()),
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
    let query = conversation_change::Entity::find()
        .filter(conversation_change::Column::AccountId.eq(account_id))
        .filter(conversation_change::Column::Sequence.gt(after))
        .order_by_asc(conversation_change::Column::Sequence);
    let rows: Vec<conversation_change::Model> = kit::rows::at_most(conn, query, limit).await?;
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

/// Who made a reported change, and the trace it belongs to: the report
/// acts for that user, in that trace, when it is delivered.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    pub user_id: Option<String>,
    pub traceparent: Option<String>,
}

/// Queues a report of `row` (after its change, logged at `change_sequence`)
/// for ticketing.
pub async fn enqueue_report(
    conn: &impl ConnectionTrait,
    account_id: &str,
    snapshot: tpb::ConversationSnapshot,
    change: tpb::ConversationChange,
    change_sequence: i64,
    reporter: Reporter,
) -> Result<outbox::Model, DbErr> {
    let snapshot = tpb::ConversationSnapshot {
        change_sequence,
        ..snapshot
    };
    let report = outbox::Model {
        id: kit::new_id(),
        account_id: account_id.to_owned(),
        user_id: reporter.user_id,
        traceparent: reporter.traceparent,
        request_id: kit::new_id(),
        change: change as i32,
        snapshot: snapshot.encode_to_vec(),
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
    let query = outbox::Entity::find()
        .filter(outbox::Column::CreatedAt.lt(queued_before))
        .order_by_asc(outbox::Column::Id);
    kit::rows::at_most(conn, query, limit).await
}

pub async fn delete_report(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    outbox::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await
        .map(|_| ())
}

/// How many reports wait in the outbox, and when the oldest was queued
/// (microseconds): what an operator watches while ticketing is away.
pub async fn outbox_stats(conn: &impl ConnectionTrait) -> Result<(i64, Option<i64>), DbErr> {
    use sea_orm::{QuerySelect, sea_query::Func};
    let row = outbox::Entity::find()
        .select_only()
        .expr(Func::count(sea_orm::sea_query::Expr::col(
            outbox::Column::Id,
        )))
        .expr(Func::min(sea_orm::sea_query::Expr::col(
            outbox::Column::CreatedAt,
        )))
        .into_tuple::<(i64, Option<i64>)>()
        .one(conn)
        .await?;
    Ok(row.unwrap_or((0, None)))
}
