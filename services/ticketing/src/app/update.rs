//! UpdateTicket: field-mask updates with optimistic concurrency (R4 for the
//! owner, R5 and R6 for stage moves, R9 read-only trash, R10 surfaces).

use std::collections::BTreeMap;

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller};
use proto::ticketing::v1 as pb;

use super::{
    App, actor,
    outcome::{linked, push_directives, rule_error},
};
use crate::{
    convert,
    domain::{Surface, rules, rules::RuleError},
    store::{events::EventBatch, queries},
};

/// How often an update without an etag retries after losing a race.
const UPDATE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketField {
    Name,
    Description,
    Stage,
    Priority,
    Owner,
    /// Every custom property: the request's map replaces the stored one.
    Properties,
    /// One custom property: set from the request's map, or cleared when absent.
    Property(String),
}

impl TicketField {
    pub fn path(&self) -> String {
        match self {
            TicketField::Name => "name".into(),
            TicketField::Description => "description".into(),
            TicketField::Stage => "stage_id".into(),
            TicketField::Priority => "priority".into(),
            TicketField::Owner => "owner_id".into(),
            TicketField::Properties => "properties".into(),
            TicketField::Property(name) => format!("properties.{name}"),
        }
    }
}

pub struct TicketUpdate {
    pub id: String,
    pub expected_version: Option<i64>,
    pub fields: Vec<TicketField>,
    pub name: String,
    pub description: String,
    pub stage_id: String,
    pub priority: i32,
    pub owner_id: Option<String>,
    pub properties: BTreeMap<String, pb::PropertyValue>,
    pub surface: Surface,
}

impl App {
    pub async fn update_ticket(
        &self,
        caller: &Caller,
        update: TicketUpdate,
        key: Option<Key>,
    ) -> Result<pb::Ticket, ApiError> {
        let account_id = caller.account()?.to_owned();
        for _ in 0..UPDATE_ATTEMPTS {
            match self
                .try_update_ticket(caller, &account_id, &update, key.as_ref())
                .await
            {
                Ok(Some(ticket)) => return Ok(ticket),
                // Lost a race with another writer and no etag pins the
                // version the caller saw: apply the change to the new state.
                Ok(None) => continue,
                Err(err) if err.is_unique_violation() => {
                    return match kit::idempotency::replay(key.as_ref(), &self.db).await? {
                        Some(answer) => Ok(answer),
                        None => Err(err.into()),
                    };
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::Aborted {
            reason: "CONCURRENT_UPDATES",
            message: format!("ticket {} is changing too often; try again", update.id),
        })
    }

    /// `Ok(None)` when another writer changed the ticket since it was read.
    async fn try_update_ticket(
        &self,
        caller: &Caller,
        account_id: &str,
        update: &TicketUpdate,
        key: Option<&Key>,
    ) -> Result<Option<pb::Ticket>, TxError> {
        let txn = self.begin("update_ticket").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(Some(answer));
        }
        let current = queries::find_ticket_for_update(&txn, account_id, &update.id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket", &update.id))?;
        let account = self
            .account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        rules::check_management_surface(account.help_desk, update.surface).map_err(rule_error)?;
        if current.deleted_at.is_some() {
            return Err(rule_error(RuleError::TicketTrashed(current.id.clone())).into());
        }
        super::merge::refuse_merged(&current)?;
        if let Some(expected) = update.expected_version
            && expected != current.version
        {
            return Err(ApiError::stale_etag("ticket", &current.id).into());
        }
        let old_stage = self.stage_of(&txn, &current).await?;

        let mut next = current.clone();
        let mut new_stage = old_stage.clone();
        let mut properties = convert::decode_properties(&current.properties, &current.id);
        for field in &update.fields {
            match field {
                TicketField::Name => {
                    next.name = kit::validate::required(
                        &update.name,
                        "ticket.name",
                        kit::validate::MAX_NAME_LEN,
                    )?;
                }
                TicketField::Description => next.description = update.description.clone(),
                TicketField::Priority => next.priority = update.priority,
                // R4: a ticket's owner changes no conversation.
                TicketField::Owner => next.owner_id = update.owner_id.clone(),
                TicketField::Stage => {
                    new_stage = self
                        .stage(&txn, account_id, &update.stage_id)
                        .await?
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "ticket.stage_id",
                                format!("no stage {} in this account", update.stage_id),
                            )
                        })?;
                    next.pipeline_id = new_stage.pipeline_id.clone();
                    next.stage_id = new_stage.id.clone();
                }
                TicketField::Properties => properties = update.properties.clone(),
                TicketField::Property(name) => match update.properties.get(name) {
                    Some(value) => {
                        properties.insert(name.clone(), value.clone());
                    }
                    None => {
                        properties.remove(name);
                    }
                },
            }
        }
        let properties = self
            .checked_properties(&txn, account_id, properties)
            .await?;
        next.properties = convert::encode_properties(&properties);
        let changed: Vec<String> = update
            .fields
            .iter()
            .filter(|field| differs(field, &current, &next))
            .map(TicketField::path)
            .collect();
        let links = queries::links_of(&txn, &current.id).await?;
        if changed.is_empty() {
            let answer = convert::ticket_to_proto(&current, &old_stage, &links);
            kit::idempotency::record(key, &txn, &answer).await?;
            txn.commit().await?;
            return Ok(Some(answer));
        }

        let now = kit::time::now_micros();
        next.updated_at = now;
        next.version = current.version + 1;
        next.closed_at = match (old_stage.is_closed, new_stage.is_closed) {
            (false, true) => Some(now),
            (_, false) => None,
            (true, true) => current.closed_at,
        };
        if !queries::update_ticket_if_version(&txn, &next, current.version).await? {
            if update.expected_version.is_some() {
                return Err(ApiError::stale_etag("ticket", &current.id).into());
            }
            return Ok(None);
        }

        let directives = rules::stage_change_directives(
            old_stage.is_closed,
            new_stage.is_closed,
            &linked(&links),
        );
        let answer = convert::ticket_to_proto(&next, &new_stage, &links);
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "UpdateTicket", request_id)
            .with_trace_context(&caller.trace_context);
        let updated = batch.ticket_changed(pb::TicketChangeKind::Updated, &answer, changed, "");
        push_directives(&mut batch, &directives, &next.id, "", updated);
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(Some(answer))
    }
}

fn differs(
    field: &TicketField,
    before: &crate::store::ticket::Model,
    after: &crate::store::ticket::Model,
) -> bool {
    match field {
        TicketField::Name => before.name != after.name,
        TicketField::Description => before.description != after.description,
        TicketField::Stage => before.stage_id != after.stage_id,
        TicketField::Priority => before.priority != after.priority,
        TicketField::Owner => before.owner_id != after.owner_id,
        TicketField::Properties | TicketField::Property(_) => before.properties != after.properties,
    }
}
