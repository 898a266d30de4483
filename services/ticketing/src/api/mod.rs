//! The gRPC surface: each handler identifies the caller, parses the request,
//! calls one use case and returns its answer. No SQL and no rules here.

pub mod parse;

use kit::{
    ApiError, call::Mutation, idempotency::FirstAnswer, identity::Caller, paging,
    shutdown::Draining,
};
use proto::ticketing::v1::{self as pb, ticketing_service_server::TicketingService};
use tonic::{Request, Response, Status};

use crate::{app::App, convert, stream};

pub struct Api {
    app: App,
    draining: Draining,
}

impl Api {
    pub fn new(app: App, draining: Draining) -> Self {
        Self { app, draining }
    }
}

/// What a request asks for, without the conversation facts the inbox
/// attaches: a retry carries newer facts (the conversation's version moved
/// when it got its ticket) but the same intent.
fn intent<M: Clone>(
    request: &M,
    snapshot: impl Fn(&mut M) -> &mut Option<pb::ConversationSnapshot>,
) -> M {
    let mut intent = request.clone();
    if let Some(conversation) = snapshot(&mut intent).as_mut() {
        *conversation = pb::ConversationSnapshot {
            id: std::mem::take(&mut conversation.id),
            ..Default::default()
        };
    }
    intent
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TicketingService for Api {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Reply<pb::Account> {
        let Mutation { request, key, .. } =
            Mutation::unscoped(request, "CreateAccount", |r| &mut r.request_id)?;
        let input = parse::new_account(request)?;
        Ok(Response::new(
            self.app
                .create_account(input, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn get_account(&self, request: Request<pb::GetAccountRequest>) -> Reply<pb::Account> {
        let caller = Caller::of(&request)?;
        let id = kit::validate::id(&request.get_ref().id, "id")?;
        Ok(Response::new(self.app.get_account(&caller, &id).await?))
    }

    async fn create_ticket(&self, request: Request<pb::CreateTicketRequest>) -> Reply<pb::Ticket> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of_intent(
            request,
            "CreateTicket",
            |r| &mut r.request_id,
            |r| intent(r, |r| &mut r.conversation),
        )?;
        let input = parse::new_ticket(request)?;
        Ok(Response::new(
            self.app
                .create_ticket(&caller, input, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn get_ticket(&self, request: Request<pb::GetTicketRequest>) -> Reply<pb::Ticket> {
        let caller = Caller::of(&request)?;
        let id = kit::validate::id(&request.get_ref().id, "id")?;
        Ok(Response::new(
            self.app.get_ticket(caller.account()?, &id).await?,
        ))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Reply<pb::ListTicketsResponse> {
        let caller = Caller::of(&request)?;
        let request = request.get_ref();
        let filter = parse::ticket_filter(request)?;
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?;
        Ok(Response::new(
            self.app
                .list_tickets(caller.account()?, &filter, page_size, after)
                .await?,
        ))
    }

    async fn update_ticket(&self, request: Request<pb::UpdateTicketRequest>) -> Reply<pb::Ticket> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "UpdateTicket", |r| &mut r.request_id)?;
        let update = parse::ticket_update(request)?;
        Ok(Response::new(
            self.app
                .update_ticket(&caller, update, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn associate_conversation(
        &self,
        request: Request<pb::AssociateConversationRequest>,
    ) -> Reply<pb::Ticket> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of_intent(
            request,
            "AssociateConversation",
            |r| &mut r.request_id,
            |r| intent(r, |r| &mut r.conversation),
        )?;
        let ticket_id = kit::validate::id(&request.ticket_id, "ticket_id")?;
        let snapshot = request
            .conversation
            .as_ref()
            .ok_or_else(|| ApiError::invalid("conversation", "is required"))?;
        let conversation = parse::versioned_conversation(snapshot, "conversation")?;
        let surface = convert::surface(request.surface, "surface")?;
        Ok(Response::new(
            self.app
                .associate_conversation(&caller, &ticket_id, conversation, surface, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn delete_ticket(
        &self,
        request: Request<pb::DeleteTicketRequest>,
    ) -> Reply<pb::DeleteTicketResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "DeleteTicket", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.id, "id")?;
        let expected = kit::validate::parse_etag(&request.etag, "etag")?;
        let surface = convert::surface(request.surface, "surface")?;
        Ok(Response::new(
            self.app
                .delete_ticket(&caller, &id, expected, surface, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn undelete_ticket(
        &self,
        request: Request<pb::UndeleteTicketRequest>,
    ) -> Reply<pb::UndeleteTicketResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "UndeleteTicket", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.id, "id")?;
        let surface = convert::surface(request.surface, "surface")?;
        Ok(Response::new(
            self.app
                .undelete_ticket(&caller, &id, surface, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn notify_conversation_changed(
        &self,
        request: Request<pb::NotifyConversationChangedRequest>,
    ) -> Reply<pb::NotifyConversationChangedResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "NotifyConversationChanged", |r| &mut r.request_id)?;
        let report = parse::report(&request)?;
        Ok(Response::new(
            self.app
                .notify_conversation_changed(&caller, report, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    type WatchEventsStream = stream::EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let caller = Caller::of(&request)?;
        let stream = stream::watch(
            self.app.clone(),
            &caller,
            request.into_inner(),
            self.draining.clone(),
        )
        .await?;
        Ok(Response::new(stream))
    }

    async fn acknowledge_events(
        &self,
        request: Request<pb::AcknowledgeEventsRequest>,
    ) -> Reply<pb::AcknowledgeEventsResponse> {
        let request = request.into_inner();
        let consumer = kit::validate::id(&request.consumer, "consumer")?;
        let mut cursors = Vec::with_capacity(request.cursors.len());
        for (i, cursor) in request.cursors.into_iter().enumerate() {
            let account =
                kit::validate::id(&cursor.account_id, &format!("cursors[{i}].account_id"))?;
            cursors.push((account, cursor.after_sequence));
        }
        self.app.acknowledge_events(&consumer, cursors).await?;
        Ok(Response::new(pb::AcknowledgeEventsResponse {}))
    }

    async fn merge_tickets(
        &self,
        request: Request<pb::MergeTicketsRequest>,
    ) -> Reply<pb::MergeTicketsResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "MergeTickets", |r| &mut r.request_id)?;
        let input = parse::merge(&request)?;
        Ok(Response::new(
            self.app
                .merge_tickets(&caller, input, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn unmerge_ticket(
        &self,
        request: Request<pb::UnmergeTicketRequest>,
    ) -> Reply<pb::UnmergeTicketResponse> {
        let Mutation {
            caller,
            request,
            key,
            ..
        } = Mutation::of(request, "UnmergeTicket", |r| &mut r.request_id)?;
        let id = kit::validate::id(&request.id, "id")?;
        let surface = convert::surface(request.surface, "surface")?;
        Ok(Response::new(
            self.app
                .unmerge_ticket(&caller, &id, surface, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn list_history(
        &self,
        request: Request<pb::ListHistoryRequest>,
    ) -> Reply<pb::ListHistoryResponse> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(
            self.app
                .list_history(caller.account()?, request.get_ref())
                .await?,
        ))
    }

    async fn list_pipelines(
        &self,
        request: Request<pb::ListPipelinesRequest>,
    ) -> Reply<pb::ListPipelinesResponse> {
        let caller = Caller::of(&request)?;
        let request = request.get_ref();
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?;
        Ok(Response::new(
            self.app
                .list_pipelines(caller.account()?, page_size, after)
                .await?,
        ))
    }

    async fn create_pipeline(
        &self,
        request: Request<pb::CreatePipelineRequest>,
    ) -> Reply<pb::Pipeline> {
        let Mutation {
            account_id,
            request,
            key,
            ..
        } = Mutation::of(request, "CreatePipeline", |r| &mut r.request_id)?;
        let pipeline = request
            .pipeline
            .as_ref()
            .ok_or_else(|| ApiError::invalid("pipeline", "is required"))?;
        let (name, stages) = crate::app::check_pipeline(pipeline)?;
        Ok(Response::new(
            self.app
                .create_pipeline(&account_id, name, stages, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }

    async fn list_property_definitions(
        &self,
        request: Request<pb::ListPropertyDefinitionsRequest>,
    ) -> Reply<pb::ListPropertyDefinitionsResponse> {
        let caller = Caller::of(&request)?;
        let request = request.get_ref();
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?;
        Ok(Response::new(
            self.app
                .list_property_definitions(caller.account()?, page_size, after)
                .await?,
        ))
    }

    async fn create_property_definition(
        &self,
        request: Request<pb::CreatePropertyDefinitionRequest>,
    ) -> Reply<pb::PropertyDefinition> {
        let Mutation {
            account_id,
            request,
            key,
            ..
        } = Mutation::of(request, "CreatePropertyDefinition", |r| &mut r.request_id)?;
        let definition = request
            .property_definition
            .ok_or_else(|| ApiError::invalid("property_definition", "is required"))?;
        Ok(Response::new(
            self.app
                .create_property_definition(&account_id, definition, key.clone())
                .await
                .or_first_answer(key.as_ref(), &self.app.db)
                .await?,
        ))
    }
}
