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
        .watch_events(as_user(
            account,
            "watcher",
            tpb::WatchEventsRequest {
                cursors: vec![tpb::AccountCursor {
                    account_id: account.into(),
                    after_sequence: 0,
                }],
                all_accounts: false,
            },
        ))
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
                        tpb::WatchEventsRequest {
                            cursors: vec![tpb::AccountCursor {
                                account_id: stack_account.clone(),
                                after_sequence: 0,
                            }],
                            all_accounts: false,
                        },
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
