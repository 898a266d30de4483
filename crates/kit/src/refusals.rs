//! Tonic's own refusals of a request body, put into the error model. Tonic
//! answers a body that does not decode (random bytes, invalid UTF-8 in a
//! string, a wrong wire type, a truncated field, no message at all) with
//! INTERNAL, and a length prefix over the limit with OUT_OF_RANGE; these are
//! the caller's mistakes, so they become INVALID_ARGUMENT and
//! RESOURCE_EXHAUSTED with an ErrorInfo reason. The same layer keeps every
//! error carried in response headers under the size bound.
//!
//! These refusals happen before a handler runs, so they always travel as a
//! trailers-only response: the status is in the response headers.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{Code, Status, codegen::http};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{ERROR_DOMAIN, MAX_MESSAGE, clip};

/// Tonic's messages for a request body that does not decode.
const UNDECODABLE: [&str; 4] = [
    // prost's DecodeError (tonic-prost's codec)
    "failed to decode Protobuf message",
    "Missing request message.",
    "Unexpected EOF decoding stream.",
    "protocol error: received message with invalid compression flag",
];
/// Tonic's message for a length prefix over the limit.
const TOO_LARGE: &str = "Error, decoded message length too large";
/// The largest error (message and details) sent in headers.
const MAX_ERROR_BYTES: usize = 4 * 1024;

/// The status to send instead of `status`, if any. Public for the fuzz
/// targets, which check every decoding failure against it.
pub fn replacement(status: &Status) -> Option<Status> {
    let message = status.message();
    let reason = match status.code() {
        Code::Internal if UNDECODABLE.iter().any(|m| message.starts_with(m)) => {
            Some((Code::InvalidArgument, "UNDECODABLE_REQUEST"))
        }
        Code::OutOfRange if message.starts_with(TOO_LARGE) => {
            Some((Code::ResourceExhausted, "MESSAGE_TOO_LARGE"))
        }
        _ => None,
    };
    if let Some((code, reason)) = reason {
        let what = if code == Code::InvalidArgument {
            "the request body does not decode as the method's request message"
        } else {
            "the request message is larger than the server accepts"
        };
        let detail = clip(message, MAX_MESSAGE / 2);
        return Some(Status::with_error_details(
            code,
            format!("{what}: {detail}"),
            ErrorDetails::with_error_info(
                reason,
                ERROR_DOMAIN,
                std::collections::HashMap::<String, String>::new(),
            ),
        ));
    }
    (message.len() + status.details().len() > MAX_ERROR_BYTES)
        .then(|| Status::new(status.code(), clip(message, MAX_MESSAGE)))
}

/// The layer, for `Server::builder().layer(..)`.
#[derive(Clone, Default)]
pub struct RefusalsLayer;

impl<S> tower::Layer<S> for RefusalsLayer {
    type Service = Refusals<S>;

    fn layer(&self, inner: S) -> Refusals<S> {
        Refusals { inner }
    }
}

#[derive(Clone)]
pub struct Refusals<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Refusals<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let Some(status) = Status::from_header_map(response.headers()) else {
                return Ok(response);
            };
            if status.code() == Code::Ok {
                return Ok(response);
            }
            Ok(match replacement(&status) {
                Some(better) => better.into_http(),
                None => response,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_refusals_of_a_body_become_the_callers_errors() {
        let undecodable =
            Status::internal("failed to decode Protobuf message: invalid wire type value: 7");
        let better = replacement(&undecodable).expect("replaced");
        assert_eq!(better.code(), Code::InvalidArgument);
        assert_eq!(
            better
                .get_error_details()
                .error_info()
                .map(|i| i.reason.clone()),
            Some("UNDECODABLE_REQUEST".into())
        );
        let too_large = Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        );
        assert_eq!(
            replacement(&too_large).map(|s| s.code()),
            Some(Code::ResourceExhausted)
        );
        // Our own errors pass as they are.
        assert!(replacement(&Status::internal("internal error (incident x)")).is_none());
        assert!(replacement(&Status::out_of_range("cursor expired")).is_none());
        let huge = Status::invalid_argument("x".repeat(10_000));
        let clipped = replacement(&huge).expect("clipped");
        assert!(clipped.message().len() <= MAX_MESSAGE + 4);
    }
}
