//! The CLIENT span of a call to another service: without it the callee's
//! span hangs directly off the caller's handler, and the time spent on the
//! wire, in the channel's queue or reconnecting is nobody's.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use opentelemetry::propagation::Injector;
use tonic::codegen::http;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::observe::{grpc_status, record_status, rpc_names};

/// Wraps a channel: each call runs in a client span (RPC conventions) that
/// is the parent the callee sees in `traceparent`.
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
}

impl<S> Traced<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// For a client span every code but OK is an error (RPC conventions).
fn client_fault(code: i64) -> bool {
    code != 0
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Traced<S>
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

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = rpc_names(request.uri().path());
        let span = tracing::info_span!(
            "rpc client",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        let context = span.context();
        // Replaces what the request carried (the caller's context, put there
        // by `Caller::forward`): the callee is a child of this span. With
        // no trace pipeline the context is empty and the headers stay.
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut HeaderInjector(request.headers_mut()))
        });
        let response = self.inner.call(request);
        let recorder = span.clone();
        Box::pin(
            async move {
                let result = response.await;
                let code = match &result {
                    Ok(response) => grpc_status(response),
                    Err(_) => tonic::Code::Unavailable as i64,
                };
                record_status(&recorder, code, client_fault);
                result
            }
            .instrument(span),
        )
    }
}
