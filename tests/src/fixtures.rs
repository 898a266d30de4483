//! Requests and setup most tests need.

use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

use crate::Stack;

/// Creates an account of `tier`; returns its id.
pub async fn account(stack: &Stack, tier: tpb::Tier) -> String {
    let account = stack
        .ticketing()
        .await
        .create_account(tonic::Request::new(tpb::CreateAccountRequest {
            request_id: String::new(),
            account: Some(tpb::Account {
                name: "Acme".into(),
                tier: tier as i32,
                ..Default::default()
            }),
        }))
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
