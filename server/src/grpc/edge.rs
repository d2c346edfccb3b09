//! The server's own rules on every call, around the services:
//! - a call that has not produced its reply within
//!   [`Limits::request_timeout`](crate::config::Limits) is answered
//!   DEADLINE_EXCEEDED, and the connection goes on serving. (Work already
//!   handed to the store finishes on its own: a push cut off this way may
//!   still commit, and the tablet's retry then gets its stored results.)
//! - a request message over the size limit is answered RESOURCE_EXHAUSTED
//!   with what to do, as gRPC prescribes (tonic's decoder says OUT_OF_RANGE).
//! - a request that is not a valid protobuf message is answered
//!   INVALID_ARGUMENT (tonic's decoder says INTERNAL).
//! - the first call on a connection ends its handshake deadline
//!   ([`Connection`]), and its peer's address is where
//!   `tonic::Request::remote_addr` finds it.
//! - a push naming more mutations than a batch may hold is refused
//!   RESOURCE_EXHAUSTED from its raw bytes, counted as they arrive, before
//!   it is decoded ([`Batched`]): 4 MiB of empty mutations would otherwise
//!   become hundreds of MiB of decoded structs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

/// What tonic hands from a gRPC connection to each of its calls: the peer's
/// addresses, and whether a call has begun on it yet (until one has, the
/// connection is closed at its handshake deadline).
#[derive(Clone, Debug)]
pub struct Connection {
    pub tcp: TcpConnectInfo,
    began: Arc<AtomicBool>,
}

impl Connection {
    pub fn new(tcp: TcpConnectInfo) -> Connection {
        Connection { tcp, began: Arc::default() }
    }

    /// Whether a call has begun on this connection.
    pub fn began(&self) -> bool {
        self.began.load(Ordering::Relaxed)
    }

    fn begin(&self) {
        self.began.store(true, Ordering::Relaxed);
    }

    /// The connection a call came on (over TLS or not).
    fn of<B>(request: &http::Request<B>) -> Option<&Connection> {
        let extensions = request.extensions();
        extensions
            .get::<Connection>()
            .or_else(|| extensions.get::<TlsConnectInfo<Connection>>().map(|c| c.get_ref()))
    }
}

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

    fn call(&mut self, mut request: http::Request<Req>) -> Self::Future {
        if let Some(connection) = Connection::of(&request).cloned() {
            connection.begin();
            // Where `tonic::Request::remote_addr` looks for the peer.
            if request.extensions().get::<TcpConnectInfo>().is_none() {
                request.extensions_mut().insert(connection.tcp);
            }
        }
        let limit = self.limit;
        let reply = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, reply).await {
                Ok(reply) => reply.map(decoder_refusals_rewritten),
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

/// Rewrites the refusals of tonic's decoder (a trailers-only reply: the
/// status is in the headers) with the codes gRPC prescribes and words that
/// say what to do: OUT_OF_RANGE "decoded message length too large" as
/// RESOURCE_EXHAUSTED, INTERNAL "failed to decode Protobuf message" as
/// INVALID_ARGUMENT.
fn decoder_refusals_rewritten<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let Some(status) = Status::from_header_map(headers) else { return response };
    let rewritten = match status.code() {
        tonic::Code::OutOfRange
            if status.message().contains("decoded message length too large") =>
        {
            Status::resource_exhausted(format!(
                "the request is larger than the server's limit of {} MiB: send fewer or shorter \
                 values per call",
                crate::config::MAX_MESSAGE_BYTES / (1024 * 1024)
            ))
        }
        tonic::Code::Internal
            if status.message().starts_with("failed to decode Protobuf message") =>
        {
            super::clipped(Status::invalid_argument(format!(
                "the request is not a well-formed fieldsync.v1 message ({}): the client may speak \
                 another version of the protocol; update it, or report the bug",
                status.message()
            )))
        }
        _ => return response,
    };
    let encoded = rewritten.into_http::<()>();
    for name in ["grpc-status", "grpc-message"] {
        if let Some(value) = encoded.headers().get(name) {
            headers.insert(name, value.clone());
        }
    }
    response
}

/// The full name of the push method, as its requests' paths end.
const PUSH_PATH: &str = "/fieldsync.v1.Sync/Push";
/// The field number of `PushRequest.mutations`.
const MUTATIONS_FIELD: u32 = 3;

/// The sync service, with each push's body counted as it arrives: a push
/// naming more than `max_batch` mutations is refused RESOURCE_EXHAUSTED
/// before its message is decoded.
#[derive(Clone)]
pub struct Batched<S> {
    inner: S,
    max_batch: usize,
}

impl<S> Batched<S> {
    pub fn new(inner: S, max_batch: usize) -> Batched<S> {
        Batched { inner, max_batch }
    }
}

impl<S: NamedService> NamedService for Batched<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<tonic::body::Body>> for Batched<S>
where
    S: Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != PUSH_PATH {
            return self.inner.call(request);
        }
        let max = self.max_batch;
        self.inner.call(request.map(|body| {
            tonic::body::Body::new(Counted { body, tally: Tally::new(MUTATIONS_FIELD, max) })
        }))
    }
}

/// The refusal of a push of `count` mutations, more than `max`.
pub fn too_many_mutations(count: &str, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "{count} mutations in one push; at most {max} are accepted: split the batch"
    ))
}

/// A request body whose gRPC messages are scanned for one repeated field as
/// they pass; it fails with RESOURCE_EXHAUSTED once that field occurs more
/// often than allowed.
struct Counted {
    body: tonic::body::Body,
    tally: Tally,
}

impl http_body::Body for Counted {
    type Data = tonic::codegen::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            if this.tally.feed(data) {
                let (max, seen) = (this.tally.max, this.tally.seen);
                let count = match this.tally.scan {
                    Scan::Prefix(0) => seen.to_string(),
                    _ => format!("more than {max}"),
                };
                return Poll::Ready(Some(Err(too_many_mutations(&count, max))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Where a [`Tally`] is in the bytes of a gRPC body.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scan {
    /// Byte `n` of a message's 5-byte prefix (compressed flag, length).
    Prefix(usize),
    /// A field's key, a varint: the value so far and its shift.
    Key(u64, u32),
    /// The rest of a varint value.
    Varint,
    /// The length of a length-delimited value, a varint.
    Length(u64, u32),
    /// This many bytes of a value to skip.
    Skip(usize),
    /// Not a message this scan can read (compressed, or malformed): the
    /// decoder refuses or reads it.
    Off,
}

/// Counts the top-level occurrences of one length-delimited field in the
/// protobuf messages of a gRPC body, byte by byte as the body arrives,
/// without decoding them.
#[derive(Debug)]
struct Tally {
    field: u32,
    max: usize,
    seen: usize,
    prefix: [u8; 5],
    /// Bytes of the current message not yet scanned.
    left: usize,
    scan: Scan,
}

impl Tally {
    fn new(field: u32, max: usize) -> Tally {
        Tally { field, max, seen: 0, prefix: [0; 5], left: 0, scan: Scan::Prefix(0) }
    }

    /// Scans `data`; true once a message has been seen whole with the field
    /// more than `max` times (its last bytes, in `data`, are then not to be
    /// passed on to the decoder), or once the scan stops with more than
    /// `max` seen.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        while let Some((&b, rest)) = data.split_first() {
            match self.scan {
                Scan::Off => return self.seen > self.max,
                Scan::Prefix(n) => {
                    self.prefix[n] = b;
                    data = rest;
                    self.scan = match n {
                        0..=3 => Scan::Prefix(n + 1),
                        _ => {
                            let [flag, a, b, c, d] = self.prefix;
                            self.left = u32::from_be_bytes([a, b, c, d]) as usize;
                            self.seen = 0;
                            match flag {
                                0 => self.boundary(),
                                _ => Scan::Off,
                            }
                        }
                    };
                    continue;
                }
                Scan::Skip(n) => {
                    let take = n.min(data.len());
                    data = &data[take..];
                    self.left -= take;
                    self.scan = match n - take {
                        0 => self.boundary(),
                        more => Scan::Skip(more),
                    };
                    if self.scan == Scan::Prefix(0) && self.seen > self.max {
                        return true;
                    }
                    continue;
                }
                _ => {}
            }
            data = rest;
            self.left -= 1;
            self.scan = match self.scan {
                Scan::Key(value, shift) => match varint(value, shift, b) {
                    Some(Ok(key)) => {
                        let (field, wire) = (key >> 3, key & 7);
                        if field == u64::from(self.field) && wire == 2 {
                            self.seen += 1;
                        }
                        match wire {
                            0 => Scan::Varint,
                            1 => self.skip(8),
                            2 => Scan::Length(0, 0),
                            5 => self.skip(4),
                            _ => Scan::Off,
                        }
                    }
                    Some(Err((value, shift))) => Scan::Key(value, shift),
                    None => Scan::Off,
                },
                Scan::Varint if b & 0x80 == 0 => self.boundary(),
                Scan::Varint => Scan::Varint,
                Scan::Length(value, shift) => match varint(value, shift, b) {
                    Some(Ok(len)) => usize::try_from(len).map_or(Scan::Off, |len| self.skip(len)),
                    Some(Err((value, shift))) => Scan::Length(value, shift),
                    None => Scan::Off,
                },
                other => other,
            };
            // A message cannot end inside a field.
            if self.left == 0 && !matches!(self.scan, Scan::Prefix(_) | Scan::Off) {
                self.scan = Scan::Off;
            }
            if matches!(self.scan, Scan::Prefix(0) | Scan::Off) && self.seen > self.max {
                return true;
            }
        }
        false
    }

    /// Between two fields: the next key, or the next message's prefix.
    fn boundary(&self) -> Scan {
        match self.left {
            0 => Scan::Prefix(0),
            _ => Scan::Key(0, 0),
        }
    }

    fn skip(&self, n: usize) -> Scan {
        match n {
            0 => self.boundary(),
            n if n > self.left => Scan::Off,
            n => Scan::Skip(n),
        }
    }
}

/// One byte of a varint: `Ok(value)` when it ends, `Err` with the value and
/// shift so far when more follow, `None` when it is too long.
fn varint(value: u64, shift: u32, byte: u8) -> Option<Result<u64, (u64, u32)>> {
    if shift >= 64 {
        return None;
    }
    let value = value | (u64::from(byte & 0x7f) << shift);
    Some(match byte & 0x80 {
        0 => Ok(value),
        _ => Err((value, shift + 7)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn framed(message: &impl Message) -> Vec<u8> {
        let body = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn push(n: usize) -> fieldsync_proto::v1::PushRequest {
        let mutation = fieldsync_proto::v1::Mutation {
            id: 300,
            village_id: "ha-tinh.huong-khe.phuc-dong.thon-1".into(),
            field: "road_km".into(),
            hlc: u64::MAX,
            ..Default::default()
        };
        fieldsync_proto::v1::PushRequest {
            schema_version: 1,
            device_id: "d".repeat(200),
            mutations: vec![mutation; n],
            acknowledged_through: 1 << 40,
        }
    }

    #[test]
    fn counts_mutations_in_any_chunking() {
        for (n, max, over) in [(3, 3, false), (4, 3, true), (0, 0, false), (1, 0, true)] {
            let bytes = framed(&push(n));
            for chunk in [1, 2, 7, bytes.len().max(1)] {
                let mut tally = Tally::new(MUTATIONS_FIELD, max);
                let mut chunks = bytes.chunks(chunk);
                let refused = chunks.any(|c| tally.feed(c));
                assert_eq!(refused, over, "{n} mutations, at most {max}, chunks of {chunk}");
                assert_eq!(chunks.next(), None, "refused at the message's last byte, not before");
                assert_eq!(tally.seen, n, "counted whole");
                assert_eq!(tally.scan, Scan::Prefix(0), "ready for the next message");
            }
        }
    }

    #[test]
    fn stops_scanning_what_it_cannot_read() {
        let mut compressed = framed(&push(5));
        compressed[0] = 1;
        let mut tally = Tally::new(MUTATIONS_FIELD, 1);
        assert!(!tally.feed(&compressed), "a compressed message is left to the decoder");
        let mut tally = Tally::new(MUTATIONS_FIELD, 1);
        assert!(!tally.feed(&[0, 0, 0, 0, 3, 0x1a, 0x7f, 0]), "a value longer than its message");
        assert_eq!(tally.scan, Scan::Off);
    }
}
