//! The model world: conversations and tickets as plain values, and how the
//! rules' answers change them, applied as the inbox applies directives.

use std::collections::BTreeSet;

use ticketing::domain::{
    ConversationFacts, DirectiveAction, LinkedConversation, Reported, TicketFacts, Workspace,
    merge::{self, MergeSide, TicketValues},
    rules::{self, Consequence},
};

#[derive(Debug, Clone, Default)]
pub(super) struct Conversation {
    pub(super) owner: Option<String>,
    pub(super) open: bool,
    pub(super) trashed: bool,
    pub(super) ticket: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Ticket {
    pub(super) owner: Option<String>,
    pub(super) closed: bool,
    pub(super) trashed: bool,
    pub(super) conversations: Vec<usize>,
    /// What the last trash cascade took.
    pub(super) cascade: BTreeSet<usize>,
    /// The owner the last owner change (through a conversation or directly) set.
    pub(super) expected_owner: Option<String>,
    /// The ticket this one is merged into (R14).
    pub(super) merged_into: Option<usize>,
    pub(super) merge_count: i32,
    /// What the active merge of this ticket (as secondary) brought.
    pub(super) brought: Vec<usize>,
}

#[derive(Debug, Default)]
pub(super) struct World {
    pub(super) conversations: Vec<Conversation>,
    pub(super) tickets: Vec<Ticket>,
    /// Conversations a merge or an unmerge moved since the last check: the
    /// only changes of ticket R2 allows (R14, R15).
    pub(super) moved: Vec<(usize, usize)>,
}

pub(super) fn id(index: usize) -> String {
    format!("c{index}")
}

fn index(id: &str) -> usize {
    id[1..].parse().expect("conversation id")
}

impl World {
    pub(super) fn facts(&self, i: usize) -> ConversationFacts {
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

    pub(super) fn ticket_facts(&self, t: usize) -> TicketFacts {
        TicketFacts {
            id: format!("t{t}"),
            owner_id: self.tickets[t].owner.clone(),
            trashed: self.tickets[t].trashed,
        }
    }

    pub(super) fn linked(&self, t: usize) -> Vec<LinkedConversation> {
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
    pub(super) fn apply(&mut self, conversation: &str, action: DirectiveAction, ticket: usize) {
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
    pub(super) fn report(&mut self, i: usize, change: Reported) {
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

    pub(super) fn trash_ticket(&mut self, t: usize) {
        let directives = rules::trash_directives(&self.linked(t));
        self.tickets[t].trashed = true;
        self.tickets[t].cascade = self.tickets[t].conversations.iter().copied().collect();
        for d in directives {
            self.apply(&d.conversation_id, d.action, t);
        }
    }

    pub(super) fn restore_ticket(&mut self, t: usize) {
        let members: Vec<String> = self.tickets[t].cascade.iter().map(|&i| id(i)).collect();
        self.tickets[t].trashed = false;
        for d in rules::restore_directives(&members) {
            self.apply(&d.conversation_id, d.action, t);
        }
    }

    /// R9 and R16: trashed and merged tickets are read-only.
    pub(super) fn changeable(&self, t: usize) -> bool {
        !self.tickets[t].trashed && self.tickets[t].merged_into.is_none()
    }

    pub(super) fn side(&self, t: usize) -> MergeSide {
        let ticket = &self.tickets[t];
        MergeSide {
            id: format!("t{t}"),
            trashed: ticket.trashed,
            merged_into: ticket.merged_into.map(|p| format!("t{p}")),
            workspace: Workspace::Inbox,
            merge_count: ticket.merge_count,
        }
    }

    pub(super) fn values(&self, t: usize) -> TicketValues<()> {
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
    pub(super) fn merge(&mut self, p: usize, s: usize) {
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
    pub(super) fn unmerge(&mut self, s: usize) {
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
}
