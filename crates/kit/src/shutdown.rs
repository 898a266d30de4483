//! Drain coordination. One [`Shutdown`] per process; every long-lived piece
//! (the server, each stream, background consumers) holds a [`Draining`] and
//! stops when it flips.

use tokio_util::sync::CancellationToken;

/// tokio-util's cancellation token under the names the services use: a
/// drain is a cancellation that every clone sees.
#[derive(Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn draining(&self) -> Draining {
        Draining(self.token.clone())
    }
}

/// Dropping the `Shutdown` drains too, so nothing outlives its owner
/// waiting for a signal that can no longer come.
impl Drop for Shutdown {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// A handle that resolves once the process starts draining.
#[derive(Debug, Clone)]
pub struct Draining(CancellationToken);

impl Draining {
    pub fn is_draining(&self) -> bool {
        self.0.is_cancelled()
    }

    /// `&mut` for the callers written against the earlier watch channel.
    pub async fn wait(&mut self) {
        self.0.cancelled().await;
    }
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (a terminal's Ctrl-C).
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only SIGINT drains");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A background task tied to its owner: aborted if the owner is dropped
/// before joining it (so a service that is torn down leaves no task behind).
/// tokio-util's `AbortOnDropHandle`, plus a join that logs a panic.
pub struct OwnedTask(tokio_util::task::AbortOnDropHandle<()>);

impl OwnedTask {
    pub fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            future,
        )))
    }

    /// Waits for the task to finish (it should be draining).
    pub async fn join(self, name: &str) {
        if let Err(err) = self.0.await {
            tracing::error!(%err, task = name, "background task failed");
        }
    }
}

/// Runs `round` every `interval` until draining starts (background upkeep
/// such as purging expired trash).
pub async fn every<F, Fut>(interval: std::time::Duration, mut draining: Draining, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = draining.wait() => return,
        }
        round().await;
    }
}
