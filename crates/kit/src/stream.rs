//! Server-stream plumbing shared by WatchEvents and WatchConversations: a
//! bounded buffer per stream, and a way to end a stream with a status at
//! once, even when its buffer is full (a stalled client, or a drain).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::Status;

/// How many streams a process serves at once; one more is refused with
/// RESOURCE_EXHAUSTED (streams outlive calls, so the call limit can't hold them).
#[derive(Clone)]
pub struct StreamLimit {
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    max: usize,
}

impl StreamLimit {
    pub fn new(max: usize) -> Self {
        Self {
            open: Default::default(),
            max,
        }
    }

    /// Exports `rpc.server.active_streams`: the streams of `method` (RPC
    /// conventions' `service/method` split) this process serves now.
    pub fn observe(
        &self,
        meter: &'static str,
        rpc_service: &'static str,
        rpc_method: &'static str,
    ) {
        let open = self.open.clone();
        let _gauge = opentelemetry::global::meter(meter)
            .i64_observable_up_down_counter("rpc.server.active_streams")
            .with_unit("{stream}")
            .with_description("server streams open in this process")
            .with_callback(move |observer| {
                let count = open.load(std::sync::atomic::Ordering::Relaxed);
                observer.observe(
                    i64::try_from(count).unwrap_or(i64::MAX),
                    &[
                        opentelemetry::KeyValue::new("rpc.system", "grpc"),
                        opentelemetry::KeyValue::new("rpc.service", rpc_service),
                        opentelemetry::KeyValue::new("rpc.method", rpc_method),
                    ],
                );
            })
            .build();
    }

    /// A place for one more stream, held until its sender is dropped.
    pub fn admit(&self) -> Result<StreamSlot, Status> {
        use std::sync::atomic::Ordering;
        let previous = self.open.fetch_add(1, Ordering::AcqRel);
        if previous >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Status::resource_exhausted(format!(
                "this server already serves {} streams; retry later or elsewhere",
                self.max
            )));
        }
        Ok(StreamSlot(self.open.clone()))
    }
}

/// One admitted stream; frees its place when dropped.
pub struct StreamSlot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The sending half, owned by the task that produces the stream.
pub struct StreamSender<T> {
    tx: mpsc::Sender<Result<T, Status>>,
    end: Option<oneshot::Sender<Status>>,
    stall_limit: Duration,
    _slot: Option<StreamSlot>,
}

/// The response stream handed to tonic.
pub struct ResponseStream<T> {
    rx: ReceiverStream<Result<T, Status>>,
    end: oneshot::Receiver<Status>,
    done: bool,
}

/// A stream that buffers at most `buffer` messages and gives a client that
/// reads nothing for `stall_limit` a RESOURCE_EXHAUSTED status, so a stalled
/// consumer costs bounded memory and learns to resume from its cursor.
pub fn channel<T>(buffer: usize, stall_limit: Duration) -> (StreamSender<T>, ResponseStream<T>) {
    channel_in(None, buffer, stall_limit)
}

/// [`channel`], counted against `slot`'s limit for as long as it produces.
pub fn channel_in<T>(
    slot: Option<StreamSlot>,
    buffer: usize,
    stall_limit: Duration,
) -> (StreamSender<T>, ResponseStream<T>) {
    let (tx, rx) = mpsc::channel(buffer);
    let (end_tx, end_rx) = oneshot::channel();
    (
        StreamSender {
            tx,
            end: Some(end_tx),
            stall_limit,
            _slot: slot,
        },
        ResponseStream {
            rx: ReceiverStream::new(rx),
            end: end_rx,
            done: false,
        },
    )
}

impl<T> StreamSender<T> {
    /// Sends one message. `false` means the stream is over (the client left,
    /// or stalled and was ended): stop producing.
    pub async fn send(&mut self, message: T) -> bool {
        match self.tx.send_timeout(Ok(message), self.stall_limit).await {
            Ok(()) => true,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!(stall_limit = ?self.stall_limit, "stream consumer stalled; ending its stream");
                self.end(Status::resource_exhausted(
                    "the stream's consumer stopped reading; reconnect and resume from your cursor",
                ));
                false
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
        }
    }

    /// Ends the stream with `status`, ahead of anything still buffered.
    pub fn end(&mut self, status: Status) {
        if let Some(end) = self.end.take() {
            let _ = end.send(status);
        }
    }

    /// Resolves when the client has gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

impl<T> Stream for ResponseStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(Ok(status)) = Pin::new(&mut self.end).poll(cx) {
            self.done = true;
            return Poll::Ready(Some(Err(status)));
        }
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[test]
    fn streams_beyond_the_limit_are_refused_until_one_ends() {
        let limit = StreamLimit::new(2);
        let first = limit.admit().expect("first");
        let _second = limit.admit().expect("second");
        assert_eq!(
            limit.admit().err().map(|s| s.code()),
            Some(tonic::Code::ResourceExhausted)
        );
        drop(first);
        assert!(limit.admit().is_ok());
    }

    #[tokio::test]
    async fn a_stalled_consumer_is_ended_with_a_status_ahead_of_its_backlog() {
        let (mut tx, mut rx) = channel::<u32>(2, Duration::from_millis(20));
        assert!(tx.send(1).await);
        assert!(tx.send(2).await);
        assert!(!tx.send(3).await, "the third message finds the buffer full");
        let first = rx.next().await.expect("an item");
        assert_eq!(first.unwrap_err().code(), tonic::Code::ResourceExhausted);
        assert!(rx.next().await.is_none());
    }
}

/// How a service's server stream (WatchEvents, WatchConversations) paces
/// itself: `<SERVICE>_STREAM_POLL_INTERVAL`, `_PROGRESS_INTERVAL` and
/// `_STALL_LIMIT`.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// How often a watcher looks for changes when no commit woke it (made
    /// by another replica, or a wake-up lost).
    pub poll_interval: Duration,
    /// How often an idle watcher hears the current head.
    pub progress_interval: Duration,
    /// How long a stream may wait for a consumer that stopped reading
    /// before ending it with RESOURCE_EXHAUSTED.
    pub stall_limit: Duration,
}

impl StreamConfig {
    /// The settings under `service`'s prefix (`INBOX`, `TICKETING`).
    pub fn from_source(
        source: &dyn crate::config::Source,
        service: &str,
    ) -> Result<Self, crate::config::ConfigError> {
        let setting = |name: &str, default: Duration| {
            crate::config::duration_or(source, &format!("{service}_STREAM_{name}"), default)
        };
        Ok(Self {
            poll_interval: setting("POLL_INTERVAL", Duration::from_secs(1))?,
            progress_interval: setting("PROGRESS_INTERVAL", Duration::from_secs(5))?,
            stall_limit: setting("STALL_LIMIT", Duration::from_secs(30))?,
        })
    }
}
