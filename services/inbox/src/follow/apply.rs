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

use crate::{
    convert,
    store::{changes, conversation, message, queries, ticket_view},
};

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
    let stored = queries::upsert_ticket_views(conn, [ticket_view_of(ticket)]).await?;
    if stored.is_empty() {
        // This version or a newer one was applied before, links included
        // (same transaction), and a conversation's link is permanent (R2):
        // there is nothing left to do.
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

/// The read-model row of a ticket snapshot.
pub fn ticket_view_of(ticket: &tpb::Ticket) -> ticket_view::Model {
    ticket_view::Model {
        ticket_id: ticket.id.clone(),
        account_id: ticket.account_id.clone(),
        version: ticket.version,
        snapshot: ticket.encode_to_vec(),
        updated_at: kit::time::now_micros(),
    }
}

pub async fn directive(
    conn: &impl ConnectionTrait,
    account_id: &str,
    directive: &tpb::ConversationDirective,
    log: &mut changes::Pending,
) -> Result<bool, DbErr> {
    let id = directive.conversation_id.as_str();
    if directive.action == tpb::DirectiveAction::Purge as i32 {
        return purge(conn, account_id, id).await;
    }
    let changed = directives(
        conn,
        account_id,
        directive.action,
        &directive.ticket_id,
        &[id],
        log,
    )
    .await?;
    Ok(changed > 0)
}

/// Applies `action` (with `ticket_id`, for a link) to all of `ids` in one
/// statement: a ticket closing, reopening or going to the trash directs all
/// of its conversations at once. Not for purges. Returns how many
/// conversations changed.
pub async fn directives(
    conn: &impl ConnectionTrait,
    account_id: &str,
    action: i32,
    ticket_id: &str,
    ids: &[&str],
    log: &mut changes::Pending,
) -> Result<usize, DbErr> {
    let Some((when, sets, kind)) = effect(action, ticket_id) else {
        tracing::warn!(
            action,
            conversations = ids.len(),
            "unknown directive ignored"
        );
        return Ok(0);
    };
    Ok(change_many(conn, account_id, ids, when, sets, kind, log)
        .await?
        .len())
}

type Sets = Vec<(conversation::Column, SimpleExpr)>;

/// What a directive changes, as a guarded update: the condition under
/// which it still applies (so applying it twice changes nothing), the new
/// values, and the kind of change logged.
fn effect(action: i32, ticket_id: &str) -> Option<(SimpleExpr, Sets, Kind)> {
    use conversation::Column as C;
    let help_desk = tpb::Workspace::HelpDesk as i32;
    Some(match tpb::DirectiveAction::try_from(action).ok()? {
        // R2: a conversation's ticket is set once and never replaced.
        tpb::DirectiveAction::LinkTicket => (
            C::TicketId.is_null(),
            vec![(C::TicketId, Some(ticket_id.to_owned()).into())],
            Kind::Updated,
        ),
        // R14, R15: a merge or its undo moves the conversation to another
        // ticket; the stream's order makes the last move win.
        tpb::DirectiveAction::MoveToTicket => (
            C::TicketId
                .is_null()
                .or(C::TicketId.ne(ticket_id.to_owned())),
            vec![(C::TicketId, Some(ticket_id.to_owned()).into())],
            Kind::Updated,
        ),
        tpb::DirectiveAction::Close => (
            C::Status.eq(OPEN),
            vec![(C::Status, CLOSED.into())],
            Kind::Updated,
        ),
        tpb::DirectiveAction::Reopen => (
            C::Status.eq(CLOSED).and(C::DeletedAt.is_null()),
            vec![(C::Status, OPEN.into())],
            Kind::Updated,
        ),
        tpb::DirectiveAction::MoveToHelpDesk => (
            C::Workspace.ne(help_desk),
            vec![(C::Workspace, help_desk.into())],
            Kind::Updated,
        ),
        tpb::DirectiveAction::Trash => (
            C::DeletedAt.is_null(),
            vec![(C::DeletedAt, kit::time::now_micros().into())],
            Kind::Trashed,
        ),
        tpb::DirectiveAction::Restore => (
            C::DeletedAt.is_not_null(),
            vec![(C::DeletedAt, Option::<i64>::None.into())],
            Kind::Restored,
        ),
        tpb::DirectiveAction::Purge | tpb::DirectiveAction::Unspecified => return None,
    })
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
        log.push(convert::conversation_to_proto(row), kind);
    }
    Ok(updated)
}
