//! Undoing merges (R15) and the other rules on merged tickets (R16),
//! through both services' public APIs.

use std::time::Duration;

use e2e::{merging::*, *};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

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
    assert_eq!(undone.moved_conversation_ids, vec![b.id.clone()]);
    on_ticket(&stack, &account, &b.id, &secondary.id).await;
    let undone = unmerge(&stack, &account, &primary.id)
        .await
        .expect("unmerge primary");
    assert_eq!(
        undone.ticket.expect("primary").conversation_ids,
        vec![a.id.clone()]
    );
    assert_eq!(
        fresh(&stack, &account, &third.id).await.conversation_ids,
        vec![q.id.clone()]
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
    assert_eq!(cascade.ticket_ids, vec![primary.id.clone()]);
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
