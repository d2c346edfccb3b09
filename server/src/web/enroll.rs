//! "Thiết bị của điều tra viên" (surveyors' devices): the surveyors a
//! supervisor may enroll, a one-time code for one of them as a QR code and
//! in large letters, the open codes and the devices' tokens, each
//! revocable. Calls of the enrollment use cases ([`crate::app::admin`]) as
//! the caller; the rules (whose devices the caller may enroll) are the
//! store's.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::html::{time, url, Lang, Section, E};
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

/// How long a code made on the page works: seconds and the words for it
/// (the first is the default).
const EXPIRIES: [(u64, &str, &str); 4] = [
    (24 * 3600, "24 giờ", "24 hours"),
    (3600, "1 giờ", "1 hour"),
    (3 * 24 * 3600, "3 ngày", "3 days"),
    (7 * 24 * 3600, "7 ngày", "7 days"),
];

fn expiry_options(lang: Lang) -> String {
    EXPIRIES
        .iter()
        .map(|(s, vi, en)| format!("<option value=\"{s}\">{}</option>", lang.pick(vi, en)))
        .collect()
}

fn title(lang: Lang) -> &'static str {
    lang.pick("Thiết bị của điều tra viên", "Surveyors' devices")
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
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1>", title(lang));
    let notice = match form.text("done") {
        "revoked-code" => Some(lang.pick("Đã thu hồi mã đăng ký.", "The code is revoked.")),
        "revoked-token" => Some(lang.pick(
            "Đã thu hồi mã của thiết bị: thiết bị đó không đồng bộ được nữa.",
            "The device's token is revoked: that device can no longer sync.",
        )),
        _ => None,
    };
    if let Some(notice) = notice {
        let _ = write!(body, "<p class=\"notice\" id=\"notice\">{notice}</p>");
    }
    let _ = write!(
        body,
        "<p class=\"hint\">{}</p><h2>{}</h2>",
        lang.pick(
            "Tạo mã đăng ký dùng một lần cho điều tra viên: mở ứng dụng trên điện thoại hoặc máy \
             tính bảng, quét mã QR hoặc nhập mã.",
            "Make a one-time code for a surveyor: they open the app on their phone or tablet and \
             scan the QR code or type the code.",
        ),
        lang.pick("Điều tra viên", "Surveyors"),
    );
    if users.is_empty() {
        let _ = write!(
            body,
            "<p class=\"empty\" id=\"no-surveyors\">{}</p>",
            lang.pick(
                "Không có điều tra viên nào trong địa bàn của bạn.",
                "No surveyor works in your areas."
            )
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"list\" id=\"surveyors\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
             <th></th></tr></thead><tbody>",
            lang.pick("Họ tên", "Name"),
            lang.pick("Tên đăng nhập", "User id"),
            lang.pick("Địa bàn", "Areas"),
        );
        for u in &users {
            let areas: Vec<String> = u
                .areas
                .iter()
                .map(|a| catalogue.org_unit(a).map_or_else(|| a.clone(), |o| o.name.clone()))
                .collect();
            let _ = write!(
                body,
                "<tr data-user=\"{id}\"><td>{}</td><td>{id}</td><td>{}</td><td>\
                 <form method=\"post\" action=\"/devices/enroll\">{}\
                 <input type=\"hidden\" name=\"user\" value=\"{id}\">\
                 <select name=\"expires\" aria-label=\"{}\">{}</select> \
                 <button type=\"submit\" data-enroll=\"{id}\">{}</button></form></td></tr>",
                E(&u.name),
                E(&areas.join(", ")),
                ctx.csrf_field(),
                lang.pick("Hiệu lực", "Valid for"),
                expiry_options(lang),
                lang.pick("Tạo mã đăng ký", "Make a code"),
                id = E(&u.id),
            );
        }
        body.push_str("</tbody></table>");
        if more {
            let _ = write!(
                body,
                "<p class=\"hint\">{}</p>",
                lang.pick(
                    "Chỉ hiện 500 người đầu tiên; dùng lệnh `fieldsync admin token enroll` cho \
                     những người khác.",
                    "Only the first 500 are shown; use `fieldsync admin token enroll` for others."
                )
            );
        }
    }
    let _ = write!(body, "<h2>{}</h2>", lang.pick("Mã chưa dùng", "Codes not used yet"));
    if codes.is_empty() {
        let _ = write!(
            body,
            "<p class=\"empty\" id=\"no-codes\">{}</p>",
            lang.pick("Không có mã nào đang chờ.", "No open code.")
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"list\" id=\"codes\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
             <th>{}</th><th></th></tr></thead><tbody>",
            lang.pick("Điều tra viên", "Surveyor"),
            lang.pick("Người tạo", "Made by"),
            lang.pick("Tạo lúc", "Made"),
            lang.pick("Hết hạn", "Expires"),
        );
        for c in &codes {
            let _ = write!(
                body,
                "<tr data-code=\"{id}\"><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>\
                 <form method=\"post\" action=\"/devices/codes/{}/revoke\">{}\
                 <button type=\"submit\" data-revoke-code=\"{id}\">{}</button></form></td></tr>",
                E(&c.user_name),
                E(&c.user_id),
                E(&c.created_by),
                time(c.created_ms),
                time(c.expires_ms),
                url(&c.id),
                ctx.csrf_field(),
                lang.pick("Thu hồi", "Revoke"),
                id = E(&c.id),
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(body, "<h2>{}</h2>", lang.pick("Thiết bị đang dùng", "Devices in use"));
    if tokens.is_empty() {
        let _ = write!(
            body,
            "<p class=\"empty\" id=\"no-devices\">{}</p>",
            lang.pick("Chưa có thiết bị nào.", "No device yet.")
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"list\" id=\"devices\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
             <th></th></tr></thead><tbody>",
            lang.pick("Điều tra viên", "Surveyor"),
            lang.pick("Thiết bị", "Device"),
            lang.pick("Từ", "Since"),
        );
        let names: std::collections::HashMap<&str, &str> =
            users.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
        for t in &tokens {
            let _ = write!(
                body,
                "<tr data-token=\"{id}\"><td>{}</td><td>{}</td><td>{}</td><td>\
                 <form method=\"post\" action=\"/devices/tokens/{}/revoke\">{}\
                 <button type=\"submit\" data-revoke-token=\"{id}\">{}</button></form></td></tr>",
                E(&names
                    .get(t.user_id.as_str())
                    .map_or_else(|| t.user_id.clone(), |name| format!("{name} ({})", t.user_id))),
                E(&t.label),
                time(t.created_ms),
                url(&t.id),
                ctx.csrf_field(),
                lang.pick("Thu hồi", "Revoke"),
                id = E(&t.id),
            );
        }
        body.push_str("</tbody></table>");
    }
    ctx.page(title(lang), Section::Devices, &body)
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
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"/devices\">{}</a></p>\
         <h1>{} {}</h1><section class=\"enrollment\" id=\"enrollment\">\
         <div class=\"qr\">{svg}</div>\
         <p>{}</p><p class=\"code\" id=\"code\">{}</p>\
         <p>{} <a id=\"app-url\" href=\"{link}\">{}</a></p>\
         <p id=\"expires\">{} {}</p><p class=\"hint\">{}</p></section>",
        title(lang),
        lang.pick("Mã đăng ký cho", "Enrollment code for"),
        E(&info.user_name),
        lang.pick(
            "Quét mã QR bằng máy ảnh của điện thoại, hoặc mở ứng dụng và nhập mã:",
            "Scan the QR code with the phone's camera, or open the app and type the code:",
        ),
        E(&reply.code),
        lang.pick("Ứng dụng:", "The app:"),
        E(&reply.app_url),
        lang.pick("Dùng được một lần, hết hạn lúc", "Works once; expires"),
        time(info.expires_ms),
        lang.pick(
            "Mã chỉ hiện một lần này. Nếu lộ mã, hãy thu hồi nó trong danh sách.",
            "The code is shown this once. If someone else saw it, revoke it in the list.",
        ),
        link = E(&link),
    );
    ctx.page(title(lang), Section::Devices, &body)
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
