//! The Connect protocol's JSON form of `fieldsync.v1`, for the surveyors'
//! app in the browser: `POST /fieldsync.v1.Sync/Push` with a proto3-JSON
//! body, on the web listener, same origin as the app.
//!
//! The bridge holds no rules of its own. It turns a Connect request into a
//! gRPC request (JSON → the prost message → a length-prefixed frame) and
//! calls the very tonic routes the gRPC listener serves, behind the same
//! [`Edge`](crate::grpc::Edge) layer: the same interceptor (token, disabled
//! users, rate limit), the same `Batched` push limit, deadlines, size caps
//! and status codes. The reply goes back the other way: frames → messages →
//! JSON, and `grpc-status`/`grpc-message` with the rest of the metadata →
//! a Connect error (`{"code":"unauthenticated","message":"…"}`) with its
//! HTTP status and the metadata as headers.
//!
//! Unary methods take `Content-Type: application/json`; the server stream
//! (`Pull`) takes `application/connect+json`, one envelope in (a flag byte,
//! a 4-byte big-endian length, the JSON) and one envelope out per page as
//! it arrives, then an end-of-stream envelope (flag `0x02`) holding `{}` or
//! the error and trailing metadata. Only the methods of [`method`] are
//! exposed: Sync's four and `Enroll/Redeem`, not Admin, Review or Report.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use fieldsync_proto::v1;
use http_body_util::BodyExt;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::codegen::Service;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};

use crate::config::MAX_MESSAGE_BYTES;

/// The gRPC services behind the bridge: the tonic routes of the gRPC
/// listener, behind the same edge layer.
pub type Routes = crate::grpc::Edge<tonic::service::Routes>;

/// Content type of a unary Connect call and its reply.
const UNARY_JSON: &str = "application/json";
/// Content type of a streaming Connect call and its reply.
const STREAM_JSON: &str = "application/connect+json";
/// Envelope flag of the end-of-stream message.
const END_STREAM: u8 = 0x02;
/// Envelope flag of a compressed message.
const COMPRESSED: u8 = 0x01;
/// Largest reply message read from the services (their encoder's own cap).
use crate::config::MAX_REPLY_BYTES;

/// One method the browser may call.
#[derive(Clone, Copy)]
pub struct Method {
    /// `/fieldsync.v1.Sync/Push`: the path of the Connect call and of the
    /// gRPC call alike.
    pub path: &'static str,
    /// A server stream (Connect envelopes) rather than a unary call.
    pub streaming: bool,
    /// The request's JSON, read as its message and encoded as protobuf.
    request: fn(&[u8]) -> Result<Vec<u8>, serde_json::Error>,
    /// A reply message's protobuf bytes, decoded and written as JSON.
    reply: fn(&[u8]) -> Result<Vec<u8>, String>,
}

impl Method {
    fn of<Q, R>(path: &'static str, streaming: bool) -> Method
    where
        Q: Message + DeserializeOwned,
        R: Message + Default + Serialize,
    {
        Method { path, streaming, request: json_to_proto::<Q>, reply: proto_to_json::<R> }
    }
}

/// The paths of the methods the bridge exposes.
pub const PATHS: [&str; 5] = [
    "/fieldsync.v1.Sync/Bootstrap",
    "/fieldsync.v1.Sync/Push",
    "/fieldsync.v1.Sync/Pull",
    "/fieldsync.v1.Sync/Status",
    "/fieldsync.v1.Enroll/Redeem",
];

/// The method the bridge exposes at `path`, with its message types.
pub fn method(path: &str) -> Option<Method> {
    let path: &'static str = PATHS.into_iter().find(|p| *p == path)?;
    Some(match path {
        "/fieldsync.v1.Sync/Bootstrap" => {
            Method::of::<v1::BootstrapRequest, v1::BootstrapReply>(path, false)
        }
        "/fieldsync.v1.Sync/Push" => Method::of::<v1::PushRequest, v1::PushReply>(path, false),
        "/fieldsync.v1.Sync/Pull" => Method::of::<v1::PullRequest, v1::PullPage>(path, true),
        "/fieldsync.v1.Sync/Status" => {
            Method::of::<v1::StatusRequest, v1::StatusReply>(path, false)
        }
        "/fieldsync.v1.Enroll/Redeem" => {
            Method::of::<v1::RedeemRequest, v1::RedeemReply>(path, false)
        }
        _ => return None,
    })
}

fn json_to_proto<M: Message + DeserializeOwned>(json: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    Ok(serde_json::from_slice::<M>(json)?.encode_to_vec())
}

fn proto_to_json<M: Message + Default + Serialize>(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let message =
        M::decode(bytes).map_err(|e| format!("the service's reply is unreadable: {e}"))?;
    serde_json::to_vec(&message).map_err(|e| format!("the service's reply has no JSON form: {e}"))
}

/// The Connect bridge over the gRPC routes.
#[derive(Clone)]
pub struct Bridge {
    routes: Routes,
    /// Mutations one push may hold ([`Limits::max_batch`](crate::Limits)).
    max_batch: usize,
}

impl Bridge {
    /// The bridge to `routes`, whose pushes hold at most `max_batch`
    /// mutations.
    pub fn new(routes: Routes, max_batch: usize) -> Bridge {
        Bridge { routes, max_batch }
    }

    /// Answers one Connect call (any path under `/fieldsync.`).
    pub async fn call(&self, request: Request<Body>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let Some(method) = method(&path) else {
            return refusal(
                StatusCode::NOT_FOUND,
                Code::Unimplemented,
                &format!(
                    "{path} is not a method of this server's app API (Sync/Bootstrap, Push, Pull, \
                     Status and Enroll/Redeem are)"
                ),
            );
        };
        if request.method() != axum::http::Method::POST {
            let mut refused = refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                &format!("{path} is called with POST, not {}", request.method()),
            );
            refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return refused;
        }
        let expected = if method.streaming { STREAM_JSON } else { UNARY_JSON };
        if content_type(request.headers()) != Some(expected) {
            let mut refused = refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::Unimplemented,
                &format!(
                    "{path} takes `Content-Type: {expected}` (the Connect protocol's JSON form)"
                ),
            );
            refused.headers_mut().insert("accept-post", HeaderValue::from_static(expected));
            return refused;
        }
        let answer = if method.streaming { Answer::Stream } else { Answer::Unary };
        let (parts, body) = request.into_parts();
        if let Some(problem) = protocol_problem(&parts.headers, method.streaming) {
            return answer.error(&problem, &HeaderMap::new());
        }
        let limit = MAX_MESSAGE_BYTES + if method.streaming { 5 } else { 0 };
        let body = match read_capped(body, limit).await {
            Ok(body) => body,
            Err(Read::TooLarge) => {
                return refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::ResourceExhausted,
                    &format!(
                        "the request is larger than the server's limit of {} MiB: send fewer or \
                         shorter values per call",
                        MAX_MESSAGE_BYTES / (1024 * 1024)
                    ),
                )
            }
            Err(Read::Failed(e)) => {
                return answer.error(
                    &Status::invalid_argument(format!("the request body could not be read: {e}")),
                    &HeaderMap::new(),
                )
            }
        };
        let json = match method.streaming {
            true => match unenvelope(&body) {
                Ok(json) => json,
                Err(problem) => return answer.error(&problem, &HeaderMap::new()),
            },
            false => &body[..],
        };
        // JSON is far smaller than the structs it decodes to (`{}` is a
        // whole mutation): a push's mutations are counted first, without
        // decoding them, and refused as `Batched` refuses them over gRPC.
        if method.path == "/fieldsync.v1.Sync/Push" {
            if let Ok(Mutations(count)) = serde_json::from_slice::<Mutations>(json) {
                if count > self.max_batch {
                    let refused =
                        crate::grpc::too_many_mutations(&count.to_string(), self.max_batch);
                    return answer.error(&refused, &HeaderMap::new());
                }
            }
        }
        let message = match (method.request)(json) {
            Ok(message) => message,
            Err(e) => {
                let problem = Status::invalid_argument(format!(
                    "the request is not a valid {} request in proto3 JSON: {e}{}",
                    &method.path[1..],
                    near(json, &e)
                ));
                return answer.error(&problem, &HeaderMap::new());
            }
        };
        let answered = async {
            match self.grpc(method, &parts, message).await {
                Err(problem) => answer.error(&problem, &HeaderMap::new()),
                Ok(reply) => match answer {
                    Answer::Unary => unary_reply(method, reply).await,
                    Answer::Stream => stream_reply(method, reply),
                },
            }
        };
        // The caller's own deadline, if it gave one (the server's is the
        // edge layer's); a stream's covers its first page.
        let expired = |limit: std::time::Duration| {
            answer.error(
                &Status::deadline_exceeded(format!(
                    "no answer within the {} ms the call allowed (Connect-Timeout-Ms); a \
                     retried push is never applied twice",
                    limit.as_millis()
                )),
                &HeaderMap::new(),
            )
        };
        match timeout(&parts.headers) {
            Ok(None) => answered.await,
            // A deadline of 0 ms has passed before the call begins: it is not made.
            Ok(Some(limit)) if limit.is_zero() => expired(limit),
            Ok(Some(limit)) => match tokio::time::timeout(limit, answered).await {
                Ok(answer) => answer,
                Err(_) => expired(limit),
            },
            Err(problem) => answer.error(&problem, &HeaderMap::new()),
        }
    }

    /// Calls the gRPC routes with `message`, as a gRPC client would, with
    /// the caller's token and the peer's address.
    async fn grpc(
        &self,
        method: Method,
        parts: &axum::http::request::Parts,
        message: Vec<u8>,
    ) -> Result<Response<tonic::body::Body>, Status> {
        let mut request = Request::builder()
            .method(axum::http::Method::POST)
            .uri(method.path)
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .body(Body::from(frame(0, &message)))
            .map_err(|e| Status::internal(format!("cannot build the gRPC request: {e}")))?;
        if let Some(token) = parts.headers.get(header::AUTHORIZATION) {
            request.headers_mut().insert(header::AUTHORIZATION, token.clone());
        }
        if let Some(peer) = parts.extensions.get::<TcpConnectInfo>() {
            request.extensions_mut().insert(peer.clone());
        }
        let mut routes = self.routes.clone();
        let ready =
            std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut routes, cx));
        match ready.await {
            Ok(()) => {}
            Err(never) => match never {},
        }
        match routes.call(request).await {
            Ok(reply) => Ok(reply),
            Err(never) => match never {},
        }
    }
}

/// How many elements a push's JSON has in `mutations`, read without
/// keeping any of them.
struct Mutations(usize);

/// How many elements a JSON array has.
struct Count(usize);

impl<'de> serde::Deserialize<'de> for Mutations {
    fn deserialize<D: serde::Deserializer<'de>>(json: D) -> Result<Mutations, D::Error> {
        json.deserialize_map(Mutations(0))
    }
}

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(json: D) -> Result<Count, D::Error> {
        json.deserialize_seq(Count(0))
    }
}

impl<'de> serde::de::Visitor<'de> for Mutations {
    type Value = Mutations;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a push request")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Mutations, A::Error> {
        let mut count = 0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "mutations" => count = map.next_value::<Option<Count>>()?.map_or(0, |c| c.0),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Mutations(count))
    }
}

impl<'de> serde::de::Visitor<'de> for Count {
    type Value = Count;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        let mut count = 0;
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(Count(count))
    }
}

/// What the JSON says just before where `e` was found, so that the
/// message names the field: ` (after: {"schemaVersion":"one")`.
fn near(json: &[u8], e: &serde_json::Error) -> String {
    let text = String::from_utf8_lossy(json);
    let Some(line) = text.lines().nth(e.line().saturating_sub(1)) else { return String::new() };
    let mut end = e.column().min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let before: Vec<char> = line[..end].chars().collect();
    let shown: String = before[before.len().saturating_sub(48)..].iter().collect();
    match shown.trim() {
        "" => String::new(),
        shown => format!(" (after: {shown})"),
    }
}

/// The content type of a request, without parameters, in lower case.
fn content_type(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let bare = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    [UNARY_JSON, STREAM_JSON].into_iter().find(|known| *known == bare)
}

/// What a request's headers get wrong about the protocol: its version, or
/// a compression the bridge does not read.
fn protocol_problem(headers: &HeaderMap, streaming: bool) -> Option<Status> {
    let version = headers.get("connect-protocol-version").and_then(|v| v.to_str().ok());
    if version.map(str::trim) != Some("1") {
        return Some(Status::invalid_argument(
            "send the header `Connect-Protocol-Version: 1`: this server speaks version 1 of the \
             Connect protocol",
        ));
    }
    let encoding = if streaming { "connect-content-encoding" } else { "content-encoding" };
    match headers.get(encoding).map(|v| v.to_str().unwrap_or("?").trim()) {
        None | Some("" | "identity") => None,
        Some(other) => Some(Status::unimplemented(format!(
            "compressed requests ({encoding}: {other}) are not read here: send them uncompressed"
        ))),
    }
}

/// The deadline a caller gives in `Connect-Timeout-Ms` (at most 10 digits).
fn timeout(headers: &HeaderMap) -> Result<Option<std::time::Duration>, Status> {
    let Some(value) = headers.get("connect-timeout-ms") else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    match text.len() <= 10 && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(text.parse().ok().map(std::time::Duration::from_millis)),
        false => Err(Status::invalid_argument(format!(
            "Connect-Timeout-Ms is a number of milliseconds (at most 10 digits), not {text:?}"
        ))),
    }
}

/// Why a request body could not be had.
enum Read {
    TooLarge,
    Failed(String),
}

/// The whole body, refused as soon as it grows beyond `limit` bytes.
async fn read_capped(body: Body, limit: usize) -> Result<Bytes, Read> {
    let mut body = http_body_util::Limited::new(body, limit);
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                Some(_) => Read::TooLarge,
                None => Read::Failed(e.to_string()),
            })?;
        if let Some(data) = frame.data_ref() {
            out.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(out))
}

/// A message in gRPC's (and Connect's) framing: a flag byte, a 4-byte
/// big-endian length, the message.
fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(flag);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The JSON of a streaming call's one request envelope.
fn unenvelope(body: &[u8]) -> Result<&[u8], Status> {
    let (head, message) =
        match body.split_at_checked(5) {
            Some(split) => split,
            None => return Err(Status::invalid_argument(
                "a streaming request holds one envelope: a flag byte, a 4-byte big-endian length, \
                 then the JSON message",
            )),
        };
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if head[0] & COMPRESSED != 0 {
        return Err(Status::unimplemented(
            "compressed envelopes are not read here: send the request uncompressed",
        ));
    }
    if head[0] != 0 || length != message.len() {
        return Err(Status::invalid_argument(format!(
            "a streaming request holds exactly one message envelope (flag 0); this one has flag \
             {} and says {length} bytes where {} follow",
            head[0],
            message.len()
        )));
    }
    Ok(message)
}

/// How a call is answered: a unary JSON reply, or a stream of envelopes.
#[derive(Clone, Copy)]
enum Answer {
    Unary,
    Stream,
}

impl Answer {
    /// The Connect form of a refused call.
    fn error(self, status: &Status, metadata: &HeaderMap) -> Response<Body> {
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
fn refusal(http: StatusCode, code: Code, message: &str) -> Response<Body> {
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
fn end_of_stream(status: Option<&Status>, metadata: &HeaderMap) -> Bytes {
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
async fn unary_reply(method: Method, reply: Response<tonic::body::Body>) -> Response<Body> {
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
fn one_message(data: &[u8]) -> Result<&[u8], Status> {
    match next_message(data)? {
        Some((message, [])) => Ok(message),
        _ => Err(Status::internal("the service's reply is not one whole message")),
    }
}

/// A message, and the bytes that follow it.
type Split<'a> = (&'a [u8], &'a [u8]);

/// The first whole message of gRPC-framed `data` and what follows it, or
/// `None` when `data` does not hold one whole message yet.
fn next_message(data: &[u8]) -> Result<Option<Split<'_>>, Status> {
    let Some((head, rest)) = data.split_at_checked(5) else { return Ok(None) };
    if head[0] != 0 {
        return Err(Status::internal("the service sent a compressed reply"));
    }
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    Ok(rest.split_at_checked(length))
}

/// A streaming reply: an envelope per message as it arrives, then the end.
fn stream_reply(method: Method, reply: Response<tonic::body::Body>) -> Response<Body> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_apps_methods_are_exposed() {
        for path in [
            "/fieldsync.v1.Sync/Bootstrap",
            "/fieldsync.v1.Sync/Push",
            "/fieldsync.v1.Sync/Pull",
            "/fieldsync.v1.Sync/Status",
            "/fieldsync.v1.Enroll/Redeem",
        ] {
            let found = method(path).map(|m| (m.path, m.streaming));
            assert_eq!(found, Some((path, path.ends_with("Pull"))), "{path}");
        }
        for path in ["/fieldsync.v1.Admin/IssueToken", "/fieldsync.v1.Review/Decide", "/x"] {
            assert!(method(path).is_none(), "{path}");
        }
    }

    #[test]
    fn the_end_of_a_stream_carries_the_error_and_its_metadata() {
        let mut status = Status::failed_precondition("ids reused");
        status.metadata_mut().insert("fieldsync-reused-id", "7".parse().unwrap());
        let end = end_of_stream(Some(&status), &HeaderMap::new());
        assert_eq!(end[0], END_STREAM);
        let json: serde_json::Value = serde_json::from_slice(&end[5..]).unwrap();
        assert_eq!(json["error"]["code"], "failed_precondition");
        assert_eq!(json["error"]["message"], "ids reused");
        assert_eq!(json["metadata"]["fieldsync-reused-id"][0], "7");
        let ok = end_of_stream(Some(&Status::ok("")), &HeaderMap::new());
        assert_eq!(&ok[5..], b"{}");
    }

    #[test]
    fn a_pushs_mutations_are_counted_without_decoding_them() {
        let count = |json: &str| serde_json::from_slice::<Mutations>(json.as_bytes()).map(|m| m.0);
        assert_eq!(count(r#"{"deviceId":"d","mutations":[{},{"id":"2"},{}]}"#).unwrap(), 3);
        assert_eq!(count(r#"{"mutations":null}"#).unwrap(), 0);
        assert_eq!(count(r#"{"schemaVersion":1,"x":{"mutations":[1,2]}}"#).unwrap(), 0);
        assert!(count("[1]").is_err() && count(r#"{"mutations":3}"#).is_err());
    }

    #[test]
    fn messages_are_read_whole_across_frames() {
        let data = [frame(0, b"abc"), frame(0, b"")].concat();
        assert_eq!(next_message(&data[..4]).unwrap(), None);
        assert_eq!(next_message(&data[..7]).unwrap(), None);
        let (first, rest) = next_message(&data).unwrap().unwrap();
        assert_eq!(first, b"abc");
        assert_eq!(next_message(rest).unwrap(), Some((&b""[..], &b""[..])));
        assert!(next_message(&frame(1, b"x")).is_err(), "compressed");
        assert!(one_message(&data).is_err(), "two messages in a unary reply");
    }
}
