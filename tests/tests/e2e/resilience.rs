//! Reports that outlive ticketing being down, concurrent changes that must
//! converge, and an inbox that follows ticketing's log after it was reset
//! (the conversation change stream: watch_conversations.rs).

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

/// The ticket as the inbox's sidebar shows it.
async fn ticket_in_inbox(
    stack: &Stack,
    account: &str,
    conversation_id: &str,
) -> Option<tpb::Ticket> {
    stack
        .inbox()
        .await
        .get_conversation_context(as_user(
            account,
            "x",
            ipb::GetConversationContextRequest {
                conversation_id: conversation_id.into(),
                ..Default::default()
            },
        ))
        .await
        .ok()?
        .into_inner()
        .ticket?
        .ticket
}

#[tokio::test]
async fn reports_made_while_ticketing_is_down_are_delivered_when_it_returns() {
    let mut stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let owned = conversation(&stack, &account, "Owned", "down@example.com").await;
    let owned_ticket = ticket_for(&stack, &account, &owned.id).await;
    let a = conversation(&stack, &account, "A", "down@example.com").await;
    let b = conversation(&stack, &account, "B", "down@example.com").await;
    let shared = ticket_for(&stack, &account, &a.id).await;
    add_to_ticket(&stack, &account, &b.id, &shared.id).await;

    stack.stop_ticketing().await;
    inbox
        .assign_conversation(as_user(&account, "lead", assign(&owned.id, "agent-5")))
        .await
        .expect("assign while ticketing is down");
    let trashed = inbox
        .trash_conversation(as_user(
            &account,
            "lead",
            ipb::TrashConversationRequest {
                conversation_id: a.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("trash while ticketing is down")
        .into_inner();
    assert!(trashed.cascade_pending, "the cascade waits for ticketing");
    assert!(trashed.conversation.unwrap().delete_time.is_some());
    assert!(
        get_conversation(&stack, &account, &b.id)
            .await
            .unwrap()
            .delete_time
            .is_none()
    );

    stack.start_ticketing().await;
    ticket_becomes(
        &stack,
        &account,
        &owned_ticket.id,
        "R4 after the outage",
        |t| t.owner_id == "agent-5",
    )
    .await;
    ticket_becomes(&stack, &account, &shared.id, "R8 after the outage", |t| {
        t.delete_time.is_some()
    })
    .await;
    conversation_becomes(&stack, &account, &b.id, "B trashed by the cascade", |c| {
        c.delete_time.is_some()
    })
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn r4_twenty_concurrent_owner_changes_leave_the_ticket_with_the_last_owner_in_both_services()
{
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let inbox = stack.inbox().await;
    let conversation = conversation(&stack, &account, "Busy", "busy@example.com").await;
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let mut inbox = inbox.clone();
            let request = as_user(
                &account,
                "lead",
                assign(&conversation.id, &format!("agent-{i}")),
            );
            tokio::spawn(async move { inbox.assign_conversation(request).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("assign");
    }
    let owner = get_conversation(&stack, &account, &conversation.id)
        .await
        .unwrap()
        .owner_id;
    let settled = ticket_becomes(
        &stack,
        &account,
        &ticket.id,
        "the ticket owner to follow",
        |t| t.owner_id == owner,
    )
    .await;
    eventually("the inbox's view to catch up", || async {
        let view = ticket_in_inbox(&stack, &account, &conversation.id).await?;
        (view.version == settled.version && view.owner_id == owner).then_some(())
    })
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_owner_status_and_stage_changes_converge_in_both_services() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let inbox = stack.inbox().await;
    let ticketing = stack.ticketing().await;
    let a = conversation(&stack, &account, "A", "mix@example.com").await;
    let b = conversation(&stack, &account, "B", "mix@example.com").await;
    let ticket = ticket_for(&stack, &account, &a.id).await;
    add_to_ticket(&stack, &account, &b.id, &ticket.id).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    let open = stage_id(&stack, &account, "Waiting on us").await;

    let mut tasks = Vec::new();
    for i in 0..20 {
        let (mut inbox, mut ticketing) = (inbox.clone(), ticketing.clone());
        let (account, a, b, ticket_id) = (
            account.clone(),
            a.id.clone(),
            b.id.clone(),
            ticket.id.clone(),
        );
        let (closed, open) = (closed.clone(), open.clone());
        tasks.push(tokio::spawn(async move {
            let target = if i % 2 == 0 { &a } else { &b };
            let result = match i % 4 {
                0 | 1 => inbox
                    .assign_conversation(as_user(
                        &account,
                        "lead",
                        assign(target, &format!("agent-{i}")),
                    ))
                    .await
                    .map(|_| ()),
                2 => inbox
                    .close_conversation(as_user(
                        &account,
                        "lead",
                        ipb::CloseConversationRequest {
                            conversation_id: target.clone(),
                            ..Default::default()
                        },
                    ))
                    .await
                    .map(|_| ()),
                _ => {
                    let stage = if i % 8 == 3 { &closed } else { &open };
                    ticketing
                        .update_ticket(as_user(
                            &account,
                            "lead",
                            move_to_stage(&ticket_id, stage, ""),
                        ))
                        .await
                        .map(|_| ())
                }
            };
            result.map_err(|status| (i, status))
        }));
    }
    for task in tasks {
        if let Err((i, status)) = task.await.expect("task") {
            // Only a lost optimistic race may refuse, and it changes nothing.
            assert_eq!(status.code(), Code::Aborted, "change {i}: {status:?}");
        }
    }
    let owners: Vec<String> = {
        let mut owners = Vec::new();
        for id in [&a.id, &b.id] {
            owners.push(
                get_conversation(&stack, &account, id)
                    .await
                    .unwrap()
                    .owner_id,
            );
        }
        owners
    };
    let final_ticket = eventually("both services to agree on the ticket", || async {
        let in_ticketing = get_ticket(&stack, &account, &ticket.id).await?;
        let in_inbox = ticket_in_inbox(&stack, &account, &a.id).await?;
        (in_ticketing == in_inbox).then_some(in_ticketing)
    })
    .await;
    assert!(
        owners.contains(&final_ticket.owner_id),
        "R4: {} not in {owners:?}",
        final_ticket.owner_id
    );
    assert_eq!(
        final_ticket.conversation_ids.len(),
        2,
        "R2: nobody left or moved"
    );
    stack.stop().await;
}

/// SPEC §5 after a half reset of the local data: ticketing's database is
/// new while the inbox keeps cursors past the new log's head (CURSOR_AHEAD).
/// The inbox resynchronises those accounts and moves their cursors back,
/// so events of any account flow again (R5 reaches the inbox) instead of
/// every reconnect being refused for ever.
#[tokio::test]
async fn after_ticketing_loses_its_database_the_inbox_follows_the_new_log() {
    let mut stack = Stack::start().await;
    let before = account(&stack, tpb::Tier::Starter).await;
    let old = conversation(&stack, &before, "Before", "reset@example.com").await;
    let old_ticket = ticket_for(&stack, &before, &old.id).await;
    let closed = stage_id(&stack, &before, "Closed").await;
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &before,
            "agent-1",
            move_to_stage(&old_ticket.id, &closed, &old_ticket.etag),
        ))
        .await
        .expect("close before the reset");
    conversation_becomes(&stack, &before, &old.id, "R5 before the reset", is_closed).await;

    stack.stop_ticketing().await;
    stack.replace_ticketing_database().await;
    stack.start_ticketing().await;

    let after = account(&stack, tpb::Tier::Starter).await;
    let fresh = conversation(&stack, &after, "After", "reset@example.com").await;
    let ticket = ticket_for(&stack, &after, &fresh.id).await;
    let closed = stage_id(&stack, &after, "Closed").await;
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &after,
            "agent-1",
            move_to_stage(&ticket.id, &closed, &ticket.etag),
        ))
        .await
        .expect("close after the reset");
    conversation_becomes(&stack, &after, &fresh.id, "R5 after the reset", is_closed).await;
    stack.stop().await;
}
