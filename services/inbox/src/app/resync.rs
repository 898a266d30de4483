//! Resynchronisation after ticketing pruned events this inbox never applied
//! (CURSOR_EXPIRED): the account's tickets are read as snapshots and applied
//! (ticket read model, links, workspaces, trash), and the cursor jumps to
//! where the retained log begins. One-time directives inside the pruned
//! range (a close, a reopen) cannot be recovered; docs/stream.md says so.

use kit::identity::Caller;
use proto::ticketing::v1 as tpb;
use sea_orm::TransactionTrait;
use tonic_types::StatusExt;

use super::{App, SERVICE_IDENTITY, apply};
use crate::store::queries;

/// The account and position a CURSOR_EXPIRED refusal names.
pub fn expired_cursor(status: &tonic::Status) -> Option<(String, i64)> {
    if status.code() != tonic::Code::OutOfRange {
        return None;
    }
    let details = status.get_error_details();
    let info = details.error_info()?;
    if info.reason != "CURSOR_EXPIRED" {
        return None;
    }
    let account = info.metadata.get("account_id")?.clone();
    let through = info.metadata.get("pruned_through")?.parse().ok()?;
    Some((account, through))
}

impl App {
    pub async fn resync_account(
        &self,
        account_id: &str,
        pruned_through: i64,
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
        let txn = self.db.begin().await.map_err(internal)?;
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
        queries::raise_cursor(&txn, account_id, pruned_through)
            .await
            .map_err(internal)?;
        log.append(&txn).await.map_err(internal)?;
        txn.commit().await.map_err(internal)?;
        self.changes.notify();
        tracing::warn!(
            account_id,
            pruned_through,
            tickets = tickets.len(),
            "resynchronised from a snapshot"
        );
        Ok(tickets.len())
    }
}
