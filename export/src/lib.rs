//! Writers of totals against plan, for every program that writes them (the
//! `fieldsync export` command, the server's web downloads, the demo): CSV
//! (UTF-8, optional BOM for Excel), JSON for programs, XLSX with a sheet per
//! level, and the report as the province writes it ("440/458 km (đạt 96,1%
//! KH)"). The rows are the `Report` service's export rows, whose totals and
//! percent the core computes (`fieldsync::rollup`); CSV and JSON are written
//! as they come, the XLSX workbook into memory. Every spreadsheet cell of
//! text goes through [`spreadsheet_text`] (CSV) or is written as a string
//! cell (XLSX), so no file fieldsync writes runs a formula.
//!
//! [`text`] holds the small text renderings both binaries print (the QR code
//! for a terminal), so that neither needs the other's crate for them.

use std::io::Write;

use fieldsync::rollup::{vietnamese, Percent};
use fieldsync::{Amount, Catalogue, Level};
use fieldsync_proto::convert;
use fieldsync_proto::v1::TotalRow;
use serde::Serialize;

pub mod text;

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row from the server this version cannot read (an unknown level).
    #[error(transparent)]
    Row(#[from] fieldsync::Error),
    /// The writer, or the workbook, failed.
    #[error("cannot write the export: {0}")]
    Write(String),
}

/// The result of the writers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One org unit × indicator of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub level: String,
    pub unit_id: String,
    pub unit_name: String,
    pub parent_id: String,
    pub indicator: String,
    pub indicator_name: String,
    pub unit: String,
    /// The total counted (approved, or with `--include-pending` also pending).
    pub done: String,
    pub plan: String,
    /// Percent of plan to one decimal; empty without a plan.
    pub percent: String,
    pub approved: String,
    pub pending: String,
    pub approved_count: u32,
    pub pending_count: u32,
    pub conflict_count: u32,
    /// An "of which" part above its whole.
    pub exceeds_whole: bool,
}

/// One org unit × indicator of totals against plan, in domain terms: what
/// the server's report use case computes (percent and the "of which" check
/// included) and the wire's `TotalRow` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitTotal {
    pub unit_id: String,
    pub unit_name: String,
    /// `None` for a unit the catalogue no longer has.
    pub level: Option<Level>,
    pub parent_id: String,
    pub indicator: String,
    /// The total counted (approved, or also pending when asked).
    pub done: Amount,
    pub plan: Option<Amount>,
    pub percent: Option<Percent>,
    pub approved: Amount,
    pub pending: Amount,
    pub approved_count: u32,
    pub pending_count: u32,
    pub conflict_count: u32,
    /// An "of which" part above its whole.
    pub exceeds_whole: bool,
}

impl Row {
    /// A row of the server's own totals, named from the catalogue, as
    /// [`Row::from_wire`] names the same row received over the wire.
    pub fn from_total(t: &UnitTotal, catalogue: &Catalogue) -> Result<Row> {
        // As the wire says it: level 0 for a unit the catalogue lacks.
        let level =
            t.level.ok_or_else(|| fieldsync::Error::Invalid("unknown org unit level 0".into()))?;
        let ind = catalogue.indicator(&t.indicator);
        Ok(Row {
            level: level.as_str().into(),
            unit_id: t.unit_id.clone(),
            unit_name: t.unit_name.clone(),
            parent_id: t.parent_id.clone(),
            indicator_name: ind.map(|i| i.name_vi.clone()).unwrap_or_default(),
            unit: ind.map(|i| i.unit.clone()).unwrap_or_default(),
            indicator: t.indicator.clone(),
            done: t.done.to_string(),
            plan: t.plan.map(|p| p.to_string()).unwrap_or_default(),
            percent: t.percent.map(|p| p.to_string()).unwrap_or_default(),
            approved: t.approved.to_string(),
            pending: t.pending.to_string(),
            approved_count: t.approved_count,
            pending_count: t.pending_count,
            conflict_count: t.conflict_count,
            exceeds_whole: t.exceeds_whole,
        })
    }

    /// A row as the server sent it, named from the catalogue.
    pub fn from_wire(r: TotalRow, catalogue: &Catalogue) -> Result<Row> {
        let level = convert::level_from_wire(r.level)?;
        let ind = catalogue.indicator(&r.indicator);
        Ok(Row {
            level: level.as_str().into(),
            unit_id: r.unit_id,
            unit_name: r.unit_name,
            parent_id: r.parent_id,
            indicator_name: ind.map(|i| i.name_vi.clone()).unwrap_or_default(),
            unit: ind.map(|i| i.unit.clone()).unwrap_or_default(),
            indicator: r.indicator,
            done: r.done,
            plan: r.plan,
            percent: r
                .percent_tenths
                .map(|t| Percent { tenths: t }.to_string())
                .unwrap_or_default(),
            approved: r.approved,
            pending: r.pending,
            approved_count: r.approved_count,
            pending_count: r.pending_count,
            conflict_count: r.conflict_count,
            exceeds_whole: r.exceeds_whole,
        })
    }
}

fn io(e: impl std::fmt::Display) -> Error {
    Error::Write(e.to_string())
}

/// The CSV header: the field names of [`Row`], in order.
pub const CSV_HEADER: [&str; 16] = [
    "level",
    "unit_id",
    "unit_name",
    "parent_id",
    "indicator",
    "indicator_name",
    "unit",
    "done",
    "plan",
    "percent",
    "approved",
    "pending",
    "approved_count",
    "pending_count",
    "conflict_count",
    "exceeds_whole",
];

/// Text for a spreadsheet cell, the one policy of every CSV fieldsync
/// writes (`export --format csv`, the web pages' progress and review queue
/// downloads): text a
/// spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return) gets a leading apostrophe, so that opening
/// the file runs nothing.
pub fn spreadsheet_text(text: &str) -> std::borrow::Cow<'_, str> {
    match text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => format!("'{text}").into(),
        false => text.into(),
    }
}

/// Most characters an XLSX cell holds; longer text (from a store written
/// before names were capped) is cut there rather than failing the workbook.
pub const XLSX_CELL_CHARS: usize = 32_767;

fn xlsx_text(text: &str) -> &str {
    match text.char_indices().nth(XLSX_CELL_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Writes rows as CSV, one per org unit × indicator.
pub struct Csv<W: Write> {
    writer: csv::Writer<W>,
    rows: usize,
}

impl<W: Write> Csv<W> {
    /// `bom`: start with a UTF-8 byte-order mark so Excel reads Vietnamese
    /// names correctly.
    pub fn new(mut out: W, bom: bool) -> Result<Self> {
        if bom {
            out.write_all("\u{feff}".as_bytes()).map_err(io)?;
        }
        Ok(Csv { writer: csv::Writer::from_writer(out), rows: 0 })
    }

    pub fn row(&mut self, row: &Row) -> Result<()> {
        self.rows += 1;
        let text = |t: &str| spreadsheet_text(t).into_owned();
        let safe = Row {
            unit_id: text(&row.unit_id),
            unit_name: text(&row.unit_name),
            parent_id: text(&row.parent_id),
            indicator: text(&row.indicator),
            indicator_name: text(&row.indicator_name),
            unit: text(&row.unit),
            ..row.clone()
        };
        self.writer.serialize(safe).map_err(io)
    }

    /// Flushes; a file without rows still gets its header row.
    pub fn finish(mut self) -> Result<()> {
        if self.rows == 0 {
            self.writer.write_record(CSV_HEADER).map_err(io)?;
        }
        self.writer.flush().map_err(io)
    }
}

/// Writes rows as one JSON array, as they come.
pub struct Json<W: Write> {
    out: W,
    first: bool,
}

impl<W: Write> Json<W> {
    pub fn new(mut out: W) -> Result<Self> {
        out.write_all(b"[").map_err(io)?;
        Ok(Json { out, first: true })
    }

    pub fn row(&mut self, row: &Row) -> Result<()> {
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.out.write_all(sep).map_err(io)?;
        serde_json::to_writer(&mut self.out, row).map_err(io)
    }

    pub fn finish(mut self) -> Result<()> {
        self.out.write_all(b"\n]\n").map_err(io)?;
        self.out.flush().map_err(io)
    }
}

/// An XLSX workbook with one sheet per level, as the bytes of the file: a
/// row per org unit and, per indicator, done / plan / % columns headed with
/// the unit; numbers are numbers. Built in memory (`save_to_buffer`), so no
/// temporary file is written.
pub fn xlsx_bytes(levels: &[(Level, Vec<Row>)], catalogue: &Catalogue) -> Result<Vec<u8>> {
    workbook(levels, catalogue)?.save_to_buffer().map_err(io)
}

fn workbook(
    levels: &[(Level, Vec<Row>)],
    catalogue: &Catalogue,
) -> Result<rust_xlsxwriter::Workbook> {
    use rust_xlsxwriter::{Format, Workbook};
    let xl = |e: rust_xlsxwriter::XlsxError| io(e);
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    for (level, rows) in levels {
        let sheet = book.add_worksheet();
        sheet.set_name(level.as_str()).map_err(xl)?;
        sheet.write_string_with_format(0, 0, "id", &bold).map_err(xl)?;
        sheet.write_string_with_format(0, 1, "name", &bold).map_err(xl)?;
        let codes: Vec<&String> = catalogue.indicators_in_order().map(|i| &i.code).collect();
        for (i, code) in codes.iter().enumerate() {
            let ind = &catalogue.indicators[*code];
            let col = 2 + 3 * i as u16;
            let head = format!("{} ({})", ind.name_vi, ind.unit);
            sheet.write_string_with_format(0, col, xlsx_text(&head), &bold).map_err(xl)?;
            let plan = format!("KH ({})", ind.unit);
            sheet.write_string_with_format(0, col + 1, xlsx_text(&plan), &bold).map_err(xl)?;
            sheet.write_string_with_format(0, col + 2, "% KH", &bold).map_err(xl)?;
        }
        // The rows of one unit arrive together: one pass, one sheet row per unit.
        let (mut row, mut current) = (0u32, None::<&str>);
        for r in rows {
            if current != Some(r.unit_id.as_str()) {
                row += 1;
                current = Some(&r.unit_id);
                sheet.write_string(row, 0, xlsx_text(&r.unit_id)).map_err(xl)?;
                sheet.write_string(row, 1, xlsx_text(&r.unit_name)).map_err(xl)?;
            }
            let Some(i) = codes.iter().position(|c| **c == r.indicator) else { continue };
            let col = 2 + 3 * i as u16;
            let number = |text: &str| text.parse::<f64>().ok();
            if let Some(done) = number(&r.done) {
                sheet.write_number(row, col, done).map_err(xl)?;
            }
            if let Some(plan) = number(&r.plan) {
                sheet.write_number(row, col + 1, plan).map_err(xl)?;
            }
            if let Some(pct) = number(&r.percent) {
                sheet.write_number(row, col + 2, pct).map_err(xl)?;
            }
        }
    }
    Ok(book)
}

/// The title of the province's report of its infrastructure for a year, as
/// the demo prints it: "Kết cấu hạ tầng — Tỉnh Hà Tĩnh, năm 2022".
pub fn report_title(place: &str, year: &str) -> String {
    format!("Kết cấu hạ tầng — {place}, năm {year}")
}

/// The heading of one org unit's section of the report `fieldsync export
/// --format report` prints: "Phúc Đồng, Hương Khê — 2022 (ha-tinh.huong-khe.phuc-dong)",
/// saying so when pending reports are counted.
pub fn section_heading(place: &str, period: &str, include_pending: bool, unit_id: &str) -> String {
    let counted = if include_pending { ", approved and pending" } else { "" };
    format!("{place} — {period}{counted} ({unit_id})")
}

/// The report as the province writes it, one line per org unit × indicator:
/// "Đường giao thông …: 440/458 km (đạt 96,1% KH)". `vi`: Vietnamese number
/// format (1.960,5).
pub fn report_line(row: &Row, vi: bool) -> String {
    let show = |text: &str| match (vi, text.parse::<Amount>()) {
        (true, Ok(a)) => vietnamese(a),
        _ => text.to_owned(),
    };
    let unit = match row.unit.as_str() {
        "count" => String::new(),
        u => format!(" {u}"),
    };
    let mut line = match row.plan.as_str() {
        "" => format!("{}{unit}", show(&row.done)),
        plan => format!("{}/{}{unit}", show(&row.done), show(plan)),
    };
    if let Ok(tenths) = row.percent.replace('.', "").parse::<i64>() {
        let pct = Percent { tenths };
        line.push_str(&match vi {
            true => format!(" (đạt {}% KH)", pct.format(true)),
            false => format!(" ({}% of plan)", pct.format(false)),
        });
    }
    let mut notes = Vec::new();
    if row.pending_count > 0 {
        // Whether the total counts them: it does when it is above the approved.
        let counted = match (row.done.parse::<Amount>(), row.approved.parse::<Amount>()) {
            (Ok(done), Ok(approved)) => done != approved,
            _ => false,
        };
        notes.push(match counted {
            true => format!("incl. {} pending", row.pending_count),
            false => format!("{} pending, not counted", row.pending_count),
        });
    }
    if row.conflict_count > 0 {
        notes.push(format!("{} in conflict", row.conflict_count));
    }
    if row.exceeds_whole {
        notes.push("exceeds its whole!".into());
    }
    if !notes.is_empty() {
        line.push_str(&format!(" [{}]", notes.join(", ")));
    }
    format!("{}: {line}", row.indicator_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(done: &str, plan: &str, percent: &str) -> Row {
        Row {
            level: "province".into(),
            unit_id: "ha-tinh".into(),
            unit_name: "Tỉnh Hà Tĩnh".into(),
            parent_id: String::new(),
            indicator: "road_cement_km".into(),
            indicator_name: "Trong đó: theo cơ chế hỗ trợ xi măng".into(),
            unit: "km".into(),
            done: done.into(),
            plan: plan.into(),
            percent: percent.into(),
            approved: done.into(),
            pending: "0".into(),
            approved_count: 3,
            pending_count: 0,
            conflict_count: 0,
            exceeds_whole: false,
        }
    }

    #[test]
    fn report_lines_read_as_the_province_writes_them() {
        let r = row("440", "458", "96.1");
        assert_eq!(
            report_line(&r, true),
            "Trong đó: theo cơ chế hỗ trợ xi măng: 440/458 km (đạt 96,1% KH)"
        );
        let r = row("1960.5", "", "");
        assert_eq!(report_line(&r, true), "Trong đó: theo cơ chế hỗ trợ xi măng: 1.960,5 km");
        assert_eq!(report_line(&r, false), "Trong đó: theo cơ chế hỗ trợ xi măng: 1960.5 km");
        let mut r = row("440", "458", "96.1");
        r.pending = "2".into();
        r.pending_count = 1;
        assert!(report_line(&r, true).ends_with("(đạt 96,1% KH) [1 pending, not counted]"));
        r.done = "442".into();
        r.percent = "96.5".into();
        assert!(report_line(&r, true).ends_with("442/458 km (đạt 96,5% KH) [incl. 1 pending]"));
    }

    #[test]
    fn titles_and_headings_read_as_the_report_prints_them() {
        assert_eq!(
            report_title("Tỉnh Hà Tĩnh", "2022"),
            "Kết cấu hạ tầng — Tỉnh Hà Tĩnh, năm 2022"
        );
        assert_eq!(
            section_heading("Phúc Đồng, Hương Khê", "2022", false, "ha-tinh.huong-khe.phuc-dong"),
            "Phúc Đồng, Hương Khê — 2022 (ha-tinh.huong-khe.phuc-dong)"
        );
        assert_eq!(
            section_heading("Hương Khê", "2022-Q1", true, "ha-tinh.huong-khe"),
            "Hương Khê — 2022-Q1, approved and pending (ha-tinh.huong-khe)"
        );
    }

    #[test]
    fn csv_keeps_diacritics_and_exact_decimals() {
        let mut out = Vec::new();
        let mut csv = Csv::new(&mut out, true).unwrap();
        csv.row(&row("0.3", "458", "0.1")).unwrap();
        csv.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with('\u{feff}'));
        let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[2], "Tỉnh Hà Tĩnh");
        assert_eq!(&record[7], "0.3");
        assert_eq!(reader.headers().unwrap(), &csv::StringRecord::from(CSV_HEADER.to_vec()));
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_start_with_an_apostrophe() {
        let mut formula = row("1", "2", "50");
        formula.unit_name = "=HYPERLINK(\"http://example.com\",\"xem\")".into();
        formula.indicator_name = "@SUM(A1)".into();
        formula.unit = "-1+2".into();
        let mut out = Vec::new();
        let mut csv = Csv::new(&mut out, false).unwrap();
        csv.row(&formula).unwrap();
        csv.finish().unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let headers = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let get = |name: &str| &record[headers.iter().position(|h| h == name).unwrap()];
        assert_eq!(get("unit_name"), "'=HYPERLINK(\"http://example.com\",\"xem\")");
        assert_eq!(get("indicator_name"), "'@SUM(A1)");
        assert_eq!(get("unit"), "'-1+2");
        assert_eq!((get("done"), get("plan")), ("1", "2"), "numbers stay numbers");
        assert_eq!(spreadsheet_text("Thôn 1"), "Thôn 1");
    }

    #[test]
    fn a_name_longer_than_a_cell_holds_is_cut_rather_than_failing_the_workbook() {
        // A store written before names were capped may hold one.
        let mut long = row("1", "2", "50");
        long.level = "village".into();
        long.unit_name = "Thôn ".repeat(8_000);
        let catalogue = fieldsync::demo::catalogue();
        let bytes = xlsx_bytes(&[(Level::Village, vec![long])], &catalogue).unwrap();
        use calamine::Reader;
        let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let sheet = book.worksheet_range("village").unwrap();
        let name = sheet.get_value((1, 1)).unwrap().to_string();
        assert_eq!(name.chars().count(), XLSX_CELL_CHARS);
    }

    #[test]
    fn csv_without_rows_still_has_its_header() {
        let mut out = Vec::new();
        Csv::new(&mut out, false).unwrap().finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim_end(), CSV_HEADER.join(","));
    }
}
