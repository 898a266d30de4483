//! Reads and guarded writes of accounts, pipelines and tickets.

use kit::{
    paging::{self, Cursor},
    rows,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    sea_query::{Alias, Expr, ExprTrait, OnConflict},
};

use super::entities::{account, pipeline, stage, ticket, ticket_conversation};

impl rows::Scoped for pipeline::Entity {
    const ID: pipeline::Column = pipeline::Column::Id;
    const ACCOUNT: pipeline::Column = pipeline::Column::AccountId;
}

impl rows::Scoped for stage::Entity {
    const ID: stage::Column = stage::Column::Id;
    const ACCOUNT: stage::Column = stage::Column::AccountId;
}

impl rows::Scoped for ticket::Entity {
    const ID: ticket::Column = ticket::Column::Id;
    const ACCOUNT: ticket::Column = ticket::Column::AccountId;
}

impl rows::Versioned for ticket::Entity {
    const VERSION: ticket::Column = ticket::Column::Version;
}

/// The default support pipeline every account starts with (SPEC section 2).
pub const DEFAULT_STAGES: [(&str, bool); 4] = [
    ("New", false),
    ("Waiting on contact", false),
    ("Waiting on us", false),
    ("Closed", true),
];

pub async fn find_account(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find_by_id(id.to_owned()).one(conn).await
}

/// Inserts a pipeline and its stages, in order.
pub async fn insert_pipeline(
    conn: &impl ConnectionTrait,
    pipeline: pipeline::Model,
    stages: &[(&str, bool)],
) -> Result<(pipeline::Model, Vec<stage::Model>), DbErr> {
    let stages: Vec<stage::Model> = stages
        .iter()
        .enumerate()
        .map(|(position, (name, is_closed))| stage::Model {
            id: kit::new_id(),
            account_id: pipeline.account_id.clone(),
            pipeline_id: pipeline.id.clone(),
            name: (*name).to_owned(),
            is_closed: *is_closed,
            position: position as i32,
        })
        .collect();
    pipeline::Entity::insert(pipeline.clone().into_active_model())
        .exec(conn)
        .await?;
    stage::Entity::insert_many(
        stages
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model),
    )
    .exec(conn)
    .await?;
    Ok((pipeline, stages))
}

pub async fn default_pipeline(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<Option<pipeline::Model>, DbErr> {
    pipeline::Entity::find()
        .filter(pipeline::Column::AccountId.eq(account_id))
        .filter(pipeline::Column::IsDefault.eq(true))
        .one(conn)
        .await
}

pub async fn find_pipeline(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<pipeline::Model>, DbErr> {
    rows::find::<pipeline::Entity>(conn, account_id, id).await
}

pub async fn stages_of(
    conn: &impl ConnectionTrait,
    pipeline_ids: &[String],
) -> Result<Vec<stage::Model>, DbErr> {
    stage::Entity::find()
        .filter(stage::Column::PipelineId.is_in(pipeline_ids.iter().cloned()))
        .order_by_asc(stage::Column::PipelineId)
        .order_by_asc(stage::Column::Position)
        .all(conn)
        .await
}

pub async fn find_stage(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<stage::Model>, DbErr> {
    rows::find::<stage::Entity>(conn, account_id, id).await
}

pub async fn list_pipelines(
    conn: &impl ConnectionTrait,
    account_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<pipeline::Model>, DbErr> {
    let mut query = pipeline::Entity::find().filter(pipeline::Column::AccountId.eq(account_id));
    if let Some(cursor) = after {
        query = query.filter(paging::after_ascending(
            pipeline::Column::CreatedAt,
            pipeline::Column::Id,
            cursor,
        ));
    }
    let query = query
        .order_by_asc(pipeline::Column::CreatedAt)
        .order_by_asc(pipeline::Column::Id);
    rows::at_most(conn, query, limit).await
}

pub async fn find_ticket(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<ticket::Model>, DbErr> {
    rows::find::<ticket::Entity>(conn, account_id, id).await
}

/// A ticket's conversations, in association order.
pub async fn links_of(
    conn: &impl ConnectionTrait,
    ticket_id: &str,
) -> Result<Vec<ticket_conversation::Model>, DbErr> {
    ticket_conversation::Entity::find()
        .filter(ticket_conversation::Column::TicketId.eq(ticket_id))
        .order_by_asc(ticket_conversation::Column::LinkedAt)
        .order_by_asc(ticket_conversation::Column::ConversationId)
        .all(conn)
        .await
}

/// What ticketing knows of one of an account's conversations. Keyed per
/// account: another account's row for the same id is never read, so no
/// answer to one account depends on another's (docs/security.md).
pub async fn link_of_conversation(
    conn: &impl ConnectionTrait,
    account_id: &str,
    conversation_id: &str,
) -> Result<Option<ticket_conversation::Model>, DbErr> {
    ticket_conversation::Entity::find_by_id((account_id.to_owned(), conversation_id.to_owned()))
        .one(conn)
        .await
}

/// Records reported conversation facts unless newer ones are held, in one
/// statement (reports may race and arrive out of order); returns the facts
/// held afterwards.
pub async fn record_facts(
    conn: &impl ConnectionTrait,
    facts: ticket_conversation::Model,
) -> Result<ticket_conversation::Model, DbErr> {
    use ticket_conversation::Column as C;
    let (account_id, id) = (facts.account_id.clone(), facts.conversation_id.clone());
    let newer = Expr::col((ticket_conversation::Entity, C::Version))
        .lt(Expr::col((Alias::new("excluded"), C::Version)));
    let written = ticket_conversation::Entity::insert(facts.into_active_model())
        .on_conflict(
            OnConflict::columns([C::AccountId, C::ConversationId])
                .update_columns([C::OwnerId, C::Open, C::Trashed, C::Version])
                .action_and_where(newer)
                .to_owned(),
        )
        .exec_with_returning(conn)
        .await;
    match written {
        Ok(row) => Ok(row),
        // Older than what is held: the held row stands, and is read.
        Err(DbErr::RecordNotInserted | DbErr::RecordNotFound(_)) => {
            link_of_conversation(conn, &account_id, &id)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(format!("conversation {id} facts")))
        }
        Err(err) => Err(err),
    }
}

/// R2: gives the conversation its ticket unless it has one. The guarded
/// update waits for a concurrent linker to commit and then finds the ticket
/// set, so exactly one ticket wins.
pub async fn link_to_ticket(
    conn: &impl ConnectionTrait,
    account_id: &str,
    conversation_id: &str,
    ticket_id: &str,
    now: i64,
) -> Result<bool, DbErr> {
    use ticket_conversation::Column as C;
    let result = ticket_conversation::Entity::update_many()
        .col_expr(C::TicketId, Some(ticket_id.to_owned()).into())
        .col_expr(C::LinkedAt, Some(now).into())
        .filter(C::AccountId.eq(account_id))
        .filter(C::ConversationId.eq(conversation_id))
        .filter(C::TicketId.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Marks conversations trashed (with their cascade) or restored, as
/// ticketing directed; the inbox's version of the facts is kept.
pub async fn set_trashed(
    conn: &impl ConnectionTrait,
    account_id: &str,
    conversation_ids: &[String],
    cascade_id: Option<&str>,
) -> Result<(), DbErr> {
    use ticket_conversation::Column as C;
    ticket_conversation::Entity::update_many()
        .col_expr(C::Trashed, cascade_id.is_some().into())
        .col_expr(C::CascadeId, cascade_id.map(str::to_owned).into())
        .filter(C::AccountId.eq(account_id))
        .filter(C::ConversationId.is_in(conversation_ids.iter().cloned()))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn insert_ticket(
    conn: &impl ConnectionTrait,
    ticket: ticket::Model,
) -> Result<(), DbErr> {
    ticket::Entity::insert(ticket.into_active_model())
        .exec(conn)
        .await
        .map(|_| ())
}

/// Writes `updated` only if the stored version is still `expected_version`
/// (optimistic concurrency); returns whether it did.
pub async fn update_ticket_if_version(
    conn: &impl ConnectionTrait,
    updated: &ticket::Model,
    expected_version: i64,
) -> Result<bool, DbErr> {
    rows::update_if_version::<ticket::Entity>(conn, updated, expected_version).await
}

#[derive(Debug, Default, Clone)]
pub struct TicketFilter {
    pub pipeline_id: Option<String>,
    pub stage_id: Option<String>,
    /// `Some(None)` lists tickets without an owner.
    pub owner_id: Option<Option<String>>,
    pub conversation_id: Option<String>,
    pub workspace: Option<i32>,
    pub show_deleted: bool,
    /// Include tickets merged into another (R14).
    pub show_merged: bool,
}

/// Newest first, keyset-paged.
pub async fn list_tickets(
    conn: &impl ConnectionTrait,
    account_id: &str,
    filter: &TicketFilter,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<ticket::Model>, DbErr> {
    use ticket::Column as C;
    let mut query = ticket::Entity::find().filter(C::AccountId.eq(account_id));
    if let Some(pipeline_id) = &filter.pipeline_id {
        query = query.filter(C::PipelineId.eq(pipeline_id));
    }
    if let Some(stage_id) = &filter.stage_id {
        query = query.filter(C::StageId.eq(stage_id));
    }
    match &filter.owner_id {
        Some(Some(owner)) => query = query.filter(C::OwnerId.eq(owner)),
        Some(None) => query = query.filter(C::OwnerId.is_null()),
        None => {}
    }
    if let Some(conversation_id) = &filter.conversation_id {
        let ticket_id = link_of_conversation(conn, account_id, conversation_id)
            .await?
            .and_then(|link| link.ticket_id);
        match ticket_id {
            Some(id) => query = query.filter(C::Id.eq(id)),
            None => return Ok(Vec::new()),
        }
    }
    if let Some(workspace) = filter.workspace {
        query = query.filter(C::Workspace.eq(workspace));
    }
    if !filter.show_deleted {
        query = query.filter(C::DeletedAt.is_null());
    }
    if !filter.show_merged {
        query = query.filter(C::MergedInto.is_null());
    }
    if let Some(cursor) = after {
        query = query.filter(paging::after_descending(C::CreatedAt, C::Id, cursor));
    }
    let query = query.order_by_desc(C::CreatedAt).order_by_desc(C::Id);
    rows::at_most(conn, query, limit).await
}

/// Reads a ticket and locks it until the transaction ends (PostgreSQL;
/// SQLite's single connection serialises anyway), so concurrent changes of
/// one ticket queue instead of failing their version check.
pub async fn find_ticket_for_update(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
) -> Result<Option<ticket::Model>, DbErr> {
    rows::find_for_update::<ticket::Entity>(conn, account_id, id).await
}

/// Stages by id, for a page of tickets.
pub async fn stages_by_id(
    conn: &impl ConnectionTrait,
    account_id: &str,
    ids: &[String],
) -> Result<Vec<stage::Model>, DbErr> {
    stage::Entity::find()
        .filter(stage::Column::AccountId.eq(account_id))
        .filter(stage::Column::Id.is_in(ids.iter().cloned()))
        .all(conn)
        .await
}

/// The conversations of several tickets, each ticket's in association order.
pub async fn links_of_tickets(
    conn: &impl ConnectionTrait,
    ticket_ids: &[String],
) -> Result<Vec<ticket_conversation::Model>, DbErr> {
    ticket_conversation::Entity::find()
        .filter(ticket_conversation::Column::TicketId.is_in(ticket_ids.iter().cloned()))
        .order_by_asc(ticket_conversation::Column::LinkedAt)
        .order_by_asc(ticket_conversation::Column::ConversationId)
        .all(conn)
        .await
}
