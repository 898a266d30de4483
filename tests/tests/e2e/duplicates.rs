//! SPEC section 4 under overlapping retries: ten concurrent calls with one
//! request id, to each mutating RPC of both services, have one effect and
//! all get the first call's answer. Run on PostgreSQL too, where the calls
//! really overlap (SQLite serialises them).

use std::fmt::Debug;

use e2e::{merging::bare_ticket, *};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

const DUPLICATES: usize = 10;

/// Ten overlapping calls of `$method` with `$request` (which carries the
/// request id); returns the one answer they all got.
macro_rules! ten {
    ($client:expr, $method:ident, $account:expr, $request:expr) => {{
        let mut calls = Vec::new();
        for _ in 0..DUPLICATES {
            let mut client = $client.clone();
            let request = $request.clone();
            let account = $account.to_owned();
            calls.push(tokio::spawn(async move {
                client
                    .$method(as_user(&account, "agent-1", request))
                    .await
                    .map(|r| r.into_inner())
            }));
        }
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.expect("join"));
        }
        one_answer(stringify!($method), results)
    }};
}

fn one_answer<T: PartialEq + Debug>(method: &str, results: Vec<Result<T, tonic::Status>>) -> T {
    let mut answers = Vec::new();
    for result in results {
        match result {
            Ok(answer) => answers.push(answer),
            Err(status) => panic!("{method}: a duplicate was refused: {status:?}"),
        }
    }
    let first = answers.remove(0);
    for other in &answers {
        assert_eq!(other, &first, "{method}: duplicates got different answers");
    }
    first
}

fn id(label: &str) -> String {
    format!("dup-{label}")
}

#[tokio::test]
async fn spec4_ten_overlapping_duplicates_of_every_mutating_rpc_get_the_first_answer() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let inbox = stack.inbox().await;
    let ticketing = stack.ticketing().await;

    // Inbox: conversations and their changes.
    let mut request = new_conversation("Duplicated", "dup@example.com");
    request.request_id = id("create-conversation");
    let x = ten!(inbox, create_conversation, &account, request);
    let y = conversation(&stack, &account, "Second", "dup@example.com").await;
    ten!(
        inbox,
        add_message,
        &account,
        ipb::AddMessageRequest {
            request_id: id("add-message"),
            conversation_id: x.id.clone(),
            message: Some(ipb::Message {
                direction: ipb::Direction::Outgoing as i32,
                author: "agent-1".into(),
                body: "on it".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    );
    ten!(
        inbox,
        assign_conversation,
        &account,
        ipb::AssignConversationRequest {
            request_id: id("assign"),
            conversation_id: x.id.clone(),
            owner_id: "agent-2".into(),
            ..Default::default()
        }
    );
    ten!(
        inbox,
        close_conversation,
        &account,
        ipb::CloseConversationRequest {
            request_id: id("close"),
            conversation_id: x.id.clone(),
            ..Default::default()
        }
    );
    ten!(
        inbox,
        reopen_conversation,
        &account,
        ipb::ReopenConversationRequest {
            request_id: id("reopen"),
            conversation_id: x.id.clone(),
            ..Default::default()
        }
    );
    ten!(
        inbox,
        set_displayed_properties,
        &account,
        ipb::SetDisplayedPropertiesRequest {
            request_id: id("displayed"),
            property_names: vec!["name".into(), "owner".into()],
        }
    );

    // Ticket management through the inbox: R2 must not refuse a duplicate.
    let created = ten!(
        inbox,
        create_ticket_for_conversation,
        &account,
        ipb::CreateTicketForConversationRequest {
            request_id: id("ticket-for"),
            conversation_id: x.id.clone(),
            ticket: None,
        }
    );
    let ticket = created.ticket.expect("ticket");
    ten!(
        inbox,
        add_conversation_to_ticket,
        &account,
        ipb::AddConversationToTicketRequest {
            request_id: id("add-to-ticket"),
            conversation_id: y.id.clone(),
            ticket_id: ticket.id.clone(),
        }
    );
    ten!(
        inbox,
        update_conversation_ticket,
        &account,
        ipb::UpdateConversationTicketRequest {
            request_id: id("update-through-inbox"),
            conversation_id: x.id.clone(),
            ticket: Some(tpb::Ticket {
                priority: tpb::Priority::High as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["priority".into()],
            }),
        }
    );
    let listed = stack
        .ticketing()
        .await
        .list_tickets(as_user(
            &account,
            "agent-1",
            tpb::ListTicketsRequest {
                conversation_id: x.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .tickets;
    assert_eq!(listed.len(), 1, "one ticket for ten duplicates");

    // Ticketing directly: a ticket from a conversation (R2 again).
    let z = conversation(&stack, &account, "Third", "dup@example.com").await;
    let direct = ten!(
        ticketing,
        create_ticket,
        &account,
        tpb::CreateTicketRequest {
            request_id: id("create-ticket"),
            conversation: Some(tpb::ConversationSnapshot {
                id: z.id.clone(),
                subject: z.subject.clone(),
                contact_id: z.contact_id.clone(),
                open: true,
                version: z.version,
                ..Default::default()
            }),
            ..Default::default()
        }
    );
    let w = conversation(&stack, &account, "Fourth", "dup@example.com").await;
    ten!(
        ticketing,
        associate_conversation,
        &account,
        tpb::AssociateConversationRequest {
            request_id: id("associate"),
            ticket_id: direct.id.clone(),
            conversation: Some(tpb::ConversationSnapshot {
                id: w.id.clone(),
                subject: w.subject.clone(),
                contact_id: w.contact_id.clone(),
                open: true,
                version: w.version,
                ..Default::default()
            }),
            ..Default::default()
        }
    );
    ten!(
        ticketing,
        update_ticket,
        &account,
        tpb::UpdateTicketRequest {
            request_id: id("update"),
            ticket: Some(tpb::Ticket {
                id: direct.id.clone(),
                description: "duplicated".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
            ..Default::default()
        }
    );
    let secondary = bare_ticket(&stack, &account, "secondary").await;
    ten!(
        ticketing,
        merge_tickets,
        &account,
        tpb::MergeTicketsRequest {
            request_id: id("merge"),
            primary_id: direct.id.clone(),
            secondary_id: secondary.id.clone(),
            ..Default::default()
        }
    );
    ten!(
        ticketing,
        unmerge_ticket,
        &account,
        tpb::UnmergeTicketRequest {
            request_id: id("unmerge"),
            id: secondary.id.clone(),
            ..Default::default()
        }
    );
    ten!(
        ticketing,
        delete_ticket,
        &account,
        tpb::DeleteTicketRequest {
            request_id: id("delete"),
            id: direct.id.clone(),
            ..Default::default()
        }
    );
    ten!(
        ticketing,
        undelete_ticket,
        &account,
        tpb::UndeleteTicketRequest {
            request_id: id("undelete"),
            id: direct.id.clone(),
            ..Default::default()
        }
    );

    // Trash and restore through the inbox (R8, R9), each one cascade.
    ten!(
        inbox,
        trash_conversation,
        &account,
        ipb::TrashConversationRequest {
            request_id: id("trash"),
            conversation_id: y.id.clone(),
            ..Default::default()
        }
    );
    ten!(
        inbox,
        restore_conversation,
        &account,
        ipb::RestoreConversationRequest {
            request_id: id("restore"),
            conversation_id: y.id.clone(),
        }
    );

    // The catalog.
    ten!(
        ticketing,
        create_pipeline,
        &account,
        tpb::CreatePipelineRequest {
            request_id: id("pipeline"),
            pipeline: Some(tpb::Pipeline {
                name: "Returns".into(),
                stages: vec![
                    tpb::Stage {
                        name: "Open".into(),
                        ..Default::default()
                    },
                    tpb::Stage {
                        name: "Done".into(),
                        is_closed: true,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        }
    );
    ten!(
        ticketing,
        create_property_definition,
        &account,
        tpb::CreatePropertyDefinitionRequest {
            request_id: id("property"),
            property_definition: Some(tpb::PropertyDefinition {
                name: "order_number".into(),
                label: "Order number".into(),
                r#type: tpb::PropertyType::String as i32,
                ..Default::default()
            }),
        }
    );
    stack.stop().await;
}
