//! One end-to-end test per rule of SPEC section 3, through both services'
//! public APIs. Each test is named for the rule it pins.

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

#[tokio::test]
async fn r8_r9_trash_cascades_both_ways_and_any_member_restores_the_cascade() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    let a = conversation(&stack, &account, "A", "trash@example.com").await;
    let b = conversation(&stack, &account, "B", "trash@example.com").await;
    let ticket = ticket_for(&stack, &account, &a.id).await;
    add_to_ticket(&stack, &account, &b.id, &ticket.id).await;

    // R8 from a conversation: the answer lists everything that went.
    let trashed = inbox
        .trash_conversation(as_user(
            &account,
            "x",
            ipb::TrashConversationRequest {
                conversation_id: a.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("trash")
        .into_inner();
    assert!(!trashed.cascade_pending);
    let cascade = trashed.cascade.expect("cascade");
    assert_eq!(cascade.ticket_ids, vec![ticket.id.clone()]);
    let mut members = cascade.conversation_ids.clone();
    members.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(members, expected);
    assert!(cascade.purge_time.is_some());
    conversation_becomes(&stack, &account, &b.id, "B in trash", |c| {
        c.delete_time.is_some()
    })
    .await;
    assert!(
        get_ticket(&stack, &account, &ticket.id)
            .await
            .unwrap()
            .delete_time
            .is_some()
    );

    // Hidden from lists unless asked for; read-only.
    let listed = inbox
        .list_conversations(as_user(
            &account,
            "x",
            ipb::ListConversationsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .conversations;
    assert!(listed.is_empty(), "{listed:?}");
    let with_deleted = inbox
        .list_conversations(as_user(
            &account,
            "x",
            ipb::ListConversationsRequest {
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversations;
    assert_eq!(with_deleted.len(), 2);
    let tickets = ticketing
        .list_tickets(as_user(&account, "x", tpb::ListTicketsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert!(tickets.is_empty());
    let read_only = ticketing
        .update_ticket(as_user(&account, "x", owner_update(&ticket.id, "someone")))
        .await
        .expect_err("trashed ticket is read-only");
    assert_eq!(reason(&read_only), "TICKET_TRASHED");
    let reply = inbox
        .add_message(as_user(
            &account,
            "x",
            ipb::AddMessageRequest {
                conversation_id: b.id.clone(),
                message: Some(ipb::Message {
                    direction: ipb::Direction::Outgoing as i32,
                    author: "agent-1".into(),
                    body: "hello?".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no reply into trash");
    assert_eq!(reason(&reply), "CONVERSATION_TRASHED");

    // R9: restoring the other member brings everything back.
    let restored = inbox
        .restore_conversation(as_user(
            &account,
            "x",
            ipb::RestoreConversationRequest {
                conversation_id: b.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("restore")
        .into_inner();
    assert_eq!(restored.cascade.unwrap().id, cascade.id);
    conversation_becomes(&stack, &account, &a.id, "A restored", |c| {
        c.delete_time.is_none()
    })
    .await;
    assert!(
        get_ticket(&stack, &account, &ticket.id)
            .await
            .unwrap()
            .delete_time
            .is_none()
    );

    // R8 from the ticket: DeleteTicket trashes its conversations; undelete restores.
    let deleted = ticketing
        .delete_ticket(as_user(
            &account,
            "x",
            tpb::DeleteTicketRequest {
                id: ticket.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("delete ticket")
        .into_inner();
    assert_eq!(deleted.cascade.unwrap().conversation_ids.len(), 2);
    for id in [&a.id, &b.id] {
        conversation_becomes(&stack, &account, id, "trashed with the ticket", |c| {
            c.delete_time.is_some()
        })
        .await;
    }
    ticketing
        .undelete_ticket(as_user(
            &account,
            "x",
            tpb::UndeleteTicketRequest {
                id: ticket.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("undelete");
    for id in [&a.id, &b.id] {
        conversation_becomes(&stack, &account, id, "restored with the ticket", |c| {
            c.delete_time.is_none()
        })
        .await;
    }
    stack.stop().await;
}

fn short_retention_ticketing(config: &mut ticketing::Config) {
    config.trash_retention = Duration::from_millis(300);
    config.purge_interval = Duration::from_millis(200);
}

fn short_retention_inbox(config: &mut inbox::Config) {
    config.trash_retention = Duration::from_millis(300);
    config.purge_interval = Duration::from_millis(200);
}

#[tokio::test]
async fn r9_trash_is_purged_for_good_after_the_retention() {
    let stack = Stack::start_with(short_retention_ticketing, short_retention_inbox).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let with_ticket = conversation(&stack, &account, "Old", "purge@example.com").await;
    let ticket = ticket_for(&stack, &account, &with_ticket.id).await;
    let alone = conversation(&stack, &account, "Alone", "purge@example.com").await;
    for id in [&with_ticket.id, &alone.id] {
        inbox
            .trash_conversation(as_user(
                &account,
                "x",
                ipb::TrashConversationRequest {
                    conversation_id: id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("trash");
    }
    eventually("the ticket to be purged", || async {
        get_ticket(&stack, &account, &ticket.id)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    for id in [&with_ticket.id, &alone.id] {
        eventually("the conversation to be purged", || async {
            get_conversation(&stack, &account, id)
                .await
                .is_none()
                .then_some(())
        })
        .await;
    }
    stack.stop().await;
}

#[tokio::test]
async fn r11_each_user_chooses_displayed_properties_and_the_card_is_fixed() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    ticketing
        .create_property_definition(as_user(
            &account,
            "admin",
            tpb::CreatePropertyDefinitionRequest {
                request_id: String::new(),
                property_definition: Some(tpb::PropertyDefinition {
                    name: "sla".into(),
                    label: "SLA tier".into(),
                    r#type: tpb::PropertyType::Enum as i32,
                    options: vec!["gold".into(), "silver".into()],
                    built_in: false,
                }),
            },
        ))
        .await
        .expect("define sla");

    let defaults = inbox
        .get_displayed_properties(as_user(
            &account,
            "ana",
            ipb::GetDisplayedPropertiesRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(defaults.is_default);
    assert_eq!(
        defaults.property_names,
        ["name", "stage", "priority", "owner", "created"]
    );

    let set = |names: &[&str]| ipb::SetDisplayedPropertiesRequest {
        request_id: String::new(),
        property_names: names.iter().map(|n| (*n).to_owned()).collect(),
    };
    let bad = inbox
        .set_displayed_properties(as_user(&account, "ana", set(&["priority", "colour"])))
        .await
        .expect_err("unknown property");
    assert_eq!(bad_field(&bad), "property_names[1]");
    let repeated = inbox
        .set_displayed_properties(as_user(&account, "ana", set(&["priority", "priority"])))
        .await
        .expect_err("repeated");
    assert_eq!(bad_field(&repeated), "property_names[1]");
    inbox
        .set_displayed_properties(as_user(&account, "ana", set(&["sla", "priority", "name"])))
        .await
        .expect("choose");
    let chosen = inbox
        .get_displayed_properties(as_user(
            &account,
            "ana",
            ipb::GetDisplayedPropertiesRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(chosen.property_names, ["sla", "priority", "name"]);
    assert!(!chosen.is_default);

    let conversation = conversation(&stack, &account, "Panel", "panel@example.com").await;
    let mut create = create_ticket_for(&conversation.id);
    create.ticket = Some(tpb::Ticket {
        priority: tpb::Priority::High as i32,
        properties: [(
            "sla".to_owned(),
            tpb::PropertyValue {
                value: Some(tpb::property_value::Value::EnumValue("gold".into())),
            },
        )]
        .into(),
        ..Default::default()
    });
    inbox
        .create_ticket_for_conversation(as_user(&account, "ana", create))
        .await
        .expect("ticket with properties");
    let context = |user: &str| {
        as_user(
            &account,
            user,
            ipb::GetConversationContextRequest {
                conversation_id: conversation.id.clone(),
                ..Default::default()
            },
        )
    };
    let panel = inbox
        .get_conversation_context(context("ana"))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let shown: Vec<(&str, &str, &str)> = panel
        .displayed
        .iter()
        .map(|d| {
            (
                d.property_name.as_str(),
                d.label.as_str(),
                d.display_value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("sla", "SLA tier", "gold"),
            ("priority", "Priority", "HIGH"),
            ("name", "Name", "Panel")
        ]
    );
    let card = panel.card.unwrap();
    assert_eq!(
        (card.name.as_str(), card.stage_name.as_str()),
        ("Panel", "New")
    );
    // Another user still sees the default; the card is the same for everyone.
    let other = inbox
        .get_conversation_context(context("ben"))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(other.displayed.len(), 5);
    assert_eq!(other.card.unwrap().name, "Panel");
    stack.stop().await;
}

#[tokio::test]
async fn r12_the_sidebar_comes_in_one_call_and_works_while_ticketing_is_down() {
    let mut stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let oldest = conversation(&stack, &account, "Oldest", "kim@example.com").await;
    let middle = conversation(&stack, &account, "Middle", "kim@example.com").await;
    let current = conversation(&stack, &account, "Current", "kim@example.com").await;
    conversation(&stack, &account, "Someone else", "lee@example.com").await;
    let ticket = ticket_for(&stack, &account, &current.id).await;
    stack.stop_ticketing().await;

    let request = |token: &str| {
        as_user(
            &account,
            "ana",
            ipb::GetConversationContextRequest {
                conversation_id: current.id.clone(),
                previous_page_size: 1,
                previous_page_token: token.into(),
            },
        )
    };
    let first = inbox
        .get_conversation_context(request(""))
        .await
        .expect("context without ticketing")
        .into_inner();
    assert_eq!(first.conversation.unwrap().id, current.id);
    assert_eq!(first.contact.unwrap().email, "kim@example.com");
    let panel = first.ticket.expect("ticket panel");
    assert_eq!(panel.ticket.unwrap().id, ticket.id);
    assert_eq!(panel.ticket_uri, format!("tickets/{}", ticket.id));
    assert_eq!(first.previous_conversations.len(), 1);
    assert_eq!(
        first.previous_conversations[0].id, middle.id,
        "newest first, excluding this one"
    );
    let second = inbox
        .get_conversation_context(request(&first.next_previous_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.previous_conversations[0].id, oldest.id);
    assert!(second.next_previous_page_token.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn r13_replies_are_outgoing_and_incoming_mail_reopens_only_the_conversation() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    let conversation = conversation(&stack, &account, "Mail", "mail@example.com").await;
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    ticketing
        .update_ticket(as_user(
            &account,
            "x",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .expect("close ticket");
    conversation_becomes(
        &stack,
        &account,
        &conversation.id,
        "closed by R5",
        is_closed,
    )
    .await;
    let message = |direction: ipb::Direction, body: &str| ipb::AddMessageRequest {
        conversation_id: conversation.id.clone(),
        message: Some(ipb::Message {
            direction: direction as i32,
            author: "someone".into(),
            body: body.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    inbox
        .add_message(as_user(
            &account,
            "agent-1",
            message(ipb::Direction::Outgoing, "We are on it"),
        ))
        .await
        .expect("reply");
    assert!(
        is_closed(
            &get_conversation(&stack, &account, &conversation.id)
                .await
                .unwrap()
        ),
        "a reply reopens nothing"
    );
    inbox
        .add_message(as_user(
            &account,
            "agent-1",
            message(ipb::Direction::Incoming, "Still broken"),
        ))
        .await
        .expect("incoming");
    assert!(is_open(
        &get_conversation(&stack, &account, &conversation.id)
            .await
            .unwrap()
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        get_ticket(&stack, &account, &ticket.id)
            .await
            .unwrap()
            .closed,
        "the ticket stays closed"
    );
    let messages = inbox
        .list_messages(as_user(
            &account,
            "a",
            ipb::ListMessagesRequest {
                conversation_id: conversation.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .messages;
    let directions: Vec<i32> = messages.iter().map(|m| m.direction).collect();
    assert_eq!(
        directions,
        [
            ipb::Direction::Incoming as i32,
            ipb::Direction::Outgoing as i32,
            ipb::Direction::Incoming as i32
        ]
    );
    stack.stop().await;
}

#[tokio::test]
async fn r12_previous_conversations_leave_out_trashed_ones() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let kept = conversation(&stack, &account, "Kept", "pat@example.com").await;
    let binned = conversation(&stack, &account, "Binned", "pat@example.com").await;
    let current = conversation(&stack, &account, "Current", "pat@example.com").await;
    inbox
        .trash_conversation(as_user(
            &account,
            "ana",
            ipb::TrashConversationRequest {
                conversation_id: binned.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("trash");
    let context = inbox
        .get_conversation_context(as_user(
            &account,
            "ana",
            ipb::GetConversationContextRequest {
                conversation_id: current.id.clone(),
                previous_page_size: 10,
                ..Default::default()
            },
        ))
        .await
        .expect("context")
        .into_inner();
    let previous: Vec<&str> = context
        .previous_conversations
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        previous,
        vec![kept.id.as_str()],
        "the trashed one is left out"
    );
    stack.stop().await;
}

fn one_second_lease(config: &mut inbox::Config) {
    config.lease_ttl = Duration::from_secs(1);
}

/// R5, R6, R8, R9 when the inbox applies many events of one conversation
/// together: it was down while they were logged, so a new inbox process
/// receives them at once and applies them in as few statements as it can.
/// Only stream order gives these end states.
#[tokio::test]
async fn r5_r6_r8_r9_hold_when_the_inbox_applies_a_backlog_at_once() {
    let mut stack = Stack::start_with(|_| {}, one_second_lease).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let single = conversation(&stack, &account, "Single", "single@example.com").await;
    let single_ticket = ticket_for(&stack, &account, &single.id).await;
    let first = conversation(&stack, &account, "First", "pair@example.com").await;
    let second = conversation(&stack, &account, "Second", "pair@example.com").await;
    let pair_ticket = ticket_for(&stack, &account, &first.id).await;
    add_to_ticket(&stack, &account, &second.id, &pair_ticket.id).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    let open = stage_id(&stack, &account, "Waiting on us").await;
    stack.crash_inbox().await;

    let mut ticketing = stack.ticketing().await;
    let mut move_to = async |ticket: &str, stage: &str| {
        ticketing
            .update_ticket(as_user(&account, "x", move_to_stage(ticket, stage, "")))
            .await
            .expect("move")
    };
    // One conversation: closed, reopened (R6), closed again, then trashed
    // and restored with its ticket (R8, R9): closed, not trashed.
    move_to(&single_ticket.id, &closed).await;
    move_to(&single_ticket.id, &open).await;
    move_to(&single_ticket.id, &closed).await;
    // Two conversations: closed, and not reopened (R6), then trashed (R8).
    move_to(&pair_ticket.id, &closed).await;
    move_to(&pair_ticket.id, &open).await;
    let delete = |id: &str| {
        as_user(
            &account,
            "x",
            tpb::DeleteTicketRequest {
                id: id.into(),
                ..Default::default()
            },
        )
    };
    ticketing
        .delete_ticket(delete(&single_ticket.id))
        .await
        .expect("delete");
    ticketing
        .undelete_ticket(as_user(
            &account,
            "x",
            tpb::UndeleteTicketRequest {
                id: single_ticket.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("undelete");
    ticketing
        .delete_ticket(delete(&pair_ticket.id))
        .await
        .expect("delete pair");

    let inbox_addr = stack.start_inbox_replica(one_second_lease).await;
    let inbox = ipb::inbox_service_client::InboxServiceClient::new(channel(inbox_addr).await);
    let read = |id: &str| {
        let mut inbox = inbox.clone();
        let request = as_user(&account, "x", ipb::GetConversationRequest { id: id.into() });
        async move {
            inbox
                .get_conversation(request)
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    };
    // The pair's deletion was logged last: once it shows, everything shows.
    for id in [&first.id, &second.id] {
        eventually("the backlog applied", || async {
            read(id).await.filter(|c| c.delete_time.is_some())
        })
        .await;
    }
    for id in [&first.id, &second.id] {
        let c = read(id).await.expect("pair conversation");
        assert!(is_closed(&c), "R6: two conversations, none reopened");
    }
    let c = read(&single.id).await.expect("single conversation");
    assert!(is_closed(&c), "closed last, then trashed and restored");
    assert!(c.delete_time.is_none(), "R9: restored with its ticket");
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
