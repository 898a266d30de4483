//! Proto ⇄ domain and row → proto conversions, all in one place. Enum
//! numbers from callers are checked here: unknown values and UNSPECIFIED
//! where a value is required are INVALID_ARGUMENT.

use std::collections::BTreeMap;

use kit::{ApiError, time};
use prost::Message;
use proto::ticketing::v1 as pb;

use crate::{
    domain::{
        Directive, DirectiveAction, Reported, Surface, Tier, Workspace,
        properties::{PropertyKind, PropertyValue},
    },
    store::{account, pipeline, stage, ticket, ticket_conversation},
};

pub fn tier(value: i32, field: &str) -> Result<Tier, ApiError> {
    match pb::Tier::try_from(value) {
        Ok(pb::Tier::Free) => Ok(Tier::Free),
        Ok(pb::Tier::Starter) => Ok(Tier::Starter),
        Ok(pb::Tier::Professional) => Ok(Tier::Professional),
        Ok(pb::Tier::Enterprise) => Ok(Tier::Enterprise),
        Ok(pb::Tier::Unspecified) => Err(ApiError::invalid(field, "is required")),
        Err(_) => Err(ApiError::invalid(field, format!("unknown tier {value}"))),
    }
}

pub fn tier_to_proto(tier: Tier) -> pb::Tier {
    match tier {
        Tier::Free => pb::Tier::Free,
        Tier::Starter => pb::Tier::Starter,
        Tier::Professional => pb::Tier::Professional,
        Tier::Enterprise => pb::Tier::Enterprise,
    }
}

pub fn surface(value: i32, field: &str) -> Result<Surface, ApiError> {
    match pb::Surface::try_from(value) {
        Ok(pb::Surface::Inbox) => Ok(Surface::Inbox),
        // A direct API call manages tickets as the help desk does.
        Ok(pb::Surface::HelpDesk | pb::Surface::Unspecified) => Ok(Surface::HelpDesk),
        Err(_) => Err(ApiError::invalid(field, format!("unknown surface {value}"))),
    }
}

/// Priority is optional: UNSPECIFIED means none.
pub fn priority(value: i32, field: &str) -> Result<i32, ApiError> {
    pb::Priority::try_from(value)
        .map(|p| p as i32)
        .map_err(|_| ApiError::invalid(field, format!("unknown priority {value}")))
}

/// A filter value: UNSPECIFIED means "any".
pub fn workspace_filter(value: i32, field: &str) -> Result<Option<i32>, ApiError> {
    match pb::Workspace::try_from(value) {
        Ok(pb::Workspace::Unspecified) => Ok(None),
        Ok(w) => Ok(Some(w as i32)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown workspace {value}"),
        )),
    }
}

pub fn workspace_to_proto(workspace: Workspace) -> pb::Workspace {
    match workspace {
        Workspace::Inbox => pb::Workspace::Inbox,
        Workspace::HelpDesk => pb::Workspace::HelpDesk,
    }
}

pub fn directive_to_proto(
    directive: &Directive,
    ticket_id: &str,
    cascade_id: &str,
) -> pb::ConversationDirective {
    pb::ConversationDirective {
        conversation_id: directive.conversation_id.clone(),
        ticket_id: ticket_id.to_owned(),
        action: directive_action_to_proto(directive.action) as i32,
        cascade_id: cascade_id.to_owned(),
        from_ticket_id: String::new(),
    }
}

pub fn account_to_proto(row: &account::Model) -> pb::Account {
    pb::Account {
        id: row.id.clone(),
        name: row.name.clone(),
        tier: row.tier,
        create_time: Some(time::to_timestamp(row.created_at)),
        help_desk: row.help_desk,
    }
}

pub fn pipeline_to_proto(row: &pipeline::Model, stages: &[stage::Model]) -> pb::Pipeline {
    pb::Pipeline {
        id: row.id.clone(),
        name: row.name.clone(),
        stages: stages
            .iter()
            .filter(|s| s.pipeline_id == row.id)
            .map(|s| pb::Stage {
                id: s.id.clone(),
                name: s.name.clone(),
                is_closed: s.is_closed,
            })
            .collect(),
        is_default: row.is_default,
    }
}

pub fn ticket_to_proto(
    row: &ticket::Model,
    stage: &stage::Model,
    links: &[ticket_conversation::Model],
) -> pb::Ticket {
    pb::Ticket {
        id: row.id.clone(),
        account_id: row.account_id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        pipeline_id: row.pipeline_id.clone(),
        stage_id: row.stage_id.clone(),
        priority: row.priority,
        owner_id: row.owner_id.clone().unwrap_or_default(),
        properties: decode_properties(&row.properties, &row.id),
        conversation_ids: links.iter().map(|l| l.conversation_id.clone()).collect(),
        workspace: row.workspace,
        contact_id: row.contact_id.clone().unwrap_or_default(),
        closed: stage.is_closed,
        create_time: Some(time::to_timestamp(row.created_at)),
        update_time: Some(time::to_timestamp(row.updated_at)),
        close_time: time::opt_timestamp(row.closed_at),
        delete_time: time::opt_timestamp(row.deleted_at),
        purge_time: time::opt_timestamp(row.purge_at),
        etag: kit::validate::etag(row.version),
        version: row.version,
        stage_name: stage.name.clone(),
        merged_into: row.merged_into.clone().unwrap_or_default(),
        merge_time: None,
        unmerge_deadline: None,
    }
}

pub fn directive_action_to_proto(action: DirectiveAction) -> pb::DirectiveAction {
    match action {
        DirectiveAction::LinkTicket => pb::DirectiveAction::LinkTicket,
        DirectiveAction::Close => pb::DirectiveAction::Close,
        DirectiveAction::Reopen => pb::DirectiveAction::Reopen,
        DirectiveAction::MoveToHelpDesk => pb::DirectiveAction::MoveToHelpDesk,
        DirectiveAction::Trash => pb::DirectiveAction::Trash,
        DirectiveAction::Restore => pb::DirectiveAction::Restore,
        DirectiveAction::Purge => pb::DirectiveAction::Purge,
        DirectiveAction::MoveToTicket => pb::DirectiveAction::MoveToTicket,
    }
}

pub fn reported(value: i32, field: &str) -> Result<Reported, ApiError> {
    use pb::ConversationChange as C;
    match C::try_from(value) {
        Ok(C::OwnerChanged) => Ok(Reported::OwnerChanged),
        Ok(C::Closed) => Ok(Reported::Closed),
        Ok(C::Reopened) => Ok(Reported::Reopened),
        Ok(C::Trashed) => Ok(Reported::Trashed),
        Ok(C::Restored) => Ok(Reported::Restored),
        Ok(C::IncomingMessage) => Ok(Reported::IncomingMessage),
        Ok(C::Unspecified) => Err(ApiError::invalid(field, "is required")),
        Err(_) => Err(ApiError::invalid(field, format!("unknown change {value}"))),
    }
}

pub fn property_value(value: &pb::PropertyValue, field: &str) -> Result<PropertyValue, ApiError> {
    use pb::property_value::Value;
    match &value.value {
        Some(Value::StringValue(s)) => Ok(PropertyValue::String(s.clone())),
        Some(Value::NumberValue(n)) => Ok(PropertyValue::Number(*n)),
        Some(Value::BoolValue(b)) => Ok(PropertyValue::Bool(*b)),
        Some(Value::DateValue(d)) => Ok(PropertyValue::Date(d.clone())),
        Some(Value::EnumValue(e)) => Ok(PropertyValue::Enum(e.clone())),
        None => Err(ApiError::invalid(field, "holds no value")),
    }
}

pub fn property_kind(definition: &pb::PropertyDefinition) -> Option<PropertyKind> {
    match pb::PropertyType::try_from(definition.r#type).ok()? {
        pb::PropertyType::String => Some(PropertyKind::String),
        pb::PropertyType::Number => Some(PropertyKind::Number),
        pb::PropertyType::Bool => Some(PropertyKind::Bool),
        pb::PropertyType::Date => Some(PropertyKind::Date),
        pb::PropertyType::Enum => Some(PropertyKind::Enum(definition.options.clone())),
        pb::PropertyType::Unspecified => None,
    }
}

/// Stored property values; a row that does not decode shows none (and is
/// logged) rather than failing every read of the ticket.
pub fn decode_properties(bytes: &[u8], ticket_id: &str) -> BTreeMap<String, pb::PropertyValue> {
    match pb::PropertyValues::decode(bytes) {
        Ok(values) => values.values,
        Err(err) => {
            tracing::error!(ticket_id, %err, "stored property values do not decode");
            BTreeMap::new()
        }
    }
}

pub fn encode_properties(values: &BTreeMap<String, pb::PropertyValue>) -> Vec<u8> {
    pb::PropertyValues {
        values: values.clone(),
    }
    .encode_to_vec()
}
