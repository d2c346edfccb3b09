//! `fieldsync export` and `fieldsync plan`: totals against plan (KH), online.
//!
//! `export` streams the server's rows as CSV or JSON as they arrive, builds an
//! XLSX workbook with a sheet per level, or prints the report as the province
//! writes it ("440/458 km (đạt 96,1% KH)"). `plan` sets plan figures one at a
//! time or from a CSV file, all or none.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use fieldsync::{Catalogue, DeviceId, Level, Period};
use fieldsync_client::export::Query;
use fieldsync_client::Remote;
use fieldsync_export::{Csv, Json, Row};
use fieldsync_proto::convert;
use fieldsync_proto::v1::{ExportRequest, PlanFigure, SetPlansRequest};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{Online, Session};

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
    /// CSV: start with a UTF-8 byte-order mark, so that Excel shows Vietnamese
    /// names correctly when it opens the file.
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
        Format::Xlsx => xlsx(&s, &plan).await?,
        Format::Csv | Format::Json | Format::Report => match stream(&s, &plan).await? {
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

/// A spinner with the row count on stderr, while rows stream in. Hidden when
/// stderr is not a terminal, or when the rows themselves scroll by on it.
fn spinner(plan: &Plan) -> ProgressBar {
    let rows_on_terminal = plan.out.is_none() && std::io::stdout().is_terminal();
    if rows_on_terminal || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}: {human_pos} rows")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn fetching(bar: &ProgressBar, query: &Query) {
    let pending = if query.include_pending { ", with pending" } else { "" };
    bar.set_message(format!(
        "exporting {}-level totals for {}{pending}",
        query.level.as_str(),
        query.period
    ));
}

/// Streams the rows of `query` into `each`, counting them on `bar`. Like
/// [`fieldsync_client::export::fetch`], with the server's refusals in plain words.
async fn fetch(
    s: &Session,
    query: &Query,
    bar: &ProgressBar,
    mut each: impl FnMut(Row) -> fieldsync_client::Result<()>,
) -> anyhow::Result<usize> {
    let request = ExportRequest {
        level: convert::level_to_wire(query.level) as i32,
        period: query.period.clone(),
        area: query.area.clone().unwrap_or_default(),
        include_pending: query.include_pending,
    };
    let refused = |status| {
        bar.finish_and_clear();
        s.refused(status)
    };
    let mut stream = s.grpc.report().export(request).await.map_err(refused)?.into_inner();
    let mut n = 0;
    while let Some(row) = stream.message().await.map_err(refused)? {
        let row = Row::from_wire(row, &s.catalogue)
            .map_err(|e| anyhow::anyhow!("the server sent a row this client cannot read: {e}"))?;
        each(row)?;
        bar.inc(1);
        n += 1;
    }
    bar.finish_and_clear();
    Ok(n)
}

/// Stdout that notices when its reader goes away (`fieldsync export | head`).
struct Stdout {
    out: BufWriter<std::io::Stdout>,
    gone: Arc<AtomicBool>,
}

impl Stdout {
    fn noticed<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            if e.kind() == ErrorKind::BrokenPipe {
                self.gone.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(buf);
        self.noticed(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.out.flush();
        self.noticed(flushed)
    }
}

/// Where the rows go: stdout, or a file written beside its final name
/// (`FILE.part`) and renamed once complete, so that a failed export leaves no
/// half a file behind.
struct Out {
    writer: Box<dyn Write + Send>,
    file: Option<(PathBuf, PathBuf)>,
    /// Set when stdout's reader went away.
    gone: Arc<AtomicBool>,
}

impl Out {
    /// Stdout, or `path.part` created new: a file or link already there is
    /// never written through (`force` removes it first), and `path` itself
    /// is replaced only with `force`.
    fn open(path: Option<&Path>, force: bool) -> anyhow::Result<Out> {
        let gone = Arc::new(AtomicBool::new(false));
        let Some(path) = path else {
            let out = BufWriter::new(std::io::stdout());
            let writer = Box::new(Stdout { out, gone: Arc::clone(&gone) });
            return Ok(Out { writer, file: None, gone });
        };
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        if !force && path.exists() {
            bail!("{} exists: give --force to replace it, or another --out", path.display());
        }
        if force && part.symlink_metadata().is_ok() {
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove the old {}", part.display()))?;
        }
        let file = File::options().write(true).create_new(true).open(&part).map_err(|e| match e
            .kind()
        {
            ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} exists (left by an export that did not finish?): remove it, or give \
                     --force",
                part.display()
            ),
            _ => anyhow::Error::new(e).context(format!("cannot create {}", part.display())),
        })?;
        let writer = Box::new(BufWriter::new(file));
        Ok(Out { writer, file: Some((part, path.to_owned())), gone })
    }

    /// Renames the finished file into place, or removes it after a failure.
    fn close(self, ok: bool) -> anyhow::Result<()> {
        drop(self.writer);
        if let Some((part, path)) = self.file {
            if !ok {
                let _ = std::fs::remove_file(&part);
                return Ok(());
            }
            std::fs::rename(&part, &path)
                .with_context(|| format!("cannot move {} to {}", part.display(), path.display()))?;
        }
        Ok(())
    }
}

/// CSV, JSON or the report, written as rows arrive. `None`: stdout's reader
/// went away before the end.
async fn stream(s: &Session, plan: &Plan) -> anyhow::Result<Option<usize>> {
    let mut out = Out::open(plan.out.as_deref(), plan.force)?;
    let result = write_rows(s, plan, &mut out.writer).await;
    let gone = out.gone.load(Ordering::Relaxed);
    out.close(result.is_ok())?;
    match (result, gone) {
        (_, true) => Ok(None),
        (result, false) => result.map(Some),
    }
}

async fn write_rows(
    s: &Session,
    plan: &Plan,
    writer: &mut Box<dyn Write + Send>,
) -> anyhow::Result<usize> {
    let bar = spinner(plan);
    fetching(&bar, &plan.query);
    match plan.format {
        Format::Csv => {
            let mut csv = Csv::new(writer, plan.bom)?;
            let n = fetch(s, &plan.query, &bar, |row| Ok(csv.row(&row)?)).await?;
            csv.finish()?;
            Ok(n)
        }
        Format::Json => {
            let mut json = Json::new(writer)?;
            let n = fetch(s, &plan.query, &bar, |row| Ok(json.row(&row)?)).await?;
            json.finish()?;
            Ok(n)
        }
        _ => {
            let mut report = Report::new(s, plan, writer);
            let n = fetch(s, &plan.query, &bar, |row| report.row(row)).await?;
            report.finish()?;
            Ok(n)
        }
    }
}

/// A workbook with a sheet per level, from the top (the --area's level, else
/// the highest level of the caller's areas) down to --level. The rows at
/// --level, and the sheets.
async fn xlsx(s: &Session, plan: &Plan) -> anyhow::Result<(usize, Vec<&'static str>)> {
    let path = plan.out.as_deref().context("xlsx needs --out")?;
    let areas = match &plan.query.area {
        Some(area) => vec![area.clone()],
        None => s.grpc.clone().status(DeviceId(uuid::Uuid::nil())).await?.areas,
    };
    // The highest level any of those areas sits at; above it there is nothing of theirs.
    let top = areas
        .iter()
        .filter_map(|a| s.catalogue.org_unit(a))
        .map(|u| u.level)
        .min()
        .unwrap_or(Level::Province);
    let levels: Vec<Level> = [Level::Province, Level::District, Level::Commune, Level::Village]
        .into_iter()
        .filter(|l| *l >= top && *l <= plan.query.level)
        .collect();
    let mut sheets = Vec::new();
    let mut total = 0;
    for level in levels {
        let query = Query { level, ..plan.query.clone() };
        let bar = spinner(plan);
        fetching(&bar, &query);
        let mut rows = Vec::new();
        fetch(s, &query, &bar, |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
        if level == plan.query.level {
            total = rows.len();
        }
        if !rows.is_empty() || level == plan.query.level {
            sheets.push((level, rows));
        }
    }
    let mut out = Out::open(Some(path), plan.force)?;
    let written = fieldsync_export::xlsx_bytes(&sheets, &s.catalogue)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(out.writer.write_all(&bytes)?))
        .and_then(|()| Ok(out.writer.flush()?));
    out.close(written.is_ok())?;
    written.with_context(|| format!("cannot write {}", path.display()))?;
    Ok((total, sheets.iter().map(|(level, _)| level.as_str()).collect()))
}

/// The report, one section per org unit: a heading, then a line per
/// indicator, each whole followed by its "of which" parts.
struct Report<'a, W: Write> {
    out: W,
    catalogue: &'a Catalogue,
    session: &'a Session,
    plan: &'a Plan,
    unit: Vec<Row>,
    sections: usize,
}

impl<'a, W: Write> Report<'a, W> {
    fn new(session: &'a Session, plan: &'a Plan, out: W) -> Self {
        Report { out, catalogue: &session.catalogue, session, plan, unit: Vec::new(), sections: 0 }
    }

    fn row(&mut self, row: Row) -> fieldsync_client::Result<()> {
        if self.unit.first().is_some_and(|r| r.unit_id != row.unit_id) {
            self.section()?;
        }
        self.unit.push(row);
        Ok(())
    }

    fn section(&mut self) -> fieldsync_client::Result<()> {
        let rows = in_report_order(std::mem::take(&mut self.unit), self.catalogue);
        let Some(first) = rows.first() else { return Ok(()) };
        let place = match self.catalogue.org_unit(&first.unit_id) {
            Some(_) => self.session.place(&first.unit_id),
            None => first.unit_name.clone(),
        };
        let mut text = String::new();
        if self.sections > 0 {
            text.push('\n');
        }
        text.push_str(&fieldsync_export::section_heading(
            &place,
            &self.plan.query.period,
            self.plan.query.include_pending,
            &first.unit_id,
        ));
        text.push('\n');
        for row in &rows {
            text.push_str(&format!("  {}\n", fieldsync_export::report_line(row, self.plan.vi)));
        }
        self.sections += 1;
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| fieldsync_client::Error::Invalid(format!("cannot write the report: {e}")))
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.section()?;
        self.out.flush().context("cannot write the report")
    }
}

/// Each whole indicator followed by its "of which" parts, otherwise in the
/// server's (code) order.
fn in_report_order(rows: Vec<Row>, catalogue: &Catalogue) -> Vec<Row> {
    let whole_of = |r: &Row| catalogue.indicator(&r.indicator).and_then(|i| i.parent.clone());
    let (wholes, mut parts): (Vec<Row>, Vec<Row>) =
        rows.into_iter().partition(|r| whole_of(r).is_none());
    let mut out = Vec::with_capacity(wholes.len() + parts.len());
    for whole in wholes {
        let code = whole.indicator.clone();
        out.push(whole);
        let (mine, rest): (Vec<Row>, Vec<Row>) =
            parts.into_iter().partition(|p| whole_of(p).as_deref() == Some(code.as_str()));
        out.extend(mine);
        parts = rest;
    }
    out.extend(parts);
    out
}

/// One figure read from a plan file, and the line it came from.
#[derive(Debug)]
struct FileFigure {
    line: u64,
    figure: PlanFigure,
}

#[derive(Serialize)]
struct PlansSet {
    set: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

pub async fn plan(command: PlanCommand, online: &Online, home: &Path) -> anyhow::Result<()> {
    match command {
        PlanCommand::Set { unit, indicator, period, value } => {
            set_one(online, home, &unit, &indicator, &period, value.trim()).await
        }
        PlanCommand::Clear { unit, indicator, period } => {
            set_one(online, home, &unit, &indicator, &period, "").await
        }
        PlanCommand::Import { file } => {
            // A bad file is refused before anything is sent.
            let figures = read_plan_file(&file)?;
            let s = online.connect(home).await?;
            let request =
                SetPlansRequest { figures: figures.iter().map(|f| f.figure.clone()).collect() };
            let lines: Vec<u64> = figures.iter().map(|f| f.line).collect();
            let reply = s.grpc.report().set_plans(request).await.map_err(|status| {
                let refused = s.refused(status);
                anyhow::anyhow!(
                    "{}",
                    by_line(&refused.to_string(), &format!("lines of {}", file.display()), |row| {
                        lines.get(row.wrapping_sub(1)).map(|l| format!("line {l}"))
                    })
                )
            })?;
            let set = reply.into_inner().set;
            if s.json {
                return s.print_json(&PlansSet { set, file: Some(file.display().to_string()) });
            }
            println!("imported {set} plan figure(s) from {}", file.display());
            Ok(())
        }
    }
}

async fn set_one(
    online: &Online,
    home: &Path,
    unit: &str,
    indicator: &str,
    period: &str,
    value: &str,
) -> anyhow::Result<()> {
    let s = online.connect(home).await?;
    let figure = PlanFigure {
        unit_id: unit.trim().to_owned(),
        indicator: indicator.trim().to_owned(),
        period: period.trim().to_owned(),
        value: value.to_owned(),
    };
    let request = SetPlansRequest { figures: vec![figure.clone()] };
    let reply = s.grpc.report().set_plans(request).await.map_err(|status| {
        let refused = s.refused(status);
        // One figure: its problem alone, without "row 1".
        let text = refused.to_string();
        let problem = text
            .strip_prefix("nothing was imported; fix these rows:\nrow 1: ")
            .map_or(text.clone(), str::to_owned);
        anyhow::anyhow!("{problem}; no plan figure was changed")
    })?;
    let set = reply.into_inner().set;
    if s.json {
        return s.print_json(&PlansSet { set, file: None });
    }
    let ind = s.catalogue.indicator(&figure.indicator);
    let unit_words = match ind.map(|i| i.unit.as_str()) {
        Some("count") | None => String::new(),
        Some(u) => format!(" {u}"),
    };
    let period = figure.period.parse::<Period>().map_or(figure.period.clone(), |p| p.to_string());
    match value {
        "" => println!(
            "cleared the plan (KH) of {} for {} in {period}: no plan, no percent",
            figure.indicator,
            s.place(&figure.unit_id)
        ),
        v => println!(
            "set the plan (KH) of {} for {} in {period} to {v}{unit_words}",
            figure.indicator,
            s.place(&figure.unit_id)
        ),
    }
    Ok(())
}

/// Rewrites the server's "row N: …" lines (figures numbered from 1) with
/// `name(N)` ("line 3"), and its heading to name `what`.
fn by_line(message: &str, what: &str, name: impl Fn(usize) -> Option<String>) -> String {
    message
        .lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("nothing was imported; fix these rows:") {
                return format!("nothing was imported; fix these {what}:{rest}");
            }
            let renamed = line.strip_prefix("row ").and_then(|rest| {
                let (n, why) = rest.split_once(": ")?;
                Some(format!("{}: {why}", name(n.parse().ok()?)?))
            });
            renamed.unwrap_or_else(|| line.to_owned())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The columns of a plan file.
const PLAN_COLUMNS: [&str; 4] = ["unit_id", "indicator", "period", "value"];

/// Reads a plan file: a header row naming the columns, then one figure per
/// line. Every unreadable line is named; any makes the whole file refused.
fn read_plan_file(path: &Path) -> anyhow::Result<Vec<FileFigure>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_plans(&path.display().to_string(), &bytes)
}

/// [`read_plan_file`] on the bytes of a file called `name`.
fn parse_plans(name: &str, bytes: &[u8]) -> anyhow::Result<Vec<FileFigure>> {
    let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => bail!("cannot read {}: {e}", name),
        None => {
            bail!("{} is empty: expected a header row {}", name, PLAN_COLUMNS.join(","))
        }
    };
    let names: Vec<String> =
        header.iter().map(|h| String::from_utf8_lossy(h).trim().to_lowercase()).collect();
    let mut columns = [0usize; 4];
    for (slot, want) in columns.iter_mut().zip(PLAN_COLUMNS) {
        *slot = names.iter().position(|n| n == want).with_context(|| {
            format!(
                "{}: the header row (line 1) has no {want} column; expected {}",
                name,
                PLAN_COLUMNS.join(",")
            )
        })?;
    }
    let width = columns.iter().max().map_or(0, |m| m + 1);
    // The line a record starts on, counted from the bytes before it: the
    // reader's own count is off for CRLF files (as Excel saves them).
    let mut counted = (0usize, 1u64);
    let mut line_at = |byte: u64| {
        let mut byte = (byte as usize).min(text.len());
        // After a CR the reader starts the next record at the LF.
        if text.get(byte) == Some(&b'\n') {
            byte += 1;
        }
        if byte >= counted.0 {
            counted.1 += text[counted.0..byte].iter().filter(|b| **b == b'\n').count() as u64;
            counted.0 = byte;
        }
        counted.1
    };
    let mut problems = Vec::new();
    let mut figures: Vec<FileFigure> = Vec::new();
    let mut seen: HashMap<(String, String, String), u64> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line =
                    e.position().map_or(String::new(), |p| format!("line {}: ", line_at(p.byte())));
                problems.push(format!("{line}{e}"));
                if e.position().is_none() {
                    break; // an I/O error: nothing further can be read
                }
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if record.len() < width {
            problems.push(format!(
                "line {line}: {} field(s) where the header has {} ({})",
                record.len(),
                names.len(),
                PLAN_COLUMNS.join(",")
            ));
            continue;
        }
        let mut cells = Vec::with_capacity(4);
        for col in columns {
            match std::str::from_utf8(&record[col]) {
                Ok(text) => cells.push(text.trim().to_owned()),
                Err(_) => {
                    problems.push(format!(
                        "line {line}: the {} is not UTF-8 text (save the file as UTF-8 CSV)",
                        PLAN_COLUMNS[cells.len()]
                    ));
                    break;
                }
            }
        }
        if cells.len() < 4 {
            continue;
        }
        let period = cells[2].parse::<Period>().map_or(cells[2].clone(), |p| p.to_string());
        let key = (cells[0].clone(), cells[1].clone(), period);
        if let Some(first) = seen.insert(key, line) {
            problems.push(format!(
                "line {line}: the same unit, indicator and period as line {first}; keep one"
            ));
            continue;
        }
        let mut cells = cells.into_iter();
        let mut next = || cells.next().unwrap_or_default();
        figures.push(FileFigure {
            line,
            figure: PlanFigure {
                unit_id: next(),
                indicator: next(),
                period: next(),
                value: next(),
            },
        });
    }
    if !problems.is_empty() {
        bail!("nothing was imported; fix these lines of {}:\n{}", name, problems.join("\n"));
    }
    if figures.is_empty() {
        bail!("{} has no plan figures below its header row", name);
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_named_alike_in_lf_and_crlf_files() {
        let lf = "unit_id,indicator,period,value\nha-tinh,road_km,2022,1\n\
                  ha-tinh,road_km,2022,2\nha-tinh,road_km\n";
        for (kind, text) in [("LF", lf.to_owned()), ("CRLF", lf.replace('\n', "\r\n"))] {
            let err = parse_plans("plans.csv", text.as_bytes()).unwrap_err().to_string();
            assert!(
                err.contains("\nline 3: the same unit, indicator and period as line 2; keep one"),
                "{kind}: {err}"
            );
            assert!(err.contains("\nline 4: 2 field(s)"), "{kind}: {err}");
        }
        let ok = "\u{feff}unit_id,indicator,period,value\r\nha-tinh,road_km,2022,1\r\n\
                  ha-tinh,drainage_km,2022,2\r\n";
        let lines: Vec<u64> =
            parse_plans("p.csv", ok.as_bytes()).unwrap().iter().map(|f| f.line).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn server_rows_become_file_lines() {
        let message =
            "nothing was imported; fix these rows:\nrow 1: unknown org unit \"x\"\nrow 2: \
                       road_km: \"1,5\" is not a valid quantity";
        let lines = [2u64, 3];
        let text = by_line(message, "lines of plans.csv", |n| {
            lines.get(n.wrapping_sub(1)).map(|l| format!("line {l}"))
        });
        assert_eq!(
            text,
            "nothing was imported; fix these lines of plans.csv:\nline 2: unknown org unit \
             \"x\"\nline 3: road_km: \"1,5\" is not a valid quantity"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: std::env::var("FIELDSYNC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
            failure_persistence: None,
            ..Default::default()
        })]

        /// Any bytes get figures or a refusal, never a panic; accepted
        /// figures are trimmed, on increasing lines, each key once.
        #[test]
        fn any_plan_file_gets_figures_or_named_problems(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::string::string_regex("[a-z_.0-9 ,\"\\n\\r-]{0,12}").unwrap(),
                        proptest::prelude::any::<String>(),
                        proptest::prop_oneof![
                            proptest::strategy::Just("ha-tinh".to_owned()),
                            proptest::strategy::Just("road_km".to_owned()),
                            proptest::strategy::Just("2022".to_owned()),
                            proptest::strategy::Just("458,5".to_owned()),
                        ],
                    ],
                    0..6,
                ),
                0..8,
            ),
            header in proptest::prelude::any::<bool>(),
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let mut text = String::new();
            if header {
                text.push_str("unit_id,indicator,period,value\n");
            }
            for cells in &lines {
                text.push_str(&cells.join(","));
                text.push('\n');
            }
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&junk);
            match parse_plans("plans.csv", &bytes) {
                Ok(figures) => {
                    proptest::prop_assert!(!figures.is_empty());
                    let mut keys = std::collections::HashSet::new();
                    for pair in figures.windows(2) {
                        proptest::prop_assert!(pair[0].line < pair[1].line);
                    }
                    for f in &figures {
                        let p = &f.figure;
                        for cell in [&p.unit_id, &p.indicator, &p.period, &p.value] {
                            proptest::prop_assert_eq!(cell.trim(), cell.as_str());
                        }
                        let key = (p.unit_id.clone(), p.indicator.clone(), p.period.clone());
                        proptest::prop_assert!(keys.insert(key), "a key twice: {:?}", figures);
                    }
                }
                Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn plan_files_name_their_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.csv");
        std::fs::write(
            &path,
            "\u{feff}Indicator,unit_id,period,value,note\nroad_km,ha-tinh,2022,458,ok\n\
             road_km,ha-tinh,2022\nroad_km, ha-tinh ,2022,459,again\n\n\
             drainage_km,ha-tinh,2022,\"79.8\",\n",
        )
        .unwrap();
        let err = read_plan_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 3: 3 field(s) where the header has 5"), "{err}");
        assert!(err.contains("line 4: the same unit, indicator and period as line 2"), "{err}");
        assert!(!err.contains("line 6"), "{err}");
        std::fs::write(&path, "unit_id,indicator,period,value\nha-tinh,road_km,2022,458\n")
            .unwrap();
        let figures = read_plan_file(&path).unwrap();
        assert_eq!(figures.len(), 1);
        assert_eq!(figures[0].line, 2);
        assert_eq!(figures[0].figure.value, "458");
        std::fs::write(&path, "unit,indicator,period,value\n").unwrap();
        let err = read_plan_file(&path).unwrap_err().to_string();
        assert!(err.contains("no unit_id column"), "{err}");
    }
}
