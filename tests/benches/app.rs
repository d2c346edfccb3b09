//! The surveyors' app in headless Chromium on this machine: how long the
//! things a surveyor waits for take, and how much the app shell weighs.
//!
//! - first pull: a freshly enrolled app's first sync of a server holding
//!   `FIELDSYNC_BENCH_APP_VALUES` values (default 10,000) in the
//!   surveyor's area, stored page by page into IndexedDB;
//! - record → durable: `fieldsyncApp.record` of one value until its
//!   IndexedDB transaction committed (what "đã lưu trên máy" waits for);
//! - push of 1,000 edits recorded offline, once the server is back;
//! - cold start offline: with the server stopped, a reload until the
//!   village picker is usable (served by the service worker);
//! - the app shell: bytes of HTML, JS and CSS as the server serves them.
//!
//! `cargo bench -p fieldsync-tests --bench app`. The server runs in the same
//! process (sled in a temp dir); Chromium is `/usr/bin/chromium` with its chromedriver.
//! Figures are printed, never asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use fieldsync::access::Role;
use fieldsync::sync::Mutation;
use fieldsync::{demo, DeviceId, Level};
use fieldsync_client::remote::Grpc;
use fieldsync_proto::v1;
use fieldsync_server::local::LocalServer;

#[allow(dead_code)]
#[path = "../util/browser.rs"]
mod browser;
#[allow(dead_code)]
mod common;

use browser::{run_js, Browser, PATIENCE};
use common::{cell_mutation, env, periods};

const TOKEN: &str = "bench-admin-token-0123456789";
const SURVEYOR: &str = "khanh";

fn villages() -> Vec<String> {
    demo::catalogue()
        .org_units
        .values()
        .filter(|u| u.level == Level::Village)
        .map(|u| u.id.clone())
        .collect()
}

async fn start(dir: &Path, grpc: &str, web: &str) -> anyhow::Result<LocalServer> {
    LocalServer::start_web_with_limits(dir, grpc, web, TOKEN, Default::default()).await
}

/// Waits until the app's hook is there and ready.
async fn hook(client: &Client) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let ready = run_js(
            client,
            "if (!globalThis.fieldsyncApp) return false; \
             await globalThis.fieldsyncApp.ready; return true;",
        )
        .await;
        if ready == true {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < PATIENCE, "the app never set up its hook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Enrolls the app with a fresh code for [`SURVEYOR`].
async fn enroll(client: &Client, server: &LocalServer) -> anyhow::Result<()> {
    let admin = Grpc::connect(&server.url, TOKEN).await?;
    let code = admin
        .admin()
        .create_enrollment(v1::CreateEnrollmentRequest {
            user_id: SURVEYOR.into(),
            expires_in_s: 0,
        })
        .await?
        .into_inner()
        .code;
    let input = client.wait().at_most(PATIENCE).for_element(Locator::Css("#enroll-code")).await?;
    input.send_keys(&code).await?;
    client.find(Locator::Css("#enroll-submit")).await?.click().await?;
    let start = Instant::now();
    while client.find(Locator::Css("#enroll")).await?.is_displayed().await? {
        anyhow::ensure!(start.elapsed() < PATIENCE, "still on the enrollment screen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Milliseconds the page's `script` (an async body) took, timed in the page.
async fn timed(client: &Client, script: &str) -> f64 {
    let answer = run_js(
        client,
        &format!("const t0 = performance.now(); {script}; return performance.now() - t0;"),
    )
    .await;
    answer.as_f64().unwrap_or(f64::NAN)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Bytes of every HTML, JS and CSS file of the app as the server serves it.
async fn shell_bytes(web: &str) -> anyhow::Result<(usize, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/app");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("html" | "js" | "css")
            ) {
                files.push(path.strip_prefix(&root)?.to_string_lossy().into_owned());
            }
        }
    }
    let host = web.trim_start_matches("http://");
    let mut total = 0;
    for file in &files {
        let path = if file == "index.html" { String::new() } else { file.clone() };
        let body = get(host, &format!("/app/{path}")).await?;
        total += body;
    }
    Ok((total, files.len()))
}

/// The body length of `GET path` (HTTP/1.1, one request per connection).
async fn get(host: &str, path: &str) -> anyhow::Result<usize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(host).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no reply to {path}"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "{path}: {}",
        head.lines().next().unwrap_or("")
    );
    anyhow::ensure!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{path} came chunked"
    );
    Ok(raw.len() - head_end - 4)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let values = env("FIELDSYNC_BENCH_APP_VALUES", 10_000);
    let dir = tempfile::tempdir()?;
    let server = start(dir.path(), "127.0.0.1:0", "127.0.0.1:0").await?;
    let web = server.web_url.clone().ok_or_else(|| anyhow::anyhow!("no web listener"))?;
    let grpc = server.url.clone();
    server.user(SURVEYOR, "Phạm Thị Khánh", Role::Surveyor, &[demo::PROVINCE])?;

    // The server's data: `values` values in the surveyor's area.
    let (villages, periods) = (villages(), periods());
    let store = std::sync::Arc::clone(&server.store);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
        let device = DeviceId(uuid::Uuid::new_v4());
        let mut id = 0u64;
        while (id as usize) < values {
            let n = 1_000.min(values - id as usize);
            let ms: Vec<Mutation> = (0..n)
                .map(|_| {
                    id += 1;
                    cell_mutation(&villages, &periods, id as usize - 1, id)
                })
                .collect();
            store.push(&admin, device, &ms, id - n as u64, fieldsync_client::now_ms())?;
        }
        Ok(())
    })
    .await??;

    let profile = tempfile::tempdir()?;
    let app = Browser::open(profile.path(), browser::PHONE).await;
    let client = app.client.clone();
    let long = Some(Duration::from_secs(600));
    client.update_timeouts(fantoccini::wd::TimeoutConfiguration::new(long, long, None)).await?;
    client.goto(&format!("{web}/app/")).await?;
    hook(&client).await?;
    enroll(&client, &server).await?;
    let first_pull = timed(&client, "await globalThis.fieldsyncApp.sync()").await;
    let held = run_js(&client, "return (await globalThis.fieldsyncApp.state()).synced;").await;

    // Record → durable, one value at a time, on a report of its own.
    let mut record = Vec::new();
    for k in 0..50 {
        let script = format!(
            "await globalThis.fieldsyncApp.record('{}', '2100', {{ road_km: '{},5' }})",
            demo::SAMPLE_VILLAGE,
            k % 100
        );
        record.push(timed(&client, &script).await);
    }
    timed(&client, "await globalThis.fieldsyncApp.sync()").await;

    // 1,000 edits (125 reports of 8 values) recorded with the server away,
    // pushed once it is back.
    server.stop().await?;
    run_js(
        &client,
        "const fields = ['drainage_km', 'canal_km', 'commune_sports_area', 'village_cultural_house',
                         'village_sports_area', 'playground', 'smart_house_library', 'model_residential_area'];
         for (let r = 0; r < 125; r++) {
           const village = `ha-tinh.huong-khe.phuc-dong.thon-${r % 3 + 1}`;
           const year = String(2050 + Math.floor(r / 3));
           const values = Object.fromEntries(fields.map((f, i) => [f, String((r + i) % 5 + 1)]));
           await globalThis.fieldsyncApp.record(village, year, values);
         }
         return null;",
    )
    .await;
    let unsent = run_js(&client, "return await globalThis.fieldsyncApp.pending();").await;
    let server =
        start(dir.path(), grpc.trim_start_matches("http://"), web.trim_start_matches("http://"))
            .await?;
    let push = timed(&client, "await globalThis.fieldsyncApp.sync()").await;
    let after = run_js(&client, "return await globalThis.fieldsyncApp.pending();").await;

    // Cold start with the server away: reload until the picker is usable.
    server.stop().await?;
    let mut cold = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        client.goto(&format!("{web}/app/")).await?;
        hook(&client).await?;
        client.wait().at_most(PATIENCE).for_element(Locator::Css("#village-search")).await?;
        cold.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    app.close().await;

    let server =
        start(dir.path(), grpc.trim_start_matches("http://"), web.trim_start_matches("http://"))
            .await?;
    let (shell, files) = shell_bytes(&web).await?;
    server.stop().await?;

    println!("surveyors' app, headless Chromium, server in process (sled, temp dir)");
    println!();
    println!("| step | result |");
    println!("|---|---|");
    println!(
        "| first pull of {values} values into IndexedDB (first sync after enrolling; the app then holds {held} synced values) | {:.2} s |",
        first_pull / 1000.0
    );
    println!("| record → durable, one value (median of 50) | {:.1} ms |", median(record));
    println!(
        "| push of {unsent} edits recorded offline (unsent after: {after}) | {:.2} s |",
        push / 1000.0
    );
    println!(
        "| cold start offline, reload → picker usable (median of 5) | {:.0} ms |",
        median(cold)
    );
    println!(
        "| app shell: HTML + JS + CSS as served ({files} files) | {shell} bytes ({:.1} KB) |",
        shell as f64 / 1024.0
    );
    Ok(())
}
