//! Property test of the rule core (R1–R16): thousands of random operation
//! sequences run against a small in-memory world that decides with the real
//! `domain::rules` functions and applies their directives as the inbox
//! does; after every step the invariants of the specification must hold.

use std::collections::BTreeSet;

use proptest::prelude::*;
use ticketing::domain::{
    ConversationFacts, DirectiveAction, LinkedConversation, Reported, TicketFacts, Workspace,
    merge::{self, MergeSide, TicketValues},
    rules::{self, Consequence, CreationRequest},
};

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

#[derive(Debug, Clone, Default)]
struct Conversation {
    owner: Option<String>,
    open: bool,
    trashed: bool,
    ticket: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct Ticket {
    owner: Option<String>,
    closed: bool,
    trashed: bool,
    conversations: Vec<usize>,
    /// What the last trash cascade took.
    cascade: BTreeSet<usize>,
    /// The owner the last owner change (through a conversation or directly) set.
    expected_owner: Option<String>,
    /// The ticket this one is merged into (R14).
    merged_into: Option<usize>,
    merge_count: i32,
    /// What the active merge of this ticket (as secondary) brought.
    brought: Vec<usize>,
}

#[derive(Debug, Default)]
struct World {
    conversations: Vec<Conversation>,
    tickets: Vec<Ticket>,
    /// Conversations a merge or an unmerge moved since the last check: the
    /// only changes of ticket R2 allows (R14, R15).
    moved: Vec<(usize, usize)>,
}

fn id(index: usize) -> String {
    format!("c{index}")
}

fn index(id: &str) -> usize {
    id[1..].parse().expect("conversation id")
}

impl World {
    fn facts(&self, i: usize) -> ConversationFacts {
        let c = &self.conversations[i];
        ConversationFacts {
            id: id(i),
            subject: format!("subject {i}"),
            contact_id: None,
            owner_id: c.owner.clone(),
            open: c.open,
            trashed: c.trashed,
        }
    }

    fn ticket_facts(&self, t: usize) -> TicketFacts {
        TicketFacts {
            id: format!("t{t}"),
            owner_id: self.tickets[t].owner.clone(),
            trashed: self.tickets[t].trashed,
        }
    }

    fn linked(&self, t: usize) -> Vec<LinkedConversation> {
        self.tickets[t]
            .conversations
            .iter()
            .map(|&i| LinkedConversation {
                id: id(i),
                open: self.conversations[i].open,
                trashed: self.conversations[i].trashed,
            })
            .collect()
    }

    /// What the inbox does with a directive.
    fn apply(&mut self, conversation: &str, action: DirectiveAction, ticket: usize) {
        let c = &mut self.conversations[index(conversation)];
        match action {
            DirectiveAction::LinkTicket if c.ticket.is_none() => c.ticket = Some(ticket),
            DirectiveAction::MoveToTicket => c.ticket = Some(ticket),
            DirectiveAction::Close => c.open = false,
            DirectiveAction::Reopen if !c.trashed => c.open = true,
            DirectiveAction::Trash => c.trashed = true,
            DirectiveAction::Restore => c.trashed = false,
            _ => {}
        }
    }

    /// A report from the inbox, decided by ticketing.
    fn report(&mut self, i: usize, change: Reported) {
        let Some(t) = self.conversations[i].ticket else {
            return;
        };
        let facts = self.facts(i);
        match rules::consequence_of_report(change, &facts, Some(&self.ticket_facts(t))) {
            Consequence::SetTicketOwner(owner) => self.tickets[t].owner = owner,
            Consequence::TrashCascade => self.trash_ticket(t),
            Consequence::RestoreCascade => self.restore_ticket(t),
            Consequence::Nothing => {}
        }
        if change == Reported::OwnerChanged && !self.tickets[t].trashed {
            self.tickets[t].expected_owner = facts.owner_id;
        }
    }

    fn trash_ticket(&mut self, t: usize) {
        let directives = rules::trash_directives(&self.linked(t));
        self.tickets[t].trashed = true;
        self.tickets[t].cascade = self.tickets[t].conversations.iter().copied().collect();
        for d in directives {
            self.apply(&d.conversation_id, d.action, t);
        }
    }

    fn restore_ticket(&mut self, t: usize) {
        let members: Vec<String> = self.tickets[t].cascade.iter().map(|&i| id(i)).collect();
        self.tickets[t].trashed = false;
        for d in rules::restore_directives(&members) {
            self.apply(&d.conversation_id, d.action, t);
        }
    }

    /// R9 and R16: trashed and merged tickets are read-only.
    fn changeable(&self, t: usize) -> bool {
        !self.tickets[t].trashed && self.tickets[t].merged_into.is_none()
    }

    fn side(&self, t: usize) -> MergeSide {
        let ticket = &self.tickets[t];
        MergeSide {
            id: format!("t{t}"),
            trashed: ticket.trashed,
            merged_into: ticket.merged_into.map(|p| format!("t{p}")),
            workspace: Workspace::Inbox,
            merge_count: ticket.merge_count,
        }
    }

    fn values(&self, t: usize) -> TicketValues<()> {
        TicketValues {
            description: String::new(),
            priority: 0,
            owner_id: self.tickets[t].owner.clone(),
            contact_id: None,
            created_at: t as i64,
            properties: Default::default(),
        }
    }

    /// R14 as ticketing decides it and the inbox applies it.
    fn merge(&mut self, p: usize, s: usize) {
        if merge::check_merge(&self.side(p), &self.side(s)).is_err() {
            return;
        }
        let merged = merge::merged_values(&self.values(p), &self.values(s));
        let moving = self.linked(s);
        let directives = merge::merge_directives(self.tickets[p].closed, &moving);
        let brought = std::mem::take(&mut self.tickets[s].conversations);
        self.tickets[p].conversations.extend(&brought);
        self.tickets[p].owner = merged.owner_id.clone();
        self.tickets[p].expected_owner = merged.owner_id;
        self.tickets[p].merge_count += 1;
        self.tickets[s].merge_count += 1;
        self.tickets[s].merged_into = Some(p);
        for d in directives {
            self.apply(&d.conversation_id, d.action, p);
        }
        self.moved.extend(brought.iter().map(|&i| (i, p)));
        if self.tickets[p].closed {
            // R5 for the merged ticket: what arrived is closed.
            for &i in &brought {
                let c = &self.conversations[i];
                assert!(
                    c.trashed || !c.open,
                    "R14/R5: arriving conversation {i} open"
                );
            }
        }
        self.tickets[s].brought = brought;
    }

    /// R15 as ticketing decides it and the inbox applies it.
    fn unmerge(&mut self, s: usize) {
        let Some(mut holder) = self.tickets[s].merged_into else {
            return;
        };
        while let Some(next) = self.tickets[holder].merged_into {
            holder = next;
        }
        if merge::check_unmerge(&self.side(s), Some(1), 0, &self.side(holder)).is_err() {
            return;
        }
        let brought: Vec<String> = self.tickets[s].brought.iter().map(|&i| id(i)).collect();
        let on_holder: Vec<String> = self.tickets[holder]
            .conversations
            .iter()
            .map(|&i| id(i))
            .collect();
        let taken: Vec<usize> = merge::taken_back(&brought, &on_holder)
            .iter()
            .map(|c| index(c))
            .collect();
        let statuses: Vec<bool> = self.conversations.iter().map(|c| c.open).collect();
        self.tickets[holder]
            .conversations
            .retain(|i| !taken.contains(i));
        self.tickets[s].conversations = taken.clone();
        self.tickets[s].merged_into = None;
        self.tickets[s].brought.clear();
        let names: Vec<String> = taken.iter().map(|&i| id(i)).collect();
        for d in merge::unmerge_directives(&names) {
            self.apply(&d.conversation_id, d.action, s);
        }
        self.moved.extend(taken.iter().map(|&i| (i, s)));
        let after: Vec<bool> = self.conversations.iter().map(|c| c.open).collect();
        assert_eq!(
            statuses, after,
            "R15: an undo changes no conversation's status"
        );
    }

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
