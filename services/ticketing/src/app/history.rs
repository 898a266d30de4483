//! The audit trail of one ticket or conversation, read from the event log:
//! who did what, through which call, and which rule cascaded from what.

use kit::{ApiError, paging};
use proto::ticketing::v1 as pb;

use super::App;
use crate::store::events::{self, Subject};

impl App {
    pub async fn list_history(
        &self,
        account_id: &str,
        request: &pb::ListHistoryRequest,
    ) -> Result<pb::ListHistoryResponse, ApiError> {
        let subject = match &request.subject {
            Some(pb::list_history_request::Subject::TicketId(id)) => {
                Subject::Ticket(kit::validate::id(id, "ticket_id").map(|_| id.as_str())?)
            }
            Some(pb::list_history_request::Subject::ConversationId(id)) => Subject::Conversation(
                kit::validate::id(id, "conversation_id").map(|_| id.as_str())?,
            ),
            None => {
                return Err(ApiError::invalid(
                    "subject",
                    "name a ticket_id or a conversation_id",
                ));
            }
        };
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?.map_or(0, |c| c.key);
        let mut events =
            events::history(&self.db, account_id, subject, after, page_size + 1).await?;
        let next_page_token = paging::next_page(&mut events, page_size, |r| paging::Cursor {
            key: r.sequence,
            id: String::new(),
        });
        Ok(pb::ListHistoryResponse {
            events,
            next_page_token,
        })
    }
}
