//! Proto ⇄ row conversions of the inbox, all in one place. Enum numbers from
//! callers are checked here.

use kit::{ApiError, time};
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};

use crate::store::{contact, conversation, message};

pub fn channel(value: i32, field: &str) -> Result<i32, ApiError> {
    match pb::Channel::try_from(value) {
        Ok(pb::Channel::Unspecified) => Err(ApiError::invalid(field, "is required")),
        Ok(channel) => Ok(channel as i32),
        Err(_) => Err(ApiError::invalid(field, format!("unknown channel {value}"))),
    }
}

pub fn direction(value: i32, field: &str) -> Result<pb::Direction, ApiError> {
    match pb::Direction::try_from(value) {
        Ok(pb::Direction::Unspecified) => Err(ApiError::invalid(field, "is required")),
        Ok(direction) => Ok(direction),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown direction {value}"),
        )),
    }
}

/// A filter value: UNSPECIFIED means "any".
pub fn status_filter(value: i32, field: &str) -> Result<Option<i32>, ApiError> {
    match pb::ConversationStatus::try_from(value) {
        Ok(pb::ConversationStatus::Unspecified) => Ok(None),
        Ok(status) => Ok(Some(status as i32)),
        Err(_) => Err(ApiError::invalid(field, format!("unknown status {value}"))),
    }
}

pub fn workspace_filter(value: i32, field: &str) -> Result<Option<i32>, ApiError> {
    match tpb::Workspace::try_from(value) {
        Ok(tpb::Workspace::Unspecified) => Ok(None),
        Ok(workspace) => Ok(Some(workspace as i32)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown workspace {value}"),
        )),
    }
}

pub fn is_open(row: &conversation::Model) -> bool {
    row.status == pb::ConversationStatus::Open as i32
}

pub fn conversation_to_proto(row: &conversation::Model) -> pb::Conversation {
    conversation_into_proto(row.clone())
}

/// The same, moving the row's strings instead of copying them: lists
/// convert a page of rows they no longer need.
pub fn conversation_into_proto(row: conversation::Model) -> pb::Conversation {
    pb::Conversation {
        id: row.id,
        account_id: row.account_id,
        subject: row.subject,
        contact_id: row.contact_id,
        channel: row.channel,
        status: row.status,
        owner_id: row.owner_id.unwrap_or_default(),
        workspace: row.workspace,
        ticket_id: row.ticket_id.unwrap_or_default(),
        create_time: Some(time::to_timestamp(row.created_at)),
        update_time: Some(time::to_timestamp(row.updated_at)),
        delete_time: time::opt_timestamp(row.deleted_at),
        etag: kit::validate::etag(row.version),
        version: row.version,
    }
}

/// What ticketing needs to know of a conversation to apply its rules.
pub fn snapshot(row: &conversation::Model) -> tpb::ConversationSnapshot {
    tpb::ConversationSnapshot {
        id: row.id.clone(),
        subject: row.subject.clone(),
        contact_id: row.contact_id.clone(),
        owner_id: row.owner_id.clone().unwrap_or_default(),
        open: is_open(row),
        trashed: row.deleted_at.is_some(),
        version: row.version,
        change_sequence: 0,
    }
}

pub fn contact_to_proto(row: &contact::Model) -> pb::Contact {
    pb::Contact {
        id: row.id.clone(),
        account_id: row.account_id.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        create_time: Some(time::to_timestamp(row.created_at)),
    }
}

pub fn message_to_proto(row: &message::Model) -> pb::Message {
    pb::Message {
        id: row.id.clone(),
        conversation_id: row.conversation_id.clone(),
        direction: row.direction,
        author: row.author.clone(),
        body: row.body.clone(),
        create_time: Some(time::to_timestamp(row.created_at)),
    }
}
