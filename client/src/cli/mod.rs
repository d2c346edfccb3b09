//! The online half of the `fieldsync` command: `review` (supervisors, the
//! province office), `export` and `plan` (totals against plan, see
//! [`report`]) and `admin` (admins) talk to the server directly. This
//! module holds what they share with the tablet commands: opening the
//! tablet, finding the server and token, and printing places, values, times
//! and tables.

pub mod admin;
pub mod args;
pub mod report;
pub mod review;
pub mod status;
pub mod sync;
pub mod table;
pub mod tablet;
pub mod unsent;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use fieldsync::sync::SubmissionReview;
use fieldsync::{Catalogue, FieldKey, Level, Value};
use fieldsync_client::local::Tablet;
use fieldsync_client::{Api, Error, Grpc, Remote};
use fieldsync_store::Sled;
use serde::Serialize;

/// The default server address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

pub fn open_engine(home: &Path) -> anyhow::Result<Arc<Sled>> {
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    let engine = Sled::open(&home.join("store"))
        .with_context(|| format!("cannot open the tablet store in {}", home.display()))?;
    Ok(Arc::new(engine))
}

/// Whether `home` holds a tablet store (without creating anything).
pub fn has_tablet(home: &Path) -> bool {
    home.join("store").exists()
}

/// Opens the tablet in `home`, or says to run `init`.
pub fn open(home: &Path) -> anyhow::Result<Tablet> {
    if !has_tablet(home) {
        return Err(Error::NotInitialised)
            .with_context(|| format!("no tablet in {}", home.display()));
    }
    Ok(Tablet::open(open_engine(home)?)?)
}

/// Where the online commands connect, and how they print.
#[derive(Args, Clone, Debug)]
pub struct Online {
    /// Server address [default: the tablet's at --home, else http://127.0.0.1:50051].
    #[arg(long, global = true, env = "FIELDSYNC_SERVER")]
    pub server: Option<String>,
    /// Your token [default: the tablet's at --home].
    #[arg(long, global = true, env = "FIELDSYNC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON (stable field names) instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A connection to the server, signed in, with the catalogue the caller sees.
pub struct Session {
    pub api: Api,
    pub server: String,
    pub catalogue: Catalogue,
    pub json: bool,
}

impl Online {
    /// Connects with `--server`/`--token` (or their environment variables),
    /// falling back to the tablet in `home` if it is set up.
    pub async fn connect(&self, home: &Path) -> anyhow::Result<Session> {
        let (mut server, mut token) = (self.server.clone(), self.token.clone());
        server = server.filter(|s| !s.trim().is_empty());
        token = token.filter(|t| !t.trim().is_empty());
        if (server.is_none() || token.is_none()) && has_tablet(home) {
            let meta = open(home)?.meta();
            server = server.or(Some(meta.server));
            token = token.or(Some(meta.token));
        }
        let server = server.unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let Some(token) = token else {
            anyhow::bail!(
                "no token: give --token TOKEN or set FIELDSYNC_TOKEN (an admin issues one with \
                 `fieldsync admin token issue USER`), or use the --home of a tablet that is set up"
            );
        };
        let mut grpc = Grpc::connect(&server, &token).await?;
        // Also checks the token before anything else is asked.
        let catalogue = match grpc.bootstrap().await {
            Ok(catalogue) => catalogue,
            Err(Error::Refused(m)) if m.contains(" — check the token") => {
                let why = m.split(" — check the token").next().unwrap_or_default();
                anyhow::bail!(
                    "{why} — check the token (--token or FIELDSYNC_TOKEN; an admin issues one \
                     with `fieldsync admin token issue`)"
                );
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Session { api: Api::new(grpc), server, catalogue, json: self.json })
    }
}

impl Session {
    /// A server refusal in plain words: the server's message, which is
    /// written for people, with a hint where one helps. Other errors are
    /// said as they are.
    pub fn refused(&self, e: Error) -> anyhow::Error {
        use tonic::Code;
        let Error::Status { code, message } = e else {
            return e.into();
        };
        match code {
            Code::Unauthenticated => anyhow::anyhow!(
                "{message} — check the token (--token or FIELDSYNC_TOKEN; an admin issues one \
                 with `fieldsync admin token issue`)"
            ),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                anyhow::anyhow!("cannot reach the server at {}: {message}", self.server)
            }
            _ => anyhow::anyhow!("{message}"),
        }
    }

    /// "Thôn 1, Xã Phúc Đồng, Huyện Hương Khê".
    pub fn place(&self, id: &str) -> String {
        place(&self.catalogue, id)
    }

    /// Prints `value` as pretty JSON.
    pub fn print_json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }
}

/// Free text (names, reasons, comments, notes) as a terminal may show it:
/// control characters such as ESC, newlines and carriage returns, and the
/// marks that reorder text, are written as escapes (`\u{1b}`, `\n`), so that
/// nothing stored can recolour, move or rewrite what the user sees. Every
/// other character, Vietnamese letters included, is kept.
pub fn terminal(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match hidden(c) {
            true if c.is_control() => out.extend(c.escape_debug()),
            true => out.extend(c.escape_unicode()),
            false => out.push(c),
        }
    }
    out
}

/// `e`, or, when `server` is the web pages' port, the port to use instead.
pub async fn unless_web_port(server: &str, e: fieldsync_client::Error) -> anyhow::Error {
    match e {
        fieldsync_client::Error::Unreachable(_)
            if fieldsync_client::remote::is_web_port(server).await =>
        {
            web_port(server)
        }
        e => e.into(),
    }
}

/// What a tablet pointed at the web pages' port is told.
pub fn web_port(server: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{server} is the web pages' port: tablets sync over the gRPC port (50051 by default), \
         e.g. `--server http://HOST:50051`"
    )
}

/// Checks that `id` is a village this tablet records for, or says what it
/// is instead: a commune or district (not a village), or unknown here, with
/// the closest village ids this tablet has.
pub fn known_village(cat: &Catalogue, id: &str) -> anyhow::Result<()> {
    if cat.village(id).is_ok() {
        return Ok(());
    }
    if cat.org_unit(id).is_some() {
        // A commune or district: the catalogue says which, and that it is not a village.
        cat.village(id)?;
    }
    let mut near: Vec<(usize, &str)> = cat
        .units_at(Level::Village, None)
        .into_iter()
        .map(|v| (strsim::levenshtein(id, &v.id), v.id.as_str()))
        .filter(|(d, _)| *d <= 3.max(id.len() / 5))
        .collect();
    near.sort();
    let hint = match near.as_slice() {
        [] => String::new(),
        [(_, one)] => format!("; did you mean {one}?"),
        [(_, a), (_, b), ..] => format!("; did you mean {a} or {b}?"),
    };
    anyhow::bail!(
        "{id:?} is not one of the villages this tablet records for (they are those of its \
         areas; a village elsewhere is outside your area){hint} `fieldsync villages` lists them"
    )
}

/// "Thôn 1, Xã Phúc Đồng, Huyện Hương Khê"; the id itself if unknown.
pub fn place(cat: &Catalogue, id: &str) -> String {
    let mut names = Vec::new();
    let mut next = cat.org_unit(id);
    while let Some(unit) = next {
        if unit.level != Level::Province {
            names.push(unit.name.clone());
        }
        next = unit.parent.as_deref().and_then(|p| cat.org_unit(p));
    }
    terminal(&if names.is_empty() {
        match cat.org_unit(id) {
            Some(unit) => unit.name.clone(),
            None => id.to_owned(),
        }
    } else {
        names.join(", ")
    })
}

/// The unit of a field's values ("km", "count"); empty for notes and locations.
pub fn unit_of(cat: &Catalogue, field: &FieldKey) -> String {
    match field {
        FieldKey::Indicator(code) => cat.indicator(code).map_or(String::new(), |i| i.unit.clone()),
        _ => String::new(),
    }
}

/// A value with its unit, as people read it: "1.25 km", "2", "@18.3,105.8".
pub fn show_value(cat: &Catalogue, field: &FieldKey, value: &Value) -> String {
    terminal(&match (field, value) {
        (FieldKey::Indicator(code), Value::Amount(a)) => {
            match cat.indicator(code).map(|i| i.unit.as_str()) {
                Some("count") | None => a.to_string(),
                Some(unit) => format!("{a} {unit}"),
            }
        }
        _ => value.to_string(),
    })
}

/// A field's name as the surveyor reads it, in Vietnamese: the indicator's
/// name ("Nhà văn hóa thôn"), "Ghi chú", "Vị trí GPS"; the code of an
/// indicator the catalogue lacks.
pub fn field_name(cat: &Catalogue, field: &FieldKey) -> String {
    terminal(match field {
        FieldKey::Note => "Ghi chú",
        FieldKey::Location => "Vị trí GPS",
        FieldKey::Indicator(code) => cat.indicator(code).map_or(code.as_str(), |i| &i.name_vi),
    })
}

/// A field by the code commands take and its name: "village_cultural_house
/// (Nhà văn hóa thôn)".
pub fn field_words(cat: &Catalogue, field: &FieldKey) -> String {
    match field_name(cat, field) {
        name if name == field.to_string() => name,
        name => format!("{field} ({name})"),
    }
}

/// Vietnam's offset from UTC, for the times people read.
const VIETNAM_MS: u64 = 7 * 3_600_000;

/// "2026-11-29 15:00:00", in Vietnam's time (UTC+7, as people read it;
/// JSON keeps UTC: [`rfc3339`]).
pub fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms + VIETNAM_MS))
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// "2026-11-29 15:00" (UTC+7).
pub fn when_short(ms: u64) -> String {
    let mut text = when(ms);
    text.truncate(16);
    text
}

/// "2026-11-29T08:00:00Z", for JSON.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// "rejected — road km double-counted (Trần Văn Giám, 2026-11-29 08:00 UTC+7)".
pub fn review_words(r: &SubmissionReview) -> String {
    let why = match r.reason.trim() {
        "" => String::new(),
        reason => format!(" — {}", terminal(reason)),
    };
    let who = match r.user_name.as_str() {
        "" => r.user_id.as_str(),
        name => name,
    };
    format!("{}{why} ({}, {} UTC+7)", r.state, terminal(who), when_short(r.at_ms))
}

/// Aligned columns as lines; widths count characters, so Vietnamese names
/// line up. Cells are shown through [`terminal`].
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|row| row.iter().map(|c| terminal(c)).collect()).collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    out
}

/// Prints aligned columns.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    for line in table(headers, rows) {
        println!("{line}");
    }
}

/// A value as JSON, mirroring the protocol's `Value`: `{"amount": "1.25"}`,
/// `{"text": ".."}`, `{"point": "18.3559,105.8877"}` or `{"deleted": true}`.
/// Amounts are decimal strings, never floats.
pub fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Amount(a) => serde_json::json!({ "amount": a.to_string() }),
        Value::Text(t) => serde_json::json!({ "text": t }),
        Value::Point(p) => serde_json::json!({ "point": p.to_string() }),
        Value::Deleted => serde_json::json!({ "deleted": true }),
    }
}

/// A submission's review as JSON.
#[derive(Serialize)]
pub struct ReviewJson {
    pub village_id: String,
    pub place: String,
    pub period: String,
    /// submitted, approved, accepted, rejected or returned.
    pub state: String,
    pub reason: String,
    /// Who made the last decision (or the last edit that submitted it).
    pub user_id: String,
    pub user_name: String,
    pub at: String,
    pub at_ms: u64,
}

impl ReviewJson {
    pub fn of(cat: &Catalogue, r: &SubmissionReview) -> ReviewJson {
        ReviewJson {
            village_id: r.village_id.clone(),
            place: place(cat, &r.village_id),
            period: r.period.to_string(),
            state: r.state.to_string(),
            reason: r.reason.clone(),
            user_id: r.user_id.clone(),
            user_name: r.user_name.clone(),
            at: rfc3339(r.at_ms),
            at_ms: r.at_ms,
        }
    }
}
