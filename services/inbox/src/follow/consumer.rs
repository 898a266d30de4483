//! Follows ticketing's event stream and applies each event exactly once:
//! the effects of a batch of events and each account's cursor move in one
//! transaction, and a cursor moves only from the value this consumer read,
//! so a second consumer (or a replay after a crash) cannot apply the same
//! event again.

use std::time::Duration;

use kit::shutdown::Draining;
use proto::ticketing::v1 as tpb;
use sea_orm::TransactionTrait;
use tokio_stream::StreamExt;
use tracing::Instrument;

use super::{
    apply,
    cursors::{self, Cursors},
    metrics, plan,
};
use crate::{
    state::App,
    store::{lease, queries},
};

/// What happened to a batch of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// At or below the cursor: already applied.
    Duplicate,
    /// Another consumer moved the cursor first; nothing was written.
    Fenced,
}

/// The lease that makes one replica the consumer.
pub const LEASE: &str = "event-consumer";

/// Runs until draining starts. Only the replica holding the lease consumes;
/// the others stand by and take over when it stops renewing. Never gives up
/// on ticketing: it retries with capped exponential backoff and jitter.
pub async fn run(app: App, mut draining: Draining) {
    let mut backoff = Backoff::new(app.config.max_reconnect_backoff);
    let ttl = app.config.lease_ttl;
    loop {
        if draining.is_draining() {
            let _ = lease::release(&app.db, LEASE, &app.instance).await;
            return;
        }
        let held = lease::acquire(&app.db, LEASE, &app.instance, ttl).await;
        metrics::get().lease.record(
            u64::from(matches!(held, Ok(true))),
            &[opentelemetry::KeyValue::new(
                "service.instance.id",
                app.instance.clone(),
            )],
        );
        match held {
            Ok(true) => {}
            Ok(false) => {
                tokio::select! {
                    _ = tokio::time::sleep(ttl / 3) => continue,
                    _ = draining.wait() => return,
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot read the consumer lease");
                tokio::select! {
                    _ = tokio::time::sleep(ttl / 3) => continue,
                    _ = draining.wait() => return,
                }
            }
        }
        match follow(&app, &mut draining, &mut backoff).await {
            Ok(()) => {}
            Err(err) => tracing::warn!(%err, "event stream interrupted; reconnecting"),
        }
        let pause = backoff.next();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = draining.wait() => return,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("ticketing: {0}")]
    Status(#[from] tonic::Status),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("another replica took over the consumer lease")]
    LeaseLost,
    #[error("account {0} was resynchronised from a snapshot: its cursor was outside the log")]
    Resynchronised(String),
}

async fn follow(
    app: &App,
    draining: &mut Draining,
    backoff: &mut Backoff,
) -> Result<(), FollowError> {
    let stored = queries::cursors(&app.db).await?;
    let mut request = tonic::Request::new(tpb::WatchEventsRequest {
        cursors: stored
            .iter()
            .map(|c| tpb::AccountCursor {
                account_id: c.account_id.clone(),
                after_sequence: c.last_sequence,
                // Ticketing checks its event at the cursor was written
                // then: a restored or replaced log has another one there.
                last_event_time: (c.last_event_time > 0)
                    .then(|| kit::time::to_timestamp(c.last_event_time)),
            })
            .collect(),
        all_accounts: true,
    });
    kit::identity::Caller::default().forward(&app.credentials, request.metadata_mut());
    // A stream has no deadline: it follows the log for as long as it lasts.
    let opened = app.ticketing.call(
        request,
        None,
        |mut c, r| async move { c.watch_events(r).await },
    );
    let mut stream = match opened.await {
        Ok(stream) => stream.into_inner(),
        Err(status) => return Err(resync_if_expired(app, status).await),
    };
    tracing::info!(ticketing = %app.config.ticketing_url, "following ticketing events");
    backoff.reset();
    // Where each account stands: the guard of the next cursor move, and
    // the lag metric (head − applied).
    let mut cursors = Cursors::new(stored.into_iter().map(|c| (c.account_id, c.last_sequence)));
    let mut renew = tokio::time::interval(app.config.lease_ttl / 3);
    let mut ack = tokio::time::interval(ACK_INTERVAL);
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            _ = renew.tick() => {
                if !lease::acquire(&app.db, LEASE, &app.instance, app.config.lease_ttl).await? {
                    return Err(FollowError::LeaseLost);
                }
                continue;
            }
            _ = ack.tick() => {
                acknowledge(app).await;
                continue;
            }
            _ = draining.wait() => return Ok(()),
        };
        let Some(message) = message else {
            return Ok(());
        };
        let message = match message {
            Ok(message) => message,
            Err(status) => return Err(resync_if_expired(app, status).await),
        };
        match message.kind {
            Some(tpb::watch_events_response::Kind::Event(event)) => {
                // Whatever else has already arrived goes into the same
                // transaction: under load the consumer keeps up by
                // committing once per batch instead of once per event.
                let mut batch = vec![event];
                let mut interrupted = None;
                while batch.len() < APPLY_BATCH {
                    match tokio::time::timeout(Duration::ZERO, stream.next()).await {
                        Ok(Some(Ok(tpb::WatchEventsResponse {
                            kind: Some(tpb::watch_events_response::Kind::Event(event)),
                        }))) => batch.push(event),
                        Ok(Some(Err(status))) => {
                            interrupted = Some(status);
                            break;
                        }
                        // Progress reports carry nothing to apply; the next
                        // one refreshes the lag gauge.
                        Ok(Some(Ok(_))) | Ok(None) | Err(_) => break,
                    }
                }
                let outcome = apply_events(app, &batch, &mut cursors).await?;
                metrics::get().applied(&batch);
                tracing::debug!(events = batch.len(), ?outcome, "applied");
                if let Some(status) = interrupted {
                    return Err(resync_if_expired(app, status).await);
                }
            }
            Some(tpb::watch_events_response::Kind::Progress(progress)) => {
                let lag: i64 = progress
                    .heads
                    .iter()
                    .map(|h| (h.after_sequence - cursors.position(&h.account_id)).max(0))
                    .sum();
                metrics::get()
                    .lag
                    .record(u64::try_from(lag).unwrap_or(0), &[]);
                if lag == 0 {
                    metrics::get().lag_time.record(0.0, &[]);
                }
            }
            None => {}
        }
    }
}

/// How often the consumer tells ticketing how far it has applied events.
const ACK_INTERVAL: Duration = Duration::from_secs(2);

/// The name this consumer acknowledges under.
pub const CONSUMER: &str = "inbox";

/// Tells ticketing how far each account's events were applied, so pruning
/// never passes them (best effort: the next tick retries).
async fn acknowledge(app: &App) {
    let cursors = match queries::cursors(&app.db).await {
        Ok(cursors) => cursors,
        Err(err) => {
            tracing::debug!(%err, "cannot read cursors to acknowledge");
            return;
        }
    };
    let mut request = tonic::Request::new(tpb::AcknowledgeEventsRequest {
        consumer: CONSUMER.into(),
        cursors: cursors
            .into_iter()
            .map(|c| tpb::AccountCursor {
                account_id: c.account_id,
                after_sequence: c.last_sequence,
                last_event_time: None,
            })
            .collect(),
    });
    kit::identity::Caller::default().forward(&app.credentials, request.metadata_mut());
    let sent = app.ticketing.call(
        request,
        Some(app.config.ticketing_timeout),
        |mut c, r| async move { c.acknowledge_events(r).await },
    );
    if let Err(status) = sent.await {
        tracing::debug!(code = ?status.code(), "acknowledgement not delivered");
    }
}

/// On CURSOR_EXPIRED or CURSOR_AHEAD, resynchronises that account from a
/// snapshot; either way the stream is then reopened.
async fn resync_if_expired(app: &App, status: tonic::Status) -> FollowError {
    if let Some((account_id, cursor_move)) = super::resync::lost_cursor(&status) {
        match app.resync_account(&account_id, cursor_move).await {
            Ok(_) => return FollowError::Resynchronised(account_id),
            Err(err) => return FollowError::Status(err),
        }
    }
    FollowError::Status(status)
}

/// Most events applied in one transaction.
const APPLY_BATCH: usize = 256;

/// Applies `events` (in stream order, possibly of several accounts) and
/// moves each account's cursor from the value it had to its last event, in
/// one transaction: all of them take effect exactly once, or none do. The
/// batch costs a few statements whatever its size (see `plan`), and only
/// the cursor moves when it can change nothing.
pub async fn apply_events(
    app: &App,
    events: &[tpb::Event],
    cursors: &mut Cursors,
) -> Result<Applied, sea_orm::DbErr> {
    // Each causing call's trace shows the batch that applied its events.
    let mut calls: Vec<tracing::Span> = Vec::new();
    let mut contexts: Vec<&std::collections::BTreeMap<String, String>> = Vec::new();
    for event in events {
        if !contexts.contains(&&event.trace_context) {
            contexts.push(&event.trace_context);
            calls.push(kit::observe::span_from("apply_event", &event.trace_context));
        }
    }
    let span = calls.first().cloned().unwrap_or_else(tracing::Span::none);
    // The statements run once, under the first trace's span: the others
    // link to it, so every trace leads to the transaction that applied it.
    for other in calls.iter().skip(1) {
        kit::observe::link(other, &span);
    }
    async {
        if let Some(outcome) = move_cursors_alone(app, events, cursors).await? {
            return Ok(outcome);
        }
        // A remembered cursor that was not where remembered is forgotten,
        // so the second attempt reads it.
        match apply_in_one_transaction(app, events, cursors).await? {
            Some(outcome) => Ok(outcome),
            None => Ok(apply_in_one_transaction(app, events, cursors)
                .await?
                .unwrap_or(Applied::Fenced)),
        }
    }
    .instrument(span)
    .await
}

/// A batch whose snapshots this process has all applied already and that
/// leaves no directive to apply (the events of calls made through the
/// inbox, applied from their answers) only moves cursors: one guarded
/// statement per account instead of a transaction. `None` when the batch
/// needs the transaction, or a cursor was not where remembered.
async fn move_cursors_alone(
    app: &App,
    events: &[tpb::Event],
    cursors: &mut Cursors,
) -> Result<Option<Applied>, sea_orm::DbErr> {
    let Some(fresh) = cursors.fresh(events) else {
        return Ok(None);
    };
    if fresh.is_empty() {
        return Ok(Some(Applied::Duplicate));
    }
    let mut newest = plan::newest_snapshots(&fresh);
    newest.retain(|n| !app.applied.covers(&n.ticket.id, n.ticket.version));
    if !newest.is_empty() || !plan::steps(&fresh, &newest).is_empty() {
        return Ok(None);
    }
    for (account_id, last) in cursors::last_of_each_account(&fresh) {
        let Some(from) = cursors.get(account_id) else {
            return Ok(None);
        };
        // Accounts are independent here: with no effect to keep atomic,
        // a cursor moved before a later account's guard fails stays moved.
        if !queries::advance_cursor(&app.db, account_id, from, last).await? {
            cursors.forget(account_id);
            return Ok(None);
        }
        cursors.committed(account_id, last.0);
    }
    Ok(Some(Applied::Applied))
}

/// `None` when a remembered cursor had been moved by someone else: nothing
/// was written, and that cursor is forgotten.
async fn apply_in_one_transaction(
    app: &App,
    events: &[tpb::Event],
    cursors: &mut Cursors,
) -> Result<Option<Applied>, sea_orm::DbErr> {
    let txn = app.db.begin().await?;
    let mut accounts: Vec<&str> = Vec::new();
    for event in events {
        if !accounts.contains(&event.account_id.as_str()) {
            accounts.push(&event.account_id);
        }
    }
    let mut fresh: Vec<&tpb::Event> = Vec::new();
    let mut moved: Vec<(&str, i64)> = Vec::new();
    for account_id in accounts {
        let remembered = cursors.get(account_id);
        let cursor = match remembered {
            Some(cursor) => cursor,
            None => queries::cursor_of(&txn, account_id).await?,
        };
        let first = fresh.len();
        fresh.extend(
            events
                .iter()
                .filter(|e| e.account_id == account_id && e.sequence > cursor),
        );
        let (Some(earliest), Some(last)) = (fresh.get(first), fresh.last()) else {
            cursors.committed(account_id, cursor);
            continue;
        };
        if earliest.sequence != cursor + 1 {
            tracing::warn!(
                account_id,
                cursor,
                sequence = earliest.sequence,
                "gap in the event stream"
            );
        }
        let to = (last.sequence, cursors::written_at(last));
        if !queries::advance_cursor(&txn, account_id, cursor, to).await? {
            // Another consumer moved it first: nothing of this batch may stay.
            cursors.forget(account_id);
            return Ok(remembered.is_none().then_some(Applied::Fenced));
        }
        moved.push((account_id, last.sequence));
    }
    if fresh.is_empty() {
        return Ok(Some(Applied::Duplicate));
    }
    let mut newest = plan::newest_snapshots(&fresh);
    // Usually the snapshots of answers the inbox applied a moment ago:
    // known, they cost nothing.
    newest.retain(|n| !app.applied.covers(&n.ticket.id, n.ticket.version));
    let stored =
        queries::upsert_ticket_views(&txn, newest.iter().map(|n| apply::ticket_view_of(n.ticket)))
            .await?;
    for snapshot in &mut newest {
        if stored.contains(&snapshot.ticket.id) {
            snapshot.work = plan::SnapshotWork {
                link: !(snapshot.same_conversations || app.applied.links_cover(snapshot.ticket)),
                move_to_help_desk: snapshot.help_desk,
            };
        }
    }
    let mut log = crate::store::changes::Pending::default();
    for step in plan::steps(&fresh, &newest) {
        match step {
            plan::Step::Apply {
                account_id,
                action,
                ticket_id,
                conversation_ids,
            } => {
                apply::directives(
                    &txn,
                    account_id,
                    action,
                    ticket_id,
                    &conversation_ids,
                    &mut log,
                )
                .await?;
            }
            plan::Step::Purge {
                account_id,
                conversation_id,
            } => {
                apply::purge(&txn, account_id, conversation_id).await?;
            }
        }
    }
    log.append(&txn).await?;
    txn.commit().await?;
    for (account_id, last) in moved {
        cursors.committed(account_id, last);
    }
    for snapshot in &newest {
        app.applied.committed(snapshot.ticket);
    }
    app.changes.notify();
    Ok(Some(Applied::Applied))
}

struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Self {
        Self {
            next: Self::FIRST,
            max,
        }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // The low bits of a UUIDv7 are random.
        let random = uuid::Uuid::now_v7().as_u128() as u64;
        let jitter_ms = random % (base.as_millis() as u64 / 2 + 1);
        base / 2 + Duration::from_millis(jitter_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exactly-once half of the change stream (SPEC §5): a cursor this
    /// consumer remembers but another consumer has since moved guards the
    /// move, so the batch applies nothing, and the stored value is reread.
    #[tokio::test]
    async fn a_remembered_cursor_moved_by_another_consumer_applies_nothing() {
        let file = std::env::temp_dir().join(format!("inbox-consumer-{}.db", kit::new_id()));
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let db = kit::db::open::<crate::store::migration::Migrator>(&url, 1)
            .await
            .expect("open");
        let config = crate::Config::for_database(&url, "http://127.0.0.1:1");
        let app = App::new(db.clone(), db, config).expect("app");
        assert!(
            queries::advance_cursor(&app.db, "a", 0, (5, 0))
                .await
                .expect("store")
        );
        let mut cursors = Cursors::new([("a".to_owned(), 3)]);
        let event = tpb::Event {
            account_id: "a".into(),
            sequence: 4,
            ..Default::default()
        };

        let outcome = apply_events(&app, &[event], &mut cursors)
            .await
            .expect("apply");

        assert_eq!(outcome, Applied::Duplicate);
        assert_eq!(queries::cursor_of(&app.db, "a").await.expect("read"), 5);
        assert_eq!(cursors.get("a"), Some(5));
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(2));
        let waits: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(2)));
        assert!(waits[7] >= Duration::from_secs(1), "{waits:?}");
        backoff.reset();
        assert!(backoff.next() <= Backoff::FIRST);
    }
}
