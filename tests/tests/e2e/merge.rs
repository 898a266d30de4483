//! Merging tickets (R14) through both services' public APIs: what moves,
//! what stays, what the inbox shows, what the audit trail tells, and what
//! is refused.

use std::time::Duration;

use e2e::{merging::*, *};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

#[tokio::test]
async fn r14_a_merge_moves_every_conversation_fills_empty_values_and_leaves_a_redirect() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let a = conversation(&stack, &account, "Printer", "ana@example.com").await;
    let b = conversation(&stack, &account, "Printer again", "bo@example.com").await;
    let c = conversation(&stack, &account, "Still the printer", "bo@example.com").await;
    let primary = ticket_for(&stack, &account, &a.id).await;
    let secondary = ticket_for(&stack, &account, &b.id).await;
    add_to_ticket(&stack, &account, &c.id, &secondary.id).await;
    let secondary = update(
        &stack,
        &account,
        tpb::Ticket {
            id: secondary.id.clone(),
            description: "toner everywhere".into(),
            priority: tpb::Priority::High as i32,
            owner_id: "agent-9".into(),
            ..Default::default()
        },
        &["description", "priority", "owner_id"],
    )
    .await
    .expect("fill the secondary");
    let primary = fresh(&stack, &account, &primary.id).await;

    // A stale etag on either side is refused, and nothing changes.
    let mut stale = merge_request(&primary, &secondary);
    stale.secondary_etag = primary.etag.clone();
    let refused = merge(&stack, &account, stale)
        .await
        .expect_err("stale etag");
    assert_eq!(refused.code(), Code::Aborted);
    assert_eq!(fresh(&stack, &account, &secondary.id).await, secondary);

    let merged = merge(&stack, &account, merge_request(&primary, &secondary))
        .await
        .expect("merge");
    let kept = merged.primary.expect("primary");
    let gone = merged.secondary.expect("secondary");
    assert_eq!(kept.id, primary.id, "the primary keeps its id");
    assert_eq!(
        kept.conversation_ids,
        [a.id.clone(), b.id.clone(), c.id.clone()]
    );
    assert_eq!(merged.moved_conversation_ids, [b.id.clone(), c.id.clone()]);
    assert_eq!(kept.name, primary.name, "the primary's values win");
    assert_eq!(
        kept.description, "toner everywhere",
        "empty ones take the secondary's"
    );
    assert_eq!(kept.priority, tpb::Priority::High as i32);
    assert_eq!(kept.owner_id, "agent-9");
    assert_eq!(
        kept.create_time, primary.create_time,
        "the older creation time"
    );
    assert_eq!(gone.merged_into, primary.id);
    assert!(gone.conversation_ids.is_empty());
    assert!(gone.unmerge_deadline.is_some() && gone.merge_time.is_some());

    // The secondary still answers, as a redirect, and lists hide it.
    let redirect = fresh(&stack, &account, &secondary.id).await;
    assert_eq!(redirect.merged_into, primary.id);
    assert_eq!(
        redirect.priority,
        tpb::Priority::High as i32,
        "kept as it was"
    );
    assert!(
        !list_ids(&stack, &account, false)
            .await
            .contains(&secondary.id)
    );
    assert!(
        list_ids(&stack, &account, true)
            .await
            .contains(&secondary.id)
    );

    // R16: a merged ticket refuses every change but its unmerge.
    let mut ticketing = stack.ticketing().await;
    let refusals = [
        update(
            &stack,
            &account,
            tpb::Ticket {
                id: secondary.id.clone(),
                name: "x".into(),
                ..Default::default()
            },
            &["name"],
        )
        .await
        .map(|_| ()),
        ticketing
            .delete_ticket(as_user(
                &account,
                "agent-1",
                tpb::DeleteTicketRequest {
                    id: secondary.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        merge(
            &stack,
            &account,
            tpb::MergeTicketsRequest {
                primary_id: secondary.id.clone(),
                secondary_id: bare_ticket(&stack, &account, "other").await.id,
                ..Default::default()
            },
        )
        .await
        .map(|_| ()),
        merge(
            &stack,
            &account,
            tpb::MergeTicketsRequest {
                primary_id: primary.id.clone(),
                secondary_id: secondary.id.clone(),
                ..Default::default()
            },
        )
        .await
        .map(|_| ()),
    ];
    for refusal in refusals {
        let status = refusal.expect_err("a merged ticket is read-only");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status), "TICKET_MERGED");
    }
    let d = conversation(&stack, &account, "New one", "cy@example.com").await;
    let associate = stack
        .inbox()
        .await
        .add_conversation_to_ticket(as_user(
            &account,
            "agent-1",
            ipb::AddConversationToTicketRequest {
                conversation_id: d.id.clone(),
                ticket_id: secondary.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no conversation joins a merged ticket");
    assert_eq!(reason(&associate), "TICKET_MERGED");

    // The inbox shows every conversation on its current ticket.
    for conversation in [&b.id, &c.id] {
        on_ticket(&stack, &account, conversation, &primary.id).await;
    }
    let context = stack
        .inbox()
        .await
        .get_conversation_context(as_user(
            &account,
            "agent-1",
            ipb::GetConversationContextRequest {
                conversation_id: b.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("context")
        .into_inner();
    let panel = context
        .ticket
        .expect("ticket panel")
        .ticket
        .expect("ticket");
    assert_eq!(panel.id, primary.id);
    let filtered = stack
        .ticketing()
        .await
        .list_tickets(as_user(
            &account,
            "agent-1",
            tpb::ListTicketsRequest {
                conversation_id: c.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("by conversation")
        .into_inner()
        .tickets;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].id, primary.id);

    // The audit trail of both tickets and of each moved conversation.
    use tpb::list_history_request::Subject;
    let of_secondary = history(&stack, &account, Subject::TicketId(secondary.id.clone())).await;
    assert_eq!(
        changes_of_kind(&of_secondary, tpb::TicketChangeKind::Merged),
        1
    );
    let of_primary = history(&stack, &account, Subject::TicketId(primary.id.clone())).await;
    assert_eq!(
        changes_of_kind(&of_primary, tpb::TicketChangeKind::Merged),
        1
    );
    let expected_moves = vec![
        (
            b.id.clone(),
            secondary.id.clone(),
            primary.id.clone(),
            "R14".to_owned(),
        ),
        (
            c.id.clone(),
            secondary.id.clone(),
            primary.id.clone(),
            "R14".to_owned(),
        ),
    ];
    assert_eq!(moves(&of_primary), expected_moves);
    let of_b = history(&stack, &account, Subject::ConversationId(b.id.clone())).await;
    assert_eq!(moves(&of_b), expected_moves[..1]);

    // WatchConversations shows the move.
    let mut changes = stack
        .inbox()
        .await
        .watch_conversations(as_user(
            &account,
            "agent-1",
            ipb::WatchConversationsRequest { after_sequence: 0 },
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut seen_move = false;
    while let Ok(Ok(Some(message))) =
        tokio::time::timeout(Duration::from_secs(2), changes.message()).await
    {
        if let Some(ipb::watch_conversations_response::Kind::Change(change)) = message.kind {
            let conversation = change.conversation.expect("conversation");
            if conversation.id == b.id && conversation.ticket_id == primary.id {
                seen_move = true;
                break;
            }
        }
    }
    assert!(
        seen_move,
        "WatchConversations shows b moving to the primary"
    );
    stack.stop().await;
}

#[tokio::test]
async fn r14_r5_r6_conversations_that_arrive_at_a_closed_primary_are_closed() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let a = conversation(&stack, &account, "One", "ana@example.com").await;
    let b = conversation(&stack, &account, "Two", "bo@example.com").await;
    let primary = ticket_for(&stack, &account, &a.id).await;
    let secondary = ticket_for(&stack, &account, &b.id).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &account,
            "agent-1",
            move_to_stage(&primary.id, &closed, ""),
        ))
        .await
        .expect("close the primary");
    conversation_becomes(&stack, &account, &a.id, "R5 on the primary", is_closed).await;
    let primary = fresh(&stack, &account, &primary.id).await;
    merge(&stack, &account, merge_request(&primary, &secondary))
        .await
        .expect("merge");
    conversation_becomes(
        &stack,
        &account,
        &b.id,
        "R5 for an arriving conversation",
        |c| is_closed(c) && c.ticket_id == primary.id,
    )
    .await;

    // R6 counts all of the primary's conversations: two, so none reopens.
    let new = stage_id(&stack, &account, "New").await;
    let reopened = stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &account,
            "agent-1",
            move_to_stage(&primary.id, &new, ""),
        ))
        .await
        .expect("reopen the primary")
        .into_inner();
    assert!(!reopened.closed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in [&a.id, &b.id] {
        let now = get_conversation(&stack, &account, id)
            .await
            .expect("conversation");
        assert!(is_closed(&now), "R6: with two conversations none reopens");
    }
    stack.stop().await;
}

#[tokio::test]
async fn r14_refuses_trash_itself_other_accounts_and_unknown_tickets_and_replays_retries() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let other = e2e::account(&stack, tpb::Tier::Starter).await;
    let one = bare_ticket(&stack, &account, "one").await;
    let two = bare_ticket(&stack, &account, "two").await;
    let theirs = bare_ticket(&stack, &other, "theirs").await;

    let same = merge(&stack, &account, merge_request(&one, &one))
        .await
        .expect_err("itself");
    assert_eq!(same.code(), Code::InvalidArgument);
    assert_eq!(bad_field(&same), "secondary_id");
    for missing in [
        &theirs.id,
        &"0190a0a0-0000-7000-8000-000000000000".to_owned(),
    ] {
        let request = tpb::MergeTicketsRequest {
            primary_id: one.id.clone(),
            secondary_id: missing.clone(),
            ..Default::default()
        };
        let status = merge(&stack, &account, request)
            .await
            .expect_err("not found");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let trashed = bare_ticket(&stack, &account, "trashed").await;
    stack
        .ticketing()
        .await
        .delete_ticket(as_user(
            &account,
            "agent-1",
            tpb::DeleteTicketRequest {
                id: trashed.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("trash");
    let status = merge(
        &stack,
        &account,
        tpb::MergeTicketsRequest {
            primary_id: one.id.clone(),
            secondary_id: trashed.id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect_err("trashed");
    assert_eq!(reason(&status), "TICKET_TRASHED");

    // SPEC section 4: a retry with the same request id gets the first answer.
    let mut request = merge_request(&one, &two);
    request.request_id = "merge-once".into();
    let first = merge(&stack, &account, request.clone())
        .await
        .expect("merge");
    let again = merge(&stack, &account, request).await.expect("retry");
    assert_eq!(first, again);
    let unmerged = unmerge(&stack, &account, &two.id).await.expect("unmerge");
    assert!(unmerged.ticket.expect("ticket").merged_into.is_empty());
    let status = unmerge(&stack, &account, &two.id)
        .await
        .expect_err("not merged");
    assert_eq!(reason(&status), "TICKET_NOT_MERGED");
    stack.stop().await;
}
