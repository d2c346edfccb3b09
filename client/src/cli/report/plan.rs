//! `fieldsync plan set|clear|import`: plan (KH) figures, one at a time or
//! from a CSV file, all or none.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use fieldsync::Period;
use fieldsync_client::api::PlanFigure;
use serde::Serialize;

use super::PlanCommand;
use crate::cli::Online;

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
            let request: Vec<PlanFigure> = figures.iter().map(|f| f.figure.clone()).collect();
            let lines: Vec<u64> = figures.iter().map(|f| f.line).collect();
            let set = s.api.set_plans(&request).await.map_err(|e| {
                let refused = s.refused(e);
                anyhow::anyhow!(
                    "{}",
                    by_line(&refused.to_string(), &format!("lines of {}", file.display()), |row| {
                        lines.get(row.wrapping_sub(1)).map(|l| format!("line {l}"))
                    })
                )
            })?;
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
    let set = s.api.set_plans(std::slice::from_ref(&figure)).await.map_err(|e| {
        let refused = s.refused(e);
        // One figure: its problem alone, without "row 1".
        let text = refused.to_string();
        let problem = text
            .strip_prefix("nothing was imported; fix these rows:\nrow 1: ")
            .map_or(text.clone(), str::to_owned);
        anyhow::anyhow!("{problem}; no plan figure was changed")
    })?;
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
        .delimiter(crate::cli::table::delimiter_of(text))
        .from_reader(text);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => bail!("cannot read {}: {e}", name),
        None => {
            bail!("{} is empty: expected a header row {}", name, PLAN_COLUMNS.join(","))
        }
    };
    let (names, columns) = columns_of(name, &header)?;
    let width = columns.iter().max().map_or(0, |m| m + 1);
    let mut lines = Lines { text, counted: (0, 1) };
    let mut problems = Vec::new();
    let mut figures: Vec<FileFigure> = Vec::new();
    let mut seen: HashMap<(String, String, String), u64> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(String::new(), |p| format!("line {}: ", lines.at(p.byte())));
                problems.push(format!("{line}{e}"));
                if e.position().is_none() {
                    break; // an I/O error: nothing further can be read
                }
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.at(p.byte()));
        if record.len() < width {
            problems.push(format!(
                "line {line}: {} field(s) where the header has {names} ({})",
                record.len(),
                PLAN_COLUMNS.join(",")
            ));
            continue;
        }
        let [unit_id, indicator, period, value] = match cells_of(&record, columns, line) {
            Ok(cells) => cells,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let same = period.parse::<Period>().map_or(period.clone(), |p| p.to_string());
        if let Some(first) = seen.insert((unit_id.clone(), indicator.clone(), same), line) {
            problems.push(format!(
                "line {line}: the same unit, indicator and period as line {first}; keep one"
            ));
            continue;
        }
        // "1,5" as a comma-decimal sheet writes it; what cannot be read is
        // left for the server to name.
        let value = match fieldsync::Amount::parse_typed(&value, fieldsync::amount::MAX_SCALE) {
            Ok(Some(amount)) => amount.to_string(),
            _ => value,
        };
        figures.push(FileFigure { line, figure: PlanFigure { unit_id, indicator, period, value } });
    }
    if !problems.is_empty() {
        bail!("nothing was imported; fix these lines of {}:\n{}", name, problems.join("\n"));
    }
    if figures.is_empty() {
        bail!("{} has no plan figures below its header row", name);
    }
    Ok(figures)
}

/// The number of columns the header row names, and where each of
/// [`PLAN_COLUMNS`] is.
fn columns_of(name: &str, header: &csv::ByteRecord) -> anyhow::Result<(usize, [usize; 4])> {
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
    Ok((names.len(), columns))
}

/// The four cells of a figure, trimmed; or the line's problem.
fn cells_of(
    record: &csv::ByteRecord,
    columns: [usize; 4],
    line: u64,
) -> Result<[String; 4], String> {
    let mut cells: [String; 4] = Default::default();
    for (i, col) in columns.into_iter().enumerate() {
        match std::str::from_utf8(&record[col]) {
            Ok(text) => cells[i] = text.trim().to_owned(),
            Err(_) => {
                return Err(format!(
                    "line {line}: the {} is not UTF-8 text (save the file as UTF-8 CSV)",
                    PLAN_COLUMNS[i]
                ))
            }
        }
    }
    Ok(cells)
}

/// The line a record starts on, counted from the bytes before it: the
/// reader's own count is off for CRLF files (as Excel saves them).
struct Lines<'a> {
    text: &'a [u8],
    /// (bytes counted, the line they end on).
    counted: (usize, u64),
}

impl Lines<'_> {
    fn at(&mut self, byte: u64) -> u64 {
        let text = self.text;
        let mut byte = (byte as usize).min(text.len());
        // After a CR the reader starts the next record at the LF.
        if text.get(byte) == Some(&b'\n') {
            byte += 1;
        }
        if byte >= self.counted.0 {
            self.counted.1 +=
                text[self.counted.0..byte].iter().filter(|b| **b == b'\n').count() as u64;
            self.counted.0 = byte;
        }
        self.counted.1
    }
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
    fn an_excel_csv_of_a_vietnamese_system_reads_as_it_was_saved() {
        // Excel on a comma-decimal system: BOM, `;` between cells, CRLF,
        // decimals with a comma, quoted cells; lines named as Excel's rows.
        let text = "\u{feff}unit_id;indicator;period;value\r\n\
                    ha-tinh;road_km;2022;1,5\r\n\
                    \"ha-tinh\";drainage_km;2022;\"2\"\r\n\
                    ha-tinh;canal_km;2022;0,25\r\n";
        let figures = parse_plans("ke-hoach.csv", text.as_bytes()).unwrap();
        let read: Vec<(u64, &str, &str)> = figures
            .iter()
            .map(|f| (f.line, f.figure.indicator.as_str(), f.figure.value.as_str()))
            .collect();
        assert_eq!(read, [(2, "road_km", "1.5"), (3, "drainage_km", "2"), (4, "canal_km", "0.25")]);
        // A duplicate is named by Excel's row.
        let twice = "unit_id;indicator;period;value\r\nha-tinh;road_km;2022;1,5\r\n\
                     ha-tinh;road_km;2022;2\r\n";
        let err = parse_plans("ke-hoach.csv", twice.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("line 3: the same unit, indicator and period as line 2"), "{err}");
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
