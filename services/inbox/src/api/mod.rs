//! The gRPC surface of the inbox: each handler identifies the caller, parses
//! the request, calls one use case and returns its answer.

mod parse;

use kit::{ApiError, error::unimplemented, idempotency::Key, identity::Caller, paging};
use proto::{
    inbox::v1::{self as pb, inbox_service_server::InboxService},
    ticketing::v1 as tpb,
};
use tonic::{Request, Response, Status};

use crate::app::App;

pub struct Api {
    app: App,
}

impl Api {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Takes the request id out of a request and fingerprints the rest.
fn key<M: prost::Message>(
    account_id: &str,
    method: &'static str,
    request_id: String,
    request: &M,
) -> Result<Option<Key>, ApiError> {
    Key::new(account_id, &request_id, method, request)
}

#[tonic::async_trait]
impl InboxService for Api {
    async fn create_conversation(
        &self,
        request: Request<pb::CreateConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let caller = Caller::from_metadata(request.metadata());
        let account_id = caller.account()?;
        let mut request = request.into_inner();
        let request_id = std::mem::take(&mut request.request_id);
        let key = key(account_id, "CreateConversation", request_id, &request)?;
        let input = parse::new_conversation(request)?;
        Ok(Response::new(
            self.app.create_conversation(account_id, input, key).await?,
        ))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let caller = Caller::from_metadata(request.metadata());
        let id = kit::validate::id(&request.get_ref().id, "id")?;
        Ok(Response::new(
            self.app.get_conversation(caller.account()?, &id).await?,
        ))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Reply<pb::ListConversationsResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let request = request.get_ref();
        let filter = parse::conversation_filter(request)?;
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?;
        Ok(Response::new(
            self.app
                .list_conversations(caller.account()?, &filter, page_size, after)
                .await?,
        ))
    }

    async fn add_message(&self, request: Request<pb::AddMessageRequest>) -> Reply<pb::Message> {
        let caller = Caller::from_metadata(request.metadata());
        let account_id = caller.account()?;
        let mut request = request.into_inner();
        let request_id = std::mem::take(&mut request.request_id);
        let key = key(account_id, "AddMessage", request_id, &request)?;
        let input = parse::new_message(request)?;
        Ok(Response::new(
            self.app.add_message(account_id, input, key).await?,
        ))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Reply<pb::ListMessagesResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let request = request.get_ref();
        let conversation_id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?;
        Ok(Response::new(
            self.app
                .list_messages(caller.account()?, &conversation_id, page_size, after)
                .await?,
        ))
    }

    async fn assign_conversation(
        &self,
        _: Request<pb::AssignConversationRequest>,
    ) -> Reply<pb::Conversation> {
        Err(unimplemented("AssignConversation (R4 owner sync)"))
    }

    async fn close_conversation(
        &self,
        _: Request<pb::CloseConversationRequest>,
    ) -> Reply<pb::Conversation> {
        Err(unimplemented("CloseConversation (R7)"))
    }

    async fn reopen_conversation(
        &self,
        _: Request<pb::ReopenConversationRequest>,
    ) -> Reply<pb::Conversation> {
        Err(unimplemented("ReopenConversation (R7)"))
    }

    async fn trash_conversation(
        &self,
        _: Request<pb::TrashConversationRequest>,
    ) -> Reply<pb::TrashConversationResponse> {
        Err(unimplemented("TrashConversation (R8)"))
    }

    async fn restore_conversation(
        &self,
        _: Request<pb::RestoreConversationRequest>,
    ) -> Reply<pb::RestoreConversationResponse> {
        Err(unimplemented("RestoreConversation (R9)"))
    }

    async fn create_ticket_for_conversation(
        &self,
        request: Request<pb::CreateTicketForConversationRequest>,
    ) -> Reply<pb::CreateTicketForConversationResponse> {
        let caller = Caller::from_metadata(request.metadata());
        caller.account()?;
        let request = request.into_inner();
        if !request.request_id.is_empty() {
            kit::idempotency::validate_request_id(&request.request_id)?;
        }
        let conversation_id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let overrides = request.ticket.unwrap_or_default();
        Ok(Response::new(
            self.app
                .create_ticket_for_conversation(
                    &caller,
                    request.request_id,
                    &conversation_id,
                    overrides,
                )
                .await?,
        ))
    }

    async fn update_conversation_ticket(
        &self,
        _: Request<pb::UpdateConversationTicketRequest>,
    ) -> Reply<tpb::Ticket> {
        Err(unimplemented("UpdateConversationTicket (R10)"))
    }

    async fn add_conversation_to_ticket(
        &self,
        _: Request<pb::AddConversationToTicketRequest>,
    ) -> Reply<pb::AddConversationToTicketResponse> {
        Err(unimplemented("AddConversationToTicket (R3)"))
    }

    async fn get_conversation_context(
        &self,
        _: Request<pb::GetConversationContextRequest>,
    ) -> Reply<pb::ConversationContext> {
        Err(unimplemented("GetConversationContext (R12)"))
    }

    async fn get_displayed_properties(
        &self,
        _: Request<pb::GetDisplayedPropertiesRequest>,
    ) -> Reply<pb::DisplayedProperties> {
        Err(unimplemented("GetDisplayedProperties (R11)"))
    }

    async fn set_displayed_properties(
        &self,
        _: Request<pb::SetDisplayedPropertiesRequest>,
    ) -> Reply<pb::DisplayedProperties> {
        Err(unimplemented("SetDisplayedProperties (R11)"))
    }

    type WatchConversationsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::WatchConversationsResponse, Status>> + Send>,
    >;

    async fn watch_conversations(
        &self,
        _: Request<pb::WatchConversationsRequest>,
    ) -> Reply<Self::WatchConversationsStream> {
        Err(unimplemented("WatchConversations"))
    }
}
