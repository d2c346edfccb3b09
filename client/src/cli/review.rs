//! `fieldsync review ...`: what supervisors and the province office do, online.

use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::{Conflict, FieldState, RawValue, SubmissionReview};
use fieldsync::{Catalogue, DeviceId, FieldKey, GeoPoint, Period, Value};
use fieldsync_proto::convert;
use fieldsync_proto::v1::{
    self, resolve_conflict_request, DecideRequest, GetSubmissionRequest, HistoryRequest,
    ListConflictsRequest, ListSubmissionsRequest, ResolveConflictRequest, SetPeriodClosedRequest,
    SubmissionKey,
};
use serde::Serialize;

use super::{
    place, print_table, review_words, rfc3339, show_value, table, terminal, unit_of, value_json,
    when, when_short, Online, ReviewJson, Session,
};

const STATES: [&str; 5] = ["submitted", "approved", "accepted", "rejected", "returned"];

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Reports in your areas, one line each.
    List {
        /// Only this org unit (district, commune or village id) and what lies below it.
        #[arg(long)]
        area: Option<String>,
        /// Only this period (2022, 2022-Q3 or 2022-07).
        #[arg(long)]
        period: Option<String>,
        /// Only reports in this state.
        #[arg(long, value_parser = STATES)]
        state: Option<String>,
    },
    /// One report: where it stands, every field, its conflicts.
    Show { village: String, period: String },
    /// Approve a report (the commune's step); with --area and --period, every
    /// submitted report there.
    Approve(Bulk),
    /// Accept an approved report (the district's step; final); with --area and
    /// --period, every approved report there.
    Accept(Bulk),
    /// Reject a report; the surveyor sees the reason at their next sync.
    Reject {
        village: String,
        period: String,
        /// What is wrong, in words the surveyor can act on.
        #[arg(long)]
        reason: String,
    },
    /// Return a report to the surveyor for changes.
    Return {
        village: String,
        period: String,
        /// What to change, in words the surveyor can act on.
        #[arg(long)]
        reason: String,
    },
    /// Reopen an approved or accepted report, so that tablets may edit it again.
    Reopen { village: String, period: String },
    /// Conflicts in your areas: open ones, or all with --all.
    Conflicts {
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        period: Option<String>,
        /// Settled conflicts too.
        #[arg(long)]
        all: bool,
    },
    /// Settle a conflict: pick one of the competing values (numbered in
    /// `review show` and `review conflicts`) or give a value of your own.
    Resolve {
        village: String,
        period: String,
        /// The field in conflict: an indicator code, `note` or `location`.
        field: String,
        /// The number of the competing value to keep.
        #[arg(long, required_unless_present = "value", conflicts_with = "value")]
        pick: Option<u32>,
        /// A value of your own: an amount, the text of a note, or "lat,lon".
        #[arg(long, allow_hyphen_values = true)]
        value: Option<String>,
        /// Why, for the audit trail and the surveyors.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// The audit trail, oldest first: edits, refusals, decisions, settlements.
    History {
        /// A village id (with PERIOD): only that report.
        village: Option<String>,
        period: Option<String>,
        /// Only what this user did.
        #[arg(long)]
        user: Option<String>,
        /// From this time on: 2026-11-29 or 2026-11-29T08:00:00Z (UTC unless an
        /// offset like +07:00 is given).
        #[arg(long)]
        since: Option<String>,
        /// Up to this time (a date means the end of that day).
        #[arg(long)]
        until: Option<String>,
        /// Only the N most recent entries (still printed oldest first).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Close a period for an area: tablets' edits for it are refused until reopened.
    ClosePeriod { area: String, period: String },
    /// Reopen a closed period for an area.
    ReopenPeriod { area: String, period: String },
}

/// One report, or every report of an area and period.
#[derive(Args)]
pub struct Bulk {
    /// The village id (or use --area and --period for many).
    #[arg(required_unless_present = "area")]
    village: Option<String>,
    #[arg(required_unless_present = "area")]
    period: Option<String>,
    /// Every report in this org unit...
    #[arg(long, conflicts_with = "village", requires = "area_period")]
    area: Option<String>,
    /// ...for this period.
    #[arg(long = "period", id = "area_period", value_name = "PERIOD", requires = "area")]
    area_period: Option<String>,
}

fn parse_period(text: &str) -> anyhow::Result<Period> {
    Ok(text.trim().parse::<Period>()?)
}

fn optional_period(text: Option<String>) -> anyhow::Result<String> {
    Ok(text.map(|p| parse_period(&p)).transpose()?.map(|p| p.to_string()).unwrap_or_default())
}

/// A reply this client cannot read.
fn unreadable(e: fieldsync::Error) -> anyhow::Error {
    anyhow::anyhow!("the server sent something this client cannot read: {e}")
}

fn review_of(r: Option<v1::SubmissionReview>) -> anyhow::Result<SubmissionReview> {
    let r = r.context("the server sent a report without its review")?;
    convert::review_from_wire(r).map_err(unreadable)
}

/// "1a2b3c4d", or "server" for values set on the server (settlements).
fn short_device(device: &DeviceId) -> String {
    match device.0.is_nil() {
        true => "server".into(),
        false => device.to_string()[..8].to_owned(),
    }
}

fn past(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "approved",
        Verdict::Accept => "accepted",
        Verdict::Reject => "rejected",
        Verdict::Return => "returned",
        Verdict::Reopen => "reopened",
    }
}

pub async fn run(command: ReviewCommand, online: &Online, home: &Path) -> anyhow::Result<()> {
    let s = online.connect(home).await?;
    match command {
        ReviewCommand::List { area, period, state } => list(&s, area, period, state).await,
        ReviewCommand::Show { village, period } => show(&s, &village, &period).await,
        ReviewCommand::Approve(b) => bulk(&s, Verdict::Approve, b).await,
        ReviewCommand::Accept(b) => bulk(&s, Verdict::Accept, b).await,
        ReviewCommand::Reject { village, period, reason } => {
            decide_one(&s, Verdict::Reject, &village, &period, &reason).await
        }
        ReviewCommand::Return { village, period, reason } => {
            decide_one(&s, Verdict::Return, &village, &period, &reason).await
        }
        ReviewCommand::Reopen { village, period } => {
            decide_one(&s, Verdict::Reopen, &village, &period, "").await
        }
        ReviewCommand::Conflicts { area, period, all } => conflicts(&s, area, period, all).await,
        ReviewCommand::Resolve { village, period, field, pick, value, comment } => {
            resolve(&s, &village, &period, &field, pick, value, &comment).await
        }
        ReviewCommand::History { village, period, user, since, until, limit } => {
            history(&s, village, period, user, since, until, limit).await
        }
        ReviewCommand::ClosePeriod { area, period } => close(&s, &area, &period, true).await,
        ReviewCommand::ReopenPeriod { area, period } => close(&s, &area, &period, false).await,
    }
}

#[derive(Serialize)]
struct SubmissionRow {
    #[serde(flatten)]
    review: ReviewJson,
    fields: u32,
    open_conflicts: u32,
}

async fn list(
    s: &Session,
    area: Option<String>,
    period: Option<String>,
    state: Option<String>,
) -> anyhow::Result<()> {
    let period = optional_period(period)?;
    let state = state.map(|t| ReviewState::parse(&t)).transpose()?;
    let mut client = s.grpc.review();
    let mut rows: Vec<(SubmissionReview, u32, u32)> = Vec::new();
    let mut after = String::new();
    loop {
        let request = ListSubmissionsRequest {
            area: area.clone().unwrap_or_default(),
            period: period.clone(),
            state: state.map_or(0, |s| convert::review_state_to_wire(s) as i32),
            limit: 0,
            after: after.clone(),
        };
        let reply = client.list_submissions(request).await.map_err(|e| s.refused(e))?;
        let reply = reply.into_inner();
        for summary in reply.submissions {
            rows.push((review_of(summary.review)?, summary.fields, summary.open_conflicts));
        }
        if reply.next.is_empty() {
            break;
        }
        after = reply.next;
    }
    rows.sort_by(|a, b| (&a.0.village_id, a.0.period).cmp(&(&b.0.village_id, b.0.period)));
    if s.json {
        let rows: Vec<SubmissionRow> = rows
            .iter()
            .map(|(r, fields, open)| SubmissionRow {
                review: ReviewJson::of(&s.catalogue, r),
                fields: *fields,
                open_conflicts: *open,
            })
            .collect();
        return s.print_json(&rows);
    }
    if rows.is_empty() {
        println!(
            "no reports match: nothing synced yet in your areas, or the filters are too narrow"
        );
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(r, fields, open)| {
            vec![
                r.village_id.clone(),
                s.place(&r.village_id),
                r.period.to_string(),
                r.state.to_string(),
                fields.to_string(),
                open.to_string(),
                r.user_name.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &["village", "place", "period", "state", "fields", "conflicts", "by", "reason"],
        &cells,
    );
    Ok(())
}

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
                format!("{} UTC", when_short(k.stamp.received_at_ms)),
                if now { "← current until settled".into() } else { String::new() },
            ]
        })
        .collect();
    let candidates = table(&["pick", "value", "by", "tablet", "received", ""], &rows);
    lines.extend(candidates.into_iter().map(|l| format!("  {l}")));
    lines
}

async fn show(s: &Session, village: &str, period: &str) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    let mut client = s.grpc.review();
    let request =
        GetSubmissionRequest { village_id: village.trim().to_owned(), period: period.to_string() };
    let detail = client.get_submission(request).await.map_err(|e| s.refused(e))?.into_inner();
    let review = review_of(detail.review)?;
    let fields = detail
        .fields
        .into_iter()
        .map(convert::field_state_from_wire)
        .collect::<fieldsync::Result<Vec<_>>>()
        .map_err(unreadable)?;
    let conflicts = detail
        .conflicts
        .into_iter()
        .map(convert::conflict_from_wire)
        .collect::<fieldsync::Result<Vec<_>>>()
        .map_err(unreadable)?;
    let cat = &s.catalogue;
    if s.json {
        return s.print_json(&DetailJson {
            review: ReviewJson::of(cat, &review),
            fields: fields
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
            conflicts: conflicts.iter().map(|c| ConflictJson::of(cat, c)).collect(),
        });
    }
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
                format!("{} UTC", when_short(f.stamp.received_at_ms)),
                if open { "in conflict".into() } else { String::new() },
            ]
        })
        .collect();
    print_table(&["field", "value", "unit", "by", "tablet", "received", ""], &rows);
    for c in &conflicts {
        let current = fields.iter().find(|f| f.at.field == c.at.field);
        let heading = format!("conflict on {}", c.at.field);
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

#[derive(Serialize)]
struct DecisionJson {
    changed: Vec<ReviewJson>,
    unchanged: u32,
}

/// Sends a decision; `not_found` replaces the server's words when a named
/// report does not exist.
async fn decide(
    s: &Session,
    request: DecideRequest,
    not_found: Option<String>,
) -> anyhow::Result<(Vec<SubmissionReview>, u32)> {
    let mut client = s.grpc.review();
    let reply = match client.decide(request).await {
        Ok(reply) => reply.into_inner(),
        Err(e) => match not_found {
            Some(words) if e.code() == tonic::Code::NotFound => bail!("{words}"),
            _ => return Err(s.refused(e)),
        },
    };
    let changed = reply
        .changed
        .into_iter()
        .map(convert::review_from_wire)
        .collect::<fieldsync::Result<Vec<_>>>()
        .map_err(unreadable)?;
    Ok((changed, reply.unchanged))
}

fn print_decision(s: &Session, changed: &[SubmissionReview], unchanged: u32) -> anyhow::Result<()> {
    let changed = changed.iter().map(|r| ReviewJson::of(&s.catalogue, r)).collect();
    s.print_json(&DecisionJson { changed, unchanged })
}

async fn decide_one(
    s: &Session,
    verdict: Verdict,
    village: &str,
    period: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    let village = village.trim();
    if verdict.needs_reason() && reason.trim().is_empty() {
        bail!("give a --reason the surveyor can act on");
    }
    fieldsync::validate::check_text("the reason", reason.trim())?;
    let request = DecideRequest {
        verdict: convert::verdict_to_wire(verdict) as i32,
        reason: reason.trim().to_owned(),
        submissions: vec![SubmissionKey {
            village_id: village.to_owned(),
            period: period.to_string(),
        }],
        area: String::new(),
        period: String::new(),
        only_state: 0,
    };
    let not_found = format!(
        "nothing recorded for {village} in {period}: check the village id and period \
         (`fieldsync review list`)"
    );
    let (changed, unchanged) = decide(s, request, Some(not_found)).await?;
    if s.json {
        return print_decision(s, &changed, unchanged);
    }
    let name = format!("{} ({period})", s.place(village));
    match changed.first() {
        Some(r) => {
            let why = match r.reason.as_str() {
                "" => String::new(),
                reason => format!(": {}", terminal(reason)),
            };
            let next = match r.state {
                ReviewState::Submitted => "; tablets may edit it again",
                ReviewState::Approved => "; it waits for the district to accept it",
                ReviewState::Accepted => "; it is final and locked",
                ReviewState::Rejected | ReviewState::Returned => {
                    "; the surveyor sees this at their next sync"
                }
            };
            println!("{} {name}{why}{next}", past(verdict));
        }
        None => println!("{name} is already {}", past(verdict)),
    }
    Ok(())
}

async fn bulk(s: &Session, verdict: Verdict, b: Bulk) -> anyhow::Result<()> {
    let (Some(area), Some(period)) = (b.area, b.area_period) else {
        let (Some(village), Some(period)) = (b.village, b.period) else {
            bail!("give VILLAGE PERIOD, or --area ID --period P for every report there");
        };
        return decide_one(s, verdict, &village, &period, "").await;
    };
    let period = parse_period(&period)?;
    let only = match verdict {
        Verdict::Accept => ReviewState::Approved,
        _ => ReviewState::Submitted,
    };
    let request = DecideRequest {
        verdict: convert::verdict_to_wire(verdict) as i32,
        reason: String::new(),
        submissions: Vec::new(),
        area: area.trim().to_owned(),
        period: period.to_string(),
        only_state: convert::review_state_to_wire(only) as i32,
    };
    let (mut changed, unchanged) = decide(s, request, None).await?;
    changed.sort_by(|a, b| a.village_id.cmp(&b.village_id));
    if s.json {
        return print_decision(s, &changed, unchanged);
    }
    let name = format!("{} ({})", s.place(area.trim()), area.trim());
    if changed.is_empty() {
        println!("nothing to {}: no {only} reports in {name} for {period}", verdict.as_str());
        return Ok(());
    }
    println!("{} {} report(s) in {name} for {period}:", past(verdict), changed.len());
    let rows: Vec<Vec<String>> =
        changed.iter().map(|r| vec![r.village_id.clone(), s.place(&r.village_id)]).collect();
    for line in table(&["village", "place"], &rows) {
        println!("  {line}");
    }
    Ok(())
}

async fn conflicts(
    s: &Session,
    area: Option<String>,
    period: Option<String>,
    all: bool,
) -> anyhow::Result<()> {
    let period = optional_period(period)?;
    let mut client = s.grpc.review();
    // Page through every conflict, however many.
    let mut list = Vec::new();
    let mut after = String::new();
    loop {
        let request = ListConflictsRequest {
            area: area.clone().unwrap_or_default(),
            period: period.clone(),
            include_settled: all,
            limit: 0,
            after,
        };
        let reply = client.list_conflicts(request).await.map_err(|e| s.refused(e))?.into_inner();
        for c in reply.conflicts {
            list.push(convert::conflict_from_wire(c).map_err(unreadable)?);
        }
        if reply.next.is_empty() {
            break;
        }
        after = reply.next;
    }
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

async fn resolve(
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
        (Some(i), _) => resolve_conflict_request::Choice::Pick(i),
        (None, Some(v)) => {
            let raw = match key {
                FieldKey::Note => RawValue::Text(v),
                FieldKey::Location => RawValue::Point(v.parse::<GeoPoint>()?),
                FieldKey::Indicator(_) => RawValue::Amount(v.trim().to_owned()),
            };
            resolve_conflict_request::Choice::Value(convert::raw_value_to_wire(&raw))
        }
        (None, None) => bail!("give --pick N (a competing value) or --value V (your own)"),
    };
    let request = ResolveConflictRequest {
        village_id: village.trim().to_owned(),
        period: period.to_string(),
        field: key.to_string(),
        choice: Some(choice.clone()),
        comment: comment.trim().to_owned(),
    };
    let mut client = s.grpc.review();
    let reply = client.resolve_conflict(request).await.map_err(|e| s.refused(e))?.into_inner();
    let conflict = convert::conflict_from_wire(
        reply.conflict.context("the server sent no conflict with its answer")?,
    )
    .map_err(unreadable)?;
    let cat = &s.catalogue;
    if s.json {
        return s.print_json(&ConflictJson::of(cat, &conflict));
    }
    let value = conflict.resolution.as_ref().map(|r| r.value.clone()).unwrap_or(Value::Deleted);
    let whose = match choice {
        resolve_conflict_request::Choice::Pick(i) => conflict
            .candidates
            .get(i as usize)
            .map_or(String::new(), |k| format!(" ({}'s value)", terminal(&k.stamp.author))),
        resolve_conflict_request::Choice::Value(_) => " (your own value)".into(),
    };
    println!(
        "settled {} of {} ({period}): {}{whose}; tablets get it at their next sync",
        key,
        s.place(&conflict.at.village_id),
        show_value(cat, &key, &value)
    );
    Ok(())
}

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

async fn history(
    s: &Session,
    village: Option<String>,
    period: Option<String>,
    user: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let (village, period) = match (village, period) {
        (Some(v), Some(p)) => (v.trim().to_owned(), parse_period(&p)?.to_string()),
        (None, None) => (String::new(), String::new()),
        _ => bail!("give both a village and a period for one report's history"),
    };
    let from_ms = since.map(|t| parse_time(&t, false)).transpose()?.unwrap_or(0);
    let to_ms = until.map(|t| parse_time(&t, true)).transpose()?.unwrap_or(0);
    let mut client = s.grpc.review();
    let mut entries: Vec<v1::AuditEntry> = Vec::new();
    // With a limit, the newest entries are read back from the head of the
    // trail, no further than needed; printed oldest first either way.
    let newest_first = limit.is_some();
    let mut cursor = 0;
    loop {
        let wanted = limit.map_or(0, |n| n.saturating_sub(entries.len()).min(1_000) as u32);
        if newest_first && wanted == 0 {
            break;
        }
        let request = HistoryRequest {
            village_id: village.clone(),
            period: period.clone(),
            user_id: user.clone().unwrap_or_default(),
            from_ms,
            to_ms,
            after: if newest_first { 0 } else { cursor },
            limit: wanted,
            newest_first,
            before: if newest_first { cursor } else { 0 },
        };
        let page = client.history(request).await.map_err(|e| s.refused(e))?.into_inner().entries;
        match page.last() {
            Some(last) => cursor = last.seq,
            None => break,
        }
        entries.extend(page);
    }
    if newest_first {
        entries.reverse();
    }
    let value = |v: Option<v1::Value>| match v {
        Some(v) => convert::value_from_wire(Some(v)).map(Some).map_err(unreadable),
        None => Ok(None),
    };
    let mut read = Vec::new();
    for e in entries {
        let (old, new) = (value(e.old_value.clone())?, value(e.new_value.clone())?);
        read.push((e, old, new));
    }
    let cat = &s.catalogue;
    if s.json {
        let out: Vec<AuditJson> = read
            .into_iter()
            .map(|(e, old, new)| AuditJson {
                seq: e.seq,
                at: rfc3339(e.at_ms),
                at_ms: e.at_ms,
                user_id: e.user_id,
                device_id: e.device_id,
                kind: e.kind,
                village_id: e.village_id,
                period: e.period,
                field: e.field,
                old_value: old.as_ref().map(value_json),
                new_value: new.as_ref().map(value_json),
                mutation_id: e.mutation_id,
                detail: e.detail,
            })
            .collect();
        return s.print_json(&out);
    }
    if read.is_empty() {
        println!("no history matches");
        return Ok(());
    }
    let one = !village.is_empty();
    if one {
        println!("{} — {period} ({village})", s.place(&village));
    }
    let rows: Vec<Vec<String>> = read
        .iter()
        .map(|(e, old, new)| {
            let change = match (old, new) {
                (None, None) => String::new(),
                _ => format!(
                    "{} → {}",
                    audit_value(cat, &e.field, old),
                    audit_value(cat, &e.field, new)
                ),
            };
            let device = match e.device_id.parse::<DeviceId>() {
                Ok(d) => short_device(&d),
                Err(_) => String::new(),
            };
            let mut row =
                vec![format!("{} UTC", when(e.at_ms)), e.user_id.clone(), device, e.kind.clone()];
            if !one {
                row.push(e.village_id.clone());
                row.push(e.period.clone());
            }
            row.extend([e.field.clone(), change, e.detail.clone()]);
            row
        })
        .collect();
    let mut headers = vec!["time", "user", "tablet", "what"];
    if !one {
        headers.extend(["where", "period"]);
    }
    headers.extend(["field", "change", "detail"]);
    print_table(&headers, &rows);
    Ok(())
}

async fn close(s: &Session, area: &str, period: &str, closed: bool) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    let area = area.trim();
    let request =
        SetPeriodClosedRequest { area: area.to_owned(), period: period.to_string(), closed };
    let mut client = s.grpc.review();
    client.set_period_closed(request).await.map_err(|e| s.refused(e))?;
    if s.json {
        return s.print_json(&serde_json::json!({
            "area": area,
            "period": period.to_string(),
            "closed": closed,
        }));
    }
    let name = format!("{} ({area})", s.place(area));
    match closed {
        true => println!(
            "closed {period} for {name}: tablets' edits for it are refused until it is reopened"
        ),
        false => println!("reopened {period} for {name}: tablets may send edits for it again"),
    }
    Ok(())
}
