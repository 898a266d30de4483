//! Reads and guarded writes of contacts, conversations, messages, the ticket
//! read model and the event cursors.

use kit::{
    paging::{self, Cursor},
    positional, rows,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    sea_query::{Alias, Expr, ExprTrait, OnConflict},
};

use super::entities::{contact, conversation, event_cursor, message, ticket_view};

impl rows::Scoped for contact::Entity {
    const ID: contact::Column = contact::Column::Id;
    const ACCOUNT: contact::Column = contact::Column::AccountId;
}

impl rows::Scoped for conversation::Entity {
    const ID: conversation::Column = conversation::Column::Id;
    const ACCOUNT: conversation::Column = conversation::Column::AccountId;
}

impl rows::Versioned for conversation::Entity {
    const VERSION: conversation::Column = conversation::Column::Version;
}

pub async fn find_contact_by_email(
    conn: &impl ConnectionTrait,
    account_id: &str,
    email: &str,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find()
        .filter(contact::Column::AccountId.eq(account_id))
        .filter(contact::Column::Email.eq(email))
        .one(conn)
        .await
}

pub async fn find_contact(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<contact::Model>, DbErr> {
    rows::find::<contact::Entity>(conn, account_id, id).await
}

pub async fn insert_contact(conn: &impl ConnectionTrait, row: contact::Model) -> Result<(), DbErr> {
    contact::Entity::insert(row.into_active_model())
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn find_conversation(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<conversation::Model>, DbErr> {
    rows::find::<conversation::Entity>(conn, account_id, id).await
}

pub async fn insert_conversation(
    conn: &impl ConnectionTrait,
    row: conversation::Model,
) -> Result<(), DbErr> {
    conversation::Entity::insert(row.into_active_model())
        .exec(conn)
        .await
        .map(|_| ())
}

/// Writes `updated` only if the stored version is still `expected_version`.
pub async fn update_conversation_if_version(
    conn: &impl ConnectionTrait,
    updated: &conversation::Model,
    expected_version: i64,
) -> Result<bool, DbErr> {
    rows::update_if_version::<conversation::Entity>(conn, updated, expected_version).await
}

pub async fn insert_message(conn: &impl ConnectionTrait, row: message::Model) -> Result<(), DbErr> {
    message::Entity::insert(row.into_active_model())
        .exec(conn)
        .await
        .map(|_| ())
}

#[derive(Debug, Default, Clone)]
pub struct ConversationFilter {
    pub status: Option<i32>,
    /// `Some(None)` lists unassigned conversations.
    pub owner_id: Option<Option<String>>,
    pub contact_id: Option<String>,
    pub workspace: Option<i32>,
    pub show_deleted: bool,
    /// Leave one conversation out (the sidebar's "previous conversations").
    pub except_id: Option<String>,
}

/// Newest first, keyset-paged.
pub async fn list_conversations(
    conn: &impl ConnectionTrait,
    account_id: &str,
    filter: &ConversationFilter,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<conversation::Model>, DbErr> {
    use conversation::Column as C;
    let mut query = conversation::Entity::find().filter(C::AccountId.eq(account_id));
    if let Some(status) = filter.status {
        query = query.filter(C::Status.eq(status));
    }
    match &filter.owner_id {
        Some(Some(owner)) => query = query.filter(C::OwnerId.eq(owner)),
        Some(None) => query = query.filter(C::OwnerId.is_null()),
        None => {}
    }
    if let Some(contact_id) = &filter.contact_id {
        query = query.filter(C::ContactId.eq(contact_id));
    }
    if let Some(workspace) = filter.workspace {
        query = query.filter(C::Workspace.eq(workspace));
    }
    if let Some(except) = &filter.except_id {
        query = query.filter(C::Id.ne(except));
    }
    if !filter.show_deleted {
        query = query.filter(C::DeletedAt.is_null());
    }
    if let Some(cursor) = after {
        query = query.filter(paging::after_descending(C::CreatedAt, C::Id, cursor));
    }
    let query = query.order_by_desc(C::CreatedAt).order_by_desc(C::Id);
    positional::at_most(conn, query, limit).await
}

/// Oldest first, keyset-paged.
pub async fn list_messages(
    conn: &impl ConnectionTrait,
    conversation_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    use message::Column as C;
    let mut query = message::Entity::find().filter(C::ConversationId.eq(conversation_id));
    if let Some(cursor) = after {
        query = query.filter(paging::after_ascending(C::CreatedAt, C::Id, cursor));
    }
    let query = query.order_by_asc(C::CreatedAt).order_by_asc(C::Id);
    positional::at_most(conn, query, limit).await
}

pub async fn find_ticket_view(
    conn: &impl ConnectionTrait,
    account_id: &str,
    ticket_id: &str,
) -> Result<Option<ticket_view::Model>, DbErr> {
    ticket_view::Entity::find_by_id(ticket_id.to_owned())
        .filter(ticket_view::Column::AccountId.eq(account_id))
        .one(conn)
        .await
}

/// Stores each ticket snapshot unless a newer one is already there, all in
/// one statement (the event consumer and a request applying its own answer
/// may race to store the same ticket); returns the ids of the tickets it
/// stored. At most one snapshot per ticket: a statement cannot change a row
/// twice.
pub async fn upsert_ticket_views(
    conn: &impl ConnectionTrait,
    rows: impl IntoIterator<Item = ticket_view::Model>,
) -> Result<Vec<String>, DbErr> {
    use ticket_view::Column as C;
    let newer = Expr::col((ticket_view::Entity, C::Version))
        .lt(Expr::col((Alias::new("excluded"), C::Version)));
    ticket_view::Entity::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
        .on_conflict(
            OnConflict::column(C::TicketId)
                .update_columns([C::Version, C::Snapshot, C::UpdatedAt])
                .action_and_where(newer)
                .to_owned(),
        )
        .exec_with_returning_keys(conn)
        .await
}

pub async fn cursors(conn: &impl ConnectionTrait) -> Result<Vec<event_cursor::Model>, DbErr> {
    event_cursor::Entity::find().all(conn).await
}

pub async fn cursor_of(conn: &impl ConnectionTrait, account_id: &str) -> Result<i64, DbErr> {
    Ok(event_cursor::Entity::find_by_id(account_id.to_owned())
        .one(conn)
        .await?
        .map_or(0, |c| c.last_sequence))
}

/// Moves an account's cursor from `from` to `to`, the event at `to` having
/// been written at `to_time`. Fails (returns false) when another consumer
/// moved it first: the caller must roll back.
pub async fn advance_cursor(
    conn: &impl ConnectionTrait,
    account_id: &str,
    from: i64,
    (to, to_time): (i64, i64),
) -> Result<bool, DbErr> {
    let now = kit::time::now_micros();
    if from == 0 {
        let inserted = event_cursor::Entity::insert(event_cursor::ActiveModel {
            account_id: Set(account_id.to_owned()),
            last_sequence: Set(to),
            updated_at: Set(now),
            last_event_time: Set(to_time),
        })
        .exec(conn)
        .await;
        return match inserted {
            Ok(_) => Ok(true),
            Err(err) if kit::db::is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err),
        };
    }
    let result = event_cursor::Entity::update_many()
        .col_expr(event_cursor::Column::LastSequence, to.into())
        .col_expr(event_cursor::Column::UpdatedAt, now.into())
        .col_expr(event_cursor::Column::LastEventTime, to_time.into())
        .filter(event_cursor::Column::AccountId.eq(account_id))
        .filter(event_cursor::Column::LastSequence.eq(from))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Reads a conversation and locks it until the transaction ends (PostgreSQL;
/// SQLite's single connection serialises anyway), so concurrent changes of
/// one conversation queue instead of failing their version check.
pub async fn find_conversation_for_update(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<conversation::Model>, DbErr> {
    rows::find_for_update::<conversation::Entity>(conn, account_id, id).await
}

/// Moves an account's cursor forward to `to` (never back), after a resync.
/// Sets the account's cursor, back as well as forward: only for a
/// resynchronisation after ticketing's log was reset.
pub async fn set_cursor(
    conn: &impl ConnectionTrait,
    account_id: &str,
    to: i64,
) -> Result<(), DbErr> {
    use event_cursor::Column as C;
    event_cursor::Entity::insert(event_cursor::ActiveModel {
        account_id: Set(account_id.to_owned()),
        last_sequence: Set(to),
        updated_at: Set(kit::time::now_micros()),
        // Unknown after a resynchronisation: the next event sets it.
        last_event_time: Set(0),
    })
    .on_conflict(
        OnConflict::column(C::AccountId)
            .update_columns([C::LastSequence, C::UpdatedAt, C::LastEventTime])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

pub async fn raise_cursor(
    conn: &impl ConnectionTrait,
    account_id: &str,
    to: i64,
) -> Result<(), DbErr> {
    use event_cursor::Column as C;
    let higher = Expr::col((event_cursor::Entity, C::LastSequence))
        .lt(Expr::col((Alias::new("excluded"), C::LastSequence)));
    event_cursor::Entity::insert(event_cursor::ActiveModel {
        account_id: Set(account_id.to_owned()),
        last_sequence: Set(to),
        updated_at: Set(kit::time::now_micros()),
        // Unknown after a resynchronisation: the next event sets it.
        last_event_time: Set(0),
    })
    .on_conflict(
        OnConflict::column(C::AccountId)
            .update_columns([C::LastSequence, C::UpdatedAt, C::LastEventTime])
            .action_and_where(higher)
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}
