//! Arbitrary bytes as every ticketing request: decoding, validation and the
//! rule decisions on what validates must never panic or hang, and no
//! refusal may be INTERNAL or over 4 KiB (see answers.rs).
#![no_main]

mod answers;

use answers::{check, decode};
use libfuzzer_sys::fuzz_target;
use proto::ticketing::v1 as pb;
use ticketing::{
    api::parse,
    domain::{LinkedConversation, rules},
};

fuzz_target!(|bytes: &[u8]| {
    if let Some(request) = decode::<pb::CreateTicketRequest>(bytes)
        && let Some(input) = check(parse::new_ticket(request))
    {
        let conversation = input.conversation.as_ref().map(|(facts, _)| facts.clone());
        let request = rules::CreationRequest {
            name: input.name.clone(),
            owner_id: input.owner_id.clone(),
            starts_closed: input.priority % 2 == 0,
        };
        let _ = rules::plan_creation(&request, conversation.as_ref(), None, input.priority > 2);
    }
    if let Some(request) = decode::<pb::UpdateTicketRequest>(bytes) {
        check(parse::ticket_update(request));
    }
    if let Some(request) = decode::<pb::CreateAccountRequest>(bytes) {
        check(parse::new_account(request));
    }
    if let Some(request) = decode::<pb::ListTicketsRequest>(bytes) {
        check(parse::ticket_filter(&request));
    }
    if let Some(request) = decode::<pb::NotifyConversationChangedRequest>(bytes)
        && let Some(report) = check(ticketing::api::parse::report(&request))
    {
        let _ = rules::consequence_of_report(report.change, &report.conversation, None);
        let linked = [LinkedConversation {
            id: report.conversation.id.clone(),
            open: report.conversation.open,
            trashed: report.conversation.trashed,
        }];
        let _ = rules::stage_change_directives(report.conversation.open, !report.conversation.open, &linked);
    }
    if let Some(request) = decode::<pb::CreatePipelineRequest>(bytes)
        && let Some(pipeline) = &request.pipeline
    {
        check(ticketing::app::check_pipeline(pipeline));
    }
    if let Some(request) = decode::<pb::CreatePropertyDefinitionRequest>(bytes)
        && let Some(definition) = &request.property_definition
    {
        check(ticketing::app::check_definition(definition));
    }
    check(kit::paging::decode_token(
        &String::from_utf8_lossy(bytes),
        "page_token",
    ));
});
