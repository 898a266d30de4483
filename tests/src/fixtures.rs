//! Requests and setup most tests need.

use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

use crate::{Stack, as_service};

type InboxClient = ipb::inbox_service_client::InboxServiceClient<tonic::transport::Channel>;
type TicketingClient =
    tpb::ticketing_service_client::TicketingServiceClient<tonic::transport::Channel>;

/// Creates an account of `tier`; returns its id.
pub async fn account(stack: &Stack, tier: tpb::Tier) -> String {
    account_via(stack.ticketing().await, tier).await
}

/// [`account`] through a client of one's own (the bench's processes).
pub async fn account_via(mut ticketing: TicketingClient, tier: tpb::Tier) -> String {
    let account = ticketing
        .create_account(as_service(
            "admin",
            tpb::CreateAccountRequest {
                request_id: String::new(),
                account: Some(tpb::Account {
                    name: "Acme".into(),
                    tier: tier as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("create account")
        .into_inner();
    account.id
}

pub fn new_conversation(subject: &str, email: &str) -> ipb::CreateConversationRequest {
    ipb::CreateConversationRequest {
        request_id: String::new(),
        conversation: Some(ipb::Conversation {
            subject: subject.into(),
            channel: ipb::Channel::Email as i32,
            ..Default::default()
        }),
        contact: Some(ipb::Contact {
            email: email.into(),
            name: "Ana".into(),
            ..Default::default()
        }),
        first_message: Some(ipb::Message {
            body: "It does not print".into(),
            ..Default::default()
        }),
    }
}

pub fn create_ticket_for(conversation_id: &str) -> ipb::CreateTicketForConversationRequest {
    ipb::CreateTicketForConversationRequest {
        request_id: String::new(),
        conversation_id: conversation_id.into(),
        ticket: None,
    }
}

/// WatchEvents for one account's events after `after_sequence`.
pub fn events_after(account_id: &str, after_sequence: i64) -> tpb::WatchEventsRequest {
    tpb::WatchEventsRequest {
        cursors: vec![tpb::AccountCursor {
            account_id: account_id.into(),
            after_sequence,
            ..Default::default()
        }],
        all_accounts: false,
    }
}

/// The ErrorInfo reason of a refusal.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// The default pipeline's stage called `name`.
pub async fn stage_id(stack: &Stack, account: &str, name: &str) -> String {
    let pipelines = stack
        .ticketing()
        .await
        .list_pipelines(crate::as_user(
            account,
            "agent-1",
            tpb::ListPipelinesRequest::default(),
        ))
        .await
        .expect("list pipelines")
        .into_inner()
        .pipelines;
    pipelines
        .iter()
        .flat_map(|p| &p.stages)
        .find(|s| s.name == name)
        .map(|s| s.id.clone())
        .unwrap_or_else(|| panic!("no stage {name}"))
}

/// An update that moves a ticket to another stage.
pub fn move_to_stage(ticket_id: &str, stage_id: &str, etag: &str) -> tpb::UpdateTicketRequest {
    tpb::UpdateTicketRequest {
        ticket: Some(tpb::Ticket {
            id: ticket_id.into(),
            stage_id: stage_id.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["stage_id".into()],
        }),
        ..Default::default()
    }
}

/// The field named by a refusal's BadRequest violation.
pub fn bad_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone())
        .unwrap_or_default()
}

/// A new conversation of `account` from `email`.
pub async fn conversation(
    stack: &Stack,
    account: &str,
    subject: &str,
    email: &str,
) -> ipb::Conversation {
    conversation_via(stack.inbox().await, account, subject, email).await
}

/// [`conversation`] through a client of one's own.
pub async fn conversation_via(
    mut inbox: InboxClient,
    account: &str,
    subject: &str,
    email: &str,
) -> ipb::Conversation {
    inbox
        .create_conversation(crate::as_user(
            account,
            "agent-1",
            new_conversation(subject, email),
        ))
        .await
        .expect("create conversation")
        .into_inner()
}

/// A ticket for the conversation, through the inbox.
pub async fn ticket_for(stack: &Stack, account: &str, conversation_id: &str) -> tpb::Ticket {
    ticket_for_via(stack.inbox().await, account, conversation_id).await
}

/// [`ticket_for`] through a client of one's own.
pub async fn ticket_for_via(
    mut inbox: InboxClient,
    account: &str,
    conversation_id: &str,
) -> tpb::Ticket {
    inbox
        .create_ticket_for_conversation(crate::as_user(
            account,
            "agent-1",
            create_ticket_for(conversation_id),
        ))
        .await
        .expect("create ticket")
        .into_inner()
        .ticket
        .expect("ticket")
}

/// Adds a conversation to a ticket, through the inbox (R3).
pub async fn add_to_ticket(
    stack: &Stack,
    account: &str,
    conversation_id: &str,
    ticket_id: &str,
) -> tpb::Ticket {
    stack
        .inbox()
        .await
        .add_conversation_to_ticket(crate::as_user(
            account,
            "agent-1",
            ipb::AddConversationToTicketRequest {
                request_id: String::new(),
                conversation_id: conversation_id.into(),
                ticket_id: ticket_id.into(),
            },
        ))
        .await
        .expect("add conversation to ticket")
        .into_inner()
        .ticket
        .expect("ticket")
}

pub async fn get_conversation(stack: &Stack, account: &str, id: &str) -> Option<ipb::Conversation> {
    stack
        .inbox()
        .await
        .get_conversation(crate::as_user(
            account,
            "agent-1",
            ipb::GetConversationRequest { id: id.into() },
        ))
        .await
        .ok()
        .map(|r| r.into_inner())
}

pub async fn get_ticket(stack: &Stack, account: &str, id: &str) -> Option<tpb::Ticket> {
    stack
        .ticketing()
        .await
        .get_ticket(crate::as_user(
            account,
            "agent-1",
            tpb::GetTicketRequest { id: id.into() },
        ))
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Waits until the inbox shows the conversation in a state `check` accepts.
pub async fn conversation_becomes(
    stack: &Stack,
    account: &str,
    id: &str,
    what: &str,
    check: impl Fn(&ipb::Conversation) -> bool,
) -> ipb::Conversation {
    crate::eventually(what, || async {
        get_conversation(stack, account, id)
            .await
            .filter(|c| check(c))
    })
    .await
}

/// Waits until ticketing shows the ticket in a state `check` accepts.
pub async fn ticket_becomes(
    stack: &Stack,
    account: &str,
    id: &str,
    what: &str,
    check: impl Fn(&tpb::Ticket) -> bool,
) -> tpb::Ticket {
    crate::eventually(what, || async {
        get_ticket(stack, account, id).await.filter(|t| check(t))
    })
    .await
}

pub fn is_open(c: &ipb::Conversation) -> bool {
    c.status == ipb::ConversationStatus::Open as i32
}

pub fn is_closed(c: &ipb::Conversation) -> bool {
    c.status == ipb::ConversationStatus::Closed as i32
}
