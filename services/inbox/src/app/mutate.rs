//! Changes to a conversation the inbox owns: assign (R4), close and reopen
//! (R7), trash and restore (R8, R9). Each is one transaction that checks the
//! etag, writes the conversation, appends to the change log and queues the
//! report for ticketing; the report is then delivered at once when
//! ticketing answers, or later by the outbox deliverer.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller};
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};

use crate::{
    convert,
    state::App,
    store::{changes, conversation, outbox, queries},
};

const ATTEMPTS: usize = 5;
const OPEN: i32 = pb::ConversationStatus::Open as i32;
const CLOSED: i32 = pb::ConversationStatus::Closed as i32;

/// What a mutation did to the conversation.
pub(crate) enum Step {
    Unchanged,
    Changed {
        kind: pb::ConversationChangeKind,
        report: Option<tpb::ConversationChange>,
    },
}

pub(crate) fn trashed_error(id: &str) -> ApiError {
    ApiError::precondition(
        "CONVERSATION_TRASHED",
        format!("conversation {id} is in trash and read-only"),
    )
}

impl App {
    /// Runs `step` on the conversation in one transaction, retrying after a
    /// lost race unless the caller pinned a version with an etag.
    pub(crate) async fn mutate(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        key: Option<&Key>,
        step: impl Fn(&mut conversation::Model) -> Result<Step, ApiError>,
    ) -> Result<(conversation::Model, Option<outbox::Model>), ApiError> {
        let account_id = caller.account()?;
        for _ in 0..ATTEMPTS {
            match self
                .try_mutate(caller, account_id, id, expected_version, key, &step)
                .await
            {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::Aborted {
            reason: "CONCURRENT_UPDATES",
            message: format!("conversation {id} is changing too often; try again"),
        })
    }

    async fn try_mutate(
        &self,
        caller: &Caller,
        account_id: &str,
        id: &str,
        expected_version: Option<i64>,
        key: Option<&Key>,
        step: &impl Fn(&mut conversation::Model) -> Result<Step, ApiError>,
    ) -> Result<Option<(conversation::Model, Option<outbox::Model>)>, TxError> {
        let txn = self.transactions.begin("mutate").await?;
        let current = queries::find_conversation_for_update(&txn, account_id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("conversation", id))?;
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(ApiError::stale_etag("conversation", id).into());
        }
        let mut next = current.clone();
        let (kind, report) = match step(&mut next)? {
            Step::Unchanged => {
                kit::idempotency::record(key, &txn, &convert::conversation_to_proto(&current))
                    .await?;
                txn.commit().await?;
                return Ok(Some((current, None)));
            }
            Step::Changed { kind, report } => (kind, report),
        };
        next.version = current.version + 1;
        next.updated_at = kit::time::now_micros();
        if !queries::update_conversation_if_version(&txn, &next, current.version).await? {
            if expected_version.is_some() {
                return Err(ApiError::stale_etag("conversation", id).into());
            }
            return Ok(None);
        }
        kit::idempotency::record(key, &txn, &convert::conversation_to_proto(&next)).await?;
        let sequence = changes::append(&txn, &convert::conversation_to_proto(&next), kind).await?;
        // The report carries the change's place in the account's commit
        // order, so ticketing can order owner changes made on different
        // conversations of one ticket (R4). Inserting a new outbox row
        // waits on no other writer, so the head stays the last lock taken.
        let queued = match report {
            Some(change) => Some(
                changes::enqueue_report(
                    &txn,
                    &next.account_id,
                    convert::snapshot(&next),
                    change,
                    sequence,
                    crate::state::reporter(caller),
                )
                .await?,
            ),
            None => None,
        };
        txn.commit().await?;
        self.changes.notify();
        Ok(Some((next, queued)))
    }

    /// R4: the owner changes here; ticketing makes the ticket's owner follow.
    pub async fn assign_conversation(
        &self,
        caller: &Caller,
        id: &str,
        owner_id: Option<String>,
        expected_version: Option<i64>,
        key: Option<Key>,
    ) -> Result<pb::Conversation, ApiError> {
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
            return Ok(answer);
        }
        let (row, report) = self
            .mutate(caller, id, expected_version, key.as_ref(), |c| {
                if c.deleted_at.is_some() {
                    return Err(trashed_error(&c.id));
                }
                if c.owner_id == owner_id {
                    return Ok(Step::Unchanged);
                }
                c.owner_id = owner_id.clone();
                Ok(Step::Changed {
                    kind: pb::ConversationChangeKind::Updated,
                    report: Some(tpb::ConversationChange::OwnerChanged),
                })
            })
            .await?;
        self.deliver_now(report).await;
        Ok(convert::conversation_to_proto(&row))
    }

    /// R7: closing or reopening changes this conversation only.
    pub async fn set_conversation_open(
        &self,
        caller: &Caller,
        id: &str,
        open: bool,
        expected_version: Option<i64>,
        key: Option<Key>,
    ) -> Result<pb::Conversation, ApiError> {
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
            return Ok(answer);
        }
        let (status, change) = if open {
            (OPEN, tpb::ConversationChange::Reopened)
        } else {
            (CLOSED, tpb::ConversationChange::Closed)
        };
        let (row, report) = self
            .mutate(caller, id, expected_version, key.as_ref(), |c| {
                if c.deleted_at.is_some() {
                    return Err(trashed_error(&c.id));
                }
                if c.status == status {
                    return Ok(Step::Unchanged);
                }
                c.status = status;
                Ok(Step::Changed {
                    kind: pb::ConversationChangeKind::Updated,
                    report: Some(change),
                })
            })
            .await?;
        self.deliver_now(report).await;
        Ok(convert::conversation_to_proto(&row))
    }

    /// R8: the conversation goes to trash here; ticketing trashes its ticket
    /// and the ticket's other conversations, and the answer lists them all.
    pub async fn trash_conversation(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        key: Option<Key>,
    ) -> Result<pb::TrashConversationResponse, ApiError> {
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
            return Ok(answer);
        }
        let changed = self
            .mutate(caller, id, expected_version, None, |c| {
                if c.deleted_at.is_some() {
                    return Err(trashed_error(&c.id));
                }
                c.deleted_at = Some(kit::time::now_micros());
                Ok(Step::Changed {
                    kind: pb::ConversationChangeKind::Trashed,
                    report: Some(tpb::ConversationChange::Trashed),
                })
            })
            .await;
        let (row, report) = match changed {
            Ok(done) => done,
            Err(refused) => return self.first_answer(key.as_ref(), refused).await,
        };
        let decided = self.deliver_now(report).await;
        let answer = self.cascade_answer(caller, &row, decided).await?;
        let answer = pb::TrashConversationResponse {
            conversation: answer.0,
            cascade: Some(answer.1),
            cascade_pending: answer.2,
        };
        self.remember(key.as_ref(), &answer).await;
        Ok(answer)
    }

    /// R9: restoring any member restores the whole cascade.
    pub async fn restore_conversation(
        &self,
        caller: &Caller,
        id: &str,
        key: Option<Key>,
    ) -> Result<pb::RestoreConversationResponse, ApiError> {
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
            return Ok(answer);
        }
        let changed = self
            .mutate(caller, id, None, None, |c| {
                if c.deleted_at.is_none() {
                    return Err(ApiError::precondition(
                        "CONVERSATION_NOT_TRASHED",
                        format!("conversation {} is not in trash", c.id),
                    ));
                }
                c.deleted_at = None;
                Ok(Step::Changed {
                    kind: pb::ConversationChangeKind::Restored,
                    report: Some(tpb::ConversationChange::Restored),
                })
            })
            .await;
        let (row, report) = match changed {
            Ok(done) => done,
            Err(refused) => return self.first_answer(key.as_ref(), refused).await,
        };
        let decided = self.deliver_now(report).await;
        let answer = self.cascade_answer(caller, &row, decided).await?;
        let answer = pb::RestoreConversationResponse {
            conversation: answer.0,
            cascade: Some(answer.1),
            cascade_pending: answer.2,
        };
        self.remember(key.as_ref(), &answer).await;
        Ok(answer)
    }

    /// The conversation after ticketing's decision was applied, the cascade,
    /// and whether the cascade is still pending (ticketing unreachable).
    async fn cascade_answer(
        &self,
        caller: &Caller,
        row: &conversation::Model,
        decided: Option<tpb::NotifyConversationChangedResponse>,
    ) -> Result<(Option<pb::Conversation>, tpb::TrashCascade, bool), ApiError> {
        let account_id = caller.account()?;
        let current = self
            .load_conversation(&self.db, account_id, &row.id)
            .await?;
        let only_this = tpb::TrashCascade {
            conversation_ids: vec![row.id.clone()],
            delete_time: kit::time::opt_timestamp(row.deleted_at),
            ..Default::default()
        };
        let (cascade, pending) = match decided {
            Some(answer) => (answer.cascade.unwrap_or(only_this), false),
            // Without a ticket there is nothing more to decide.
            None => (only_this, row.ticket_id.is_some()),
        };
        Ok((
            Some(convert::conversation_to_proto(&current)),
            cascade,
            pending,
        ))
    }

    /// SPEC section 4 for a trash or restore refused because a duplicate
    /// with the same request id made the change first: that call stores
    /// its answer only once ticketing has decided the cascade (at most the
    /// synchronous delivery timeout later), so the duplicate waits for it.
    async fn first_answer<R: prost::Message + Default>(
        &self,
        key: Option<&Key>,
        refused: ApiError,
    ) -> Result<R, ApiError> {
        let Some(key) = key else {
            return Err(refused);
        };
        // A refusal with a request id no call used waits this long too: the
        // price of telling the two apart without a pending marker.
        let deadline = tokio::time::Instant::now()
            + crate::follow::outbox::SYNC_DELIVERY_TIMEOUT
            + std::time::Duration::from_millis(500);
        loop {
            if let Some(answer) = key.replay(&self.db).await? {
                return Ok(answer);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(refused);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stores an answer for a request id after the fact (best effort: the
    /// change itself is already committed and naturally idempotent).
    pub(crate) async fn remember<R: prost::Message>(&self, key: Option<&Key>, answer: &R) {
        if let Err(err) = kit::idempotency::record(key, &self.db, answer).await {
            tracing::warn!(%err, "could not store the answer for its request id");
        }
    }
}
