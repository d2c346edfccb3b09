//! Open conflicts, one conflict side by side, and its settlement; calls of
//! the review use cases ([`crate::app::review`]) as the caller.

use std::fmt::Write as _;

use axum::extract::{Path, RawQuery};
use axum::response::Response;
use fieldsync::sync::RawValue;
use fieldsync::{FieldKey, GeoPoint, Value};

use super::html::{time, url, Section, E};
use super::{area_options, place, see_other, short_device, value_text, Ctx, Form, Posted};
use crate::app::{Choice, ConflictQuery, Error};

/// Conflicts per page.
pub const PAGE_SIZE: u32 = 100;

pub async fn list(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let lang = ctx.lang;
    let form = Form::query(query.as_deref());
    let (period, area) = (form.text("period"), form.text("area"));
    let request = ConflictQuery {
        area: area.into(),
        period: period.into(),
        include_settled: false,
        limit: PAGE_SIZE,
        after: form.text("after").into(),
    };
    let reply = match ctx.run(move |app, user| app.list_conflicts(user, &request)).await {
        Ok(list) => list,
        Err(e) => return ctx.fail(&e),
    };
    let catalogue = ctx.catalogue();
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1>", lang.pick("Xung đột số liệu", "Conflicting values"));
    if form.get("resolved").is_some() {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">{}</p>",
            lang.pick("Đã giải quyết xung đột.", "The conflict is settled.")
        );
    }
    let _ = write!(
        body,
        "<form class=\"filter\" method=\"get\" action=\"/conflicts\">\
         <label>{} <input name=\"period\" value=\"{}\" placeholder=\"2022\" size=\"8\"></label>\
         <label>{} <select name=\"area\">{}</select></label><button type=\"submit\">{}</button></form>",
        lang.pick("Kỳ báo cáo", "Period"),
        E(period),
        lang.pick("Địa bàn", "Area"),
        area_options(&catalogue, &ctx.user, area, lang, true),
        lang.pick("Lọc", "Filter"),
    );
    if reply.conflicts.is_empty() {
        let _ = write!(
            body,
            "<p class=\"empty\" id=\"no-conflicts\">{}</p>",
            lang.pick("Không có xung đột nào đang mở.", "No open conflict.")
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"list\" id=\"conflicts\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
             <th>{}</th><th>{}</th></tr></thead><tbody>",
            lang.pick("Thôn", "Village"),
            lang.pick("Kỳ", "Period"),
            lang.pick("Chỉ tiêu", "Indicator"),
            lang.pick("Giá trị gốc", "Base value"),
            lang.pick("Các giá trị khác nhau", "Competing values"),
        );
        for c in &reply.conflicts {
            let (village, above) = place(&catalogue, &c.at.village_id);
            let (cperiod, field) = (c.at.period.to_string(), c.at.field.as_str());
            let values: Vec<String> = c
                .candidates
                .iter()
                .map(|k| format!("{} ({})", E(&value_text(lang, &k.value)), E(&k.stamp.author)))
                .collect();
            let _ = write!(
                body,
                "<tr data-conflict=\"{}/{}/{}\"><td><a href=\"/conflicts/{}/{}/{}\">{}</a> \
                 <span class=\"detail\">{}</span></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                E(&c.at.village_id),
                E(&cperiod),
                E(field),
                url(&c.at.village_id),
                url(&cperiod),
                url(field),
                E(&village),
                E(&above),
                E(&cperiod),
                E(&lang.field(&catalogue, field)),
                E(&base_text(lang, &c.base_value, c.base_version)),
                values.join(" · "),
            );
        }
        body.push_str("</tbody></table>");
        if !reply.next.is_empty() {
            let _ = write!(
                body,
                "<p><a id=\"next\" href=\"/conflicts?period={}&amp;area={}&amp;after={}\">{} →</a></p>",
                url(period),
                url(area),
                url(&reply.next),
                lang.pick("Trang sau", "Next page")
            );
        }
    }
    ctx.page(lang.pick("Xung đột", "Conflicts"), Section::Conflicts, &body)
}

/// The value both sides started from; none when the field was new.
fn base_text(lang: super::html::Lang, base: &Value, version: u64) -> String {
    match version {
        1.. => value_text(lang, base),
        0 => lang.pick("(chưa có)", "(none)").to_owned(),
    }
}

pub async fn detail(
    Path((village, period, field)): Path<(String, String, String)>,
    ctx: Ctx,
) -> Response {
    let lang = ctx.lang;
    let (v, p) = (village.clone(), period.clone());
    let detail = match ctx.run(move |app, user| app.submission(user, &v, &p)).await {
        Ok(detail) => detail,
        Err(e) => return ctx.fail(&e),
    };
    let Some(conflict) = detail.conflicts.iter().find(|c| c.at.field.as_str() == field) else {
        return ctx.fail(&Error::not_found(format!(
            "{field} of {village} in {period} is not in conflict"
        )));
    };
    let catalogue = ctx.catalogue();
    let (name, above) = place(&catalogue, &village);
    let current = detail.fields.iter().find(|f| f.at.field.as_str() == field);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"/conflicts\">{}</a> › <a href=\"/submissions/{}/{}\">{} {}</a></p>\
         <h1>{}</h1><p class=\"meta\">{} · {} · {} {}</p>",
        lang.pick("Xung đột", "Conflicts"),
        url(&village),
        url(&period),
        E(&name),
        E(&period),
        E(&lang.field(&catalogue, &field)),
        E(&name),
        E(&above),
        lang.pick("Kỳ", "Period"),
        E(&period),
    );
    if let Some(current) = current {
        let _ = write!(
            body,
            "<p class=\"meta\">{} <b id=\"current\">{}</b> {}</p>",
            lang.pick("Giá trị tạm thời:", "Provisional value:"),
            E(&value_text(lang, &current.value)),
            E(lang.unit(&catalogue, &field)),
        );
    }
    // Side by side: the base, then each competing value.
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/conflicts/{}/{}/{}\">{}\
         <table class=\"side\" id=\"candidates\"><thead><tr><th></th><th>{}</th>",
        url(&village),
        url(&period),
        url(&field),
        ctx.csrf_field(),
        lang.pick("Giá trị gốc", "Base"),
    );
    for (i, _) in conflict.candidates.iter().enumerate() {
        let _ = write!(body, "<th>{} {}</th>", lang.pick("Giá trị", "Value"), i + 1);
    }
    let _ = write!(
        body,
        "</tr></thead><tbody><tr><th>{}</th><td class=\"num\">{}</td>",
        lang.pick("Giá trị", "Value"),
        E(&base_text(lang, &conflict.base_value, conflict.base_version))
    );
    for (i, k) in conflict.candidates.iter().enumerate() {
        let _ = write!(
            body,
            "<td class=\"num candidate\" data-candidate=\"{i}\">{}</td>",
            E(&value_text(lang, &k.value))
        );
    }
    let _ = write!(body, "</tr><tr><th>{}</th><td></td>", lang.pick("Người nhập", "Recorded by"));
    for k in &conflict.candidates {
        let _ = write!(body, "<td>{}</td>", E(&k.stamp.author));
    }
    let _ = write!(body, "</tr><tr><th>{}</th><td></td>", lang.pick("Máy tính bảng", "Tablet"));
    for k in &conflict.candidates {
        let _ =
            write!(body, "<td><code>{}</code></td>", E(&short_device(&k.stamp.device.to_string())));
    }
    let _ = write!(body, "</tr><tr><th>{}</th><td></td>", lang.pick("Nhận lúc", "Received"));
    for k in &conflict.candidates {
        let _ = write!(body, "<td>{}</td>", time(k.stamp.received_at_ms));
    }
    // Only those who may settle it are offered the choice.
    if conflict.open && ctx.user.reviewer(&catalogue, &village).is_ok() {
        let _ = write!(body, "</tr><tr><th>{}</th><td></td>", lang.pick("Chọn", "Pick"));
        for (i, _) in conflict.candidates.iter().enumerate() {
            let _ = write!(
                body,
                "<td><label><input type=\"radio\" name=\"pick\" value=\"{i}\" id=\"pick-{i}\"> {}</label></td>",
                lang.pick("giữ giá trị này", "keep this value")
            );
        }
        let placeholder = match FieldKey::parse(&field) {
            FieldKey::Location => "18.3559,105.8877",
            FieldKey::Note => "",
            FieldKey::Indicator(_) => "12.5",
        };
        let _ = write!(
            body,
            "</tr></tbody></table>\
             <p><label>{} <input name=\"value\" id=\"value\" placeholder=\"{placeholder}\" maxlength=\"200\"></label></p>\
             <p><label>{} <textarea name=\"comment\" id=\"comment\" rows=\"2\" maxlength=\"2000\"></textarea></label></p>\
             <button id=\"resolve\" type=\"submit\">{}</button></form>",
            lang.pick(
                "Hoặc nhập giá trị đúng (dấu chấm cho phần thập phân):",
                "Or enter the right value (a dot for decimals):"
            ),
            lang.pick("Ghi chú cách giải quyết:", "Comment:"),
            lang.pick("Giải quyết xung đột", "Settle the conflict"),
        );
    } else {
        body.push_str("</tr></tbody></table></form>");
        if let Some(r) = &conflict.resolution {
            let _ = write!(
                body,
                "<p class=\"notice\" id=\"settled\">{} {} — {}, {}: <q>{}</q></p>",
                lang.pick("Đã giải quyết:", "Settled:"),
                E(&value_text(lang, &r.value)),
                E(if r.user_name.is_empty() { &r.user_id } else { &r.user_name }),
                time(r.at_ms),
                E(&r.comment),
            );
        }
    }
    ctx.page(lang.pick("Xung đột", "Conflict"), Section::Conflicts, &body)
}

pub async fn resolve(
    Path((village, period, field)): Path<(String, String, String)>,
    Posted(ctx, form): Posted,
) -> Response {
    let entered = form.text("value");
    let choice = match (entered, form.text("pick")) {
        ("", "") => {
            return ctx.fail(&Error::invalid(
                "choose one of the competing values, or enter the right value",
            ))
        }
        ("", pick) => match pick.parse::<u32>() {
            Ok(i) => Choice::Pick(i as usize),
            Err(_) => return ctx.fail(&Error::invalid(format!("{pick:?} is not a choice"))),
        },
        (text, _) => Choice::Value(match FieldKey::parse(&field) {
            FieldKey::Indicator(_) => RawValue::Amount(text.to_owned()),
            FieldKey::Note => RawValue::Text(text.to_owned()),
            FieldKey::Location => match text.parse::<GeoPoint>() {
                Ok(p) => RawValue::Point(p),
                Err(e) => return ctx.fail(&Error::from_core(e)),
            },
        }),
    };
    let comment = form.text("comment").to_owned();
    let settled = ctx
        .run(move |app, user| app.resolve(user, (&village, &period, &field), choice, &comment))
        .await;
    match settled {
        Ok(_) => see_other("/conflicts?resolved=1"),
        Err(e) => ctx.fail(&e),
    }
}
