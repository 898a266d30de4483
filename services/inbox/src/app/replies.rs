//! R17: a reply written against a conversation that has changed since its
//! author read it is refused, so an agent never answers a question the
//! customer has already changed or a colleague has already answered. The
//! messages live in the inbox, so the inbox decides this rule; it needs
//! nothing from ticketing and keeps working while ticketing is down.

use kit::{ApiError, paging::Cursor};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::store::{message, queries};

/// How many of the newer messages' ids the refusal lists.
const LISTED: u64 = 20;

/// Refuses the reply if the conversation has messages newer than
/// `seen_message_id`. Call with the conversation row locked, so a reply
/// committed meanwhile counts as newer.
pub async fn check_not_crossed(
    conn: &impl ConnectionTrait,
    account_id: &str,
    conversation_id: &str,
    seen_message_id: &str,
) -> Result<(), ApiError> {
    let seen = message::Entity::find_by_id(seen_message_id.to_owned())
        .filter(message::Column::AccountId.eq(account_id))
        .filter(message::Column::ConversationId.eq(conversation_id))
        .one(conn)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "seen_message_id",
                format!("no message {seen_message_id} in conversation {conversation_id}"),
            )
        })?;
    let after = Cursor {
        key: seen.created_at,
        id: seen.id.clone(),
    };
    let newer = queries::list_messages(conn, conversation_id, Some(&after), LISTED + 1).await?;
    if newer.is_empty() {
        return Ok(());
    }
    let more = newer.len() as u64 > LISTED;
    let ids: Vec<&str> = newer
        .iter()
        .take(LISTED as usize)
        .map(|m| m.id.as_str())
        .collect();
    Err(ApiError::AbortedWith {
        reason: "CONVERSATION_CHANGED",
        message: format!(
            "conversation {conversation_id} has {}{} newer message(s) than {seen_message_id}; read them and reply again",
            newer.len().min(LISTED as usize),
            if more { "+" } else { "" },
        ),
        metadata: vec![
            ("conversation_id".into(), conversation_id.to_owned()),
            ("newer_message_ids".into(), ids.join(",")),
            ("more".into(), more.to_string()),
        ],
    })
}
