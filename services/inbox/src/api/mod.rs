//! The gRPC surface of the inbox: each handler identifies the caller, parses
//! the request, calls one use case and returns its answer.

pub mod parse;

use kit::{call::Mutation, idempotency::FirstAnswer, identity::Caller, paging};
use proto::{
    inbox::v1::{self as pb, inbox_service_server::InboxService},
    ticketing::v1 as tpb,
};
use tonic::{Request, Response, Status};

use crate::{state::App, watch};

pub struct Api {
    app: App,
    draining: kit::shutdown::Draining,
    /// The newest changes of each watched account, shared by its streams.
    tails: std::sync::Arc<watch::tail::Tails>,
}

impl Api {
    pub fn new(app: App, draining: kit::shutdown::Draining) -> Self {
        Self {
            app,
            draining,
            tails: Default::default(),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl InboxService for Api {
    async fn create_conversation(
        &self,
        request: Request<pb::CreateConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let Mutation {
            account_id,
            request,
            key,
            ..
        } = Mutation::of(request, "CreateConversation", |r| &mut r.request_id)?;
        let input = parse::new_conversation(request)?;
        Ok(Response::new(
            self.app
                .create_conversation(&account_id, input, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let caller = Caller::of(&request)?;
        let id = kit::validate::id(&request.get_ref().id, "id")?;
        Ok(Response::new(
            self.app.get_conversation(caller.account()?, &id).await?,
        ))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Reply<pb::ListConversationsResponse> {
        let caller = Caller::of(&request)?;
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
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "AddMessage", |r| &mut r.request_id)?;
        let input = parse::new_message(request)?;
        Ok(Response::new(
            self.app
                .add_message(&caller, input, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Reply<pb::ListMessagesResponse> {
        let caller = Caller::of(&request)?;
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
        request: Request<pb::AssignConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "AssignConversation", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let owner = kit::validate::optional_id(&request.owner_id, "owner_id")?;
        let etag = kit::validate::parse_etag(&request.etag, "etag")?;
        Ok(Response::new(
            self.app
                .assign_conversation(&caller, &id, owner, etag, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn close_conversation(
        &self,
        request: Request<pb::CloseConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "CloseConversation", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let etag = kit::validate::parse_etag(&request.etag, "etag")?;
        Ok(Response::new(
            self.app
                .set_conversation_open(&caller, &id, false, etag, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn reopen_conversation(
        &self,
        request: Request<pb::ReopenConversationRequest>,
    ) -> Reply<pb::Conversation> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "ReopenConversation", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let etag = kit::validate::parse_etag(&request.etag, "etag")?;
        Ok(Response::new(
            self.app
                .set_conversation_open(&caller, &id, true, etag, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn trash_conversation(
        &self,
        request: Request<pb::TrashConversationRequest>,
    ) -> Reply<pb::TrashConversationResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "TrashConversation", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let etag = kit::validate::parse_etag(&request.etag, "etag")?;
        Ok(Response::new(
            self.app
                .trash_conversation(&caller, &id, etag, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn restore_conversation(
        &self,
        request: Request<pb::RestoreConversationRequest>,
    ) -> Reply<pb::RestoreConversationResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "RestoreConversation", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        Ok(Response::new(
            self.app
                .restore_conversation(&caller, &id, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn create_ticket_for_conversation(
        &self,
        request: Request<pb::CreateTicketForConversationRequest>,
    ) -> Reply<pb::CreateTicketForConversationResponse> {
        // The client's id goes on to ticketing too, so a retry after the
        // inbox lost the answer still creates one ticket.
        let Mutation {
            caller,
            request,
            request_id,
            key,
            ..
        } = Mutation::of(request, "CreateTicketForConversation", |r| {
            &mut r.request_id
        })?;
        let conversation_id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let overrides = request.ticket.unwrap_or_default();
        Ok(Response::new(
            self.app
                .create_ticket_for_conversation(
                    &caller,
                    request_id,
                    &conversation_id,
                    overrides,
                    key.clone(),
                )
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn update_conversation_ticket(
        &self,
        request: Request<pb::UpdateConversationTicketRequest>,
    ) -> Reply<tpb::Ticket> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        kit::call::passed_on(&request.request_id)?;
        Ok(Response::new(
            self.app
                .update_conversation_ticket(&caller, request)
                .await?,
        ))
    }

    async fn add_conversation_to_ticket(
        &self,
        request: Request<pb::AddConversationToTicketRequest>,
    ) -> Reply<pb::AddConversationToTicketResponse> {
        let caller = Caller::of(&request)?;
        caller.account()?;
        let request = request.into_inner();
        kit::call::passed_on(&request.request_id)?;
        let conversation_id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let ticket_id = kit::validate::id(&request.ticket_id, "ticket_id")?;
        Ok(Response::new(
            self.app
                .add_conversation_to_ticket(
                    &caller,
                    request.request_id,
                    &conversation_id,
                    &ticket_id,
                )
                .await?,
        ))
    }

    async fn get_conversation_context(
        &self,
        request: Request<pb::GetConversationContextRequest>,
    ) -> Reply<pb::ConversationContext> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(
            self.app
                .conversation_context(&caller, request.get_ref())
                .await?,
        ))
    }

    async fn get_displayed_properties(
        &self,
        request: Request<pb::GetDisplayedPropertiesRequest>,
    ) -> Reply<pb::DisplayedProperties> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(
            self.app.get_displayed_properties(&caller).await?,
        ))
    }

    async fn set_displayed_properties(
        &self,
        request: Request<pb::SetDisplayedPropertiesRequest>,
    ) -> Reply<pb::DisplayedProperties> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        kit::call::passed_on(&request.request_id)?;
        Ok(Response::new(
            self.app
                .set_displayed_properties(&caller, request.property_names)
                .await?,
        ))
    }

    type WatchConversationsStream = watch::ChangeStream;

    async fn watch_conversations(
        &self,
        request: Request<pb::WatchConversationsRequest>,
    ) -> Reply<Self::WatchConversationsStream> {
        let caller = Caller::of(&request)?;
        let after = request.get_ref().after_sequence;
        let stream = watch::watch(
            self.app.clone(),
            self.tails.clone(),
            &caller,
            after,
            self.draining.clone(),
        )
        .await?;
        Ok(Response::new(stream))
    }
}
