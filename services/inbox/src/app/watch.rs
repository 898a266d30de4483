//! WatchConversations: the account's conversation changes after a cursor, in
//! order, then live, for agent UIs. Same shape as ticketing's WatchEvents.

use kit::{ApiError, identity::Caller, shutdown::Draining};
use proto::inbox::v1 as pb;
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::App;
use crate::store::changes;

const BATCH: u64 = 500;
/// Messages buffered per stream; a client that stops reading holds only this.
const BUFFER: usize = 256;

pub type ChangeStream = ReceiverStream<Result<pb::WatchConversationsResponse, Status>>;

pub async fn watch(
    app: App,
    caller: &Caller,
    after: i64,
    draining: Draining,
) -> Result<ChangeStream, ApiError> {
    let account_id = caller.account()?.to_owned();
    if after < 0 {
        return Err(ApiError::invalid("after_sequence", "must not be negative"));
    }
    let head = changes::head(&app.db, &account_id).await?;
    if after > head {
        return Err(ApiError::OutOfRange {
            reason: "CURSOR_AHEAD",
            message: format!("cursor {after} is ahead of the head {head}"),
        });
    }
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(follow(app, account_id, after, tx, draining));
    Ok(ReceiverStream::new(rx))
}

async fn follow(
    app: App,
    account_id: String,
    mut cursor: i64,
    tx: mpsc::Sender<Result<pb::WatchConversationsResponse, Status>>,
    mut draining: Draining,
) {
    let mut signal = app.changes.subscribe();
    let (poll, progress) = (
        app.config.stream_poll_interval,
        app.config.stream_progress_interval,
    );
    let mut last_message = Instant::now();
    loop {
        if draining.is_draining() {
            let _ = tx
                .send(Err(Status::unavailable(
                    "server is draining; reconnect and resume from your cursor",
                )))
                .await;
            return;
        }
        signal.borrow_and_update();
        let batch = match changes::read_after(&app.db, &account_id, cursor, BATCH).await {
            Ok(batch) => batch,
            Err(err) => {
                let _ = tx.send(Err(Status::from(ApiError::from(err)))).await;
                return;
            }
        };
        let full = batch.len() as u64 == BATCH;
        for change in batch {
            cursor = change.sequence;
            let message = pb::WatchConversationsResponse {
                kind: Some(pb::watch_conversations_response::Kind::Change(change)),
            };
            if tx.send(Ok(message)).await.is_err() {
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
            if tx.send(Ok(message)).await.is_err() {
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
