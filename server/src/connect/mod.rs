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

mod reply;
mod request;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use fieldsync_proto::v1;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::codegen::Service;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};

use crate::config::MAX_MESSAGE_BYTES;
pub use reply::{code_name, http_status};
use reply::{refusal, stream_reply, unary_reply, Answer};
use request::{content_type, frame, near, protocol_problem, read_capped, timeout, unenvelope};
use request::{Mutations, Read};

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
        let method = match admit(&request) {
            Ok(method) => method,
            Err(refused) => return *refused,
        };
        let answer = if method.streaming { Answer::Stream } else { Answer::Unary };
        let (parts, body) = request.into_parts();
        let message = match self.message(method, answer, &parts.headers, body).await {
            Ok(message) => message,
            Err(refused) => return *refused,
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

    /// The request's message as protobuf, read from its JSON body (held to
    /// the message size, a push to `max_batch` mutations), or the answer
    /// refusing it.
    async fn message(
        &self,
        method: Method,
        answer: Answer,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Vec<u8>, Box<Response<Body>>> {
        let refuse = |problem: Status| Box::new(answer.error(&problem, &HeaderMap::new()));
        if let Some(problem) = protocol_problem(headers, method.streaming) {
            return Err(refuse(problem));
        }
        let limit = MAX_MESSAGE_BYTES + if method.streaming { 5 } else { 0 };
        let body = match read_capped(body, limit).await {
            Ok(body) => body,
            Err(Read::TooLarge) => {
                return Err(Box::new(refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::ResourceExhausted,
                    &format!(
                        "the request is larger than the server's limit of {} MiB: send fewer or \
                         shorter values per call",
                        MAX_MESSAGE_BYTES / (1024 * 1024)
                    ),
                )))
            }
            Err(Read::Failed(e)) => {
                let e = format!("the request body could not be read: {e}");
                return Err(refuse(Status::invalid_argument(e)));
            }
        };
        let json = match method.streaming {
            true => unenvelope(&body).map_err(refuse)?,
            false => &body[..],
        };
        // JSON is far smaller than the structs it decodes to (`{}` is a
        // whole mutation): a push's mutations are counted first, without
        // decoding them, and refused as `Batched` refuses them over gRPC.
        if method.path == "/fieldsync.v1.Sync/Push" {
            if let Ok(Mutations(count)) = serde_json::from_slice::<Mutations>(json) {
                if count > self.max_batch {
                    let n = count.to_string();
                    return Err(refuse(crate::grpc::too_many_mutations(&n, self.max_batch)));
                }
            }
        }
        (method.request)(json).map_err(|e| {
            refuse(Status::invalid_argument(format!(
                "the request is not a valid {} request in proto3 JSON: {e}{}",
                &method.path[1..],
                near(json, &e)
            )))
        })
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

/// The method a request calls, once its path, HTTP method and content type
/// are those of a Connect call the bridge answers; else the refusal.
fn admit(request: &Request<Body>) -> Result<Method, Box<Response<Body>>> {
    let path = request.uri().path();
    let Some(method) = method(path) else {
        return Err(Box::new(refusal(
            StatusCode::NOT_FOUND,
            Code::Unimplemented,
            &format!(
                "{path} is not a method of this server's app API (Sync/Bootstrap, Push, Pull, \
                 Status and Enroll/Redeem are)"
            ),
        )));
    };
    if request.method() != axum::http::Method::POST {
        let mut refused = refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            &format!("{path} is called with POST, not {}", request.method()),
        );
        refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(Box::new(refused));
    }
    let expected = if method.streaming { STREAM_JSON } else { UNARY_JSON };
    if content_type(request.headers()) != Some(expected) {
        let mut refused = refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Unimplemented,
            &format!("{path} takes `Content-Type: {expected}` (the Connect protocol's JSON form)"),
        );
        refused.headers_mut().insert("accept-post", HeaderValue::from_static(expected));
        return Err(Box::new(refused));
    }
    Ok(method)
}

#[cfg(test)]
mod tests {
    use super::reply::{end_of_stream, next_message, one_message};
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
