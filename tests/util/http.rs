//! A minimal HTTP/1.1 client for the web pages: one request per connection,
//! cookies passed by hand, no redirects followed, so tests see exactly what
//! the server answered.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value the reply sets for cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of the first `<input name="NAME" value="…">` of the page.
    pub fn input(&self, name: &str) -> Option<String> {
        let text = self.text();
        let at = text.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &text[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].to_owned())
    }
}

/// Percent-encodes a form value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends one request to `base` (`http://host:port`) and reads the reply.
pub async fn request(base: &str, method: &str, path: &str, cookies: &str, body: &[u8]) -> Reply {
    let cookie = [("Cookie", cookies)];
    let headers: &[(&str, &str)] = if cookies.is_empty() { &[] } else { &cookie };
    request_with(base, method, path, headers, body).await
}

/// [`request`], with `headers` of its own.
pub async fn request_with(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let all: Vec<(&str, &str)> = match method {
        "POST" => headers.iter().chain(&form).copied().collect(),
        _ => headers.to_vec(),
    };
    send(base, method, path, &all, body).await
}

/// Sends one request with exactly `headers` (and `Content-Length` when
/// there is a body) and reads the reply.
pub async fn send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect to the web pages");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    // A refused oversized body may close the connection before it is all sent.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse(&raw)
}

/// A raw HTTP/1.1 reply, read to its end.
pub fn parse(raw: &[u8]) -> Reply {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete reply head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

/// GET `path` with `cookies`.
pub async fn get(base: &str, path: &str, cookies: &str) -> Reply {
    request(base, "GET", path, cookies, b"").await
}

/// POST the form `pairs` to `path` with `cookies`.
pub async fn post(base: &str, path: &str, cookies: &str, pairs: &[(&str, &str)]) -> Reply {
    let body: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    request(base, "POST", path, cookies, body.join("&").as_bytes()).await
}

/// Signs in with `token`; returns the session cookie ("fs_session=…") and
/// the session's CSRF token (read from the first page).
pub async fn sign_in(base: &str, token: &str) -> (String, String) {
    let form = get(base, "/signin", "").await;
    assert_eq!(form.status, 200, "{}", form.text());
    let pre = form.cookie("fs_signin").expect("a sign-in cookie");
    let csrf = form.input("csrf").expect("a csrf field");
    let reply =
        post(base, "/signin", &format!("fs_signin={pre}"), &[("csrf", &csrf), ("token", token)])
            .await;
    assert_eq!(reply.status, 303, "sign in: {}", reply.text());
    let session = format!("fs_session={}", reply.cookie("fs_session").expect("a session cookie"));
    let page = get(base, "/queue", &session).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let csrf = page.input("csrf").expect("the session's csrf field");
    (session, csrf)
}
