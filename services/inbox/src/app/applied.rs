//! The newest version of each ticket whose snapshot this process has seen
//! committed (its view and its links, which one transaction writes). The
//! consumer receives again, as events, the snapshots the inbox applied from
//! ticketing's answers a moment earlier; with this it knows them for no-ops
//! without asking the database. Forgetting is always safe: a forgotten
//! version is simply applied again, which the database turns into a no-op.

use std::{collections::HashMap, sync::Mutex};

/// Tickets remembered at most; past it the memory starts afresh. The events
/// that benefit arrive within milliseconds of the answer.
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct AppliedTickets(Mutex<HashMap<String, i64>>);

impl AppliedTickets {
    /// Call only after the transaction that applied the snapshot committed.
    pub fn committed(&self, ticket_id: &str, version: i64) {
        let Ok(mut seen) = self.0.lock() else { return };
        if seen.len() >= CAPACITY && !seen.contains_key(ticket_id) {
            seen.clear();
        }
        let newest = seen.entry(ticket_id.to_owned()).or_insert(version);
        *newest = (*newest).max(version);
    }

    /// Whether this version of the ticket, or a newer one, is known applied.
    pub fn covers(&self, ticket_id: &str, version: i64) -> bool {
        self.0
            .lock()
            .is_ok_and(|seen| seen.get(ticket_id).is_some_and(|newest| *newest >= version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_newest_committed_version_and_older_ones_only() {
        let applied = AppliedTickets::default();
        assert!(!applied.covers("t", 1));
        applied.committed("t", 3);
        applied.committed("t", 2);
        assert!(applied.covers("t", 1));
        assert!(applied.covers("t", 3));
        assert!(!applied.covers("t", 4), "a newer version must be applied");
        assert!(!applied.covers("u", 1));
    }

    #[test]
    fn past_its_capacity_it_forgets_rather_than_grows() {
        let applied = AppliedTickets::default();
        for n in 0..CAPACITY {
            applied.committed(&format!("t{n}"), 1);
        }
        applied.committed("one more", 1);
        assert!(applied.covers("one more", 1));
        assert!(!applied.covers("t0", 1));
        assert!(applied.0.lock().map(|seen| seen.len()).unwrap_or(0) <= CAPACITY);
    }
}
