//! `fieldsync review ...`: what supervisors and the province office do,
//! online: each command calls `fieldsync_client::api` and prints what it
//! gets, as a table or (`--json`) as JSON. `show`, `conflicts` and
//! `resolve` are in [`show`], decisions and closed periods in [`decide`],
//! the audit trail in [`history`].

mod decide;
mod history;
mod show;

use std::path::Path;

use clap::{Args, Subcommand};
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::{DeviceId, Period};
use fieldsync_client::api::SubmissionFilter;
use serde::Serialize;

use super::{print_table, Online, ReviewJson, Session};

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
    /// Accept an approved report (the step of the district, or of the
    /// province where there are no districts; final); with --area and
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

fn optional_period(text: Option<String>) -> anyhow::Result<Option<Period>> {
    text.map(|p| parse_period(&p)).transpose()
}

/// "1a2b3c4d", or "server" for values set on the server (settlements).
fn short_device(device: &DeviceId) -> String {
    match device.0.is_nil() {
        true => "server".into(),
        false => device.to_string()[..8].to_owned(),
    }
}

pub async fn run(command: ReviewCommand, online: &Online, home: &Path) -> anyhow::Result<()> {
    let s = online.connect(home).await?;
    match command {
        ReviewCommand::List { area, period, state } => list(&s, area, period, state).await,
        ReviewCommand::Show { village, period } => show::show(&s, &village, &period).await,
        ReviewCommand::Approve(b) => decide::bulk(&s, Verdict::Approve, b).await,
        ReviewCommand::Accept(b) => decide::bulk(&s, Verdict::Accept, b).await,
        ReviewCommand::Reject { village, period, reason } => {
            decide::one(&s, Verdict::Reject, &village, &period, &reason).await
        }
        ReviewCommand::Return { village, period, reason } => {
            decide::one(&s, Verdict::Return, &village, &period, &reason).await
        }
        ReviewCommand::Reopen { village, period } => {
            decide::one(&s, Verdict::Reopen, &village, &period, "").await
        }
        ReviewCommand::Conflicts { area, period, all } => {
            show::conflicts(&s, area, period, all).await
        }
        ReviewCommand::Resolve { village, period, field, pick, value, comment } => {
            show::resolve(&s, &village, &period, &field, pick, value, &comment).await
        }
        ReviewCommand::History { village, period, user, since, until, limit } => {
            let report = match (village, period) {
                (Some(v), Some(p)) => Some((v.trim().to_owned(), parse_period(&p)?)),
                (None, None) => None,
                _ => anyhow::bail!("give both a village and a period for one report's history"),
            };
            history::history(&s, report, user, since, until, limit).await
        }
        ReviewCommand::ClosePeriod { area, period } => {
            decide::close(&s, &area, &period, true).await
        }
        ReviewCommand::ReopenPeriod { area, period } => {
            decide::close(&s, &area, &period, false).await
        }
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
    let filter = SubmissionFilter { area, period, state };
    let mut rows = s.api.submissions(&filter).await.map_err(|e| s.refused(e))?;
    rows.sort_by(|a, b| {
        (&a.review.village_id, a.review.period).cmp(&(&b.review.village_id, b.review.period))
    });
    if s.json {
        let rows: Vec<SubmissionRow> = rows
            .iter()
            .map(|r| SubmissionRow {
                review: ReviewJson::of(&s.catalogue, &r.review),
                fields: r.fields,
                open_conflicts: r.open_conflicts,
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
        .map(|row| {
            let r = &row.review;
            vec![
                r.village_id.clone(),
                s.place(&r.village_id),
                r.period.to_string(),
                r.state.to_string(),
                row.fields.to_string(),
                row.open_conflicts.to_string(),
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
