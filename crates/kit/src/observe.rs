//! Trace context across calls and events, and the metrics both services
//! export. Everything here is a no-op until `telemetry::init` installs an
//! OTLP pipeline (OTEL_EXPORTER_OTLP_ENDPOINT set).

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::{
    KeyValue,
    metrics::Histogram,
    propagation::{Extractor, Injector},
};
use tonic::codegen::http;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MapCarrier<'a>(&'a mut BTreeMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// `package.Service` and `Method` of a gRPC path (`/package.Service/Method`).
pub fn rpc_names(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""))
}

/// The span of one incoming call, child of the caller's W3C trace context,
/// named and described by OpenTelemetry's RPC conventions; its status code
/// is recorded when the response comes ([`RpcMetrics`]).
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let (service, method) = rpc_names(request.uri().path());
    let span = tracing::info_span!(
        "rpc",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

/// Codes that mean the server failed, as the RPC conventions list them for
/// server spans; the others (NOT_FOUND, INVALID_ARGUMENT, ...) are the
/// caller's and leave the span's status unset.
pub fn is_server_fault(code: i64) -> bool {
    use tonic::Code;
    [
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
    ]
    .iter()
    .any(|c| *c as i64 == code)
}

/// The gRPC status of a response whose headers came: errors are
/// trailers-only responses, so their status is a header; a response
/// without one is a success whose status follows in the trailers.
pub fn grpc_status<B>(response: &http::Response<B>) -> i64 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Records the call's outcome on `span` (declared with the fields of
/// [`server_span`]); `fault` says which codes make the span an error.
pub fn record_status(span: &tracing::Span, code: i64, fault: fn(i64) -> bool) {
    span.record("rpc.grpc.status_code", code);
    if fault(code) {
        span.record("otel.status_code", "error");
    }
}

/// A span continuing the trace recorded in `trace_context` (an event's).
pub fn span_from(name: &'static str, trace_context: &BTreeMap<String, String>) -> tracing::Span {
    let span = tracing::info_span!("work", otel.name = name, account_id = tracing::field::Empty);
    let mut carrier = trace_context.clone();
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&MapCarrier(&mut carrier)));
    let _ = span.set_parent(parent);
    span
}

/// Links `from` to `to` (a span of another trace that did its work).
pub fn link(from: &tracing::Span, to: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    from.add_link(to.context().span().span_context().clone());
}

/// The W3C trace context of the current span, or `fallback` (the caller's
/// headers) when no trace pipeline is installed.
pub fn current_trace_context(fallback: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let context = tracing::Span::current().context();
    let mut map = BTreeMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MapCarrier(&mut map))
    });
    if map.contains_key("traceparent") {
        map
    } else {
        fallback.clone()
    }
}

/// Records `rpc.server.call.duration` (seconds, until the response
/// headers) per service, method and gRPC status: rate, errors and latency
/// of every RPC; and the status on the call's span.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    duration: Histogram<f64>,
}

impl RpcMetricsLayer {
    pub fn new(service: &'static str) -> Self {
        let duration = opentelemetry::global::meter(service)
            .f64_histogram("rpc.server.call.duration")
            .with_unit("s")
            .with_description("duration of each RPC until its response headers")
            .with_boundaries(LATENCY_BOUNDARIES.to_vec())
            .build();
        Self { duration }
    }
}

/// Histogram buckets (seconds) from 1 ms to 10 s: the SDK's defaults are
/// milliseconds-sized and would put every call in the first bucket.
pub const LATENCY_BOUNDARIES: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            duration: self.duration.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    duration: Histogram<f64>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = rpc_names(request.uri().path());
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
        ];
        let started = Instant::now();
        let response = self.inner.call(request);
        let duration = self.duration.clone();
        Box::pin(async move {
            let result = response.await;
            // Polled inside the call's span (tonic's trace_fn).
            let code = match &result {
                Ok(response) => grpc_status(response),
                Err(_) => tonic::Code::Unknown as i64,
            };
            record_status(&tracing::Span::current(), code, is_server_fault);
            let mut attributes = attributes.to_vec();
            attributes.push(KeyValue::new("rpc.grpc.status_code", code));
            duration.record(started.elapsed().as_secs_f64(), &attributes);
            result
        })
    }
}

/// Exports `db.client.connection.count` (by `db.client.connection.state`:
/// idle, used) for a connection pool, as the database semantic conventions
/// name it.
pub fn observe_pool(service: &'static str, db: sea_orm::DatabaseConnection) {
    let _gauge = opentelemetry::global::meter(service)
        .i64_observable_up_down_counter("db.client.connection.count")
        .with_unit("{connection}")
        .with_description("database connections of this process, by state")
        .with_callback(move |observer| {
            let (system, size, idle) = match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    let pool = db.get_postgres_connection_pool();
                    ("postgresql", pool.size(), pool.num_idle() as u32)
                }
                _ => {
                    let pool = db.get_sqlite_connection_pool();
                    ("sqlite", pool.size(), pool.num_idle() as u32)
                }
            };
            for (state, count) in [("idle", idle), ("used", size.saturating_sub(idle))] {
                observer.observe(
                    i64::from(count),
                    &[
                        KeyValue::new("db.system.name", system),
                        KeyValue::new("db.client.connection.pool.name", service),
                        KeyValue::new("db.client.connection.state", state),
                    ],
                );
            }
        })
        .build();
}

/// Load shedding: at most `limit` calls run at once across all connections;
/// a call beyond that is refused at once with RESOURCE_EXHAUSTED instead of
/// joining an ever-growing queue. Streams are limited separately (their
/// lifetime outlasts the call), see `kit::stream`. Health checks and
/// reflection are never refused: they cost next to nothing, and a probe
/// refused under load would get a busy but healthy pod restarted.
///
/// tower does the limiting (`GlobalConcurrencyLimitLayer`: one semaphore
/// for every connection's stack) and the shedding (`LoadShedLayer`: refuse
/// instead of waiting for a permit); what is ours is the bypass by path and
/// the refusal as a gRPC status, which tower knows nothing about.
#[derive(Clone)]
pub struct AdmissionLayer {
    limit: tower::limit::GlobalConcurrencyLimitLayer,
}

impl AdmissionLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: tower::limit::GlobalConcurrencyLimitLayer::new(limit),
        }
    }
}

impl<S: Clone> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            limited: tower::load_shed::LoadShedLayer::new().layer(self.limit.layer(inner.clone())),
            direct: inner,
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    /// For health and reflection.
    direct: S,
    limited: tower::load_shed::LoadShed<tower::limit::ConcurrencyLimit<S>>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Admission<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, tower::BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        use tower::ServiceExt as _;
        if bypasses_admission(request.uri().path()) {
            let response = self.direct.call(request);
            return Box::pin(async move { response.await.map_err(Into::into) });
        }
        // A clone holds no permit: `oneshot` asks for one (readiness) and
        // LoadShed turns "none free" into an Overloaded error at once.
        let limited = self.limited.clone();
        Box::pin(async move {
            match limited.oneshot(request).await {
                Err(err) if err.is::<tower::load_shed::error::Overloaded>() => {
                    Ok(tonic::Status::resource_exhausted(
                        "the server is at its concurrency limit; retry with backoff",
                    )
                    .into_http())
                }
                other => other,
            }
        })
    }
}

/// Paths served whatever the load: `grpc.health.v1` and server reflection.
fn bypasses_admission(path: &str) -> bool {
    ["/grpc.health.v1.Health/", "/grpc.reflection."]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}
