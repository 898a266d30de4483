//! What the change streams deliver and how fast: the close of a ticket
//! reaching its three conversations in the inbox, and one account's changes
//! fanned out to many WatchConversations subscribers.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::as_user;
use proto::inbox::v1::{self as ipb, watch_conversations_response::Kind};
use tokio::task::JoinSet;

use crate::{
    load::{Figures, Supply, open_loop},
    memory,
    paths::Bench,
    seed,
};

/// The inbox's change-log head of the account: subscribers start there.
async fn head(bench: &Bench) -> i64 {
    bench
        .scalar(
            &bench.inbox_db,
            "SELECT last_sequence FROM change_heads WHERE account_id = $1",
        )
        .await
}

async fn subscribe(
    bench: &Bench,
    which: usize,
    after_sequence: i64,
) -> Option<tonic::Streaming<ipb::WatchConversationsResponse>> {
    let mut client = bench.inbox[which % bench.inbox.len()].clone();
    client
        .watch_conversations(as_user(
            &bench.account,
            "bench",
            ipb::WatchConversationsRequest { after_sequence },
        ))
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Propagation of a ticket's close to its conversations.
pub struct Propagation {
    pub offered_per_second: f64,
    pub close_calls: Figures,
    /// From the start of each UpdateTicket call until the inbox streams the
    /// last of its three conversations as closed.
    pub all_closed: Figures,
    pub never_closed: u64,
}

/// Closes tickets of three conversations at `per_second` and times each
/// until all three conversations show up closed on WatchConversations.
pub async fn propagation(bench: &Bench, per_second: f64) -> Propagation {
    let tickets = (per_second * bench.duration.as_secs_f64()) as u64 + 50;
    let batch = bench.seed_ticketed("pr", tickets, false).await;
    let started: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let closed: Arc<Mutex<HashMap<String, (u32, Instant)>>> = Default::default();
    let mut stream = subscribe(bench, 0, head(bench).await)
        .await
        .expect("watch conversations");
    let watcher = {
        let closed = closed.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let Some(Kind::Change(change)) = message.kind else {
                    continue;
                };
                let Some(conversation) = change.conversation else {
                    continue;
                };
                if conversation.status == ipb::ConversationStatus::Closed as i32 {
                    let mut closed = closed.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = closed
                        .entry(conversation.ticket_id)
                        .or_insert((0, Instant::now()));
                    entry.0 += 1;
                    entry.1 = Instant::now();
                }
            }
        })
    };
    let supply = Supply::new((0..tickets).map(|t| seed::ticket_id(&batch, t)).collect());
    let clients = bench.ticketing.clone();
    let (account, stage) = (bench.account.clone(), bench.closed_stage.clone());
    let close_calls = open_loop(per_second, bench.duration, |n| {
        let mut client = clients[n as usize % clients.len()].clone();
        let id = supply.take().cloned();
        let (account, stage, started) = (account.clone(), stage.clone(), started.clone());
        async move {
            let id = id?;
            let begin = Instant::now();
            let request = as_user(&account, "bench", e2e::move_to_stage(&id, &stage, ""));
            let ok = client.update_ticket(request).await.is_ok();
            if ok {
                started
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, begin);
            }
            Some(ok)
        }
    })
    .await;
    // Give the last closes time to arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = {
            let started = started.lock().unwrap_or_else(|e| e.into_inner());
            let closed = closed.lock().unwrap_or_else(|e| e.into_inner());
            started
                .keys()
                .all(|t| closed.get(t).is_some_and(|(n, _)| *n >= 3))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let started = started.lock().unwrap_or_else(|e| e.into_inner());
    let closed = closed.lock().unwrap_or_else(|e| e.into_inner());
    let mut latencies = Vec::new();
    let mut never_closed = 0;
    for (ticket, begin) in started.iter() {
        match closed.get(ticket) {
            Some((n, last)) if *n >= 3 => {
                latencies.push(last.saturating_duration_since(*begin).as_micros() as u64)
            }
            _ => never_closed += 1,
        }
    }
    Propagation {
        offered_per_second: per_second,
        close_calls,
        all_closed: Figures::of(latencies, never_closed, bench.duration),
        never_closed,
    }
}

/// When each fan-out conversation's change was started, by conversation.
struct SendTimes {
    origin: Instant,
    index: HashMap<String, usize>,
    /// Microseconds after `origin` plus one; 0 while not started.
    started: Vec<AtomicU64>,
}

impl SendTimes {
    fn new(conversations: &[String]) -> Self {
        Self {
            origin: Instant::now(),
            index: conversations
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
            started: conversations.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn len(&self) -> usize {
        self.started.len()
    }

    fn start(&self, conversation_id: &str) {
        if let Some(&i) = self.index.get(conversation_id) {
            let micros = self.origin.elapsed().as_micros() as u64 + 1;
            self.started[i].store(micros, Ordering::Release);
        }
    }

    /// The conversation's index and when its change was started.
    fn get(&self, conversation_id: &str) -> Option<(usize, Instant)> {
        let i = *self.index.get(conversation_id)?;
        match self.started[i].load(Ordering::Acquire) {
            0 => None,
            micros => Some((i, self.origin + Duration::from_micros(micros - 1))),
        }
    }
}

/// One account's changes delivered to many subscribers.
pub struct FanOut {
    pub subscribers: usize,
    pub events_per_second: f64,
    pub events_sent: u64,
    /// The AddMessage calls that made the changes: delivery can't beat them.
    pub change_calls: Figures,
    /// From the start of the call that made the change until a subscriber
    /// received it, over all subscribers.
    pub delivery: Figures,
    /// Deliveries missing: events sent × subscribers − deliveries received.
    pub lost: u64,
    /// Resident memory the idle subscriptions added, per subscription.
    pub idle_stream_bytes: Option<f64>,
}

/// The resident memory of what serves the subscriptions once freshly
/// started work has settled: the inbox's process, or in process the whole
/// bench (its clients' side included, so an upper bound).
async fn streams_server_rss(bench: &Bench) -> Option<u64> {
    match bench.services.usage() {
        Some(_) => {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            bench.services.usage().map(|(_, inbox)| inbox.rss)
        }
        None => memory::settled_rss().await,
    }
}

/// `subscribers` WatchConversations streams on one account while messages
/// are added at `per_second`, each to its own conversation.
pub async fn fan_out(bench: &Bench, subscribers: usize, per_second: f64) -> FanOut {
    let count = (per_second * bench.duration.as_secs_f64()) as u64 + 20;
    let conversations = bench.seed_unticketed("fo", count, false).await;
    // The receivers run a thousand times per change on the machine they
    // measure: they look send times up without a lock or an allocation.
    let sent = Arc::new(SendTimes::new(&conversations));
    let after = head(bench).await;

    let rss_before = streams_server_rss(bench).await;
    let mut streams = Vec::with_capacity(subscribers);
    for which in 0..subscribers {
        if let Some(stream) = subscribe(bench, which, after).await {
            streams.push(stream);
        }
    }
    let rss_after = streams_server_rss(bench).await;
    let idle_stream_bytes = match (rss_before, rss_after) {
        (Some(before), Some(after)) if !streams.is_empty() => {
            Some(after.saturating_sub(before) as f64 / streams.len() as f64)
        }
        _ => None,
    };

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut receivers = JoinSet::new();
    for mut stream in streams {
        let (sent, mut stopped) = (sent.clone(), stopped.clone());
        receivers.spawn(async move {
            let mut latencies = Vec::new();
            // A message adds more than one change to its conversation only
            // if the service misbehaves; count each conversation once.
            let mut seen = vec![false; sent.len()];
            loop {
                let message = tokio::select! {
                    _ = stopped.changed() => break,
                    message = stream.message() => message,
                };
                let Ok(Some(message)) = message else { break };
                let received = Instant::now();
                if let Some(Kind::Change(change)) = message.kind
                    && let Some(conversation) = change.conversation
                    && let Some((index, begin)) = sent.get(&conversation.id)
                    && !std::mem::replace(&mut seen[index], true)
                {
                    latencies.push(received.saturating_duration_since(begin).as_micros() as u64);
                }
            }
            latencies
        });
    }

    let supply = Supply::new(conversations);
    let clients = bench.inbox.clone();
    let account = bench.account.clone();
    let calls = open_loop(per_second, bench.duration, |n| {
        let mut client = clients[n as usize % clients.len()].clone();
        let id = supply.take().cloned();
        let (account, sent) = (account.clone(), sent.clone());
        async move {
            let id = id?;
            sent.start(&id);
            let request = as_user(
                &account,
                "bench",
                ipb::AddMessageRequest {
                    conversation_id: id,
                    message: Some(ipb::Message {
                        direction: ipb::Direction::Outgoing as i32,
                        author: "bench".into(),
                        body: "On it".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            Some(client.add_message(request).await.is_ok())
        }
    })
    .await;
    // Let the last changes reach everyone, then hang up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let mut all = Vec::new();
    while let Some(done) = receivers.join_next().await {
        if let Ok(latencies) = done {
            all.extend(latencies);
        }
    }
    let events_sent = calls.calls - calls.errors;
    let expected = events_sent * subscribers as u64;
    let received = all.len() as u64;
    FanOut {
        subscribers,
        events_per_second: per_second,
        events_sent,
        change_calls: calls,
        delivery: Figures::of(all, 0, bench.duration),
        lost: expected.saturating_sub(received),
        idle_stream_bytes,
    }
}
