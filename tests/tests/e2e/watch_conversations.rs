//! WatchConversations: a client replays the account's changes after its
//! cursor, then follows them live, resumes where it left off, and many
//! watchers of one account each get every change once, in order.

use std::time::Duration;

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test]
async fn watch_conversations_replays_then_follows_and_resumes_from_a_cursor() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let created = conversation(&stack, &account, "Watched", "w@example.com").await;
    let mut stream = inbox
        .watch_conversations(as_user(
            &account,
            "ui",
            ipb::WatchConversationsRequest { after_sequence: 0 },
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut next_change = async || loop {
        match stream.next().await.expect("open").expect("message").kind {
            Some(ipb::watch_conversations_response::Kind::Change(change)) => return change,
            _ => continue,
        }
    };
    let first = next_change().await;
    assert_eq!(
        (first.sequence, first.kind),
        (1, ipb::ConversationChangeKind::Created as i32)
    );
    assert_eq!(first.conversation.unwrap().id, created.id);
    inbox
        .close_conversation(as_user(
            &account,
            "ui",
            ipb::CloseConversationRequest {
                conversation_id: created.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("close");
    let closed = next_change().await;
    assert_eq!(closed.sequence, 2);
    assert!(is_closed(&closed.conversation.unwrap()));

    let mut resumed = inbox
        .watch_conversations(as_user(
            &account,
            "ui",
            ipb::WatchConversationsRequest { after_sequence: 1 },
        ))
        .await
        .expect("resume")
        .into_inner();
    match tokio::time::timeout(Duration::from_secs(5), resumed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .kind
    {
        Some(ipb::watch_conversations_response::Kind::Change(change)) => {
            assert_eq!(change.sequence, 2)
        }
        other => panic!("expected change 2, got {other:?}"),
    }
    let ahead = inbox
        .watch_conversations(as_user(
            &account,
            "ui",
            ipb::WatchConversationsRequest { after_sequence: 50 },
        ))
        .await
        .expect_err("ahead of the head");
    assert_eq!(ahead.code(), Code::OutOfRange);
    // Another account's stream sees none of it.
    let other = e2e::account(&stack, tpb::Tier::Starter).await;
    let mut theirs = inbox
        .watch_conversations(as_user(
            &other,
            "ui",
            ipb::WatchConversationsRequest { after_sequence: 0 },
        ))
        .await
        .expect("watch")
        .into_inner();
    match tokio::time::timeout(Duration::from_secs(5), theirs.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .kind
    {
        Some(ipb::watch_conversations_response::Kind::HeadSequence(head)) => assert_eq!(head, 0),
        other => panic!("expected only progress, got {other:?}"),
    }
    stack.stop().await;
}

/// Changes after `after` up to `until` as one watcher of `account` receives them.
async fn watched(
    inbox: std::net::SocketAddr,
    account: String,
    after: i64,
    until: i64,
) -> Vec<(i64, String)> {
    let mut stream = ipb::inbox_service_client::InboxServiceClient::new(channel(inbox).await)
        .watch_conversations(as_user(
            &account,
            "ui",
            ipb::WatchConversationsRequest {
                after_sequence: after,
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(sequence, _)| *sequence < until) {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the stream keeps delivering")
            .expect("open")
            .expect("message");
        if let Some(ipb::watch_conversations_response::Kind::Change(change)) = message.kind {
            seen.push((change.sequence, change.conversation.expect("snapshot").id));
        }
    }
    seen
}

#[tokio::test]
async fn many_watchers_of_one_account_each_get_every_change_once_in_order() {
    // The inbox serves an account's watchers from one shared tail of its
    // change log; watchers that start behind it read the database until
    // they reach it. Every one must see the same gap-free sequence.
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    for i in 0..10 {
        conversation(&stack, &account, &format!("Before {i}"), "many@example.com").await;
    }
    const WRITES: i64 = 40;
    let until = 10 + WRITES;
    let mut watchers = tokio::task::JoinSet::new();
    for w in 0..24usize {
        // From the start, from the middle, and from the head.
        let after = [0, 5, 10][w % 3];
        let (addr, account) = (stack.inbox_addr, account.clone());
        watchers.spawn(async move { (after, watched(addr, account, after, until).await) });
    }
    // Concurrent writers while the watchers start.
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let (addr, account) = (stack.inbox_addr, account.clone());
        writers.spawn(async move {
            let mut inbox = ipb::inbox_service_client::InboxServiceClient::new(channel(addr).await);
            for i in 0..WRITES / 4 {
                inbox
                    .create_conversation(as_user(
                        &account,
                        "agent",
                        new_conversation(&format!("W{writer}-{i}"), "many@example.com"),
                    ))
                    .await
                    .expect("create");
            }
        });
    }
    writers.join_all().await;
    let everything = watched(stack.inbox_addr, account.clone(), 0, until).await;
    assert_eq!(
        everything.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=until).collect::<Vec<_>>(),
        "the log is gap-free"
    );
    for (after, seen) in watchers.join_all().await {
        assert_eq!(
            seen,
            everything[after as usize..],
            "a watcher from {after} sees every later change once, in order"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn r5_closing_a_ticket_logs_one_change_per_conversation_without_gaps() {
    // The inbox applies ticketing's close to every conversation of the
    // ticket in one transaction and appends their changes together, at
    // consecutive sequences after everything logged before.
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        ids.push(
            conversation(&stack, &account, name, "three@example.com")
                .await
                .id,
        );
    }
    let ticket = ticket_for(&stack, &account, &ids[0]).await;
    for id in &ids[1..] {
        add_to_ticket(&stack, &account, id, &ticket.id).await;
    }
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &account,
            "x",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .expect("close");
    for id in &ids {
        conversation_becomes(&stack, &account, id, "R5 close", is_closed).await;
    }
    let mut stream = stack
        .inbox()
        .await
        .watch_conversations(as_user(
            &account,
            "ui",
            ipb::WatchConversationsRequest { after_sequence: 0 },
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut log = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the stream keeps delivering")
            .expect("open")
            .expect("message");
        match message.kind {
            Some(ipb::watch_conversations_response::Kind::Change(change)) => log.push(change),
            Some(ipb::watch_conversations_response::Kind::HeadSequence(head))
                if log.last().is_some_and(|c| c.sequence == head) =>
            {
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        log.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        (1..=log.len() as i64).collect::<Vec<_>>(),
        "the log is gap-free"
    );
    let (before, last_three) = log.split_at(log.len() - 3);
    let mut closed_ids: Vec<String> = last_three
        .iter()
        .map(|c| {
            let conversation = c.conversation.clone().expect("snapshot");
            assert!(is_closed(&conversation), "R5: the change logs the close");
            conversation.id
        })
        .collect();
    closed_ids.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        closed_ids, expected,
        "one change per conversation of the ticket"
    );
    assert!(
        before
            .iter()
            .all(|c| !is_closed(c.conversation.as_ref().expect("snapshot"))),
        "nothing was closed before the ticket"
    );
    stack.stop().await;
}
