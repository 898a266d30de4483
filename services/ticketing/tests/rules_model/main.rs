//! Property test of the rule core (R1–R16): thousands of random operation
//! sequences run against a small in-memory world that decides with the real
//! `domain::rules` functions and applies their directives as the inbox
//! does; after every step the invariants of the specification must hold.

use std::collections::BTreeSet;

use proptest::prelude::*;
use ticketing::domain::{
    DirectiveAction, Reported, merge,
    rules::{self, CreationRequest},
};

mod world;

use world::{Conversation, Ticket, World, id};

#[derive(Debug, Clone)]
enum Op {
    NewConversation,
    CreateTicket {
        conversation: usize,
        closed: bool,
    },
    Associate {
        conversation: usize,
        ticket: usize,
    },
    AssignConversation {
        conversation: usize,
        owner: Option<u8>,
    },
    AssignTicket {
        ticket: usize,
        owner: Option<u8>,
    },
    SetConversationOpen {
        conversation: usize,
        open: bool,
    },
    IncomingMessage {
        conversation: usize,
    },
    MoveTicket {
        ticket: usize,
        closed: bool,
    },
    TrashConversation {
        conversation: usize,
    },
    DeleteTicket {
        ticket: usize,
    },
    RestoreConversation {
        conversation: usize,
    },
    UndeleteTicket {
        ticket: usize,
    },
    Merge {
        primary: usize,
        secondary: usize,
    },
    Unmerge {
        ticket: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0usize..5;
    let owner = proptest::option::of(0u8..4);
    // Weighted so that tickets with several conversations, closing and
    // reopening them, and trash cascades happen often.
    prop_oneof![
        1 => Just(Op::NewConversation),
        3 => (index.clone(), any::<bool>()).prop_map(|(conversation, closed)| Op::CreateTicket { conversation, closed }),
        4 => (index.clone(), 0usize..2).prop_map(|(conversation, ticket)| Op::Associate { conversation, ticket }),
        2 => (index.clone(), owner.clone()).prop_map(|(conversation, owner)| Op::AssignConversation { conversation, owner }),
        2 => (index.clone(), owner).prop_map(|(ticket, owner)| Op::AssignTicket { ticket, owner }),
        2 => (index.clone(), any::<bool>()).prop_map(|(conversation, open)| Op::SetConversationOpen { conversation, open }),
        2 => index.clone().prop_map(|conversation| Op::IncomingMessage { conversation }),
        3 => (index.clone(), any::<bool>()).prop_map(|(ticket, closed)| Op::MoveTicket { ticket, closed }),
        2 => index.clone().prop_map(|conversation| Op::TrashConversation { conversation }),
        2 => index.clone().prop_map(|ticket| Op::DeleteTicket { ticket }),
        2 => index.clone().prop_map(|conversation| Op::RestoreConversation { conversation }),
        2 => index.clone().prop_map(|ticket| Op::UndeleteTicket { ticket }),
        3 => (index.clone(), index.clone()).prop_map(|(primary, secondary)| Op::Merge { primary, secondary }),
        2 => index.prop_map(|ticket| Op::Unmerge { ticket }),
    ]
}

impl World {
    fn step(&mut self, op: &Op) {
        let n = self.conversations.len();
        let m = self.tickets.len();
        match *op {
            Op::NewConversation => self.conversations.push(Conversation {
                open: true,
                ..Default::default()
            }),
            Op::CreateTicket {
                conversation: i,
                closed,
            } if i < n => {
                let request = CreationRequest {
                    name: String::new(),
                    owner_id: None,
                    starts_closed: closed,
                };
                let existing = self.conversations[i].ticket.map(|t| format!("t{t}"));
                let Ok(plan) = rules::plan_creation(
                    &request,
                    Some(&self.facts(i)),
                    existing.as_deref(),
                    false,
                ) else {
                    return;
                };
                self.tickets.push(Ticket {
                    owner: plan.owner_id.clone(),
                    closed,
                    conversations: vec![i],
                    expected_owner: plan.owner_id,
                    ..Default::default()
                });
                for d in plan.directives {
                    self.apply(&d.conversation_id, d.action, m);
                }
            }
            Op::Associate {
                conversation: i,
                ticket: t,
            } if i < n && t < m && self.tickets[t].merged_into.is_none() => {
                let existing = self.conversations[i].ticket.map(|t| format!("t{t}"));
                if rules::check_association(
                    &self.facts(i),
                    existing.as_deref(),
                    &self.ticket_facts(t),
                )
                .is_ok()
                {
                    self.tickets[t].conversations.push(i);
                    self.apply(&id(i), DirectiveAction::LinkTicket, t);
                }
            }
            Op::AssignConversation {
                conversation: i,
                owner,
            } if i < n && !self.conversations[i].trashed => {
                self.conversations[i].owner = owner.map(|o| format!("u{o}"));
                self.report(i, Reported::OwnerChanged);
            }
            Op::AssignTicket { ticket: t, owner } if t < m && self.changeable(t) => {
                self.tickets[t].owner = owner.map(|o| format!("u{o}"));
                self.tickets[t].expected_owner = self.tickets[t].owner.clone();
            }
            Op::SetConversationOpen {
                conversation: i,
                open,
            } if i < n && !self.conversations[i].trashed => {
                self.conversations[i].open = open;
                self.report(
                    i,
                    if open {
                        Reported::Reopened
                    } else {
                        Reported::Closed
                    },
                );
            }
            Op::IncomingMessage { conversation: i } if i < n && !self.conversations[i].trashed => {
                self.conversations[i].open = true;
                self.report(i, Reported::IncomingMessage);
            }
            Op::MoveTicket { ticket: t, closed } if t < m && self.changeable(t) => {
                let was_closed = self.tickets[t].closed;
                let open_before: Vec<bool> = self.conversations.iter().map(|c| c.open).collect();
                let directives =
                    rules::stage_change_directives(was_closed, closed, &self.linked(t));
                self.tickets[t].closed = closed;
                for d in directives {
                    self.apply(&d.conversation_id, d.action, t);
                }
                if closed && !was_closed {
                    // R5, checked right after the ticket entered a closed stage.
                    for &i in &self.tickets[t].conversations {
                        let c = &self.conversations[i];
                        assert!(c.trashed || !c.open, "R5: conversation {i} still open");
                    }
                }
                if !closed && was_closed {
                    let live: Vec<usize> = self.tickets[t]
                        .conversations
                        .iter()
                        .copied()
                        .filter(|&i| !self.conversations[i].trashed)
                        .collect();
                    if live.len() == 1 {
                        assert!(
                            self.conversations[live[0]].open,
                            "R6: the single conversation reopens"
                        );
                    } else {
                        let open_after: Vec<bool> =
                            self.conversations.iter().map(|c| c.open).collect();
                        assert_eq!(
                            open_before,
                            open_after,
                            "R6: with {} conversations none reopens",
                            live.len()
                        );
                    }
                }
            }
            Op::TrashConversation { conversation: i }
                if i < n && !self.conversations[i].trashed =>
            {
                self.conversations[i].trashed = true;
                self.report(i, Reported::Trashed);
            }
            Op::DeleteTicket { ticket: t } if t < m && self.changeable(t) => self.trash_ticket(t),
            Op::RestoreConversation { conversation: i }
                if i < n && self.conversations[i].trashed =>
            {
                let before: Vec<bool> = self.conversations.iter().map(|c| c.trashed).collect();
                self.conversations[i].trashed = false;
                self.report(i, Reported::Restored);
                if let Some(t) = self.conversations[i].ticket {
                    // R9: exactly the cascade came back, nothing else moved.
                    for (j, c) in self.conversations.iter().enumerate() {
                        let in_cascade = self.tickets[t].cascade.contains(&j);
                        let expected = if in_cascade {
                            false
                        } else {
                            before[j] && j != i
                        };
                        assert_eq!(
                            c.trashed, expected,
                            "R9: conversation {j} after restoring {i}"
                        );
                    }
                }
            }
            Op::UndeleteTicket { ticket: t } if t < m && self.tickets[t].trashed => {
                self.restore_ticket(t)
            }
            Op::Merge {
                primary: p,
                secondary: s,
            } if p < m && s < m && p != s => self.merge(p, s),
            Op::Unmerge { ticket: s } if s < m => self.unmerge(s),
            _ => {}
        }
    }

    fn check(&mut self, first_ticket: &mut Vec<Option<usize>>) {
        first_ticket.resize(self.conversations.len(), None);
        for (i, t) in self.moved.drain(..) {
            first_ticket[i] = Some(t);
        }
        for (i, c) in self.conversations.iter().enumerate() {
            // R2: at most one ticket, changed only by a merge or an unmerge.
            match (first_ticket[i], c.ticket) {
                (None, t) => first_ticket[i] = t,
                (Some(first), Some(now)) => {
                    assert_eq!(first, now, "R2: conversation {i} changed ticket")
                }
                (Some(_), None) => panic!("R2: conversation {i} lost its ticket"),
            }
        }
        for (t, ticket) in self.tickets.iter().enumerate() {
            if ticket.merged_into.is_some() {
                // R14: a merged ticket is only a redirect.
                assert!(
                    ticket.conversations.is_empty(),
                    "merged ticket {t} kept conversations"
                );
                assert!(!ticket.trashed, "merged ticket {t} in trash");
            }
            assert!(
                ticket.merge_count <= merge::MAX_MERGES,
                "R16 cap on ticket {t}"
            );
            let mut seen = BTreeSet::new();
            for &i in &ticket.conversations {
                assert!(seen.insert(i), "ticket {t} lists conversation {i} twice");
                assert_eq!(
                    self.conversations[i].ticket,
                    Some(t),
                    "R2/R3: link of conversation {i}"
                );
                // R8 both ways (and R9 restoring together): a ticket and its
                // conversations are in trash together or not at all.
                assert_eq!(
                    self.conversations[i].trashed, ticket.trashed,
                    "R8/R9: conversation {i} and its ticket {t} disagree on trash"
                );
            }
            // R4: the ticket's owner is the last one set (through a conversation, or directly).
            assert_eq!(
                ticket.owner, ticket.expected_owner,
                "R4: owner of ticket {t}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_rules_keep_their_invariants_under_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let mut world = World::default();
        for _ in 0..4 {
            world.step(&Op::NewConversation);
        }
        let mut first_ticket = Vec::new();
        for op in &ops {
            world.step(op);
            world.check(&mut first_ticket);
        }
    }
}
