//! Merges racing other changes of the same tickets (R14, R16, SPEC section
//! 4): whatever interleaving the database picks, both services end in a
//! state that some serial order of the two calls would give.

use std::time::Duration;

use e2e::{merging::*, *};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

/// Rounds per race: each one starts both calls at once on fresh tickets.
const ROUNDS: usize = 4;

struct Pair {
    a: String,
    b: String,
    primary: tpb::Ticket,
    secondary: tpb::Ticket,
}

/// A primary with conversation `a` (owned by `primary_owner`) and a
/// secondary with conversation `b`.
async fn pair(stack: &Stack, account: &str, primary_owner: &str) -> Pair {
    let a = conversation(stack, account, "One", "ana@example.com").await;
    let b = conversation(stack, account, "Two", "bo@example.com").await;
    if !primary_owner.is_empty() {
        stack
            .inbox()
            .await
            .assign_conversation(as_user(account, "lead", assign(&a.id, primary_owner)))
            .await
            .expect("assign a");
    }
    let primary = ticket_for(stack, account, &a.id).await;
    let secondary = ticket_for(stack, account, &b.id).await;
    Pair {
        a: a.id,
        b: b.id,
        primary,
        secondary,
    }
}

fn assign(id: &str, owner: &str) -> ipb::AssignConversationRequest {
    ipb::AssignConversationRequest {
        conversation_id: id.into(),
        owner_id: owner.into(),
        ..Default::default()
    }
}

fn plain_merge(primary: &str, secondary: &str) -> tpb::MergeTicketsRequest {
    tpb::MergeTicketsRequest {
        primary_id: primary.into(),
        secondary_id: secondary.into(),
        ..Default::default()
    }
}

async fn merge_in_background(
    stack: &Stack,
    account: &str,
    request: tpb::MergeTicketsRequest,
) -> tokio::task::JoinHandle<Result<tpb::MergeTicketsResponse, tonic::Status>> {
    let mut ticketing = stack.ticketing().await;
    let account = account.to_owned();
    tokio::spawn(async move {
        ticketing
            .merge_tickets(as_user(&account, "agent-1", request))
            .await
            .map(|r| r.into_inner())
    })
}

#[tokio::test]
async fn r4_r14_a_merge_racing_an_owner_change_ends_as_one_of_the_two_orders() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    for _ in 0..ROUNDS {
        let p = pair(&stack, &account, "p-owner").await;
        let merging = merge_in_background(
            &stack,
            &account,
            plain_merge(&p.primary.id, &p.secondary.id),
        )
        .await;
        stack
            .inbox()
            .await
            .assign_conversation(as_user(&account, "lead", assign(&p.b, "x")))
            .await
            .expect("assign b");
        merging.await.expect("join").expect("merge");
        // Assign first: the secondary's owner became x, and the primary's
        // own owner won the merge. Merge first: R4 set the primary's.
        tickets_become(&stack, &account, &p, |primary, secondary| {
            primary.owner_id == "x" || (primary.owner_id == "p-owner" && secondary.owner_id == "x")
        })
        .await;
        on_ticket(&stack, &account, &p.b, &p.primary.id).await;
    }
    stack.stop().await;
}

async fn tickets_become(
    stack: &Stack,
    account: &str,
    pair: &Pair,
    check: impl Fn(&tpb::Ticket, &tpb::Ticket) -> bool,
) {
    eventually("a state some serial order gives", || async {
        let primary = get_ticket(stack, account, &pair.primary.id).await?;
        let secondary = get_ticket(stack, account, &pair.secondary.id).await?;
        check(&primary, &secondary).then_some(())
    })
    .await
}

#[tokio::test]
async fn r5_r16_a_merge_racing_a_close_of_the_secondary_ends_as_one_of_the_two_orders() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    for _ in 0..ROUNDS {
        let p = pair(&stack, &account, "").await;
        let merging = merge_in_background(
            &stack,
            &account,
            plain_merge(&p.primary.id, &p.secondary.id),
        )
        .await;
        let close = stack
            .ticketing()
            .await
            .update_ticket(as_user(
                &account,
                "agent-1",
                move_to_stage(&p.secondary.id, &closed, ""),
            ))
            .await;
        merging
            .await
            .expect("join")
            .expect("a close never stops a merge");
        on_ticket(&stack, &account, &p.b, &p.primary.id).await;
        let b = get_conversation(&stack, &account, &p.b).await.expect("b");
        match close {
            // Close first: R5 closed b, and the merge left its status alone.
            Ok(_) => {
                conversation_becomes(&stack, &account, &p.b, "R5 before the merge", is_closed)
                    .await;
            }
            // Merge first: the secondary was read-only (R16), b stays open.
            Err(status) => {
                assert_eq!(reason(&status), "TICKET_MERGED", "{status:?}");
                assert!(is_open(&b));
            }
        }
        let a = get_conversation(&stack, &account, &p.a).await.expect("a");
        assert!(is_open(&a), "the primary's own conversation is untouched");
    }
    stack.stop().await;
}

#[tokio::test]
async fn r8_r14_a_merge_racing_a_trash_ends_as_one_of_the_two_orders() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    for _ in 0..ROUNDS {
        let p = pair(&stack, &account, "").await;
        let merging = merge_in_background(
            &stack,
            &account,
            plain_merge(&p.primary.id, &p.secondary.id),
        )
        .await;
        stack
            .inbox()
            .await
            .trash_conversation(as_user(
                &account,
                "lead",
                ipb::TrashConversationRequest {
                    conversation_id: p.b.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("trash b");
        match merging.await.expect("join") {
            // Merge first: trashing b trashed the primary and a with it (R8).
            Ok(_) => {
                tickets_become(&stack, &account, &p, |primary, _| {
                    primary.delete_time.is_some()
                })
                .await;
                conversation_becomes(&stack, &account, &p.a, "R8 over the primary", |c| {
                    c.delete_time.is_some()
                })
                .await;
            }
            // Trash first: the secondary was in trash and cannot merge.
            Err(status) => {
                assert_eq!(reason(&status), "TICKET_TRASHED", "{status:?}");
                tickets_become(&stack, &account, &p, |primary, secondary| {
                    secondary.delete_time.is_some() && primary.delete_time.is_none()
                })
                .await;
                let a = get_conversation(&stack, &account, &p.a).await.expect("a");
                assert!(a.delete_time.is_none());
            }
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn r14_two_merges_of_the_same_tickets_either_way_round_let_exactly_one_win() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    for _ in 0..ROUNDS {
        let p = pair(&stack, &account, "").await;
        let one = merge_in_background(
            &stack,
            &account,
            plain_merge(&p.primary.id, &p.secondary.id),
        )
        .await;
        let other = merge_in_background(
            &stack,
            &account,
            plain_merge(&p.secondary.id, &p.primary.id),
        )
        .await;
        let results = [one.await.expect("join"), other.await.expect("join")];
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let survivor = winners[0].primary.as_ref().expect("primary").id.clone();
        for result in &results {
            if let Err(status) = result {
                assert_eq!(status.code(), Code::FailedPrecondition);
                assert_eq!(reason(status), "TICKET_MERGED");
            }
        }
        for conversation in [&p.a, &p.b] {
            on_ticket(&stack, &account, conversation, &survivor).await;
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn spec4_ten_overlapping_duplicates_of_a_merge_and_an_unmerge_all_get_the_first_answer() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let p = pair(&stack, &account, "").await;
    let mut request = plain_merge(&p.primary.id, &p.secondary.id);
    request.request_id = "merge-dup".into();
    let mut calls = Vec::new();
    for _ in 0..10 {
        calls.push(merge_in_background(&stack, &account, request.clone()).await);
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(
            call.await
                .expect("join")
                .expect("every duplicate gets the answer"),
        );
    }
    assert!(answers.iter().all(|a| *a == answers[0]));

    let mut calls = Vec::new();
    for _ in 0..10 {
        let mut ticketing = stack.ticketing().await;
        let account = account.clone();
        let id = p.secondary.id.clone();
        calls.push(tokio::spawn(async move {
            ticketing
                .unmerge_ticket(as_user(
                    &account,
                    "agent-1",
                    tpb::UnmergeTicketRequest {
                        request_id: "unmerge-dup".into(),
                        id,
                        ..Default::default()
                    },
                ))
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(
            call.await
                .expect("join")
                .expect("every duplicate gets the answer"),
        );
    }
    assert!(answers.iter().all(|a| *a == answers[0]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    on_ticket(&stack, &account, &p.b, &p.secondary.id).await;
    stack.stop().await;
}
