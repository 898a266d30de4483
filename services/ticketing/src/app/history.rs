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
        let mut next_page_token = String::new();
        if events.len() as u64 > page_size {
            events.truncate(page_size as usize);
            if let Some(last) = events.last() {
                next_page_token = paging::encode_token(&paging::Cursor {
                    key: last.sequence,
                    id: String::new(),
                });
            }
        }
        Ok(pb::ListHistoryResponse {
            events,
            next_page_token,
        })
    }
}
