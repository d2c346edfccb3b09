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
use fieldsync::{Amount, Catalogue, Date, Level, Period};
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

/// The header of the CSV for people ([`Csv::for_people`]): [`CSV_HEADER`]'s
/// columns, in Vietnamese, with their units.
pub const CSV_HEADER_VI: [&str; 16] = [
    "Cấp",
    "Mã đơn vị",
    "Tên đơn vị",
    "Mã đơn vị cấp trên",
    "Mã chỉ tiêu",
    "Chỉ tiêu",
    "Đơn vị tính",
    "Thực hiện",
    "KH",
    "% KH",
    "Đã duyệt",
    "Chờ duyệt",
    "Số báo cáo đã duyệt",
    "Số báo cáo chờ duyệt",
    "Số xung đột",
    "Phần vượt tổng",
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

/// Writes rows as CSV, one per org unit × indicator: for programs
/// ([`Csv::new`]: [`CSV_HEADER`]'s stable English names, levels by code) or
/// for people ([`Csv::for_people`]).
pub struct Csv<W: Write> {
    writer: csv::Writer<W>,
    rows: usize,
    people: bool,
}

impl<W: Write> Csv<W> {
    /// `bom`: start with a UTF-8 byte-order mark so Excel reads Vietnamese
    /// names correctly.
    pub fn new(mut out: W, bom: bool) -> Result<Self> {
        if bom {
            out.write_all("\u{feff}".as_bytes()).map_err(io)?;
        }
        Ok(Csv { writer: csv::Writer::from_writer(out), rows: 0, people: false })
    }

    /// The CSV a person opens in Excel, as Excel on a Vietnamese system
    /// saves one: a byte-order mark, `;` between fields and decimals with a
    /// comma (0,68; no thousands dots, so every cell reads as a number), the
    /// header in Vietnamese ([`CSV_HEADER_VI`]), levels by name (Thôn,
    /// Xã…), "có" for a part above its whole. The same rows in the same
    /// order as [`Csv::new`].
    pub fn for_people(mut out: W) -> Result<Self> {
        out.write_all("\u{feff}".as_bytes()).map_err(io)?;
        let mut writer = csv::WriterBuilder::new().delimiter(b';').from_writer(out);
        writer.write_record(CSV_HEADER_VI).map_err(io)?;
        Ok(Csv { writer, rows: 0, people: true })
    }

    pub fn row(&mut self, row: &Row) -> Result<()> {
        self.rows += 1;
        if self.people {
            return self.person_row(row);
        }
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

    fn person_row(&mut self, row: &Row) -> Result<()> {
        let text = |t: &str| spreadsheet_text(t).into_owned();
        let level = Level::parse(&row.level).map_or(row.level.clone(), sheet_name);
        let record = [
            level,
            text(&row.unit_id),
            text(&row.unit_name),
            text(&row.parent_id),
            text(&row.indicator),
            text(&row.indicator_name),
            text(&row.unit),
            comma(&row.done),
            comma(&row.plan),
            comma(&row.percent),
            comma(&row.approved),
            comma(&row.pending),
            row.approved_count.to_string(),
            row.pending_count.to_string(),
            row.conflict_count.to_string(),
            if row.exceeds_whole { "có".into() } else { String::new() },
        ];
        self.writer.write_record(record).map_err(io)
    }

    /// Flushes; a file without rows still gets its header row.
    pub fn finish(mut self) -> Result<()> {
        if self.rows == 0 && !self.people {
            self.writer.write_record(CSV_HEADER).map_err(io)?;
        }
        self.writer.flush().map_err(io)
    }
}

/// A plain decimal with a comma for its point, as Vietnamese Excel reads
/// numbers: "0,68".
fn comma(decimal: &str) -> String {
    decimal.replacen('.', ",", 1)
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

/// What the title row above each sheet of an XLSX workbook says:
/// "Tiến độ thực hiện — Huyện Hương Khê — năm 2022 — xuất ngày 04/12/2026".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XlsxTitle {
    /// The area the totals are of, by name ("Huyện Hương Khê"; several
    /// joined with ", ").
    pub area: String,
    /// The period as asked for ("2022", "2022-Q3", "2022-07"), written in
    /// words ([`period_vi`]).
    pub period: String,
    /// Whether the totals count reports still waiting for review: a filed
    /// copy must say so.
    pub include_pending: bool,
    /// The day of the export in Vietnam ([`Date::in_vietnam`]).
    pub exported_on: Date,
}

impl XlsxTitle {
    /// The title as the sheets show it.
    pub fn text(&self) -> String {
        let pending =
            if self.include_pending { " (tính cả báo cáo chờ duyệt)" } else { "" };
        let Date { year, month, day } = self.exported_on;
        format!(
            "Tiến độ thực hiện — {} — {}{pending} — xuất ngày {day:02}/{month:02}/{year}",
            self.area,
            period_vi(&self.period)
        )
    }
}

/// A period in words: "năm 2022", "quý III năm 2022", "tháng 7 năm 2022";
/// text that is no period, as it is.
pub fn period_vi(period: &str) -> String {
    match period.parse::<Period>() {
        Ok(Period::Year(y)) => format!("năm {y}"),
        Ok(Period::Quarter(y, q)) => {
            let q = match q {
                1 => "I",
                2 => "II",
                3 => "III",
                _ => "IV",
            };
            format!("quý {q} năm {y}")
        }
        Ok(Period::Month(y, m)) => format!("tháng {m} năm {y}"),
        Err(_) => period.to_owned(),
    }
}

/// The sheet of a level, named as the province names the level: Tỉnh,
/// Huyện, Xã, Thôn (the first of [`Level::kinds_vi`], capitalised).
pub fn sheet_name(level: Level) -> String {
    let kind = level.kinds_vi().first().copied().unwrap_or(level.as_str());
    let mut chars = kind.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// An XLSX workbook with one sheet per level ([`sheet_name`]), as the bytes
/// of the file, ready to file: the title row, then a row per org unit (code,
/// name, the unit it belongs to) with done / plan / % of plan under each
/// indicator's name, the unit in the headings, and a "Tổng cộng" row of the
/// sums. Numbers are numbers (% as percent cells); the headings are frozen
/// and print on every page. Built in memory (`save_to_buffer`), so no
/// temporary file is written.
pub fn xlsx_bytes(
    levels: &[(Level, Vec<Row>)],
    catalogue: &Catalogue,
    title: &XlsxTitle,
) -> Result<Vec<u8>> {
    workbook(levels, catalogue, title)?.save_to_buffer().map_err(io)
}

/// Rows above a sheet's units: the title, the indicators' names, and the
/// done / plan / % headings under them.
const HEAD_ROWS: u32 = 3;
/// Columns before the indicators': Mã, Tên, Trực thuộc.
const UNIT_COLS: u16 = 3;

/// The formats of a workbook's cells.
struct Styles {
    title: rust_xlsxwriter::Format,
    head: rust_xlsxwriter::Format,
    text: rust_xlsxwriter::Format,
    total_text: rust_xlsxwriter::Format,
    percent: rust_xlsxwriter::Format,
    total_percent: rust_xlsxwriter::Format,
}

impl Styles {
    fn new() -> Styles {
        use rust_xlsxwriter::{Format, FormatAlign, FormatBorder};
        let cell = Format::new().set_border(FormatBorder::Thin);
        let percent = cell.clone().set_num_format("0.0%");
        Styles {
            title: Format::new().set_bold().set_font_size(13),
            head: cell
                .clone()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_background_color(0xF2F2F2),
            total_text: cell.clone().set_bold(),
            text: cell,
            total_percent: percent.clone().set_bold(),
            percent,
        }
    }

    /// Amounts of an indicator, with its decimals: 1.960,50 km, 12 houses.
    fn number(scale: u8, total: bool) -> rust_xlsxwriter::Format {
        use rust_xlsxwriter::{Format, FormatBorder};
        let digits = "0".repeat(usize::from(scale));
        let code = if digits.is_empty() { "#,##0".to_owned() } else { format!("#,##0.{digits}") };
        let format = Format::new().set_border(FormatBorder::Thin).set_num_format(code);
        if total {
            format.set_bold()
        } else {
            format
        }
    }
}

/// An indicator's unit as a heading shows it: " (km)"; nothing for counts.
fn unit_label(ind: &fieldsync::Indicator) -> String {
    match ind.unit.as_str() {
        "" | "count" => String::new(),
        u => format!(" ({u})"),
    }
}

/// An exact decimal as the number a cell holds.
fn number(amount: Amount) -> f64 {
    amount.to_string().parse().unwrap_or(0.0)
}

/// A percent of plan ("60.0") as the fraction a percent cell holds (0.6).
fn fraction(percent: Percent) -> f64 {
    percent.tenths as f64 / 1000.0
}

fn workbook(
    levels: &[(Level, Vec<Row>)],
    catalogue: &Catalogue,
    title: &XlsxTitle,
) -> Result<rust_xlsxwriter::Workbook> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let styles = Styles::new();
    let title = title.text();
    let indicators: Vec<&fieldsync::Indicator> = catalogue.indicators_in_order().collect();
    // A parent is named as the export names it (its row on the sheet
    // above), else as the catalogue does, else by its code.
    let names: std::collections::HashMap<&str, &str> = levels
        .iter()
        .flat_map(|(_, rows)| rows)
        .map(|r| (r.unit_id.as_str(), r.unit_name.as_str()))
        .collect();
    let parent_name = |id: &str| -> String {
        match (names.get(id), catalogue.org_unit(id)) {
            (Some(name), _) => (*name).to_owned(),
            (None, Some(unit)) => unit.name.clone(),
            (None, None) => id.to_owned(),
        }
    };
    for (level, rows) in levels {
        let units = units_of(rows, &indicators);
        let totals = totals(&units, &indicators)?;
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name(*level)).map_err(io)?;
        write_sheet(sheet, &units, &totals, &indicators, &styles, &title, &parent_name)
            .map_err(io)?;
    }
    Ok(book)
}

/// One org unit's rows: its first, and its row of each indicator.
struct UnitRows<'a> {
    first: &'a Row,
    cells: Vec<Option<&'a Row>>,
}

/// The rows of one unit arrive together: one sheet row per unit, a cell
/// per indicator it has a row for.
fn units_of<'a>(rows: &'a [Row], indicators: &[&fieldsync::Indicator]) -> Vec<UnitRows<'a>> {
    let mut units: Vec<UnitRows> = Vec::new();
    for r in rows {
        if units.last().is_none_or(|u| u.first.unit_id != r.unit_id) {
            units.push(UnitRows { first: r, cells: vec![None; indicators.len()] });
        }
        let Some(i) = indicators.iter().position(|ind| ind.code == r.indicator) else { continue };
        if let Some(unit) = units.last_mut() {
            unit.cells[i] = Some(r);
        }
    }
    units
}

fn amount(text: &str) -> Option<Amount> {
    text.parse().ok()
}

/// Per indicator, the exact sums of done and of the plans there are
/// (`None`: no unit has a plan).
fn totals(
    units: &[UnitRows],
    indicators: &[&fieldsync::Indicator],
) -> Result<Vec<(Amount, Option<Amount>)>> {
    let mut sums = vec![(Amount::whole(0), None::<Amount>); indicators.len()];
    for unit in units {
        for (i, r) in unit.cells.iter().enumerate() {
            let Some(r) = r else { continue };
            let overflow =
                || Error::Write(format!("the total of {} is too large", indicators[i].code));
            let (done, plan) = &mut sums[i];
            if let Some(d) = amount(&r.done) {
                *done = done.checked_add(d).ok_or_else(overflow)?;
            }
            if let Some(p) = amount(&r.plan) {
                *plan = Some(plan.map_or(Some(p), |s| s.checked_add(p)).ok_or_else(overflow)?);
            }
        }
    }
    Ok(sums)
}

/// One level's sheet: title, headings, a row per unit, the total row.
fn write_sheet(
    sheet: &mut rust_xlsxwriter::Worksheet,
    units: &[UnitRows],
    totals: &[(Amount, Option<Amount>)],
    indicators: &[&fieldsync::Indicator],
    styles: &Styles,
    title: &str,
    parent_name: &dyn Fn(&str) -> String,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let col_of = |i: usize| UNIT_COLS + 3 * i as u16;
    sheet.write_string_with_format(0, 0, xlsx_text(title), &styles.title)?;
    sheet.set_row_height(0, 20)?;
    for (col, head) in ["Mã", "Tên", "Trực thuộc"].into_iter().enumerate() {
        sheet.merge_range(1, col as u16, 2, col as u16, head, &styles.head)?;
    }
    // A merged cell's height is never fitted to its text: as many lines as
    // the longest name takes in its three columns.
    let longest = indicators.iter().map(|i| i.name_vi.chars().count()).max().unwrap_or(0);
    sheet.set_row_height(1, 15.0 * (longest / 28 + 1).min(4) as f64 + 3.0)?;
    sheet.set_row_height(2, 33)?;
    for (i, ind) in indicators.iter().enumerate() {
        let col = col_of(i);
        let unit = unit_label(ind);
        sheet.merge_range(1, col, 1, col + 2, xlsx_text(&ind.name_vi), &styles.head)?;
        let done = format!("Thực hiện{unit}");
        sheet.write_string_with_format(2, col, xlsx_text(&done), &styles.head)?;
        let plan = format!("KH{unit}");
        sheet.write_string_with_format(2, col + 1, xlsx_text(&plan), &styles.head)?;
        sheet.write_string_with_format(2, col + 2, "% KH", &styles.head)?;
        sheet.set_column_width(col, 13)?;
        sheet.set_column_width(col + 1, 13)?;
        sheet.set_column_width(col + 2, 9)?;
    }
    let numbers: Vec<[rust_xlsxwriter::Format; 2]> = indicators
        .iter()
        .map(|i| [false, true].map(|total| Styles::number(i.kind.scale(), total)))
        .collect();

    let mut widths = [10usize; UNIT_COLS as usize];
    for (n, unit) in units.iter().enumerate() {
        let row = HEAD_ROWS + n as u32;
        let parent = match unit.first.parent_id.as_str() {
            "" => String::new(),
            id => parent_name(id),
        };
        let texts = [&unit.first.unit_id, &unit.first.unit_name, &parent];
        for (col, text) in texts.into_iter().enumerate() {
            let text = xlsx_text(text);
            widths[col] = widths[col].max(text.chars().count() + 2);
            sheet.write_string_with_format(row, col as u16, text, &styles.text)?;
        }
        for (i, cell) in unit.cells.iter().enumerate() {
            let percent = cell
                .and_then(|r| amount(&r.percent))
                .and_then(|p| p.rescale(1))
                .map(|p| Percent { tenths: p.units() });
            let figures =
                (cell.and_then(|r| amount(&r.done)), cell.and_then(|r| amount(&r.plan)), percent);
            write_figures(sheet, row, col_of(i), figures, &numbers[i][0], &styles.percent)?;
        }
    }
    if !units.is_empty() {
        let row = HEAD_ROWS + units.len() as u32;
        sheet.merge_range(row, 0, row, UNIT_COLS - 1, "Tổng cộng", &styles.total_text)?;
        for (i, (done, plan)) in totals.iter().enumerate() {
            let figures = (Some(*done), *plan, fieldsync::rollup::percent(*done, *plan));
            write_figures(sheet, row, col_of(i), figures, &numbers[i][1], &styles.total_percent)?;
        }
    }
    for (col, width) in widths.into_iter().enumerate() {
        sheet.set_column_width(col as u16, width.min(40) as f64)?;
    }
    // The headings and the units' codes and names stay in view, and print
    // on every page (landscape A4).
    sheet.set_freeze_panes(HEAD_ROWS, 2)?;
    sheet.set_repeat_rows(1, HEAD_ROWS - 1)?;
    sheet.set_repeat_columns(0, 1)?;
    sheet.set_landscape().set_paper_size(9);
    Ok(())
}

/// Done, plan and % of plan in three cells from `col`; a missing one is a
/// blank cell, framed like the others.
fn write_figures(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    (done, plan, percent): (Option<Amount>, Option<Amount>, Option<Percent>),
    number_format: &rust_xlsxwriter::Format,
    percent_format: &rust_xlsxwriter::Format,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    let cells = [
        (done.map(number), number_format),
        (plan.map(number), number_format),
        (percent.map(fraction), percent_format),
    ];
    for (offset, (value, format)) in cells.into_iter().enumerate() {
        let col = col + offset as u16;
        match value {
            Some(v) => sheet.write_number_with_format(row, col, v, format)?,
            None => sheet.write_blank(row, col, format)?,
        };
    }
    Ok(())
}

/// The title of the province's report of its infrastructure for a year, as
/// the demo prints it: "Kết cấu hạ tầng — Tỉnh Hà Tĩnh, năm 2022".
pub fn report_title(place: &str, year: &str) -> String {
    format!("Kết cấu hạ tầng — {place}, năm {year}")
}

/// The heading of one org unit's section of the report `fieldsync export
/// --format report` prints: "Phúc Đồng, Hương Khê — năm 2022 (ha-tinh.huong-khe.phuc-dong)",
/// saying so when pending reports are counted; `vi: false` for English
/// ("— 2022, approved and pending").
pub fn section_heading(
    place: &str,
    period: &str,
    include_pending: bool,
    unit_id: &str,
    vi: bool,
) -> String {
    let (period, counted) = match (vi, include_pending) {
        (true, true) => (period_vi(period), ", gồm cả số chờ duyệt"),
        (true, false) => (period_vi(period), ""),
        (false, true) => (period.to_owned(), ", approved and pending"),
        (false, false) => (period.to_owned(), ""),
    };
    format!("{place} — {period}{counted} ({unit_id})")
}

/// Rows in the order the province reports them: each whole indicator
/// followed by its "of which" parts, otherwise as they came.
pub fn in_report_order(rows: Vec<Row>, catalogue: &Catalogue) -> Vec<Row> {
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
    let notes = report_notes(row, vi);
    if !notes.is_empty() {
        line.push_str(&format!(" [{notes}]"));
    }
    format!("{}: {line}", row.indicator_name)
}

/// What a reader of a report line must know beside its figures: reports
/// pending (counted or not), reports in conflict, a part above its whole.
/// Empty when there is nothing to say.
pub fn report_notes(row: &Row, vi: bool) -> String {
    let mut notes = Vec::new();
    if row.pending_count > 0 {
        // Whether the total counts them: it does when it is above the approved.
        let counted = match (row.done.parse::<Amount>(), row.approved.parse::<Amount>()) {
            (Ok(done), Ok(approved)) => done != approved,
            _ => false,
        };
        let n = row.pending_count;
        notes.push(match (vi, counted) {
            (true, true) => format!("gồm {n} báo cáo chờ duyệt"),
            (true, false) => format!("{n} báo cáo chờ duyệt, chưa tính"),
            (false, true) => format!("incl. {n} pending"),
            (false, false) => format!("{n} pending, not counted"),
        });
    }
    if row.conflict_count > 0 {
        let n = row.conflict_count;
        notes.push(match vi {
            true => format!("{n} báo cáo có xung đột"),
            false => format!("{n} in conflict"),
        });
    }
    if row.exceeds_whole {
        notes.push(match vi {
            true => "vượt quá chỉ tiêu tổng!".into(),
            false => "exceeds its whole!".into(),
        });
    }
    notes.join(", ")
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
        assert!(report_line(&r, true).ends_with("(đạt 96,1% KH) [1 báo cáo chờ duyệt, chưa tính]"));
        assert!(report_line(&r, false).ends_with("(96.1% of plan) [1 pending, not counted]"));
        r.done = "442".into();
        r.percent = "96.5".into();
        assert!(
            report_line(&r, true).ends_with("442/458 km (đạt 96,5% KH) [gồm 1 báo cáo chờ duyệt]")
        );
        r.conflict_count = 2;
        r.exceeds_whole = true;
        assert_eq!(
            report_notes(&r, true),
            "gồm 1 báo cáo chờ duyệt, 2 báo cáo có xung đột, vượt quá chỉ tiêu tổng!"
        );
    }

    #[test]
    fn titles_and_headings_read_as_the_report_prints_them() {
        assert_eq!(
            report_title("Tỉnh Hà Tĩnh", "2022"),
            "Kết cấu hạ tầng — Tỉnh Hà Tĩnh, năm 2022"
        );
        let commune = "ha-tinh.huong-khe.phuc-dong";
        assert_eq!(
            section_heading("Phúc Đồng, Hương Khê", "2022", false, commune, true),
            "Phúc Đồng, Hương Khê — năm 2022 (ha-tinh.huong-khe.phuc-dong)"
        );
        assert_eq!(
            section_heading("Hương Khê", "2022-Q1", true, "ha-tinh.huong-khe", true),
            "Hương Khê — quý I năm 2022, gồm cả số chờ duyệt (ha-tinh.huong-khe)"
        );
        assert_eq!(
            section_heading("Hương Khê", "2022-Q1", true, "ha-tinh.huong-khe", false),
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
    fn the_csv_for_people_is_in_vietnamese_with_the_same_figures() {
        let mut out = Vec::new();
        let mut csv = Csv::for_people(&mut out).unwrap();
        csv.row(&Row { exceeds_whole: true, ..row("0.3", "458", "0.1") }).unwrap();
        csv.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark for Excel");
        let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap(), &csv::StringRecord::from(CSV_HEADER_VI.to_vec()));
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!((&record[0], &record[2]), ("Tỉnh", "Tỉnh Hà Tĩnh"));
        assert_eq!((&record[7], &record[8], &record[9]), ("0,3", "458", "0,1"));
        assert_eq!(&record[15], "có");
        // Without rows: the header alone, once.
        let mut out = Vec::new();
        Csv::for_people(&mut out).unwrap().finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
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

    const HUONG_KHE: &str = "ha-tinh.huong-khe";
    const PHUC_DONG: &str = "ha-tinh.huong-khe.phuc-dong";
    const PHUC_TRACH: &str = "ha-tinh.huong-khe.phuc-trach";

    fn xlsx_title() -> XlsxTitle {
        XlsxTitle {
            area: "Huyện Hương Khê".into(),
            period: "2022".into(),
            include_pending: false,
            exported_on: Date::new(2026, 12, 4).unwrap(),
        }
    }

    /// A commune of Hương Khê's row of `indicator`.
    fn commune(id: &str, name: &str, indicator: &str, figures: [&str; 3]) -> Row {
        let [done, plan, percent] = figures;
        Row {
            level: "commune".into(),
            unit_id: id.into(),
            unit_name: name.into(),
            parent_id: HUONG_KHE.into(),
            indicator: indicator.into(),
            ..row(done, plan, percent)
        }
    }

    type Book = calamine::Xlsx<std::io::Cursor<Vec<u8>>>;

    fn read_back(bytes: Vec<u8>) -> Book {
        use calamine::Reader;
        calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap()
    }

    /// The column of a heading in the row of indicator names.
    fn column(sheet: &calamine::Range<calamine::Data>, name: &str) -> u32 {
        let names = sheet.rows().nth(1).unwrap();
        names.iter().position(|c| *c == calamine::Data::String(name.into())).unwrap() as u32
    }

    #[test]
    fn the_workbook_is_ready_to_file() {
        use calamine::{Data, Reader};
        let catalogue = fieldsync::demo::catalogue();
        let district = Row {
            level: "district".into(),
            unit_id: HUONG_KHE.into(),
            unit_name: "Huyện Hương Khê".into(),
            parent_id: "ha-tinh".into(),
            indicator: "road_km".into(),
            ..row("1.55", "", "")
        };
        let communes = vec![
            commune(PHUC_DONG, "Xã Phúc Đồng", "road_km", ["0.3", "0.5", "60.0"]),
            commune(PHUC_DONG, "Xã Phúc Đồng", "drainage_km", ["0.1", "", ""]),
            commune(PHUC_DONG, "Xã Phúc Đồng", "village_cultural_house", ["1", "", ""]),
            commune(PHUC_TRACH, "Xã Phúc Trạch", "road_km", ["1.25", "2", "62.5"]),
            commune(PHUC_TRACH, "Xã Phúc Trạch", "drainage_km", ["0.2", "", ""]),
            commune(PHUC_TRACH, "Xã Phúc Trạch", "village_cultural_house", ["2", "3", "66.7"]),
        ];
        let levels = [(Level::District, vec![district]), (Level::Commune, communes)];
        let mut book = read_back(xlsx_bytes(&levels, &catalogue, &xlsx_title()).unwrap());
        assert_eq!(book.sheet_names(), ["Huyện", "Xã"]);
        let sheet = book.worksheet_range("Xã").unwrap();
        let at = |row: u32, col: u32| sheet.get_value((row, col)).cloned().unwrap_or(Data::Empty);
        let text = |t: &str| Data::String(t.into());
        assert_eq!(
            at(0, 0),
            text("Tiến độ thực hiện — Huyện Hương Khê — năm 2022 — xuất ngày 04/12/2026")
        );

        // Headings: the unit's columns, then each indicator's name over its
        // done / plan / % columns, units in the headings (none for counts).
        assert_eq!([at(1, 0), at(1, 1), at(1, 2)], [text("Mã"), text("Tên"), text("Trực thuộc")]);
        let road = column(&sheet, "Đường giao thông nông thôn xây dựng, nâng cấp");
        assert_eq!(road, 3, "right after the unit's columns");
        let heads = [at(2, road), at(2, road + 1), at(2, road + 2)];
        assert_eq!(heads, [text("Thực hiện (km)"), text("KH (km)"), text("% KH")]);
        let house = column(&sheet, "Nhà văn hóa thôn");
        assert_eq!([at(2, house), at(2, house + 1)], [text("Thực hiện"), text("KH")]);
        let drainage = column(&sheet, "Rãnh thoát nước");
        let merged = book.merge_cells_by_sheet_name("Xã").unwrap();
        assert!(merged.iter().any(|m| m.start == (1, road) && m.end == (1, road + 2)));

        // A row per unit, its parent named; numbers are numbers, % a fraction.
        assert_eq!([at(3, 0), at(3, 1)], [text(PHUC_DONG), text("Xã Phúc Đồng")]);
        assert_eq!(at(3, 2), text("Huyện Hương Khê"));
        assert_eq!([at(3, road), at(3, road + 1)], [Data::Float(0.3), Data::Float(0.5)]);
        assert_eq!(at(3, road + 2), Data::Float(0.6));
        assert_eq!([at(3, house), at(3, house + 1)], [Data::Float(1.0), Data::Empty], "no plan");
        assert_eq!(at(3, house + 2), Data::Empty, "no plan, no percent");
        assert_eq!(at(4, 1), text("Xã Phúc Trạch"));
        assert_eq!(at(4, house + 2), Data::Float(0.667));

        // The total row: exact sums (0.1 + 0.2 is 0.3, not 0.30000000000000004),
        // the percent of the totals where there is a plan.
        assert_eq!(at(5, 0), text("Tổng cộng"));
        assert_eq!([at(5, road), at(5, road + 1)], [Data::Float(1.55), Data::Float(2.5)]);
        assert_eq!(at(5, road + 2), Data::Float(0.62));
        assert_eq!([at(5, drainage), at(5, drainage + 1)], [Data::Float(0.3), Data::Empty]);
        assert_eq!(at(5, drainage + 2), Data::Empty);
        let house_total = [at(5, house), at(5, house + 1), at(5, house + 2)];
        assert_eq!(house_total, [Data::Float(3.0), Data::Float(3.0), Data::Float(1.0)]);
        assert_eq!(sheet.height(), 6, "title, two heading rows, two communes, the total");

        // The formats Excel shows them in.
        let styles = book.worksheet_style("Xã").unwrap();
        let format = |row: u32, col: u32| {
            let style = styles.get((row, col)).unwrap();
            style.number_format.as_ref().map(|f| f.format_code.clone()).unwrap_or_default()
        };
        assert_eq!(format(3, road + 2), "0.0%");
        assert_eq!(format(5, road + 2), "0.0%");
        assert_eq!(format(3, road), "#,##0.00");
        assert_eq!(format(5, house), "#,##0");
        let head = styles.get((2, road)).unwrap();
        assert!(head.font.as_ref().unwrap().is_bold());
        assert!(head.alignment.as_ref().unwrap().wrap_text);
        assert!(styles.get((5, 0)).unwrap().font.as_ref().unwrap().is_bold());

        // A parent with no row of its own is named from the catalogue.
        let districts = book.worksheet_range("Huyện").unwrap();
        assert_eq!(districts.get_value((3, 2)), Some(&text("Tỉnh Hà Tĩnh")));
        assert_eq!(districts.get_value((3, 3)), Some(&Data::Float(1.55)));
        assert_eq!(districts.get_value((4, 0)), Some(&text("Tổng cộng")));
    }

    #[test]
    fn xlsx_cells_of_text_are_text_never_formulas() {
        use calamine::{Data, Reader};
        let mut formula = commune(
            PHUC_DONG,
            "=HYPERLINK(\"http://example.com\",\"xem\")",
            "road_km",
            ["1", "2", "50.0"],
        );
        formula.unit_id = "@SUM(A1)".into();
        let catalogue = fieldsync::demo::catalogue();
        let levels = [(Level::Commune, vec![formula])];
        let mut book = read_back(xlsx_bytes(&levels, &catalogue, &xlsx_title()).unwrap());
        let sheet = book.worksheet_range("Xã").unwrap();
        assert_eq!(sheet.get_value((3, 0)), Some(&Data::String("@SUM(A1)".into())));
        let name = Data::String("=HYPERLINK(\"http://example.com\",\"xem\")".into());
        assert_eq!(sheet.get_value((3, 1)), Some(&name));
        let formulas = book.worksheet_formula("Xã").unwrap();
        assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()), "no formula anywhere");
    }

    #[test]
    fn an_empty_level_still_gets_its_title_and_headings() {
        use calamine::{Data, Reader};
        let catalogue = fieldsync::demo::catalogue();
        let bytes = xlsx_bytes(&[(Level::Village, Vec::new())], &catalogue, &xlsx_title()).unwrap();
        let mut book = read_back(bytes);
        assert_eq!(book.sheet_names(), ["Thôn"]);
        let sheet = book.worksheet_range("Thôn").unwrap();
        assert_eq!(sheet.height(), 3, "no units, no total row");
        assert_eq!(sheet.get_value((2, 5)), Some(&Data::String("% KH".into())));
    }

    #[test]
    fn titles_say_the_area_the_period_in_words_and_the_day() {
        let title = XlsxTitle {
            area: "Xã Phúc Đồng".into(),
            period: "2022-Q3".into(),
            include_pending: true,
            exported_on: Date::new(2025, 7, 1).unwrap(),
        };
        assert_eq!(
            title.text(),
            "Tiến độ thực hiện — Xã Phúc Đồng — quý III năm 2022 (tính cả báo cáo chờ duyệt) \
             — xuất ngày 01/07/2025"
        );
        assert_eq!(period_vi("2022-07"), "tháng 7 năm 2022");
        assert_eq!(period_vi("2022"), "năm 2022");
        let names: Vec<String> = Level::ALL.into_iter().map(sheet_name).collect();
        assert_eq!(names, ["Tỉnh", "Huyện", "Xã", "Thôn"]);
    }

    #[test]
    fn a_name_longer_than_a_cell_holds_is_cut_rather_than_failing_the_workbook() {
        // A store written before names were capped may hold one.
        let mut long = row("1", "2", "50");
        long.level = "village".into();
        long.unit_name = "Thôn ".repeat(8_000);
        let catalogue = fieldsync::demo::catalogue();
        let bytes = xlsx_bytes(&[(Level::Village, vec![long])], &catalogue, &xlsx_title()).unwrap();
        use calamine::Reader;
        let mut book = read_back(bytes);
        let sheet = book.worksheet_range("Thôn").unwrap();
        let name = sheet.get_value((3, 1)).unwrap().to_string();
        assert_eq!(name.chars().count(), XLSX_CELL_CHARS);
    }

    #[test]
    fn csv_without_rows_still_has_its_header() {
        let mut out = Vec::new();
        Csv::new(&mut out, false).unwrap().finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim_end(), CSV_HEADER.join(","));
    }
}
