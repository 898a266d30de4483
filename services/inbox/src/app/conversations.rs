//! Conversations, contacts and messages: the inbox's own data.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller, paging};
use proto::inbox::v1 as pb;
use sea_orm::ConnectionTrait;

use super::mutate;
use crate::{
    convert,
    state::App,
    store::{changes, contact, conversation, message, queries},
};

pub type ConversationFilterInput = queries::ConversationFilter;

pub struct NewConversation {
    pub subject: String,
    pub channel: i32,
    pub email: String,
    pub contact_name: String,
    pub body: String,
    pub author: String,
}

pub struct NewMessage {
    pub conversation_id: String,
    pub direction: pb::Direction,
    pub author: String,
    pub body: String,
    /// R17: for a reply, the newest message its author saw.
    pub seen_message_id: Option<String>,
}

const OPEN: i32 = pb::ConversationStatus::Open as i32;
const CLOSED: i32 = pb::ConversationStatus::Closed as i32;

impl App {
    pub async fn create_conversation(
        &self,
        account_id: &str,
        input: NewConversation,
        key: Option<Key>,
    ) -> Result<pb::Conversation, ApiError> {
        // A concurrent first conversation of the same new contact loses the
        // race for the contact row once; the second attempt finds it.
        for _ in 0..2 {
            match self
                .try_create_conversation(account_id, &input, key.as_ref())
                .await
            {
                Err(err) if err.is_unique_violation() => {
                    if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
                        return Ok(answer);
                    }
                }
                other => return other.map_err(ApiError::from),
            }
        }
        Err(ApiError::Aborted {
            reason: "CONCURRENT_UPDATES",
            message: "the contact was being created concurrently; try again".into(),
        })
    }

    async fn try_create_conversation(
        &self,
        account_id: &str,
        input: &NewConversation,
        key: Option<&Key>,
    ) -> Result<pb::Conversation, TxError> {
        let txn = self.transactions.begin("create_conversation").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(answer);
        }
        let now = kit::time::now_micros();
        let contact = match queries::find_contact_by_email(&txn, account_id, &input.email).await? {
            Some(contact) => contact,
            None => {
                let contact = contact::Model {
                    id: kit::new_id(),
                    account_id: account_id.to_owned(),
                    email: input.email.clone(),
                    name: input.contact_name.clone(),
                    created_at: now,
                };
                queries::insert_contact(&txn, contact.clone()).await?;
                contact
            }
        };
        let row = conversation::Model {
            id: kit::new_id(),
            account_id: account_id.to_owned(),
            subject: input.subject.clone(),
            contact_id: contact.id,
            channel: input.channel,
            status: OPEN,
            owner_id: None,
            workspace: proto::ticketing::v1::Workspace::Inbox as i32,
            ticket_id: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        };
        queries::insert_conversation(&txn, row.clone()).await?;
        queries::insert_message(
            &txn,
            message::Model {
                id: kit::new_id(),
                account_id: account_id.to_owned(),
                conversation_id: row.id.clone(),
                direction: pb::Direction::Incoming as i32,
                author: input.author.clone(),
                body: input.body.clone(),
                created_at: now,
            },
        )
        .await?;
        let answer = convert::conversation_to_proto(&row);
        kit::idempotency::record(key, &txn, &answer).await?;
        changes::append(
            &txn,
            &convert::conversation_to_proto(&row),
            pb::ConversationChangeKind::Created,
        )
        .await?;
        txn.commit().await?;
        self.changes.notify();
        tracing::info!(conversation_id = %row.id, account_id, "conversation created");
        Ok(answer)
    }

    pub async fn load_conversation(
        &self,
        conn: &impl ConnectionTrait,
        account_id: &str,
        id: &str,
    ) -> Result<conversation::Model, ApiError> {
        queries::find_conversation(conn, account_id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("conversation", id))
    }

    pub async fn get_conversation(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<pb::Conversation, ApiError> {
        let row = self.load_conversation(&self.db, account_id, id).await?;
        Ok(convert::conversation_to_proto(&row))
    }

    pub async fn list_conversations(
        &self,
        account_id: &str,
        filter: &ConversationFilterInput,
        page_size: u64,
        after: Option<paging::Cursor>,
    ) -> Result<pb::ListConversationsResponse, ApiError> {
        let mut rows = queries::list_conversations(
            &self.db,
            account_id,
            filter,
            after.as_ref(),
            page_size + 1,
        )
        .await?;
        let next_page_token = paging::next_page(&mut rows, page_size, |c| paging::Cursor {
            key: c.created_at,
            id: c.id.clone(),
        });
        Ok(pb::ListConversationsResponse {
            conversations: rows
                .into_iter()
                .map(convert::conversation_into_proto)
                .collect(),
            next_page_token,
        })
    }

    /// R13: replies and incoming mail; an incoming message reopens a closed
    /// conversation (not its ticket). Trashed conversations are read-only (R9).
    pub async fn add_message(
        &self,
        caller: &Caller,
        input: NewMessage,
        key: Option<Key>,
    ) -> Result<pb::Message, ApiError> {
        let account_id = caller.account()?;
        let txn = self.transactions.begin("add_message").await?;
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &txn).await? {
            return Ok(answer);
        }
        let conversation =
            queries::find_conversation_for_update(&txn, account_id, &input.conversation_id)
                .await?
                .ok_or_else(|| ApiError::not_found("conversation", &input.conversation_id))?;
        if conversation.deleted_at.is_some() {
            return Err(mutate::trashed_error(&conversation.id));
        }
        if let Some(seen) = &input.seen_message_id {
            super::replies::check_not_crossed(&txn, account_id, &conversation.id, seen).await?;
        }
        let now = kit::time::now_micros();
        let row = message::Model {
            id: kit::new_id(),
            account_id: account_id.to_owned(),
            conversation_id: conversation.id.clone(),
            direction: input.direction as i32,
            author: input.author,
            body: input.body,
            created_at: now,
        };
        queries::insert_message(&txn, row.clone()).await?;
        let mut reopened = None;
        let mut after = conversation.clone();
        if input.direction == pb::Direction::Incoming && conversation.status == CLOSED {
            after.status = OPEN;
            after.updated_at = now;
            after.version += 1;
            if !queries::update_conversation_if_version(&txn, &after, conversation.version).await? {
                return Err(ApiError::Aborted {
                    reason: "CONCURRENT_UPDATES",
                    message: format!(
                        "conversation {} changed meanwhile; try again",
                        conversation.id
                    ),
                });
            }
            reopened = Some(proto::ticketing::v1::ConversationChange::IncomingMessage);
        }
        let answer = convert::message_to_proto(&row);
        kit::idempotency::record(key.as_ref(), &txn, &answer).await?;
        let sequence = changes::append(
            &txn,
            &convert::conversation_to_proto(&after),
            pb::ConversationChangeKind::MessageAdded,
        )
        .await?;
        let report = match reopened {
            Some(change) => Some(
                changes::enqueue_report(
                    &txn,
                    &after.account_id,
                    convert::snapshot(&after),
                    change,
                    sequence,
                    crate::state::reporter(caller),
                )
                .await?,
            ),
            None => None,
        };
        txn.commit().await.map_err(ApiError::from)?;
        self.changes.notify();
        self.deliver_now(report).await;
        Ok(answer)
    }

    pub async fn list_messages(
        &self,
        account_id: &str,
        conversation_id: &str,
        page_size: u64,
        after: Option<paging::Cursor>,
    ) -> Result<pb::ListMessagesResponse, ApiError> {
        self.load_conversation(&self.db, account_id, conversation_id)
            .await?;
        let mut rows =
            queries::list_messages(&self.db, conversation_id, after.as_ref(), page_size + 1)
                .await?;
        let next_page_token = paging::next_page(&mut rows, page_size, |m| paging::Cursor {
            key: m.created_at,
            id: m.id.clone(),
        });
        Ok(pb::ListMessagesResponse {
            messages: rows.iter().map(convert::message_to_proto).collect(),
            next_page_token,
        })
    }
}

impl App {
    /// R9: trashed conversations without a ticket, past their retention.
    pub async fn purge_expired(&self) -> Result<usize, ApiError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        let retention = i64::try_from(self.config.trash_retention.as_micros()).unwrap_or(i64::MAX);
        let cutoff = kit::time::now_micros().saturating_sub(retention);
        let due = conversation::Entity::find()
            .filter(conversation::Column::DeletedAt.lte(cutoff))
            .filter(conversation::Column::TicketId.is_null())
            .limit(100)
            .all(&self.db)
            .await?;
        let mut purged = 0;
        for row in due {
            let txn = self.transactions.begin("purge_expired").await?;
            if crate::follow::apply::purge(&txn, &row.account_id, &row.id).await? {
                purged += 1;
            }
            txn.commit().await?;
        }
        Ok(purged)
    }
}
