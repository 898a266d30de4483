//! UnmergeTicket (R15): within the retention period a merge is undone; the
//! secondary comes back as it was and takes back exactly the conversations
//! it brought, from wherever the chain of later merges put them.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller, transaction::Tx};
use proto::ticketing::v1 as pb;

use super::{
    App, actor,
    merge::{push_moves, side},
    outcome::rule_error,
};
use crate::{
    domain::{Surface, merge, rules},
    store::{events::EventBatch, merges, queries},
};

/// How often an unmerge starts again when the chain of merges it read
/// changed before it could lock it.
const ATTEMPTS: usize = 5;

/// How long a chain of merges can be: each link is a merged ticket, and a
/// merged ticket can never be a primary again, so chains cannot loop; the
/// bound only guards against a corrupt store.
const MAX_CHAIN: usize = 10_000;

impl App {
    pub async fn unmerge_ticket(
        &self,
        caller: &Caller,
        id: &str,
        surface: Surface,
        key: Option<Key>,
    ) -> Result<pb::UnmergeTicketResponse, ApiError> {
        let account_id = caller.account()?.to_owned();
        for _ in 0..ATTEMPTS {
            match self
                .try_unmerge(caller, &account_id, id, surface, key.as_ref())
                .await
            {
                Ok(Some(answer)) => return Ok(answer),
                Ok(None) => continue,
                Err(err) => {
                    // A concurrent duplicate may have committed first, and
                    // its undo is why this one was refused.
                    if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
                        return Ok(answer);
                    }
                    if err.is_unique_violation() {
                        continue;
                    }
                    return Err(err.into());
                }
            }
        }
        Err(ApiError::Aborted {
            reason: "CONCURRENT_UPDATES",
            message: format!("the tickets around ticket {id} are changing too often; try again"),
        })
    }

    /// `Ok(None)` when the chain of merges changed between reading it and
    /// locking it.
    async fn try_unmerge(
        &self,
        caller: &Caller,
        account_id: &str,
        id: &str,
        surface: Surface,
        key: Option<&Key>,
    ) -> Result<Option<pb::UnmergeTicketResponse>, TxError> {
        let txn = self.begin("unmerge").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(Some(answer));
        }
        let account = self
            .account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        let unlocked = queries::find_ticket(&txn, account_id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket", id))?;
        rules::check_management_surface(account.help_desk, surface).map_err(rule_error)?;
        let Some(into) = unlocked.merged_into.clone() else {
            return Err(rule_error(rules::RuleError::TicketNotMerged(id.to_owned())).into());
        };
        // A final merge is refused as such, before the chain is followed:
        // past the retention the tickets along it may have been purged.
        let now = kit::time::now_micros();
        if merges::active_merge_of(&txn, account_id, id)
            .await?
            .is_some_and(|record| now >= record.final_at)
        {
            return Err(rule_error(rules::RuleError::MergeFinal(id.to_owned())).into());
        }
        // R15: the conversations are on the primary, or on whatever the
        // primary was merged into since: the end of the chain.
        let holder_id = self.end_of_chain(&txn, account_id, &into).await?;
        let (secondary, holder) = self.lock_pair(&txn, account_id, id, &holder_id).await?;
        // A duplicate that waited for the locks behind the first call.
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(Some(answer));
        }
        if secondary.merged_into.as_deref() != Some(into.as_str()) || holder.merged_into.is_some() {
            return Ok(None);
        }
        let record = merges::active_merge_of(&txn, account_id, id).await?;
        merge::check_unmerge(
            &side(&secondary),
            record.as_ref().map(|r| r.final_at),
            now,
            &side(&holder),
        )
        .map_err(rule_error)?;
        let Some(record) = record else {
            return Err(ApiError::internal(format!("merge of ticket {id} has no record")).into());
        };
        let on_holder: Vec<String> = queries::links_of(&txn, &holder.id)
            .await?
            .into_iter()
            .map(|l| l.conversation_id)
            .collect();
        let taken = merge::taken_back(&merges::brought(&record), &on_holder);
        merges::move_links(&txn, account_id, &taken, &holder.id, id, now).await?;

        let mut back = secondary.clone();
        back.merged_into = None;
        back.updated_at = now;
        back.version = secondary.version + 1;
        let mut left = holder.clone();
        left.updated_at = now;
        left.version = holder.version + 1;
        for (row, version) in [(&back, secondary.version), (&left, holder.version)] {
            if !queries::update_ticket_if_version(&txn, row, version).await? {
                return Ok(None);
            }
        }
        merges::mark_unmerged(&txn, record, now).await?;

        let back_view = self.view(&txn, &back).await?;
        let holder_view = self.view(&txn, &left).await?;
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "UnmergeTicket", request_id)
            .with_trace_context(&caller.trace_context);
        let returned = batch.ticket_changed(
            pb::TicketChangeKind::Unmerged,
            &back_view,
            vec!["merged_into".into(), "conversation_ids".into()],
            "R15",
        );
        batch.ticket_changed(
            pb::TicketChangeKind::Unmerged,
            &holder_view,
            vec!["conversation_ids".into()],
            "R15",
        );
        let directives = merge::unmerge_directives(&taken);
        push_moves(&mut batch, &directives, id, &holder.id, returned);
        let answer = pb::UnmergeTicketResponse {
            ticket: Some(back_view),
            previous_holder: Some(holder_view),
            moved_conversation_ids: taken,
        };
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(Some(answer))
    }

    /// The ticket at the end of a chain of merges starting at `id`.
    async fn end_of_chain(&self, txn: &Tx, account_id: &str, id: &str) -> Result<String, ApiError> {
        let mut current = id.to_owned();
        for _ in 0..MAX_CHAIN {
            let row = queries::find_ticket(txn, account_id, &current)
                .await?
                .ok_or_else(|| ApiError::not_found("ticket", &current))?;
            match row.merged_into {
                Some(next) => current = next,
                None => return Ok(current),
            }
        }
        Err(ApiError::internal(format!(
            "the chain of merges from ticket {id} does not end"
        )))
    }
}
