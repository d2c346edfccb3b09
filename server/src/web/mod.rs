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
mod html;
mod progress;
mod review;
pub mod session;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use fieldsync::access::User;
use tokio::net::TcpListener;

use crate::app::{App, Error, Kind};
use html::{page, Lang, Section, Who, E};
use session::{Secret, Sessions};

/// Largest form body accepted, in bytes.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Requests handled at once; more wait their turn.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;

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
    /// Served over TLS: every cookie is then marked `Secure`.
    secure: bool,
    /// The app's Connect calls (`/fieldsync.v1.*`), when served.
    bridge: Option<crate::connect::Bridge>,
}

impl Web {
    pub fn new(app: Arc<App>) -> Web {
        Web {
            app,
            sessions: Sessions::default(),
            permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS),
            downloads: tokio::sync::Semaphore::new(MAX_DOWNLOADS),
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
        Who { user: &self.user, csrf: &self.csrf }
    }

    /// A full page for this caller.
    fn page(&self, title: &str, section: Section, body: &str) -> Response {
        html_response(StatusCode::OK, page(self.lang, title, Some(self.who()), section, body))
    }

    /// The error page for a refused use case.
    fn fail(&self, e: &Error) -> Response {
        error_page(self.lang, Some(self.who()), e)
    }

    /// Refuses a form whose CSRF token is missing or wrong.
    fn check_csrf(&self, form: &Form) -> Result<(), Box<Response>> {
        match form.get("csrf") {
            Some(token) if session::same(token, &self.csrf) => Ok(()),
            _ => Err(Box::new(self.fail(&forged()))),
        }
    }

    /// A hidden field with this session's CSRF token.
    fn csrf_field(&self) -> String {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", E(&self.csrf))
    }
}

fn forged() -> Error {
    Error::denied(
        "this form did not come from a page of this server (or the page is too old): \
         open the page again and resend",
    )
}

/// Large downloads (the review queue's CSV) built at once; more wait.
pub const MAX_DOWNLOADS: usize = 2;

/// How the web listener takes connections: its caps and deadlines (from
/// [`Limits`](crate::Limits)) and, when the server has a certificate, TLS.
#[derive(Clone)]
pub struct Config {
    pub per_ip: usize,
    pub header_read_timeout: Duration,
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Config {
    pub fn of(
        limits: &crate::Limits,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> Config {
        Config {
            per_ip: limits.web_connections_per_ip,
            header_read_timeout: limits.header_read_timeout,
            tls,
        }
    }
}

/// Serves the pages on `listener` until `shutdown` resolves, then lets the
/// requests in progress finish.
///
/// At most [`MAX_CONNECTIONS`] connections are open at once, and
/// `config.per_ip` from one address; one beyond is closed as it arrives. A
/// request head (or a TLS handshake) must arrive whole within
/// `config.header_read_timeout` however slowly its bytes come, and a
/// connection silent for [`IDLE_TIMEOUT`] is closed.
pub async fn serve(
    listener: TcpListener,
    web: Arc<Web>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    tracing::info!(address = %listener.local_addr()?, tls = config.tls.is_some(), "serving web pages");
    let gate = crate::listen::Gate::new("web", MAX_CONNECTIONS, config.per_ip);
    let acceptor = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let router = router(web);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "cannot accept a web connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let Some(admitted) = gate.admit(peer.ip()) else { continue };
        // Each request knows its peer, as a gRPC call does.
        let info = tonic::transport::server::TcpConnectInfo {
            local_addr: stream.local_addr().ok(),
            remote_addr: Some(peer),
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: axum::extract::Request<_>| {
            request.extensions_mut().insert(info.clone());
            tower::Service::call(&mut router.clone(), request)
        });
        let io = Permitted::new(stream, admitted);
        let acceptor = acceptor.clone();
        let mut stopped = stopped.clone();
        let stopping = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let head = config.header_read_timeout;
        connections.spawn(async move {
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(io),
                Some(acceptor) => match tokio::time::timeout(head, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!("TLS handshake too slow"),
                },
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(head);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "web connection ended");
                    }
                }
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// What a web connection is read and written through: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Browser connections open at once; one beyond is closed as it arrives.
pub const MAX_CONNECTIONS: usize = 256;

/// Longest a browser may take to send one whole request head (the default
/// of [`Limits::header_read_timeout`](crate::Limits)).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a browser connection may go without sending or receiving a
/// byte while the server waits for it; it is closed after that, so idle or
/// stalled connections do not hold the listener's permits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest the server spends on one request, body included (a body sent too
/// slowly included): 408 after that.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection holding its place at the web listener, closed once idle
/// for [`IDLE_TIMEOUT`].
struct Permitted {
    stream: tokio::net::TcpStream,
    _admitted: crate::listen::Admitted,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Permitted {
    fn new(stream: tokio::net::TcpStream, admitted: crate::listen::Admitted) -> Self {
        Permitted { stream, _admitted: admitted, idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)) }
    }

    fn active(&mut self) {
        self.idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
    }
}

impl tokio::io::AsyncRead for Permitted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future as _;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.stream).poll_read(cx, buf) {
            std::task::Poll::Pending => match this.idle.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "idle web connection",
                ))),
                std::task::Poll::Pending => std::task::Poll::Pending,
            },
            ready => {
                this.active();
                ready
            }
        }
    }
}

impl tokio::io::AsyncWrite for Permitted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let written = std::pin::Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(written, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.active();
        }
        written
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The routes of the site.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(|| async { see_other("/queue") }))
        .route("/style.css", get(style))
        .route("/lang/{lang}", get(set_lang))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/queue", get(review::queue))
        .route("/queue.csv", get(review::queue_csv))
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
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
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
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
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

/// `/lang/en`: remembers the language in a cookie and goes back.
async fn set_lang(headers: HeaderMap, Path(lang): Path<String>) -> Response {
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

async fn signin_page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
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

async fn signin(State(web): State<Arc<Web>>, headers: HeaderMap, body: Bytes) -> Response {
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

async fn signout(State(web): State<Arc<Web>>, headers: HeaderMap, body: Bytes) -> Response {
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
fn error_page(lang: Lang, who: Option<Who<'_>>, e: &Error) -> Response {
    let code = http_status(e.kind);
    let title = match code {
        StatusCode::FORBIDDEN => lang.pick("Không có quyền", "Permission denied"),
        StatusCode::NOT_FOUND => lang.pick("Không tìm thấy", "Not found"),
        StatusCode::BAD_REQUEST => lang.pick("Chưa thực hiện được", "Not done"),
        StatusCode::UNAUTHORIZED => lang.pick("Cần đăng nhập", "Sign in needed"),
        StatusCode::TOO_MANY_REQUESTS => lang.pick("Quá nhiều yêu cầu", "Too many requests"),
        _ => lang.pick("Lỗi máy chủ", "Server error"),
    };
    let body = format!(
        "<section class=\"problem\"><h1>{} <span class=\"code\">({})</span></h1>\
         <p id=\"problem\">{}</p><p><a href=\"/queue\">{}</a></p></section>",
        E(title),
        code.as_u16(),
        E(&e.message),
        lang.pick("Về trang duyệt báo cáo", "Back to the review queue"),
    );
    html_response(code, page(lang, title, who, Section::None, &body))
}

fn html_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
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

/// `application/x-www-form-urlencoded` pairs, from a body or a query.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(
            body.split(|b| *b == b'&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let mut kv = pair.splitn(2, |b| *b == b'=');
                    let key = decode(kv.next().unwrap_or_default());
                    let value = decode(kv.next().unwrap_or_default());
                    (key, value)
                })
                .collect(),
        )
    }

    pub fn query(query: Option<&str>) -> Form {
        Form::parse(query.unwrap_or_default().as_bytes())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, trimmed; empty when absent.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default().trim()
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Decodes `+` and `%XX`; invalid UTF-8 is replaced, not refused.
fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// The first 8 hex digits of a tablet id: enough to tell tablets apart.
fn short_device(id: &str) -> String {
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

/// `<option>`s for the caller's areas and the districts and communes in
/// them (in tree order), `selected` marked; the first means "all my areas".
fn area_options(
    catalogue: &fieldsync::Catalogue,
    user: &User,
    selected: &str,
    lang: Lang,
    with_all: bool,
) -> String {
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
    let mut out = String::new();
    if with_all {
        let all = lang.pick("Tất cả địa bàn của tôi", "All my areas");
        out.push_str(&format!("<option value=\"\">{all}</option>"));
    }
    let mut shown_selected = selected.is_empty();
    for u in units.iter().take(MAX_AREA_OPTIONS) {
        let indent = match u.level {
            Level::Province => "",
            Level::District => "\u{a0}\u{a0}",
            _ => "\u{a0}\u{a0}\u{a0}\u{a0}",
        };
        let mark = if u.id == selected { " selected" } else { "" };
        shown_selected |= u.id == selected;
        out.push_str(&format!(
            "<option value=\"{}\"{mark}>{indent}{}</option>",
            E(&u.id),
            E(&u.name)
        ));
    }
    if !shown_selected {
        out.push_str(&format!(
            "<option value=\"{}\" selected>{}</option>",
            E(selected),
            E(selected)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_vietnamese_and_repeated_keys() {
        let form = Form::parse(b"reason=s%E1%BB%91+li%E1%BB%87u&sub=a&sub=b&bad=%zz&end=%4");
        assert_eq!(form.get("reason"), Some("số liệu"));
        assert_eq!(form.all("sub").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(form.get("bad"), Some("%zz"));
        assert_eq!(form.get("end"), Some("%4"));
        assert_eq!(form.get("none"), None);
    }

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

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; fs_session=abc; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
