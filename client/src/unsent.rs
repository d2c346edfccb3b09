//! The unsent-edits file: what the surveyors' app writes with "Export
//! unsent edits" when a phone cannot reach the server, and what `fieldsync
//! push-file` sends for it, so that a phone that never comes back online
//! still loses nothing.
//!
//! The file is JSON: `{"format":"fieldsync-unsent-edits/1", "server",
//! "userId", "userName", "deviceId", "exportedAtMs", "mutations": [...]}`,
//! the mutations in the proto3 JSON of `fieldsync.v1.Mutation`, the
//! device's outbox in id order, exactly what the app would push. Pushing
//! them under the file's device id is safe to repeat: the server answers
//! ids it already has with their stored results.

use std::path::Path;

use fieldsync::sync::{Mutation, MutationResult, Outcome};
use fieldsync::DeviceId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::remote::Remote;
use crate::sync::{Attempts, Event, Retry, PUSH_BATCH, PUSH_BYTES};

/// The `format` of the files this build reads and writes.
pub const FORMAT: &str = "fieldsync-unsent-edits/1";

/// Largest file read: far above a phone's outbox, small enough to hold.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// An unsent-edits file as written by the app.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsentEdits {
    pub format: String,
    /// The app's origin, e.g. `https://fieldsync.ha-tinh.gov.vn:8080`.
    #[serde(default)]
    pub server: String,
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    pub device_id: String,
    #[serde(default)]
    pub exported_at_ms: serde_json::Value,
    pub mutations: Vec<fieldsync_proto::v1::Mutation>,
}

impl UnsentEdits {
    /// Reads and checks a file: its format, its device id, and every
    /// mutation's value; nothing is sent when anything is wrong.
    pub fn read(path: &Path) -> Result<(UnsentEdits, DeviceId, Vec<Mutation>)> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| Error::Invalid(format!("cannot read {shown}: {e}")))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(Error::Invalid(format!(
                "{shown} is {size} bytes: larger than any unsent-edits file ({MAX_FILE_BYTES} \
                 at most)"
            )));
        }
        let bytes =
            std::fs::read(path).map_err(|e| Error::Invalid(format!("cannot read {shown}: {e}")))?;
        UnsentEdits::parse(&bytes).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("{shown}: {m}")),
            e => e,
        })
    }

    /// [`UnsentEdits::read`] of the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<(UnsentEdits, DeviceId, Vec<Mutation>)> {
        let format = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(str::to_owned));
        match format.as_deref() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "this is a {other:?} file; this fieldsync reads {FORMAT:?} (a newer \
                     fieldsync may read it)"
                )))
            }
            None => {
                return Err(Error::Invalid(format!(
                    "not an unsent-edits file (JSON with \"format\": {FORMAT:?}, as the app's \
                     \"Export unsent edits\" writes)"
                )))
            }
        }
        let file: UnsentEdits = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("the file is damaged: {e}")))?;
        let device = fieldsync_proto::convert::device_from_wire(&file.device_id)
            .map_err(|e| Error::Invalid(format!("the file's deviceId: {e}")))?;
        let mutations = file
            .mutations
            .iter()
            .cloned()
            .map(fieldsync_proto::convert::mutation_from_wire)
            .collect::<fieldsync::Result<Vec<_>>>()
            .map_err(|e| Error::Invalid(format!("the file is damaged: {e}")))?;
        if let Some(w) = mutations.windows(2).find(|w| w[1].id <= w[0].id) {
            return Err(Error::Invalid(format!(
                "the file is damaged: mutation {} follows {} (they are in id order as exported)",
                w[1].id, w[0].id
            )));
        }
        Ok((file, device, mutations))
    }
}

/// What pushing a file did: each mutation's result, in id order.
#[derive(Clone, Debug, Default)]
pub struct Pushed {
    pub results: Vec<(Mutation, MutationResult)>,
}

impl Pushed {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|(_, r)| r.outcome == outcome).count()
    }
}

/// Pushes `mutations` under `device` in batches of at most [`PUSH_BATCH`]
/// (and about [`PUSH_BYTES`]), each retried as `fieldsync sync` retries.
/// Nothing is acknowledged: the server keeps every result, so the device
/// itself, should it come back, is answered the same.
pub async fn push<R: Remote>(
    remote: &mut R,
    device: DeviceId,
    mutations: &[Mutation],
    retry: &Retry,
    progress: &mut (dyn FnMut(Event) + Send),
) -> Result<Pushed> {
    let mut attempts = Attempts::new(retry);
    let mut pushed = Pushed::default();
    let mut rest = mutations;
    while !rest.is_empty() {
        let mut bytes = 0;
        let fits = rest
            .iter()
            .take(PUSH_BATCH)
            .position(|m| {
                bytes += crate::sync::wire_size(m);
                bytes > PUSH_BYTES
            })
            .unwrap_or(rest.len().min(PUSH_BATCH))
            .max(1);
        let (batch, after) = rest.split_at(fits);
        let reply = loop {
            match attempts.run(remote.push(device, batch.to_vec(), 0)).await {
                Ok(reply) => break reply,
                Err(Error::Reused { id, last, .. }) => {
                    return Err(Error::Refused(format!(
                        "the server holds other edits of this device under id {id} and after \
                         (up to {last}): this file is older than what the device has sent since; \
                         export a new one from the device. {} edit(s) of the file were pushed",
                        pushed.results.len()
                    )))
                }
                Err(e) => attempts.pause(e, progress).await?,
            }
        };
        attempts.reset();
        for result in reply.results {
            if let Some(m) = batch.iter().find(|m| m.id == result.id) {
                pushed.results.push((m.clone(), result));
            }
        }
        progress(Event::Pushed { done: mutations.len() - after.len(), total: mutations.len() });
        rest = after;
    }
    Ok(pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: &str, mutations: &str) -> Vec<u8> {
        format!(
            r#"{{"format":"{format}","server":"http://127.0.0.1:8080","userId":"an",
            "userName":"An","deviceId":"6f1c1a4e-3f2b-4d4e-9a51-2b7d1b0c9e11",
            "exportedAtMs":"1764633600000","mutations":[{mutations}]}}"#
        )
        .into_bytes()
    }

    const ONE: &str = r#"{"id":"1","villageId":"v","period":"2022","field":"road_km",
        "value":{"amount":"1,5"},"hlc":"65536","author":"An"}"#;
    const TWO: &str = r#"{"id":"2","villageId":"v","period":"2022","field":"note",
        "value":{"text":"đường"},"hlc":"65537","author":"An"}"#;

    #[test]
    fn reads_the_apps_file() {
        let (read, device, mutations) =
            UnsentEdits::parse(&file(FORMAT, &format!("{ONE},{TWO}"))).expect("a good file");
        assert_eq!(read.user_id, "an");
        assert_eq!(device.to_string(), "6f1c1a4e-3f2b-4d4e-9a51-2b7d1b0c9e11");
        assert_eq!(mutations.len(), 2);
        assert_eq!(mutations[0].hlc.0, 65536, "64-bit numbers as strings");
        assert_eq!(mutations[1].value, fieldsync::sync::RawValue::Text("đường".into()));
    }

    #[test]
    fn refuses_other_files_saying_what_they_are() {
        let refused = |bytes: &[u8]| match UnsentEdits::parse(bytes) {
            Err(Error::Invalid(m)) => m,
            other => panic!("not refused: {other:?}"),
        };
        assert!(refused(&file("fieldsync-unsent-edits/2", ONE)).contains("newer"));
        assert!(refused(b"{\"rows\":[]}").contains("not an unsent-edits file"));
        assert!(refused(b"\xff\xfe").contains("not an unsent-edits file"));
        assert!(refused(&file(FORMAT, &format!("{TWO},{ONE}"))).contains("id order"));
        let no_value = r#"{"id":"1","villageId":"v","period":"2022","field":"x","hlc":"1"}"#;
        assert!(refused(&file(FORMAT, no_value)).contains("mutation 1"));
    }
}
