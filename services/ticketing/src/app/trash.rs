//! Trash (R8), restore (R9) and purge. A cascade is a ticket with all its
//! conversations: they go to trash together and come back together.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller, transaction::Tx};
use proto::ticketing::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{
    App, actor,
    outcome::{linked, push_directives, rule_error},
};
use crate::{
    convert,
    domain::{Directive, DirectiveAction, Surface, rules, rules::RuleError},
    store::{events::EventBatch, queries, ticket, ticket_conversation},
};

/// Tickets purged per transaction by one purge pass.
const PURGE_BATCH: u64 = 100;

impl App {
    /// R8 inside a transaction: the ticket and every conversation of it go
    /// to trash as one cascade. `Ok(None)` when the ticket changed meanwhile.
    pub(crate) async fn trash_in(
        &self,
        txn: &Tx,
        batch: &mut EventBatch,
        current: &ticket::Model,
    ) -> Result<Option<(pb::Ticket, pb::TrashCascade, Vec<pb::ConversationDirective>)>, TxError>
    {
        let now = kit::time::now_micros();
        let retention = i64::try_from(self.config.trash_retention.as_micros()).unwrap_or(i64::MAX);
        let cascade_id = kit::new_id();
        let mut next = current.clone();
        next.deleted_at = Some(now);
        next.purge_at = Some(now.saturating_add(retention));
        next.cascade_id = Some(cascade_id.clone());
        next.updated_at = now;
        next.version = current.version + 1;
        if !queries::update_ticket_if_version(txn, &next, current.version).await? {
            return Ok(None);
        }
        let links = queries::links_of(txn, &current.id).await?;
        let directives = rules::trash_directives(&linked(&links));
        let members: Vec<String> = links.iter().map(|l| l.conversation_id.clone()).collect();
        queries::set_trashed(txn, &current.account_id, &members, Some(&cascade_id)).await?;
        let links = queries::links_of(txn, &current.id).await?;
        let answer = convert::ticket_to_proto(&next, &self.stage_of(txn, &next).await?, &links);
        let trashed =
            batch.ticket_changed(pb::TicketChangeKind::Trashed, &answer, Vec::new(), "R8");
        let sent = push_directives(batch, &directives, &next.id, &cascade_id, trashed);
        let cascade = pb::TrashCascade {
            id: cascade_id,
            ticket_ids: vec![next.id.clone()],
            conversation_ids: members,
            delete_time: Some(kit::time::to_timestamp(now)),
            purge_time: kit::time::opt_timestamp(next.purge_at),
        };
        Ok(Some((answer, cascade, sent)))
    }

    /// R9 inside a transaction: everything that went with the ticket's
    /// cascade comes back. `Ok(None)` when the ticket changed meanwhile.
    pub(crate) async fn restore_in(
        &self,
        txn: &Tx,
        batch: &mut EventBatch,
        current: &ticket::Model,
    ) -> Result<Option<(pb::Ticket, pb::TrashCascade, Vec<pb::ConversationDirective>)>, TxError>
    {
        let cascade_id = current.cascade_id.clone().unwrap_or_default();
        let mut next = current.clone();
        next.deleted_at = None;
        next.purge_at = None;
        next.cascade_id = None;
        next.updated_at = kit::time::now_micros();
        next.version = current.version + 1;
        if !queries::update_ticket_if_version(txn, &next, current.version).await? {
            return Ok(None);
        }
        let members: Vec<String> = queries::links_of(txn, &current.id)
            .await?
            .into_iter()
            .filter(|l| l.cascade_id.as_deref() == Some(cascade_id.as_str()))
            .map(|l| l.conversation_id)
            .collect();
        queries::set_trashed(txn, &current.account_id, &members, None).await?;
        let links = queries::links_of(txn, &current.id).await?;
        let answer = convert::ticket_to_proto(&next, &self.stage_of(txn, &next).await?, &links);
        let restored =
            batch.ticket_changed(pb::TicketChangeKind::Restored, &answer, Vec::new(), "R9");
        let directives = rules::restore_directives(&members);
        let sent = push_directives(batch, &directives, &next.id, &cascade_id, restored);
        let cascade = pb::TrashCascade {
            id: cascade_id,
            ticket_ids: vec![next.id.clone()],
            conversation_ids: members,
            delete_time: kit::time::opt_timestamp(current.deleted_at),
            purge_time: kit::time::opt_timestamp(current.purge_at),
        };
        Ok(Some((answer, cascade, sent)))
    }

    pub async fn delete_ticket(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        surface: Surface,
        key: Option<Key>,
    ) -> Result<pb::DeleteTicketResponse, ApiError> {
        let account_id = caller.account()?;
        let txn = self.begin("delete_ticket").await?;
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &txn).await? {
            return Ok(answer);
        }
        let current = self.managed_ticket(&txn, account_id, id, surface).await?;
        if current.deleted_at.is_some() {
            return Err(rule_error(RuleError::TicketTrashed(current.id)));
        }
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(ApiError::stale_etag("ticket", id));
        }
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.as_str())
            .unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "DeleteTicket", request_id)
            .with_trace_context(&caller.trace_context);
        let (ticket, cascade, _) = self
            .trash_in(&txn, &mut batch, &current)
            .await?
            .ok_or_else(|| ApiError::stale_etag("ticket", id))?;
        let answer = pb::DeleteTicketResponse {
            ticket: Some(ticket),
            cascade: Some(cascade),
        };
        kit::idempotency::record(key.as_ref(), &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(answer)
    }

    pub async fn undelete_ticket(
        &self,
        caller: &Caller,
        id: &str,
        surface: Surface,
        key: Option<Key>,
    ) -> Result<pb::UndeleteTicketResponse, ApiError> {
        let account_id = caller.account()?;
        let txn = self.begin("undelete_ticket").await?;
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &txn).await? {
            return Ok(answer);
        }
        let current = self.managed_ticket(&txn, account_id, id, surface).await?;
        if current.deleted_at.is_none() {
            return Err(ApiError::precondition(
                "TICKET_NOT_TRASHED",
                format!("ticket {id} is not in trash"),
            ));
        }
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.as_str())
            .unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "UndeleteTicket", request_id)
            .with_trace_context(&caller.trace_context);
        let (ticket, cascade, _) = self
            .restore_in(&txn, &mut batch, &current)
            .await?
            .ok_or_else(|| ApiError::stale_etag("ticket", id))?;
        let answer = pb::UndeleteTicketResponse {
            ticket: Some(ticket),
            cascade: Some(cascade),
        };
        kit::idempotency::record(key.as_ref(), &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(answer)
    }

    /// A ticket the caller may manage from `surface` (R10).
    pub(crate) async fn managed_ticket(
        &self,
        txn: &Tx,
        account_id: &str,
        id: &str,
        surface: Surface,
    ) -> Result<ticket::Model, ApiError> {
        let account = self
            .account(txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        let ticket = queries::find_ticket_for_update(txn, account_id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket", id))?;
        rules::check_management_surface(account.help_desk, surface).map_err(rule_error)?;
        // R16: a merged ticket refuses every change but its unmerge.
        super::merge::refuse_merged(&ticket)?;
        Ok(ticket)
    }

    /// R9: removes for good what stayed in trash past its retention, with a
    /// PURGED event and PURGE directives. Returns how many tickets went.
    pub async fn purge_expired(&self) -> Result<usize, ApiError> {
        let now = kit::time::now_micros();
        let due: Vec<ticket::Model> = ticket::Entity::find()
            .filter(ticket::Column::PurgeAt.lte(now))
            .limit(PURGE_BATCH)
            .all(&self.db)
            .await?;
        let mut purged = 0;
        for row in due {
            let txn = self.begin("purge_expired").await?;
            let Some(current) =
                queries::find_ticket_for_update(&txn, &row.account_id, &row.id).await?
            else {
                continue;
            };
            if current.purge_at.is_none_or(|at| at > now) {
                continue;
            }
            let links = queries::links_of(&txn, &current.id).await?;
            let answer =
                convert::ticket_to_proto(&current, &self.stage_of(&txn, &current).await?, &links);
            let system = pb::Actor {
                kind: pb::ActorKind::System as i32,
                id: "purge".into(),
            };
            let mut batch = EventBatch::new(&current.account_id, system, "Purge", "");
            let purged_event =
                batch.ticket_changed(pb::TicketChangeKind::Purged, &answer, Vec::new(), "R9");
            let directives: Vec<Directive> = links
                .iter()
                .map(|l| Directive::new(&l.conversation_id, DirectiveAction::Purge, "R9"))
                .collect();
            let cascade_id = current.cascade_id.clone().unwrap_or_default();
            push_directives(
                &mut batch,
                &directives,
                &current.id,
                &cascade_id,
                purged_event,
            );
            ticket_conversation::Entity::delete_many()
                .filter(ticket_conversation::Column::TicketId.eq(&current.id))
                .exec(&txn)
                .await?;
            ticket::Entity::delete_by_id(current.id.clone())
                .exec(&txn)
                .await?;
            self.commit(txn, batch).await?;
            purged += 1;
        }
        Ok(purged)
    }
}
