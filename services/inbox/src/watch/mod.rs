//! WatchConversations: the account's conversation changes after a cursor, in
//! order, then live, for agent UIs. Same shape as ticketing's WatchEvents.

use kit::stream::{ResponseStream, StreamSender};
use kit::{ApiError, identity::Caller, shutdown::Draining};
use proto::inbox::v1 as pb;
use std::sync::Arc;
use tokio::time::Instant;
use tonic::Status;

use crate::{state::App, store::changes};

pub mod tail;

use tail::Tails;

const BATCH: u64 = 500;
/// Messages buffered per stream; a client that stops reading holds only this.
const BUFFER: usize = 256;

pub type ChangeStream = ResponseStream<pb::WatchConversationsResponse>;

pub async fn watch(
    app: App,
    tails: Arc<Tails>,
    caller: &Caller,
    after: i64,
    draining: Draining,
) -> Result<ChangeStream, ApiError> {
    let account_id = caller.account()?.to_owned();
    if after < 0 {
        return Err(ApiError::invalid("after_sequence", "must not be negative"));
    }
    let head = changes::head(&app.stream_db, &account_id).await?;
    if after > head {
        return Err(ApiError::OutOfRange {
            reason: "CURSOR_AHEAD",
            message: format!("cursor {after} is ahead of the head {head}"),
            metadata: vec![("head".into(), head.to_string())],
        });
    }
    let slot = app
        .streams
        .admit()
        .map_err(|status| ApiError::Upstream(Box::new(status)))?;
    let (tx, rx) = kit::stream::channel_in(Some(slot), BUFFER, app.config.stream.stall_limit);
    tokio::spawn(follow(app, tails, account_id, after, tx, draining));
    Ok(rx)
}

async fn follow(
    app: App,
    tails: Arc<Tails>,
    account_id: String,
    mut cursor: i64,
    mut tx: StreamSender<pb::WatchConversationsResponse>,
    mut draining: Draining,
) {
    let mut signal = app.changes.subscribe();
    let shared_tail = tails.join(&account_id);
    let (poll, progress) = (
        app.config.stream.poll_interval,
        app.config.stream.progress_interval,
    );
    let mut last_message = Instant::now();
    loop {
        if draining.is_draining() {
            tx.end(Status::unavailable(
                "server is draining; reconnect and resume from your cursor",
            ));
            return;
        }
        let seen = *signal.borrow_and_update();
        let read = tail::read_after(
            &app.stream_db,
            &shared_tail,
            &account_id,
            cursor,
            BATCH,
            seen,
            poll,
        );
        let batch = match read.await {
            Ok(batch) => batch,
            Err(err) => {
                tx.end(Status::from(ApiError::from(err)));
                return;
            }
        };
        let full = batch.len() as u64 == BATCH;
        for change in batch {
            cursor = change.sequence;
            let message = pb::WatchConversationsResponse {
                kind: Some(pb::watch_conversations_response::Kind::Change(change)),
            };
            if !tx.send(message).await {
                return;
            }
            last_message = Instant::now();
        }
        if full {
            continue;
        }
        if last_message.elapsed() >= progress {
            let message = pb::WatchConversationsResponse {
                kind: Some(pb::watch_conversations_response::Kind::HeadSequence(cursor)),
            };
            if !tx.send(message).await {
                return;
            }
            last_message = Instant::now();
        }
        let until_progress = progress.saturating_sub(last_message.elapsed());
        tokio::select! {
            _ = signal.changed() => {}
            _ = tokio::time::sleep(poll.min(until_progress).max(std::time::Duration::from_millis(10))) => {}
            _ = draining.wait() => {}
            _ = tx.closed() => return,
        }
    }
}
