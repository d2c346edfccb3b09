//! Headless Chromium for the browser tests (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver with fantoccini): one browser
//! at a time, a profile directory that may outlive a browser (so a test can
//! end a browser and start another on the same profile, as a phone's owner
//! closes and reopens the app), and a hard kill of a browser mid-work.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// Longest wait for a page to show what is expected.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One browser at a time: the machines that run these have few cores.
pub static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A phone's screen, and a tablet's.
pub const PHONE: (u32, u32) = (360, 640);
pub const TABLET: (u32, u32) = (800, 1280);

/// The program at `$env`, else at `default`, else of that name on the PATH.
pub fn installed(env: &str, default: &str) -> PathBuf {
    let name = Path::new(default).file_name().unwrap_or_default().to_owned();
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(&name))
            .find(|p| p.exists())
    };
    let path = match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None if Path::new(default).exists() => default.into(),
        None => on_path().unwrap_or_else(|| default.into()),
    };
    assert!(
        path.exists(),
        "{} is not installed (looked for {}; set {env} to its path). Install it with: \
         apt-get install -y chromium chromium-driver",
        Path::new(default).file_name().and_then(|n| n.to_str()).unwrap_or(default),
        path.display()
    );
    path
}

/// chromedriver on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn driver() -> Driver {
    let binary = installed("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < PATIENCE, "chromedriver did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

/// A headless chromium on `profile`, with its chromedriver; closing it
/// (or dropping it) ends the browser but keeps the profile.
pub struct Browser {
    pub client: Client,
    profile: PathBuf,
    driver: Option<Driver>,
}

impl Browser {
    /// Starts chromium on the profile directory `profile` (kept by the
    /// caller; a new empty one is a new device) with a window of `size`.
    pub async fn open(profile: &Path, size: (u32, u32)) -> Browser {
        Browser::open_with(profile, size, None).await
    }

    /// A browser whose viewport is a phone's (`width` × `height` CSS pixels
    /// at 3 device pixels each): a headless window cannot be narrower than
    /// 500 px, an emulated phone can.
    pub async fn open_phone(profile: &Path, (width, height): (u32, u32)) -> Browser {
        let metrics = serde_json::json!({
            "deviceMetrics": { "width": width, "height": height, "pixelRatio": 3.0 }
        });
        Browser::open_with(profile, (width.max(500), height), Some(metrics)).await
    }

    async fn open_with(
        profile: &Path,
        size: (u32, u32),
        emulation: Option<serde_json::Value>,
    ) -> Browser {
        let chromium = installed("CHROMIUM", "/usr/bin/chromium");
        let driver = driver().await;
        let mut caps = serde_json::Map::new();
        let mut options = serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--window-size={},{}", size.0, size.1),
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some(emulation) = emulation {
            options["mobileEmulation"] = emulation;
        }
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("start headless chromium through chromedriver");
        Browser { client, profile: profile.to_owned(), driver: Some(driver) }
    }

    /// Ends the browser as its user would (the session closes, chromium
    /// exits and writes its profile), keeping the profile directory.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.driver.take();
        wait_gone(&self.profile).await;
    }

    /// Kills every chromium process of this profile with SIGKILL, as a
    /// phone's battery dying or the system killing the app would.
    pub async fn kill(mut self) {
        kill_profile(&self.profile);
        self.driver.take();
        wait_gone(&self.profile).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.driver.take().is_some() {
            kill_profile(&self.profile);
        }
    }
}

/// The pids of the processes whose command line names `profile`.
fn processes_of(profile: &Path) -> Vec<i32> {
    let needle = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn kill_profile(profile: &Path) {
    for pid in processes_of(profile) {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
}

/// Waits until no process uses `profile` any more (so another browser may
/// open it).
async fn wait_gone(profile: &Path) {
    let start = Instant::now();
    while !processes_of(profile).is_empty() {
        if start.elapsed() > PATIENCE {
            kill_profile(profile);
        }
        assert!(start.elapsed() < PATIENCE * 2, "chromium on {} did not exit", profile.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Chromium's lock of its profile goes with its last process.
    let _ = std::fs::remove_file(profile.join("SingletonLock"));
}

/// Waits until the element at `css` exists and its text satisfies `ok`.
pub async fn wait_text(client: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut last = String::from("(no such element)");
    while start.elapsed() < PATIENCE {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            if let Ok(text) = e.text().await {
                if ok(&text) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
    panic!("{css} on {url} still reads {last:?}");
}

/// Waits until the element at `css` has attribute `name` equal to `value`.
pub async fn wait_attr(client: &Client, css: &str, name: &str, value: &str) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < PATIENCE {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            last = e.attr(name).await.ok().flatten();
            if last.as_deref() == Some(value) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{css} has {name}={last:?}, expected {value:?}");
}

/// Runs `script` (an async function body: `await` works, `return` gives the
/// result) in the page and returns what it resolved to.
pub async fn run_js(client: &Client, script: &str) -> serde_json::Value {
    let wrapped = format!(
        "const done = arguments[arguments.length - 1];
         (async () => {{ {script} }})().then(
             (value) => done({{ ok: value === undefined ? null : value }}),
             (e) => done({{ error: String(e && e.stack || e) }}));"
    );
    let answer = client.execute_async(&wrapped, vec![]).await.expect("run script in the page");
    if let Some(error) = answer.get("error") {
        panic!("the page's script failed: {}", error.as_str().unwrap_or_default());
    }
    answer.get("ok").cloned().unwrap_or_default()
}

/// Clicks the element at `css` once it exists.
pub async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}
