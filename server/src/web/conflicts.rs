//! Open conflicts, one conflict side by side, and its settlement; calls of
//! the review use cases ([`crate::app::review`]) as the caller.

use axum::extract::{Path, RawQuery};
use axum::response::Response;
use fieldsync::sync::{Conflict, RawValue};
use fieldsync::{Catalogue, FieldKey, GeoPoint, Value};

use super::html::{time, Lang};
use super::pages::{conflict, conflicts, Section};
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
    let rows = reply.conflicts.iter().map(|c| row(lang, &catalogue, c)).collect();
    let view = conflicts::View {
        resolved: form.get("resolved").is_some(),
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
            FieldKey::Indicator(_) => "12.5",
        },
        settled,
        village_id: village,
        period,
        field,
        name,
        above,
    };
    ctx.page(lang.pick("Xung đột", "Conflict"), Section::Conflicts, conflict::render(&view, lang))
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
