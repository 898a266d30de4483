//! One end-to-end test per rule of SPEC section 3, through both services'
//! public APIs, each named for the rule it pins: creating and linking
//! tickets (R1–R3), owner sync (R4) and status (R5–R7).

use std::time::Duration;

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

fn assign(id: &str, owner: &str) -> ipb::AssignConversationRequest {
    ipb::AssignConversationRequest {
        conversation_id: id.into(),
        owner_id: owner.into(),
        ..Default::default()
    }
}

fn owner_update(ticket_id: &str, owner: &str) -> tpb::UpdateTicketRequest {
    tpb::UpdateTicketRequest {
        ticket: Some(tpb::Ticket {
            id: ticket_id.into(),
            owner_id: owner.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["owner_id".into()],
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn r1_a_ticket_from_a_conversation_takes_its_defaults_and_trash_is_refused() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let conversation = conversation(&stack, &account, "Invoice missing", "bo@example.com").await;
    inbox
        .assign_conversation(as_user(
            &account,
            "lead",
            assign(&conversation.id, "agent-5"),
        ))
        .await
        .expect("assign");
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    assert_eq!(ticket.name, "Invoice missing");
    assert_eq!(ticket.owner_id, "agent-5", "owner = conversation owner");
    assert_eq!(
        ticket.stage_name, "New",
        "first stage of the default pipeline"
    );
    assert_eq!(ticket.contact_id, conversation.contact_id);
    // Ticketing heard of this conversation (its assignment) before the
    // ticket: the link is made on the row it already held, and stored (R2).
    let stored = get_ticket(&stack, &account, &ticket.id)
        .await
        .expect("stored ticket");
    assert_eq!(stored.conversation_ids, vec![conversation.id.clone()]);
    let again = inbox
        .create_ticket_for_conversation(as_user(&account, "a", create_ticket_for(&conversation.id)))
        .await
        .expect_err("a conversation has one ticket");
    assert_eq!(again.code(), Code::AlreadyExists);
    assert_eq!(reason(&again), "CONVERSATION_HAS_TICKET");

    let trashed = e2e::conversation(&stack, &account, "Spam", "spam@example.com").await;
    inbox
        .trash_conversation(as_user(
            &account,
            "a",
            ipb::TrashConversationRequest {
                conversation_id: trashed.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("trash");
    let refused = inbox
        .create_ticket_for_conversation(as_user(&account, "a", create_ticket_for(&trashed.id)))
        .await
        .expect_err("a trashed conversation gets no ticket");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "CONVERSATION_TRASHED");
    stack.stop().await;
}

#[tokio::test]
async fn r3_a_ticket_gathers_further_conversations_each_under_r2() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let first = conversation(&stack, &account, "First", "c@example.com").await;
    let second = conversation(&stack, &account, "Second", "c@example.com").await;
    let ticket = ticket_for(&stack, &account, &first.id).await;
    let joined = add_to_ticket(&stack, &account, &second.id, &ticket.id).await;
    assert_eq!(
        joined.conversation_ids,
        vec![first.id.clone(), second.id.clone()]
    );
    assert_eq!(joined.version, ticket.version + 1);
    let second_now = get_conversation(&stack, &account, &second.id)
        .await
        .unwrap();
    assert_eq!(second_now.ticket_id, ticket.id);

    // R2: the second conversation can neither get its own ticket nor move.
    let mut inbox = stack.inbox().await;
    let own = inbox
        .create_ticket_for_conversation(as_user(&account, "a", create_ticket_for(&second.id)))
        .await
        .expect_err("second ticket");
    assert_eq!(own.code(), Code::AlreadyExists);
    assert!(own.message().contains(&ticket.id));
    let other = e2e::conversation(&stack, &account, "Other", "o@example.com").await;
    let other_ticket = ticket_for(&stack, &account, &other.id).await;
    let moved = inbox
        .add_conversation_to_ticket(as_user(
            &account,
            "a",
            ipb::AddConversationToTicketRequest {
                request_id: String::new(),
                conversation_id: second.id.clone(),
                ticket_id: other_ticket.id.clone(),
            },
        ))
        .await
        .expect_err("no move to another ticket");
    assert_eq!(moved.code(), Code::AlreadyExists);
    assert_eq!(
        get_conversation(&stack, &account, &second.id)
            .await
            .unwrap()
            .ticket_id,
        ticket.id
    );
    stack.stop().await;
}

/// R3 through the inbox, retried with the same request id: ticketing
/// replays its answer, a ticket version the inbox has applied already, so
/// the retry changes nothing and still answers the conversation as linked.
#[tokio::test]
async fn r3_a_retried_association_answers_the_conversation_as_linked() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let first = conversation(&stack, &account, "First", "retry@example.com").await;
    let second = conversation(&stack, &account, "Second", "retry@example.com").await;
    let ticket = ticket_for(&stack, &account, &first.id).await;
    let mut inbox = stack.inbox().await;
    let request = ipb::AddConversationToTicketRequest {
        request_id: "join-once".into(),
        conversation_id: second.id.clone(),
        ticket_id: ticket.id.clone(),
    };
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = inbox
            .add_conversation_to_ticket(as_user(&account, "a", request.clone()))
            .await
            .expect("add to ticket")
            .into_inner();
        answers.push(answer);
    }
    for answer in &answers {
        let joined = answer.ticket.as_ref().expect("ticket");
        assert_eq!(joined.version, ticket.version + 1, "associated once");
        assert_eq!(
            joined.conversation_ids,
            vec![first.id.clone(), second.id.clone()]
        );
        let linked = answer.conversation.as_ref().expect("conversation");
        assert_eq!(linked.ticket_id, ticket.id);
    }
    assert_eq!(
        answers[0].conversation, answers[1].conversation,
        "the retry left the conversation as the first call did"
    );
    let stored = get_conversation(&stack, &account, &second.id)
        .await
        .expect("stored conversation");
    assert_eq!(Some(&stored), answers[1].conversation.as_ref());
    stack.stop().await;
}

#[tokio::test]
async fn r4_the_conversation_owner_sets_the_ticket_owner_one_way() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    let conversation = conversation(&stack, &account, "Owner", "own@example.com").await;
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    assert_eq!(ticket.owner_id, "");

    inbox
        .assign_conversation(as_user(
            &account,
            "lead",
            assign(&conversation.id, "agent-2"),
        ))
        .await
        .expect("assign");
    ticket_becomes(&stack, &account, &ticket.id, "ticket owner agent-2", |t| {
        t.owner_id == "agent-2"
    })
    .await;

    // The other way changes no conversation.
    ticketing
        .update_ticket(as_user(
            &account,
            "lead",
            owner_update(&ticket.id, "agent-9"),
        ))
        .await
        .expect("ticket owner");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get_conversation(&stack, &account, &conversation.id)
            .await
            .unwrap()
            .owner_id,
        "agent-2"
    );

    // Clearing the conversation's owner clears the ticket's.
    inbox
        .assign_conversation(as_user(&account, "lead", assign(&conversation.id, "")))
        .await
        .expect("unassign");
    ticket_becomes(&stack, &account, &ticket.id, "ticket without owner", |t| {
        t.owner_id.is_empty()
    })
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn r5_r6_closing_closes_all_and_reopening_reopens_only_a_single_conversation() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut ticketing = stack.ticketing().await;
    let closed = stage_id(&stack, &account, "Closed").await;
    let open = stage_id(&stack, &account, "Waiting on us").await;

    let a = conversation(&stack, &account, "A", "two@example.com").await;
    let b = conversation(&stack, &account, "B", "two@example.com").await;
    let shared = ticket_for(&stack, &account, &a.id).await;
    add_to_ticket(&stack, &account, &b.id, &shared.id).await;
    ticketing
        .update_ticket(as_user(
            &account,
            "x",
            move_to_stage(&shared.id, &closed, ""),
        ))
        .await
        .expect("close");
    for id in [&a.id, &b.id] {
        conversation_becomes(&stack, &account, id, "R5 close", is_closed).await;
    }
    ticketing
        .update_ticket(as_user(&account, "x", move_to_stage(&shared.id, &open, "")))
        .await
        .expect("reopen");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in [&a.id, &b.id] {
        assert!(
            is_closed(&get_conversation(&stack, &account, id).await.unwrap()),
            "R6: two conversations stay closed"
        );
    }

    let single = conversation(&stack, &account, "Single", "one@example.com").await;
    let ticket = ticket_for(&stack, &account, &single.id).await;
    ticketing
        .update_ticket(as_user(
            &account,
            "x",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .expect("close");
    conversation_becomes(&stack, &account, &single.id, "R5 close", is_closed).await;
    ticketing
        .update_ticket(as_user(&account, "x", move_to_stage(&ticket.id, &open, "")))
        .await
        .expect("reopen");
    conversation_becomes(&stack, &account, &single.id, "R6 reopen", is_open).await;
    stack.stop().await;
}

#[tokio::test]
async fn r7_closing_or_reopening_a_conversation_changes_only_that_conversation() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let a = conversation(&stack, &account, "A", "local@example.com").await;
    let b = conversation(&stack, &account, "B", "local@example.com").await;
    let ticket = ticket_for(&stack, &account, &a.id).await;
    let ticket = add_to_ticket(&stack, &account, &b.id, &ticket.id).await;
    let closed = inbox
        .close_conversation(as_user(
            &account,
            "x",
            ipb::CloseConversationRequest {
                conversation_id: a.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("close")
        .into_inner();
    assert!(is_closed(&closed));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_open(
        &get_conversation(&stack, &account, &b.id).await.unwrap()
    ));
    let after = get_ticket(&stack, &account, &ticket.id).await.unwrap();
    assert_eq!(
        (after.stage_id.as_str(), after.closed, after.version),
        (ticket.stage_id.as_str(), false, ticket.version)
    );
    // A stale etag is refused and changes nothing.
    let stale = inbox
        .reopen_conversation(as_user(
            &account,
            "x",
            ipb::ReopenConversationRequest {
                conversation_id: a.id.clone(),
                etag: a.etag.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let reopened = inbox
        .reopen_conversation(as_user(
            &account,
            "x",
            ipb::ReopenConversationRequest {
                conversation_id: a.id.clone(),
                etag: closed.etag.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("reopen")
        .into_inner();
    assert!(is_open(&reopened));
    stack.stop().await;
}

/// R3 when only ticketing's events link the conversation: the association
/// is made through ticketing directly, so the inbox learns of it from the
/// ticket's new snapshot (and the link directive beside it), never from an
/// answer of its own.
#[tokio::test]
async fn r3_an_association_made_in_ticketing_reaches_the_inbox_through_events() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let first = conversation(&stack, &account, "First", "assoc@example.com").await;
    let ticket = ticket_for(&stack, &account, &first.id).await;
    let later = conversation(&stack, &account, "Later", "assoc@example.com").await;
    let associated = stack
        .ticketing()
        .await
        .associate_conversation(as_user(
            &account,
            "x",
            tpb::AssociateConversationRequest {
                ticket_id: ticket.id.clone(),
                conversation: Some(tpb::ConversationSnapshot {
                    id: later.id.clone(),
                    subject: later.subject.clone(),
                    contact_id: later.contact_id.clone(),
                    open: true,
                    version: later.version,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("associate")
        .into_inner();
    assert!(associated.conversation_ids.contains(&later.id));
    conversation_becomes(&stack, &account, &later.id, "linked by the events", |c| {
        c.ticket_id == ticket.id
    })
    .await;
    stack.stop().await;
}
