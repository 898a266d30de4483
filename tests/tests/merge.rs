//! Merging tickets and undoing it (R14–R16), through both services' public
//! APIs: what moves, what stays, what the inbox shows, what the audit trail
//! tells, and that every other rule keeps holding on the merged ticket.

use std::time::Duration;

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

fn merge_request(primary: &tpb::Ticket, secondary: &tpb::Ticket) -> tpb::MergeTicketsRequest {
    tpb::MergeTicketsRequest {
        primary_id: primary.id.clone(),
        secondary_id: secondary.id.clone(),
        primary_etag: primary.etag.clone(),
        secondary_etag: secondary.etag.clone(),
        ..Default::default()
    }
}

async fn merge(
    stack: &Stack,
    account: &str,
    request: tpb::MergeTicketsRequest,
) -> Result<tpb::MergeTicketsResponse, tonic::Status> {
    stack
        .ticketing()
        .await
        .merge_tickets(as_user(account, "agent-1", request))
        .await
        .map(|r| r.into_inner())
}

async fn unmerge(
    stack: &Stack,
    account: &str,
    id: &str,
) -> Result<tpb::UnmergeTicketResponse, tonic::Status> {
    stack
        .ticketing()
        .await
        .unmerge_ticket(as_user(
            account,
            "agent-1",
            tpb::UnmergeTicketRequest {
                id: id.into(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn fresh(stack: &Stack, account: &str, id: &str) -> tpb::Ticket {
    get_ticket(stack, account, id).await.expect("ticket")
}

async fn update(
    stack: &Stack,
    account: &str,
    ticket: tpb::Ticket,
    paths: &[&str],
) -> Result<tpb::Ticket, tonic::Status> {
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            account,
            "agent-1",
            tpb::UpdateTicketRequest {
                ticket: Some(ticket),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// A ticket created in ticketing directly, without a conversation.
async fn bare_ticket(stack: &Stack, account: &str, name: &str) -> tpb::Ticket {
    stack
        .ticketing()
        .await
        .create_ticket(as_user(
            account,
            "agent-1",
            tpb::CreateTicketRequest {
                ticket: Some(tpb::Ticket {
                    name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("create ticket")
        .into_inner()
}

async fn history(
    stack: &Stack,
    account: &str,
    subject: tpb::list_history_request::Subject,
) -> Vec<tpb::Event> {
    stack
        .ticketing()
        .await
        .list_history(as_user(
            account,
            "agent-1",
            tpb::ListHistoryRequest {
                subject: Some(subject),
                page_size: 200,
                ..Default::default()
            },
        ))
        .await
        .expect("history")
        .into_inner()
        .events
}

fn moves(events: &[tpb::Event]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(tpb::event::Payload::ConversationDirective(d))
                if d.action == tpb::DirectiveAction::MoveToTicket as i32 =>
            {
                let rule = e.cause.as_ref().map(|c| c.rule.clone()).unwrap_or_default();
                Some((
                    d.conversation_id.clone(),
                    d.from_ticket_id.clone(),
                    d.ticket_id.clone(),
                    rule,
                ))
            }
            _ => None,
        })
        .collect()
}

fn changes_of_kind(events: &[tpb::Event], kind: tpb::TicketChangeKind) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(&e.payload, Some(tpb::event::Payload::TicketChanged(c)) if c.kind == kind as i32)
        })
        .count()
}

async fn list_ids(stack: &Stack, account: &str, show_merged: bool) -> Vec<String> {
    stack
        .ticketing()
        .await
        .list_tickets(as_user(
            account,
            "agent-1",
            tpb::ListTicketsRequest {
                show_merged,
                ..Default::default()
            },
        ))
        .await
        .expect("list tickets")
        .into_inner()
        .tickets
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn on_ticket(stack: &Stack, account: &str, conversation: &str, ticket: &str) {
    conversation_becomes(
        stack,
        account,
        conversation,
        "the inbox to show the move",
        |c| c.ticket_id == ticket,
    )
    .await;
}

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

#[tokio::test]
async fn r15_unmerge_brings_the_secondary_back_with_exactly_the_conversations_it_brought() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let a = conversation(&stack, &account, "One", "ana@example.com").await;
    let b = conversation(&stack, &account, "Two", "bo@example.com").await;
    let c = conversation(&stack, &account, "Three", "bo@example.com").await;
    let primary = ticket_for(&stack, &account, &a.id).await;
    let secondary = ticket_for(&stack, &account, &b.id).await;
    add_to_ticket(&stack, &account, &c.id, &secondary.id).await;
    let secondary = update(
        &stack,
        &account,
        tpb::Ticket {
            id: secondary.id.clone(),
            priority: tpb::Priority::Low as i32,
            ..Default::default()
        },
        &["priority"],
    )
    .await
    .expect("priority");
    let primary = fresh(&stack, &account, &primary.id).await;
    merge(&stack, &account, merge_request(&primary, &secondary))
        .await
        .expect("merge");

    // Changes to the primary after the merge stay on the primary.
    update(
        &stack,
        &account,
        tpb::Ticket {
            id: primary.id.clone(),
            priority: tpb::Priority::Urgent as i32,
            ..Default::default()
        },
        &["priority"],
    )
    .await
    .expect("change the primary");
    let d = conversation(&stack, &account, "Four", "cy@example.com").await;
    add_to_ticket(&stack, &account, &d.id, &primary.id).await;
    stack
        .inbox()
        .await
        .close_conversation(as_user(
            &account,
            "agent-1",
            ipb::CloseConversationRequest {
                conversation_id: c.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("close c");

    let undone = unmerge(&stack, &account, &secondary.id)
        .await
        .expect("unmerge");
    let back = undone.ticket.expect("secondary");
    let holder = undone.previous_holder.expect("primary");
    assert!(back.merged_into.is_empty());
    assert_eq!(back.conversation_ids, [b.id.clone(), c.id.clone()]);
    assert_eq!(
        back.priority,
        tpb::Priority::Low as i32,
        "as it was when merged"
    );
    assert_eq!(back.stage_id, secondary.stage_id);
    assert_eq!(holder.id, primary.id);
    assert_eq!(holder.conversation_ids, [a.id.clone(), d.id.clone()]);
    assert_eq!(holder.priority, tpb::Priority::Urgent as i32);
    assert_eq!(undone.moved_conversation_ids, [b.id.clone(), c.id.clone()]);
    assert!(
        list_ids(&stack, &account, false)
            .await
            .contains(&secondary.id)
    );

    for id in [&b.id, &c.id] {
        on_ticket(&stack, &account, id, &secondary.id).await;
    }
    let c_now = get_conversation(&stack, &account, &c.id).await.expect("c");
    assert!(is_closed(&c_now), "the undo changes no status");
    let b_now = get_conversation(&stack, &account, &b.id).await.expect("b");
    assert!(is_open(&b_now));

    use tpb::list_history_request::Subject;
    let of_b = history(&stack, &account, Subject::ConversationId(b.id.clone())).await;
    let b_moves: Vec<_> = moves(&of_b).into_iter().map(|m| (m.1, m.2, m.3)).collect();
    assert_eq!(
        b_moves,
        [
            (secondary.id.clone(), primary.id.clone(), "R14".to_owned()),
            (primary.id.clone(), secondary.id.clone(), "R15".to_owned()),
        ]
    );
    let of_secondary = history(&stack, &account, Subject::TicketId(secondary.id.clone())).await;
    assert_eq!(
        changes_of_kind(&of_secondary, tpb::TicketChangeKind::Unmerged),
        1
    );

    // Merged again, it can be undone again.
    let secondary = fresh(&stack, &account, &secondary.id).await;
    let primary = fresh(&stack, &account, &primary.id).await;
    merge(&stack, &account, merge_request(&primary, &secondary))
        .await
        .expect("merge again");
    unmerge(&stack, &account, &secondary.id)
        .await
        .expect("undo again");
    stack.stop().await;
}

#[tokio::test]
async fn r15_unmerge_after_the_primary_merged_into_a_third_ticket_moves_them_back_from_there() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let a = conversation(&stack, &account, "One", "ana@example.com").await;
    let b = conversation(&stack, &account, "Two", "bo@example.com").await;
    let q = conversation(&stack, &account, "Three", "cy@example.com").await;
    let primary = ticket_for(&stack, &account, &a.id).await;
    let secondary = ticket_for(&stack, &account, &b.id).await;
    let third = ticket_for(&stack, &account, &q.id).await;
    merge(&stack, &account, merge_request(&primary, &secondary))
        .await
        .expect("secondary into primary");
    let primary = fresh(&stack, &account, &primary.id).await;
    let chained = merge(&stack, &account, merge_request(&third, &primary))
        .await
        .expect("primary into third (R16: merges chain)");
    assert_eq!(
        chained.primary.expect("third").conversation_ids,
        [q.id.clone(), a.id.clone(), b.id.clone()]
    );
    on_ticket(&stack, &account, &b.id, &third.id).await;

    let undone = unmerge(&stack, &account, &secondary.id)
        .await
        .expect("unmerge");
    assert_eq!(undone.previous_holder.expect("holder").id, third.id);
    assert_eq!(undone.moved_conversation_ids, [b.id.clone()]);
    on_ticket(&stack, &account, &b.id, &secondary.id).await;
    let undone = unmerge(&stack, &account, &primary.id)
        .await
        .expect("unmerge primary");
    assert_eq!(
        undone.ticket.expect("primary").conversation_ids,
        [a.id.clone()]
    );
    assert_eq!(
        fresh(&stack, &account, &third.id).await.conversation_ids,
        [q.id.clone()]
    );
    on_ticket(&stack, &account, &a.id, &primary.id).await;
    stack.stop().await;
}

fn short_retention(config: &mut ticketing::Config) {
    config.trash_retention = Duration::from_millis(300);
}

#[tokio::test]
async fn r15_after_the_retention_period_the_merge_is_final_and_the_redirect_stays() {
    let stack = Stack::start_with(short_retention, |_| {}).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let one = bare_ticket(&stack, &account, "one").await;
    let two = bare_ticket(&stack, &account, "two").await;
    merge(&stack, &account, merge_request(&one, &two))
        .await
        .expect("merge");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = unmerge(&stack, &account, &two.id).await.expect_err("final");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "MERGE_FINAL");
    assert_eq!(fresh(&stack, &account, &two.id).await.merged_into, one.id);
    stack.stop().await;
}

#[tokio::test]
async fn r16_owner_sync_trash_and_restore_cover_every_conversation_of_the_merged_ticket() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let a = conversation(&stack, &account, "One", "ana@example.com").await;
    let b = conversation(&stack, &account, "Two", "bo@example.com").await;
    let c = conversation(&stack, &account, "Three", "bo@example.com").await;
    let primary = ticket_for(&stack, &account, &a.id).await;
    let secondary = ticket_for(&stack, &account, &b.id).await;
    add_to_ticket(&stack, &account, &c.id, &secondary.id).await;
    let secondary = fresh(&stack, &account, &secondary.id).await;
    merge(&stack, &account, merge_request(&primary, &secondary))
        .await
        .expect("merge");

    // R4: a moved conversation's owner change sets the primary's owner.
    inbox
        .assign_conversation(as_user(
            &account,
            "lead",
            ipb::AssignConversationRequest {
                conversation_id: b.id.clone(),
                owner_id: "agent-7".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("assign");
    ticket_becomes(&stack, &account, &primary.id, "R4 on the primary", |t| {
        t.owner_id == "agent-7"
    })
    .await;

    // R8: trashing one moved conversation trashes the primary and all three.
    let trashed = inbox
        .trash_conversation(as_user(
            &account,
            "lead",
            ipb::TrashConversationRequest {
                conversation_id: c.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("trash")
        .into_inner();
    let cascade = trashed.cascade.expect("cascade");
    assert_eq!(cascade.ticket_ids, [primary.id.clone()]);
    let mut members = cascade.conversation_ids.clone();
    members.sort();
    let mut all = vec![a.id.clone(), b.id.clone(), c.id.clone()];
    all.sort();
    assert_eq!(members, all);
    for id in &all {
        conversation_becomes(&stack, &account, id, "R8 over all", |c| {
            c.delete_time.is_some()
        })
        .await;
    }
    // R9: restoring any of them brings back all of them.
    inbox
        .restore_conversation(as_user(
            &account,
            "lead",
            ipb::RestoreConversationRequest {
                conversation_id: a.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("restore");
    for id in &all {
        conversation_becomes(&stack, &account, id, "R9 over all", |c| {
            c.delete_time.is_none()
        })
        .await;
    }
    assert!(
        fresh(&stack, &account, &primary.id)
            .await
            .delete_time
            .is_none()
    );
    stack.stop().await;
}

#[tokio::test]
async fn r16_a_ticket_takes_part_in_at_most_100_merges() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let primary = bare_ticket(&stack, &account, "keeps everything").await;
    for i in 0..100 {
        let secondary = bare_ticket(&stack, &account, &format!("duplicate {i}")).await;
        let request = tpb::MergeTicketsRequest {
            primary_id: primary.id.clone(),
            secondary_id: secondary.id,
            ..Default::default()
        };
        merge(&stack, &account, request)
            .await
            .unwrap_or_else(|s| panic!("merge {i}: {s:?}"));
    }
    let one_more = bare_ticket(&stack, &account, "one too many").await;
    let status = merge(
        &stack,
        &account,
        tpb::MergeTicketsRequest {
            primary_id: primary.id.clone(),
            secondary_id: one_more.id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect_err("over the cap");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "MERGE_LIMIT_REACHED");
    assert!(
        fresh(&stack, &account, &one_more.id)
            .await
            .merged_into
            .is_empty()
    );
    stack.stop().await;
}
