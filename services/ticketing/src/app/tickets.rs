//! Ticket use cases: create (R1, R2, R10, R5), read, list, update (R4, R5,
//! R6, R10). Each change and the directives it implies commit together.

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller, paging};
use proto::ticketing::v1 as pb;
use sea_orm::ConnectionTrait;

use super::{App, actor};
use crate::{
    convert,
    domain::{ConversationFacts, LinkedConversation, Surface, rules, rules::RuleError},
    store::{events::EventBatch, queries, stage, ticket, ticket_conversation},
};

/// How often an update without an etag retries after losing a race.
const UPDATE_ATTEMPTS: usize = 5;

pub struct NewTicket {
    pub name: String,
    pub description: String,
    pub pipeline_id: Option<String>,
    pub stage_id: Option<String>,
    pub priority: i32,
    pub owner_id: Option<String>,
    pub conversation: Option<ConversationFacts>,
    pub surface: Surface,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketField {
    Name,
    Description,
    Stage,
    Priority,
    Owner,
}

impl TicketField {
    pub fn path(self) -> &'static str {
        match self {
            TicketField::Name => "name",
            TicketField::Description => "description",
            TicketField::Stage => "stage_id",
            TicketField::Priority => "priority",
            TicketField::Owner => "owner_id",
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
    pub surface: Surface,
}

pub type TicketFilterInput = queries::TicketFilter;

pub(crate) fn rule_error(err: RuleError) -> ApiError {
    match err {
        RuleError::ConversationHasTicket {
            conversation_id,
            ticket_id,
        } => ApiError::AlreadyExists {
            reason: "CONVERSATION_HAS_TICKET",
            message: format!("conversation {conversation_id} already has ticket {ticket_id}"),
            existing_id: ticket_id,
        },
        RuleError::ConversationTrashed(id) => ApiError::precondition(
            "CONVERSATION_TRASHED",
            format!("conversation {id} is in trash"),
        ),
        RuleError::ManagedInHelpDesk => ApiError::precondition(
            "TICKETS_MANAGED_IN_HELP_DESK",
            "tickets of this account are managed in the help desk, not in the inbox",
        ),
        RuleError::TicketTrashed(id) => ApiError::precondition(
            "TICKET_TRASHED",
            format!("ticket {id} is in trash and read-only"),
        ),
    }
}

impl App {
    pub async fn create_ticket(
        &self,
        caller: &Caller,
        input: NewTicket,
        key: Option<Key>,
    ) -> Result<pb::Ticket, ApiError> {
        let account_id = caller.account()?.to_owned();
        let conversation_id = input.conversation.as_ref().map(|c| c.id.clone());
        match self
            .try_create_ticket(caller, &account_id, input, key.as_ref())
            .await
        {
            Ok(ticket) => Ok(ticket),
            // A concurrent call committed first: the same request id, or a
            // ticket for the same conversation (R2).
            Err(err) if err.is_unique_violation() => {
                if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
                    return Ok(answer);
                }
                if let Some(id) = conversation_id
                    && let Some(link) = queries::link_of_conversation(&self.db, &id).await?
                {
                    return Err(rule_error(RuleError::ConversationHasTicket {
                        conversation_id: id,
                        ticket_id: link.ticket_id,
                    }));
                }
                Err(err.into())
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn try_create_ticket(
        &self,
        caller: &Caller,
        account_id: &str,
        input: NewTicket,
        key: Option<&Key>,
    ) -> Result<pb::Ticket, TxError> {
        let txn = self.begin().await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(answer);
        }
        let account = queries::find_account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        let existing = match &input.conversation {
            Some(c) => queries::link_of_conversation(&txn, &c.id)
                .await?
                .map(|l| l.ticket_id),
            None => None,
        };
        let (pipeline_id, stage) = self
            .resolve_stage(
                &txn,
                account_id,
                input.pipeline_id.as_deref(),
                input.stage_id.as_deref(),
            )
            .await?;
        let request = rules::CreationRequest {
            name: input.name,
            owner_id: input.owner_id,
            starts_closed: stage.is_closed,
        };
        let plan = rules::plan_creation(
            &request,
            input.conversation.as_ref(),
            existing.as_deref(),
            account.help_desk,
        )
        .map_err(rule_error)?;
        let name = kit::validate::required(&plan.name, "ticket.name", kit::validate::MAX_NAME_LEN)?;

        let now = kit::time::now_micros();
        let row = ticket::Model {
            id: kit::new_id(),
            account_id: account_id.to_owned(),
            name,
            description: input.description,
            pipeline_id,
            stage_id: stage.id.clone(),
            priority: input.priority,
            owner_id: plan.owner_id,
            workspace: convert::workspace_to_proto(plan.workspace) as i32,
            contact_id: plan.contact_id,
            created_at: now,
            updated_at: now,
            closed_at: stage.is_closed.then_some(now),
            deleted_at: None,
            purge_at: None,
            cascade_id: None,
            version: 1,
        };
        queries::insert_ticket(&txn, row.clone()).await?;
        let mut links = Vec::new();
        if let Some(conversation) = &input.conversation {
            let link = ticket_conversation::Model {
                conversation_id: conversation.id.clone(),
                account_id: account_id.to_owned(),
                ticket_id: row.id.clone(),
                owner_id: conversation.owner_id.clone(),
                open: conversation.open,
                trashed: conversation.trashed,
                linked_at: now,
            };
            // The primary key refuses a second link even when a concurrent
            // transaction passed the check above (R2).
            queries::insert_link(&txn, link.clone()).await?;
            links.push(link);
        }

        let answer = convert::ticket_to_proto(&row, &stage, &links);
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "CreateTicket", request_id);
        let created =
            batch.ticket_changed(pb::TicketChangeKind::Created, &answer, Vec::new(), "R1");
        for directive in &plan.directives {
            batch.directive(
                convert::directive_to_proto(directive, &row.id),
                directive.rule,
                created,
            );
        }
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        tracing::info!(ticket_id = %row.id, account_id, "ticket created");
        Ok(answer)
    }

    /// The pipeline and stage a ticket goes to: the given stage, else the
    /// first stage of the given (or default) pipeline.
    async fn resolve_stage(
        &self,
        conn: &impl ConnectionTrait,
        account_id: &str,
        pipeline_id: Option<&str>,
        stage_id: Option<&str>,
    ) -> Result<(String, stage::Model), ApiError> {
        if let Some(stage_id) = stage_id {
            let stage = queries::find_stage(conn, account_id, stage_id)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid(
                        "ticket.stage_id",
                        format!("no stage {stage_id} in this account"),
                    )
                })?;
            if let Some(pipeline_id) = pipeline_id
                && pipeline_id != stage.pipeline_id
            {
                return Err(ApiError::invalid(
                    "ticket.stage_id",
                    format!("stage {stage_id} is not in pipeline {pipeline_id}"),
                ));
            }
            return Ok((stage.pipeline_id.clone(), stage));
        }
        let pipeline = match pipeline_id {
            Some(id) => queries::find_pipeline(conn, account_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid(
                        "ticket.pipeline_id",
                        format!("no pipeline {id} in this account"),
                    )
                })?,
            None => queries::default_pipeline(conn, account_id)
                .await?
                .ok_or_else(|| {
                    ApiError::internal(format!("account {account_id} has no default pipeline"))
                })?,
        };
        let first = queries::stages_of(conn, std::slice::from_ref(&pipeline.id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(format!("pipeline {} has no stages", pipeline.id)))?;
        Ok((pipeline.id, first))
    }

    pub async fn get_ticket(&self, account_id: &str, id: &str) -> Result<pb::Ticket, ApiError> {
        let row = queries::find_ticket(&self.db, account_id, id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket", id))?;
        self.view(&self.db, &row).await
    }

    async fn view(
        &self,
        conn: &impl ConnectionTrait,
        row: &ticket::Model,
    ) -> Result<pb::Ticket, ApiError> {
        let stage = queries::find_stage(conn, &row.account_id, &row.stage_id)
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!("ticket {} has no stage {}", row.id, row.stage_id))
            })?;
        let links = queries::links_of(conn, &row.id).await?;
        Ok(convert::ticket_to_proto(row, &stage, &links))
    }

    pub async fn list_tickets(
        &self,
        account_id: &str,
        filter: &TicketFilterInput,
        page_size: u64,
        after: Option<paging::Cursor>,
    ) -> Result<pb::ListTicketsResponse, ApiError> {
        let mut rows =
            queries::list_tickets(&self.db, account_id, filter, after.as_ref(), page_size + 1)
                .await?;
        let mut next_page_token = String::new();
        if rows.len() as u64 > page_size {
            rows.truncate(page_size as usize);
            if let Some(last) = rows.last() {
                next_page_token = paging::encode_token(&paging::Cursor {
                    key: last.created_at,
                    id: last.id.clone(),
                });
            }
        }
        let mut tickets = Vec::with_capacity(rows.len());
        for row in &rows {
            tickets.push(self.view(&self.db, row).await?);
        }
        Ok(pb::ListTicketsResponse {
            tickets,
            next_page_token,
        })
    }

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
                    if let Some(answer) = kit::idempotency::replay(key.as_ref(), &self.db).await? {
                        return Ok(answer);
                    }
                    return Err(err.into());
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
        let txn = self.begin().await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(Some(answer));
        }
        let current = queries::find_ticket(&txn, account_id, &update.id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket", &update.id))?;
        let account = queries::find_account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        rules::check_management_surface(account.help_desk, update.surface).map_err(rule_error)?;
        if current.deleted_at.is_some() {
            return Err(rule_error(RuleError::TicketTrashed(current.id.clone())).into());
        }
        if let Some(expected) = update.expected_version
            && expected != current.version
        {
            return Err(ApiError::stale_etag("ticket", &current.id).into());
        }
        let old_stage = queries::find_stage(&txn, account_id, &current.stage_id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("ticket {} has no stage", current.id)))?;

        let mut next = current.clone();
        let mut new_stage = old_stage.clone();
        let mut changed = Vec::new();
        for field in &update.fields {
            let differs = match field {
                TicketField::Name => {
                    let name = kit::validate::required(
                        &update.name,
                        "ticket.name",
                        kit::validate::MAX_NAME_LEN,
                    )?;
                    std::mem::replace(&mut next.name, name) != next.name
                }
                TicketField::Description => {
                    std::mem::replace(&mut next.description, update.description.clone())
                        != next.description
                }
                TicketField::Priority => {
                    std::mem::replace(&mut next.priority, update.priority) != next.priority
                }
                // R4: a ticket's owner changes no conversation.
                TicketField::Owner => {
                    std::mem::replace(&mut next.owner_id, update.owner_id.clone()) != next.owner_id
                }
                TicketField::Stage => {
                    let stage = queries::find_stage(&txn, account_id, &update.stage_id)
                        .await?
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "ticket.stage_id",
                                format!("no stage {} in this account", update.stage_id),
                            )
                        })?;
                    next.pipeline_id = stage.pipeline_id.clone();
                    next.stage_id = stage.id.clone();
                    new_stage = stage;
                    new_stage.id != old_stage.id
                }
            };
            if differs {
                changed.push(field.path().to_owned());
            }
        }
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

        let linked: Vec<LinkedConversation> = links
            .iter()
            .map(|l| LinkedConversation {
                id: l.conversation_id.clone(),
                open: l.open,
                trashed: l.trashed,
            })
            .collect();
        let directives =
            rules::stage_change_directives(old_stage.is_closed, new_stage.is_closed, &linked);
        let answer = convert::ticket_to_proto(&next, &new_stage, &links);
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "UpdateTicket", request_id);
        let updated = batch.ticket_changed(pb::TicketChangeKind::Updated, &answer, changed, "");
        for directive in &directives {
            batch.directive(
                convert::directive_to_proto(directive, &next.id),
                directive.rule,
                updated,
            );
        }
        kit::idempotency::record(key, &txn, &answer).await?;
        self.commit(txn, batch).await?;
        Ok(Some(answer))
    }
}
