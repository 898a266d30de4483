//! Request → use-case input. Every refusal names the offending field.

use kit::{ApiError, validate};
use proto::inbox::v1 as pb;

use crate::{
    app::{ConversationFilterInput, NewConversation, NewMessage},
    convert,
};

const MAX_EMAIL_LEN: usize = 254;

pub fn email(value: &str, field: &str) -> Result<String, ApiError> {
    let email = validate::required(value, field, MAX_EMAIL_LEN)?.to_lowercase();
    let well_formed = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    };
    if well_formed {
        Ok(email)
    } else {
        Err(ApiError::invalid(field, "is not an email address"))
    }
}

pub fn new_conversation(
    request: pb::CreateConversationRequest,
) -> Result<NewConversation, ApiError> {
    let conversation = request
        .conversation
        .ok_or_else(|| ApiError::invalid("conversation", "is required"))?;
    let contact = request
        .contact
        .ok_or_else(|| ApiError::invalid("contact", "is required"))?;
    let first = request
        .first_message
        .ok_or_else(|| ApiError::invalid("first_message", "is required"))?;
    let email = email(&contact.email, "contact.email")?;
    Ok(NewConversation {
        subject: validate::required(
            &conversation.subject,
            "conversation.subject",
            validate::MAX_NAME_LEN,
        )?,
        channel: convert::channel(conversation.channel, "conversation.channel")?,
        contact_name: validate::optional(&contact.name, "contact.name", validate::MAX_NAME_LEN)?
            .unwrap_or_default(),
        body: validate::required(&first.body, "first_message.body", validate::MAX_TEXT_LEN)?,
        author: validate::optional(
            &first.author,
            "first_message.author",
            validate::MAX_NAME_LEN,
        )?
        .unwrap_or_else(|| email.clone()),
        email,
    })
}

pub fn new_message(request: pb::AddMessageRequest) -> Result<NewMessage, ApiError> {
    let message = request
        .message
        .ok_or_else(|| ApiError::invalid("message", "is required"))?;
    let direction = convert::direction(message.direction, "message.direction")?;
    let seen_message_id = validate::optional_id(&request.seen_message_id, "seen_message_id")?;
    if seen_message_id.is_some() && direction != pb::Direction::Outgoing {
        return Err(ApiError::invalid(
            "seen_message_id",
            "only a reply (OUTGOING) names the newest message its author saw (R17)",
        ));
    }
    Ok(NewMessage {
        conversation_id: validate::id(&request.conversation_id, "conversation_id")?,
        direction,
        author: validate::required(&message.author, "message.author", validate::MAX_NAME_LEN)?,
        body: validate::required(&message.body, "message.body", validate::MAX_TEXT_LEN)?,
        seen_message_id,
    })
}

pub fn conversation_filter(
    request: &pb::ListConversationsRequest,
) -> Result<ConversationFilterInput, ApiError> {
    let owner_id = match request.owner_id.as_str() {
        "" => None,
        "none" => Some(None),
        owner => Some(Some(validate::id(owner, "owner_id")?)),
    };
    Ok(ConversationFilterInput {
        status: convert::status_filter(request.status, "status")?,
        owner_id,
        contact_id: validate::optional_id(&request.contact_id, "contact_id")?,
        workspace: convert::workspace_filter(request.workspace, "workspace")?,
        show_deleted: request.show_deleted,
        except_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            email(" Ana@Example.COM ", "contact.email").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "a b@example.com",
            "ana@localhost",
        ] {
            assert!(email(bad, "contact.email").is_err(), "{bad}");
        }
    }
}

/// Fuzzing of the request edge: arbitrary bytes decoded as each request type
/// go through validation without a panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic_validation(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(request) = pb::CreateConversationRequest::decode(bytes.as_slice()) {
                let _ = new_conversation(request);
            }
            if let Ok(request) = pb::AddMessageRequest::decode(bytes.as_slice()) {
                let _ = new_message(request);
            }
            if let Ok(request) = pb::ListConversationsRequest::decode(bytes.as_slice()) {
                let _ = conversation_filter(&request);
            }
        }

        #[test]
        fn arbitrary_emails_never_panic(text in ".{0,300}") {
            let _ = email(&text, "contact.email");
        }
    }
}
