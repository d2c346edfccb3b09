//! The web pages for supervisors and the province office, served over
//! HTTP/1.1 beside gRPC: sign in with a token, review the queue, settle
//! conflicts, follow progress against plan, download exports, enroll
//! surveyors' devices.
//!
//! The pages hold no rules of their own. Every read and every decision is a
//! call of the same use case ([`crate::app`]) the gRPC services call, as the
//! signed-in caller, on the blocking pool ([`Ctx::run`]); the caller is
//! signed in on every request by [`App::sign_in`] with the session's token,
//! as the gRPC interceptor signs calls in (token check, disabled users, the
//! per-user rate shared with gRPC). Refusals map to pages ([`error_page`]):
//! a denial to 403, not found to 404, bad input to 400.
//!
//! Server-rendered HTML and one small stylesheet; no scripts. The same
//! listener serves the surveyors' app ([`app`], at `/app/`) and the Connect
//! calls it syncs and enrolls with ([`crate::connect`], `/fieldsync.v1.*`).

pub mod app;
mod conflicts;
mod enroll;
mod form;
mod html;
mod pages;
mod progress;
mod queue_csv;
mod review;
mod said;
mod serve;
pub mod session;
mod signin;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use fieldsync::access::User;

use crate::app::{App, Error, Kind};
use html::Lang;
use maud::Markup;
use pages::{page, AreaOption, Section, Who};
use session::Sessions;

use crate::config::{WEB_MAX_CONCURRENT_REQUESTS, WEB_MAX_DOWNLOADS, WEB_MAX_FORM_BYTES};

const SESSION_COOKIE: &str = "fs_session";
const SIGNIN_COOKIE: &str = "fs_signin";
const LANG_COOKIE: &str = "fs_lang";

/// What the pages need: the use cases, the sessions.
pub struct Web {
    app: Arc<App>,
    sessions: Sessions,
    permits: tokio::sync::Semaphore,
    /// Queue downloads built at once (each may hold 100,000 rows).
    downloads: tokio::sync::Semaphore,
    /// Longest one request may take (408 after).
    request_timeout: std::time::Duration,
    /// Served over TLS: every cookie is then marked `Secure`.
    secure: bool,
    /// The app's Connect calls (`/fieldsync.v1.*`), when served.
    bridge: Option<crate::connect::Bridge>,
}

impl Web {
    /// The pages over `app`; a request may take the gRPC calls'
    /// `limits.request_timeout` and [`WEB_REQUEST_MARGIN`] more.
    ///
    /// [`WEB_REQUEST_MARGIN`]: crate::config::WEB_REQUEST_MARGIN
    pub fn new(app: Arc<App>, limits: &crate::Limits) -> Web {
        Web {
            request_timeout: limits.request_timeout + crate::config::WEB_REQUEST_MARGIN,
            app,
            sessions: Sessions::default(),
            permits: tokio::sync::Semaphore::new(WEB_MAX_CONCURRENT_REQUESTS),
            downloads: tokio::sync::Semaphore::new(WEB_MAX_DOWNLOADS),
            secure: false,
            bridge: None,
        }
    }

    /// Answers the app's Connect calls through `bridge`.
    pub fn with_bridge(mut self, bridge: crate::connect::Bridge) -> Web {
        self.bridge = Some(bridge);
        self
    }

    /// Whether the pages are served over TLS (so cookies are `Secure`).
    pub fn over_tls(mut self, secure: bool) -> Web {
        self.secure = secure;
        self
    }

    /// The user `token` signs in (within the user's call rate), or why not.
    fn sign_in(&self, token: &str) -> crate::app::Result<User> {
        self.app.sign_in(token)
    }

    /// The signed-in caller of a form post, and the form, once its CSRF
    /// token checks out.
    fn posted(&self, headers: &HeaderMap, body: &[u8]) -> Result<(Ctx, Form), Box<Response>> {
        let ctx = self.ctx(headers)?;
        let form = Form::parse(body);
        ctx.check_csrf(&form)?;
        Ok((ctx, form))
    }

    /// The signed-in caller of a browser request.
    fn ctx(&self, headers: &HeaderMap) -> Result<Ctx, Box<Response>> {
        let lang = lang_of(headers);
        let to_sign_in = || Box::new(see_other("/signin"));
        let Some(id) = cookie(headers, SESSION_COOKIE) else { return Err(to_sign_in()) };
        let Some(session) = self.sessions.get(id) else { return Err(to_sign_in()) };
        match self.sign_in(session.token.expose()) {
            Ok(user) => Ok(Ctx { user, csrf: session.csrf, lang, app: Arc::clone(&self.app) }),
            Err(e) if e.kind == Kind::Unauthenticated => {
                // The token was revoked or the user disabled: the session ends.
                self.sessions.remove(id);
                Err(to_sign_in())
            }
            Err(e) => Err(Box::new(error_page(lang, None, &e))),
        }
    }
}

/// A page's request from a signed-in caller: anyone else is sent to sign
/// in (or shown why not).
impl axum::extract::FromRequestParts<Arc<Web>> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        web: &Arc<Web>,
    ) -> Result<Self, Response> {
        web.ctx(&parts.headers).map_err(|response| *response)
    }
}

/// A form post from a signed-in caller, with its form, once its CSRF token
/// checks out. The body is read (and held to its size limit) first.
pub struct Posted(pub Ctx, pub Form);

impl axum::extract::FromRequest<Arc<Web>> for Posted {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        web: &Arc<Web>,
    ) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, web).await.map_err(IntoResponse::into_response)?;
        let (ctx, form) = web.posted(&headers, &body).map_err(|response| *response)?;
        Ok(Posted(ctx, form))
    }
}

/// The signed-in caller of one request.
pub struct Ctx {
    pub user: User,
    pub csrf: String,
    pub lang: Lang,
    app: Arc<App>,
}

impl Ctx {
    /// Runs a use case as this caller, on the blocking pool (the use cases
    /// read and write the store): the one way the pages reach [`App`].
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&App, &User) -> crate::app::Result<T> + Send + 'static,
    ) -> crate::app::Result<T> {
        let (app, user) = (Arc::clone(&self.app), self.user.clone());
        tokio::task::spawn_blocking(move || work(&app, &user))
            .await
            .map_err(|e| Error::internal(format!("store task failed: {e}")))?
    }

    /// The catalogue as it is now (names of places and indicators).
    fn catalogue(&self) -> Arc<fieldsync::Catalogue> {
        self.app.catalogue()
    }

    fn who(&self) -> Who<'_> {
        Who {
            name: &self.user.name,
            id: &self.user.id,
            csrf: &self.csrf,
            devices: self.user.role != fieldsync::access::Role::Surveyor,
        }
    }

    /// A full page for this caller.
    fn page(&self, title: &str, section: Section, body: Markup) -> Response {
        html_response(StatusCode::OK, page(self.lang, title, Some(&self.who()), section, body))
    }

    /// The error page for a refused use case.
    fn fail(&self, e: &Error) -> Response {
        error_page_named(self.lang, Some(&self.who()), &self.catalogue(), e)
    }

    /// Refuses a form whose CSRF token is missing or wrong.
    fn check_csrf(&self, form: &Form) -> Result<(), Box<Response>> {
        match form.get("csrf") {
            Some(token) if session::same(token, &self.csrf) => Ok(()),
            _ => Err(Box::new(self.fail(&forged()))),
        }
    }
}

fn forged() -> Error {
    Error::denied(
        "this form did not come from a page of this server (or the page is too old): \
         open the page again and resend",
    )
}

pub use form::Form;
pub use serve::{serve, Config};

/// The routes of the site.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(|| async { see_other("/queue") }))
        .route("/style.css", get(style))
        .route("/lang/{lang}", get(signin::set_lang))
        .route("/signin", get(signin::form_page).post(signin::signin))
        .route("/signout", post(signin::signout))
        .route("/queue", get(review::queue))
        .route("/queue.csv", get(queue_csv::queue_csv))
        .route("/queue/approve", post(review::bulk_approve))
        .route("/submissions/{village}/{period}", get(review::submission))
        .route("/submissions/{village}/{period}/decide", post(review::decide))
        .route("/conflicts", get(conflicts::list))
        .route(
            "/conflicts/{village}/{period}/{field}",
            get(conflicts::detail).post(conflicts::resolve),
        )
        .route("/progress", get(progress::page))
        .route("/progress.csv", get(progress::csv))
        .route("/progress.xlsx", get(progress::xlsx))
        .route("/progress/report", get(progress::report))
        .route("/devices", get(enroll::page))
        .route("/devices/enroll", post(enroll::create))
        .route("/devices/codes/{id}/revoke", post(enroll::revoke_code))
        .route("/devices/tokens/{id}/revoke", post(enroll::revoke_token))
        .route("/app", get(app::redirect))
        .route("/app/", get(app::index))
        .route("/app/{*path}", get(app::file))
        .route("/fieldsync.v1.Sync/{method}", any(connect))
        .route("/fieldsync.v1.Enroll/{method}", any(connect))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&web), guard))
        .layer(DefaultBodyLimit::max(WEB_MAX_FORM_BYTES))
        .with_state(web)
}

/// Bounds concurrent requests and adds the security headers every reply
/// carries.
async fn guard(
    State(web): State<Arc<Web>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let _permit = web.permits.acquire().await;
    let mut response = match tokio::time::timeout(web.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "the request took too long; send it again")
            .into_response(),
    };
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if web.secure {
        // Over TLS no cookie may ever be sent in clear text.
        let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
        h.remove(header::SET_COOKIE);
        for c in cookies {
            let secure =
                c.to_str().ok().and_then(|c| HeaderValue::from_str(&format!("{c}; Secure")).ok());
            h.append(header::SET_COOKIE, secure.unwrap_or(c));
        }
    }
    response
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

async fn not_found(State(web): State<Arc<Web>>, request: axum::extract::Request) -> Response {
    if request.uri().path().starts_with("/fieldsync.") {
        // Another service of the API (Admin, Review...): not for browsers.
        return connect(State(web), request).await;
    }
    error_page(lang_of(request.headers()), None, &Error::not_found("there is no such page"))
}

/// The app's Connect calls ([`crate::connect`]).
async fn connect(State(web): State<Arc<Web>>, request: axum::extract::Request) -> Response {
    match &web.bridge {
        Some(bridge) => bridge.call(request).await,
        None => error_page(lang_of(request.headers()), None, &Error::not_found("no API here")),
    }
}

/// The HTTP status of a refused use case: one per kind.
fn http_status(kind: Kind) -> StatusCode {
    match kind {
        Kind::Denied => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Invalid | Kind::OutOfSequence => StatusCode::BAD_REQUEST,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Exhausted => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A page that says what went wrong and what to do: the one mapping of an
/// [`crate::app::Error`] to an HTTP status and a page.
/// The page of a refusal, worded with the names of `catalogue` (the empty
/// one where no caller is signed in, so no names can be shown).
fn error_page(lang: Lang, who: Option<&Who<'_>>, e: &Error) -> Response {
    error_page_named(lang, who, &fieldsync::Catalogue::default(), e)
}

fn error_page_named(
    lang: Lang,
    who: Option<&Who<'_>>,
    catalogue: &fieldsync::Catalogue,
    e: &Error,
) -> Response {
    let code = http_status(e.kind);
    let title = match code {
        StatusCode::FORBIDDEN => lang.pick("Không có quyền", "Permission denied"),
        StatusCode::NOT_FOUND => lang.pick("Không tìm thấy", "Not found"),
        StatusCode::BAD_REQUEST => lang.pick("Chưa thực hiện được", "Not done"),
        StatusCode::UNAUTHORIZED => lang.pick("Cần đăng nhập", "Sign in needed"),
        StatusCode::TOO_MANY_REQUESTS => lang.pick("Quá nhiều yêu cầu", "Too many requests"),
        _ => lang.pick("Lỗi máy chủ", "Server error"),
    };
    let signed_in = who.is_some();
    let view = pages::problem::View {
        title,
        status: code.as_u16(),
        said: said::said(lang, catalogue, e),
        signed_in,
    };
    let body = pages::problem::render(&view, lang);
    html_response(code, page(lang, title, who, Section::None, body))
}

fn html_response(status: StatusCode, body: Markup) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body.into_string())
        .into_response()
}

fn see_other(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE).and_then(Lang::parse).unwrap_or_default()
}

/// A download's file name, as people file it: `words` without diacritics,
/// joined by `-`, e.g. `tien-do-huyen-huong-khe-2022-xa.xlsx`.
fn download_name(words: &[&str], ext: &str) -> String {
    let folded = fieldsync::model::search_key(&words.join(" "));
    let name: String =
        folded.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
    format!("{}.{ext}", name.split_whitespace().collect::<Vec<_>>().join("-"))
}

/// An area by name for a file name: "tất cả" (all) for none.
fn area_name<'a>(catalogue: &'a fieldsync::Catalogue, area: &'a str) -> &'a str {
    match catalogue.org_unit(area) {
        Some(unit) => &unit.name,
        None if area.is_empty() => "tất cả",
        None => area,
    }
}

/// A village's name, and the names of its commune and district.
fn place(catalogue: &fieldsync::Catalogue, unit: &str) -> (String, String) {
    let mut lineage = catalogue.lineage(unit);
    let name = lineage.next().map_or_else(|| unit.to_owned(), |u| u.name.clone());
    let above: Vec<&str> = lineage
        .filter(|u| u.level != fieldsync::Level::Province)
        .map(|u| u.name.as_str())
        .collect();
    (name, above.join(", "))
}

/// The first 8 hex digits of a tablet id: enough to tell tablets apart;
/// "—" for a value no tablet sent (a supervisor's settlement).
fn short_device(id: &str) -> String {
    if id.chars().all(|c| c == '0' || c == '-') {
        return "—".into();
    }
    id.chars().take(8).collect()
}

/// A stored value as people read it.
fn value_text(lang: Lang, value: &fieldsync::Value) -> String {
    use fieldsync::Value;
    match value {
        Value::Amount(a) => lang.amount_of(*a),
        Value::Text(t) => t.clone(),
        Value::Point(p) => p.to_string().replace(',', ", "),
        Value::Deleted => lang.pick("(đã xoá)", "(deleted)").to_owned(),
    }
}

/// Most areas offered in an area filter.
const MAX_AREA_OPTIONS: usize = 400;

/// The choices of an area filter: the caller's areas and the districts
/// and communes in them (in tree order), `selected` marked (and added when
/// it is none of them).
fn area_options(catalogue: &fieldsync::Catalogue, user: &User, selected: &str) -> Vec<AreaOption> {
    use fieldsync::Level;
    let roots: Vec<String> = match user.areas.is_empty() {
        true => catalogue.units_at(Level::Province, None).iter().map(|u| u.id.clone()).collect(),
        false => user.areas.clone(),
    };
    let mut units: Vec<&fieldsync::OrgUnit> = Vec::new();
    for root in &roots {
        for level in [Level::Province, Level::District, Level::Commune] {
            units.extend(catalogue.units_at(level, Some(root)));
        }
    }
    units.sort_by(|a, b| a.id.cmp(&b.id));
    units.dedup_by(|a, b| a.id == b.id);
    let mut options: Vec<AreaOption> = units
        .iter()
        .take(MAX_AREA_OPTIONS)
        .map(|u| {
            let indent = match u.level {
                Level::Province => "",
                Level::District => "\u{a0}\u{a0}",
                _ => "\u{a0}\u{a0}\u{a0}\u{a0}",
            };
            AreaOption {
                id: u.id.clone(),
                label: format!("{indent}{}", u.name),
                selected: u.id == selected,
            }
        })
        .collect();
    if !selected.is_empty() && !options.iter().any(|o| o.selected) {
        let (id, label) = (selected.to_owned(), selected.to_owned());
        options.push(AreaOption { id, label, selected: true });
    }
    options
}

#[cfg(test)]
mod tests;
