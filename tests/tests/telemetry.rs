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
    trace::v1::Span,
};
use proto::ticketing::v1 as tpb;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    metrics: Arc<Mutex<Vec<String>>>,
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
            .map(|m| m.name);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_runs_through_both_services_and_the_event_log() {
    let collector = Collector::default();
    let addr = start_collector(collector.clone()).await;
    // SAFETY: set before any other thread of this test binary reads them.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"));
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
        std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "300");
    }
    let telemetry = kit::telemetry::init("e2e").expect("telemetry");
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let conversation = conversation(&stack, &account, "Traced", "t@example.com").await;

    // Action 1: a ticket from the sidebar, inbox → ticketing.
    let create_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
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

    let spans = eventually("the spans of both actions", || {
        let collector = collector.clone();
        async move {
            let spans = collector.spans.lock().expect("spans").clone();
            let complete = span(
                &spans,
                create_trace,
                "/ticketing.v1.TicketingService/CreateTicket",
            )
            .is_some()
                && span(&spans, close_trace, "apply_event").is_some();
            complete.then_some(spans)
        }
    })
    .await;
    let inbox_rpc = span(
        &spans,
        create_trace,
        "/inbox.v1.InboxService/CreateTicketForConversation",
    )
    .expect("inbox span");
    assert_eq!(
        hex(&inbox_rpc.parent_span_id),
        caller_span,
        "the inbox continues the caller's trace"
    );
    let ticketing_rpc = span(
        &spans,
        create_trace,
        "/ticketing.v1.TicketingService/CreateTicket",
    )
    .expect("ticketing span");
    assert_eq!(
        ticketing_rpc.parent_span_id, inbox_rpc.span_id,
        "ticketing's span is a child of the inbox's"
    );
    let update = span(
        &spans,
        close_trace,
        "/ticketing.v1.TicketingService/UpdateTicket",
    )
    .expect("update span");
    let applied = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == close_trace && s.name == "apply_event")
        .collect::<Vec<_>>();
    assert!(!applied.is_empty());
    assert!(
        applied.iter().all(|s| s.parent_span_id == update.span_id),
        "the inbox applies the events inside the trace of the call that caused them"
    );

    let metrics = eventually("metrics", || {
        let collector = collector.clone();
        async move {
            let names = collector.metrics.lock().expect("metrics").clone();
            let complete = ["rpc.server.duration", "db.pool.connections"]
                .iter()
                .all(|wanted| names.iter().any(|n| n == wanted));
            complete.then_some(names)
        }
    })
    .await;
    assert!(metrics.iter().any(|n| n == "rpc.server.duration"));
    stack.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(telemetry);
}
