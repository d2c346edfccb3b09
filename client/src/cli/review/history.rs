//! `fieldsync review history`: the audit trail, oldest first, as a table or
//! as JSON.

use fieldsync::{Catalogue, FieldKey, Period, Value};
use fieldsync_client::api::{HistoryEntry, HistoryFilter};
use serde::Serialize;

use super::short_device;
use crate::cli::{print_table, rfc3339, show_value, value_json, when, Session};

/// Milliseconds since the epoch of "2026-11-29", "2026-11-29T08:00",
/// "2026-11-29T08:00:00Z" or "2026-11-29T08:00:00+07:00". A bare date is the
/// start of that day, or its end when `end_of_day`.
fn parse_time(text: &str, end_of_day: bool) -> anyhow::Result<u64> {
    let bad = || {
        anyhow::anyhow!(
            "{text:?} is not a time: write 2026-11-29 or 2026-11-29T08:00:00Z (UTC unless an \
             offset like +07:00 is given)"
        )
    };
    let text = text.trim();
    let ms = |t: std::time::SystemTime| -> anyhow::Result<u64> {
        let d = t.duration_since(std::time::UNIX_EPOCH).map_err(|_| bad())?;
        Ok(d.as_millis() as u64)
    };
    if text.len() == 10 {
        let start = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| bad())?;
        let start = ms(start)?;
        return Ok(if end_of_day { start + 86_400_000 - 1 } else { start });
    }
    let (body, offset_min): (&str, i64) = match text.len().checked_sub(6).map(|i| text.split_at(i))
    {
        Some((body, off))
            if (off.starts_with('+') || off.starts_with('-')) && off.as_bytes()[3] == b':' =>
        {
            let hours: i64 = off[1..3].parse().map_err(|_| bad())?;
            let minutes: i64 = off[4..6].parse().map_err(|_| bad())?;
            let sign = if off.starts_with('-') { -1 } else { 1 };
            (body, sign * (hours * 60 + minutes))
        }
        _ => (text.trim_end_matches(['Z', 'z']), 0),
    };
    let body = match body.len() {
        16 => format!("{body}:00"),
        _ => body.to_owned(),
    };
    let local = ms(humantime::parse_rfc3339_weak(&body).map_err(|_| bad())?)?;
    let utc = local as i64 - offset_min * 60_000;
    u64::try_from(utc).map_err(|_| bad())
}

#[derive(Serialize)]
struct AuditJson {
    seq: u64,
    at: String,
    at_ms: u64,
    user_id: String,
    device_id: String,
    kind: String,
    village_id: String,
    period: String,
    field: String,
    old_value: Option<serde_json::Value>,
    new_value: Option<serde_json::Value>,
    mutation_id: u64,
    detail: String,
}

/// A stored value of an audit entry, as people read it.
fn audit_value(cat: &Catalogue, field: &str, value: &Option<Value>) -> String {
    match value {
        None | Some(Value::Deleted) => "empty".into(),
        Some(v) => show_value(cat, &FieldKey::parse(field), v),
    }
}

pub(super) async fn history(
    s: &Session,
    report: Option<(String, Period)>,
    user: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let from_ms = since.map(|t| parse_time(&t, false)).transpose()?.unwrap_or(0);
    let to_ms = until.map(|t| parse_time(&t, true)).transpose()?.unwrap_or(0);
    let filter = HistoryFilter { report: report.clone(), user_id: user, from_ms, to_ms, limit };
    let entries = s.api.history(&filter).await.map_err(|e| s.refused(e))?;
    if s.json {
        let out: Vec<AuditJson> = entries.into_iter().map(audit_json).collect();
        return s.print_json(&out);
    }
    if entries.is_empty() {
        println!("no history matches");
        return Ok(());
    }
    let one = report.as_ref().filter(|(village, _)| !village.is_empty());
    if let Some((village, period)) = one {
        println!("{} — {period} ({village})", s.place(village));
    }
    print_entries(&s.catalogue, &entries, one.is_none());
    Ok(())
}

fn audit_json(e: HistoryEntry) -> AuditJson {
    AuditJson {
        seq: e.seq,
        at: rfc3339(e.at_ms),
        at_ms: e.at_ms,
        user_id: e.user_id,
        device_id: e.device.map(|d| d.to_string()).unwrap_or_default(),
        kind: e.kind,
        village_id: e.village_id,
        period: e.period,
        field: e.field,
        old_value: e.old.as_ref().map(value_json),
        new_value: e.new.as_ref().map(value_json),
        mutation_id: e.mutation_id,
        detail: e.detail,
    }
}

/// The entries as a table; `everywhere` adds where and when each happened.
fn print_entries(cat: &Catalogue, entries: &[HistoryEntry], everywhere: bool) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let change = match (&e.old, &e.new) {
                (None, None) => String::new(),
                (old, new) => format!(
                    "{} → {}",
                    audit_value(cat, &e.field, old),
                    audit_value(cat, &e.field, new)
                ),
            };
            let device = e.device.as_ref().map_or(String::new(), short_device);
            let mut row =
                vec![format!("{} UTC+7", when(e.at_ms)), e.user_id.clone(), device, e.kind.clone()];
            if everywhere {
                row.push(e.village_id.clone());
                row.push(e.period.clone());
            }
            row.extend([e.field.clone(), change, e.detail.clone()]);
            row
        })
        .collect();
    let mut headers = vec!["time", "user", "tablet", "what"];
    if everywhere {
        headers.extend(["where", "period"]);
    }
    headers.extend(["field", "change", "detail"]);
    print_table(&headers, &rows);
}
