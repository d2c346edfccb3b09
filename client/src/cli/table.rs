//! Reading the tables a province keeps in Excel: an `.xlsx` workbook (its
//! first sheet) or a CSV file as Excel saves it — a byte-order mark, CRLF
//! line ends, and `;` between cells under Vietnamese regional settings
//! (`,` and tabs too). Each row keeps the number Excel shows beside it, so
//! that a problem can be named where the person will look for it.

use std::path::Path;

use anyhow::{bail, Context};

/// A table: its header row's names (trimmed, in lower case) and the rows
/// below it, empty rows left out.
#[derive(Debug)]
pub struct Table {
    /// What to call the file in messages.
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

#[derive(Debug)]
pub struct Row {
    /// The row's number as Excel shows it (the header is row 1).
    pub line: u64,
    pub cells: Vec<String>,
}

impl Row {
    /// The cell in `column` (trimmed), empty if the row is shorter.
    pub fn cell(&self, column: Option<usize>) -> &str {
        column.and_then(|c| self.cells.get(c)).map_or("", |c| c.trim())
    }
}

/// Most rows a file may hold: a country's villages, with room to spare.
pub const MAX_ROWS: usize = 250_000;

impl Table {
    /// Reads `path`: an Excel workbook if its name ends in `.xlsx`, `.xlsm`
    /// or `.xls`, CSV otherwise.
    pub fn read(path: &Path) -> anyhow::Result<Table> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_lowercase();
        match ext.as_str() {
            "xlsx" | "xlsm" | "xls" => Table::from_xlsx(name, &bytes),
            _ => Table::from_csv(name, &bytes),
        }
    }

    /// The column called one of `names` (compared in lower case, without
    /// tone marks: "Mã đơn vị", "ma don vi" and "MÃ ĐƠN VỊ" are one name).
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        let wanted: Vec<String> = names.iter().map(|n| fieldsync::model::search_key(n)).collect();
        self.header.iter().position(|h| wanted.contains(&fieldsync::model::search_key(h)))
    }

    /// Like [`Table::column`], but the column must be there.
    pub fn required(&self, names: &[&str]) -> anyhow::Result<usize> {
        self.column(names).with_context(|| {
            format!(
                "{}: the header row (row 1) has no {} column (found: {})",
                self.name,
                names[0],
                self.header.join(", ")
            )
        })
    }

    fn from_csv(name: String, bytes: &[u8]) -> anyhow::Result<Table> {
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            anyhow::anyhow!(
                "{name}: row {line} is not UTF-8 text; in Excel, save it as \"CSV UTF-8\" (or \
                 as an .xlsx workbook)"
            )
        })?;
        let delimiter = delimiter_of(text.as_bytes());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let at = e.position().map_or(String::new(), |p| {
                    format!(" at row {}", line_at(text.as_bytes(), p.byte()))
                });
                anyhow::anyhow!("{name}: cannot read the file{at}: {e}")
            })?;
            let line = record.position().map_or(0, |p| line_at(text.as_bytes(), p.byte()));
            rows.push(Row { line, cells: record.iter().map(str::to_owned).collect() });
        }
        Table::of(name, rows)
    }

    fn from_xlsx(name: String, bytes: &[u8]) -> anyhow::Result<Table> {
        use calamine::Reader;
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
            .map_err(|e| anyhow::anyhow!("{name}: not a workbook Excel can open ({e})"))?;
        let sheet =
            book.sheet_names().first().cloned().with_context(|| format!("{name} has no sheet"))?;
        let range = book
            .worksheet_range(&sheet)
            .map_err(|e| anyhow::anyhow!("{name}: cannot read sheet {sheet:?} ({e})"))?;
        let first_row = range.start().map_or(0, |(r, _)| r);
        let first_col = range.start().map_or(0, |(_, c)| c) as usize;
        let rows = range
            .rows()
            .enumerate()
            .map(|(i, cells)| {
                // Cells left of the used range are empty: keep the columns where Excel has them.
                let mut row: Vec<String> = vec![String::new(); first_col];
                row.extend(cells.iter().map(cell_text));
                Row { line: u64::from(first_row) + i as u64 + 1, cells: row }
            })
            .collect();
        Table::of(name, rows)
    }

    /// The header (the first row with anything in it) and the rows below.
    fn of(name: String, rows: Vec<Row>) -> anyhow::Result<Table> {
        let mut rows = rows.into_iter().filter(|r| r.cells.iter().any(|c| !c.trim().is_empty()));
        let Some(header) = rows.next() else { bail!("{name} is empty: expected a header row") };
        if header.line != 1 {
            bail!(
                "{name}: the header row must be row 1 (the first non-empty row is {})",
                header.line
            );
        }
        let rows: Vec<Row> = rows.collect();
        if rows.len() > MAX_ROWS {
            bail!("{name} has {} rows; at most {MAX_ROWS} are read at once: split it", rows.len());
        }
        let header = header.cells.iter().map(|h| h.trim().to_lowercase()).collect();
        Ok(Table { name, header, rows })
    }
}

/// A workbook cell as the text it shows: whole numbers without ".0".
fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        // A date cell as the day it shows (a time of day, if any, is kept).
        Data::DateTime(d) => match d.to_ymd_hms_milli() {
            (y, m, d, 0, 0, 0, 0) => format!("{y:04}-{m:02}-{d:02}"),
            (y, m, d, h, min, s, _) => format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}"),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// The line (from 1) of the record the reader says starts at `offset` of
/// `text`: the reader may start it at the line ends before it (the LF of a
/// CRLF, or empty lines it skipped), so those are skipped first.
fn line_at(text: &[u8], offset: u64) -> u64 {
    let mut at = (offset as usize).min(text.len());
    while matches!(text.get(at), Some(b'\r' | b'\n')) {
        at += 1;
    }
    text[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

/// The separator of a CSV file, from its header row: `;` as Excel saves CSV
/// on a Vietnamese (comma-decimal) system, `,` elsewhere, or a tab.
pub fn delimiter_of(text: &[u8]) -> u8 {
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    [b';', b',', b'\t']
        .into_iter()
        .max_by_key(|d| first.iter().filter(|b| *b == d).count())
        .unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Table {
        Table::from_csv("units.csv".into(), text.as_bytes()).unwrap()
    }

    #[test]
    fn excel_csv_under_vietnamese_settings_reads_with_its_row_numbers() {
        let text = "\u{feff}Mã;Tên;Cấp;Thuộc\r\nht;Tỉnh Hà Tĩnh;tỉnh;\r\n\r\n\
                    ht.a;\"Xã A; mới\";xã;ht\r\n";
        let table = csv(text);
        assert_eq!(table.header, ["mã", "tên", "cấp", "thuộc"]);
        assert_eq!(table.column(&["ma"]), Some(0), "without tone marks");
        assert_eq!(table.column(&["Thuộc"]), Some(3));
        let lines: Vec<u64> = table.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4], "the empty row 3 is skipped, not renumbered");
        assert_eq!(table.rows[1].cells, ["ht.a", "Xã A; mới", "xã", "ht"]);
    }

    #[test]
    fn commas_and_lf_read_alike() {
        let table = csv("id,name\nht,Hà Tĩnh\nht.a,Xã A\n");
        assert_eq!(table.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(table.rows[1].cell(Some(1)), "Xã A");
        assert_eq!(table.rows[1].cell(Some(7)), "", "a short row reads empty");
    }

    #[test]
    fn a_file_saved_in_a_legacy_encoding_is_named_with_its_row() {
        let mut bytes = b"id;name\r\nht;H".to_vec();
        bytes.push(0xe0); // "à" in Windows-1258
        let err = Table::from_csv("units.csv".into(), &bytes).unwrap_err().to_string();
        assert!(err.contains("row 2 is not UTF-8") && err.contains("CSV UTF-8"), "{err}");
    }

    #[test]
    fn a_workbook_reads_its_first_sheet_with_excels_row_numbers() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["id", "name", "level", "parent"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "ht").unwrap();
        sheet.write_string(1, 1, "Tỉnh Hà Tĩnh").unwrap();
        sheet.write_number(3, 0, 42.0).unwrap();
        sheet.write_string(3, 3, "ht").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let table = Table::from_xlsx("units.xlsx".into(), &bytes).unwrap();
        assert_eq!(table.header, ["id", "name", "level", "parent"]);
        let lines: Vec<u64> = table.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4]);
        assert_eq!(table.rows[1].cell(Some(0)), "42", "a whole number reads without .0");
        assert_eq!(table.rows[1].cell(Some(3)), "ht");
    }
}
