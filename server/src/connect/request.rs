//! Reading a Connect request: its headers (content type, protocol
//! version, deadline), its body within a size cap, its envelope, and a
//! push's mutations counted without decoding them.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use tonic::Status;

use super::{COMPRESSED, STREAM_JSON, UNARY_JSON};

/// How many elements a push's JSON has in `mutations`, read without
/// keeping any of them.
pub(super) struct Mutations(pub(super) usize);

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
pub(super) fn near(json: &[u8], e: &serde_json::Error) -> String {
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
pub(super) fn content_type(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let bare = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    [UNARY_JSON, STREAM_JSON].into_iter().find(|known| *known == bare)
}

/// What a request's headers get wrong about the protocol: its version, or
/// a compression the bridge does not read.
pub(super) fn protocol_problem(headers: &HeaderMap, streaming: bool) -> Option<Status> {
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
pub(super) fn timeout(headers: &HeaderMap) -> Result<Option<std::time::Duration>, Status> {
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
pub(super) enum Read {
    TooLarge,
    Failed(String),
}

/// The whole body, refused as soon as it grows beyond `limit` bytes.
pub(super) async fn read_capped(body: Body, limit: usize) -> Result<Bytes, Read> {
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
pub(super) fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(flag);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The JSON of a streaming call's one request envelope.
pub(super) fn unenvelope(body: &[u8]) -> Result<&[u8], Status> {
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
