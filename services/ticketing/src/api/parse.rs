//! Request → use-case input. Every refusal names the offending field.

use kit::{ApiError, validate};
use proto::ticketing::v1 as pb;

use crate::{
    app::{
        MergeInput, NewAccount, NewTicket, TicketField, TicketFilterInput, TicketUpdate,
        notify::Report,
    },
    convert,
    domain::ConversationFacts,
};

pub fn new_account(request: pb::CreateAccountRequest) -> Result<NewAccount, ApiError> {
    let account = request
        .account
        .ok_or_else(|| ApiError::invalid("account", "is required"))?;
    let created_at = match &account.create_time {
        Some(ts) => kit::time::from_timestamp(ts)
            .ok_or_else(|| ApiError::invalid("account.create_time", "is not a valid timestamp"))?,
        None => kit::time::now_micros(),
    };
    Ok(NewAccount {
        name: validate::required(&account.name, "account.name", validate::MAX_NAME_LEN)?,
        tier: convert::tier(account.tier, "account.tier")?,
        created_at,
    })
}

/// A conversation snapshot and the inbox's version of it.
pub fn versioned_conversation(
    snapshot: &pb::ConversationSnapshot,
    field: &str,
) -> Result<(ConversationFacts, i64), ApiError> {
    if snapshot.version < 0 {
        return Err(ApiError::invalid(
            format!("{field}.version"),
            "must not be negative",
        ));
    }
    Ok((conversation(snapshot, field)?, snapshot.version))
}

pub fn conversation(
    snapshot: &pb::ConversationSnapshot,
    field: &str,
) -> Result<ConversationFacts, ApiError> {
    Ok(ConversationFacts {
        id: validate::id(&snapshot.id, &format!("{field}.id"))?,
        subject: validate::optional(
            &snapshot.subject,
            &format!("{field}.subject"),
            validate::MAX_NAME_LEN,
        )?
        .unwrap_or_default(),
        contact_id: validate::optional_id(&snapshot.contact_id, &format!("{field}.contact_id"))?,
        owner_id: validate::optional_id(&snapshot.owner_id, &format!("{field}.owner_id"))?,
        open: snapshot.open,
        trashed: snapshot.trashed,
    })
}

pub fn new_ticket(request: pb::CreateTicketRequest) -> Result<NewTicket, ApiError> {
    let ticket = request.ticket.unwrap_or_default();
    let conversation = request
        .conversation
        .as_ref()
        .map(|c| versioned_conversation(c, "conversation"))
        .transpose()?;
    if conversation.is_none() && ticket.name.trim().is_empty() {
        return Err(ApiError::invalid(
            "ticket.name",
            "is required without a conversation",
        ));
    }
    Ok(NewTicket {
        name: validate::optional(&ticket.name, "ticket.name", validate::MAX_NAME_LEN)?
            .unwrap_or_default(),
        description: validate::optional(
            &ticket.description,
            "ticket.description",
            validate::MAX_TEXT_LEN,
        )?
        .unwrap_or_default(),
        pipeline_id: validate::optional_id(&ticket.pipeline_id, "ticket.pipeline_id")?,
        stage_id: validate::optional_id(&ticket.stage_id, "ticket.stage_id")?,
        priority: convert::priority(ticket.priority, "ticket.priority")?,
        owner_id: validate::optional_id(&ticket.owner_id, "ticket.owner_id")?,
        properties: ticket.properties,
        conversation,
        surface: convert::surface(request.surface, "surface")?,
    })
}

pub fn ticket_filter(request: &pb::ListTicketsRequest) -> Result<TicketFilterInput, ApiError> {
    let owner_id = match request.owner_id.as_str() {
        "" => None,
        "none" => Some(None),
        owner => Some(Some(validate::id(owner, "owner_id")?)),
    };
    Ok(TicketFilterInput {
        pipeline_id: validate::optional_id(&request.pipeline_id, "pipeline_id")?,
        stage_id: validate::optional_id(&request.stage_id, "stage_id")?,
        owner_id,
        conversation_id: validate::optional_id(&request.conversation_id, "conversation_id")?,
        workspace: convert::workspace_filter(request.workspace, "workspace")?,
        show_deleted: request.show_deleted,
        show_merged: request.show_merged,
    })
}

/// R14: two distinct tickets, each with an optional etag.
pub fn merge(request: &pb::MergeTicketsRequest) -> Result<MergeInput, ApiError> {
    let primary_id = validate::id(&request.primary_id, "primary_id")?;
    let secondary_id = validate::id(&request.secondary_id, "secondary_id")?;
    if primary_id == secondary_id {
        return Err(ApiError::invalid(
            "secondary_id",
            "must differ from primary_id: a ticket cannot be merged into itself",
        ));
    }
    Ok(MergeInput {
        primary_id,
        secondary_id,
        primary_version: validate::parse_etag(&request.primary_etag, "primary_etag")?,
        secondary_version: validate::parse_etag(&request.secondary_etag, "secondary_etag")?,
        surface: convert::surface(request.surface, "surface")?,
    })
}

pub fn ticket_update(request: pb::UpdateTicketRequest) -> Result<TicketUpdate, ApiError> {
    let ticket = request
        .ticket
        .ok_or_else(|| ApiError::invalid("ticket", "is required"))?;
    let mask = request.update_mask.ok_or_else(|| {
        ApiError::invalid("update_mask", "is required: name the fields to change")
    })?;
    if mask.paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "is required: name the fields to change",
        ));
    }
    let mut fields = Vec::new();
    for (i, path) in mask.paths.iter().enumerate() {
        let field = match path.as_str() {
            "name" => TicketField::Name,
            "description" => TicketField::Description,
            // Clients that build masks from JSON names send lowerCamelCase.
            "stage_id" | "stageId" | "stage" => TicketField::Stage,
            "priority" => TicketField::Priority,
            "owner_id" | "ownerId" | "owner" => TicketField::Owner,
            "properties" => TicketField::Properties,
            p if p.starts_with("properties.") => {
                let name = &p["properties.".len()..];
                if !crate::domain::properties::is_valid_name(name) {
                    return Err(ApiError::invalid(
                        format!("update_mask.paths[{i}]"),
                        format!("{} is not a property name", kit::error::quote(name)),
                    ));
                }
                TicketField::Property(name.to_owned())
            }
            other => {
                return Err(ApiError::invalid(
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "{} is not an updatable ticket field",
                        kit::error::quote(other)
                    ),
                ));
            }
        };
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    if fields.contains(&TicketField::Stage) {
        validate::id(&ticket.stage_id, "ticket.stage_id")?;
    }
    Ok(TicketUpdate {
        id: validate::id(&ticket.id, "ticket.id")?,
        expected_version: validate::parse_etag(&ticket.etag, "ticket.etag")?,
        fields,
        name: ticket.name,
        description: validate::optional(
            &ticket.description,
            "ticket.description",
            validate::MAX_TEXT_LEN,
        )?
        .unwrap_or_default(),
        stage_id: ticket.stage_id,
        priority: convert::priority(ticket.priority, "ticket.priority")?,
        owner_id: validate::optional_id(&ticket.owner_id, "ticket.owner_id")?,
        properties: ticket.properties,
        surface: convert::surface(request.surface, "surface")?,
    })
}

/// NotifyConversationChanged: the reported change and the conversation's
/// facts after it, with the inbox's version and change sequence.
pub fn report(request: &pb::NotifyConversationChangedRequest) -> Result<Report, ApiError> {
    let snapshot = request
        .conversation
        .as_ref()
        .ok_or_else(|| ApiError::invalid("conversation", "is required"))?;
    if snapshot.version <= 0 {
        return Err(ApiError::invalid(
            "conversation.version",
            "must be positive",
        ));
    }
    Ok(Report {
        change: convert::reported(request.change, "change")?,
        conversation: conversation(snapshot, "conversation")?,
        version: snapshot.version,
        change_sequence: match snapshot.change_sequence {
            negative if negative < 0 => {
                return Err(ApiError::invalid(
                    "conversation.change_sequence",
                    "must not be negative",
                ));
            }
            sequence => sequence,
        },
    })
}

#[cfg(test)]
mod mask_paths {
    use super::*;

    fn fields(paths: &[&str]) -> Result<Vec<TicketField>, ApiError> {
        let request = pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: "t-1".into(),
                stage_id: "s-1".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            ..Default::default()
        };
        ticket_update(request).map(|update| update.fields)
    }

    /// grpcurl and JSON clients write FieldMask paths as JSON names
    /// (lowerCamelCase); protobuf clients write the proto names. Both mean
    /// the same field, and naming it twice changes it once.
    #[test]
    fn json_and_proto_names_of_a_field_are_the_same_path() {
        assert_eq!(
            fields(&["stageId"]).unwrap(),
            fields(&["stage_id"]).unwrap()
        );
        assert_eq!(
            fields(&["ownerId"]).unwrap(),
            fields(&["owner_id"]).unwrap()
        );
        assert_eq!(
            fields(&["stage_id", "stageId", "ownerId"]).unwrap(),
            vec![TicketField::Stage, TicketField::Owner]
        );
        let err = fields(&["stageID"]).unwrap_err();
        assert!(
            format!("{err:?}").contains("update_mask.paths[0]"),
            "{err:?}"
        );
    }
}

/// Fuzzing of the request edge: arbitrary bytes decoded as each request
/// type (and arbitrary field values) go through validation without a panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic_validation(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(request) = pb::CreateAccountRequest::decode(bytes.as_slice()) {
                let _ = new_account(request);
            }
            if let Ok(request) = pb::CreateTicketRequest::decode(bytes.as_slice()) {
                let _ = new_ticket(request);
            }
            if let Ok(request) = pb::UpdateTicketRequest::decode(bytes.as_slice()) {
                let _ = ticket_update(request);
            }
            if let Ok(request) = pb::ListTicketsRequest::decode(bytes.as_slice()) {
                let _ = ticket_filter(&request);
            }
            if let Ok(request) = pb::NotifyConversationChangedRequest::decode(bytes.as_slice()) {
                let _ = report(&request);
            }
            if let Ok(request) = pb::CreatePipelineRequest::decode(bytes.as_slice())
                && let Some(pipeline) = &request.pipeline
            {
                let _ = crate::app::check_pipeline(pipeline);
            }
            if let Ok(request) = pb::CreatePropertyDefinitionRequest::decode(bytes.as_slice())
                && let Some(definition) = &request.property_definition
            {
                let _ = crate::app::check_definition(definition);
            }
        }

        #[test]
        fn arbitrary_field_values_are_refused_cleanly(
            name in ".{0,600}",
            stage in ".{0,80}",
            priority in any::<i32>(),
            surface in any::<i32>(),
            paths in proptest::collection::vec(".{0,30}", 0..4),
            etag in ".{0,30}",
        ) {
            let request = pb::UpdateTicketRequest {
                request_id: String::new(),
                ticket: Some(pb::Ticket { id: stage.clone(), name, stage_id: stage, priority, etag, ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths }),
                surface,
            };
            if let Err(err) = ticket_update(request) {
                prop_assert!(!matches!(err, ApiError::Internal(_)), "{err:?}");
            }
        }
    }
}
