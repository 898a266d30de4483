//! Arbitrary bytes as every ticketing request: decoding, validation and the
//! rule decisions on what validates must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::ticketing::v1 as pb;
use ticketing::{
    api::parse,
    domain::{LinkedConversation, rules},
};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = pb::CreateTicketRequest::decode(bytes)
        && let Ok(input) = parse::new_ticket(request)
    {
        let conversation = input.conversation.as_ref().map(|(facts, _)| facts.clone());
        let request = rules::CreationRequest {
            name: input.name.clone(),
            owner_id: input.owner_id.clone(),
            starts_closed: input.priority % 2 == 0,
        };
        let _ = rules::plan_creation(&request, conversation.as_ref(), None, input.priority > 2);
    }
    if let Ok(request) = pb::UpdateTicketRequest::decode(bytes) {
        let _ = parse::ticket_update(request);
    }
    if let Ok(request) = pb::CreateAccountRequest::decode(bytes) {
        let _ = parse::new_account(request);
    }
    if let Ok(request) = pb::ListTicketsRequest::decode(bytes) {
        let _ = parse::ticket_filter(&request);
    }
    if let Ok(request) = pb::NotifyConversationChangedRequest::decode(bytes)
        && let Ok(report) = ticketing::app::notify::report(&request)
    {
        let _ = rules::consequence_of_report(report.change, &report.conversation, None);
        let linked = [LinkedConversation {
            id: report.conversation.id.clone(),
            open: report.conversation.open,
            trashed: report.conversation.trashed,
        }];
        let _ = rules::stage_change_directives(report.conversation.open, !report.conversation.open, &linked);
    }
    if let Ok(request) = pb::CreatePipelineRequest::decode(bytes)
        && let Some(pipeline) = &request.pipeline
    {
        let _ = ticketing::app::check_pipeline(pipeline);
    }
    if let Ok(request) = pb::CreatePropertyDefinitionRequest::decode(bytes)
        && let Some(definition) = &request.property_definition
    {
        let _ = ticketing::app::check_definition(definition);
    }
    let _ = kit::paging::decode_token(&String::from_utf8_lossy(bytes), "page_token");
});
