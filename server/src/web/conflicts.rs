//! Open conflicts, one conflict side by side, and its settlement; calls of
//! the review use cases ([`crate::app::review`]) as the caller.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use fieldsync::sync::{Conflict, RawValue};
use fieldsync::validate::check_typed;
use fieldsync::{Catalogue, FieldKey, GeoPoint, Reason, Value};

use super::html::{time, url, Lang};
use super::pages::{conflict, conflicts, Section};
use super::said::said;
use super::{
    area_options, http_status, place, see_other, short_device, value_text, Ctx, Form, Posted,
};
use crate::app::{Choice, ConflictQuery, Error, Kind};

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
    let rows = reply.conflicts.iter().map(|c| row(lang, &catalogue, c)).collect();
    let view = conflicts::View {
        resolved: form.get("resolved").map(|key| {
            let mut parts = key.splitn(3, '|').map(url);
            let (v, p, f) = (parts.next(), parts.next(), parts.next());
            format!(
                "/conflicts/{}/{}/{}",
                v.unwrap_or_default(),
                p.unwrap_or_default(),
                f.unwrap_or_default()
            )
        }),
        period: period.to_owned(),
        area: area.to_owned(),
        areas: area_options(&catalogue, &ctx.user, area),
        rows,
        next: reply.next,
    };
    ctx.page(lang.pick("Xung đột", "Conflicts"), Section::Conflicts, conflicts::render(&view, lang))
}

/// A conflict as the list shows it.
fn row(lang: Lang, catalogue: &Catalogue, c: &Conflict) -> conflicts::Row {
    let (village, above) = place(catalogue, &c.at.village_id);
    let field = c.at.field.as_str();
    conflicts::Row {
        village_id: c.at.village_id.clone(),
        period: c.at.period.to_string(),
        field: field.to_owned(),
        village,
        above,
        field_name: lang.field(catalogue, field),
        base: base_text(lang, &c.base_value, c.base_version),
        values: c
            .candidates
            .iter()
            .map(|k| (value_text(lang, &k.value), k.stamp.author.clone()))
            .collect(),
    }
}

/// The value both sides started from; none when the field was new.
fn base_text(lang: Lang, base: &Value, version: u64) -> String {
    match version {
        1.. => value_text(lang, base),
        0 => lang.pick("(chưa có)", "(none)").to_owned(),
    }
}

pub async fn detail(
    Path((village, period, field)): Path<(String, String, String)>,
    ctx: Ctx,
) -> Response {
    conflict_page(&ctx, village, period, field, None).await
}

/// A settlement the caller sent and was refused: shown on the conflict's
/// page again, with what they typed.
struct Refused {
    error: Error,
    pick: String,
    value: String,
    comment: String,
}

async fn conflict_page(
    ctx: &Ctx,
    village: String,
    period: String,
    field: String,
    refused: Option<Refused>,
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
    let current = detail
        .fields
        .iter()
        .find(|f| f.at.field.as_str() == field)
        .map(|f| (value_text(lang, &f.value), lang.unit(&catalogue, &field).to_owned()));
    let candidates = conflict
        .candidates
        .iter()
        .map(|k| conflict::Candidate {
            value: value_text(lang, &k.value),
            author: k.stamp.author.clone(),
            device: short_device(&k.stamp.device.to_string()),
            received: time(k.stamp.received_at_ms),
        })
        .collect();
    let settled = conflict.resolution.as_ref().map(|r| conflict::Settled {
        value: value_text(lang, &r.value),
        who: if r.user_name.is_empty() { &r.user_id } else { &r.user_name }.clone(),
        at: time(r.at_ms),
        comment: r.comment.clone(),
    });
    let status = match &refused {
        Some(r) => http_status(r.error.kind),
        None => StatusCode::OK,
    };
    let view = conflict::View {
        field_name: lang.field(&catalogue, &field),
        current,
        base: base_text(lang, &conflict.base_value, conflict.base_version),
        candidates,
        csrf: ctx.csrf.clone(),
        // Only those who may settle it are offered the choice.
        settle: conflict.open && ctx.user.reviewer(&catalogue, &village).is_ok(),
        placeholder: match FieldKey::parse(&field) {
            FieldKey::Location => "18.3559,105.8877",
            FieldKey::Note => "",
            FieldKey::Indicator(_) => lang.pick("12,5", "12.5"),
        },
        settled,
        problem: refused.as_ref().map(|r| said(lang, &catalogue, &r.error)),
        pick: refused.as_ref().map(|r| r.pick.clone()).unwrap_or_default(),
        value: refused.as_ref().map(|r| r.value.clone()).unwrap_or_default(),
        comment: refused.map(|r| r.comment).unwrap_or_default(),
        village_id: village,
        period,
        field,
        name,
        above,
    };
    let body = conflict::render(&view, lang);
    let mut page = ctx.page(lang.pick("Xung đột", "Conflict"), Section::Conflicts, body);
    *page.status_mut() = status;
    page
}

pub async fn resolve(
    Path((village, period, field)): Path<(String, String, String)>,
    Posted(ctx, form): Posted,
) -> Response {
    let (entered, pick) = (form.text("value").trim(), form.text("pick"));
    let comment = form.text("comment").to_owned();
    let choice = choice(&ctx, (&village, &period, &field), entered, pick).await;
    let (v, p, f, c) = (village.clone(), period.clone(), field.clone(), comment.clone());
    let settled = match choice {
        Ok(choice) => {
            ctx.run(move |app, user| app.resolve(user, (&v, &p, &f), choice, &c)).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    match settled {
        Ok(()) => see_other(&format!(
            "/conflicts?resolved={}",
            url(&format!("{village}|{period}|{field}"))
        )),
        // A refused input: the page again, with what was typed kept.
        Err(error) if error.kind == Kind::Invalid => {
            let refused =
                Refused { error, pick: pick.to_owned(), value: entered.to_owned(), comment };
            conflict_page(&ctx, village, period, field, Some(refused)).await
        }
        Err(e) => ctx.fail(&e),
    }
}

/// The settlement the form asks for: a kept value, or a typed one read as
/// people type numbers ("1,5" or "1.5") and checked as the app checks it.
async fn choice(
    ctx: &Ctx,
    (village, period, field): (&str, &str, &str),
    entered: &str,
    pick: &str,
) -> Result<Choice, Error> {
    let typed = |refusal| {
        Error::refused(Reason::BadValue {
            field: field.to_owned(),
            typed: entered.to_owned(),
            refusal,
        })
    };
    match (entered, pick) {
        ("", "") => Err(Error::refused(Reason::NoChoice)),
        ("", pick) => match pick.parse::<u32>() {
            Ok(i) => Ok(Choice::Pick(i as usize)),
            Err(_) => Err(Error::invalid(format!("{pick:?} is not a choice"))),
        },
        (_, "") => match FieldKey::parse(field) {
            FieldKey::Indicator(code) => {
                let catalogue = ctx.catalogue();
                let Some(indicator) = catalogue.indicator(&code) else {
                    return Err(Error::not_found(format!("there is no indicator {code:?}")));
                };
                let (v, p) = (village.to_owned(), period.to_owned());
                let detail = ctx.run(move |app, user| app.submission(user, &v, &p)).await?;
                let siblings: Vec<(&fieldsync::Indicator, fieldsync::Amount)> = detail
                    .fields
                    .iter()
                    .filter(|f| f.at.field.as_str() != field)
                    .filter_map(|f| match &f.value {
                        Value::Amount(a) => Some((catalogue.indicator(f.at.field.as_str())?, *a)),
                        _ => None,
                    })
                    .collect();
                match check_typed(indicator, entered, &siblings) {
                    Ok(Some(amount)) => Ok(Choice::Value(RawValue::Amount(amount.to_string()))),
                    Ok(None) => Err(Error::refused(Reason::NoChoice)),
                    Err(refusal) => Err(typed(refusal)),
                }
            }
            FieldKey::Note => Ok(Choice::Value(RawValue::Text(entered.to_owned()))),
            FieldKey::Location => match entered.parse::<GeoPoint>() {
                Ok(p) => Ok(Choice::Value(RawValue::Point(p))),
                Err(e) => Err(Error::from_core(e)),
            },
        },
        (_, _) => Err(Error::refused(Reason::ChoiceAndValue)),
    }
}
