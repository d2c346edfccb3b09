//! `fieldsync admin org-unit import|list` and `admin indicator import`:
//! loading a province from the files it keeps in Excel, all or nothing,
//! every bad row named by the number Excel shows beside it.

use std::path::Path;

use anyhow::bail;
use fieldsync::amount::Amount;
use fieldsync::{Date, Indicator, Level, OrgUnit, ValueKind};
use fieldsync_client::api::Imported;

use crate::cli::table::{Row, Table};
use crate::cli::Session;

/// The columns of an org-unit file, each under its English code first and
/// then the Vietnamese headers a province would write.
const UNIT_ID: &[&str] = &["id", "mã", "mã đơn vị", "ma_don_vi", "code"];
const UNIT_NAME: &[&str] = &["name", "tên", "tên đơn vị", "ten_don_vi"];
const UNIT_LEVEL: &[&str] = &["level", "cấp", "cấp hành chính", "loại"];
const UNIT_PARENT: &[&str] =
    &["parent", "parent_id", "thuộc", "mã cấp trên", "cấp trên", "đơn vị cha", "mã cha"];
const UNIT_VALID_FROM: &[&str] =
    &["valid from", "valid_from", "hiệu lực từ", "có hiệu lực từ", "từ ngày", "ngày hiệu lực"];

/// The columns of an indicator file.
const IND_CODE: &[&str] = &["code", "mã", "mã chỉ tiêu", "id"];
const IND_NAME_VI: &[&str] = &["name_vi", "tên", "tên chỉ tiêu", "tên tiếng việt"];
const IND_NAME_EN: &[&str] = &["name_en", "tên tiếng anh", "english"];
const IND_UNIT: &[&str] = &["unit", "đơn vị tính", "đvt", "đơn vị"];
const IND_KIND: &[&str] = &["kind", "kiểu", "loại số"];
const IND_SCALE: &[&str] = &["scale", "số chữ số thập phân", "chữ số thập phân"];
const IND_PARENT: &[&str] = &["parent", "parent_code", "trong đó của", "thuộc"];
const IND_MAX: &[&str] = &["max", "max_per_village", "tối đa mỗi thôn", "tối đa"];

/// `admin org-unit import FILE`.
pub(super) async fn org_units(s: &Session, path: &Path) -> anyhow::Result<()> {
    let table = Table::read(path)?;
    let (units, lines) = read_units(&table)?;
    let imported = s
        .api
        .import_catalogue(&units, &[])
        .await
        .map_err(|e| s.refused(e))
        .map_err(|e| by_row(&table.name, &e.to_string(), "org unit", &lines))?;
    report(s, &table.name, imported, &units)
}

/// `admin indicator import FILE`.
pub(super) async fn indicators(s: &Session, path: &Path) -> anyhow::Result<()> {
    let table = Table::read(path)?;
    let (indicators, lines) = read_indicators(&table)?;
    let imported = s
        .api
        .import_catalogue(&[], &indicators)
        .await
        .map_err(|e| s.refused(e))
        .map_err(|e| by_row(&table.name, &e.to_string(), "indicator", &lines))?;
    report(s, &table.name, imported, &[])
}

/// An org unit to import, with the day it is in force from, if given.
type DatedUnit = (OrgUnit, Option<Date>);

/// The org units of `table`, with the row each came from; every row that
/// cannot be read is named, and any refuses the file.
fn read_units(table: &Table) -> anyhow::Result<(Vec<DatedUnit>, Vec<u64>)> {
    let id = table.required(UNIT_ID)?;
    let name = table.required(UNIT_NAME)?;
    let level = table.required(UNIT_LEVEL)?;
    let parent = table.column(UNIT_PARENT);
    let valid_from = table.column(UNIT_VALID_FROM);
    let mut problems = Vec::new();
    let mut units = Vec::new();
    let mut lines = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for row in &table.rows {
        let n = row.line;
        let (unit_id, unit_name) = (row.cell(Some(id)), row.cell(Some(name)));
        if unit_id.is_empty() || unit_name.is_empty() {
            problems.push(format!("row {n}: every org unit needs an id and a name"));
            continue;
        }
        if let Some(first) = seen.insert(unit_id.to_owned(), n) {
            problems.push(format!("row {n}: the same id {unit_id} as row {first}; keep one"));
            continue;
        }
        let Some(unit_level) = Level::parse(row.cell(Some(level))) else {
            problems.push(format!(
                "row {n}: unknown level {:?}: write province, district, commune or village (or \
                 tỉnh, huyện, xã, phường, thôn, tổ dân phố…)",
                row.cell(Some(level))
            ));
            continue;
        };
        let unit_parent = Some(row.cell(parent).to_owned()).filter(|p| !p.is_empty());
        let from = match row.cell(valid_from) {
            "" => None,
            day => match day.parse::<Date>() {
                Ok(day) => Some(day),
                Err(e) => {
                    problems.push(format!("row {n}: valid from: {e}"));
                    continue;
                }
            },
        };
        let unit = OrgUnit {
            id: unit_id.to_owned(),
            name: unit_name.to_owned(),
            level: unit_level,
            parent: unit_parent,
        };
        units.push((unit, from));
        lines.push(n);
    }
    refuse_if_any(&table.name, problems)?;
    if units.is_empty() {
        bail!("{} has no org units below its header row", table.name);
    }
    Ok((units, lines))
}

/// The indicators of `table`, with the row each came from.
fn read_indicators(table: &Table) -> anyhow::Result<(Vec<Indicator>, Vec<u64>)> {
    let code = table.required(IND_CODE)?;
    let name_vi = table.required(IND_NAME_VI)?;
    let name_en = table.column(IND_NAME_EN);
    let unit = table.required(IND_UNIT)?;
    let kind = table.required(IND_KIND)?;
    let scale = table.column(IND_SCALE);
    let parent = table.column(IND_PARENT);
    let max = table.required(IND_MAX)?;
    let mut problems = Vec::new();
    let mut indicators = Vec::new();
    let mut lines = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for row in &table.rows {
        let code_text = row.cell(Some(code));
        if let Some(first) = seen.insert(code_text.to_owned(), row.line) {
            let n = row.line;
            problems.push(format!("row {n}: the same code {code_text} as row {first}; keep one"));
            continue;
        }
        match indicator(row, [code, name_vi, unit, kind, max], name_en, scale, parent) {
            Ok(i) => {
                indicators.push(i);
                lines.push(row.line);
            }
            Err(why) => problems.push(format!("row {}: {why}", row.line)),
        }
    }
    refuse_if_any(&table.name, problems)?;
    if indicators.is_empty() {
        bail!("{} has no indicators below its header row", table.name);
    }
    Ok((indicators, lines))
}

fn indicator(
    row: &Row,
    [code, name_vi, unit, kind, max]: [usize; 5],
    name_en: Option<usize>,
    scale: Option<usize>,
    parent: Option<usize>,
) -> Result<Indicator, String> {
    let code_text = row.cell(Some(code));
    if code_text.is_empty() || row.cell(Some(name_vi)).is_empty() {
        return Err("every indicator needs a code and a Vietnamese name".into());
    }
    let kind = match fieldsync::model::search_key(row.cell(Some(kind))).as_str() {
        "integer" | "so nguyen" | "nguyen" => ValueKind::Integer,
        "decimal" | "so thap phan" | "thap phan" => {
            let scale = match row.cell(scale) {
                "" => 2,
                text => text.parse::<u8>().ok().filter(|s| *s <= 6).ok_or_else(|| {
                    format!("{code_text}: the digits after the point must be 0-6, not {text:?}")
                })?,
            };
            ValueKind::Decimal { scale }
        }
        other => {
            return Err(format!(
                "{code_text}: unknown kind {other:?}: write integer (số nguyên) or decimal (số \
                 thập phân)"
            ))
        }
    };
    // A comma decimal, as Vietnamese settings write it, reads as a point.
    let max_text = row.cell(Some(max)).replace(',', ".");
    let max_per_village = Amount::parse(&max_text, kind.scale())
        .map_err(|e| format!("{code_text}: the largest value per village: {e}"))?;
    Ok(Indicator {
        code: code_text.to_owned(),
        name_vi: row.cell(Some(name_vi)).to_owned(),
        name_en: Some(row.cell(name_en))
            .filter(|n| !n.is_empty())
            .unwrap_or(row.cell(Some(name_vi)))
            .to_owned(),
        unit: row.cell(Some(unit)).to_owned(),
        kind,
        parent: Some(row.cell(parent).to_owned()).filter(|p| !p.is_empty()),
        max_per_village,
    })
}

fn refuse_if_any(name: &str, problems: Vec<String>) -> anyhow::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    bail!("nothing was imported; fix these rows of {name}:\n{}", problems.join("\n"))
}

/// The server's refusal with each "org unit N: …" named by the row of the
/// file it came from.
fn by_row(name: &str, message: &str, what: &str, lines: &[u64]) -> anyhow::Error {
    let prefix = format!("{what} ");
    let text: Vec<String> = message
        .lines()
        .map(|line| {
            if line.starts_with("nothing was imported; fix these:") {
                return format!("nothing was imported; fix these rows of {name}:");
            }
            let renamed = line.strip_prefix(&prefix).and_then(|rest| {
                let (n, why) = rest.split_once(": ")?;
                let row = lines.get(n.parse::<usize>().ok()?.checked_sub(1)?)?;
                Some(format!("row {row}: {why}"))
            });
            renamed.unwrap_or_else(|| line.to_owned())
        })
        .collect();
    anyhow::anyhow!(text.join("\n"))
}

fn report(
    s: &Session,
    name: &str,
    imported: Imported,
    units: &[(OrgUnit, Option<Date>)],
) -> anyhow::Result<()> {
    if s.json {
        return s.print_json(&serde_json::json!({
            "org_units_added": imported.org_units,
            "indicators_added": imported.indicators,
            "unchanged": imported.unchanged,
        }));
    }
    let mut by_level = [0usize; 4];
    for (u, _) in units {
        by_level[u.level as usize] += 1;
    }
    let levels: Vec<String> = Level::ALL
        .iter()
        .zip(by_level)
        .filter(|(_, k)| *k > 0)
        .map(|(l, k)| format!("{k} {}", l.as_str()))
        .collect();
    let what = match (imported.org_units, imported.indicators) {
        (0, 0) => "nothing new".to_owned(),
        (u, 0) => format!("{u} org unit(s)"),
        (0, i) => format!("{i} indicator(s)"),
        (u, i) => format!("{u} org unit(s) and {i} indicator(s)"),
    };
    let given = if levels.is_empty() { String::new() } else { format!(" ({})", levels.join(", ")) };
    let already = match imported.unchanged {
        0 => String::new(),
        k => format!("; {k} of its rows were already in the catalogue as written"),
    };
    let mut days: Vec<Date> = units.iter().filter_map(|(_, from)| *from).collect();
    days.sort_unstable();
    days.dedup();
    let dated = match days.first() {
        None => String::new(),
        Some(_) => format!(
            "; in force from {} (`fieldsync admin org-unit changes` lists it)",
            days.iter().map(Date::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    println!(
        "imported {what} from {name}{given}{already}{dated}; tablets see them at their next sync"
    );
    Ok(())
}

/// The columns of a user file.
const USER_ID: &[&str] = &["username", "id", "user", "tên đăng nhập", "tài khoản"];
const USER_NAME: &[&str] = &["name", "full name", "full_name", "họ tên", "họ và tên"];
const USER_ROLE: &[&str] = &["role", "vai trò", "chức năng"];
const USER_AREAS: &[&str] = &["areas", "area", "địa bàn", "mã địa bàn", "đơn vị"];

/// A role as a province writes it: English, or in Vietnamese.
fn role_of(text: &str) -> Option<fieldsync::access::Role> {
    use fieldsync::access::Role;
    Some(match fieldsync::model::search_key(text).as_str() {
        "surveyor" | "dieu tra vien" | "dieu tra" => Role::Surveyor,
        "supervisor" | "giam sat" | "giam sat vien" => Role::Supervisor,
        "province" | "van phong tinh" | "thong ke tinh" | "tinh" => Role::Province,
        "admin" | "quan tri" | "quan tri vien" => Role::Admin,
        _ => return None,
    })
}

/// `admin user import FILE [--codes SHEET]`: the users of the file, all or
/// nothing; then, with `codes`, an enrollment code for every new surveyor,
/// written to a workbook to print and hand out.
pub(super) async fn users(
    s: &Session,
    path: &Path,
    codes: Option<&Path>,
    valid_days: u64,
) -> anyhow::Result<()> {
    use fieldsync::access::User;
    if !(1..=7).contains(&valid_days) {
        bail!("--codes-valid-days must be 1 to 7 (codes are meant to be used within days)");
    }
    let table = Table::read(path)?;
    let id = table.required(USER_ID)?;
    let name = table.required(USER_NAME)?;
    let role = table.required(USER_ROLE)?;
    let areas = table.column(USER_AREAS);
    let mut problems = Vec::new();
    let mut users = Vec::new();
    let mut lines = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for row in &table.rows {
        let n = row.line;
        let user_id = row.cell(Some(id));
        if user_id.is_empty() || row.cell(Some(name)).is_empty() {
            problems.push(format!("row {n}: every user needs a username and a name"));
            continue;
        }
        if let Some(first) = seen.insert(user_id.to_owned(), n) {
            problems.push(format!("row {n}: the same username {user_id} as row {first}; keep one"));
            continue;
        }
        let Some(user_role) = role_of(row.cell(Some(role))) else {
            problems.push(format!(
                "row {n}: unknown role {:?}: write surveyor (điều tra viên), supervisor (giám \
                 sát), province (văn phòng tỉnh) or admin (quản trị)",
                row.cell(Some(role))
            ));
            continue;
        };
        let user_areas = row
            .cell(areas)
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        users.push(User {
            id: user_id.to_owned(),
            name: row.cell(Some(name)).to_owned(),
            role: user_role,
            areas: user_areas,
            disabled: false,
        });
        lines.push(n);
    }
    refuse_if_any(&table.name, problems)?;
    if users.is_empty() {
        bail!("{} has no users below its header row", table.name);
    }
    let (added, unchanged) = s
        .api
        .import_users(&users)
        .await
        .map_err(|e| s.refused(e))
        .map_err(|e| by_row(&table.name, &e.to_string(), "user", &lines))?;
    let mut handed = Vec::new();
    if let Some(sheet) = codes {
        let surveyors: Vec<&User> = users
            .iter()
            .filter(|u| u.role == fieldsync::access::Role::Surveyor && added.contains(&u.id))
            .collect();
        for user in surveyors {
            let made = s
                .api
                .create_enrollment(&user.id, valid_days * 86_400)
                .await
                .map_err(|e| s.refused(e))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the users were imported, but no code could be made for {}: {e}; make \
                         the codes with `fieldsync admin token enroll USER`",
                        user.id
                    )
                })?;
            handed.push((user, made));
        }
        write_codes(s, sheet, &handed)?;
    }
    if s.json {
        return s.print_json(&serde_json::json!({
            "added": added,
            "unchanged": unchanged,
            "codes": handed.iter().map(|(u, m)| serde_json::json!({
                "user_id": u.id,
                "code": m.code,
                "expires": crate::cli::rfc3339(m.info.expires_ms),
            })).collect::<Vec<_>>(),
        }));
    }
    let already = match unchanged {
        0 => String::new(),
        k => format!("; {k} were already there as written"),
    };
    println!("imported {} user(s) from {}{already}", added.len(), table.name);
    if let Some(sheet) = codes {
        println!(
            "wrote {} enrollment code(s), one per new surveyor, valid {valid_days} day(s), to {}: \
             print it and hand each surveyor their line",
            handed.len(),
            sheet.display()
        );
    }
    Ok(())
}

/// The sheet of codes to print: one line per surveyor.
fn write_codes(
    s: &Session,
    path: &Path,
    handed: &[(&fieldsync::access::User, fieldsync_client::api::NewEnrollment)],
) -> anyhow::Result<()> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Mã đăng ký")?;
    let bold = Format::new().set_bold();
    let headers = [
        ("Tên đăng nhập", 16.0),
        ("Họ tên", 24.0),
        ("Địa bàn", 32.0),
        ("Mã đăng ký", 14.0),
        ("Hết hạn (giờ Việt Nam, UTC+7)", 28.0),
        ("Đường dẫn ứng dụng", 60.0),
    ];
    for (c, (h, width)) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
        sheet.set_column_width(c as u16, *width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    for (r, (user, made)) in handed.iter().enumerate() {
        let row = r as u32 + 1;
        let areas: Vec<String> = user.areas.iter().map(|a| s.place(a)).collect();
        let link = match made.app_url.as_str() {
            "" => String::new(),
            url => format!("{url}#enroll={}", made.code),
        };
        sheet.write_string(row, 0, &user.id)?;
        sheet.write_string(row, 1, &user.name)?;
        sheet.write_string(row, 2, areas.join("; "))?;
        sheet.write_string(row, 3, &made.code)?;
        sheet.write_string(row, 4, crate::cli::when_short(made.info.expires_ms))?;
        sheet.write_string(row, 5, link)?;
    }
    book.save(path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}
