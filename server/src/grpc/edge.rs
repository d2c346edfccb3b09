//! The server's own rules on every call, around the services:
//! - a call that has not produced its reply within
//!   [`Limits::request_timeout`](super::Limits) is answered
//!   DEADLINE_EXCEEDED, and the connection goes on serving. (Work already
//!   handed to the store finishes on its own: a push cut off this way may
//!   still commit, and the tablet's retry then gets its stored results.)
//! - a request message over the size limit is answered RESOURCE_EXHAUSTED
//!   with what to do, as gRPC prescribes (tonic's decoder says OUT_OF_RANGE).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::Status;

/// Wraps a service so that each call ends within `limit` and oversized
/// requests are answered RESOURCE_EXHAUSTED.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    limit: Duration,
}

impl<S> Edge<S> {
    pub fn layer(limit: Duration) -> impl tower::Layer<S, Service = Edge<S>> + Clone {
        tower::layer::layer_fn(move |inner| Edge { inner, limit })
    }
}

impl<S, Req, Body> Service<http::Request<Req>> for Edge<S>
where
    S: Service<http::Request<Req>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Body: Default + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Req>) -> Self::Future {
        let limit = self.limit;
        let reply = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, reply).await {
                Ok(reply) => reply.map(oversized_is_resource_exhausted),
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the server gave up on this call after {} s; it may have been busy: try \
                     again (a retried push is never applied twice)",
                    limit.as_secs_f64()
                ))
                .into_http()),
            }
        })
    }
}

/// Rewrites tonic's OUT_OF_RANGE "decoded message length too large" (a
/// trailers-only reply: the status is in the headers) as RESOURCE_EXHAUSTED.
fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let oversized = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| m.contains("decoded%20message%20length%20too%20large"));
    if oversized {
        let message = format!(
            "the request is larger than the server's limit of {} MiB: send fewer or shorter \
             values per call",
            crate::MAX_MESSAGE_BYTES / (1024 * 1024)
        );
        let encoded = Status::resource_exhausted(message).into_http::<()>();
        for name in ["grpc-status", "grpc-message"] {
            if let Some(value) = encoded.headers().get(name) {
                headers.insert(name, value.clone());
            }
        }
    }
    response
}
