//! Wakes stream watchers after a commit. A counter in a watch channel: a
//! watcher that was busy when it changed still sees the change, so no wake-up
//! is lost; watchers also poll, for commits made by other replicas.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone)]
pub struct CommitSignal(Arc<watch::Sender<u64>>);

impl Default for CommitSignal {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl CommitSignal {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
