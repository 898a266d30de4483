//! What the agent sees and writes beside a conversation: displayed
//! properties (R11), the sidebar context (R12), replies and incoming mail
//! (R13).

use std::time::Duration;

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

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
