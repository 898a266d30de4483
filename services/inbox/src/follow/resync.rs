//! Resynchronisation after ticketing pruned events this inbox never applied
//! (CURSOR_EXPIRED): the account's tickets are read as snapshots and applied
//! (ticket read model, links, workspaces, trash), and the cursor jumps to
//! where the retained log begins. One-time directives inside the pruned
//! range (a close, a reopen) cannot be recovered; docs/stream.md says so.
//! The same happens when the cursor is ahead of ticketing's log
//! (CURSOR_AHEAD: ticketing's database was reset or restored from an older
//! backup), except that the cursor moves back to the log's head.

use kit::identity::Caller;
use proto::ticketing::v1 as tpb;
use tonic_types::StatusExt;

use super::apply;
use crate::state::{App, SERVICE_IDENTITY};
use crate::store::queries;

/// Where the cursor goes once the snapshot is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorMove {
    /// Forward to where the retained log begins (CURSOR_EXPIRED).
    Raise(i64),
    /// Back to the log's head (CURSOR_AHEAD): the events this inbox applied
    /// past it are not in ticketing's log any more, and the ones written
    /// there next are new.
    Reset(i64),
}

/// The account and cursor move a CURSOR_EXPIRED or CURSOR_AHEAD refusal
/// asks for.
pub fn lost_cursor(status: &tonic::Status) -> Option<(String, CursorMove)> {
    if status.code() != tonic::Code::OutOfRange {
        return None;
    }
    let details = status.get_error_details();
    let info = details.error_info()?;
    let position = |key: &str| info.metadata.get(key)?.parse::<i64>().ok();
    let cursor_move = match info.reason.as_str() {
        "CURSOR_EXPIRED" => CursorMove::Raise(position("pruned_through")?),
        // Ticketing's log was restored or replaced: behind the cursor
        // (CURSOR_AHEAD), or past it again with other events (LOG_DIVERGED).
        "CURSOR_AHEAD" | "LOG_DIVERGED" => CursorMove::Reset(position("head")?),
        _ => return None,
    };
    let account = info.metadata.get("account_id")?.clone();
    Some((account, cursor_move))
}

impl App {
    pub async fn resync_account(
        &self,
        account_id: &str,
        cursor_move: CursorMove,
    ) -> Result<usize, tonic::Status> {
        let caller = Caller {
            account_id: Some(account_id.to_owned()),
            service: Some(SERVICE_IDENTITY.to_owned()),
            ..Default::default()
        };
        let mut tickets = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = tpb::ListTicketsRequest {
                page_size: 1000,
                page_token,
                show_deleted: true,
                show_merged: true,
                ..Default::default()
            };
            let page = self
                .call_ticketing(&caller, request, |mut c, r| async move {
                    c.list_tickets(r).await
                })
                .await?
                .into_inner();
            tickets.extend(page.tickets);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let internal = |err: sea_orm::DbErr| tonic::Status::internal(err.to_string());
        let txn = self
            .transactions
            .begin("resync_account")
            .await
            .map_err(internal)?;
        let mut log = crate::store::changes::Pending::default();
        for ticket in &tickets {
            apply::ticket_snapshot(&txn, ticket, &mut log)
                .await
                .map_err(internal)?;
            // A snapshot lists the conversations a ticket has now: one moved
            // by a merge the pruned range held (R14, R15) follows it here.
            let mut actions = vec![tpb::DirectiveAction::MoveToTicket];
            if ticket.delete_time.is_some() {
                actions.push(tpb::DirectiveAction::Trash);
            }
            for conversation_id in &ticket.conversation_ids {
                for action in &actions {
                    let directive = tpb::ConversationDirective {
                        conversation_id: conversation_id.clone(),
                        ticket_id: ticket.id.clone(),
                        action: *action as i32,
                        ..Default::default()
                    };
                    apply::directive(&txn, account_id, &directive, &mut log)
                        .await
                        .map_err(internal)?;
                }
            }
        }
        match cursor_move {
            CursorMove::Raise(to) => queries::raise_cursor(&txn, account_id, to).await,
            CursorMove::Reset(to) => queries::set_cursor(&txn, account_id, to).await,
        }
        .map_err(internal)?;
        log.append(&txn).await.map_err(internal)?;
        txn.commit().await.map_err(internal)?;
        self.changes.notify();
        // One line and one count per resynchronisation: an operator who
        // restored ticketing from a backup should see exactly this.
        let why = match cursor_move {
            CursorMove::Raise(_) => "cursor_expired",
            CursorMove::Reset(_) => "log_reset",
        };
        opentelemetry::global::meter("inbox")
            .u64_counter("inbox.consumer.resyncs")
            .with_description("accounts resynchronised from a snapshot, by cause")
            .build()
            .add(1, &[opentelemetry::KeyValue::new("cause", why)]);
        tracing::warn!(
            account_id,
            ?cursor_move,
            cause = why,
            tickets = tickets.len(),
            "resynchronised from a snapshot"
        );
        Ok(tickets.len())
    }
}
