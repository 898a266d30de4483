//! Wakes stream watchers after a commit. A counter in a watch channel: a
//! watcher that was busy when it changed still sees the change, so no wake-up
//! is lost; watchers also poll, for commits made by other replicas.
//!
//! A commit of this process also asks for an announcement to other replicas
//! (`kit::db::announce_commits`). Requests made while one is on its way fold
//! into the next, so a burst of commits costs one or two announcements, and
//! no data transaction carries a NOTIFY (see docs/decisions.md).
//!
//! Each signal has an origin, sent as the announcement's payload, so that a
//! replica does not wake its own watchers a second time when its own
//! announcement comes back from the database.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

#[derive(Clone)]
pub struct CommitSignal {
    local: Arc<watch::Sender<u64>>,
    announce: Arc<Notify>,
    origin: Arc<str>,
}

impl Default for CommitSignal {
    fn default() -> Self {
        Self {
            local: Arc::new(watch::channel(0).0),
            announce: Arc::new(Notify::new()),
            // Letters and digits only: it goes into a NOTIFY as a literal.
            origin: uuid::Uuid::now_v7().simple().to_string().into(),
        }
    }
}

impl CommitSignal {
    /// This process committed: wakes its watchers and asks for the commit
    /// to be announced to other replicas.
    pub fn notify(&self) {
        self.wake();
        self.announce.notify_one();
    }

    /// Another replica committed (heard through the database): wakes this
    /// process's watchers only, so announcements never echo.
    pub fn wake(&self) {
        self.local.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.local.subscribe()
    }

    /// Waits until a commit asks to be announced; at most one request is
    /// kept, however many commits asked.
    pub async fn announcement_wanted(&self) {
        self.announce.notified().await;
    }

    /// Names this signal's announcements (one per service instance).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_announces_under_its_own_literal_safe_origin() {
        let (a, b) = (CommitSignal::default(), CommitSignal::default());
        assert_ne!(a.origin(), b.origin());
        assert_eq!(a.origin(), a.clone().origin());
        assert!(a.origin().bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
