//! The surveyors' app, served at `/app/` from files embedded in the binary
//! (`server/app/`, walked by `build.rs`): hand-written ES modules, a service
//! worker and a manifest, no build step.
//!
//! Every file carries a strict CSP (no inline script or style, nothing but
//! this origin), `nosniff`, its content type and an `ETag` (`If-None-Match`
//! → 304), and is served `Cache-Control: no-cache`, so the browser always
//! asks and a service worker installing a new version never gets an old
//! copy. In `sw.js` the placeholder `__APP_VERSION__` is replaced by a hash
//! of every file of the app: changing any file installs a new service
//! worker, with a new cache.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The app's files: path below `/app/`, content type, contents.
const FILES: &[(&str, &str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/app_files.rs"));

/// The Content-Security-Policy of every file of the app.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
                       manifest-src 'self'; object-src 'none'; base-uri 'none'; \
                       frame-ancestors 'none'; form-action 'none'";

/// What `sw.js` holds in place of the app's version.
pub const VERSION_PLACEHOLDER: &str = "__APP_VERSION__";

/// The service worker, whose placeholder is replaced.
const SERVICE_WORKER: &str = "sw.js";

/// One file as served.
#[derive(Debug)]
pub struct Served {
    pub path: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A strong validator: a hash of `body`, quoted.
    pub etag: String,
}

/// Every file of an app as served, and its version.
#[derive(Debug)]
pub struct Site {
    pub version: String,
    pub files: Vec<Served>,
}

impl Site {
    /// The site of `files`: the version hashes every path and content, and
    /// is put into the service worker.
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'static str, &'a [u8])>) -> Site {
        let files: Vec<_> = files.into_iter().collect();
        let mut hash = Sha256::new();
        for (path, _, body) in &files {
            hash.update((path.len() as u64).to_be_bytes());
            hash.update(path.as_bytes());
            hash.update((body.len() as u64).to_be_bytes());
            hash.update(body);
        }
        let version = hex(&hash.finalize()[..8]);
        let files = files
            .into_iter()
            .map(|(path, content_type, body)| {
                let body = match path {
                    SERVICE_WORKER => substitute(body, VERSION_PLACEHOLDER, &version),
                    _ => body.to_vec(),
                };
                let etag = format!("\"{}\"", hex(&Sha256::digest(&body)[..12]));
                Served { path: path.to_owned(), content_type, body, etag }
            })
            .collect();
        Site { version, files }
    }

    /// The embedded app.
    pub fn embedded() -> &'static Site {
        static SITE: OnceLock<Site> = OnceLock::new();
        SITE.get_or_init(|| Site::new(FILES.iter().copied()))
    }

    pub fn file(&self, path: &str) -> Option<&Served> {
        self.files.iter().find(|f| f.path == path)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `body` with every `placeholder` replaced by `value`.
fn substitute(body: &[u8], placeholder: &str, value: &str) -> Vec<u8> {
    let placeholder = placeholder.as_bytes();
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.windows(placeholder.len()).position(|w| w == placeholder) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(value.as_bytes());
        rest = &rest[at + placeholder.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// `GET /app`: the app lives under `/app/` (the service worker's scope).
pub async fn redirect() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/app/")]).into_response()
}

/// `GET /app/`: the app's shell.
pub async fn index(headers: HeaderMap) -> Response {
    serve(Site::embedded(), "index.html", &headers)
}

/// `GET /app/<file>`.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(Site::embedded(), &path, &headers)
}

/// A file of `site`, or 304 when the browser's copy is current, or 404.
pub fn serve(site: &Site, path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = site.file(path) else {
        let mut response = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Không có tệp này trong ứng dụng. (There is no such file in the app.)",
        )
            .into_response();
        secure(&mut response);
        return response;
    };
    let mut response = match current(headers, &file.etag) {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => ([(header::CONTENT_TYPE, file.content_type)], file.body.clone()).into_response(),
    };
    let h = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&file.etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(&mut response);
    response
}

fn secure(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// Whether `If-None-Match` names `etag` (weakly, as RFC 9110 compares for
/// GET), or is `*`.
fn current(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";

    fn site(app: &[u8]) -> Site {
        Site::new([
            ("index.html", "text/html; charset=utf-8", &b"<!doctype html>"[..]),
            ("js/app.js", JS, app),
            ("sw.js", JS, &b"const CACHE = 'app-__APP_VERSION__'; // __APP_VERSION__"[..]),
        ])
    }

    #[test]
    fn any_change_of_any_file_gives_the_service_worker_a_new_version() {
        let before = site(b"export const a = 1;");
        let after = site(b"export const a = 2;");
        assert_ne!(before.version, after.version);
        let worker = |s: &Site| String::from_utf8(s.file("sw.js").unwrap().body.clone()).unwrap();
        assert_eq!(
            worker(&before),
            format!("const CACHE = 'app-{0}'; // {0}", before.version),
            "every placeholder is replaced"
        );
        assert_ne!(worker(&before), worker(&after));
        assert_ne!(before.file("sw.js").unwrap().etag, after.file("sw.js").unwrap().etag);
        assert_eq!(before.file("index.html").unwrap().etag, after.file("index.html").unwrap().etag);
        assert_eq!(site(b"export const a = 1;").version, before.version, "stable across builds");
    }

    #[test]
    fn a_current_copy_is_answered_304() {
        let site = site(b"");
        let file = site.file("js/app.js").unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(serve(&site, "js/app.js", &headers).status(), StatusCode::OK);
        for given in [file.etag.clone(), format!("\"x\", W/{}", file.etag), "*".into()] {
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&given).unwrap());
            let response = serve(&site, "js/app.js", &headers);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{given}");
            assert_eq!(response.headers()[header::ETAG], file.etag.as_str());
        }
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
        assert_eq!(serve(&site, "js/app.js", &headers).status(), StatusCode::OK);
        assert_eq!(serve(&site, "js/../sw.js", &headers).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_embedded_app_has_its_shell() {
        let site = Site::embedded();
        let index = site.file("index.html").expect("server/app/index.html is embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(site.files.iter().all(|f| !f.path.starts_with('.') && !f.path.contains('\\')));
    }
}
