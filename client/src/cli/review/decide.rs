//! `fieldsync review approve|accept|reject|return|reopen` and `review
//! close-period|reopen-period`: decisions on one report or every report of
//! an area, and closed periods.

use anyhow::bail;
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::sync::SubmissionReview;
use fieldsync_client::api::{Decided, Decision, Reports};
use fieldsync_client::Error;
use serde::Serialize;

use super::{parse_period, Bulk};
use crate::cli::{table, terminal, ReviewJson, Session};

fn past(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Approve => "approved",
        Verdict::Accept => "accepted",
        Verdict::Reject => "rejected",
        Verdict::Return => "returned",
        Verdict::Reopen => "reopened",
    }
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
    decision: &Decision,
    not_found: Option<String>,
) -> anyhow::Result<Decided> {
    match s.api.decide(decision).await {
        Ok(decided) => Ok(decided),
        Err(e) => match (not_found, &e) {
            (Some(words), Error::Status { code: tonic::Code::NotFound, .. }) => bail!("{words}"),
            _ => Err(s.refused(e)),
        },
    }
}

fn print_decision(s: &Session, changed: &[SubmissionReview], unchanged: u32) -> anyhow::Result<()> {
    let changed = changed.iter().map(|r| ReviewJson::of(&s.catalogue, r)).collect();
    s.print_json(&DecisionJson { changed, unchanged })
}

/// A decision on one report.
pub(super) async fn one(
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
    let decision = Decision {
        verdict,
        reason: reason.trim().to_owned(),
        reports: Reports::These(vec![(village.to_owned(), period)]),
    };
    let not_found = format!(
        "nothing recorded for {village} in {period}: check the village id and period \
         (`fieldsync review list`)"
    );
    let Decided { changed, unchanged } = decide(s, &decision, Some(not_found)).await?;
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
            let accepts = s.catalogue.chain(village).accepts;
            let next = match r.state {
                ReviewState::Submitted => "; tablets may edit it again".to_owned(),
                ReviewState::Approved => {
                    format!("; it waits for the {} to accept it", accepts.as_str())
                }
                ReviewState::Accepted => "; it is final and locked".to_owned(),
                ReviewState::Rejected | ReviewState::Returned => {
                    "; the surveyor sees this at their next sync".to_owned()
                }
            };
            println!("{} {name}{why}{next}", past(verdict));
        }
        None => println!("{name} is already {}", past(verdict)),
    }
    Ok(())
}

/// A decision on one report, or on every report of an area and period.
pub(super) async fn bulk(s: &Session, verdict: Verdict, b: Bulk) -> anyhow::Result<()> {
    let (Some(area), Some(period)) = (b.area, b.area_period) else {
        let (Some(village), Some(period)) = (b.village, b.period) else {
            bail!("give VILLAGE PERIOD, or --area ID --period P for every report there");
        };
        return one(s, verdict, &village, &period, "").await;
    };
    let period = parse_period(&period)?;
    let only = match verdict {
        Verdict::Accept => ReviewState::Approved,
        _ => ReviewState::Submitted,
    };
    let area = area.trim();
    let decision = Decision {
        verdict,
        reason: String::new(),
        reports: Reports::Area { area: area.to_owned(), period, only: Some(only) },
    };
    let Decided { mut changed, unchanged } = decide(s, &decision, None).await?;
    changed.sort_by(|a, b| a.village_id.cmp(&b.village_id));
    if s.json {
        return print_decision(s, &changed, unchanged);
    }
    let name = format!("{} ({})", s.place(area), area);
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

/// Closes or reopens a period for an area.
pub(super) async fn close(
    s: &Session,
    area: &str,
    period: &str,
    closed: bool,
) -> anyhow::Result<()> {
    let period = parse_period(period)?;
    let area = area.trim();
    s.api.set_period_closed(area, period, closed).await.map_err(|e| s.refused(e))?;
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
