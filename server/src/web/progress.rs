//! Progress against plan: for a period, an area and a level below it, each
//! unit's done / plan / % per indicator as a table and as bars (inline SVG),
//! with drill-down and the CSV and XLSX downloads of the same rows. The rows
//! are those of the report use case ([`crate::app::report`]), as the caller.

use std::fmt::Write as _;

use axum::extract::RawQuery;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use fieldsync::{Amount, Level};
use fieldsync_export as export;

use super::html::{url, Lang, Section, E};
use super::{area_options, Ctx, Form};
use crate::app::report::UnitTotal;
use crate::app::{Error, ExportQuery};

/// Org units shown on one page (downloads have them all).
pub const MAX_UNITS: usize = 300;
const LEVELS: [Level; 4] = [Level::Province, Level::District, Level::Commune, Level::Village];

/// What the page shows: period, area, level, whether pending reports count.
struct View {
    period: String,
    area: String,
    area_level: Level,
    level: Level,
    pending: bool,
}

impl View {
    async fn of(form: &Form, ctx: &Ctx) -> Result<View, Error> {
        let period = match form.text("period") {
            "" => ctx.run(|app, _| app.year_to_show()).await?.to_string(),
            p => p.to_owned(),
        };
        let catalogue = ctx.catalogue();
        let catalogue = catalogue.as_ref();
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
            "" => LEVELS.into_iter().find(|l| l.parent() == Some(unit.level)).unwrap_or(unit.level),
            l => LEVELS.into_iter().find(|x| x.as_str() == l).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown level {l:?}: province, district, commune or village"
                ))
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
        Ok(View { period, area, area_level: unit.level, level, pending })
    }

    fn query(&self) -> String {
        format!(
            "period={}&area={}&level={}{}",
            url(&self.period),
            url(&self.area),
            self.level.as_str(),
            if self.pending { "&pending=1" } else { "" }
        )
    }

    fn request(&self, level: Level) -> ExportQuery {
        ExportQuery {
            level,
            period: self.period.clone(),
            area: self.area.clone(),
            include_pending: self.pending,
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

/// Horizontal bars, one per unit: the plan in grey, what is done over it.
fn bars(lang: Lang, rows: &[&UnitTotal], unit: &str) -> String {
    const LABEL: f64 = 210.0;
    const WIDTH: f64 = 640.0;
    const ROW: f64 = 22.0;
    let max = rows.iter().map(|r| number(Some(r.done)).max(number(r.plan))).fold(0.0, f64::max);
    let scale = if max > 0.0 { (WIDTH - LABEL - 120.0) / max } else { 0.0 };
    let height = ROW * rows.len() as f64 + 4.0;
    let mut svg = format!(
        "<svg class=\"bars\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = ROW * i as f64 + 2.0;
        let name: String = r.unit_name.chars().take(30).collect();
        let (done, plan) = (number(Some(r.done)) * scale, number(r.plan) * scale);
        let _ = write!(
            svg,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\">{}</text>",
            E(&name),
            x = LABEL - 6.0,
            ty = y + 14.0
        );
        if plan > 0.0 {
            let _ = write!(
                svg,
                "<rect class=\"plan\" x=\"{LABEL}\" y=\"{y}\" width=\"{plan:.1}\" height=\"18\"/>"
            );
        }
        let over = r.percent.is_some_and(|p| p.tenths >= 1000);
        let _ = write!(
            svg,
            "<rect class=\"{}\" x=\"{LABEL}\" y=\"{y2}\" width=\"{done:.1}\" height=\"12\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{}</text>",
            if over { "done met" } else { "done" },
            E(&reads(lang, r, unit)),
            y2 = y + 3.0,
            tx = LABEL + done.max(plan) + 6.0,
            ty = y + 14.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

pub async fn page(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    match render(&ctx, &Form::query(query.as_deref())).await {
        Ok(body) => ctx.page(ctx.lang.pick("Tiến độ", "Progress"), Section::Progress, &body),
        Err(e) => ctx.fail(&e),
    }
}

async fn render(ctx: &Ctx, form: &Form) -> Result<String, Error> {
    let lang = ctx.lang;
    let catalogue = ctx.catalogue();
    let view = View::of(form, ctx).await?;
    let (totals, _) = rows(ctx, view.request(view.area_level), 1).await?;
    let (rows, cut) = rows(ctx, view.request(view.level), MAX_UNITS).await?;
    let area_name = catalogue.org_unit(&view.area).map_or(view.area.as_str(), |u| &u.name);
    let mut body = String::new();
    // Where we are: the area's ancestors, for going back up.
    let mut crumbs: Vec<String> = catalogue
        .lineage(&view.area)
        .skip(1)
        .filter(|u| ctx.user.covers(&catalogue, &u.id))
        .map(|u| {
            format!(
                "<a href=\"/progress?period={}&amp;area={}{}\">{}</a>",
                url(&view.period),
                url(&u.id),
                if view.pending { "&amp;pending=1" } else { "" },
                E(&u.name)
            )
        })
        .collect();
    crumbs.reverse();
    crumbs.push(E(area_name).to_string());
    let _ = write!(
        body,
        "<p class=\"crumbs\" id=\"crumbs\">{}</p><h1>{} — {} {}</h1>",
        crumbs.join(" › "),
        lang.pick("Tiến độ", "Progress"),
        E(area_name),
        E(&view.period)
    );
    // The form.
    let _ = write!(
        body,
        "<form class=\"filter\" method=\"get\" action=\"/progress\">\
         <label>{} <input name=\"period\" value=\"{}\" size=\"8\"></label>\
         <label>{} <select name=\"area\">{}</select></label><label>{} <select name=\"level\">",
        lang.pick("Kỳ báo cáo", "Period"),
        E(&view.period),
        lang.pick("Địa bàn", "Area"),
        area_options(&catalogue, &ctx.user, &view.area, lang, false),
        lang.pick("Theo cấp", "By level"),
    );
    for l in LEVELS.into_iter().filter(|l| *l >= view.area_level) {
        let selected = if l == view.level { " selected" } else { "" };
        let _ =
            write!(body, "<option value=\"{}\"{selected}>{}</option>", l.as_str(), lang.level(l));
    }
    let _ = write!(
        body,
        "</select></label><label><input type=\"checkbox\" name=\"pending\" value=\"1\"{}> {}</label>\
         <button type=\"submit\">{}</button></form>\
         <p class=\"downloads\"><a id=\"csv\" href=\"/progress.csv?{q}\">{}</a> · \
         <a id=\"xlsx\" href=\"/progress.xlsx?{q}\">{}</a></p>",
        if view.pending { " checked" } else { "" },
        lang.pick("Tính cả báo cáo chờ duyệt", "Count reports waiting for review"),
        lang.pick("Xem", "Show"),
        lang.pick("Tải CSV", "Download CSV"),
        lang.pick("Tải Excel (XLSX)", "Download Excel (XLSX)"),
        q = E(&view.query()),
    );
    if cut {
        let _ = write!(
            body,
            "<p class=\"notice\">{} {MAX_UNITS}. {}</p>",
            lang.pick("Chỉ hiện", "Showing only the first"),
            lang.pick(
                "Chọn địa bàn nhỏ hơn, hoặc tải về để có đủ.",
                "Choose a smaller area, or download them all."
            )
        );
    }
    let drill = LEVELS.into_iter().find(|l| l.parent() == Some(view.level));
    for ind in catalogue.indicators_in_order() {
        let unit = lang.unit(&catalogue, &ind.code);
        let these: Vec<&UnitTotal> = rows.iter().filter(|r| r.indicator == ind.code).collect();
        let name = lang.pick(&ind.name_vi, &ind.name_en);
        let unit_label = match unit {
            "" => String::new(),
            u => format!(" ({u})"),
        };
        let _ = write!(
            body,
            "<section class=\"indicator\" data-indicator=\"{}\"><h2>{}{}</h2>",
            E(&ind.code),
            E(name),
            E(&unit_label)
        );
        if let Some(total) = totals.iter().find(|r| r.indicator == ind.code) {
            let _ = write!(
                body,
                "<p class=\"total\">{}: <b data-total=\"{}\">{}</b>{}</p>",
                E(area_name),
                E(&ind.code),
                E(&reads(lang, total, unit)),
                notes(lang, total, unit)
            );
        }
        if these.is_empty() {
            body.push_str("</section>");
            continue;
        }
        body.push_str(&bars(lang, &these, unit));
        let _ = write!(
            body,
            "<table class=\"list\"><thead><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">KH</th>\
             <th class=\"num\">% KH</th><th>{}</th></tr></thead><tbody>",
            lang.level(view.level),
            lang.pick("Thực hiện", "Done"),
            lang.pick("Ghi chú", "Notes"),
        );
        for r in these {
            let name = match drill {
                Some(level) => format!(
                    "<a href=\"/progress?period={}&amp;area={}&amp;level={}{}\">{}</a>",
                    url(&view.period),
                    url(&r.unit_id),
                    level.as_str(),
                    if view.pending { "&amp;pending=1" } else { "" },
                    E(&r.unit_name)
                ),
                None => E(&r.unit_name).to_string(),
            };
            let _ = write!(
                body,
                "<tr data-unit=\"{}\"><td>{name}</td><td class=\"num done\">{}</td><td class=\"num plan\">{}</td>\
                 <td class=\"num pct\">{}</td><td>{}</td></tr>",
                E(&r.unit_id),
                E(&lang.amount_of(r.done)),
                E(&r.plan.map(|p| lang.amount_of(p)).unwrap_or_default()),
                r.percent.map(|p| lang.percent(p.tenths)).unwrap_or_default(),
                notes(lang, r, unit),
            );
        }
        body.push_str("</tbody></table></section>");
    }
    Ok(body)
}

/// Pending and conflicted counts beside a total.
fn notes(lang: Lang, row: &UnitTotal, unit: &str) -> String {
    let mut out = Vec::new();
    if row.pending_count > 0 {
        let unit = match unit {
            "" => String::new(),
            u => format!(" {u}"),
        };
        out.push(format!(
            "<span class=\"pending\">{} {} ({}{})</span>",
            lang.pick("chờ duyệt:", "pending:"),
            row.pending_count,
            E(&lang.amount_of(row.pending)),
            E(&unit)
        ));
    }
    if row.conflict_count > 0 {
        out.push(format!(
            "<span class=\"warn\">{} {}</span>",
            lang.pick("xung đột:", "in conflict:"),
            row.conflict_count
        ));
    }
    if row.exceeds_whole {
        out.push(format!(
            "<span class=\"warn\">{}</span>",
            lang.pick("vượt chỉ tiêu tổng!", "above its whole!")
        ));
    }
    match out.is_empty() {
        true => String::new(),
        false => format!(" · {}", out.join(" · ")),
    }
}

/// The rows of a download: what the page shows, every unit of it.
async fn download_rows(ctx: &Ctx, form: &Form) -> Result<(View, Vec<export::Row>), Error> {
    let catalogue = ctx.catalogue();
    let view = View::of(form, ctx).await?;
    let (rows, _) = rows(ctx, view.request(view.level), usize::MAX).await?;
    let rows = rows
        .iter()
        .map(|r| export::Row::from_total(r, &catalogue))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok((view, rows))
}

fn file_name(view: &View, ext: &str) -> String {
    let safe: String = format!("fieldsync-{}-{}-{}", view.area, view.level.as_str(), view.period)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    format!("{safe}.{ext}")
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
    let (view, rows) = match download_rows(&ctx, &Form::query(query.as_deref())).await {
        Ok(x) => x,
        Err(e) => return ctx.fail(&e),
    };
    let mut bytes = Vec::new();
    let written = (|| {
        let mut csv = export::Csv::new(&mut bytes, true)?;
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
    let catalogue = ctx.catalogue();
    let level = view.level;
    let written = tokio::task::spawn_blocking(move || {
        export::xlsx_bytes(&[(level, rows)], &catalogue).map_err(|e| e.to_string())
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
