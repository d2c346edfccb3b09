//! Signing in with a token (a session is made; the token stays in the
//! server's session map), signing out, and the language cookie.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::html::{page, Lang, Section, E};
use super::session::{self, Secret};
use super::{
    cookie, error_page, forged, html_response, lang_of, see_other, set_cookie, Form, Web,
    LANG_COOKIE, SESSION_COOKIE, SIGNIN_COOKIE,
};
use crate::app::{Error, Kind};

/// `/lang/en`: remembers the language in a cookie and goes back.
pub(super) async fn set_lang(headers: HeaderMap, Path(lang): Path<String>) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return error_page(lang_of(&headers), None, &Error::invalid("languages: vi, en"));
    };
    let back = headers.get(header::REFERER).and_then(|r| r.to_str().ok()).and_then(back_to);
    let back = back.unwrap_or_else(|| "/".into());
    let mut response = see_other(&back);
    set_cookie(
        &mut response,
        &format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict", lang.code()),
    );
    response
}

/// The path of `referer` to go back to, if it is a path of this site: a
/// browser reads `/\host` (and a path with a tab or newline in it) as
/// another site, so any backslash or control character sends the browser to
/// `/` instead.
fn back_to(referer: &str) -> Option<String> {
    let (_, rest) = referer.split_once("://")?;
    let path = &rest[rest.find('/')?..];
    let safe = !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    safe.then(|| path.to_owned())
}

pub(super) async fn form_page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if cookie(&headers, SESSION_COOKIE).and_then(|id| web.sessions.get(id)).is_some() {
        return see_other("/queue");
    }
    signin_form(lang_of(&headers), StatusCode::OK, None)
}

/// The sign-in form. Its CSRF token is also set in a short-lived cookie
/// (there is no session yet), and the two must match on POST.
fn signin_form(lang: Lang, status: StatusCode, problem: Option<&str>) -> Response {
    let csrf = session::random_id();
    let problem = problem
        .map(|p| format!("<p class=\"error\" id=\"problem\">{}</p>", E(p)))
        .unwrap_or_default();
    let body = format!(
        "<section class=\"signin\"><h1>{title}</h1>{problem}\
         <form method=\"post\" action=\"/signin\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"token\">{label}</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required \
         placeholder=\"fs_…\">\
         <button id=\"signin\" type=\"submit\">{button}</button></form>\
         <p class=\"hint\">{hint}</p></section>",
        title = lang.pick("Đăng nhập", "Sign in"),
        label = lang.pick("Mã đăng nhập (token)", "Your token"),
        button = lang.pick("Đăng nhập", "Sign in"),
        hint = lang.pick(
            "Dùng mã do quản trị viên cấp (giống mã dùng trên máy tính bảng và lệnh fieldsync).",
            "Use the token an admin issued you (the same one the tablet and the fieldsync \
             command use).",
        ),
    );
    let mut response = html_response(
        status,
        page(lang, lang.pick("Đăng nhập", "Sign in"), None, Section::None, &body),
    );
    set_cookie(
        &mut response,
        &format!("{SIGNIN_COOKIE}={csrf}; Path=/signin; Max-Age=3600; HttpOnly; SameSite=Strict"),
    );
    response
}

pub(super) async fn signin(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = lang_of(&headers);
    let form = Form::parse(&body);
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    match form.get("csrf") {
        Some(token) if !expected.is_empty() && session::same(token, expected) => {}
        _ => return error_page(lang, None, &forged()),
    }
    let token = form.get("token").unwrap_or_default().trim();
    if token.is_empty() {
        let problem = lang.pick("Hãy nhập mã đăng nhập.", "Enter your token.");
        return signin_form(lang, StatusCode::BAD_REQUEST, Some(problem));
    }
    match web.sign_in(token) {
        Ok(user) => {
            let id = web.sessions.create(&user.id, Secret::new(token));
            tracing::info!(user = %user.id, "signed in on the web");
            let mut response = see_other("/queue");
            set_cookie(
                &mut response,
                &format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"),
            );
            set_cookie(&mut response, &format!("{SIGNIN_COOKIE}=; Path=/signin; Max-Age=0"));
            response
        }
        Err(e) if e.kind == Kind::Unauthenticated => {
            let problem = lang.pick(
                "Mã đăng nhập không đúng, đã hết hạn hoặc đã bị thu hồi.",
                "That token is unknown, expired or revoked.",
            );
            signin_form(lang, StatusCode::UNAUTHORIZED, Some(problem))
        }
        Err(e) => error_page(lang, None, &e),
    }
}

pub(super) async fn signout(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = match web.ctx(&headers) {
        Ok(ctx) => ctx,
        Err(response) => return *response,
    };
    if let Err(response) = ctx.check_csrf(&Form::parse(&body)) {
        return *response;
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        web.sessions.remove(id);
    }
    let mut response = see_other("/signin");
    set_cookie(
        &mut response,
        &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn going_back_stays_on_this_site() {
        assert_eq!(
            back_to("http://h:8080/queue?period=2022").as_deref(),
            Some("/queue?period=2022")
        );
        assert_eq!(back_to("https://h/").as_deref(), Some("/"));
        for away in [
            "http://h//evil.example",
            "http://h/\\evil.example",
            "http://h/\\/evil",
            "http://h/\tx",
            "http://h",
            "/queue",
        ] {
            assert_eq!(back_to(away), None, "{away:?}");
        }
    }
}
