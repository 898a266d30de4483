//! Drain coordination. One [`Shutdown`] per process; every long-lived piece
//! (the server, each stream, background consumers) holds a [`Draining`] and
//! stops when it flips.

use tokio::sync::watch;

#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn draining(&self) -> Draining {
        Draining(self.tx.subscribe())
    }
}

/// A handle that resolves once the process starts draining.
#[derive(Debug, Clone)]
pub struct Draining(watch::Receiver<bool>);

impl Draining {
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(&mut self) {
        // An error means the Shutdown was dropped: treat it as a drain.
        let _ = self.0.wait_for(|draining| *draining).await;
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
pub struct OwnedTask(Option<tokio::task::JoinHandle<()>>);

impl OwnedTask {
    pub fn spawn(future: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(Some(tokio::spawn(future)))
    }

    /// Waits for the task to finish (it should be draining).
    pub async fn join(mut self, name: &str) {
        if let Some(handle) = self.0.take()
            && let Err(err) = handle.await
        {
            tracing::error!(%err, task = name, "background task failed");
        }
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
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
