//! MergeTickets (R14, R16): a merge moves the secondary's conversations to
//! the primary and leaves the secondary as a read-only redirect, in one
//! transaction with its events like every other change. The undo is in
//! `unmerge.rs`; what both need (the rules' view of a ticket, locking a
//! pair, the move directives) is here.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller, transaction::Tx};
use proto::ticketing::v1 as pb;

use super::{
    App, actor,
    outcome::{linked, rule_error},
};
use crate::{
    convert,
    domain::{
        Directive, DirectiveAction, Surface, Workspace,
        merge::{self, MergeSide, TicketValues},
        rules,
    },
    store::{events::EventBatch, merges, queries, ticket, ticket_merge},
};

pub struct MergeInput {
    pub primary_id: String,
    pub secondary_id: String,
    pub primary_version: Option<i64>,
    pub secondary_version: Option<i64>,
    pub surface: Surface,
}

pub(super) fn side(row: &ticket::Model) -> MergeSide {
    MergeSide {
        id: row.id.clone(),
        trashed: row.deleted_at.is_some(),
        merged_into: row.merged_into.clone(),
        workspace: if row.workspace == pb::Workspace::HelpDesk as i32 {
            Workspace::HelpDesk
        } else {
            Workspace::Inbox
        },
        merge_count: row.merge_count,
    }
}

fn values(row: &ticket::Model) -> TicketValues<pb::PropertyValue> {
    TicketValues {
        description: row.description.clone(),
        priority: row.priority,
        owner_id: row.owner_id.clone(),
        contact_id: row.contact_id.clone(),
        created_at: row.created_at,
        properties: convert::decode_properties(&row.properties, &row.id),
    }
}

/// R16: a merged ticket refuses every change but its unmerge.
pub(crate) fn refuse_merged(row: &ticket::Model) -> Result<(), ApiError> {
    match &row.merged_into {
        Some(into) => Err(rule_error(rules::RuleError::TicketMerged {
            ticket_id: row.id.clone(),
            merged_into: into.clone(),
        })),
        None => Ok(()),
    }
}

/// Adds `directives` (moves from `from` and closes) on conversations now of
/// `ticket_id`, caused by the event at `trigger`.
pub(super) fn push_moves(
    batch: &mut EventBatch,
    directives: &[Directive],
    ticket_id: &str,
    from: &str,
    trigger: usize,
) {
    for directive in directives {
        let mut message = convert::directive_to_proto(directive, ticket_id, "");
        if directive.action == DirectiveAction::MoveToTicket {
            message.from_ticket_id = from.to_owned();
        }
        batch.directive(message, directive.rule, trigger);
    }
}

impl App {
    pub async fn merge_tickets(
        &self,
        caller: &Caller,
        input: MergeInput,
        key: Option<Key>,
    ) -> Result<pb::MergeTicketsResponse, ApiError> {
        let account_id = caller.account()?.to_owned();
        match self
            .try_merge(caller, &account_id, &input, key.as_ref())
            .await
        {
            Ok(answer) => Ok(answer),
            // A concurrent duplicate with the same request id may have
            // committed first, and its merge is why this one was refused.
            Err(err) => match kit::idempotency::replay(key.as_ref(), &self.db).await? {
                Some(answer) => Ok(answer),
                None => Err(err.into()),
            },
        }
    }

    async fn try_merge(
        &self,
        caller: &Caller,
        account_id: &str,
        input: &MergeInput,
        key: Option<&Key>,
    ) -> Result<pb::MergeTicketsResponse, TxError> {
        let txn = self.begin("merge").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(answer);
        }
        let (primary, secondary) = self
            .lock_pair(&txn, account_id, &input.primary_id, &input.secondary_id)
            .await?;
        // A duplicate that waited for the locks behind the first call finds
        // the tickets merged; it must answer what the first call answered.
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(answer);
        }
        let account = self
            .account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        rules::check_management_surface(account.help_desk, input.surface).map_err(rule_error)?;
        for (row, expected) in [
            (&primary, input.primary_version),
            (&secondary, input.secondary_version),
        ] {
            if expected.is_some_and(|v| v != row.version) {
                return Err(ApiError::stale_etag("ticket", &row.id).into());
            }
        }
        merge::check_merge(&side(&primary), &side(&secondary)).map_err(rule_error)?;

        let now = kit::time::now_micros();
        let moved_links = queries::links_of(&txn, &secondary.id).await?;
        let moved: Vec<String> = moved_links
            .iter()
            .map(|l| l.conversation_id.clone())
            .collect();
        merges::move_links(&txn, account_id, &moved, &secondary.id, &primary.id, now).await?;

        let merged = merge::merged_values(&values(&primary), &values(&secondary));
        let mut next = primary.clone();
        next.description = merged.description;
        next.priority = merged.priority;
        next.owner_id = merged.owner_id;
        next.contact_id = merged.contact_id;
        next.created_at = merged.created_at;
        next.properties = convert::encode_properties(&merged.properties);
        next.merge_count += 1;
        // R4 over the merged ticket: an owner report older than either
        // ticket's last one stays ignored.
        next.owner_sequence = primary.owner_sequence.max(secondary.owner_sequence);
        next.updated_at = now;
        next.version = primary.version + 1;
        let mut gone = secondary.clone();
        gone.merged_into = Some(primary.id.clone());
        gone.merge_count += 1;
        gone.updated_at = now;
        gone.version = secondary.version + 1;
        // Both rows are locked: the version guards cannot fail here, but
        // they keep the write honest if the locking ever changes.
        for (row, version) in [(&next, primary.version), (&gone, secondary.version)] {
            if !queries::update_ticket_if_version(&txn, row, version).await? {
                return Err(ApiError::stale_etag("ticket", &row.id).into());
            }
        }
        let retention = i64::try_from(self.config.trash_retention.as_micros()).unwrap_or(i64::MAX);
        let record = ticket_merge::Model {
            id: kit::new_id(),
            account_id: account_id.to_owned(),
            primary_id: primary.id.clone(),
            secondary_id: secondary.id.clone(),
            merged_at: now,
            final_at: now.saturating_add(retention),
            conversation_ids: moved.join("\n"),
            unmerged_at: None,
        };
        merges::insert_merge(&txn, record.clone()).await?;

        let primary_view = self.view(&txn, &next).await?;
        let mut secondary_view = self.view(&txn, &gone).await?;
        with_merge(&mut secondary_view, Some(&record));
        let mut changed = changed_fields(&primary, &next);
        if !moved.is_empty() {
            changed.push("conversation_ids".into());
        }
        let primary_closed = primary_view.closed;
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "MergeTickets", request_id)
            .with_trace_context(&caller.trace_context);
        batch.ticket_changed(
            pb::TicketChangeKind::Merged,
            &secondary_view,
            vec!["merged_into".into()],
            "R14",
        );
        let arrived =
            batch.ticket_changed(pb::TicketChangeKind::Merged, &primary_view, changed, "R14");
        let directives = merge::merge_directives(primary_closed, &linked(&moved_links));
        push_moves(&mut batch, &directives, &primary.id, &secondary.id, arrived);
        let answer = pb::MergeTicketsResponse {
            primary: Some(primary_view),
            secondary: Some(secondary_view),
            moved_conversation_ids: moved,
        };
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        tracing::info!(
            primary_id = %primary.id,
            secondary_id = %secondary.id,
            account_id,
            "tickets merged"
        );
        Ok(answer)
    }

    /// Locks two tickets in id order, the order every writer that takes
    /// two ticket locks uses, so two merges of the same pair queue instead
    /// of deadlocking.
    pub(super) async fn lock_pair(
        &self,
        txn: &Tx,
        account_id: &str,
        primary_id: &str,
        secondary_id: &str,
    ) -> Result<(ticket::Model, ticket::Model), ApiError> {
        let mut ids = [primary_id, secondary_id];
        ids.sort_unstable();
        let mut locked = Vec::with_capacity(2);
        for id in ids {
            locked.push(
                queries::find_ticket_for_update(txn, account_id, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("ticket", id))?,
            );
        }
        let mut primary = None;
        let mut secondary = None;
        for row in locked {
            if row.id == primary_id {
                primary = Some(row);
            } else {
                secondary = Some(row);
            }
        }
        primary
            .zip(secondary)
            .ok_or_else(|| ApiError::internal("a locked ticket went missing"))
    }

    /// Adds to a merged ticket's view when its merge happened and until
    /// when it can be undone.
    pub(crate) async fn with_merge_times(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        ticket: &mut pb::Ticket,
    ) -> Result<(), ApiError> {
        if ticket.merged_into.is_empty() {
            return Ok(());
        }
        let record = merges::active_merge_of(conn, &ticket.account_id, &ticket.id).await?;
        with_merge(ticket, record.as_ref());
        Ok(())
    }
}

fn with_merge(ticket: &mut pb::Ticket, record: Option<&ticket_merge::Model>) {
    if let Some(record) = record {
        ticket.merge_time = Some(kit::time::to_timestamp(record.merged_at));
        ticket.unmerge_deadline = Some(kit::time::to_timestamp(record.final_at));
    }
}

/// The primary's fields a merge changed, for the audit trail.
fn changed_fields(before: &ticket::Model, after: &ticket::Model) -> Vec<String> {
    let mut changed = Vec::new();
    if before.description != after.description {
        changed.push("description".into());
    }
    if before.priority != after.priority {
        changed.push("priority".into());
    }
    if before.owner_id != after.owner_id {
        changed.push("owner_id".into());
    }
    if before.contact_id != after.contact_id {
        changed.push("contact_id".into());
    }
    if before.created_at != after.created_at {
        changed.push("create_time".into());
    }
    if before.properties != after.properties {
        changed.push("properties".into());
    }
    changed
}
