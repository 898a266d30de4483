//! Two ticketing processes on one database: either serves the same event
//! stream, and when the one an inbox follows dies, the inbox resumes from the
//! other with nothing lost.

use std::{net::SocketAddr, time::Duration};

use e2e::*;
use kit::shutdown::Shutdown;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::StreamExt;

async fn start_ticketing(
    url: &str,
    at: Option<SocketAddr>,
) -> (SocketAddr, JoinHandle<()>, Shutdown) {
    start_ticketing_polling(url, at, Duration::from_millis(200)).await
}

async fn start_ticketing_polling(
    url: &str,
    at: Option<SocketAddr>,
    poll: Duration,
) -> (SocketAddr, JoinHandle<()>, Shutdown) {
    let listener = TcpListener::bind(at.unwrap_or_else(|| "127.0.0.1:0".parse().expect("address")))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = ticketing::Config::for_database(url);
    config.stream.poll_interval = poll;
    config.stream.progress_interval = poll.max(Duration::from_millis(500));
    let shutdown = Shutdown::new();
    let draining = shutdown.draining();
    let task = tokio::spawn(async move {
        ticketing::run(config, listener, draining)
            .await
            .expect("ticketing runs");
    });
    wait_serving(addr).await;
    (addr, task, shutdown)
}

async fn events_from(addr: SocketAddr, account: &str, count: usize) -> Vec<tpb::Event> {
    let mut stream =
        tpb::ticketing_service_client::TicketingServiceClient::new(channel(addr).await)
            .watch_events(as_user(account, "x", events_after(account, 0)))
            .await
            .expect("watch")
            .into_inner();
    let mut events = Vec::new();
    while events.len() < count {
        if let Some(tpb::watch_events_response::Kind::Event(event)) =
            stream.next().await.expect("open").expect("message").kind
        {
            events.push(event);
        }
    }
    events
}

#[tokio::test]
async fn the_inbox_fails_over_between_ticketing_replicas_and_loses_nothing() {
    let mut ticketing_db = TestDb::create("ticketing").await;
    let mut inbox_db = TestDb::create("inbox").await;
    let (a, a_task, a_shutdown) = start_ticketing(ticketing_db.url(), None).await;
    let (b, b_task, b_shutdown) = start_ticketing(ticketing_db.url(), None).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let inbox_addr = listener.local_addr().expect("addr");
    let mut config = inbox::Config::for_database(inbox_db.url(), &format!("http://{a},http://{b}"));
    config.max_reconnect_backoff = Duration::from_millis(300);
    let inbox_shutdown = Shutdown::new();
    let draining = inbox_shutdown.draining();
    let inbox_task = tokio::spawn(async move {
        inbox::run(config, listener, draining)
            .await
            .expect("inbox runs");
    });
    wait_serving(inbox_addr).await;

    let mut ticketing_a_first =
        tpb::ticketing_service_client::TicketingServiceClient::new(channel(a).await);
    let mut ticketing_b =
        tpb::ticketing_service_client::TicketingServiceClient::new(channel(b).await);
    let account = ticketing_a_first
        .create_account(as_service(
            "admin",
            tpb::CreateAccountRequest {
                account: Some(tpb::Account {
                    name: "Replicated".into(),
                    tier: tpb::Tier::Starter as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("account")
        .into_inner()
        .id;
    let mut inbox = ipb::inbox_service_client::InboxServiceClient::new(channel(inbox_addr).await);
    let mut ids = Vec::new();
    for i in 0..4 {
        let conversation = inbox
            .create_conversation(as_user(
                &account,
                "x",
                new_conversation(&format!("R{i}"), "r@example.com"),
            ))
            .await
            .expect("conversation")
            .into_inner();
        let ticket = inbox
            .create_ticket_for_conversation(as_user(
                &account,
                "x",
                create_ticket_for(&conversation.id),
            ))
            .await
            .expect("ticket")
            .into_inner()
            .ticket
            .expect("ticket");
        ids.push((conversation.id, ticket.id));
    }

    // Either replica serves the same log.
    let from_a = events_from(a, &account, 8).await;
    let from_b = events_from(b, &account, 8).await;
    assert_eq!(from_a, from_b);

    // One replica dies; every ticket closes through the other.
    a_task.abort();
    let _ = a_task.await;
    drop(a_shutdown);
    let pipelines = ticketing_b
        .list_pipelines(as_user(&account, "x", tpb::ListPipelinesRequest::default()))
        .await
        .expect("pipelines")
        .into_inner()
        .pipelines;
    let closed = pipelines[0]
        .stages
        .iter()
        .find(|s| s.is_closed)
        .expect("closed")
        .id
        .clone();
    for (_, ticket_id) in &ids {
        ticketing_b
            .update_ticket(as_user(
                &account,
                "x",
                move_to_stage(ticket_id, &closed, ""),
            ))
            .await
            .expect("close through b");
    }
    for (conversation_id, _) in &ids {
        eventually("the inbox to resume from the surviving replica", || {
            let mut inbox = inbox.clone();
            let request = as_user(
                &account,
                "x",
                ipb::GetConversationRequest {
                    id: conversation_id.clone(),
                },
            );
            async move {
                inbox
                    .get_conversation(request)
                    .await
                    .ok()
                    .filter(|c| is_closed(c.get_ref()))
            }
        })
        .await;
    }

    // A comes back, B dies: whichever replica the inbox followed, it has now
    // lost it at least once. Reopening reaches it through A.
    let (_, a_task, a_shutdown) = start_ticketing(ticketing_db.url(), Some(a)).await;
    b_task.abort();
    let _ = b_task.await;
    drop(b_shutdown);
    let open = pipelines[0].stages[0].id.clone();
    let mut ticketing_a =
        tpb::ticketing_service_client::TicketingServiceClient::new(channel(a).await);
    for (_, ticket_id) in &ids {
        ticketing_a
            .update_ticket(as_user(&account, "x", move_to_stage(ticket_id, &open, "")))
            .await
            .expect("reopen through a");
    }
    for (conversation_id, _) in &ids {
        eventually("the inbox to resume from the restarted replica", || {
            let mut inbox = inbox.clone();
            let request = as_user(
                &account,
                "x",
                ipb::GetConversationRequest {
                    id: conversation_id.clone(),
                },
            );
            async move {
                inbox
                    .get_conversation(request)
                    .await
                    .ok()
                    .filter(|c| is_open(c.get_ref()))
            }
        })
        .await;
    }

    inbox_shutdown.trigger();
    let _ = inbox_task.await;
    a_shutdown.trigger();
    let _ = a_task.await;
    inbox_db.drop_database().await;
    ticketing_db.drop_database().await;
}

/// A commit through one replica wakes the watchers of another at once: its
/// announcer's NOTIFY, sent after the commit, reaches the other's listener.
/// Both replicas poll only once a minute here, so nothing else could deliver
/// the event within the wait below. PostgreSQL only (SQLite has no NOTIFY
/// and is served by one process).
#[tokio::test]
async fn a_commit_through_one_replica_wakes_watchers_of_another_without_polling() {
    let mut ticketing_db = TestDb::create("ticketing").await;
    if !ticketing_db.url().starts_with("postgres") {
        return;
    }
    let minute = Duration::from_secs(60);
    let (a, a_task, a_shutdown) = start_ticketing_polling(ticketing_db.url(), None, minute).await;
    let (b, b_task, b_shutdown) = start_ticketing_polling(ticketing_db.url(), None, minute).await;
    let mut through_a =
        tpb::ticketing_service_client::TicketingServiceClient::new(channel(a).await);
    let account = through_a
        .create_account(as_service(
            "admin",
            tpb::CreateAccountRequest {
                account: Some(tpb::Account {
                    name: "Announced".into(),
                    tier: tpb::Tier::Starter as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("account")
        .into_inner()
        .id;
    let mut watching_b =
        tpb::ticketing_service_client::TicketingServiceClient::new(channel(b).await)
            .watch_events(as_user(&account, "x", events_after(&account, 0)))
            .await
            .expect("watch b")
            .into_inner();
    // B's watcher has read the (empty) log and waits on its signal.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 0..3 {
        let ticket = through_a
            .create_ticket(as_user(
                &account,
                "x",
                tpb::CreateTicketRequest {
                    ticket: Some(tpb::Ticket {
                        name: format!("Announced {round}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("ticket through a")
            .into_inner();
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let message = watching_b.next().await.expect("open").expect("message");
                if let Some(tpb::watch_events_response::Kind::Event(tpb::Event {
                    payload: Some(tpb::event::Payload::TicketChanged(changed)),
                    ..
                })) = message.kind
                    && changed.ticket.is_some_and(|t| t.id == ticket.id)
                {
                    return;
                }
            }
        })
        .await;
        assert!(
            heard.is_ok(),
            "round {round}: B's watcher did not hear of A's commit within 10 s (it polls once a minute)"
        );
    }

    drop(watching_b);
    for (task, shutdown) in [(a_task, a_shutdown), (b_task, b_shutdown)] {
        shutdown.trigger();
        let _ = task.await;
    }
    ticketing_db.drop_database().await;
}
