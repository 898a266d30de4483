//! What the consumer knows of its own cursors. Every batch used to open
//! with a read of each account's cursor; but the consumer holding the lease
//! is the only writer of its cursors while it holds it, so the value it
//! last committed is what the read would return. Cursors only move forward
//! (a guarded move, or a resync's raise), so a remembered value is never
//! ahead of the stored one: a move guarded on it either succeeds or finds
//! that someone else moved the cursor, and the consumer reads it again.

use std::collections::HashMap;

use proto::ticketing::v1 as tpb;

/// Each account's cursor as this consumer last read or committed it.
#[derive(Debug, Default)]
pub struct Cursors(HashMap<String, i64>);

impl Cursors {
    pub fn new(known: impl IntoIterator<Item = (String, i64)>) -> Self {
        Self(known.into_iter().collect())
    }

    /// The remembered cursor; `None` when the account's must be read (an
    /// account never seen, or one whose cursor row may not exist yet).
    pub fn get(&self, account_id: &str) -> Option<i64> {
        self.0.get(account_id).copied().filter(|c| *c > 0)
    }

    /// The events after each account's remembered cursor, in stream order,
    /// or `None` when some account's cursor is not known.
    pub fn fresh<'e>(&self, events: &'e [tpb::Event]) -> Option<Vec<&'e tpb::Event>> {
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            if event.sequence > self.get(&event.account_id)? {
                fresh.push(event);
            }
        }
        Some(fresh)
    }

    pub fn committed(&mut self, account_id: &str, sequence: i64) {
        match self.0.get_mut(account_id) {
            Some(cursor) => *cursor = (*cursor).max(sequence),
            None => {
                self.0.insert(account_id.to_owned(), sequence);
            }
        }
    }

    /// Someone else moved the cursor: read it again next time.
    pub fn forget(&mut self, account_id: &str) {
        self.0.remove(account_id);
    }

    /// How far the account's events are applied, as far as known here
    /// (for the lag metric).
    pub fn position(&self, account_id: &str) -> i64 {
        self.0.get(account_id).copied().unwrap_or(0)
    }
}

/// The last event of each account in `events` (its sequence and when it
/// was written), accounts in order of first appearance.
pub fn last_of_each_account<'e>(events: &[&'e tpb::Event]) -> Vec<(&'e str, (i64, i64))> {
    let mut last: Vec<(&'e str, (i64, i64))> = Vec::new();
    for event in events {
        let this = (event.sequence, written_at(event));
        match last.iter_mut().find(|(a, _)| *a == event.account_id) {
            Some(entry) => entry.1 = entry.1.max(this),
            None => last.push((&event.account_id, this)),
        }
    }
    last
}

/// When ticketing wrote `event` (µs), or 0 if it does not say.
pub fn written_at(event: &tpb::Event) -> i64 {
    event
        .create_time
        .as_ref()
        .and_then(kit::time::from_timestamp)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(account_id: &str, sequence: i64) -> tpb::Event {
        tpb::Event {
            account_id: account_id.into(),
            sequence,
            ..Default::default()
        }
    }

    #[test]
    fn fresh_events_are_those_after_each_accounts_cursor() {
        let cursors = Cursors::new([("a".to_owned(), 5), ("b".to_owned(), 2)]);
        let events = [event("a", 5), event("b", 3), event("a", 6)];
        let fresh = cursors.fresh(&events).expect("both known");
        let sequences: Vec<_> = fresh
            .iter()
            .map(|e| (e.account_id.as_str(), e.sequence))
            .collect();
        assert_eq!(sequences, [("b", 3), ("a", 6)]);
    }

    #[test]
    fn an_unknown_or_unstored_cursor_must_be_read() {
        let cursors = Cursors::new([("a".to_owned(), 0)]);
        assert!(cursors.fresh(&[event("a", 1)]).is_none(), "0: maybe no row");
        assert!(cursors.fresh(&[event("b", 1)]).is_none(), "never seen");
    }

    #[test]
    fn a_commit_never_moves_a_cursor_back_and_forgetting_forces_a_read() {
        let mut cursors = Cursors::new([("a".to_owned(), 9)]);
        cursors.committed("a", 7);
        assert_eq!(cursors.get("a"), Some(9));
        cursors.committed("b", 4);
        assert_eq!(cursors.get("b"), Some(4));
        cursors.forget("a");
        assert_eq!(cursors.get("a"), None);
    }

    #[test]
    fn last_sequences_per_account_keep_first_appearance_order() {
        let events = [event("b", 3), event("a", 6), event("b", 4)];
        let refs: Vec<&tpb::Event> = events.iter().collect();
        assert_eq!(last_of_each_account(&refs), [("b", (4, 0)), ("a", (6, 0))]);
    }
}
