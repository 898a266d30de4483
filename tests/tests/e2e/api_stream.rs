//! The event stream as a client sees it: replay in order with causes,
//! then live; draining ends streams with UNAVAILABLE.

use std::time::Duration;

use e2e::*;
use proto::ticketing::v1 as tpb;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn watch_events_replays_in_order_with_causes_then_follows_live() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox = stack.inbox().await;
    let mut ticketing = stack.ticketing().await;
    let conversation = inbox
        .create_conversation(as_user(
            &account,
            "agent-7",
            new_conversation("Stream", "s@example.com"),
        ))
        .await
        .unwrap()
        .into_inner();
    let ticket = inbox
        .create_ticket_for_conversation(as_user(
            &account,
            "agent-7",
            create_ticket_for(&conversation.id),
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();

    let watch = |after: i64| e2e::events_after(&account, after);
    let mut stream = ticketing
        .watch_events(as_user(&account, "agent-7", watch(0)))
        .await
        .unwrap()
        .into_inner();
    let mut next_event = async || loop {
        match stream
            .next()
            .await
            .expect("stream open")
            .expect("message")
            .kind
        {
            Some(tpb::watch_events_response::Kind::Event(event)) => return event,
            _ => continue,
        }
    };
    let created = next_event().await;
    assert_eq!(created.sequence, 1);
    let cause = created.cause.clone().unwrap();
    assert_eq!(cause.rule, "R1");
    assert_eq!(cause.actor.unwrap().id, "agent-7");
    let link = next_event().await;
    assert_eq!(link.sequence, 2);
    assert_eq!(link.cause.as_ref().unwrap().trigger_sequence, 1);
    match link.payload {
        Some(tpb::event::Payload::ConversationDirective(d)) => {
            assert_eq!(d.action, tpb::DirectiveAction::LinkTicket as i32);
            assert_eq!(d.conversation_id, conversation.id);
        }
        other => panic!("expected a directive, got {other:?}"),
    }

    // Live: closing the ticket arrives as an update and an R5 directive.
    let closed = stage_id(&stack, &account, "Closed").await;
    ticketing
        .update_ticket(as_user(
            &account,
            "agent-7",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .unwrap();
    let updated = next_event().await;
    assert_eq!(updated.sequence, 3);
    match &updated.payload {
        Some(tpb::event::Payload::TicketChanged(change)) => {
            assert_eq!(change.changed_fields, vec!["stage_id".to_owned()]);
            assert!(
                change.ticket.as_ref().unwrap().closed,
                "the snapshot is the state after the change"
            );
        }
        other => panic!("expected a ticket change, got {other:?}"),
    }
    let close = next_event().await;
    assert_eq!(close.sequence, 4);
    assert_eq!(close.cause.as_ref().unwrap().rule, "R5");
    assert_eq!(close.cause.as_ref().unwrap().trigger_sequence, 3);

    // Idle: progress with the head.
    let progress = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(tpb::watch_events_response::Kind::Progress(p)) =
                stream.next().await.unwrap().unwrap().kind
            {
                return p;
            }
        }
    })
    .await
    .expect("a progress message while idle");
    assert_eq!(
        progress.heads,
        vec![tpb::AccountCursor {
            account_id: account.clone(),
            after_sequence: 4,
            ..Default::default()
        }]
    );

    // Resuming from a cursor sends only what follows it.
    let mut resumed = ticketing
        .watch_events(as_user(&account, "agent-7", watch(3)))
        .await
        .unwrap()
        .into_inner();
    match resumed.next().await.unwrap().unwrap().kind {
        Some(tpb::watch_events_response::Kind::Event(event)) => assert_eq!(event.sequence, 4),
        other => panic!("expected event 4, got {other:?}"),
    }
    let ahead = ticketing
        .watch_events(as_user(&account, "agent-7", watch(99)))
        .await
        .unwrap_err();
    assert_eq!(ahead.code(), Code::OutOfRange);
    assert_eq!(reason(&ahead), "CURSOR_AHEAD");
    let other = e2e::account(&stack, tpb::Tier::Starter).await;
    let foreign = ticketing
        .watch_events(as_user(&other, "x", watch(0)))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);
    stack.stop().await;
}

#[tokio::test]
async fn draining_ends_streams_with_unavailable_and_turns_health_not_serving() {
    let stack = Stack::start().await;
    let mut ticketing = stack.ticketing().await;
    let mut health_client = HealthClient::new(e2e::channel(stack.ticketing_addr).await);
    let mut stream = ticketing
        .watch_events(as_service(
            "probe",
            tpb::WatchEventsRequest {
                cursors: vec![],
                all_accounts: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    stack.begin_ticketing_drain();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return Some(status),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends during the drain");
    let status = ended.expect("the stream ends with a status, not silently");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let not_serving = eventually("health to report NOT_SERVING", || {
        let mut client = health_client.clone();
        async move {
            match client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            {
                Ok(answer) => {
                    (answer.get_ref().status == ServingStatus::NotServing as i32).then_some(true)
                }
                Err(_) => Some(true),
            }
        }
    })
    .await;
    assert!(not_serving);
    drop(health_client.check(HealthCheckRequest::default()).await);
    stack.stop().await;
}
