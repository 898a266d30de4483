//! The first cross-service path: a conversation gets a ticket (R1, R2), the
//! ticket closes and the conversation follows through the event stream (R5).

use e2e::{Stack, account, as_user, create_ticket_for, eventually, new_conversation, reason};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

#[tokio::test]
async fn r1_r2_r5_conversation_gets_ticket_and_closing_it_closes_the_conversation() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;

    let conversation = inbox
        .create_conversation(as_user(
            &account,
            "agent-1",
            new_conversation("Printer on fire", "Ana@Example.com"),
        ))
        .await
        .expect("create conversation")
        .into_inner();
    assert_eq!(conversation.status, ipb::ConversationStatus::Open as i32);
    assert_eq!(conversation.workspace, tpb::Workspace::Inbox as i32);
    let messages = inbox
        .list_messages(as_user(
            &account,
            "agent-1",
            ipb::ListMessagesRequest {
                conversation_id: conversation.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list messages")
        .into_inner()
        .messages;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].direction, ipb::Direction::Incoming as i32);
    assert_eq!(messages[0].author, "ana@example.com");

    // R1: defaults come from the conversation; the first stage of the default pipeline.
    let created = inbox
        .create_ticket_for_conversation(as_user(
            &account,
            "agent-1",
            create_ticket_for(&conversation.id),
        ))
        .await
        .expect("create ticket")
        .into_inner();
    let ticket = created.ticket.expect("ticket");
    assert_eq!(ticket.name, "Printer on fire");
    assert_eq!(ticket.stage_name, "New");
    assert_eq!(ticket.contact_id, conversation.contact_id);
    assert_eq!(ticket.conversation_ids, vec![conversation.id.clone()]);
    assert_eq!(
        created.conversation.expect("conversation").ticket_id,
        ticket.id
    );

    // R2: a second ticket is refused, naming the first.
    let second = inbox
        .create_ticket_for_conversation(as_user(
            &account,
            "agent-1",
            create_ticket_for(&conversation.id),
        ))
        .await
        .expect_err("second ticket");
    assert_eq!(second.code(), Code::AlreadyExists);
    assert_eq!(reason(&second), "CONVERSATION_HAS_TICKET");
    assert!(
        second.message().contains(&ticket.id),
        "{}",
        second.message()
    );

    // R5: moving the ticket to Closed closes the conversation in the inbox.
    let pipelines = ticketing
        .list_pipelines(as_user(
            &account,
            "agent-1",
            tpb::ListPipelinesRequest::default(),
        ))
        .await
        .expect("list pipelines")
        .into_inner()
        .pipelines;
    assert_eq!(pipelines.len(), 1);
    let stages: Vec<(&str, bool)> = pipelines[0]
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.is_closed))
        .collect();
    assert_eq!(
        stages,
        [
            ("New", false),
            ("Waiting on contact", false),
            ("Waiting on us", false),
            ("Closed", true)
        ]
    );
    let closed_stage = pipelines[0].stages[3].id.clone();
    let closed = ticketing
        .update_ticket(as_user(
            &account,
            "agent-1",
            tpb::UpdateTicketRequest {
                ticket: Some(tpb::Ticket {
                    id: ticket.id.clone(),
                    stage_id: closed_stage.clone(),
                    etag: ticket.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["stage_id".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("close ticket")
        .into_inner();
    assert!(closed.closed);
    assert!(closed.close_time.is_some());
    assert_eq!(closed.version, ticket.version + 1);

    let id = conversation.id.clone();
    let closed_conversation = eventually("the conversation to close", || {
        let mut inbox = inbox.clone();
        let request = as_user(
            &account,
            "agent-1",
            ipb::GetConversationRequest { id: id.clone() },
        );
        async move {
            let conversation = inbox.get_conversation(request).await.ok()?.into_inner();
            (conversation.status == ipb::ConversationStatus::Closed as i32).then_some(conversation)
        }
    })
    .await;
    assert_eq!(closed_conversation.ticket_id, ticket.id);

    // A stale etag changes nothing.
    let stale = ticketing
        .update_ticket(as_user(
            &account,
            "agent-1",
            tpb::UpdateTicketRequest {
                ticket: Some(tpb::Ticket {
                    id: ticket.id.clone(),
                    name: "Renamed".into(),
                    etag: ticket.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let unchanged = ticketing
        .get_ticket(as_user(
            &account,
            "agent-1",
            tpb::GetTicketRequest {
                id: ticket.id.clone(),
            },
        ))
        .await
        .expect("get ticket")
        .into_inner();
    assert_eq!(unchanged.name, "Printer on fire");
    assert_eq!(unchanged.version, closed.version);

    // ListTickets filters by stage and owner.
    let by_stage = ticketing
        .list_tickets(as_user(
            &account,
            "agent-1",
            tpb::ListTicketsRequest {
                stage_id: closed_stage,
                ..Default::default()
            },
        ))
        .await
        .expect("list by stage")
        .into_inner();
    assert_eq!(by_stage.tickets.len(), 1);
    let by_owner = ticketing
        .list_tickets(as_user(
            &account,
            "agent-1",
            tpb::ListTicketsRequest {
                owner_id: "someone-else".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("list by owner")
        .into_inner();
    assert!(by_owner.tickets.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn r2_twenty_concurrent_creates_for_one_conversation_make_one_ticket() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let conversation = inbox
        .create_conversation(as_user(
            &account,
            "agent-1",
            new_conversation("Race", "race@example.com"),
        ))
        .await
        .expect("create conversation")
        .into_inner();

    let attempts = (0..20).map(|i| {
        let mut inbox = inbox.clone();
        let request = as_user(
            &account,
            &format!("agent-{i}"),
            create_ticket_for(&conversation.id),
        );
        tokio::spawn(async move { inbox.create_ticket_for_conversation(request).await })
    });
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(answer) => created.push(answer.into_inner().ticket.expect("ticket").id),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins: {refused:?}");
    assert_eq!(refused.len(), 19);
    for status in &refused {
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert!(
            status.message().contains(&created[0]),
            "{}",
            status.message()
        );
    }
    let tickets = stack
        .ticketing()
        .await
        .list_tickets(as_user(
            &account,
            "agent-1",
            tpb::ListTicketsRequest {
                conversation_id: conversation.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list tickets")
        .into_inner()
        .tickets;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].id, created[0]);
    stack.stop().await;
}

#[tokio::test]
async fn inbox_serves_while_ticketing_is_down_and_catches_up_when_it_returns() {
    let mut stack = Stack::start_inbox_only().await;
    let mut inbox = stack.inbox().await;
    // The account is created once ticketing is up; the inbox takes any
    // account id in development mode.
    let pending = inbox
        .create_conversation(as_user(
            "acc-early",
            "agent-1",
            new_conversation("Early", "early@example.com"),
        ))
        .await
        .expect("inbox serves without ticketing");
    let refused = inbox
        .create_ticket_for_conversation(as_user(
            "acc-early",
            "agent-1",
            create_ticket_for(&pending.get_ref().id),
        ))
        .await
        .expect_err("ticketing is down");
    assert_eq!(refused.code(), Code::Unavailable);

    stack.start_ticketing().await;
    let account = account(&stack, tpb::Tier::Free).await;
    let conversation = inbox
        .create_conversation(as_user(
            &account,
            "agent-1",
            new_conversation("Later", "later@example.com"),
        ))
        .await
        .expect("create conversation")
        .into_inner();
    let ticket = inbox
        .create_ticket_for_conversation(as_user(
            &account,
            "agent-1",
            create_ticket_for(&conversation.id),
        ))
        .await
        .expect("create ticket once ticketing is up")
        .into_inner()
        .ticket
        .expect("ticket");

    // Close the ticket while the inbox cannot hear about it... (ticketing
    // stays up; the inbox's stream is what must catch up after a restart).
    stack.stop_ticketing().await;
    stack.start_ticketing().await;
    let mut ticketing = stack.ticketing().await;
    let pipelines = ticketing
        .list_pipelines(as_user(
            &account,
            "agent-1",
            tpb::ListPipelinesRequest::default(),
        ))
        .await
        .expect("pipelines")
        .into_inner()
        .pipelines;
    let closed_stage = pipelines[0]
        .stages
        .iter()
        .find(|s| s.is_closed)
        .expect("closed stage")
        .id
        .clone();
    ticketing
        .update_ticket(as_user(
            &account,
            "agent-1",
            tpb::UpdateTicketRequest {
                ticket: Some(tpb::Ticket {
                    id: ticket.id.clone(),
                    stage_id: closed_stage,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["stage".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("close ticket");
    let id = conversation.id.clone();
    eventually("the inbox to catch up after ticketing restarted", || {
        let mut inbox = inbox.clone();
        let request = as_user(
            &account,
            "agent-1",
            ipb::GetConversationRequest { id: id.clone() },
        );
        async move {
            let conversation = inbox.get_conversation(request).await.ok()?.into_inner();
            (conversation.status == ipb::ConversationStatus::Closed as i32).then_some(())
        }
    })
    .await;
    stack.stop().await;
}
