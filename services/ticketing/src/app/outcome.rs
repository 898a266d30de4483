//! What the use cases do with the rules' inputs and answers: a refusal
//! becomes its `ApiError` (one stable reason each), conversation facts
//! become rows and back, and directives join the event batch of the change
//! that caused them.

use kit::ApiError;
use proto::ticketing::v1 as pb;

use crate::{
    convert,
    domain::{ConversationFacts, Directive, LinkedConversation, rules::RuleError},
    store::{events::EventBatch, ticket_conversation},
};

pub(crate) fn rule_error(err: RuleError) -> ApiError {
    match err {
        RuleError::ConversationHasTicket {
            conversation_id,
            ticket_id,
        } => ApiError::AlreadyExists {
            reason: "CONVERSATION_HAS_TICKET",
            message: format!("conversation {conversation_id} already has ticket {ticket_id}"),
            existing_id: ticket_id,
        },
        RuleError::ConversationTrashed(id) => ApiError::precondition(
            "CONVERSATION_TRASHED",
            format!("conversation {id} is in trash"),
        ),
        RuleError::ManagedInHelpDesk => ApiError::precondition(
            "TICKETS_MANAGED_IN_HELP_DESK",
            "tickets of this account are managed in the help desk, not in the inbox",
        ),
        RuleError::TicketTrashed(id) => ApiError::precondition(
            "TICKET_TRASHED",
            format!("ticket {id} is in trash and read-only"),
        ),
        RuleError::TicketMerged {
            ticket_id,
            merged_into,
        } => ApiError::precondition(
            "TICKET_MERGED",
            format!("ticket {ticket_id} is merged into ticket {merged_into} and read-only"),
        ),
        RuleError::WorkspacesDiffer => ApiError::precondition(
            "WORKSPACES_DIFFER",
            "tickets in different workspaces cannot be merged",
        ),
        RuleError::MergeLimitReached(id) => ApiError::precondition(
            "MERGE_LIMIT_REACHED",
            format!(
                "ticket {id} took part in {} merges, the most a ticket can",
                crate::domain::merge::MAX_MERGES
            ),
        ),
        RuleError::TicketNotMerged(id) => {
            ApiError::precondition("TICKET_NOT_MERGED", format!("ticket {id} is not merged"))
        }
        RuleError::MergeFinal(id) => ApiError::precondition(
            "MERGE_FINAL",
            format!("the merge of ticket {id} is past its retention period and final"),
        ),
    }
}

/// The facts row for a conversation snapshot at the inbox's `version`.
pub(crate) fn facts_row(
    account_id: &str,
    facts: &ConversationFacts,
    version: i64,
) -> ticket_conversation::Model {
    ticket_conversation::Model {
        conversation_id: facts.id.clone(),
        account_id: account_id.to_owned(),
        ticket_id: None,
        owner_id: facts.owner_id.clone(),
        open: facts.open,
        trashed: facts.trashed,
        version,
        linked_at: None,
        cascade_id: None,
    }
}

/// The snapshot's facts, or newer ones ticketing already holds.
pub(crate) fn merged_facts(
    snapshot: &ConversationFacts,
    held: &ticket_conversation::Model,
) -> ConversationFacts {
    ConversationFacts {
        owner_id: held.owner_id.clone(),
        open: held.open,
        trashed: held.trashed,
        ..snapshot.clone()
    }
}

pub(crate) fn linked(links: &[ticket_conversation::Model]) -> Vec<LinkedConversation> {
    links
        .iter()
        .map(|l| LinkedConversation {
            id: l.conversation_id.clone(),
            open: l.open,
            trashed: l.trashed,
        })
        .collect()
}

/// Adds directives caused by the event at `trigger` to `batch`.
pub(crate) fn push_directives(
    batch: &mut EventBatch,
    directives: &[Directive],
    ticket_id: &str,
    cascade_id: &str,
    trigger: usize,
) -> Vec<pb::ConversationDirective> {
    directives
        .iter()
        .map(|directive| {
            let message = convert::directive_to_proto(directive, ticket_id, cascade_id);
            batch.directive(message.clone(), directive.rule, trigger);
            message
        })
        .collect()
}
