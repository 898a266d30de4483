//! One trace per user action across both services, and metrics, received by
//! an in-process OTLP collector. (Its own test binary: telemetry is global
//! to a process.)

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use e2e::*;
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::any_value::Value,
    metrics::v1::metric::Data,
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};
use proto::ticketing::v1 as tpb;
use tonic::{Request, Response, Status};

/// A metric received: name, the kind of its data, unit.
type Received = (String, &'static str, String);

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    metrics: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().expect("spans").extend(spans);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let names = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .map(|m| {
                let kind = match m.data {
                    Some(Data::Gauge(_)) => "gauge",
                    Some(Data::Sum(sum)) if sum.is_monotonic => "counter",
                    Some(Data::Sum(_)) => "updowncounter",
                    Some(Data::Histogram(_)) => "histogram",
                    Some(_) => "other",
                    None => "none",
                };
                (m.name, kind, m.unit)
            });
        self.metrics.lock().expect("metrics").extend(names);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn start_collector(collector: Collector) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn with_traceparent<T>(mut request: Request<T>, trace_id: &str, parent_id: &str) -> Request<T> {
    let header = format!("00-{trace_id}-{parent_id}-01");
    request
        .metadata_mut()
        .insert("traceparent", header.parse().expect("traceparent"));
    request
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn span<'a>(spans: &'a [Span], trace_id: &str, name: &str) -> Option<&'a Span> {
    spans
        .iter()
        .find(|s| hex(&s.trace_id) == trace_id && s.name == name)
}

/// The child named `name` of `parent`, in `parent`'s trace.
fn child<'a>(spans: &'a [Span], parent: &Span, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| {
            s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id && s.name == name
        })
        .unwrap_or_else(|| {
            let names: Vec<(&str, String)> = spans
                .iter()
                .filter(|s| s.trace_id == parent.trace_id)
                .map(|s| (s.name.as_str(), hex(&s.parent_span_id)))
                .collect();
            panic!("no span {name} under {} in {names:?}", parent.name)
        })
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

fn text(value: &str) -> Option<Value> {
    Some(Value::StringValue(value.to_owned()))
}

/// SPEC §6 and OpenTelemetry's RPC conventions: names, kind, attributes and
/// a status that is an error only for the server's own faults.
fn assert_rpc(span: &Span, kind: SpanKind, service: &str, method: &str, code: i64) {
    assert_eq!(span.kind, kind as i32, "{}", span.name);
    assert_eq!(attribute(span, "rpc.system"), text("grpc"));
    assert_eq!(attribute(span, "rpc.service"), text(service));
    assert_eq!(attribute(span, "rpc.method"), text(method));
    assert_eq!(
        attribute(span, "rpc.grpc.status_code"),
        Some(Value::IntValue(code)),
        "{}",
        span.name
    );
    assert_ne!(
        span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32),
        "{} is not a server fault",
        span.name
    );
}

/// A transaction's span (`kit::transaction`): inside its use case's span,
/// named by the database conventions' system, ended by a COMMIT.
fn assert_transaction(span: &Span) {
    assert_eq!(span.kind, SpanKind::Internal as i32, "{}", span.name);
    assert!(
        matches!(attribute(span, "db.system.name"), Some(Value::StringValue(s)) if s == "sqlite" || s == "postgresql"),
        "{}",
        span.name
    );
    assert_eq!(attribute(span, "db.operation.name"), text("COMMIT"));
    assert_ne!(
        span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32),
        "{} committed",
        span.name
    );
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().expect("logs").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_runs_through_both_services_and_the_event_log() {
    let collector = Collector::default();
    let addr = start_collector(collector.clone()).await;
    // SAFETY: set before any other thread of this test binary reads them.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"));
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
        std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "300");
        std::env::set_var("LOG_FORMAT", "json");
    }
    let logs = Logs::default();
    let writer = logs.clone();
    let telemetry =
        kit::telemetry::init_with_writer("e2e", move || writer.clone()).expect("telemetry");
    // Health is asked until both services serve: probes make no trace.
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;

    // Action 0: a conversation, written by the inbox in one transaction.
    let conversation_trace = "3af92f3577b34da6a3ce929d0e0e4735";
    let caller_span = "00f067aa0ba902b7";
    let conversation = stack
        .inbox()
        .await
        .create_conversation(with_traceparent(
            as_user(&account, "x", new_conversation("Traced", "t@example.com")),
            conversation_trace,
            caller_span,
        ))
        .await
        .expect("create conversation")
        .into_inner();

    // Action 1: a ticket from the sidebar, inbox → ticketing.
    let create_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let ticket = stack
        .inbox()
        .await
        .create_ticket_for_conversation(with_traceparent(
            as_user(&account, "x", create_ticket_for(&conversation.id)),
            create_trace,
            caller_span,
        ))
        .await
        .expect("create ticket")
        .into_inner()
        .ticket
        .expect("ticket");

    // Action 2: closing the ticket, applied by the inbox from the event log.
    let close_trace = "5af92f3577b34da6a3ce929d0e0e4737";
    let closed = stage_id(&stack, &account, "Closed").await;
    stack
        .ticketing()
        .await
        .update_ticket(with_traceparent(
            as_user(&account, "x", move_to_stage(&ticket.id, &closed, "")),
            close_trace,
            caller_span,
        ))
        .await
        .expect("close");
    conversation_becomes(&stack, &account, &conversation.id, "closed", is_closed).await;

    // Action 3: a caller's mistake (NOT_FOUND) is no error of the server's.
    let missing_trace = "6af92f3577b34da6a3ce929d0e0e4738";
    let missing = stack
        .ticketing()
        .await
        .get_ticket(with_traceparent(
            as_user(
                &account,
                "x",
                tpb::GetTicketRequest {
                    id: "no-such-ticket".into(),
                },
            ),
            missing_trace,
            caller_span,
        ))
        .await
        .expect_err("unknown ticket");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let spans = eventually("the spans of the three actions", || {
        let collector = collector.clone();
        async move {
            let spans = collector.spans.lock().expect("spans").clone();
            // A server span ends after every span under it.
            let complete = span(&spans, create_trace, "apply_event").is_some()
                && span(
                    &spans,
                    conversation_trace,
                    "inbox.v1.InboxService/CreateConversation",
                )
                .is_some()
                && span(&spans, close_trace, "apply_event").is_some()
                && span(
                    &spans,
                    missing_trace,
                    "ticketing.v1.TicketingService/GetTicket",
                )
                .is_some();
            complete.then_some(spans)
        }
    })
    .await;

    // caller → inbox → transaction → statements
    let created_rpc = span(
        &spans,
        conversation_trace,
        "inbox.v1.InboxService/CreateConversation",
    )
    .expect("inbox span");
    assert_eq!(hex(&created_rpc.parent_span_id), caller_span);
    let transaction = child(&spans, created_rpc, "transaction create_conversation");
    assert_transaction(transaction);
    let insert = child(&spans, transaction, "INSERT");
    assert_eq!(insert.kind, SpanKind::Client as i32);

    // caller → inbox → client → ticketing → append → delivery → apply
    let inbox_rpc = span(
        &spans,
        create_trace,
        "inbox.v1.InboxService/CreateTicketForConversation",
    )
    .expect("inbox span");
    assert_eq!(
        hex(&inbox_rpc.parent_span_id),
        caller_span,
        "the inbox continues the caller's trace"
    );
    assert_rpc(
        inbox_rpc,
        SpanKind::Server,
        "inbox.v1.InboxService",
        "CreateTicketForConversation",
        0,
    );
    let client = child(
        &spans,
        inbox_rpc,
        "ticketing.v1.TicketingService/CreateTicket",
    );
    assert_rpc(
        client,
        SpanKind::Client,
        "ticketing.v1.TicketingService",
        "CreateTicket",
        0,
    );
    let ticketing_rpc = child(&spans, client, "ticketing.v1.TicketingService/CreateTicket");
    assert_rpc(
        ticketing_rpc,
        SpanKind::Server,
        "ticketing.v1.TicketingService",
        "CreateTicket",
        0,
    );
    // The use case's transaction, its statements inside it, and the
    // append (a span of its own holding its statements) beside them.
    let transaction = child(&spans, ticketing_rpc, "transaction create_ticket");
    assert_transaction(transaction);
    child(&spans, transaction, "INSERT");
    let append = child(&spans, ticketing_rpc, "append events");
    assert!(
        transaction.start_time_unix_nano <= append.start_time_unix_nano
            && append.end_time_unix_nano <= transaction.end_time_unix_nano,
        "the append runs inside the transaction"
    );
    assert_eq!(attribute(append, "account_id"), text(&account));
    assert!(
        matches!(attribute(append, "first_sequence"), Some(Value::IntValue(n)) if n > 0),
        "the append names its sequences"
    );
    // The head row's UPDATE and the events' INSERT, in the append's span.
    for operation in ["UPDATE", "INSERT"] {
        let statement = child(&spans, append, operation);
        assert_eq!(statement.kind, SpanKind::Client as i32);
        assert!(
            matches!(attribute(statement, "db.system.name"), Some(Value::StringValue(s)) if s == "sqlite" || s == "postgresql")
        );
        assert_eq!(attribute(statement, "db.operation.name"), text(operation));
    }
    let delivery = child(&spans, append, "deliver events");
    child(&spans, delivery, "apply_event");

    // caller → ticketing → append → delivery → apply
    let update = span(
        &spans,
        close_trace,
        "ticketing.v1.TicketingService/UpdateTicket",
    )
    .expect("update span");
    assert_eq!(hex(&update.parent_span_id), caller_span);
    assert_rpc(
        update,
        SpanKind::Server,
        "ticketing.v1.TicketingService",
        "UpdateTicket",
        0,
    );
    let append = child(&spans, update, "append events");
    let delivery = child(&spans, append, "deliver events");
    let apply = child(&spans, delivery, "apply_event");
    // The inbox's transaction moves its cursor by an UPDATE, under this
    // trace's span or, when the batch also carried another trace's events,
    // under the span this one links to.
    let applied_in = apply
        .links
        .first()
        .and_then(|link| spans.iter().find(|s| s.span_id == link.span_id))
        .unwrap_or(apply);
    let transaction = child(&spans, applied_in, "transaction apply_events");
    assert_transaction(transaction);
    child(&spans, transaction, "UPDATE");

    let get = span(
        &spans,
        missing_trace,
        "ticketing.v1.TicketingService/GetTicket",
    )
    .expect("get span");
    assert_rpc(
        get,
        SpanKind::Server,
        "ticketing.v1.TicketingService",
        "GetTicket",
        tonic::Code::NotFound as i64,
    );

    // Probes, reflection and the periodic acknowledgements start no trace.
    let noise: Vec<&str> = spans
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| kit::telemetry::is_quiet(name))
        .collect();
    assert!(noise.is_empty(), "{noise:?}");

    // SPEC §6: a JSON log line leads to its trace.
    let created = logs
        .lines()
        .into_iter()
        .find(|line| line["fields"]["message"] == "ticket created")
        .expect("the ticket's log line");
    assert_eq!(created["trace_id"], create_trace, "{created}");
    assert_eq!(created["span_id"], hex(&ticketing_rpc.span_id), "{created}");

    let wanted = [
        ("rpc.server.call.duration", "histogram", "s"),
        ("rpc.server.active_streams", "updowncounter", "{stream}"),
        ("db.client.operation.duration", "histogram", "s"),
        ("db.client.connection.wait_time", "histogram", "s"),
        (
            "db.client.connection.count",
            "updowncounter",
            "{connection}",
        ),
        ("ticketing.events.appended", "counter", "{event}"),
        ("ticketing.events.delivery.latency", "histogram", "s"),
        ("inbox.events.apply.latency", "histogram", "s"),
        ("inbox.consumer.lag", "gauge", "{event}"),
        ("inbox.consumer.lag_time", "gauge", "s"),
        ("inbox.consumer.lease.held", "gauge", ""),
        ("inbox.outbox.depth", "gauge", "{report}"),
        ("inbox.outbox.oldest_age", "gauge", "s"),
    ];
    let metrics = eventually("metrics", || {
        let collector = collector.clone();
        async move {
            let received = collector.metrics.lock().expect("metrics").clone();
            let complete = wanted
                .iter()
                .all(|(name, _, _)| received.iter().any(|(n, _, _)| n == name));
            complete.then_some(received)
        }
    })
    .await;
    for (name, kind, unit) in wanted {
        let (_, received_kind, received_unit) = metrics
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("received");
        assert_eq!(
            (*received_kind, received_unit.as_str()),
            (kind, unit),
            "{name}"
        );
    }
    stack.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(telemetry);
}
