//! `fieldsync admin org-unit add` and `admin indicator add`: the catalogue
//! that tablets set up from now on see.

use anyhow::bail;
use fieldsync::validate::{check_id, check_name};
use fieldsync::{Level, OrgUnit, ValueKind};
use fieldsync_client::api::NewIndicator;

use super::AddIndicator;
use crate::cli::Session;

pub(super) async fn add_org_unit(
    s: &Session,
    id: String,
    name: String,
    level: &str,
    parent: Option<String>,
) -> anyhow::Result<()> {
    let level = match level {
        "province" => Level::Province,
        "district" => Level::District,
        "commune" => Level::Commune,
        _ => Level::Village,
    };
    let unit = OrgUnit {
        id: id.trim().to_owned(),
        name,
        level,
        parent: parent.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
    };
    unit.check_new()?;
    let added = s.api.add_org_unit(&unit).await.map_err(|e| s.refused(e))?;
    let parent_id = added.parent.clone().unwrap_or_default();
    if s.json {
        return s.print_json(&serde_json::json!({
            "id": added.id,
            "name": added.name,
            "level": level.as_str(),
            "parent_id": parent_id,
        }));
    }
    let under = match parent_id.as_str() {
        "" => String::new(),
        p => format!(" under {} ({p})", s.place(p)),
    };
    println!(
        "added {} {} ({}){under}; tablets set up from now on see it",
        level.as_str(),
        added.id,
        added.name
    );
    Ok(())
}

pub(super) async fn add_indicator(s: &Session, command: AddIndicator) -> anyhow::Result<()> {
    let AddIndicator { code, name_vi, name_en, unit, kind, scale, parent, max } = command;
    let decimal_scale = match (kind.as_str(), scale) {
        ("integer", None | Some(0)) => None,
        ("integer", Some(_)) => {
            bail!("an integer indicator has no digits after the point: leave out --scale")
        }
        (_, scale) => Some(scale.unwrap_or(2)),
    };
    check_id("an indicator code", code.trim())?;
    for (what, text) in [("Vietnamese name", &name_vi), ("English name", &name_en)] {
        check_name(&format!("the {what} of indicator {}", code.trim()), text)?;
    }
    check_name(&format!("the unit of indicator {}", code.trim()), unit.trim())?;
    let new = NewIndicator {
        code: code.trim().to_owned(),
        name_vi,
        name_en,
        unit: unit.trim().to_owned(),
        decimal_scale,
        parent: parent.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
        max_per_village: max.trim().to_owned(),
    };
    let added = s.api.add_indicator(&new).await.map_err(|e| s.refused(e))?;
    let parent_code = added.parent.clone().unwrap_or_default();
    if s.json {
        return s.print_json(&serde_json::json!({
            "code": added.code,
            "name_vi": added.name_vi,
            "name_en": added.name_en,
            "unit": added.unit,
            "kind": if added.kind == ValueKind::Integer { "integer" } else { "decimal" },
            "scale": u32::from(added.kind.scale()),
            "parent_code": parent_code,
            "max_per_village": added.max_per_village.to_string(),
        }));
    }
    let part = match parent_code.as_str() {
        "" => String::new(),
        p => format!(", part of {p}"),
    };
    println!(
        "added indicator {} ({}, at most {} per village{part}); tablets set up from now on see it",
        added.code, added.unit, added.max_per_village
    );
    Ok(())
}
