//! The conversation change log behind WatchConversations, and the outbox of
//! reports to ticketing.

use prost::Message;
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Statement,
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
    /// per account one head bump and one insert (one statement on
    /// PostgreSQL).
    pub async fn append(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut accounts: Vec<&str> = Vec::new();
        for (row, _) in &self.0 {
            if !accounts.contains(&row.account_id.as_str()) {
                accounts.push(&row.account_id);
            }
        }
        for account_id in accounts {
            let entries = self
                .0
                .iter()
                .filter(|(row, _)| row.account_id == account_id)
                .map(|(row, kind)| Entry {
                    conversation_id: &row.id,
                    kind: *kind,
                    snapshot: row.encode_to_vec(),
                })
                .collect();
            write_entries(conn, account_id, entries).await?;
        }
        Ok(())
    }
}

/// One entry of the log, before it has its sequence.
struct Entry<'a> {
    conversation_id: &'a str,
    kind: pb::ConversationChangeKind,
    snapshot: Vec<u8>,
}

/// Moves the account's head by the number of entries (creating it on the
/// account's first change) and writes the entries at the sequences it
/// passed; returns the last. The head row stays locked until commit, and
/// every other writer of the account waits for it, so on PostgreSQL both
/// are one statement: a second round trip under the lock would be paid by
/// every queued writer. SQLite, which cannot modify rows in a `WITH`, has
/// one writer at a time anyway.
async fn write_entries(
    conn: &impl ConnectionTrait,
    account_id: &str,
    entries: Vec<Entry<'_>>,
) -> Result<i64, DbErr> {
    let count = entries.len() as i64;
    let now = kit::time::now_micros();
    if conn.get_database_backend() == DbBackend::Postgres {
        return write_entries_in_one(conn, account_id, entries, now).await;
    }
    let last = change_head::Entity::insert(change_head::ActiveModel {
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
    .last_sequence;
    let rows = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| conversation_change::ActiveModel {
            account_id: Set(account_id.to_owned()),
            sequence: Set(last - count + 1 + i as i64),
            conversation_id: Set(entry.conversation_id.to_owned()),
            kind: Set(entry.kind as i32),
            snapshot: Set(entry.snapshot),
            created_at: Set(now),
        });
    conversation_change::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(last)
}

async fn write_entries_in_one(
    conn: &impl ConnectionTrait,
    account_id: &str,
    entries: Vec<Entry<'_>>,
    now: i64,
) -> Result<i64, DbErr> {
    use std::fmt::Write;
    let count = entries.len() as i64;
    let mut values: Vec<sea_orm::Value> = vec![account_id.into(), count.into(), now.into()];
    let mut rows = String::new();
    for (position, entry) in entries.into_iter().enumerate() {
        let n = values.len();
        let separator = if position == 0 { "" } else { ", " };
        // Only placeholders and the entry's position go into the text.
        let _ = write!(
            rows,
            "{separator}({}, ${}, ${}, ${})",
            position + 1,
            n + 1,
            n + 2,
            n + 3
        );
        values.extend([
            entry.conversation_id.into(),
            (entry.kind as i32).into(),
            entry.snapshot.into(),
        ]);
    }
    let sql = format!(
        "WITH head AS (\
           INSERT INTO change_heads (account_id, last_sequence) VALUES ($1, $2) \
           ON CONFLICT (account_id) DO UPDATE \
           SET last_sequence = change_heads.last_sequence + EXCLUDED.last_sequence \
           RETURNING last_sequence) \
         INSERT INTO conversation_changes \
           (account_id, sequence, conversation_id, kind, snapshot, created_at) \
         SELECT $1, head.last_sequence - $2 + entry.position, entry.conversation_id, \
           entry.kind, entry.snapshot, $3 \
         FROM head, (VALUES {rows}) AS entry (position, conversation_id, kind, snapshot) \
         RETURNING sequence"
    );
    let written = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    let mut last = None;
    for row in &written {
        let sequence: i64 = row.try_get_by_index(0)?;
        last = Ord::max(last, Some(sequence));
    }
    last.ok_or(DbErr::RecordNotInserted)
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
    let entry = Entry {
        conversation_id: &row.id,
        kind,
        snapshot: row.encode_to_vec(),
    };
    write_entries(conn, &row.account_id, vec![entry]).await
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
