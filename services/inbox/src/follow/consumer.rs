//! Follows ticketing's event stream: holds the consumer lease, opens the
//! stream from the committed cursors, gathers what has arrived into batches
//! (`batch` applies each exactly once), acknowledges progress so pruning
//! never passes it, and resynchronises an account whose cursor fell outside
//! ticketing's log. Never gives up on ticketing: it backs off and retries.

use std::time::Duration;

use kit::shutdown::Draining;
use proto::ticketing::v1 as tpb;
use tokio_stream::StreamExt;

use super::{
    batch::{APPLY_BATCH, apply_events},
    cursors::Cursors,
    metrics,
};
use crate::{
    state::App,
    store::{lease, queries},
};

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
