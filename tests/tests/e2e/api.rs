//! The API's contract beyond the rules: bad input refused naming the field.

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::api_discovery::health;

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_leaves_the_servers_healthy() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    macro_rules! user {
        ($message:expr) => {
            as_user(&account, "agent-1", $message)
        };
    }

    let expect_field = |status: tonic::Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(bad_field(&status), field, "{status:?}");
    };

    // ticketing
    let status = ticketing
        .create_account(as_service(
            "admin",
            tpb::CreateAccountRequest {
                account: Some(tpb::Account {
                    name: "X".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    expect_field(status, "account.tier");
    let status = ticketing
        .create_account(as_service(
            "admin",
            tpb::CreateAccountRequest {
                account: Some(tpb::Account {
                    name: "X".into(),
                    tier: 99,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    expect_field(status, "account.tier");
    let status = ticketing
        .create_account(as_service("admin", tpb::CreateAccountRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "account");
    let status = ticketing
        .get_account(user!(tpb::GetAccountRequest {
            id: "no such id!".into()
        }))
        .await
        .unwrap_err();
    expect_field(status, "id");
    let status = ticketing
        .create_ticket(user!(tpb::CreateTicketRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "ticket.name");
    let status = ticketing
        .create_ticket(user!(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                name: "T".into(),
                priority: 42,
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "ticket.priority");
    // PostgreSQL cannot store NUL in text: it must be refused up front, not
    // reach the database as an internal error.
    let status = ticketing
        .create_ticket(user!(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                name: "before\0after".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "ticket.name");
    let status = ticketing
        .create_ticket(user!(tpb::CreateTicketRequest {
            ticket: Some(tpb::Ticket {
                name: "T".into(),
                stage_id: "nope".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "ticket.stage_id");
    let status = ticketing
        .create_ticket(user!(tpb::CreateTicketRequest {
            request_id: "not a valid id".into(),
            ticket: Some(tpb::Ticket {
                name: "T".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "request_id");
    let status = ticketing
        .get_ticket(user!(tpb::GetTicketRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "id");
    let status = ticketing
        .list_tickets(user!(tpb::ListTicketsRequest {
            page_size: -1,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "page_size");
    let status = ticketing
        .list_tickets(user!(tpb::ListTicketsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "page_token");
    let status = ticketing
        .list_tickets(user!(tpb::ListTicketsRequest {
            workspace: 7,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "workspace");
    let status = ticketing
        .update_ticket(user!(tpb::UpdateTicketRequest {
            ticket: Some(tpb::Ticket {
                id: "t1".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["conversation_ids".into()]
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "update_mask.paths[0]");
    let status = ticketing
        .update_ticket(user!(tpb::UpdateTicketRequest {
            ticket: Some(tpb::Ticket {
                id: "t1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "update_mask");
    let status = ticketing
        .list_pipelines(user!(tpb::ListPipelinesRequest {
            page_token: "zz".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "page_token");
    let status = ticketing
        .watch_events(user!(tpb::WatchEventsRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "cursors");

    // inbox
    let mut request = new_conversation("Subject", "not-an-email");
    let status = inbox
        .create_conversation(user!(request.clone()))
        .await
        .unwrap_err();
    expect_field(status, "contact.email");
    request = new_conversation("", "a@example.com");
    let status = inbox.create_conversation(user!(request)).await.unwrap_err();
    expect_field(status, "conversation.subject");
    let mut request = new_conversation("Subject", "a@example.com");
    request.first_message.as_mut().unwrap().body = "hello\0".into();
    let status = inbox.create_conversation(user!(request)).await.unwrap_err();
    expect_field(status, "first_message.body");
    let mut request = new_conversation("Subject", "a@example.com");
    request.conversation.as_mut().unwrap().channel = 0;
    let status = inbox.create_conversation(user!(request)).await.unwrap_err();
    expect_field(status, "conversation.channel");
    let mut request = new_conversation("Subject", "a@example.com");
    request.first_message = None;
    let status = inbox.create_conversation(user!(request)).await.unwrap_err();
    expect_field(status, "first_message");
    let status = inbox
        .get_conversation(user!(ipb::GetConversationRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "id");
    let status = inbox
        .list_conversations(user!(ipb::ListConversationsRequest {
            status: 9,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "status");
    let status = inbox
        .add_message(user!(ipb::AddMessageRequest {
            conversation_id: "c1".into(),
            message: Some(ipb::Message {
                direction: 0,
                author: "a".into(),
                body: "b".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    expect_field(status, "message.direction");
    let status = inbox
        .list_messages(user!(ipb::ListMessagesRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "conversation_id");
    let status = inbox
        .create_ticket_for_conversation(user!(create_ticket_for("")))
        .await
        .unwrap_err();
    expect_field(status, "conversation_id");

    // Unknown ids are NOT_FOUND, and a call naming no account is UNAUTHENTICATED.
    let missing = "0193aaaa-0000-7000-8000-000000000000";
    // Another account's id is refused before anyone looks (no probing).
    let other = ticketing
        .get_account(user!(tpb::GetAccountRequest { id: missing.into() }))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    for status in [
        ticketing
            .get_ticket(user!(tpb::GetTicketRequest { id: missing.into() }))
            .await
            .unwrap_err(),
        ticketing
            .get_account(as_service(
                "admin",
                tpb::GetAccountRequest { id: missing.into() },
            ))
            .await
            .unwrap_err(),
        ticketing
            .update_ticket(user!(move_to_stage(missing, missing, "")))
            .await
            .unwrap_err(),
        inbox
            .get_conversation(user!(ipb::GetConversationRequest { id: missing.into() }))
            .await
            .unwrap_err(),
        inbox
            .list_messages(user!(ipb::ListMessagesRequest {
                conversation_id: missing.into(),
                ..Default::default()
            }))
            .await
            .unwrap_err(),
        inbox
            .create_ticket_for_conversation(user!(create_ticket_for(missing)))
            .await
            .unwrap_err(),
        inbox
            .add_message(user!(ipb::AddMessageRequest {
                conversation_id: missing.into(),
                message: Some(ipb::Message {
                    direction: ipb::Direction::Outgoing as i32,
                    author: "agent-1".into(),
                    body: "hi".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let status = inbox
        .get_conversation(tonic::Request::new(ipb::GetConversationRequest {
            id: missing.into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = ticketing
        .list_history(user!(tpb::ListHistoryRequest::default()))
        .await
        .unwrap_err();
    expect_field(status, "subject");

    assert_eq!(
        health(stack.ticketing_addr, "").await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health(stack.inbox_addr, "").await,
        ServingStatus::Serving as i32
    );
    stack.stop().await;
}
