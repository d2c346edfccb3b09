//! Progress against plan: for a period, an area and a level below it, each
//! unit's done / plan / % per indicator as a table and as bars (inline SVG),
//! with drill-down and the CSV and XLSX downloads of the same rows. The rows
//! are those of the report use case ([`crate::app::report`]), as the caller.

use axum::extract::RawQuery;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use fieldsync::{Amount, Level};
use fieldsync_export as export;

use super::html::{url, Lang};
use super::pages::{progress, report, Section};
use super::{area_options, Ctx, Form};
use crate::app::report::UnitTotal;
use crate::app::{Error, ExportQuery};

/// Org units shown on one page (downloads have them all).
pub const MAX_UNITS: usize = 300;

/// What the page shows: period, area, level, whether pending reports count.
struct Scope {
    period: String,
    area: String,
    area_level: Level,
    level: Level,
    pending: bool,
    /// The day whose org tree to report on (empty: the period's own).
    tree: String,
    /// That tree.
    on: std::sync::Arc<fieldsync::Catalogue>,
}

impl Scope {
    async fn of(form: &Form, ctx: &Ctx) -> Result<Scope, Error> {
        let period = match form.text("period") {
            "" => ctx.run(|app, _| app.year_to_show()).await?.to_string(),
            p => p.to_owned(),
        };
        // The tree the page reports on: the period's own, or that of the
        // day asked for, once the tree has changed.
        let current = ctx.catalogue();
        let day = match form.text("tree").trim() {
            "" => period.parse::<fieldsync::Period>().ok().map(|p| p.last_day()),
            d => Some(d.parse::<fieldsync::Date>().map_err(|e| Error::invalid(e.to_string()))?),
        };
        let on = match day.filter(|_| current.has_changed()) {
            Some(d) => {
                std::sync::Arc::new(current.tree_at(d).map_err(|e| Error::invalid(e.to_string()))?)
            }
            None => current,
        };
        let catalogue = on.as_ref();
        let area = match form.text("area") {
            "" => ctx.user.areas.first().cloned().or_else(|| {
                catalogue.units_at(Level::Province, None).first().map(|u| u.id.clone())
            }),
            a => Some(a.to_owned()),
        }
        .ok_or_else(|| Error::not_found("there is no org unit to report on"))?;
        let unit = catalogue
            .org_unit(&area)
            .ok_or_else(|| Error::not_found(format!("unknown org unit {area:?}")))?;
        let level = match form.text("level") {
            "" => catalogue.level_below(unit.level).unwrap_or(unit.level),
            l => catalogue.levels().into_iter().find(|x| x.as_str() == l).ok_or_else(|| {
                let levels: Vec<&str> = catalogue.levels().iter().map(|l| l.as_str()).collect();
                Error::invalid(format!("unknown level {l:?}: {}", levels.join(", ")))
            })?,
        };
        if level < unit.level {
            return Err(Error::invalid(format!(
                "{} is a {}: choose its own level or one below it",
                unit.name,
                unit.level.as_str()
            )));
        }
        let pending = form.text("pending") == "1";
        let tree = form.text("tree").trim().to_owned();
        let area_level = unit.level;
        Ok(Scope { period, area, area_level, level, pending, tree, on: std::sync::Arc::clone(&on) })
    }

    fn query(&self) -> String {
        format!(
            "period={}&area={}&level={}{}",
            url(&self.period),
            url(&self.area),
            self.level.as_str(),
            if self.pending { "&pending=1" } else { "" }
        ) + &match self.tree.as_str() {
            "" => String::new(),
            day => format!("&tree={}", url(day)),
        }
    }

    fn request(&self, level: Level) -> ExportQuery {
        ExportQuery {
            level,
            period: self.period.clone(),
            area: self.area.clone(),
            include_pending: self.pending,
            tree_date: self.tree.clone(),
        }
    }
}

/// The report rows of `query`, at most `max_units` units' worth (`true`:
/// there were more).
async fn rows(
    ctx: &Ctx,
    query: ExportQuery,
    max_units: usize,
) -> Result<(Vec<UnitTotal>, bool), Error> {
    ctx.run(move |app, user| app.report(user, &query, max_units)).await
}

/// "440/458 km — 96,1%" (or "760 km" without a plan).
fn reads(lang: Lang, row: &UnitTotal, unit: &str) -> String {
    let unit = match unit {
        "" => String::new(),
        u => format!(" {u}"),
    };
    let done = lang.amount_of(row.done);
    match (row.plan, row.percent) {
        (None, _) => format!("{done}{unit}"),
        (Some(plan), Some(p)) => {
            format!("{done}/{}{unit} — {}%", lang.amount_of(plan), lang.percent(p.tenths))
        }
        (Some(plan), None) => format!("{done}/{}{unit}", lang.amount_of(plan)),
    }
}

fn number(amount: Option<Amount>) -> f64 {
    amount.and_then(|a| a.to_string().parse().ok()).unwrap_or(0.0)
}

pub async fn page(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    match view(&ctx, &Form::query(query.as_deref())).await {
        Ok(view) => {
            let body = progress::render(&view, ctx.lang);
            ctx.page(ctx.lang.pick("Tiến độ", "Progress"), Section::Progress, body)
        }
        Err(e) => ctx.fail(&e),
    }
}

/// The page's view: the area's totals and its units' rows per indicator.
async fn view(ctx: &Ctx, form: &Form) -> Result<progress::View, Error> {
    let lang = ctx.lang;
    let scope = Scope::of(form, ctx).await?;
    let catalogue = std::sync::Arc::clone(&scope.on);
    let (totals, _) = rows(ctx, scope.request(scope.area_level), 1).await?;
    let (rows, cut) = rows(ctx, scope.request(scope.level), MAX_UNITS).await?;
    let area_name = catalogue.org_unit(&scope.area).map_or(scope.area.as_str(), |u| &u.name);
    // Where we are: the area's ancestors, for going back up.
    let mut crumbs: Vec<(String, String)> = catalogue
        .lineage(&scope.area)
        .skip(1)
        .filter(|u| ctx.user.covers(&catalogue, &u.id))
        .map(|u| (u.id.clone(), u.name.clone()))
        .collect();
    crumbs.reverse();
    let indicators = catalogue
        .indicators_in_order()
        .map(|ind| {
            let unit = lang.unit(&catalogue, &ind.code);
            let total = totals.iter().find(|r| r.indicator == ind.code);
            progress::Indicator {
                code: ind.code.clone(),
                name: lang.pick(&ind.name_vi, &ind.name_en).to_owned(),
                unit_label: match unit {
                    "" => String::new(),
                    u => format!(" ({u})"),
                },
                total: total.map(|t| figure(lang, t, unit)),
                rows: rows
                    .iter()
                    .filter(|r| r.indicator == ind.code)
                    .map(|r| unit_row(lang, r, unit))
                    .collect(),
            }
        })
        .collect();
    let only = match form.text("indicator") {
        "" => None,
        code if catalogue.indicator(code).is_some() => Some(code.to_owned()),
        code => return Err(Error::not_found(format!("there is no indicator {code:?}"))),
    };
    Ok(progress::View {
        area: scope.area.clone(),
        only,
        area_name: area_name.to_owned(),
        crumbs,
        areas: area_options(&catalogue, &ctx.user, &scope.area),
        levels: catalogue.levels().into_iter().filter(|l| *l >= scope.area_level).collect(),
        query: scope.query(),
        cut,
        max_units: MAX_UNITS,
        drill: catalogue.level_below(scope.level),
        indicators,
        level: scope.level,
        pending: scope.pending,
        period: scope.period,
        tree_changed: ctx.catalogue().has_changed(),
        tree: scope.tree,
    })
}

/// A total as read, with its notes.
fn figure(lang: Lang, row: &UnitTotal, unit: &str) -> progress::Figure {
    let pending = (row.pending_count > 0).then(|| {
        let amount = lang.amount_of(row.pending);
        let amount = match unit {
            "" => amount,
            u => format!("{amount} {u}"),
        };
        (row.pending_count as u64, amount)
    });
    progress::Figure {
        reads: reads(lang, row, unit),
        notes: progress::Notes {
            pending,
            conflicts: row.conflict_count as u64,
            exceeds_whole: row.exceeds_whole,
        },
    }
}

/// A unit's figures.
fn unit_row(lang: Lang, r: &UnitTotal, unit: &str) -> progress::Row {
    progress::Row {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        done: lang.amount_of(r.done),
        plan: r.plan.map(|p| lang.amount_of(p)).unwrap_or_default(),
        percent: r.percent.map(|p| lang.percent(p.tenths)).unwrap_or_default(),
        figure: figure(lang, r, unit),
        done_n: number(Some(r.done)),
        plan_n: number(r.plan),
        met: r.percent.is_some_and(|p| p.tenths >= 1000),
    }
}

/// The rows of a download: what the page shows, every unit of it.
async fn download_rows(ctx: &Ctx, form: &Form) -> Result<(Scope, Vec<export::Row>), Error> {
    let catalogue = ctx.catalogue();
    let scope = Scope::of(form, ctx).await?;
    let (rows, _) = rows(ctx, scope.request(scope.level), usize::MAX).await?;
    let rows = rows
        .iter()
        .map(|r| export::Row::from_total(r, &catalogue))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok((scope, rows))
}

/// The name of a download of `view`: `tien-do-huyen-huong-khe-2022-xa.csv`
/// for the communes of Hương Khê in 2022.
fn file_name(view: &Scope, ext: &str) -> String {
    let level = view.level.kinds_vi().first().copied().unwrap_or_default();
    let area = super::area_name(&view.on, &view.area);
    super::download_name(&["tiến độ", area, &view.period, level], ext)
}

pub(super) fn attachment(content_type: &'static str, name: &str, bytes: Vec<u8>) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

pub async fn csv(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let form = Form::query(query.as_deref());
    let people = form.get("people").is_some();
    let (view, rows) = match download_rows(&ctx, &form).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(&e),
    };
    let mut bytes = Vec::new();
    let written = (|| {
        // For people: Vietnamese headers; else the stable English columns.
        let mut csv = match people {
            true => export::Csv::for_people(&mut bytes)?,
            false => export::Csv::new(&mut bytes, true)?,
        };
        for row in &rows {
            csv.row(row)?;
        }
        csv.finish()
    })();
    match written {
        Ok(()) => attachment("text/csv; charset=utf-8", &file_name(&view, "csv"), bytes),
        Err(e) => ctx.fail(&Error::internal(e.to_string())),
    }
}

pub async fn xlsx(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let (view, rows) = match download_rows(&ctx, &Form::query(query.as_deref())).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(&e),
    };
    // The tree the rows are of names the area and the units' parents.
    let catalogue = std::sync::Arc::clone(&view.on);
    let title = export::XlsxTitle {
        area: catalogue.org_unit(&view.area).map_or(view.area.clone(), |u| u.name.clone()),
        period: view.period.clone(),
        include_pending: view.pending,
        exported_on: fieldsync::Date::in_vietnam(crate::app::now_ms()),
    };
    let level = view.level;
    let written = tokio::task::spawn_blocking(move || {
        export::xlsx_bytes(&[(level, rows)], &catalogue, &title).map_err(|e| e.to_string())
    })
    .await;
    match written {
        Ok(Ok(bytes)) => attachment(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &file_name(&view, "xlsx"),
            bytes,
        ),
        Ok(Err(e)) => ctx.fail(&Error::internal(e)),
        Err(e) => ctx.fail(&Error::internal(e.to_string())),
    }
}

/// The report to print on A4, in the layout of the province's own: the
/// area's figures in a sentence as the report writes them, then a table per
/// unit of the level asked for (every unit), wholes followed by their parts.
pub async fn report(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let form = Form::query(query.as_deref());
    match report_view(&ctx, &form).await {
        Ok(view) => {
            let body = super::pages::report::render(&view, ctx.lang);
            ctx.page(&view.title, Section::Progress, body)
        }
        Err(e) => ctx.fail(&e),
    }
}

async fn report_view(ctx: &Ctx, form: &Form) -> Result<report::View, Error> {
    let lang = ctx.lang;
    let vi = lang == Lang::Vi;
    let scope = Scope::of(form, ctx).await?;
    let catalogue = std::sync::Arc::clone(&scope.on);
    let (totals, _) = rows(ctx, scope.request(scope.area_level), 1).await?;
    let units = match scope.level == scope.area_level {
        true => Vec::new(),
        false => rows(ctx, scope.request(scope.level), usize::MAX).await?.0,
    };
    let area_name = catalogue.org_unit(&scope.area).map_or(scope.area.as_str(), |u| &u.name);
    let line = |r: &export::Row| {
        let ind = catalogue.indicator(&r.indicator);
        report::Line {
            part: ind.is_some_and(|i| i.parent.is_some()),
            indicator: ind
                .map_or(r.indicator.clone(), |i| lang.pick(&i.name_vi, &i.name_en).to_owned()),
            unit: lang.unit(&catalogue, &r.indicator).to_owned(),
            done: lang.amount(&r.done),
            plan: lang.amount(&r.plan),
            percent: match r.percent.as_str() {
                "" => String::new(),
                p => format!("{}%", lang.amount(p)),
            },
            notes: export::report_notes(r, vi),
        }
    };
    // The rows come unit by unit; each unit's in the report's order.
    let mut sections: Vec<report::Section> = Vec::new();
    let mut unit: Vec<export::Row> = Vec::new();
    let mut close = |unit: &mut Vec<export::Row>, area: bool| {
        let rows = export::in_report_order(std::mem::take(unit), &catalogue);
        let Some(first) = rows.first() else { return };
        sections.push(report::Section {
            unit_id: first.unit_id.clone(),
            name: first.unit_name.clone(),
            prose: match area {
                true => {
                    let lines: Vec<String> =
                        rows.iter().map(|r| export::report_line(r, vi)).collect();
                    format!("{}.", lines.join("; "))
                }
                false => String::new(),
            },
            lines: rows.iter().map(line).collect(),
        });
    };
    let named = |t: &UnitTotal| {
        export::Row::from_total(t, &catalogue).map_err(|e| Error::internal(e.to_string()))
    };
    for t in &totals {
        unit.push(named(t)?);
    }
    close(&mut unit, true);
    for t in &units {
        if unit.first().is_some_and(|r| r.unit_id != t.unit_id) {
            close(&mut unit, false);
        }
        unit.push(named(t)?);
    }
    close(&mut unit, false);
    let counted = match scope.pending {
        true => lang.pick("gồm cả số liệu chờ duyệt", "approved and pending figures"),
        false => lang.pick("số liệu đã duyệt", "approved figures"),
    };
    let fieldsync::Date { year, month, day } = fieldsync::Date::in_vietnam(crate::db::now_ms());
    Ok(report::View {
        title: format!(
            "{} — {area_name}, {}",
            lang.pick("Kết cấu hạ tầng", "Infrastructure"),
            match lang {
                Lang::Vi => export::period_vi(&scope.period),
                Lang::En => scope.period.clone(),
            }
        ),
        subtitle: format!(
            "{} {} · {counted} · {} {day:02}/{month:02}/{year}",
            lang.pick("Theo từng", "By"),
            lang.level(scope.level).to_lowercase(),
            lang.pick("in ngày", "printed on")
        ),
        back: format!("/progress?{}", scope.query()),
        sections,
    })
}
