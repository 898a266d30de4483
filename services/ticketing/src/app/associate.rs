//! AssociateConversation: one more conversation joins a ticket (R2, R3, R10).

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller};
use proto::ticketing::v1 as pb;

use super::{
    App, actor,
    outcome::{facts_row, merged_facts, push_directives, rule_error},
};
use crate::{
    domain::{
        ConversationFacts, Directive, DirectiveAction, Surface, TicketFacts, rules,
        rules::RuleError,
    },
    store::{events::EventBatch, queries},
};

const ATTEMPTS: usize = 5;

impl App {
    pub async fn associate_conversation(
        &self,
        caller: &Caller,
        ticket_id: &str,
        conversation: (ConversationFacts, i64),
        surface: Surface,
        key: Option<Key>,
    ) -> Result<pb::Ticket, ApiError> {
        let account_id = caller.account()?.to_owned();
        for _ in 0..ATTEMPTS {
            match self
                .try_associate(
                    caller,
                    &account_id,
                    ticket_id,
                    &conversation,
                    surface,
                    key.as_ref(),
                )
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
            message: format!("ticket {ticket_id} is changing too often; try again"),
        })
    }

    async fn try_associate(
        &self,
        caller: &Caller,
        account_id: &str,
        ticket_id: &str,
        (snapshot, version): &(ConversationFacts, i64),
        surface: Surface,
        key: Option<&Key>,
    ) -> Result<Option<pb::Ticket>, TxError> {
        let txn = self.begin("associate").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(Some(answer));
        }
        let current = self
            .managed_ticket(&txn, account_id, ticket_id, surface)
            .await?;
        let held = queries::record_facts(&txn, facts_row(account_id, snapshot, *version)).await?;
        let facts = merged_facts(snapshot, &held);
        let ticket_facts = TicketFacts {
            id: current.id.clone(),
            owner_id: current.owner_id.clone(),
            trashed: current.deleted_at.is_some(),
        };
        rules::check_association(&facts, held.ticket_id.as_deref(), &ticket_facts)
            .map_err(rule_error)?;
        let now = kit::time::now_micros();
        if !queries::link_to_ticket(&txn, account_id, &facts.id, &current.id, now).await? {
            let winner = queries::link_of_conversation(&txn, account_id, &facts.id)
                .await?
                .and_then(|l| l.ticket_id)
                .unwrap_or_default();
            return Err(rule_error(RuleError::ConversationHasTicket {
                conversation_id: facts.id.clone(),
                ticket_id: winner,
            })
            .into());
        }
        let mut next = current.clone();
        next.updated_at = now;
        next.version = current.version + 1;
        if !queries::update_ticket_if_version(&txn, &next, current.version).await? {
            return Ok(None);
        }
        let answer = self.view(&txn, &next).await?;
        let mut directives = vec![Directive::new(&facts.id, DirectiveAction::LinkTicket, "R3")];
        if answer.workspace == pb::Workspace::HelpDesk as i32 {
            directives.push(Directive::new(
                &facts.id,
                DirectiveAction::MoveToHelpDesk,
                "R10",
            ));
        }
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(
            account_id,
            actor(caller),
            "AssociateConversation",
            request_id,
        )
        .with_trace_context(&caller.trace_context);
        let associated = batch.ticket_changed(
            pb::TicketChangeKind::ConversationAssociated,
            &answer,
            vec!["conversation_ids".into()],
            "R3",
        );
        push_directives(&mut batch, &directives, &next.id, "", associated);
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(Some(answer))
    }
}
