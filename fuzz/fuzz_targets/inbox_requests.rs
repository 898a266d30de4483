//! Arbitrary bytes as every inbox request: decoding and validation must
//! never panic or hang, and no refusal may be INTERNAL or over 4 KiB (see
//! answers.rs).
#![no_main]

mod answers;

use answers::{check, decode};
use inbox::api::parse;
use libfuzzer_sys::fuzz_target;
use proto::inbox::v1 as pb;

fuzz_target!(|bytes: &[u8]| {
    if let Some(request) = decode::<pb::CreateConversationRequest>(bytes) {
        check(parse::new_conversation(request));
    }
    if let Some(request) = decode::<pb::AddMessageRequest>(bytes) {
        check(parse::new_message(request));
    }
    if let Some(request) = decode::<pb::ListConversationsRequest>(bytes) {
        check(parse::conversation_filter(&request));
    }
    check(parse::email(&String::from_utf8_lossy(bytes), "contact.email"));
});
