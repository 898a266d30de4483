//! Writing and reading the event log. Events of a change are appended in the
//! change's own transaction, as its last statements, so a change and its
//! events commit or vanish together.

use prost::Message;
use proto::ticketing::v1 as pb;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};

use tracing::Instrument;

use super::entities::{event, event_head};

/// The events one transaction will append, in order.
pub struct EventBatch {
    account_id: String,
    cause: pb::Cause,
    trace_context: std::collections::BTreeMap<String, String>,
    events: Vec<Pending>,
}

struct Pending {
    event: pb::Event,
    ticket_id: Option<String>,
    conversation_id: Option<String>,
    /// Index in this batch of the event that triggered this one.
    trigger: Option<usize>,
}

impl EventBatch {
    pub fn new(account_id: &str, actor: pb::Actor, method: &str, request_id: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
            cause: pb::Cause {
                actor: Some(actor),
                rule: String::new(),
                trigger_sequence: 0,
                method: method.to_owned(),
                request_id: request_id.to_owned(),
            },
            trace_context: Default::default(),
            events: Vec::new(),
        }
    }

    /// Carries the causing call's W3C trace context into every event.
    pub fn with_trace_context(
        mut self,
        trace_context: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        self.trace_context = kit::observe::current_trace_context(trace_context);
        self
    }

    /// Records a ticket change; returns its index, to name it as a trigger.
    pub fn ticket_changed(
        &mut self,
        kind: pb::TicketChangeKind,
        ticket: &pb::Ticket,
        changed_fields: Vec<String>,
        rule: &str,
    ) -> usize {
        let payload = pb::event::Payload::TicketChanged(pb::TicketChanged {
            kind: kind as i32,
            ticket: Some(ticket.clone()),
            changed_fields,
        });
        self.push(payload, Some(ticket.id.clone()), None, rule, None)
    }

    /// Records a directive for the inbox, caused by the event at `trigger`.
    pub fn directive(
        &mut self,
        directive: pb::ConversationDirective,
        rule: &str,
        trigger: usize,
    ) -> usize {
        let ticket_id = Some(directive.ticket_id.clone());
        let conversation_id = Some(directive.conversation_id.clone());
        self.push(
            pb::event::Payload::ConversationDirective(directive),
            ticket_id,
            conversation_id,
            rule,
            Some(trigger),
        )
    }

    fn push(
        &mut self,
        payload: pb::event::Payload,
        ticket_id: Option<String>,
        conversation_id: Option<String>,
        rule: &str,
        trigger: Option<usize>,
    ) -> usize {
        let mut cause = self.cause.clone();
        cause.rule = rule.to_owned();
        self.events.push(Pending {
            event: pb::Event {
                sequence: 0,
                account_id: self.account_id.clone(),
                create_time: None,
                cause: Some(cause),
                trace_context: self.trace_context.clone(),
                payload: Some(payload),
            },
            ticket_id,
            conversation_id,
            trigger,
        });
        self.events.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Takes sequence numbers and writes the events. Call as the last
    /// statement before commit: the head row stays locked until then, which
    /// is what orders commits by sequence within the account.
    pub async fn append(self, conn: &impl ConnectionTrait) -> Result<Vec<pb::Event>, DbErr> {
        if self.events.is_empty() {
            return Ok(Vec::new());
        }
        // The events carry this span's context: their delivery and their
        // application in the inbox hang off the append that wrote them.
        let span = tracing::info_span!(
            "append events",
            otel.name = "append events",
            account_id = %self.account_id,
            events = self.events.len(),
            first_sequence = tracing::field::Empty,
            last_sequence = tracing::field::Empty,
        );
        let count = self.events.len() as u64;
        let written = self.write(conn, &span).instrument(span.clone()).await?;
        appended_counter().add(count, &[]);
        Ok(written)
    }

    async fn write(
        self,
        conn: &impl ConnectionTrait,
        span: &tracing::Span,
    ) -> Result<Vec<pb::Event>, DbErr> {
        let trace_context = kit::observe::current_trace_context(&self.trace_context);
        let count = self.events.len() as i64;
        let head = event_head::Entity::update_many()
            .col_expr(
                event_head::Column::LastSequence,
                Expr::col(event_head::Column::LastSequence).add(count),
            )
            .filter(event_head::Column::AccountId.eq(&self.account_id))
            .exec_with_returning(conn)
            .await?
            .pop()
            .ok_or_else(|| {
                DbErr::RecordNotFound(format!("event head of account {}", self.account_id))
            })?;
        let first = head.last_sequence - count + 1;
        span.record("first_sequence", first);
        span.record("last_sequence", head.last_sequence);
        let now = kit::time::now_micros();
        let mut written = Vec::with_capacity(self.events.len());
        let mut rows = Vec::with_capacity(self.events.len());
        for (index, pending) in self.events.into_iter().enumerate() {
            let mut event = pending.event;
            event.sequence = first + index as i64;
            event.create_time = Some(kit::time::to_timestamp(now));
            event.trace_context = trace_context.clone();
            if let (Some(trigger), Some(cause)) = (pending.trigger, event.cause.as_mut()) {
                cause.trigger_sequence = first + trigger as i64;
            }
            rows.push(event::ActiveModel {
                account_id: Set(event.account_id.clone()),
                sequence: Set(event.sequence),
                ticket_id: Set(pending.ticket_id),
                conversation_id: Set(pending.conversation_id),
                payload: Set(event.encode_to_vec()),
                created_at: Set(now),
            });
            written.push(event);
        }
        event::Entity::insert_many(rows).exec(conn).await?;
        Ok(written)
    }
}

/// `ticketing.events.appended`: events written to the log (their rate is
/// the write load the stream carries).
fn appended_counter() -> &'static opentelemetry::metrics::Counter<u64> {
    static COUNTER: std::sync::OnceLock<opentelemetry::metrics::Counter<u64>> =
        std::sync::OnceLock::new();
    COUNTER.get_or_init(|| {
        opentelemetry::global::meter("ticketing")
            .u64_counter("ticketing.events.appended")
            .with_unit("{event}")
            .with_description("events appended to the log")
            .build()
    })
}

/// Creates an account's head row, so its first append has a row to lock.
pub async fn create_head(conn: &impl ConnectionTrait, account_id: &str) -> Result<(), DbErr> {
    event_head::Entity::insert(event_head::ActiveModel {
        account_id: Set(account_id.to_owned()),
        last_sequence: Set(0),
        pruned_through: Set(0),
    })
    .exec(conn)
    .await
    .map(|_| ())
}

/// The head row of each account (all accounts when `only` is `None`): the
/// last committed sequence and how far the log was pruned.
pub async fn head_rows(
    conn: &impl ConnectionTrait,
    only: Option<&[String]>,
) -> Result<Vec<event_head::Model>, DbErr> {
    let mut query = event_head::Entity::find();
    if let Some(accounts) = only {
        query = query.filter(event_head::Column::AccountId.is_in(accounts.iter().cloned()));
    }
    query.all(conn).await
}

/// The last committed sequence of each account (all accounts when `only` is
/// `None`).
pub async fn heads(
    conn: &impl ConnectionTrait,
    only: Option<&[String]>,
) -> Result<Vec<(String, i64)>, DbErr> {
    Ok(head_rows(conn, only)
        .await?
        .into_iter()
        .map(|h| (h.account_id, h.last_sequence))
        .collect())
}

/// Up to `limit` events of an account after `after`, in order.
pub async fn read_after(
    conn: &impl ConnectionTrait,
    account_id: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<pb::Event>, DbErr> {
    let query = event::Entity::find()
        .filter(event::Column::AccountId.eq(account_id))
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence);
    let rows: Vec<event::Model> = kit::rows::at_most(conn, query, limit).await?;
    rows.into_iter().map(decode).collect()
}

fn decode(row: event::Model) -> Result<pb::Event, DbErr> {
    let mut event = pb::Event::decode(row.payload.as_slice()).map_err(|err| {
        DbErr::Custom(format!(
            "event {}/{} does not decode: {err}",
            row.account_id, row.sequence
        ))
    })?;
    event.sequence = row.sequence;
    Ok(event)
}

/// When the event `sequence` of an account was written, if the log has it.
pub async fn written_at(
    conn: &impl ConnectionTrait,
    account_id: &str,
    sequence: i64,
) -> Result<Option<i64>, DbErr> {
    Ok(event::Entity::find_by_id((account_id.to_owned(), sequence))
        .one(conn)
        .await?
        .map(|row| row.created_at))
}

/// Which item's history to read.
pub enum Subject<'a> {
    Ticket(&'a str),
    Conversation(&'a str),
}

/// The events about one ticket or conversation after `after`, in order.
pub async fn history(
    conn: &impl ConnectionTrait,
    account_id: &str,
    subject: Subject<'_>,
    after: i64,
    limit: u64,
) -> Result<Vec<pb::Event>, DbErr> {
    let query = event::Entity::find().filter(event::Column::AccountId.eq(account_id));
    let query = match subject {
        Subject::Ticket(id) => query.filter(event::Column::TicketId.eq(id)),
        Subject::Conversation(id) => query.filter(event::Column::ConversationId.eq(id)),
    };
    let query = query
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence);
    let rows: Vec<event::Model> = kit::rows::at_most(conn, query, limit).await?;
    rows.into_iter().map(decode).collect()
}
