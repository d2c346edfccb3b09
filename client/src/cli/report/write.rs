//! Writing an export as its rows arrive: CSV, JSON or the report, and the
//! XLSX workbook with a sheet per level.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use fieldsync::{Catalogue, Level};
use fieldsync_client::api::Query;
use fieldsync_export::{Csv, Json, Row, XlsxTitle};
use indicatif::{ProgressBar, ProgressStyle};

use super::out::Out;
use super::{Format, Plan};
use crate::cli::Session;

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

/// Streams the rows of `query` into `each`, counting them on `bar`, with
/// the server's refusals in plain words.
async fn fetch(
    s: &Session,
    query: &Query,
    bar: &ProgressBar,
    mut each: impl FnMut(Row) -> fieldsync_client::Result<()>,
) -> anyhow::Result<usize> {
    let refused = |e| {
        bar.finish_and_clear();
        s.refused(e)
    };
    let mut rows = s.api.export(&s.catalogue, query).await.map_err(refused)?;
    let mut n = 0;
    while let Some(row) = rows.next().await.map_err(refused)? {
        each(row)?;
        bar.inc(1);
        n += 1;
    }
    bar.finish_and_clear();
    Ok(n)
}

/// CSV, JSON or the report, written as rows arrive. `None`: stdout's reader
/// went away before the end.
pub(super) async fn stream(s: &Session, plan: &Plan) -> anyhow::Result<Option<usize>> {
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
            // --bom: the file a person opens in Excel, in Vietnamese.
            let mut csv =
                if plan.bom { Csv::for_people(writer)? } else { Csv::new(writer, false)? };
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
/// --level, and the names of the sheets.
pub(super) async fn xlsx(s: &Session, plan: &Plan) -> anyhow::Result<(usize, Vec<String>)> {
    let path = plan.out.as_deref().context("xlsx needs --out")?;
    let areas = match &plan.query.area {
        Some(area) => vec![area.clone()],
        None => s.api.status().await?.areas,
    };
    // The highest level any of those areas sits at; above it there is nothing of theirs.
    let top = areas
        .iter()
        .filter_map(|a| s.catalogue.org_unit(a))
        .map(|u| u.level)
        .min()
        .unwrap_or(Level::Province);
    // A level the report's tree lacks (districts since 1 July 2025) has no
    // rows, and gets no sheet.
    let levels: Vec<Level> =
        Level::ALL.into_iter().filter(|l| *l >= top && *l <= plan.query.level).collect();
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
    let title = XlsxTitle {
        area: area_names(&s.catalogue, &areas),
        period: plan.query.period.clone(),
        include_pending: plan.query.include_pending,
        exported_on: fieldsync::Date::in_vietnam(fieldsync_client::now_ms()),
    };
    let mut out = Out::open(Some(path), plan.force)?;
    let written = fieldsync_export::xlsx_bytes(&sheets, &s.catalogue, &title)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(out.writer.write_all(&bytes)?))
        .and_then(|()| Ok(out.writer.flush()?));
    out.close(written.is_ok())?;
    written.with_context(|| format!("cannot write {}", path.display()))?;
    Ok((total, sheets.iter().map(|(level, _)| fieldsync_export::sheet_name(*level)).collect()))
}

/// The areas a workbook is of, by name, for its title; every province when
/// the caller has no areas of their own.
fn area_names(catalogue: &Catalogue, areas: &[String]) -> String {
    let names: Vec<&str> = match areas {
        [] => catalogue.units_at(Level::Province, None).iter().map(|u| u.name.as_str()).collect(),
        _ => areas
            .iter()
            .map(|a| catalogue.org_unit(a).map_or(a.as_str(), |u| u.name.as_str()))
            .collect(),
    };
    names.join(", ")
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
        let rows =
            fieldsync_export::in_report_order(std::mem::take(&mut self.unit), self.catalogue);
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
            self.plan.vi,
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
