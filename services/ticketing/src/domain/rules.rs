//! The decisions of SPEC section 3. Each function names the rules it decides;
//! callers turn the returned directives into events in the same transaction
//! as the change.

use super::model::*;

/// Why a rule refuses a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("conversation {0} is in trash")]
    ConversationTrashed(String),
    #[error("conversation {conversation_id} already has ticket {ticket_id}")]
    ConversationHasTicket {
        conversation_id: String,
        ticket_id: String,
    },
    #[error("tickets of this account are managed in the help desk")]
    ManagedInHelpDesk,
    #[error("ticket {0} is in trash")]
    TicketTrashed(String),
    #[error("ticket {ticket_id} is merged into {merged_into}")]
    TicketMerged {
        ticket_id: String,
        merged_into: String,
    },
    #[error("tickets in different workspaces cannot be merged")]
    WorkspacesDiffer,
    #[error("ticket {0} took part in too many merges")]
    MergeLimitReached(String),
    #[error("ticket {0} is not merged")]
    TicketNotMerged(String),
    #[error("the merge of ticket {0} is final")]
    MergeFinal(String),
}

/// R10: whether an account manages its tickets in the help desk.
pub fn manages_tickets_in_help_desk(
    policy: &HelpDeskPolicy,
    tier: Tier,
    created_at_micros: i64,
) -> bool {
    policy.tiers.contains(&tier) && created_at_micros >= policy.cutover_micros
}

/// R10: managing an existing ticket through the inbox is refused for help
/// desk accounts.
pub fn check_management_surface(help_desk: bool, surface: Surface) -> Result<(), RuleError> {
    if help_desk && surface == Surface::Inbox {
        Err(RuleError::ManagedInHelpDesk)
    } else {
        Ok(())
    }
}

/// The outcome of creating a ticket from a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationPlan {
    pub workspace: Workspace,
    pub name: String,
    pub owner_id: Option<String>,
    pub contact_id: Option<String>,
    pub directives: Vec<Directive>,
}

/// What a caller asked for, before defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreationRequest {
    pub name: String,
    pub owner_id: Option<String>,
    pub starts_closed: bool,
}

/// R1, R2, R10 (and R5 for a ticket created straight into a closed stage).
/// `existing_ticket` is the conversation's ticket if it already has one.
pub fn plan_creation(
    request: &CreationRequest,
    conversation: Option<&ConversationFacts>,
    existing_ticket: Option<&str>,
    help_desk: bool,
) -> Result<CreationPlan, RuleError> {
    let workspace = if help_desk {
        Workspace::HelpDesk
    } else {
        Workspace::Inbox
    };
    let Some(conversation) = conversation else {
        return Ok(CreationPlan {
            workspace,
            name: request.name.clone(),
            owner_id: request.owner_id.clone(),
            contact_id: None,
            directives: Vec::new(),
        });
    };
    if let Some(ticket_id) = existing_ticket {
        return Err(RuleError::ConversationHasTicket {
            conversation_id: conversation.id.clone(),
            ticket_id: ticket_id.to_owned(),
        });
    }
    if conversation.trashed {
        return Err(RuleError::ConversationTrashed(conversation.id.clone()));
    }
    let mut directives = vec![Directive::new(
        &conversation.id,
        DirectiveAction::LinkTicket,
        "R1",
    )];
    if help_desk {
        directives.push(Directive::new(
            &conversation.id,
            DirectiveAction::MoveToHelpDesk,
            "R10",
        ));
    }
    if request.starts_closed && conversation.open {
        directives.push(Directive::new(
            &conversation.id,
            DirectiveAction::Close,
            "R5",
        ));
    }
    let name = if request.name.trim().is_empty() {
        conversation.subject.clone()
    } else {
        request.name.clone()
    };
    Ok(CreationPlan {
        workspace,
        name,
        owner_id: request
            .owner_id
            .clone()
            .or_else(|| conversation.owner_id.clone()),
        contact_id: conversation.contact_id.clone(),
        directives,
    })
}

/// R5 and R6: what moving a ticket between stages does to its conversations.
pub fn stage_change_directives(
    was_closed: bool,
    now_closed: bool,
    conversations: &[LinkedConversation],
) -> Vec<Directive> {
    let live: Vec<&LinkedConversation> = conversations.iter().filter(|c| !c.trashed).collect();
    match (was_closed, now_closed) {
        // R5: every open conversation closes. Ticketing's view of "open" may
        // lag the inbox, so it directs every live conversation; closing a
        // closed conversation is a no-op in the inbox.
        (false, true) => live
            .iter()
            .map(|c| Directive::new(&c.id, DirectiveAction::Close, "R5"))
            .collect(),
        // R6: reopen only when exactly one conversation remains.
        (true, false) if live.len() == 1 => {
            vec![Directive::new(&live[0].id, DirectiveAction::Reopen, "R6")]
        }
        _ => Vec::new(),
    }
}

/// What a reported conversation fact does to its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consequence {
    Nothing,
    /// R4: the ticket's owner follows the conversation's owner.
    SetTicketOwner(Option<String>),
    /// R8: the ticket and all its conversations go to trash.
    TrashCascade,
    /// R9: everything that went to trash with the ticket comes back.
    RestoreCascade,
}

/// R4, R7, R8, R9, R13: the consequence of a fact the inbox reports about
/// `conversation` (the facts after the change), given its ticket.
pub fn consequence_of_report(
    change: Reported,
    conversation: &ConversationFacts,
    ticket: Option<&TicketFacts>,
) -> Consequence {
    let Some(ticket) = ticket else {
        return Consequence::Nothing;
    };
    match change {
        // A trashed ticket is read-only (R9).
        Reported::OwnerChanged if !ticket.trashed && ticket.owner_id != conversation.owner_id => {
            Consequence::SetTicketOwner(conversation.owner_id.clone())
        }
        Reported::Trashed if !ticket.trashed => Consequence::TrashCascade,
        Reported::Restored if ticket.trashed => Consequence::RestoreCascade,
        // R7 and R13: closing, reopening and incoming mail stay with the
        // conversation; the ticket and its other conversations keep theirs.
        _ => Consequence::Nothing,
    }
}

/// R4 across conversations: an owner report applies to its ticket only if
/// the inbox committed it after the last one the ticket applied, whichever
/// of the ticket's conversations each came from. Reports may be delayed
/// (an outage), repeated or reordered; the inbox's per-account change
/// sequence is their commit order. A report without one (`0`, from an
/// older inbox) is taken as newest, as before the order existed.
pub fn owner_report_is_newest(report_sequence: i64, last_applied: i64) -> bool {
    report_sequence == 0 || report_sequence > last_applied
}

/// R8: every conversation of the ticket not yet in trash goes there.
pub fn trash_directives(conversations: &[LinkedConversation]) -> Vec<Directive> {
    conversations
        .iter()
        .filter(|c| !c.trashed)
        .map(|c| Directive::new(&c.id, DirectiveAction::Trash, "R8"))
        .collect()
}

/// R9: every conversation that went with the cascade comes back.
pub fn restore_directives(cascade_members: &[String]) -> Vec<Directive> {
    cascade_members
        .iter()
        .map(|id| Directive::new(id, DirectiveAction::Restore, "R9"))
        .collect()
}

/// R3: a further conversation may join a ticket when it has none (R2), is
/// not in trash, and the ticket is not in trash (R9).
pub fn check_association(
    conversation: &ConversationFacts,
    existing_ticket: Option<&str>,
    ticket: &TicketFacts,
) -> Result<(), RuleError> {
    if let Some(ticket_id) = existing_ticket {
        return Err(RuleError::ConversationHasTicket {
            conversation_id: conversation.id.clone(),
            ticket_id: ticket_id.to_owned(),
        });
    }
    if conversation.trashed {
        return Err(RuleError::ConversationTrashed(conversation.id.clone()));
    }
    if ticket.trashed {
        return Err(RuleError::TicketTrashed(ticket.id.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
