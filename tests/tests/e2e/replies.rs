//! R17 through the inbox's public API: a reply that names the newest
//! message its author saw is refused when the conversation has moved on,
//! and nothing is stored; concurrent replies against the same message let
//! exactly one through.

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;
use tonic_types::StatusExt;

fn message(
    conversation_id: &str,
    direction: ipb::Direction,
    body: &str,
    seen: &str,
) -> ipb::AddMessageRequest {
    ipb::AddMessageRequest {
        conversation_id: conversation_id.into(),
        message: Some(ipb::Message {
            direction: direction as i32,
            author: "agent-1".into(),
            body: body.into(),
            ..Default::default()
        }),
        seen_message_id: seen.into(),
        ..Default::default()
    }
}

async fn message_ids(stack: &Stack, account: &str, conversation_id: &str) -> Vec<String> {
    stack
        .inbox()
        .await
        .list_messages(as_user(
            account,
            "agent-1",
            ipb::ListMessagesRequest {
                conversation_id: conversation_id.into(),
                page_size: 100,
                ..Default::default()
            },
        ))
        .await
        .expect("list messages")
        .into_inner()
        .messages
        .into_iter()
        .map(|m| m.id)
        .collect()
}

fn newer_ids(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("newer_message_ids").cloned())
        .map(|ids| ids.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn r17_a_reply_that_crossed_newer_messages_is_refused_and_nothing_is_stored() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let conversation = conversation(&stack, &account, "Refund", "ana@example.com").await;
    let first = message_ids(&stack, &account, &conversation.id).await;
    assert_eq!(first.len(), 1);
    let customer = inbox
        .add_message(as_user(
            &account,
            "agent-1",
            message(
                &conversation.id,
                ipb::Direction::Incoming,
                "actually, exchange it",
                "",
            ),
        ))
        .await
        .expect("the customer changes the question")
        .into_inner();

    let crossed = inbox
        .add_message(as_user(
            &account,
            "agent-1",
            message(
                &conversation.id,
                ipb::Direction::Outgoing,
                "refund sent",
                &first[0],
            ),
        ))
        .await
        .expect_err("the reply crossed the customer's new message");
    assert_eq!(crossed.code(), Code::Aborted);
    assert_eq!(reason(&crossed), "CONVERSATION_CHANGED");
    assert_eq!(newer_ids(&crossed), vec![customer.id.clone()]);
    assert_eq!(
        message_ids(&stack, &account, &conversation.id).await,
        [first[0].clone(), customer.id.clone()],
        "nothing stored"
    );

    // Against the newest message the reply goes through; a colleague's
    // reply written against the same message has now crossed it.
    let reply = inbox
        .add_message(as_user(
            &account,
            "agent-1",
            message(
                &conversation.id,
                ipb::Direction::Outgoing,
                "exchange sent",
                &customer.id,
            ),
        ))
        .await
        .expect("an up-to-date reply")
        .into_inner();
    let colleague = inbox
        .add_message(as_user(
            &account,
            "agent-2",
            message(
                &conversation.id,
                ipb::Direction::Outgoing,
                "refund sent",
                &customer.id,
            ),
        ))
        .await
        .expect_err("a colleague already answered");
    assert_eq!(newer_ids(&colleague), vec![reply.id.clone()]);

    // Without the field a reply is stored as before.
    inbox
        .add_message(as_user(
            &account,
            "agent-1",
            message(
                &conversation.id,
                ipb::Direction::Outgoing,
                "anything else?",
                "",
            ),
        ))
        .await
        .expect("no check asked for");

    // The field names a message of this conversation, and only replies carry it.
    let other = e2e::conversation(&stack, &account, "Other", "bo@example.com").await;
    let foreign = message_ids(&stack, &account, &other.id).await;
    for (request, what) in [
        (
            message(&conversation.id, ipb::Direction::Outgoing, "x", &foreign[0]),
            "another conversation's message",
        ),
        (
            message(&conversation.id, ipb::Direction::Incoming, "x", &reply.id),
            "an incoming message",
        ),
    ] {
        let status = inbox
            .add_message(as_user(&account, "agent-1", request))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}");
        assert_eq!(bad_field(&status), "seen_message_id", "{what}");
    }
    assert_eq!(
        message_ids(&stack, &account, &conversation.id).await.len(),
        4
    );
    stack.stop().await;
}

#[tokio::test]
async fn r17_of_concurrent_replies_against_one_message_exactly_one_is_stored() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let conversation = conversation(&stack, &account, "Which size?", "ana@example.com").await;
    let seen = message_ids(&stack, &account, &conversation.id).await[0].clone();
    let mut calls = Vec::new();
    for agent in 0..8 {
        let mut inbox = stack.inbox().await;
        let request = message(
            &conversation.id,
            ipb::Direction::Outgoing,
            &format!("answer from agent {agent}"),
            &seen,
        );
        let account = account.clone();
        calls.push(tokio::spawn(async move {
            inbox
                .add_message(as_user(&account, &format!("agent-{agent}"), request))
                .await
        }));
    }
    let mut stored = 0;
    for call in calls {
        match call.await.expect("join") {
            Ok(_) => stored += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert_eq!(reason(&status), "CONVERSATION_CHANGED");
            }
        }
    }
    assert_eq!(stored, 1, "the first reply wins, the rest crossed it");
    assert_eq!(
        message_ids(&stack, &account, &conversation.id).await.len(),
        2
    );
    stack.stop().await;
}
