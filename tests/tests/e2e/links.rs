//! Conversation links are per account (docs/security.md, "Account
//! isolation"): conversation ids reach ticketing from callers, so account
//! B may use an id that is A's conversation. B's answers for it are those
//! for an id nobody has, R2 holds within each account, and no answer to A
//! depends on B's rows. (Before, the link was keyed by the id alone and B
//! was told "conversation … already has ticket <A's ticket>".)

use e2e::*;
use proto::ticketing::v1 as tpb;
use tonic::Code;

const MISSING: &str = "0193aaaa-0000-7000-8000-000000000000";

fn snapshot(id: &str) -> tpb::ConversationSnapshot {
    tpb::ConversationSnapshot {
        id: id.into(),
        subject: "x".into(),
        open: true,
        version: 99,
        ..Default::default()
    }
}

#[tokio::test]
async fn another_accounts_conversation_id_is_answered_like_an_unknown_one() {
    let stack = Stack::start().await;
    let a = account(&stack, tpb::Tier::Starter).await;
    let b = account(&stack, tpb::Tier::Starter).await;
    let mut ticketing = stack.ticketing().await;
    let conversation = conversation(&stack, &a, "A's secret", "a@example.com").await;
    let ticket = ticket_for(&stack, &a, &conversation.id).await;
    let before_conversation = get_conversation(&stack, &a, &conversation.id).await;

    // The inbox reporting for B about A's conversation id: B's own facts,
    // as for an id nobody has, and A's conversation is not touched.
    let report = |id: &str| {
        as_service_for(
            "inbox",
            &b,
            tpb::NotifyConversationChangedRequest {
                request_id: String::new(),
                change: tpb::ConversationChange::Trashed as i32,
                // Older than the snapshots B sends below, which win.
                conversation: Some(tpb::ConversationSnapshot {
                    trashed: true,
                    version: 1,
                    ..snapshot(id)
                }),
            },
        )
    };
    let theirs = ticketing
        .notify_conversation_changed(report(&conversation.id))
        .await
        .expect("B's facts")
        .into_inner();
    let missing = ticketing
        .notify_conversation_changed(report(MISSING))
        .await
        .expect("B's facts")
        .into_inner();
    assert_eq!(theirs, missing);
    assert_eq!(theirs, tpb::NotifyConversationChangedResponse::default());

    // R2 is per account: B's ticket for A's conversation id (which has A's
    // ticket) is made as for an id nobody has, and names nothing of A's.
    let mut b_tickets = Vec::new();
    for id in [
        conversation.id.as_str(),
        "0193bbbb-0000-7000-8000-000000000000",
    ] {
        let created = ticketing
            .create_ticket(as_user(
                &b,
                "mallory",
                tpb::CreateTicketRequest {
                    conversation: Some(snapshot(id)),
                    ..Default::default()
                },
            ))
            .await
            .expect("B's ticket for that id, like for an unknown id")
            .into_inner();
        assert_eq!(created.conversation_ids, vec![id.to_owned()]);
        assert_eq!(created.account_id, b);
        b_tickets.push(created);
    }
    // Associating A's conversation id with B's second ticket is refused by
    // B's own R2, naming B's first ticket and nothing of A's.
    let status = ticketing
        .associate_conversation(as_user(
            &b,
            "mallory",
            tpb::AssociateConversationRequest {
                ticket_id: b_tickets[1].id.clone(),
                conversation: Some(snapshot(&conversation.id)),
                ..Default::default()
            },
        ))
        .await
        .expect_err("already linked in B");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains(&b_tickets[0].id), "{status:?}");
    assert!(!status.message().contains(&ticket.id), "{status:?}");
    // And the other way round: A's answers do not depend on B's rows.
    let a_ticket_for_b_id = ticketing
        .create_ticket(as_user(
            &a,
            "x",
            tpb::CreateTicketRequest {
                conversation: Some(snapshot(&b_tickets[1].conversation_ids[0])),
                ..Default::default()
            },
        ))
        .await
        .expect("A's ticket for an id B linked")
        .into_inner();
    assert_eq!(a_ticket_for_b_id.account_id, a);

    assert_eq!(
        get_ticket(&stack, &a, &ticket.id)
            .await
            .map(|t| t.conversation_ids),
        Some(vec![conversation.id.clone()])
    );
    assert_eq!(
        get_conversation(&stack, &a, &conversation.id).await,
        before_conversation,
        "A's conversation is untouched"
    );
    stack.stop().await;
}
