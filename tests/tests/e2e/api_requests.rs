//! Requests over time: retried and concurrent request ids (SPEC section
//! 4) and paging without gaps or repeats.

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

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

/// The other paged lists the store serves (messages oldest first, tickets
/// newest first) walk their pages the same way: each item once, in order.
#[tokio::test]
async fn message_and_ticket_lists_page_without_gaps_or_repeats() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let first = conversation(&stack, &account, "Pager", "pager@example.com").await;
    let mut written = Vec::new();
    for i in 0..5 {
        let message = inbox
            .add_message(as_user(
                &account,
                "a",
                ipb::AddMessageRequest {
                    conversation_id: first.id.clone(),
                    message: Some(ipb::Message {
                        direction: ipb::Direction::Incoming as i32,
                        author: "pager@example.com".into(),
                        body: format!("M{i}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        written.push(message.id);
    }
    let (mut read, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = inbox
            .list_messages(as_user(
                &account,
                "a",
                ipb::ListMessagesRequest {
                    conversation_id: first.id.clone(),
                    page_size: 2,
                    page_token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        read.extend(page.messages.into_iter().map(|m| m.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // The conversation's first message came with it, before the five.
    assert_eq!(read.len(), written.len() + 1, "each message once");
    assert_eq!(read[1..], written[..], "oldest first");
    assert_eq!(pages, 3);

    let mut tickets = Vec::new();
    for i in 0..3 {
        let c = conversation(&stack, &account, &format!("T{i}"), "pager@example.com").await;
        tickets.push(ticket_for(&stack, &account, &c.id).await.id);
    }
    let mut ticketing = stack.ticketing().await;
    let (mut listed, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = ticketing
            .list_tickets(as_user(
                &account,
                "a",
                tpb::ListTicketsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        listed.extend(page.tickets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    tickets.reverse();
    assert_eq!(listed, tickets, "newest first, each once");
    assert_eq!(pages, 2);
    stack.stop().await;
}
