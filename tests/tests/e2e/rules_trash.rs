//! Trash and its recovery (R8, R9) end to end, including a backlog the
//! inbox applies at once.

use std::time::Duration;

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

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
