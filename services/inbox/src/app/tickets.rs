//! Ticket management from the sidebar: forwarded to ticketing, which decides
//! (R1, R2, R3, R10); the answer is applied locally at once, so the caller
//! reads its own write, and again when its events arrive (harmlessly).

use kit::{ApiError, idempotency::Key, identity::Caller};
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};

use crate::{
    convert,
    follow::apply,
    state::{App, from_ticketing},
};

impl App {
    pub async fn create_ticket_for_conversation(
        &self,
        caller: &Caller,
        request_id: String,
        conversation_id: &str,
        overrides: tpb::Ticket,
        key: Option<Key>,
    ) -> Result<pb::CreateTicketForConversationResponse, ApiError> {
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
            return Ok(answer);
        }
        let account_id = caller.account()?;
        let conversation = self
            .load_conversation(&self.db, account_id, conversation_id)
            .await?;
        let request = tpb::CreateTicketRequest {
            request_id,
            ticket: Some(overrides),
            conversation: Some(convert::snapshot(&conversation)),
            surface: tpb::Surface::Inbox as i32,
        };
        let ticket = self
            .call_ticketing(caller, request, |mut c, r| async move {
                c.create_ticket(r).await
            })
            .await
            .map_err(from_ticketing)?
            .into_inner();
        let conversation = self
            .apply_ticket(account_id, conversation_id, &ticket)
            .await?;
        let answer = pb::CreateTicketForConversationResponse {
            conversation: Some(convert::conversation_to_proto(&conversation)),
            ticket: Some(ticket),
        };
        self.remember(key.as_ref(), &answer).await;
        Ok(answer)
    }

    /// Updates the conversation's ticket through the inbox (R10 may refuse).
    pub async fn update_conversation_ticket(
        &self,
        caller: &Caller,
        request: pb::UpdateConversationTicketRequest,
    ) -> Result<tpb::Ticket, ApiError> {
        let account_id = caller.account()?;
        let conversation_id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let conversation = self
            .load_conversation(&self.db, account_id, &conversation_id)
            .await?;
        let ticket_id = conversation.ticket_id.clone().ok_or_else(|| {
            ApiError::precondition(
                "CONVERSATION_HAS_NO_TICKET",
                format!("conversation {conversation_id} has no ticket"),
            )
        })?;
        let mut ticket = request.ticket.unwrap_or_default();
        if !ticket.id.is_empty() && ticket.id != ticket_id {
            return Err(ApiError::invalid(
                "ticket.id",
                "is not this conversation's ticket",
            ));
        }
        ticket.id = ticket_id;
        let forwarded = tpb::UpdateTicketRequest {
            request_id: request.request_id,
            ticket: Some(ticket),
            update_mask: request.update_mask,
            surface: tpb::Surface::Inbox as i32,
        };
        let ticket = self
            .call_ticketing(caller, forwarded, |mut c, r| async move {
                c.update_ticket(r).await
            })
            .await
            .map_err(from_ticketing)?
            .into_inner();
        self.apply_ticket(account_id, &conversation_id, &ticket)
            .await?;
        Ok(ticket)
    }

    /// R3: the conversation joins an existing ticket.
    pub async fn add_conversation_to_ticket(
        &self,
        caller: &Caller,
        request_id: String,
        conversation_id: &str,
        ticket_id: &str,
    ) -> Result<pb::AddConversationToTicketResponse, ApiError> {
        let account_id = caller.account()?;
        let conversation = self
            .load_conversation(&self.db, account_id, conversation_id)
            .await?;
        let forwarded = tpb::AssociateConversationRequest {
            request_id,
            ticket_id: ticket_id.to_owned(),
            conversation: Some(convert::snapshot(&conversation)),
            surface: tpb::Surface::Inbox as i32,
        };
        let ticket = self
            .call_ticketing(caller, forwarded, |mut c, r| async move {
                c.associate_conversation(r).await
            })
            .await
            .map_err(from_ticketing)?
            .into_inner();
        let conversation = self
            .apply_ticket(account_id, conversation_id, &ticket)
            .await?;
        Ok(pb::AddConversationToTicketResponse {
            conversation: Some(convert::conversation_to_proto(&conversation)),
            ticket: Some(ticket),
        })
    }

    /// Applies a ticket snapshot from an answer and rereads the conversation.
    async fn apply_ticket(
        &self,
        account_id: &str,
        conversation_id: &str,
        ticket: &tpb::Ticket,
    ) -> Result<crate::store::conversation::Model, ApiError> {
        // Under load the event often gets here first, and the consumer has
        // applied this version already: a transaction would change nothing.
        if self.applied.covers(&ticket.id, ticket.version) {
            return self
                .load_conversation(&self.db, account_id, conversation_id)
                .await;
        }
        let txn = self.transactions.begin("apply_ticket").await?;
        let mut log = crate::store::changes::Pending::default();
        let changed = apply::ticket_snapshot(&txn, ticket, &mut log).await?;
        log.append(&txn).await?;
        txn.commit().await?;
        self.applied.committed(ticket);
        self.changes.notify();
        // Linked just now: the update returned it. Otherwise (a retry, or
        // the event got here first) it is read.
        match changed.into_iter().find(|row| row.id == conversation_id) {
            Some(row) => Ok(row),
            None => {
                self.load_conversation(&self.db, account_id, conversation_id)
                    .await
            }
        }
    }
}
