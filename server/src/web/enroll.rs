//! "Thiết bị của điều tra viên" (surveyors' devices): the surveyors a
//! supervisor may enroll, a one-time code for one of them as a QR code and
//! in large letters, the open codes and the devices' tokens, each
//! revocable. Calls of the enrollment use cases ([`crate::app::admin`]) as
//! the caller; the rules (whose devices the caller may enroll) are the
//! store's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::html::{time, Lang};
use super::pages::devices::{self, title, Done, EXPIRIES};
use super::pages::{enrollment, Section};
use super::{see_other, Ctx, Form, Posted, Web};
use crate::app::{Error, Kind};

/// The QR code of `text` as an inline SVG element (no XML declaration),
/// dark on white, at least 240 px wide.
pub fn qr_svg(text: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| Error::internal(format!("cannot draw the QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen("<svg ", "<svg id=\"qr\" role=\"img\" aria-label=\"QR\" ", 1))
}

/// The link a device opens: the app, with the code in the fragment (never
/// sent to any server by the browser).
pub fn enroll_link(app_url: &str, code: &str) -> String {
    format!("{app_url}#enroll={code}")
}

/// `http://host:port` as the browser asked for this page, if the Host
/// header is a plain host name or address (anything else is ignored).
fn origin(headers: &HeaderMap, secure: bool) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    let scheme = if secure { "https" } else { "http" };
    plain.then(|| format!("{scheme}://{host}"))
}

/// A refusal of the enrollment methods, said in the page's language: the
/// server's own words (English) follow a Vietnamese sentence on Vietnamese
/// pages, so the supervisor knows what to do either way.
fn refused(lang: Lang, e: &Error) -> Error {
    let vi = match e.kind {
        Kind::Denied => "Bạn chỉ tạo và thu hồi được mã cho điều tra viên thuộc địa bàn của mình.",
        Kind::NotFound => "Không tìm thấy người dùng hoặc mã này (có thể mã đã hết hạn).",
        Kind::Exhausted => {
            "Đã có quá nhiều mã chưa dùng: hãy thu hồi bớt (hoặc chờ chúng hết hạn) rồi tạo lại."
        }
        Kind::Invalid | Kind::OutOfSequence => "Chưa tạo hoặc thu hồi được:",
        _ => return e.clone(),
    };
    match lang {
        Lang::Vi => Error { message: format!("{vi} ({})", e.message), ..e.clone() },
        Lang::En => e.clone(),
    }
}

pub async fn page(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let lang = ctx.lang;
    let form = Form::query(query.as_deref());
    let (users, more) = match ctx.run(|app, user| app.enrollable(user)).await {
        Ok(found) => found,
        Err(e) => return ctx.fail(&e),
    };
    let codes = match ctx.run(|app, user| app.enrollments(user, "")).await {
        Ok(codes) => codes,
        Err(e) => return ctx.fail(&refused(lang, &e)),
    };
    let tokens = match ctx.run(|app, user| app.device_tokens(user)).await {
        Ok(tokens) => tokens,
        Err(e) => return ctx.fail(&e),
    };
    let catalogue = ctx.catalogue();
    let names: HashMap<&str, &str> =
        users.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
    let view = devices::View {
        done: match form.text("done") {
            "revoked-code" => Some(Done::RevokedCode),
            "revoked-token" => Some(Done::RevokedToken),
            _ => None,
        },
        surveyors: users
            .iter()
            .map(|u| devices::Surveyor {
                id: u.id.clone(),
                name: u.name.clone(),
                areas: u
                    .areas
                    .iter()
                    .map(|a| catalogue.org_unit(a).map_or_else(|| a.clone(), |o| o.name.clone()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        more,
        codes: codes
            .iter()
            .map(|c| devices::Code {
                id: c.id.clone(),
                user_name: c.user_name.clone(),
                user_id: c.user_id.clone(),
                created_by: c.created_by.clone(),
                created: time(c.created_ms),
                expires: time(c.expires_ms),
            })
            .collect(),
        devices: tokens
            .iter()
            .map(|t| devices::Device {
                id: t.id.clone(),
                who: names
                    .get(t.user_id.as_str())
                    .map_or_else(|| t.user_id.clone(), |name| format!("{name} ({})", t.user_id)),
                label: t.label.clone(),
                since: time(t.created_ms),
            })
            .collect(),
        csrf: ctx.csrf.clone(),
    };
    ctx.page(title(lang), Section::Devices, devices::render(&view, lang))
}

/// Makes a code and shows it, once: the QR code, the code in large
/// letters, the app's address and when the code expires.
pub async fn create(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Posted(ctx, form): Posted,
) -> Response {
    let lang = ctx.lang;
    let surveyor = form.text("user").to_owned();
    let expires_in_s = EXPIRIES
        .iter()
        .map(|(s, _, _)| *s)
        .find(|s| s.to_string() == form.text("expires"))
        .unwrap_or(0);
    let origin = origin(&headers, web.secure);
    let made = ctx
        .run(move |app, user| {
            app.create_enrollment(user, &surveyor, expires_in_s, origin.as_deref())
        })
        .await;
    let reply = match made {
        Ok(made) => made,
        Err(e) => return ctx.fail(&refused(lang, &e)),
    };
    let info = &reply.info;
    let link = enroll_link(&reply.app_url, &reply.code);
    let svg = match qr_svg(&link) {
        Ok(svg) => svg,
        Err(e) => return ctx.fail(&e),
    };
    let view = enrollment::View {
        user_name: info.user_name.clone(),
        code: reply.code.clone(),
        app_url: reply.app_url.clone(),
        link,
        qr_svg: svg,
        expires: time(info.expires_ms),
    };
    ctx.page(title(lang), Section::Devices, enrollment::render(&view, lang))
}

pub async fn revoke_code(Path(id): Path<String>, Posted(ctx, _): Posted) -> Response {
    match ctx.run(move |app, user| app.revoke_enrollment(user, &id)).await {
        Ok(_) => see_other("/devices?done=revoked-code"),
        Err(e) => ctx.fail(&refused(ctx.lang, &e)),
    }
}

pub async fn revoke_token(Path(id): Path<String>, Posted(ctx, _): Posted) -> Response {
    match ctx.run(move |app, user| app.revoke_device_token(user, &id)).await {
        Ok(_) => see_other("/devices?done=revoked-token"),
        Err(e) => ctx.fail(&refused(ctx.lang, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_inline_svg() {
        let svg = qr_svg("http://127.0.0.1:8080/app/#enroll=ABCDE-FGHJK").unwrap();
        assert!(svg.starts_with("<svg id=\"qr\""), "{}", &svg[..60]);
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
    }

    #[test]
    fn only_a_plain_host_header_names_the_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::HOST, "10.0.0.5:8080".parse().unwrap());
        assert_eq!(origin(&headers, false).unwrap(), "http://10.0.0.5:8080");
        headers.insert(axum::http::header::HOST, "evil\"><script>".parse().unwrap());
        assert!(origin(&headers, false).is_none());
    }
}
