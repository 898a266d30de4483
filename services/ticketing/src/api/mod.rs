//! The gRPC surface: each handler identifies the caller, parses the request,
//! calls one use case and returns its answer. No SQL and no rules here.

mod parse;

use kit::{
    ApiError, error::unimplemented, idempotency::Key, identity::Caller, paging, shutdown::Draining,
};
use proto::ticketing::v1::{self as pb, ticketing_service_server::TicketingService};
use tonic::{Request, Response, Status};

use crate::{app::App, stream};

pub struct Api {
    app: App,
    draining: Draining,
}

impl Api {
    pub fn new(app: App, draining: Draining) -> Self {
        Self { app, draining }
    }
}

/// Takes the request id out of a request and fingerprints the rest.
fn key<M: prost::Message>(
    caller: &Caller,
    method: &'static str,
    request_id: &mut String,
    request: &M,
) -> Result<Option<Key>, ApiError> {
    let request_id = std::mem::take(request_id);
    // Account creation has no account yet: its keys share one scope.
    let scope = caller.account_id.as_deref().unwrap_or("-");
    Key::new(scope, &request_id, method, request)
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TicketingService for Api {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Reply<pb::Account> {
        let caller = Caller::from_metadata(request.metadata());
        let mut request = request.into_inner();
        let mut request_id = std::mem::take(&mut request.request_id);
        let key = key(&caller, "CreateAccount", &mut request_id, &request)?;
        let input = parse::new_account(request)?;
        Ok(Response::new(self.app.create_account(input, key).await?))
    }

    async fn get_account(&self, request: Request<pb::GetAccountRequest>) -> Reply<pb::Account> {
        let caller = Caller::from_metadata(request.metadata());
        let id = kit::validate::id(&request.get_ref().id, "id")?;
        Ok(Response::new(self.app.get_account(&caller, &id).await?))
    }

    async fn create_ticket(&self, request: Request<pb::CreateTicketRequest>) -> Reply<pb::Ticket> {
        let caller = Caller::from_metadata(request.metadata());
        caller.account()?;
        let mut request = request.into_inner();
        let mut request_id = std::mem::take(&mut request.request_id);
        let key = key(&caller, "CreateTicket", &mut request_id, &request)?;
        let input = parse::new_ticket(request)?;
        Ok(Response::new(
            self.app.create_ticket(&caller, input, key).await?,
        ))
    }

    async fn get_ticket(&self, request: Request<pb::GetTicketRequest>) -> Reply<pb::Ticket> {
        let caller = Caller::from_metadata(request.metadata());
        let id = kit::validate::id(&request.get_ref().id, "id")?;
        Ok(Response::new(
            self.app.get_ticket(caller.account()?, &id).await?,
        ))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Reply<pb::ListTicketsResponse> {
        let caller = Caller::from_metadata(request.metadata());
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
        let caller = Caller::from_metadata(request.metadata());
        caller.account()?;
        let mut request = request.into_inner();
        let mut request_id = std::mem::take(&mut request.request_id);
        let key = key(&caller, "UpdateTicket", &mut request_id, &request)?;
        let update = parse::ticket_update(request)?;
        Ok(Response::new(
            self.app.update_ticket(&caller, update, key).await?,
        ))
    }

    async fn associate_conversation(
        &self,
        _: Request<pb::AssociateConversationRequest>,
    ) -> Reply<pb::Ticket> {
        Err(unimplemented("AssociateConversation (R3)"))
    }

    async fn delete_ticket(
        &self,
        _: Request<pb::DeleteTicketRequest>,
    ) -> Reply<pb::DeleteTicketResponse> {
        Err(unimplemented("DeleteTicket (R8 trash cascade)"))
    }

    async fn undelete_ticket(
        &self,
        _: Request<pb::UndeleteTicketRequest>,
    ) -> Reply<pb::UndeleteTicketResponse> {
        Err(unimplemented("UndeleteTicket (R9 restore)"))
    }

    async fn notify_conversation_changed(
        &self,
        _: Request<pb::NotifyConversationChangedRequest>,
    ) -> Reply<pb::NotifyConversationChangedResponse> {
        Err(unimplemented("NotifyConversationChanged (R4, R8, R9)"))
    }

    type WatchEventsStream = stream::EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let caller = Caller::from_metadata(request.metadata());
        let stream = stream::watch(
            self.app.clone(),
            &caller,
            request.into_inner(),
            self.draining.clone(),
        )
        .await?;
        Ok(Response::new(stream))
    }

    async fn list_history(
        &self,
        _: Request<pb::ListHistoryRequest>,
    ) -> Reply<pb::ListHistoryResponse> {
        Err(unimplemented("ListHistory (audit trail)"))
    }

    async fn list_pipelines(
        &self,
        request: Request<pb::ListPipelinesRequest>,
    ) -> Reply<pb::ListPipelinesResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let request = request.get_ref();
        let page_size = paging::page_size(request.page_size, "page_size")?;
        let after = paging::decode_token(&request.page_token, "page_token")?;
        Ok(Response::new(
            self.app
                .list_pipelines(caller.account()?, page_size, after)
                .await?,
        ))
    }

    async fn create_pipeline(&self, _: Request<pb::CreatePipelineRequest>) -> Reply<pb::Pipeline> {
        Err(unimplemented("CreatePipeline (custom pipelines)"))
    }

    async fn list_property_definitions(
        &self,
        _: Request<pb::ListPropertyDefinitionsRequest>,
    ) -> Reply<pb::ListPropertyDefinitionsResponse> {
        Err(unimplemented("ListPropertyDefinitions"))
    }

    async fn create_property_definition(
        &self,
        _: Request<pb::CreatePropertyDefinitionRequest>,
    ) -> Reply<pb::PropertyDefinition> {
        Err(unimplemented("CreatePropertyDefinition"))
    }
}
