//! Writing a Connect reply: a unary JSON reply or a stream of envelopes
//! from the gRPC reply's frames, and errors with their HTTP status, Connect
//! code and metadata.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use tonic::{Code, Status};

use super::request::frame;
use super::{Method, END_STREAM, STREAM_JSON, UNARY_JSON};
use crate::config::MAX_REPLY_BYTES;

/// How a call is answered: a unary JSON reply, or a stream of envelopes.
#[derive(Clone, Copy)]
pub(super) enum Answer {
    Unary,
    Stream,
}

impl Answer {
    /// The Connect form of a refused call.
    pub(super) fn error(self, status: &Status, metadata: &HeaderMap) -> Response<Body> {
        match self {
            Answer::Unary => unary_error(status, metadata),
            Answer::Stream => {
                let end = end_of_stream(Some(status), metadata);
                let mut response = Response::new(Body::from(end));
                set_content_type(&mut response, STREAM_JSON);
                response
            }
        }
    }
}

fn set_content_type(response: &mut Response<Body>, content_type: &'static str) {
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
}

/// A unary Connect error: the JSON error with its HTTP status, the
/// status's metadata as headers.
fn unary_error(status: &Status, metadata: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(Body::from(error_json(status).to_string()));
    *response.status_mut() = http_status(status.code());
    set_content_type(&mut response, UNARY_JSON);
    copy_metadata(metadata, response.headers_mut(), "");
    copy_metadata(status.metadata().as_ref(), response.headers_mut(), "");
    response
}

/// A refusal of the request itself, before any service saw it.
pub(super) fn refusal(http: StatusCode, code: Code, message: &str) -> Response<Body> {
    let mut response = unary_error(&Status::new(code, message), &HeaderMap::new());
    *response.status_mut() = http;
    response
}

/// `{"code":"…","message":"…"}`.
fn error_json(status: &Status) -> serde_json::Value {
    let mut error = serde_json::json!({ "code": code_name(status.code()) });
    if !status.message().is_empty() {
        error["message"] = status.message().into();
    }
    error
}

/// The end-of-stream envelope: `{}` or the error, and the trailing metadata.
pub(super) fn end_of_stream(status: Option<&Status>, metadata: &HeaderMap) -> Bytes {
    let mut end = serde_json::json!({});
    if let Some(status) = status.filter(|s| s.code() != Code::Ok) {
        end["error"] = error_json(status);
    }
    let mut all = HeaderMap::new();
    copy_metadata(metadata, &mut all, "");
    if let Some(status) = status {
        copy_metadata(status.metadata().as_ref(), &mut all, "");
    }
    if !all.is_empty() {
        let mut map = serde_json::Map::new();
        for name in all.keys() {
            let values: Vec<serde_json::Value> = all
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.into())
                .collect();
            map.insert(name.as_str().to_owned(), values.into());
        }
        end["metadata"] = map.into();
    }
    Bytes::from(frame(END_STREAM, end.to_string().as_bytes()))
}

/// Whether a header is gRPC's or HTTP's own rather than the call's metadata.
fn protocol_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("grpc-")
        || matches!(
            name,
            "content-type"
                | "content-length"
                | "content-encoding"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "connection"
                | "date"
        )
}

/// Copies the call's metadata of `from` into `to`, each name prefixed.
fn copy_metadata(from: &HeaderMap, to: &mut HeaderMap, prefix: &str) {
    for (name, value) in from {
        if protocol_header(name) {
            continue;
        }
        let name = match prefix {
            "" => Some(name.clone()),
            prefix => HeaderName::try_from(format!("{prefix}{name}")).ok(),
        };
        if let Some(name) = name {
            to.append(name, value.clone());
        }
    }
}

/// The Connect name of a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status the Connect protocol gives a unary error of `code`.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of a gRPC reply whose status is in its head (a
/// trailers-only reply: tonic refuses calls that way).
fn head_status(reply: &Response<tonic::body::Body>) -> Option<Status> {
    Status::from_header_map(reply.headers())
}

/// A unary reply: its one message as JSON, or its status as a Connect
/// error; leading metadata as headers, trailing metadata as `trailer-`
/// headers.
pub(super) async fn unary_reply(
    method: Method,
    reply: Response<tonic::body::Body>,
) -> Response<Body> {
    if let Some(status) = head_status(&reply).filter(|s| s.code() != Code::Ok) {
        return unary_error(&status, &HeaderMap::new());
    }
    let (head, mut body) = reply.into_parts();
    let mut data = Vec::new();
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(bytes) => {
                    data.extend_from_slice(&bytes);
                    if data.len() > MAX_REPLY_BYTES + 5 {
                        let status = Status::internal("the service's reply is over its size limit");
                        return unary_error(&status, &head.headers);
                    }
                }
                Err(frame) => {
                    if let Ok(more) = frame.into_trailers() {
                        trailers.extend(more);
                    }
                }
            },
            Err(status) => return unary_error(&status, &head.headers),
        }
    }
    let status = Status::from_header_map(&trailers)
        .unwrap_or_else(|| Status::internal("the service ended its reply without a status"));
    if status.code() != Code::Ok {
        return unary_error(&status, &head.headers);
    }
    let message = match one_message(&data) {
        Ok(message) => message,
        Err(problem) => return unary_error(&problem, &head.headers),
    };
    let json = match (method.reply)(message) {
        Ok(json) => json,
        Err(problem) => return unary_error(&Status::internal(problem), &head.headers),
    };
    let mut response = Response::new(Body::from(json));
    set_content_type(&mut response, UNARY_JSON);
    copy_metadata(&head.headers, response.headers_mut(), "");
    copy_metadata(&trailers, response.headers_mut(), "trailer-");
    response
}

/// The one uncompressed message of a unary reply.
pub(super) fn one_message(data: &[u8]) -> Result<&[u8], Status> {
    match next_message(data)? {
        Some((message, [])) => Ok(message),
        _ => Err(Status::internal("the service's reply is not one whole message")),
    }
}

/// A message, and the bytes that follow it.
type Split<'a> = (&'a [u8], &'a [u8]);

/// The first whole message of gRPC-framed `data` and what follows it, or
/// `None` when `data` does not hold one whole message yet.
pub(super) fn next_message(data: &[u8]) -> Result<Option<Split<'_>>, Status> {
    let Some((head, rest)) = data.split_at_checked(5) else { return Ok(None) };
    if head[0] != 0 {
        return Err(Status::internal("the service sent a compressed reply"));
    }
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    Ok(rest.split_at_checked(length))
}

/// A streaming reply: an envelope per message as it arrives, then the end.
pub(super) fn stream_reply(method: Method, reply: Response<tonic::body::Body>) -> Response<Body> {
    let pages = match head_status(&reply).filter(|s| s.code() != Code::Ok) {
        Some(status) => Enveloped::ended(end_of_stream(Some(&status), &HeaderMap::new())),
        None => {
            let (head, body) = reply.into_parts();
            let mut response = Response::new(Body::new(Enveloped::new(body, method.reply)));
            set_content_type(&mut response, STREAM_JSON);
            copy_metadata(&head.headers, response.headers_mut(), "");
            return response;
        }
    };
    let mut response = Response::new(Body::new(pages));
    set_content_type(&mut response, STREAM_JSON);
    response
}

/// The body of a streaming reply: reads the gRPC frames of the service's
/// reply as they come and yields one Connect envelope of JSON per message,
/// then the end-of-stream envelope. Nothing is collected: a page leaves as
/// soon as it is whole, and a browser that goes away drops the call.
struct Enveloped {
    body: Option<tonic::body::Body>,
    buffer: Vec<u8>,
    reply: fn(&[u8]) -> Result<Vec<u8>, String>,
    end: Option<Bytes>,
}

impl Enveloped {
    fn new(body: tonic::body::Body, reply: fn(&[u8]) -> Result<Vec<u8>, String>) -> Enveloped {
        Enveloped { body: Some(body), buffer: Vec::new(), reply, end: None }
    }

    fn ended(end: Bytes) -> Enveloped {
        Enveloped { body: None, buffer: Vec::new(), reply: |_| Ok(Vec::new()), end: Some(end) }
    }

    /// Ends the stream with `status`: what is left of the reply is dropped.
    fn finish(&mut self, status: &Status, metadata: &HeaderMap) -> Bytes {
        self.body = None;
        self.buffer.clear();
        end_of_stream(Some(status), metadata)
    }

    /// The envelope of the next whole message in the buffer, if any.
    fn next_envelope(&mut self) -> Option<Result<Bytes, Status>> {
        let (length, json) = match next_message(&self.buffer) {
            Ok(None) => return None,
            Ok(Some((message, _))) => (message.len(), (self.reply)(message)),
            Err(status) => return Some(Err(status)),
        };
        self.buffer.drain(..length + 5);
        Some(json.map(|json| Bytes::from(frame(0, &json))).map_err(Status::internal))
    }
}

impl http_body::Body for Enveloped {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(end) = this.end.take() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(end))));
            }
            match this.next_envelope() {
                Some(Ok(envelope)) => {
                    return Poll::Ready(Some(Ok(http_body::Frame::data(envelope))))
                }
                Some(Err(status)) => {
                    this.end = Some(this.finish(&status, &HeaderMap::new()));
                    continue;
                }
                None => {}
            }
            let Some(body) = this.body.as_mut() else { return Poll::Ready(None) };
            let frame = match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.buffer.extend_from_slice(&data);
                        if this.buffer.len() > MAX_REPLY_BYTES + 5 {
                            let status = Status::internal("a page is over its size limit");
                            this.end = Some(this.finish(&status, &HeaderMap::new()));
                        }
                    }
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        let status = Status::from_header_map(&trailers).unwrap_or_else(|| {
                            Status::internal("the service ended its reply without a status")
                        });
                        this.end = Some(this.finish(&status, &trailers));
                    }
                },
                Some(Err(status)) => this.end = Some(this.finish(&status, &HeaderMap::new())),
                None => {
                    let status = Status::internal("the service ended its reply without a status");
                    this.end = Some(this.finish(&status, &HeaderMap::new()));
                }
            }
        }
    }
}
