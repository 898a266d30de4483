//! The change stream under concurrent writers: sequence numbers become
//! visible in commit order, so watchers see every committed event exactly
//! once, in order, and nothing from a rolled-back transaction.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use e2e::*;
use proto::ticketing::v1 as tpb;
use sea_orm::TransactionTrait;
use ticketing::store::events::EventBatch;
use tokio_stream::StreamExt;

const WRITERS: usize = 8;
const TRANSACTIONS_PER_WRITER: usize = 150;

fn random(below: u64) -> u64 {
    (uuid::Uuid::now_v7().as_u128() as u64) % below
}

async fn pause() {
    tokio::time::sleep(Duration::from_micros(random(2_000))).await;
}

/// One writer: transactions of 1–3 events with pauses inside, one in ten
/// rolled back. Returns the identities of the events it committed.
async fn writer(url: String, account: String, writer: usize) -> Vec<String> {
    let db = kit::db::connect(&url, 4).await.expect("writer connects");
    let actor = tpb::Actor {
        kind: tpb::ActorKind::System as i32,
        id: format!("writer-{writer}"),
    };
    let mut committed = Vec::new();
    for n in 0..TRANSACTIONS_PER_WRITER {
        let txn = db.begin().await.expect("begin");
        pause().await;
        let mut batch = EventBatch::new(&account, actor.clone(), "Test", "");
        let count = 1 + random(3) as usize;
        let ids: Vec<String> = (0..count).map(|k| format!("w{writer}-{n}-{k}")).collect();
        for id in &ids {
            let ticket = tpb::Ticket {
                id: id.clone(),
                ..Default::default()
            };
            batch.ticket_changed(tpb::TicketChangeKind::Updated, &ticket, Vec::new(), "");
        }
        pause().await;
        batch.append(&txn).await.expect("append");
        pause().await;
        if random(10) == 0 {
            txn.rollback().await.expect("rollback");
        } else {
            txn.commit().await.expect("commit");
            committed.extend(ids);
        }
    }
    committed
}

/// Reads the stream until it has seen `expected` events.
async fn watch(stack: &Stack, account: &str, expected: usize) -> Vec<(i64, String)> {
    let mut stream = stack
        .ticketing()
        .await
        .watch_events(as_user(account, "watcher", events_after(account, 0)))
        .await
        .expect("watch")
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < expected {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the stream keeps delivering")
            .expect("the stream stays open")
            .expect("no error");
        if let Some(tpb::watch_events_response::Kind::Event(event)) = message.kind
            && let Some(tpb::event::Payload::TicketChanged(change)) = event.payload
        {
            seen.push((
                event.sequence,
                change.ticket.map(|t| t.id).unwrap_or_default(),
            ));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_rollbacks_lose_and_repeat_nothing() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let url = stack.ticketing_database_url().to_owned();

    // A watcher follows live from the start, while the writers run.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(url.clone(), account.clone(), w)))
        .collect();
    let (total_tx, mut total_rx) = tokio::sync::watch::channel(usize::MAX);
    let live = {
        let stack_account = account.clone();
        let addr = stack.ticketing_addr;
        tokio::spawn(async move {
            let mut stream =
                tpb::ticketing_service_client::TicketingServiceClient::new(channel(addr).await)
                    .watch_events(as_user(
                        &stack_account,
                        "watcher",
                        events_after(&stack_account, 0),
                    ))
                    .await
                    .expect("watch")
                    .into_inner();
            let mut seen: Vec<(i64, String)> = Vec::new();
            while seen.len() < *total_rx.borrow_and_update() {
                let message = tokio::select! {
                    message = stream.next() => message.expect("open").expect("no error"),
                    _ = total_rx.changed() => continue,
                };
                if let Some(tpb::watch_events_response::Kind::Event(event)) = message.kind
                    && let Some(tpb::event::Payload::TicketChanged(change)) = event.payload
                {
                    seen.push((
                        event.sequence,
                        change.ticket.map(|t| t.id).unwrap_or_default(),
                    ));
                }
            }
            seen
        })
    };
    let mut committed = BTreeSet::new();
    for w in writers {
        committed.extend(w.await.expect("writer"));
    }
    let total = committed.len();
    assert!(total > 1_000, "thousands of events: {total}");
    total_tx.send_replace(total);
    let attempted = WRITERS * TRANSACTIONS_PER_WRITER;
    eprintln!("{WRITERS} writers, {attempted} transactions, {total} events committed");

    // A second watcher replays everything after the writers finished.
    let replayed = watch(&stack, &account, total).await;
    let live = tokio::time::timeout(Duration::from_secs(60), live)
        .await
        .expect("the live watcher catches up")
        .expect("live watcher");
    for (name, seen) in [("live", &live), ("replay", &replayed)] {
        assert_eq!(seen.len(), total, "{name}: every committed event once");
        let sequences: Vec<i64> = seen.iter().map(|(s, _)| *s).collect();
        assert!(
            sequences.windows(2).all(|w| w[1] > w[0]),
            "{name}: in increasing order"
        );
        let ids: BTreeSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(ids.len(), total, "{name}: no duplicates");
        assert_eq!(
            ids, committed,
            "{name}: exactly the committed events, none rolled back"
        );
    }
    // Both saw the same sequence for the same event.
    let by_id: BTreeMap<&String, i64> = live.iter().map(|(s, id)| (id, *s)).collect();
    for (sequence, id) in &replayed {
        assert_eq!(by_id.get(id), Some(sequence));
    }
    stack.stop().await;
}

fn one_second_lease(config: &mut inbox::Config) {
    config.lease_ttl = Duration::from_secs(1);
}

#[tokio::test]
async fn a_replica_takes_over_consuming_when_the_consuming_inbox_dies() {
    let mut stack = Stack::start_with(|_| {}, one_second_lease).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let conversation = conversation(&stack, &account, "Failover", "f@example.com").await;
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    let replica = stack.start_inbox_replica(one_second_lease).await;
    let replica_client =
        proto::inbox::v1::inbox_service_client::InboxServiceClient::new(channel(replica).await);
    // The first inbox holds the lease and dies without giving it up.
    stack.crash_inbox().await;
    let crashed_at = tokio::time::Instant::now();
    let closed = stage_id(&stack, &account, "Closed").await;
    stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &account,
            "x",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .expect("close the ticket");
    eventually("the replica to apply the close", || {
        let mut client = replica_client.clone();
        let request = as_user(
            &account,
            "x",
            proto::inbox::v1::GetConversationRequest {
                id: conversation.id.clone(),
            },
        );
        async move {
            client
                .get_conversation(request)
                .await
                .ok()
                .filter(|c| is_closed(c.get_ref()))
        }
    })
    .await;
    let takeover = crashed_at.elapsed();
    eprintln!("replica took over and applied the close {takeover:?} after the crash");
    assert!(
        takeover < Duration::from_secs(5),
        "takeover took {takeover:?}"
    );
    stack.stop().await;
}

fn prune_at_once(config: &mut ticketing::Config) {
    config.event_retention = Duration::ZERO;
    config.consumer_ttl = Duration::ZERO;
    config.purge_interval = Duration::from_millis(200);
}

#[tokio::test]
async fn an_expired_cursor_is_refused_and_the_inbox_resynchronises_from_a_snapshot() {
    let mut stack = Stack::start_with(prune_at_once, |_| {}).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let conversation = conversation(&stack, &account, "Pruned", "p@example.com").await;
    stack.crash_inbox().await;

    // While no inbox consumes, a ticket is made for the conversation and its
    // events are pruned.
    let mut ticketing = stack.ticketing().await;
    let ticket = ticketing
        .create_ticket(as_user(
            &account,
            "x",
            tpb::CreateTicketRequest {
                conversation: Some(tpb::ConversationSnapshot {
                    id: conversation.id.clone(),
                    subject: conversation.subject.clone(),
                    contact_id: conversation.contact_id.clone(),
                    owner_id: String::new(),
                    open: true,
                    trashed: false,
                    version: conversation.version,
                    change_sequence: 0,
                }),
                surface: tpb::Surface::Inbox as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("create ticket")
        .into_inner();
    let from_start = events_after(&account, 0);
    let refused = eventually("the events to be pruned", || {
        let mut ticketing = ticketing.clone();
        let request = as_user(&account, "x", from_start.clone());
        async move { ticketing.watch_events(request).await.err() }
    })
    .await;
    assert_eq!(refused.code(), tonic::Code::OutOfRange);
    assert_eq!(reason(&refused), "CURSOR_EXPIRED");

    // A restarted inbox finds its cursor expired and resynchronises.
    let restarted = stack.start_inbox_replica(|_| {}).await;
    let inbox =
        proto::inbox::v1::inbox_service_client::InboxServiceClient::new(channel(restarted).await);
    let context = |inbox: &proto::inbox::v1::inbox_service_client::InboxServiceClient<_>| {
        let mut inbox = inbox.clone();
        let request = as_user(
            &account,
            "x",
            proto::inbox::v1::GetConversationContextRequest {
                conversation_id: conversation.id.clone(),
                ..Default::default()
            },
        );
        async move {
            inbox
                .get_conversation_context(request)
                .await
                .ok()?
                .into_inner()
                .ticket?
                .ticket
        }
    };
    let seen = eventually("the snapshot to reach the inbox", || context(&inbox)).await;
    assert_eq!(seen.id, ticket.id);
    assert_eq!(seen.conversation_ids, vec![conversation.id.clone()]);

    // And it keeps following afterwards.
    ticketing
        .update_ticket(as_user(
            &account,
            "x",
            tpb::UpdateTicketRequest {
                ticket: Some(tpb::Ticket {
                    id: ticket.id.clone(),
                    name: "Renamed after the resync".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("rename");
    eventually("the rename to reach the inbox", || async {
        context(&inbox)
            .await
            .filter(|t| t.name == "Renamed after the resync")
    })
    .await;
    stack.stop().await;
}

fn prune_but_respect_consumers(config: &mut ticketing::Config) {
    config.event_retention = Duration::ZERO;
    config.purge_interval = Duration::from_millis(200);
}

#[tokio::test]
async fn pruning_never_passes_what_a_known_consumer_has_not_acknowledged() {
    let stack = Stack::start_with(prune_but_respect_consumers, |_| {}).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut ticketing = stack.ticketing().await;
    let slow = |after: i64| tpb::AcknowledgeEventsRequest {
        consumer: "slow-report".into(),
        cursors: vec![tpb::AccountCursor {
            account_id: account.clone(),
            after_sequence: after,
            ..Default::default()
        }],
    };
    // Known from the start (an acknowledgement may not pass the head, so
    // the consumer first holds everything back at 0).
    ticketing
        .acknowledge_events(as_service("reports", slow(0)))
        .await
        .expect("acknowledge");
    let conversation = conversation(&stack, &account, "Kept", "k@example.com").await;
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    let closed = stage_id(&stack, &account, "Closed").await;
    ticketing
        .update_ticket(as_user(
            &account,
            "x",
            move_to_stage(&ticket.id, &closed, ""),
        ))
        .await
        .expect("close");
    ticketing
        .acknowledge_events(as_service("reports", slow(1)))
        .await
        .expect("acknowledge");
    let watch_from = |after: i64| as_user(&account, "x", events_after(&account, after));
    // Event 1 goes (the slow consumer has it); event 2 on must stay.
    eventually("event 1 to be pruned", || {
        let mut ticketing = ticketing.clone();
        let request = watch_from(0);
        async move { ticketing.watch_events(request).await.err() }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut stream = ticketing
        .watch_events(watch_from(1))
        .await
        .expect("cursor 1 is still good")
        .into_inner();
    match stream.next().await.unwrap().unwrap().kind {
        Some(tpb::watch_events_response::Kind::Event(event)) => assert_eq!(event.sequence, 2),
        other => panic!("expected event 2, got {other:?}"),
    }
    // Once the slow consumer acknowledges more, more may go.
    ticketing
        .acknowledge_events(as_service("reports", slow(3)))
        .await
        .expect("acknowledge");
    eventually("events up to 3 to be pruned", || {
        let mut ticketing = ticketing.clone();
        let request = watch_from(2);
        async move { ticketing.watch_events(request).await.err() }
    })
    .await;
    stack.stop().await;
}
