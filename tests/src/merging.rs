//! Calls and readings the merge tests share (R14–R16).

use proto::ticketing::v1 as tpb;

use crate::{Stack, as_user, conversation_becomes, get_ticket};

/// A merge request that pins both tickets' etags.
pub fn merge_request(primary: &tpb::Ticket, secondary: &tpb::Ticket) -> tpb::MergeTicketsRequest {
    tpb::MergeTicketsRequest {
        primary_id: primary.id.clone(),
        secondary_id: secondary.id.clone(),
        primary_etag: primary.etag.clone(),
        secondary_etag: secondary.etag.clone(),
        ..Default::default()
    }
}

pub async fn merge(
    stack: &Stack,
    account: &str,
    request: tpb::MergeTicketsRequest,
) -> Result<tpb::MergeTicketsResponse, tonic::Status> {
    stack
        .ticketing()
        .await
        .merge_tickets(as_user(account, "agent-1", request))
        .await
        .map(|r| r.into_inner())
}

pub async fn unmerge(
    stack: &Stack,
    account: &str,
    id: &str,
) -> Result<tpb::UnmergeTicketResponse, tonic::Status> {
    stack
        .ticketing()
        .await
        .unmerge_ticket(as_user(
            account,
            "agent-1",
            tpb::UnmergeTicketRequest {
                id: id.into(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

pub async fn fresh(stack: &Stack, account: &str, id: &str) -> tpb::Ticket {
    get_ticket(stack, account, id).await.expect("ticket")
}

pub async fn update(
    stack: &Stack,
    account: &str,
    ticket: tpb::Ticket,
    paths: &[&str],
) -> Result<tpb::Ticket, tonic::Status> {
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            account,
            "agent-1",
            tpb::UpdateTicketRequest {
                ticket: Some(ticket),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// A ticket created in ticketing directly, without a conversation.
pub async fn bare_ticket(stack: &Stack, account: &str, name: &str) -> tpb::Ticket {
    stack
        .ticketing()
        .await
        .create_ticket(as_user(
            account,
            "agent-1",
            tpb::CreateTicketRequest {
                ticket: Some(tpb::Ticket {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("create ticket")
        .into_inner()
}

pub async fn history(
    stack: &Stack,
    account: &str,
    subject: tpb::list_history_request::Subject,
) -> Vec<tpb::Event> {
    stack
        .ticketing()
        .await
        .list_history(as_user(
            account,
            "agent-1",
            tpb::ListHistoryRequest {
                subject: Some(subject),
                page_size: 200,
                ..Default::default()
            },
        ))
        .await
        .expect("history")
        .into_inner()
        .events
}

pub fn moves(events: &[tpb::Event]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(tpb::event::Payload::ConversationDirective(d))
                if d.action == tpb::DirectiveAction::MoveToTicket as i32 =>
            {
                let rule = e.cause.as_ref().map(|c| c.rule.clone()).unwrap_or_default();
                Some((
                    d.conversation_id.clone(),
                    d.from_ticket_id.clone(),
                    d.ticket_id.clone(),
                    rule,
                ))
            }
            _ => None,
        })
        .collect()
}

pub fn changes_of_kind(events: &[tpb::Event], kind: tpb::TicketChangeKind) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(&e.payload, Some(tpb::event::Payload::TicketChanged(c)) if c.kind == kind as i32)
        })
        .count()
}

pub async fn list_ids(stack: &Stack, account: &str, show_merged: bool) -> Vec<String> {
    stack
        .ticketing()
        .await
        .list_tickets(as_user(
            account,
            "agent-1",
            tpb::ListTicketsRequest {
                show_merged,
                ..Default::default()
            },
        ))
        .await
        .expect("list tickets")
        .into_inner()
        .tickets
        .into_iter()
        .map(|t| t.id)
        .collect()
}

pub async fn on_ticket(stack: &Stack, account: &str, conversation: &str, ticket: &str) {
    conversation_becomes(
        stack,
        account,
        conversation,
        "the inbox to show the move",
        |c| c.ticket_id == ticket,
    )
    .await;
}
