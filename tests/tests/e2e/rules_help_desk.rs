//! R10 end to end: help desk accounts get their tickets in the help desk
//! and refuse ticket management through the inbox.

use e2e::*;
use proto::ticketing::v1 as tpb;
use tonic::Code;

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
