//! The newest version of each ticket whose snapshot this process has seen
//! committed (its view and its links, which one transaction writes). The
//! consumer receives again, as events, the snapshots the inbox applied from
//! ticketing's answers a moment earlier; with this it knows them for no-ops
//! without asking the database. Forgetting is always safe: a forgotten
//! version is simply applied again, which the database turns into a no-op.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
};

use proto::ticketing::v1 as tpb;

/// Tickets remembered at most; past it the memory starts afresh. The events
/// that benefit arrive within milliseconds of the answer.
const CAPACITY: usize = 16_384;

/// The newest version seen and a fingerprint of its set of conversations.
type Seen = (i64, u64);

#[derive(Default)]
pub struct AppliedTickets(Mutex<HashMap<String, Seen>>);

impl AppliedTickets {
    /// Call only after the transaction that applied the snapshot committed.
    pub fn committed(&self, ticket: &tpb::Ticket) {
        let Ok(mut seen) = self.0.lock() else { return };
        if seen.len() >= CAPACITY && !seen.contains_key(&ticket.id) {
            seen.clear();
        }
        let entry = (ticket.version, fingerprint(&ticket.conversation_ids));
        let newest = seen.entry(ticket.id.clone()).or_insert(entry);
        if ticket.version > newest.0 {
            *newest = entry;
        }
    }

    /// Whether this version of the ticket, or a newer one, is known applied.
    pub fn covers(&self, ticket_id: &str, version: i64) -> bool {
        self.0.lock().is_ok_and(|seen| {
            seen.get(ticket_id)
                .is_some_and(|newest| newest.0 >= version)
        })
    }

    /// Whether an applied version of the ticket had the same conversations
    /// as `ticket`: then every one of them is linked already, as links are
    /// made with the snapshot and never undone (R2).
    pub fn links_cover(&self, ticket: &tpb::Ticket) -> bool {
        let wanted = fingerprint(&ticket.conversation_ids);
        self.0.lock().is_ok_and(|seen| {
            seen.get(&ticket.id)
                .is_some_and(|newest| newest.1 == wanted)
        })
    }
}

fn fingerprint(conversation_ids: &[String]) -> u64 {
    let mut sorted: Vec<&String> = conversation_ids.iter().collect();
    sorted.sort_unstable();
    let mut hasher = DefaultHasher::new();
    sorted.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(id: &str, version: i64, conversations: &[&str]) -> tpb::Ticket {
        tpb::Ticket {
            id: id.into(),
            version,
            conversation_ids: conversations.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn links_are_known_only_for_the_same_conversations_as_the_newest_applied() {
        let applied = AppliedTickets::default();
        assert!(!applied.links_cover(&ticket("t", 2, &["a", "b"])));
        applied.committed(&ticket("t", 1, &["a", "b"]));
        assert!(
            applied.links_cover(&ticket("t", 2, &["b", "a"])),
            "order does not matter"
        );
        assert!(
            !applied.links_cover(&ticket("t", 3, &["a", "b", "c"])),
            "a new conversation"
        );
        applied.committed(&ticket("t", 3, &["a", "b", "c"]));
        applied.committed(&ticket("t", 2, &["a", "b"]));
        assert!(
            applied.links_cover(&ticket("t", 4, &["a", "b", "c"])),
            "an older one does not replace it"
        );
    }

    #[test]
    fn covers_the_newest_committed_version_and_older_ones_only() {
        let applied = AppliedTickets::default();
        assert!(!applied.covers("t", 1));
        applied.committed(&ticket("t", 3, &["a"]));
        applied.committed(&ticket("t", 2, &["a"]));
        assert!(applied.covers("t", 1));
        assert!(applied.covers("t", 3));
        assert!(!applied.covers("t", 4), "a newer version must be applied");
        assert!(!applied.covers("u", 1));
    }

    #[test]
    fn past_its_capacity_it_forgets_rather_than_grows() {
        let applied = AppliedTickets::default();
        for n in 0..CAPACITY {
            applied.committed(&ticket(&format!("t{n}"), 1, &[]));
        }
        applied.committed(&ticket("one more", 1, &[]));
        assert!(applied.covers("one more", 1));
        assert!(!applied.covers("t0", 1));
        assert!(applied.0.lock().map(|seen| seen.len()).unwrap_or(0) <= CAPACITY);
    }
}
