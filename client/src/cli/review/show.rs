//! `fieldsync review show`, `review conflicts` and `review resolve`: one
//! report with its conflicts, the conflicts of an area, settling one.

use anyhow::bail;
use fieldsync::sync::{Conflict, FieldState, RawValue};
use fieldsync::{Catalogue, FieldKey, GeoPoint, Value};
use fieldsync_client::api::{ConflictFilter, Settle, SubmissionDetail};
use serde::Serialize;

use super::{optional_period, parse_period, short_device};
use crate::cli::{
    place, print_table, review_words, rfc3339, show_value, table, terminal, unit_of, value_json,
    when_short, ReviewJson, Session,
};

#[derive(Serialize)]
struct FieldJson {
    field: String,
    value: serde_json::Value,
    unit: String,
    version: u64,
    author: String,
    device_id: String,
    received_at: String,
    received_at_ms: u64,
}

#[derive(Serialize)]
struct CandidateJson {
    pick: usize,
    value: serde_json::Value,
    author: String,
    device_id: String,
    received_at: String,
    received_at_ms: u64,
}

#[derive(Serialize)]
struct ResolutionJson {
    value: serde_json::Value,
    user_id: String,
    user_name: String,
    comment: String,
    at: String,
    at_ms: u64,
}

#[derive(Serialize)]
struct ConflictJson {
    village_id: String,
    place: String,
    period: String,
    field: String,
    unit: String,
    open: bool,
    base_value: serde_json::Value,
    base_version: u64,
    candidates: Vec<CandidateJson>,
    resolution: Option<ResolutionJson>,
}

impl ConflictJson {
    fn of(cat: &Catalogue, c: &Conflict) -> ConflictJson {
        ConflictJson {
            village_id: c.at.village_id.clone(),
            place: place(cat, &c.at.village_id),
            period: c.at.period.to_string(),
            field: c.at.field.to_string(),
            unit: unit_of(cat, &c.at.field),
            open: c.open,
            base_value: value_json(&c.base_value),
            base_version: c.base_version,
            candidates: c
                .candidates
                .iter()
                .enumerate()
                .map(|(i, k)| CandidateJson {
                    pick: i,
                    value: value_json(&k.value),
                    author: k.stamp.author.clone(),
                    device_id: k.stamp.device.to_string(),
                    received_at: rfc3339(k.stamp.received_at_ms),
                    received_at_ms: k.stamp.received_at_ms,
                })
                .collect(),
            resolution: c.resolution.as_ref().map(|r| ResolutionJson {
                value: value_json(&r.value),
                user_id: r.user_id.clone(),
                user_name: r.user_name.clone(),
                comment: r.comment.clone(),
                at: rfc3339(r.at_ms),
                at_ms: r.at_ms,
            }),
        }
    }
}

#[derive(Serialize)]
struct DetailJson {
    review: ReviewJson,
    fields: Vec<FieldJson>,
    conflicts: Vec<ConflictJson>,
}

/// A conflict as lines: a heading, then its competing values numbered for
/// `--pick`; `current` marks the one the field holds now.
fn conflict_lines(
    cat: &Catalogue,
    c: &Conflict,
    heading: String,
    current: Option<&FieldState>,
) -> Vec<String> {
    let base = match c.base_version {
        0 => "empty".to_owned(),
        _ => show_value(cat, &c.at.field, &c.base_value),
    };
    let status = match (&c.resolution, c.open) {
        (_, true) => "open".to_owned(),
        (Some(r), false) => {
            let comment = match r.comment.as_str() {
                "" => String::new(),
                text => format!(" — {}", terminal(text)),
            };
            format!(
                "settled by {} at {} UTC: {}{comment}",
                terminal(&r.user_name),
                when_short(r.at_ms),
                show_value(cat, &c.at.field, &r.value)
            )
        }
        (None, false) => "settled".to_owned(),
    };
    let mut lines = vec![format!("{heading}: {status}; was {base}, then")];
    let rows: Vec<Vec<String>> = c
        .candidates
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let now = current.is_some_and(|f| {
                c.open
                    && f.stamp.device == k.stamp.device
                    && f.stamp.mutation_id == k.stamp.mutation_id
            });
            vec![
                i.to_string(),
                show_value(cat, &c.at.field, &k.value),
                k.stamp.author.clone(),
                short_device(&k.stamp.device),
                format!("{} UTC+7", when_short(k.stamp.received_at_ms)),
                if now { "← current until settled".into() } else { String::new() },
            ]
        })
        .collect();
    let candidates = table(&["pick", "value", "by", "tablet", "received", ""], &rows);
    lines.extend(candidates.into_iter().map(|l| format!("  {l}")));
    lines
}

pub(super) async fn show(s: &Session, village: &str, period: &str) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    let detail = s.api.submission(village.trim(), period).await.map_err(|e| s.refused(e))?;
    if s.json {
        return s.print_json(&detail_json(&s.catalogue, &detail));
    }
    let SubmissionDetail { review, fields, conflicts } = detail;
    let cat = &s.catalogue;
    println!("{} — {period} ({})", s.place(&review.village_id), review.village_id);
    println!("state: {}", review_words(&review));
    let rows: Vec<Vec<String>> = fields
        .iter()
        .map(|f| {
            let open = conflicts.iter().any(|c| c.open && c.at.field == f.at.field);
            vec![
                f.at.field.to_string(),
                f.value.to_string(),
                unit_of(cat, &f.at.field),
                f.stamp.author.clone(),
                short_device(&f.stamp.device),
                format!("{} UTC+7", when_short(f.stamp.received_at_ms)),
                if open { "open".into() } else { String::new() },
                crate::cli::field_name(cat, &f.at.field),
            ]
        })
        .collect();
    print_table(&["field", "value", "unit", "by", "tablet", "received", "conflict", "name"], &rows);
    for c in &conflicts {
        let current = fields.iter().find(|f| f.at.field == c.at.field);
        let heading = format!("conflict on {}", crate::cli::field_words(cat, &c.at.field));
        for line in conflict_lines(cat, c, heading, current) {
            println!("{line}");
        }
    }
    if let Some(c) = conflicts.iter().find(|c| c.open) {
        println!(
            "settle with `fieldsync review resolve {} {period} {} --pick N` (or --value V)",
            review.village_id, c.at.field
        );
    }
    Ok(())
}

fn detail_json(cat: &Catalogue, detail: &SubmissionDetail) -> DetailJson {
    DetailJson {
        review: ReviewJson::of(cat, &detail.review),
        fields: detail
            .fields
            .iter()
            .map(|f| FieldJson {
                field: f.at.field.to_string(),
                value: value_json(&f.value),
                unit: unit_of(cat, &f.at.field),
                version: f.version,
                author: f.stamp.author.clone(),
                device_id: f.stamp.device.to_string(),
                received_at: rfc3339(f.stamp.received_at_ms),
                received_at_ms: f.stamp.received_at_ms,
            })
            .collect(),
        conflicts: detail.conflicts.iter().map(|c| ConflictJson::of(cat, c)).collect(),
    }
}

pub(super) async fn conflicts(
    s: &Session,
    area: Option<String>,
    period: Option<String>,
    all: bool,
) -> anyhow::Result<()> {
    let period = optional_period(period)?;
    let filter = ConflictFilter { area, period, include_settled: all };
    let mut list = s.api.conflicts(&filter).await.map_err(|e| s.refused(e))?;
    list.sort_by(|a, b| {
        (&a.at.village_id, a.at.period, &a.at.field).cmp(&(
            &b.at.village_id,
            b.at.period,
            &b.at.field,
        ))
    });
    let cat = &s.catalogue;
    if s.json {
        let list: Vec<ConflictJson> = list.iter().map(|c| ConflictJson::of(cat, c)).collect();
        return s.print_json(&list);
    }
    if list.is_empty() {
        match all {
            true => println!("no conflicts"),
            false => println!("no open conflicts"),
        }
        return Ok(());
    }
    for c in &list {
        let heading = format!(
            "{} ({}) {}, {}",
            s.place(&c.at.village_id),
            c.at.village_id,
            c.at.period,
            c.at.field
        );
        for line in conflict_lines(cat, c, heading, None) {
            println!("{line}");
        }
    }
    if list.iter().any(|c| c.open) {
        println!(
            "settle one with `fieldsync review resolve VILLAGE PERIOD FIELD --pick N` (or --value V)"
        );
    }
    Ok(())
}

pub(super) async fn resolve(
    s: &Session,
    village: &str,
    period: &str,
    field: &str,
    pick: Option<u32>,
    value: Option<String>,
    comment: &str,
) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    fieldsync::validate::check_text("the comment", comment.trim())?;
    let key = FieldKey::parse(field.trim());
    let choice = match (pick, value) {
        (Some(i), _) => Settle::Pick(i),
        (None, Some(v)) => Settle::Value(match key {
            FieldKey::Note => RawValue::Text(v),
            FieldKey::Location => RawValue::Point(v.parse::<GeoPoint>()?),
            FieldKey::Indicator(_) => RawValue::Amount(v.trim().to_owned()),
        }),
        (None, None) => bail!("give --pick N (a competing value) or --value V (your own)"),
    };
    let settled = s.api.settle(village.trim(), period, &key, &choice, comment.trim()).await;
    let conflict = settled.map_err(|e| s.refused(e))?.conflict;
    let cat = &s.catalogue;
    if s.json {
        return s.print_json(&ConflictJson::of(cat, &conflict));
    }
    let value = conflict.resolution.as_ref().map(|r| r.value.clone()).unwrap_or(Value::Deleted);
    let whose = match choice {
        Settle::Pick(i) => conflict
            .candidates
            .get(i as usize)
            .map_or(String::new(), |k| format!(" ({}'s value)", terminal(&k.stamp.author))),
        Settle::Value(_) => " (your own value)".into(),
    };
    println!(
        "settled {} of {} ({period}): {}{whose}; tablets get it at their next sync",
        key,
        s.place(&conflict.at.village_id),
        show_value(cat, &key, &value)
    );
    Ok(())
}
