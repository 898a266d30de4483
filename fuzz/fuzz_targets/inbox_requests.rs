//! Arbitrary bytes as every inbox request: decoding and validation must
//! never panic or hang.
#![no_main]

use inbox::api::parse;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::inbox::v1 as pb;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = pb::CreateConversationRequest::decode(bytes) {
        let _ = parse::new_conversation(request);
    }
    if let Ok(request) = pb::AddMessageRequest::decode(bytes) {
        let _ = parse::new_message(request);
    }
    if let Ok(request) = pb::ListConversationsRequest::decode(bytes) {
        let _ = parse::conversation_filter(&request);
    }
    let _ = parse::email(&String::from_utf8_lossy(bytes), "contact.email");
});
