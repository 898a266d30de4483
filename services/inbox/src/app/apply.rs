//! Applying ticketing's decisions to the inbox's own store: ticket snapshots
//! into the read model, directives onto conversations. Every write is a
//! conditional, atomic UPDATE, so applying the same decision twice changes
//! nothing the second time.

use prost::Message;
use proto::ticketing::v1 as tpb;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, SimpleExpr},
};

use crate::store::{changes, conversation, message, queries, ticket_view};

use proto::inbox::v1::ConversationChangeKind as Kind;

const OPEN: i32 = proto::inbox::v1::ConversationStatus::Open as i32;
const CLOSED: i32 = proto::inbox::v1::ConversationStatus::Closed as i32;

/// Stores the snapshot if it is newer than the stored one, and keeps each
/// of the ticket's conversations linked and in the ticket's workspace.
/// Returns the conversations it changed, as they are now.
pub async fn ticket_snapshot(
    conn: &impl ConnectionTrait,
    ticket: &tpb::Ticket,
    log: &mut changes::Pending,
) -> Result<Vec<conversation::Model>, DbErr> {
    let stored = queries::upsert_ticket_view(
        conn,
        ticket_view::Model {
            ticket_id: ticket.id.clone(),
            account_id: ticket.account_id.clone(),
            version: ticket.version,
            snapshot: ticket.encode_to_vec(),
            updated_at: kit::time::now_micros(),
        },
    )
    .await?;
    if !stored {
        // This version or a newer one was applied before, links included
        // (same transaction), and a conversation's link is permanent (R2):
        // there is nothing left to do. The common case for the consumer
        // after the inbox applied an answer synchronously.
        return Ok(Vec::new());
    }
    // One statement per kind of change for all the ticket's conversations.
    use conversation::Column as C;
    let ids: Vec<&str> = ticket.conversation_ids.iter().map(String::as_str).collect();
    let linked = vec![(C::TicketId, Some(ticket.id.clone()).into())];
    let mut changed = change_many(
        conn,
        &ticket.account_id,
        &ids,
        C::TicketId.is_null(),
        linked,
        Kind::Updated,
        log,
    )
    .await?;
    if ticket.workspace == tpb::Workspace::HelpDesk as i32 {
        let help_desk = tpb::Workspace::HelpDesk as i32;
        let moved = vec![(C::Workspace, help_desk.into())];
        for row in change_many(
            conn,
            &ticket.account_id,
            &ids,
            C::Workspace.ne(help_desk),
            moved,
            Kind::Updated,
            log,
        )
        .await?
        {
            changed.retain(|earlier| earlier.id != row.id);
            changed.push(row);
        }
    }
    Ok(changed)
}

pub async fn directive(
    conn: &impl ConnectionTrait,
    account_id: &str,
    directive: &tpb::ConversationDirective,
    log: &mut changes::Pending,
) -> Result<bool, DbErr> {
    use conversation::Column as C;
    let id = directive.conversation_id.as_str();
    match tpb::DirectiveAction::try_from(directive.action) {
        Ok(tpb::DirectiveAction::LinkTicket) => {
            link(conn, account_id, id, &directive.ticket_id, log).await
        }
        Ok(tpb::DirectiveAction::Close) => {
            let sets = vec![(C::Status, CLOSED.into())];
            change(
                conn,
                account_id,
                id,
                C::Status.eq(OPEN),
                sets,
                Kind::Updated,
                log,
            )
            .await
        }
        Ok(tpb::DirectiveAction::Reopen) => {
            let live_and_closed = C::Status.eq(CLOSED).and(C::DeletedAt.is_null());
            let sets = vec![(C::Status, OPEN.into())];
            change(
                conn,
                account_id,
                id,
                live_and_closed,
                sets,
                Kind::Updated,
                log,
            )
            .await
        }
        Ok(tpb::DirectiveAction::MoveToHelpDesk) => {
            move_to_help_desk(conn, account_id, id, log).await
        }
        Ok(tpb::DirectiveAction::Trash) => {
            let now = kit::time::now_micros();
            let sets = vec![(C::DeletedAt, now.into())];
            change(
                conn,
                account_id,
                id,
                C::DeletedAt.is_null(),
                sets,
                Kind::Trashed,
                log,
            )
            .await
        }
        Ok(tpb::DirectiveAction::Restore) => {
            let none: Option<i64> = None;
            let sets = vec![(C::DeletedAt, none.into())];
            change(
                conn,
                account_id,
                id,
                C::DeletedAt.is_not_null(),
                sets,
                Kind::Restored,
                log,
            )
            .await
        }
        Ok(tpb::DirectiveAction::Purge) => purge(conn, account_id, id).await,
        Ok(tpb::DirectiveAction::Unspecified) | Err(_) => {
            tracing::warn!(
                action = directive.action,
                conversation_id = id,
                "unknown directive ignored"
            );
            Ok(false)
        }
    }
}

/// R2: a conversation's ticket is set once and never replaced.
async fn link(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
    ticket_id: &str,
    log: &mut changes::Pending,
) -> Result<bool, DbErr> {
    use conversation::Column as C;
    let sets = vec![(C::TicketId, Some(ticket_id.to_owned()).into())];
    change(
        conn,
        account_id,
        id,
        C::TicketId.is_null(),
        sets,
        Kind::Updated,
        log,
    )
    .await
}

async fn move_to_help_desk(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
    log: &mut changes::Pending,
) -> Result<bool, DbErr> {
    use conversation::Column as C;
    let help_desk = tpb::Workspace::HelpDesk as i32;
    let sets = vec![(C::Workspace, help_desk.into())];
    change(
        conn,
        account_id,
        id,
        C::Workspace.ne(help_desk),
        sets,
        Kind::Updated,
        log,
    )
    .await
}

/// R9: removes a conversation and its messages for good.
pub async fn purge(conn: &impl ConnectionTrait, account_id: &str, id: &str) -> Result<bool, DbErr> {
    use conversation::Column as C;
    message::Entity::delete_many()
        .filter(message::Column::ConversationId.eq(id))
        .filter(message::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    let result = conversation::Entity::delete_many()
        .filter(C::Id.eq(id))
        .filter(C::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// `UPDATE conversations SET <sets>, version = version + 1 WHERE id AND
/// <when>`, and a change-log entry when it changed something.
async fn change(
    conn: &impl ConnectionTrait,
    account_id: &str,
    id: &str,
    when: SimpleExpr,
    sets: Vec<(conversation::Column, SimpleExpr)>,
    kind: Kind,
    log: &mut changes::Pending,
) -> Result<bool, DbErr> {
    Ok(!change_many(conn, account_id, &[id], when, sets, kind, log)
        .await?
        .is_empty())
}

/// Applies `sets` to those of the conversations `ids` for which `when`
/// holds, and logs a change for each one changed; returns them.
async fn change_many(
    conn: &impl ConnectionTrait,
    account_id: &str,
    ids: &[&str],
    when: SimpleExpr,
    sets: Vec<(conversation::Column, SimpleExpr)>,
    kind: Kind,
    log: &mut changes::Pending,
) -> Result<Vec<conversation::Model>, DbErr> {
    use conversation::Column as C;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut update = conversation::Entity::update_many()
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .col_expr(C::UpdatedAt, kit::time::now_micros().into());
    for (column, value) in sets {
        update = update.col_expr(column, value);
    }
    let mut updated = update
        .filter(C::Id.is_in(ids.iter().copied()))
        .filter(C::AccountId.eq(account_id))
        .filter(when)
        .exec_with_returning(conn)
        .await?;
    // In the order the caller named them, whatever order the database used.
    updated.sort_by_key(|row| ids.iter().position(|id| *id == row.id));
    for row in &updated {
        log.push(row.clone(), kind);
    }
    Ok(updated)
}
