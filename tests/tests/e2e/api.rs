//! The API's contract beyond the rules: health, reflection, bad input,
//! idempotency, paging, R10 workspaces, the event stream and draining.

use std::time::Duration;

use e2e::{
    Stack, account, as_service, as_user, bad_field, create_ticket_for, eventually, move_to_stage,
    new_conversation, reason, stage_id,
};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn health(addr: std::net::SocketAddr, service: &str) -> i32 {
    HealthClient::new(e2e::channel(addr).await)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

async fn reflected_services(addr: std::net::SocketAddr) -> (Vec<String>, Vec<String>) {
    use tonic_reflection::pb::{v1, v1alpha};
    let channel = e2e::channel(addr).await;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut v1_stream = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let v1_names = match v1_stream
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    };
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut alpha_stream = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let alpha_names = match alpha_stream
        .next()
        .await
        .expect("answer")
        .expect("ok")
        .message_response
    {
        Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    };
    (v1_names, alpha_names)
}

/// Whether reflection v1alpha, the version grpcurl asks, can describe
/// `symbol`.
async fn describes(addr: std::net::SocketAddr, symbol: &str) -> bool {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let answer = ServerReflectionClient::new(e2e::channel(addr).await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner()
        .next()
        .await
        .expect("answer")
        .expect("ok");
    matches!(
        answer.message_response,
        Some(MessageResponse::FileDescriptorResponse(_))
    )
}

/// SPEC §6: health and reflection v1 and v1alpha on each port, listing only
/// the service that port answers (the inbox's descriptors import
/// ticketing's, which must not make the inbox's port advertise it), and
/// describing the `google.rpc` error details so that grpcurl can print them.
#[tokio::test]
async fn both_services_serve_health_and_reflection_v1_and_v1alpha() {
    let stack = Stack::start().await;
    for (addr, service, elsewhere) in [
        (
            stack.ticketing_addr,
            "ticketing.v1.TicketingService",
            "inbox.v1.InboxService",
        ),
        (
            stack.inbox_addr,
            "inbox.v1.InboxService",
            "ticketing.v1.TicketingService",
        ),
    ] {
        assert_eq!(health(addr, "").await, ServingStatus::Serving as i32);
        assert_eq!(health(addr, service).await, ServingStatus::Serving as i32);
        let (v1, v1alpha) = reflected_services(addr).await;
        for names in [&v1, &v1alpha] {
            assert!(names.iter().any(|n| n == service), "{names:?}");
            assert!(!names.iter().any(|n| n == elsewhere), "{names:?}");
            assert!(
                names.iter().any(|n| n == "grpc.health.v1.Health"),
                "{names:?}"
            );
        }
        for detail in [
            "google.rpc.ErrorInfo",
            "google.rpc.BadRequest",
            "google.rpc.PreconditionFailure",
            "google.rpc.ResourceInfo",
        ] {
            assert!(describes(addr, detail).await, "{service}: {detail}");
        }
    }
    stack.stop().await;
}

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

#[tokio::test]
async fn a_retried_request_id_has_one_effect_and_a_reused_one_is_refused() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut request = new_conversation("Once", "once@example.com");
    request.request_id = "req-create-1".into();
    let first = inbox
        .create_conversation(as_user(&account, "a", request.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = inbox
        .create_conversation(as_user(&account, "a", request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    let listed = inbox
        .list_conversations(as_user(
            &account,
            "a",
            ipb::ListConversationsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .conversations;
    assert_eq!(listed.len(), 1);

    request.conversation.as_mut().unwrap().subject = "Something else".into();
    let reused = inbox
        .create_conversation(as_user(&account, "a", request))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");

    // A retried ticket creation gets the first answer, not ALREADY_EXISTS.
    let mut create = create_ticket_for(&first.id);
    create.request_id = "req-ticket-1".into();
    let ticket = inbox
        .create_ticket_for_conversation(as_user(&account, "a", create.clone()))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let retried = inbox
        .create_ticket_for_conversation(as_user(&account, "a", create))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(ticket, retried);
    stack.stop().await;
}

#[tokio::test]
async fn conversation_lists_page_without_gaps_or_repeats() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let conversation = inbox
            .create_conversation(as_user(
                &account,
                "a",
                new_conversation(&format!("C{i}"), "pager@example.com"),
            ))
            .await
            .unwrap()
            .into_inner();
        created.push(conversation.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = inbox
            .list_conversations(as_user(
                &account,
                "a",
                ipb::ListConversationsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.conversations.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "newest first, each once");
    // One contact for all five: upserted by email.
    let contacts: std::collections::HashSet<String> = {
        let all = inbox
            .list_conversations(as_user(
                &account,
                "a",
                ipb::ListConversationsRequest::default(),
            ))
            .await
            .unwrap()
            .into_inner()
            .conversations;
        all.into_iter().map(|c| c.contact_id).collect()
    };
    assert_eq!(contacts.len(), 1);
    // Another account sees none of them.
    let other = e2e::account(&stack, tpb::Tier::Starter).await;
    let theirs = inbox
        .list_conversations(as_user(
            &other,
            "a",
            ipb::ListConversationsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .conversations;
    assert!(theirs.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn r10_help_desk_accounts_get_tickets_in_the_help_desk_and_refuse_inbox_management() {
    let stack = Stack::start().await;
    let help_desk = account(&stack, tpb::Tier::Enterprise).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    let conversation = inbox
        .create_conversation(as_user(
            &help_desk,
            "a",
            new_conversation("HD", "hd@example.com"),
        ))
        .await
        .unwrap()
        .into_inner();
    let created = inbox
        .create_ticket_for_conversation(as_user(
            &help_desk,
            "a",
            create_ticket_for(&conversation.id),
        ))
        .await
        .unwrap()
        .into_inner();
    let ticket = created.ticket.unwrap();
    assert_eq!(ticket.workspace, tpb::Workspace::HelpDesk as i32);
    assert_eq!(
        created.conversation.unwrap().workspace,
        tpb::Workspace::HelpDesk as i32
    );

    let closed = stage_id(&stack, &help_desk, "Closed").await;
    let mut through_inbox = move_to_stage(&ticket.id, &closed, "");
    through_inbox.surface = tpb::Surface::Inbox as i32;
    let refused = ticketing
        .update_ticket(as_user(&help_desk, "a", through_inbox))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "TICKETS_MANAGED_IN_HELP_DESK");
    ticketing
        .update_ticket(as_user(
            &help_desk,
            "a",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .expect("the help desk manages it");

    // A PROFESSIONAL account created before the cut-over keeps the inbox.
    let legacy = ticketing
        .create_account(as_service(
            "admin",
            tpb::CreateAccountRequest {
                account: Some(tpb::Account {
                    name: "Legacy".into(),
                    tier: tpb::Tier::Professional as i32,
                    create_time: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!legacy.help_desk);
    let conversation = inbox
        .create_conversation(as_user(
            &legacy.id,
            "a",
            new_conversation("Old", "old@example.com"),
        ))
        .await
        .unwrap()
        .into_inner();
    let created = inbox
        .create_ticket_for_conversation(as_user(
            &legacy.id,
            "a",
            create_ticket_for(&conversation.id),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.ticket.unwrap().workspace,
        tpb::Workspace::Inbox as i32
    );
    assert_eq!(
        created.conversation.unwrap().workspace,
        tpb::Workspace::Inbox as i32
    );
    stack.stop().await;
}

#[tokio::test]
async fn watch_events_replays_in_order_with_causes_then_follows_live() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    let conversation = inbox
        .create_conversation(as_user(
            &account,
            "agent-7",
            new_conversation("Stream", "s@example.com"),
        ))
        .await
        .unwrap()
        .into_inner();
    let ticket = inbox
        .create_ticket_for_conversation(as_user(
            &account,
            "agent-7",
            create_ticket_for(&conversation.id),
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();

    let watch = |after: i64| e2e::events_after(&account, after);
    let mut stream = ticketing
        .watch_events(as_user(&account, "agent-7", watch(0)))
        .await
        .unwrap()
        .into_inner();
    let mut next_event = async || loop {
        match stream
            .next()
            .await
            .expect("stream open")
            .expect("message")
            .kind
        {
            Some(tpb::watch_events_response::Kind::Event(event)) => return event,
            _ => continue,
        }
    };
    let created = next_event().await;
    assert_eq!(created.sequence, 1);
    let cause = created.cause.clone().unwrap();
    assert_eq!(cause.rule, "R1");
    assert_eq!(cause.actor.unwrap().id, "agent-7");
    let link = next_event().await;
    assert_eq!(link.sequence, 2);
    assert_eq!(link.cause.as_ref().unwrap().trigger_sequence, 1);
    match link.payload {
        Some(tpb::event::Payload::ConversationDirective(d)) => {
            assert_eq!(d.action, tpb::DirectiveAction::LinkTicket as i32);
            assert_eq!(d.conversation_id, conversation.id);
        }
        other => panic!("expected a directive, got {other:?}"),
    }

    // Live: closing the ticket arrives as an update and an R5 directive.
    let closed = stage_id(&stack, &account, "Closed").await;
    ticketing
        .update_ticket(as_user(
            &account,
            "agent-7",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .unwrap();
    let updated = next_event().await;
    assert_eq!(updated.sequence, 3);
    match &updated.payload {
        Some(tpb::event::Payload::TicketChanged(change)) => {
            assert_eq!(change.changed_fields, vec!["stage_id".to_owned()]);
            assert!(
                change.ticket.as_ref().unwrap().closed,
                "the snapshot is the state after the change"
            );
        }
        other => panic!("expected a ticket change, got {other:?}"),
    }
    let close = next_event().await;
    assert_eq!(close.sequence, 4);
    assert_eq!(close.cause.as_ref().unwrap().rule, "R5");
    assert_eq!(close.cause.as_ref().unwrap().trigger_sequence, 3);

    // Idle: progress with the head.
    let progress = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(tpb::watch_events_response::Kind::Progress(p)) =
                stream.next().await.unwrap().unwrap().kind
            {
                return p;
            }
        }
    })
    .await
    .expect("a progress message while idle");
    assert_eq!(
        progress.heads,
        vec![tpb::AccountCursor {
            account_id: account.clone(),
            after_sequence: 4,
            ..Default::default()
        }]
    );

    // Resuming from a cursor sends only what follows it.
    let mut resumed = ticketing
        .watch_events(as_user(&account, "agent-7", watch(3)))
        .await
        .unwrap()
        .into_inner();
    match resumed.next().await.unwrap().unwrap().kind {
        Some(tpb::watch_events_response::Kind::Event(event)) => assert_eq!(event.sequence, 4),
        other => panic!("expected event 4, got {other:?}"),
    }
    let ahead = ticketing
        .watch_events(as_user(&account, "agent-7", watch(99)))
        .await
        .unwrap_err();
    assert_eq!(ahead.code(), Code::OutOfRange);
    assert_eq!(reason(&ahead), "CURSOR_AHEAD");
    let other = e2e::account(&stack, tpb::Tier::Starter).await;
    let foreign = ticketing
        .watch_events(as_user(&other, "x", watch(0)))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
    stack.stop().await;
}

#[tokio::test]
async fn draining_ends_streams_with_unavailable_and_turns_health_not_serving() {
    let stack = Stack::start().await;
    let mut ticketing = stack.ticketing().await;
    let mut health_client = HealthClient::new(e2e::channel(stack.ticketing_addr).await);
    let mut stream = ticketing
        .watch_events(as_service(
            "probe",
            tpb::WatchEventsRequest {
                cursors: vec![],
                all_accounts: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    stack.begin_ticketing_drain();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return Some(status),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends during the drain");
    let status = ended.expect("the stream ends with a status, not silently");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let not_serving = eventually("health to report NOT_SERVING", || {
        let mut client = health_client.clone();
        async move {
            match client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            {
                Ok(answer) => {
                    (answer.get_ref().status == ServingStatus::NotServing as i32).then_some(true)
                }
                Err(_) => Some(true),
            }
        }
    })
    .await;
    assert!(not_serving);
    drop(health_client.check(HealthCheckRequest::default()).await);
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_calls_with_one_request_id_all_get_the_one_answer() {
    // Retries that overlap (a client timing out and retrying while the first
    // attempt is still running, or the inbox's outbox delivering a report
    // twice) race to record the same key: the losers must replay the
    // winner's answer, never fail with an internal error.
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    // Connected first and released together, so that the calls overlap.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(12));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let mut client = stack.ticketing().await;
        let (account, start) = (account.clone(), start.clone());
        calls.spawn(async move {
            start.wait().await;
            client
                .create_ticket(as_user(
                    &account,
                    "a",
                    tpb::CreateTicketRequest {
                        request_id: "same-create".into(),
                        ticket: Some(tpb::Ticket {
                            name: "Once only".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ))
                .await
                .map(|r| r.into_inner().id)
        });
    }
    let ids: Vec<String> = calls
        .join_all()
        .await
        .into_iter()
        .map(|answer| answer.expect("every overlapping retry gets the answer"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let tickets = stack
        .ticketing()
        .await
        .list_tickets(as_user(&account, "a", tpb::ListTicketsRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .tickets;
    assert_eq!(tickets.len(), 1);
    stack.stop().await;
}
