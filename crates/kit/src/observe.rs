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

/// The span of one incoming call, child of the caller's W3C trace context.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let span =
        tracing::info_span!("rpc", otel.name = %path, otel.kind = "server", rpc.system = "grpc");
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

/// A span continuing the trace recorded in `trace_context` (an event's).
pub fn span_from(name: &'static str, trace_context: &BTreeMap<String, String>) -> tracing::Span {
    let span = tracing::info_span!("work", otel.name = name);
    let mut carrier = trace_context.clone();
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&MapCarrier(&mut carrier)));
    let _ = span.set_parent(parent);
    span
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

/// Records `rpc.server.duration` (ms) per method and gRPC status: rate,
/// errors and latency of every RPC.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    duration: Histogram<f64>,
}

impl RpcMetricsLayer {
    pub fn new(service: &'static str) -> Self {
        let duration = opentelemetry::global::meter(service)
            .f64_histogram("rpc.server.duration")
            .with_unit("ms")
            .with_description("duration of each RPC until its response headers")
            .build();
        Self { duration }
    }
}

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
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let response = self.inner.call(request);
        let duration = self.duration.clone();
        Box::pin(async move {
            let result = response.await;
            // Errors come as trailers-only responses: the status is a header.
            let status = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            duration.record(
                started.elapsed().as_secs_f64() * 1_000.0,
                &[
                    KeyValue::new("rpc.method", method),
                    KeyValue::new("rpc.grpc.status_code", status),
                ],
            );
            result
        })
    }
}

/// Exports `db.pool.connections` (by state: idle, used) for a connection pool.
pub fn observe_pool(service: &'static str, db: sea_orm::DatabaseConnection) {
    let _gauge = opentelemetry::global::meter(service)
        .u64_observable_gauge("db.pool.connections")
        .with_description("database connections of this process, by state")
        .with_callback(move |observer| {
            let (size, idle) = match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    let pool = db.get_postgres_connection_pool();
                    (pool.size(), pool.num_idle() as u32)
                }
                _ => {
                    let pool = db.get_sqlite_connection_pool();
                    (pool.size(), pool.num_idle() as u32)
                }
            };
            observer.observe(u64::from(idle), &[KeyValue::new("state", "idle")]);
            observer.observe(
                u64::from(size.saturating_sub(idle)),
                &[KeyValue::new("state", "used")],
            );
        })
        .build();
}

/// Load shedding: at most `limit` calls run at once across all connections;
/// a call beyond that is refused at once with RESOURCE_EXHAUSTED instead of
/// joining an ever-growing queue. Streams are limited separately (their
/// lifetime outlasts the call), see `kit::stream`. Health checks and
/// reflection are never refused: they cost next to nothing, and a probe
/// refused under load would get a busy but healthy pod restarted.
#[derive(Clone)]
pub struct AdmissionLayer {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl AdmissionLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(limit)),
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Admission<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if bypasses_admission(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let result = response.await;
                    drop(permit);
                    result
                })
            }
            Err(_) => Box::pin(async {
                Ok(tonic::Status::resource_exhausted(
                    "the server is at its concurrency limit; retry with backoff",
                )
                .into_http())
            }),
        }
    }
}

/// Paths served whatever the load: `grpc.health.v1` and server reflection.
fn bypasses_admission(path: &str) -> bool {
    ["/grpc.health.v1.Health/", "/grpc.reflection."]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}
