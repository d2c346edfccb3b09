//! `fieldsync export` and `fieldsync plan`: totals against plan (KH), online.
//!
//! `export` streams the server's rows as CSV or JSON as they arrive, builds an
//! XLSX workbook with a sheet per level, or prints the report as the province
//! writes it ("440/458 km (đạt 96,1% KH)") ([`write`], into the files of
//! [`out`]). `plan` sets plan figures one at a time or from a CSV file, all
//! or none ([`plan`]). The calls are `fieldsync_client::api`'s.

mod out;
mod plan;
mod write;

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use fieldsync::{Level, Period};
use fieldsync_client::api::Query;

pub use plan::plan;

use super::Online;

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One row per org unit × indicator: done, plan, percent, counts (UTF-8).
    Csv,
    /// The same rows as one JSON array, for programs.
    Json,
    /// A workbook with a sheet per level from the top down to --level (needs --out).
    Xlsx,
    /// The report as the province writes it: "440/458 km (đạt 96,1% KH)".
    Report,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
            Format::Report => "report",
        }
    }

    /// The format a file name asks for: "totals.xlsx" → xlsx.
    fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "xlsx" => Some(Format::Xlsx),
            "txt" => Some(Format::Report),
            _ => None,
        }
    }
}

/// An org-unit level on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Province,
    District,
    Commune,
    Village,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Province => Level::Province,
            LevelArg::District => Level::District,
            LevelArg::Commune => Level::Commune,
            LevelArg::Village => Level::Village,
        }
    }
}

/// `fieldsync export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// One row (or report section) per org unit at this level.
    #[arg(long, value_enum)]
    level: LevelArg,
    /// The period: 2022, 2022-Q3 or 2022-07.
    #[arg(long)]
    period: String,
    /// Only this org unit and what lies below it [default: all of your areas].
    #[arg(long, value_name = "ID")]
    area: Option<String>,
    /// Count submitted, not yet approved reports too.
    #[arg(long)]
    include_pending: bool,
    /// Report on the org tree in force on this day (e.g. 2026-01-01: 2022
    /// restated under today's communes, village by village) [default: the
    /// tree in force on the period's last day, e.g. 2022 by its districts].
    #[arg(long, value_name = "YYYY-MM-DD")]
    tree_date: Option<String>,
    /// csv, json, xlsx or report [default: from the extension of --out (.csv,
    /// .json, .xlsx, .txt), else report].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write to this file instead of stdout (needed for xlsx). CSV, JSON and
    /// the report go to FILE.part first, renamed once complete.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace FILE if it exists (and a FILE.part left by an export that
    /// did not finish); without it an existing file is refused.
    #[arg(long)]
    force: bool,
    /// CSV for people: a UTF-8 byte-order mark (so that Excel shows Vietnamese
    /// names), Vietnamese headers and level names. Without it the CSV is for
    /// programs: stable English column names and level codes.
    #[arg(long)]
    bom: bool,
    /// Report: Vietnamese number format, "1.960,5 km (đạt 96,1% KH)" (the default).
    #[arg(long, overrides_with = "no_vi")]
    vi: bool,
    /// Report: plain numbers, "1960.5 km (96.1% of plan)".
    #[arg(long, overrides_with = "vi")]
    no_vi: bool,
}

/// `fieldsync plan ...`.
#[derive(Subcommand)]
pub enum PlanCommand {
    /// Set one plan (KH) figure, e.g. `plan set ha-tinh road_cement_km 2022 458`.
    Set {
        /// The org unit id (province, district, commune or village).
        unit: String,
        /// The indicator code (see `fieldsync indicators`).
        indicator: String,
        /// 2022, 2022-Q3 or 2022-07.
        period: String,
        /// A plain decimal with a dot: 458, 79.8.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Remove one plan figure: the unit then has no plan and no percent.
    Clear { unit: String, indicator: String, period: String },
    /// Set the plan figures of a CSV file, all or none. Columns (header row
    /// required, any order, others ignored): unit_id, indicator, period, value;
    /// UTF-8 with or without a BOM; an empty value clears a figure.
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
    },
}

/// What `export` was asked for, checked before connecting.
struct Plan {
    query: Query,
    format: Format,
    out: Option<PathBuf>,
    force: bool,
    bom: bool,
    vi: bool,
}

impl Plan {
    fn of(args: ExportArgs, json: bool) -> anyhow::Result<Plan> {
        let period: Period = args.period.trim().parse()?;
        let out = args.out.filter(|p| p.as_os_str() != "-");
        let guessed = out.as_deref().and_then(Format::of_path);
        let format = match (args.format, json) {
            (Some(f), true) if f != Format::Json => {
                bail!("--json asks for --format json, but --format {} was given", f.name())
            }
            (Some(f), _) => f,
            (None, true) => Format::Json,
            (None, false) => guessed.unwrap_or(Format::Report),
        };
        if format == Format::Xlsx && out.is_none() {
            bail!("--format xlsx writes a file: give --out FILE.xlsx");
        }
        if args.bom && format != Format::Csv {
            bail!("--bom is for --format csv (so that Excel reads Vietnamese names)");
        }
        if (args.vi || args.no_vi) && format != Format::Report {
            bail!(
                "--vi and --no-vi change the numbers of --format report only; CSV, JSON and XLSX \
                 keep plain numbers (1960.5) that programs and Excel read as numbers"
            );
        }
        let query = Query {
            level: args.level.into(),
            period: period.to_string(),
            area: args.area.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()),
            include_pending: args.include_pending,
            tree_date: args.tree_date.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()),
        };
        if let Some(path) = out.as_deref().filter(|p| !args.force && p.exists()) {
            bail!("{} exists: give --force to replace it, or another --out", path.display());
        }
        Ok(Plan { query, format, out, force: args.force, bom: args.bom, vi: !args.no_vi })
    }
}

pub async fn export(args: ExportArgs, online: &Online, home: &Path) -> anyhow::Result<()> {
    let plan = Plan::of(args, online.json)?;
    let s = online.connect(home).await?;
    if let Some(area) = plan.query.area.as_deref().and_then(|a| s.catalogue.org_unit(a)) {
        if area.level > plan.query.level {
            bail!(
                "{} ({}) is a {}: it holds no {}-level units; choose --level {} or lower",
                area.name,
                area.id,
                area.level.as_str(),
                plan.query.level.as_str(),
                area.level.as_str()
            );
        }
    }
    let (rows, sheets) = match plan.format {
        Format::Xlsx => write::xlsx(&s, &plan).await?,
        Format::Csv | Format::Json | Format::Report => match write::stream(&s, &plan).await? {
            Some(rows) => (rows, Vec::new()),
            None => return Ok(()), // stdout was closed (`| head`): nothing more to say
        },
    };
    if rows == 0 {
        let place = match &plan.query.area {
            Some(a) => s.place(a),
            None => "your areas".into(),
        };
        eprintln!(
            "note: nothing to export: no {}-level unit in {place}",
            plan.query.level.as_str()
        );
    }
    if let Some(path) = &plan.out {
        let sheets = match sheets.as_slice() {
            [] => String::new(),
            names => format!(" (sheets: {})", names.join(", ")),
        };
        println!("wrote {rows} row(s) to {}{sheets}", path.display());
    }
    Ok(())
}
