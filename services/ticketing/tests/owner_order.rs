//! Property test of R4 across conversations: owner changes on several
//! conversations of one ticket, reported to ticketing delayed, repeated and
//! in any order, leave the ticket with the owner of the last change the
//! inbox committed. The delivery is decided exactly as NotifyConversation-
//! Changed decides it: a report older than the conversation's newest facts
//! is stale, one older than the ticket's last applied owner change is
//! superseded, and the rest go through `consequence_of_report`.

use proptest::prelude::*;
use ticketing::domain::{
    ConversationFacts, Reported, TicketFacts,
    rules::{self, Consequence},
};

/// One owner change as the inbox commits and reports it.
#[derive(Debug, Clone)]
struct Change {
    conversation: usize,
    owner: Option<String>,
    /// The conversation's version after the change.
    version: i64,
    /// The account's change sequence: commit order across conversations.
    sequence: i64,
}

fn changes() -> impl Strategy<Value = Vec<Change>> {
    proptest::collection::vec((0usize..3, proptest::option::of(0u8..4)), 1..25).prop_map(|raw| {
        let mut versions = [1i64; 3];
        raw.into_iter()
            .enumerate()
            .map(|(i, (conversation, owner))| {
                versions[conversation] += 1;
                Change {
                    conversation,
                    owner: owner.map(|o| format!("u{o}")),
                    version: versions[conversation],
                    sequence: i as i64 + 1,
                }
            })
            .collect()
    })
}

/// Every change delivered at least once, some twice, in any order.
fn deliveries() -> impl Strategy<Value = (Vec<Change>, Vec<usize>)> {
    changes().prop_flat_map(|changes| {
        let n = changes.len();
        let repeats = proptest::collection::vec(0..n, 0..n);
        (Just(changes), repeats).prop_flat_map(move |(changes, repeats)| {
            let mut order: Vec<usize> = (0..n).collect();
            order.extend(repeats);
            (Just(changes), Just(order).prop_shuffle())
        })
    })
}

#[derive(Default)]
struct Ticketing {
    /// Newest facts held per conversation: (version, owner).
    held: [Option<(i64, Option<String>)>; 3],
    owner: Option<String>,
    owner_sequence: i64,
}

impl Ticketing {
    fn report(&mut self, change: &Change) {
        let held = &mut self.held[change.conversation];
        let stale = held.as_ref().is_some_and(|(v, _)| *v >= change.version);
        if !stale {
            *held = Some((change.version, change.owner.clone()));
        }
        let superseded = !rules::owner_report_is_newest(change.sequence, self.owner_sequence);
        if stale || superseded {
            return;
        }
        let facts = ConversationFacts {
            id: format!("c{}", change.conversation),
            subject: String::new(),
            contact_id: None,
            owner_id: change.owner.clone(),
            open: true,
            trashed: false,
        };
        let ticket = TicketFacts {
            id: "t".into(),
            owner_id: self.owner.clone(),
            trashed: false,
        };
        if let Consequence::SetTicketOwner(owner) =
            rules::consequence_of_report(Reported::OwnerChanged, &facts, Some(&ticket))
        {
            self.owner = owner;
        }
        self.owner_sequence = self.owner_sequence.max(change.sequence);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn r4_the_last_committed_owner_change_wins_whatever_the_delivery((changes, order) in deliveries()) {
        let mut ticketing = Ticketing::default();
        for &i in &order {
            ticketing.report(&changes[i]);
        }
        let last = changes.last().map(|c| c.owner.clone()).unwrap_or_default();
        prop_assert_eq!(ticketing.owner, last);
    }
}
