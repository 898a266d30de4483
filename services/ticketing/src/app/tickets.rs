//! Creating and reading tickets (R1, R2, R10; R5 for a ticket created
//! closed). Each change and the directives it implies commit together.

use std::collections::BTreeMap;

use kit::{ApiError, db::TxError, idempotency::Key, identity::Caller, paging};
use proto::ticketing::v1 as pb;
use sea_orm::ConnectionTrait;

use super::{
    App, actor,
    outcome::{facts_row, merged_facts, push_directives, rule_error},
};
use crate::{
    convert,
    domain::{ConversationFacts, Surface, rules, rules::RuleError},
    store::{events::EventBatch, queries, stage, ticket, ticket_conversation},
};

pub struct NewTicket {
    pub name: String,
    pub description: String,
    pub pipeline_id: Option<String>,
    pub stage_id: Option<String>,
    pub priority: i32,
    pub owner_id: Option<String>,
    pub properties: BTreeMap<String, pb::PropertyValue>,
    pub conversation: Option<(ConversationFacts, i64)>,
    pub surface: Surface,
}

pub type TicketFilterInput = queries::TicketFilter;

impl App {
    pub async fn create_ticket(
        &self,
        caller: &Caller,
        input: NewTicket,
        key: Option<Key>,
    ) -> Result<pb::Ticket, ApiError> {
        let account_id = caller.account()?.to_owned();
        match self
            .try_create_ticket(caller, &account_id, input, key.as_ref())
            .await
        {
            Ok(ticket) => Ok(ticket),
            // A concurrent retry with the same request id committed first.
            Err(err) if err.is_unique_violation() => {
                match kit::idempotency::replay(key.as_ref(), &self.db).await? {
                    Some(answer) => Ok(answer),
                    None => Err(err.into()),
                }
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
        let txn = self.begin("create_ticket").await?;
        if let Some(answer) = kit::idempotency::replay(key, &txn).await? {
            return Ok(answer);
        }
        let account = self
            .account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        let ticket_id = kit::new_id();
        let now = kit::time::now_micros();
        // A conversation ticketing has not heard of yet (the common case) is
        // linked (R2) by the very insert that records its facts; a known one
        // keeps its link, and is linked below if it has none.
        let held = match &input.conversation {
            Some((snapshot, version)) => {
                let claimed = ticket_conversation::Model {
                    ticket_id: Some(ticket_id.clone()),
                    linked_at: Some(now),
                    ..facts_row(account_id, snapshot, *version)
                };
                Some(queries::record_facts(&txn, claimed).await?)
            }
            None => None,
        };
        let linked_on_insert = held
            .as_ref()
            .is_some_and(|h| h.ticket_id.as_deref() == Some(ticket_id.as_str()));
        let conversation = input
            .conversation
            .as_ref()
            .zip(held.as_ref())
            .map(|((snapshot, _), held)| merged_facts(snapshot, held));
        let existing = held
            .as_ref()
            .and_then(|h| h.ticket_id.clone())
            .filter(|linked| *linked != ticket_id);
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
            conversation.as_ref(),
            existing.as_deref(),
            account.help_desk,
        )
        .map_err(rule_error)?;
        let name = kit::validate::required(&plan.name, "ticket.name", kit::validate::MAX_NAME_LEN)?;
        let properties = self
            .checked_properties(&txn, account_id, input.properties)
            .await?;

        let row = ticket::Model {
            id: ticket_id,
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
            properties: convert::encode_properties(&properties),
            version: 1,
            merged_into: None,
            merge_count: 0,
            owner_sequence: 0,
        };
        queries::insert_ticket(&txn, row.clone()).await?;
        if let Some(conversation) = &conversation
            && !linked_on_insert
            && !queries::link_to_ticket(&txn, account_id, &conversation.id, &row.id, now).await?
        {
            // A concurrent create linked it first; its commit is visible now.
            let winner = queries::link_of_conversation(&txn, account_id, &conversation.id)
                .await?
                .and_then(|l| l.ticket_id)
                .unwrap_or_default();
            return Err(rule_error(RuleError::ConversationHasTicket {
                conversation_id: conversation.id.clone(),
                ticket_id: winner,
            })
            .into());
        }
        // A new ticket's only link is the one just made.
        let links: Vec<_> = held
            .into_iter()
            .map(|held| ticket_conversation::Model {
                ticket_id: Some(row.id.clone()),
                linked_at: Some(now),
                ..held
            })
            .collect();
        let answer = convert::ticket_to_proto(&row, &stage, &links);
        let request_id = key.map(|k| k.request_id.as_str()).unwrap_or_default();
        let mut batch = EventBatch::new(account_id, actor(caller), "CreateTicket", request_id)
            .with_trace_context(&caller.trace_context);
        let created =
            batch.ticket_changed(pb::TicketChangeKind::Created, &answer, Vec::new(), "R1");
        push_directives(&mut batch, &plan.directives, &row.id, "", created);
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
            let stage = self
                .stage(conn, account_id, stage_id)
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
            None => {
                let first = self
                    .default_first_stage(conn, account_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::internal(format!("account {account_id} has no default pipeline"))
                    })?;
                return Ok((first.pipeline_id.clone(), first));
            }
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
        let mut ticket = self.view(&self.db, &row).await?;
        self.with_merge_times(&self.db, &mut ticket).await?;
        Ok(ticket)
    }

    /// The API's view of a stored ticket.
    pub(crate) async fn view(
        &self,
        conn: &impl ConnectionTrait,
        row: &ticket::Model,
    ) -> Result<pb::Ticket, ApiError> {
        let stage = self.stage_of(conn, row).await?;
        let links = queries::links_of(conn, &row.id).await?;
        Ok(convert::ticket_to_proto(row, &stage, &links))
    }

    pub(crate) async fn stage_of(
        &self,
        conn: &impl ConnectionTrait,
        row: &ticket::Model,
    ) -> Result<stage::Model, ApiError> {
        self.stage(conn, &row.account_id, &row.stage_id)
            .await?
            .ok_or_else(|| {
                ApiError::internal(format!("ticket {} has no stage {}", row.id, row.stage_id))
            })
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
        let next_page_token = paging::next_page(&mut rows, page_size, |r| paging::Cursor {
            key: r.created_at,
            id: r.id.clone(),
        });
        // Two queries for the whole page, not two per ticket.
        let stage_ids: Vec<String> = rows.iter().map(|r| r.stage_id.clone()).collect();
        let ticket_ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let stages = queries::stages_by_id(&self.db, account_id, &stage_ids).await?;
        let links = queries::links_of_tickets(&self.db, &ticket_ids).await?;
        let mut tickets = Vec::with_capacity(rows.len());
        for row in &rows {
            let stage = stages
                .iter()
                .find(|s| s.id == row.stage_id)
                .ok_or_else(|| {
                    ApiError::internal(format!("ticket {} has no stage {}", row.id, row.stage_id))
                })?;
            let own: Vec<_> = links
                .iter()
                .filter(|l| l.ticket_id.as_deref() == Some(row.id.as_str()))
                .cloned()
                .collect();
            let mut ticket = convert::ticket_to_proto(row, stage, &own);
            // Only when merged tickets were asked for: one more read each.
            self.with_merge_times(&self.db, &mut ticket).await?;
            tickets.push(ticket);
        }
        Ok(pb::ListTicketsResponse {
            tickets,
            next_page_token,
        })
    }
}
