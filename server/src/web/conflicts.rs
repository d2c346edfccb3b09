//! Open conflicts, one conflict side by side, and its settlement; calls of
//! the `Review` service as the caller.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use fieldsync::{FieldKey, GeoPoint};
use fieldsync_proto::convert;
use fieldsync_proto::v1::review_server::Review;
use fieldsync_proto::v1::{
    resolve_conflict_request, value, GetSubmissionRequest, ListConflictsRequest,
    ResolveConflictRequest, Value,
};
use tonic::Status;

use super::html::{time, url, Section, E};
use super::{area_options, place, see_other, short_device, value_text, Ctx, Form, Posted, Web};

/// Conflicts per page.
pub const PAGE_SIZE: u32 = 100;

pub async fn list(State(web): State<Arc<Web>>, ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let lang = ctx.lang;
    let form = Form::query(query.as_deref());
    let (period, area) = (form.text("period"), form.text("area"));
    let request = ListConflictsRequest {
        area: area.into(),
        period: period.into(),
        include_settled: false,
        limit: PAGE_SIZE,
        after: form.text("after").into(),
    };
    let reply = match web.review.list_conflicts(ctx.request(request)).await {
        Ok(reply) => reply.into_inner(),
        Err(status) => return ctx.fail(&status),
    };
    let catalogue = web.store.catalogue();
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
            let (village, above) = place(&catalogue, &c.village_id);
            let values: Vec<String> = c
                .candidates
                .iter()
                .map(|k| format!("{} ({})", E(&value_text(lang, &k.value)), E(&k.author)))
                .collect();
            let _ = write!(
                body,
                "<tr data-conflict=\"{}/{}/{}\"><td><a href=\"/conflicts/{}/{}/{}\">{}</a> \
                 <span class=\"detail\">{}</span></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                E(&c.village_id),
                E(&c.period),
                E(&c.field),
                url(&c.village_id),
                url(&c.period),
                url(&c.field),
                E(&village),
                E(&above),
                E(&c.period),
                E(&lang.field(&catalogue, &c.field)),
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
fn base_text(lang: super::html::Lang, base: &Option<Value>, version: u64) -> String {
    match (base, version) {
        (Some(_), 1..) => value_text(lang, base),
        _ => lang.pick("(chưa có)", "(none)").to_owned(),
    }
}

pub async fn detail(
    State(web): State<Arc<Web>>,
    Path((village, period, field)): Path<(String, String, String)>,
    ctx: Ctx,
) -> Response {
    let lang = ctx.lang;
    let get = GetSubmissionRequest { village_id: village.clone(), period: period.clone() };
    let detail = match web.review.get_submission(ctx.request(get)).await {
        Ok(reply) => reply.into_inner(),
        Err(status) => return ctx.fail(&status),
    };
    let Some(conflict) = detail.conflicts.iter().find(|c| c.field == field) else {
        return ctx.fail(&Status::not_found(format!(
            "{field} of {village} in {period} is not in conflict"
        )));
    };
    let catalogue = web.store.catalogue();
    let (name, above) = place(&catalogue, &village);
    let current = detail.fields.iter().find(|f| f.field == field);
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
        let _ = write!(body, "<td>{}</td>", E(&k.author));
    }
    let _ = write!(body, "</tr><tr><th>{}</th><td></td>", lang.pick("Máy tính bảng", "Tablet"));
    for k in &conflict.candidates {
        let _ = write!(body, "<td><code>{}</code></td>", E(&short_device(&k.device_id)));
    }
    let _ = write!(body, "</tr><tr><th>{}</th><td></td>", lang.pick("Nhận lúc", "Received"));
    for k in &conflict.candidates {
        let _ = write!(body, "<td>{}</td>", time(k.received_at_ms));
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
    State(web): State<Arc<Web>>,
    Path((village, period, field)): Path<(String, String, String)>,
    Posted(ctx, form): Posted,
) -> Response {
    let entered = form.text("value");
    let choice = match (entered, form.text("pick")) {
        ("", "") => {
            return ctx.fail(&Status::invalid_argument(
                "choose one of the competing values, or enter the right value",
            ))
        }
        ("", pick) => match pick.parse::<u32>() {
            Ok(i) => resolve_conflict_request::Choice::Pick(i),
            Err(_) => {
                return ctx.fail(&Status::invalid_argument(format!("{pick:?} is not a choice")))
            }
        },
        (text, _) => {
            let kind = match FieldKey::parse(&field) {
                FieldKey::Indicator(_) => value::Kind::Amount(text.to_owned()),
                FieldKey::Note => value::Kind::Text(text.to_owned()),
                FieldKey::Location => match text.parse::<GeoPoint>() {
                    Ok(p) => value::Kind::Point(convert::point_to_wire(p)),
                    Err(e) => return ctx.fail(&Status::invalid_argument(e.to_string())),
                },
            };
            resolve_conflict_request::Choice::Value(Value { kind: Some(kind) })
        }
    };
    let request = ResolveConflictRequest {
        village_id: village,
        period,
        field,
        choice: Some(choice),
        comment: form.text("comment").to_owned(),
    };
    match web.review.resolve_conflict(ctx.request(request)).await {
        Ok(_) => see_other("/conflicts?resolved=1"),
        Err(status) => ctx.fail(&status),
    }
}
