//! WatchEvents: every event after the caller's cursors, in order, then live.
//! A watcher wakes on the in-process commit signal and also polls, so it
//! sees commits made by other replicas sharing the database.

use std::{collections::BTreeMap, time::Duration};

use kit::stream::{ResponseStream, StreamSender};
use kit::{ApiError, identity::Caller, shutdown::Draining};
use proto::ticketing::v1 as pb;
use tokio::time::Instant;
use tonic::Status;

use crate::{
    app::App,
    store::{event_head, events},
};

/// Events read per query; a consumer far behind catches up in batches.
const BATCH: u64 = 500;
/// Messages buffered per stream before the watcher waits for the client.
const BUFFER: usize = 256;
/// Least time between two reads of a watcher that commits keep waking.
/// Under load a commit ends every millisecond or so; reading at most once
/// per 10 ms sends the same events in fewer, larger reads (and the consumer
/// applies them in fewer transactions), for at most 10 ms of latency.
const READ_SPACING: Duration = Duration::from_millis(10);

pub type EventStream = ResponseStream<pb::WatchEventsResponse>;

/// Which accounts a watch follows.
#[derive(Debug, Clone)]
enum Scope {
    /// Only these (a user's own account, or a service's explicit list).
    Accounts(Vec<String>),
    /// Every account, including ones created later (internal services).
    All,
}

pub async fn watch(
    app: App,
    caller: &Caller,
    request: pb::WatchEventsRequest,
    draining: Draining,
) -> Result<EventStream, ApiError> {
    let mut cursors = BTreeMap::new();
    let mut written_at = BTreeMap::new();
    for (i, cursor) in request.cursors.iter().enumerate() {
        let field = format!("cursors[{i}]");
        let account = kit::validate::id(&cursor.account_id, &format!("{field}.account_id"))?;
        if cursor.after_sequence < 0 {
            return Err(ApiError::invalid(
                format!("{field}.after_sequence"),
                "must not be negative",
            ));
        }
        if !caller.is_service() && !crate::app::same_account(caller, &account) {
            return Err(ApiError::PermissionDenied(format!(
                "{field}: not your account"
            )));
        }
        if let Some(time) = &cursor.last_event_time {
            let micros = kit::time::from_timestamp(time).ok_or_else(|| {
                ApiError::invalid(format!("{field}.last_event_time"), "is not a valid time")
            })?;
            written_at.insert(account.clone(), micros);
        }
        cursors.insert(account, cursor.after_sequence);
    }
    let scope = match (request.all_accounts, caller.is_service()) {
        (true, true) => Scope::All,
        (true, false) => Scope::Accounts(vec![caller.account()?.to_owned()]),
        (false, _) if cursors.is_empty() => {
            return Err(ApiError::invalid(
                "cursors",
                "name at least one account, or set all_accounts",
            ));
        }
        (false, _) => Scope::Accounts(cursors.keys().cloned().collect()),
    };
    if let Scope::Accounts(accounts) = &scope {
        for account in accounts {
            cursors.entry(account.clone()).or_insert(0);
        }
    }
    let rows = read_heads(&app, &scope).await?;
    let heads: BTreeMap<String, i64> = rows
        .iter()
        .map(|h| (h.account_id.clone(), h.last_sequence))
        .collect();
    for (account, after) in &cursors {
        let head = heads.get(account).copied().unwrap_or(0);
        if *after > head {
            return Err(ApiError::OutOfRange {
                reason: "CURSOR_AHEAD",
                message: format!(
                    "cursor {after} of account {account} is ahead of the log's head {head}"
                ),
                metadata: vec![
                    ("account_id".into(), account.clone()),
                    ("head".into(), head.to_string()),
                ],
            });
        }
    }
    for row in &rows {
        let after = cursors.get(&row.account_id).copied().unwrap_or(0);
        if after < row.pruned_through {
            return Err(expired(&row.account_id, after, row.pruned_through));
        }
    }
    // The consumer's cursor names an event this log must still have, as
    // it was written: a log restored from an older backup, or replaced,
    // may have passed the cursor's number again with other events.
    for (account, expected) in &written_at {
        let after = cursors.get(account).copied().unwrap_or(0);
        if after == 0 {
            continue;
        }
        let found = events::written_at(&app.stream_db, account, after).await?;
        if found != Some(*expected) {
            let head = heads.get(account).copied().unwrap_or(0);
            return Err(ApiError::OutOfRange {
                reason: "LOG_DIVERGED",
                message: format!(
                    "event {after} of account {account} is not the one this consumer applied: \
                     the log was restored or replaced; resynchronise"
                ),
                metadata: vec![
                    ("account_id".into(), account.clone()),
                    ("head".into(), head.to_string()),
                ],
            });
        }
    }
    let slot = app
        .streams
        .admit()
        .map_err(|status| ApiError::Upstream(Box::new(status)))?;
    let (tx, rx) = kit::stream::channel_in(Some(slot), BUFFER, app.config.stream.stall_limit);
    let watcher = Watcher {
        app,
        scope,
        cursors,
        tx,
        draining,
    };
    tokio::spawn(watcher.run());
    Ok(rx)
}

async fn read_heads(app: &App, scope: &Scope) -> Result<Vec<event_head::Model>, sea_orm::DbErr> {
    match scope {
        Scope::All => events::head_rows(&app.stream_db, None).await,
        Scope::Accounts(accounts) => events::head_rows(&app.stream_db, Some(accounts)).await,
    }
}

/// A cursor before the oldest retained event: the consumer must resync from
/// a snapshot, then resume from `pruned_through`.
fn expired(account_id: &str, after: i64, pruned_through: i64) -> ApiError {
    ApiError::OutOfRange {
        reason: "CURSOR_EXPIRED",
        message: format!(
            "events of account {account_id} up to {pruned_through} were pruned; cursor {after} has expired: \
             resynchronise from a snapshot and resume from {pruned_through}"
        ),
        metadata: vec![
            ("account_id".into(), account_id.to_owned()),
            ("pruned_through".into(), pruned_through.to_string()),
        ],
    }
}

struct Watcher {
    app: App,
    scope: Scope,
    cursors: BTreeMap<String, i64>,
    tx: StreamSender<pb::WatchEventsResponse>,
    draining: Draining,
}

/// Why a watcher stopped early.
enum Stop {
    ClientGone,
    Failed(Status),
}

impl Watcher {
    async fn run(mut self) {
        match self.follow().await {
            Stop::ClientGone => tracing::debug!("event watcher stopped: client gone"),
            Stop::Failed(status) => self.tx.end(status),
        }
    }

    async fn follow(&mut self) -> Stop {
        let stream_config = self.app.config.stream.clone();
        let mut signal = self.app.signal.subscribe();
        let mut last_message = Instant::now();
        let mut last_read: Option<Instant> = None;
        loop {
            if let Some(at) = last_read {
                tokio::time::sleep_until(at + READ_SPACING).await;
            }
            last_read = Some(Instant::now());
            if self.draining.is_draining() {
                return Stop::Failed(Status::unavailable(
                    "server is draining; reconnect and resume from your cursor",
                ));
            }
            // Mark the signal seen before reading, so a commit after the
            // read still wakes the wait below.
            signal.borrow_and_update();
            let heads = match read_heads(&self.app, &self.scope).await {
                Ok(heads) => heads,
                Err(err) => return Stop::Failed(Status::from(ApiError::from(err))),
            };
            let mut behind = false;
            for row in &heads {
                let (account, head) = (&row.account_id, &row.last_sequence);
                let after = *self.cursors.entry(account.clone()).or_insert(0);
                if *head <= after {
                    continue;
                }
                // Pruned under a watcher that fell that far behind.
                if after < row.pruned_through {
                    return Stop::Failed(expired(account, after, row.pruned_through).into());
                }
                let batch =
                    match events::read_after(&self.app.stream_db, account, after, BATCH).await {
                        Ok(batch) => batch,
                        Err(err) => return Stop::Failed(Status::from(ApiError::from(err))),
                    };
                behind |= batch.len() as u64 == BATCH;
                for event in batch {
                    self.cursors.insert(account.clone(), event.sequence);
                    let message = pb::WatchEventsResponse {
                        kind: Some(pb::watch_events_response::Kind::Event(event)),
                    };
                    if !self.tx.send(message).await {
                        return Stop::ClientGone;
                    }
                    last_message = Instant::now();
                }
            }
            if behind {
                continue;
            }
            if last_message.elapsed() >= stream_config.progress_interval {
                let progress = pb::Progress {
                    heads: heads
                        .iter()
                        .map(|row| pb::AccountCursor {
                            last_event_time: None,
                            account_id: row.account_id.clone(),
                            after_sequence: row.last_sequence,
                        })
                        .collect(),
                };
                let message = pb::WatchEventsResponse {
                    kind: Some(pb::watch_events_response::Kind::Progress(progress)),
                };
                if !self.tx.send(message).await {
                    return Stop::ClientGone;
                }
                last_message = Instant::now();
            }
            let until_progress = stream_config
                .progress_interval
                .saturating_sub(last_message.elapsed())
                .max(Duration::from_millis(10));
            tokio::select! {
                _ = signal.changed() => {}
                _ = tokio::time::sleep(stream_config.poll_interval.min(until_progress)) => {}
                _ = self.draining.wait() => {}
                _ = self.tx.closed() => return Stop::ClientGone,
            }
        }
    }
}
