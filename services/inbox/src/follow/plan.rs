//! Turns a batch of ticketing's events into few statements. Under load a
//! batch holds a hundred events or more; applied one by one, each would
//! cost a round trip to a busy database (docs/decisions.md, Performance).
//!
//! Every directive is a guarded update of one conversation, so directives
//! on different conversations commute, and repeating one changes nothing
//! (its guard no longer holds). Two actions on the same conversation
//! commute too when neither writes a column the other reads or writes.
//! So the batch's directives are laid out in rounds: each round has one
//! statement per action (per account, and per ticket for links), and a
//! conversation whose next action does not commute with one it already has
//! in the round starts the next round. Each conversation thus sees its
//! actions in stream order. Purges delete rows and stand alone.
//!
//! A ticket's snapshots in a batch are reduced to its newest: its
//! conversations include every earlier version's (links are never undone,
//! R2), and its conversations are moved to the help desk if any version
//! was there, so it makes true whatever the earlier versions would have.

use std::collections::{HashMap, HashSet};

use proto::ticketing::v1 as tpb;
use tpb::DirectiveAction as Action;

/// A ticket's newest snapshot in a batch, and what the batch says of it.
pub struct Newest<'e> {
    pub ticket: &'e tpb::Ticket,
    /// Every version in the batch left the ticket's conversations as they
    /// were, so the version before the batch had linked them all already.
    pub same_conversations: bool,
    /// Some version in the batch was in the help desk.
    pub help_desk: bool,
    /// Set by the caller once the snapshot is stored.
    pub work: SnapshotWork,
    position: usize,
}

/// What a stored snapshot still has to do to its conversations.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotWork {
    pub link: bool,
    pub move_to_help_desk: bool,
}

/// The newest snapshot of each ticket in `events`, in order of first
/// appearance.
pub fn newest_snapshots<'e>(events: &[&'e tpb::Event]) -> Vec<Newest<'e>> {
    let mut newest: Vec<Newest<'e>> = Vec::new();
    let mut index: HashMap<&'e str, usize> = HashMap::new();
    for (position, event) in events.iter().enumerate() {
        let Some(tpb::event::Payload::TicketChanged(change)) = &event.payload else {
            continue;
        };
        let Some(ticket) = &change.ticket else {
            continue;
        };
        let same_conversations = change.kind == tpb::TicketChangeKind::Updated as i32
            && !change
                .changed_fields
                .iter()
                .any(|f| f == "conversation_ids");
        let help_desk = ticket.workspace == tpb::Workspace::HelpDesk as i32;
        match index.get(ticket.id.as_str()) {
            Some(&i) => {
                let seen = &mut newest[i];
                seen.same_conversations &= same_conversations;
                seen.help_desk |= help_desk;
                if ticket.version >= seen.ticket.version {
                    seen.ticket = ticket;
                    seen.position = position;
                }
            }
            None => {
                index.insert(&ticket.id, newest.len());
                newest.push(Newest {
                    ticket,
                    same_conversations,
                    help_desk,
                    work: SnapshotWork::default(),
                    position,
                });
            }
        }
    }
    newest
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'e> {
    /// `action` (with `ticket_id` for a link, empty otherwise) on each of
    /// `conversation_ids`.
    Apply {
        account_id: &'e str,
        action: i32,
        ticket_id: &'e str,
        conversation_ids: Vec<&'e str>,
    },
    Purge {
        account_id: &'e str,
        conversation_id: &'e str,
    },
}

/// The statements that apply `events` (one batch, in stream order), given
/// the work each stored newest snapshot still has to do.
pub fn steps<'e>(events: &[&'e tpb::Event], newest: &[Newest<'e>]) -> Vec<Step<'e>> {
    let work_at: HashMap<usize, SnapshotWork> =
        newest.iter().map(|n| (n.position, n.work)).collect();
    // (conversation, ticket) pairs a snapshot has linked, or had linked
    // before: ticketing logs a LinkTicket directive beside each new link,
    // and for these it could only be a no-op.
    let mut linked: HashSet<(&'e str, &'e str)> = HashSet::new();
    let mut rounds = Rounds::default();
    for (position, event) in events.iter().enumerate() {
        let account_id = event.account_id.as_str();
        match &event.payload {
            Some(tpb::event::Payload::TicketChanged(change)) => {
                let Some(ticket) = &change.ticket else {
                    continue;
                };
                let work = work_at.get(&position).copied().unwrap_or_default();
                for conversation_id in &ticket.conversation_ids {
                    if work.link {
                        rounds.apply(account_id, Action::LinkTicket, &ticket.id, conversation_id);
                    }
                    if work.move_to_help_desk {
                        rounds.apply(account_id, Action::MoveToHelpDesk, "", conversation_id);
                    }
                    linked.insert((conversation_id, &ticket.id));
                }
            }
            Some(tpb::event::Payload::ConversationDirective(directive)) => {
                let conversation_id = directive.conversation_id.as_str();
                match Action::try_from(directive.action) {
                    Ok(Action::Purge) => rounds.purge(account_id, conversation_id),
                    Ok(Action::LinkTicket) => {
                        if !linked.contains(&(conversation_id, directive.ticket_id.as_str())) {
                            rounds.apply(
                                account_id,
                                Action::LinkTicket,
                                &directive.ticket_id,
                                conversation_id,
                            );
                        }
                    }
                    Ok(Action::MoveToTicket) => rounds.apply(
                        account_id,
                        Action::MoveToTicket,
                        &directive.ticket_id,
                        conversation_id,
                    ),
                    Ok(action) => rounds.apply(account_id, action, "", conversation_id),
                    Err(_) => tracing::warn!(
                        action = directive.action,
                        conversation_id,
                        "unknown directive ignored"
                    ),
                }
            }
            None => {}
        }
    }
    rounds.steps
}

/// Whether applying `a` then `b` to one conversation may end differently
/// from `b` then `a`. A link writes the ticket (if it has none), a move to
/// another ticket (R14) writes it whatever it was, a move to the help desk
/// writes the workspace; close and reopen write the status, trash and restore the trash time, and a
/// reopen also reads the trash time (a trashed conversation stays closed).
fn conflicts(a: (Action, &str), b: (Action, &str)) -> bool {
    use Action::*;
    match (a.0, b.0) {
        // The same action again is a no-op, unless it links another ticket.
        (x, y) if x == y => a.1 != b.1,
        // A link and a move both write the ticket, and a link reads it.
        (MoveToTicket, LinkTicket) | (LinkTicket, MoveToTicket) => true,
        (MoveToTicket, _) | (_, MoveToTicket) => false,
        (MoveToHelpDesk, _) | (_, MoveToHelpDesk) | (LinkTicket, _) | (_, LinkTicket) => false,
        (Close, Trash) | (Trash, Close) | (Close, Restore) | (Restore, Close) => false,
        _ => true,
    }
}

#[derive(Default)]
struct Rounds<'e> {
    steps: Vec<Step<'e>>,
    /// This round's statements by (account, action, ticket).
    statements: HashMap<(&'e str, Action, &'e str), usize>,
    /// The actions this round has for each (account, conversation).
    actions: HashMap<(&'e str, &'e str), Vec<(Action, &'e str)>>,
}

impl<'e> Rounds<'e> {
    fn apply(
        &mut self,
        account_id: &'e str,
        action: Action,
        ticket_id: &'e str,
        conversation_id: &'e str,
    ) {
        let this = (action, ticket_id);
        if let Some(has) = self.actions.get(&(account_id, conversation_id)) {
            if has.contains(&this) {
                return;
            }
            if has.iter().any(|earlier| conflicts(*earlier, this)) {
                self.next_round();
            }
        }
        let index = *self
            .statements
            .entry((account_id, action, ticket_id))
            .or_insert_with(|| {
                self.steps.push(Step::Apply {
                    account_id,
                    action: action as i32,
                    ticket_id,
                    conversation_ids: Vec::new(),
                });
                self.steps.len() - 1
            });
        if let Some(Step::Apply {
            conversation_ids, ..
        }) = self.steps.get_mut(index)
        {
            conversation_ids.push(conversation_id);
        }
        self.actions
            .entry((account_id, conversation_id))
            .or_default()
            .push((action, ticket_id));
    }

    fn purge(&mut self, account_id: &'e str, conversation_id: &'e str) {
        self.next_round();
        self.steps.push(Step::Purge {
            account_id,
            conversation_id,
        });
        self.next_round();
    }

    fn next_round(&mut self) {
        self.statements.clear();
        self.actions.clear();
    }
}

#[cfg(test)]
mod tests;
