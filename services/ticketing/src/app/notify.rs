//! NotifyConversationChanged: the inbox reports a conversation fact; ticketing
//! records it (newest version wins) and applies R4, R8 and R9.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller};
use proto::ticketing::v1 as pb;

use super::{
    App, actor,
    outcome::{facts_row, merged_facts},
};
use crate::{
    domain::{ConversationFacts, Reported, TicketFacts, rules, rules::Consequence},
    store::{events::EventBatch, queries},
};

const ATTEMPTS: usize = 5;

pub struct Report {
    pub change: Reported,
    pub conversation: ConversationFacts,
    /// The inbox's version of the conversation after the change.
    pub version: i64,
    /// The inbox's per-account change sequence of the change (R4 order).
    pub change_sequence: i64,
}

impl App {
    pub async fn notify_conversation_changed(
        &self,
        caller: &Caller,
        report: Report,
        key: Option<Key>,
    ) -> Result<pb::NotifyConversationChangedResponse, ApiError> {
        let account_id = caller.account()?.to_owned();
        for _ in 0..ATTEMPTS {
            match self
                .try_notify(caller, &account_id, &report, key.as_ref())
                .await
            {
                Ok(Some(answer)) => return Ok(answer),
                Ok(None) => continue,
                Err(err) if err.is_unique_violation() => {
                    if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
                        return Ok(answer);
                    }
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::Aborted {
            reason: "CONCURRENT_UPDATES",
            message: format!(
                "ticket of conversation {} is changing too often; try again",
                report.conversation.id
            ),
        })
    }

    async fn try_notify(
        &self,
        caller: &Caller,
        account_id: &str,
        report: &Report,
        key: Option<&Key>,
    ) -> Result<Option<pb::NotifyConversationChangedResponse>, TxError> {
        let txn = self.begin("notify").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(Some(answer));
        }
        let conversation_id = &report.conversation.id;
        let before = queries::link_of_conversation(&txn, account_id, conversation_id).await?;
        let stale = before.as_ref().is_some_and(|b| b.version >= report.version);
        // Lock the ticket before the facts row, in the order every other
        // writer takes them (ticket, then conversation rows).
        let locked = match before.as_ref().and_then(|b| b.ticket_id.as_deref()) {
            Some(ticket_id) => queries::find_ticket_for_update(&txn, account_id, ticket_id).await?,
            None => None,
        };
        let held = queries::record_facts(
            &txn,
            facts_row(account_id, &report.conversation, report.version),
        )
        .await?;
        let ticket = match &held.ticket_id {
            // Locked by this transaction since it was read: it is as read.
            Some(id) if locked.as_ref().is_some_and(|t| &t.id == id) => locked,
            // Linked to another ticket in between (or newly): lock that one.
            Some(id) => queries::find_ticket_for_update(&txn, account_id, id).await?,
            None => None,
        };
        let facts = merged_facts(&report.conversation, &held);
        // R4: an owner change committed in the inbox before the last one
        // this ticket applied (from any of its conversations) is too old.
        let superseded = report.change == Reported::OwnerChanged
            && ticket.as_ref().is_some_and(|t| {
                !rules::owner_report_is_newest(report.change_sequence, t.owner_sequence)
            });
        let consequence = match (&ticket, stale || superseded) {
            // An older report than one already applied decides nothing.
            (_, true) | (None, _) => Consequence::Nothing,
            (Some(t), false) => rules::consequence_of_report(
                report.change,
                &facts,
                Some(&TicketFacts {
                    id: t.id.clone(),
                    owner_id: t.owner_id.clone(),
                    trashed: t.deleted_at.is_some(),
                }),
            ),
        };
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(
            account_id,
            actor(caller),
            "NotifyConversationChanged",
            request_id,
        )
        .with_trace_context(&caller.trace_context);
        let mut answer = pb::NotifyConversationChangedResponse::default();
        match (consequence, ticket) {
            (Consequence::SetTicketOwner(owner), Some(current)) => {
                let mut next = current.clone();
                next.owner_id = owner;
                next.owner_sequence = current.owner_sequence.max(report.change_sequence);
                next.updated_at = kit::time::now_micros();
                next.version = current.version + 1;
                if !queries::update_ticket_if_version(&txn, &next, current.version).await? {
                    return Ok(None);
                }
                let ticket = self.view(&txn, &next).await?;
                batch.ticket_changed(
                    pb::TicketChangeKind::Updated,
                    &ticket,
                    vec!["owner_id".into()],
                    "R4",
                );
                answer.ticket = Some(ticket);
            }
            (Consequence::TrashCascade, Some(current)) => {
                let Some((ticket, cascade, directives)) =
                    self.trash_in(&txn, &mut batch, &current).await?
                else {
                    return Ok(None);
                };
                answer.ticket = Some(ticket);
                answer.cascade = Some(cascade);
                answer.directives = directives;
            }
            (Consequence::RestoreCascade, Some(current)) => {
                let Some((ticket, cascade, directives)) =
                    self.restore_in(&txn, &mut batch, &current).await?
                else {
                    return Ok(None);
                };
                answer.ticket = Some(ticket);
                answer.cascade = Some(cascade);
                answer.directives = directives;
            }
            // The owner is already the reported one: the ticket still
            // remembers that this report is the newest it applied.
            (_, Some(current))
                if report.change == Reported::OwnerChanged
                    && !stale
                    && !superseded
                    && current.deleted_at.is_none()
                    && report.change_sequence > current.owner_sequence =>
            {
                let mut next = current.clone();
                next.owner_sequence = report.change_sequence;
                if !queries::update_ticket_if_version(&txn, &next, current.version).await? {
                    return Ok(None);
                }
                answer.ticket = Some(self.view(&txn, &next).await?);
            }
            (_, Some(current)) => answer.ticket = Some(self.view(&txn, &current).await?),
            (_, None) => {}
        }
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(Some(answer))
    }
}
