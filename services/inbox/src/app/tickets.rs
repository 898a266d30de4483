//! Ticket management from the sidebar: forwarded to ticketing, which decides
//! (R1, R2, R10); the answer is applied locally at once, so the caller reads
//! its own write, and again when its events arrive (harmlessly).

use kit::{ApiError, identity::Caller};
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};
use sea_orm::TransactionTrait;

use super::{App, apply, from_ticketing};
use crate::convert;

impl App {
    pub async fn create_ticket_for_conversation(
        &self,
        caller: &Caller,
        request_id: String,
        conversation_id: &str,
        overrides: tpb::Ticket,
    ) -> Result<pb::CreateTicketForConversationResponse, ApiError> {
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
            .ticketing
            .clone()
            .create_ticket(self.to_ticketing(caller, request))
            .await
            .map_err(from_ticketing)?
            .into_inner();
        let txn = self.db.begin().await?;
        apply::ticket_snapshot(&txn, &ticket).await?;
        txn.commit().await?;
        let conversation = self
            .load_conversation(&self.db, account_id, conversation_id)
            .await?;
        Ok(pb::CreateTicketForConversationResponse {
            conversation: Some(convert::conversation_to_proto(&conversation)),
            ticket: Some(ticket),
        })
    }
}
