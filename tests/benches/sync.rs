//! Push and pull throughput against a real server: in-process gRPC on
//! loopback, sled store in a temp dir, every push flushed before its reply.
//!
//! `cargo bench -p fieldsync-tests --bench sync`
//! (sizes: `FIELDSYNC_BENCH_RECORDS`, default
//! 20000; `FIELDSYNC_BENCH_DEVICES`, default 4).

use std::time::Instant;

use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{demo, DeviceId, Hlc, Level};
use fieldsync_client::remote::{Grpc, Remote};
use fieldsync_server::local::LocalServer;

const BATCH: usize = 500;
const TOKEN: &str = "bench-admin-token-0123456789";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records = env("FIELDSYNC_BENCH_RECORDS", 20_000);
    let devices = env("FIELDSYNC_BENCH_DEVICES", 4).max(1);
    let dir = tempfile::tempdir()?;
    let server = LocalServer::start(dir.path(), "127.0.0.1:0", TOKEN).await?;
    let url = server.url.clone();

    let cat = demo::catalogue();
    let villages: Vec<String> = cat
        .org_units
        .values()
        .filter(|u| u.level == Level::Village)
        .map(|u| u.id.clone())
        .collect();
    let fields = ["road_km", "drainage_km", "canal_km", "playground", "village_sports_area"];
    let per_device = records / devices;

    // Each device records distinct (village, period, field) cells, as surveyors do.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..devices {
        let url = url.clone();
        let villages = villages.clone();
        tasks.push(tokio::spawn(async move {
            let mut remote = Grpc::connect(&url, TOKEN).await?;
            let device = DeviceId(uuid::Uuid::new_v4());
            let mut batches = 0;
            let mut id = 0u64;
            while (id as usize) < per_device {
                let batch: Vec<Mutation> = (0..BATCH.min(per_device - id as usize))
                    .map(|_| {
                        id += 1;
                        let cell = d * per_device + id as usize;
                        let year = 2000 + (cell / (villages.len() * fields.len())) % 100;
                        Mutation {
                            id,
                            village_id: villages[cell % villages.len()].clone(),
                            period: year.to_string(),
                            field: fields[(cell / villages.len()) % fields.len()].into(),
                            value: RawValue::Amount((cell % 9 + 1).to_string()),
                            base_version: 0,
                            hlc: Hlc::from_millis(fieldsync_client::now_ms()),
                            author: format!("Surveyor {d}"),
                        }
                    })
                    .collect();
                remote.push(device, batch, 0).await?;
                batches += 1;
            }
            anyhow::Ok(batches)
        }));
    }
    let mut batches = 0;
    for t in tasks {
        batches += t.await??;
    }
    let push_secs = start.elapsed().as_secs_f64();
    let pushed = per_device * devices;

    let start = Instant::now();
    let mut remote = Grpc::connect(&url, TOKEN).await?;
    let mut pulled = 0usize;
    let mut pages = 0usize;
    remote
        .pull(DeviceId(uuid::Uuid::new_v4()), 0, &mut |page, _| {
            pulled += page.changes.len();
            pages += 1;
            Ok(())
        })
        .await?;
    let pull_secs = start.elapsed().as_secs_f64();

    println!("fieldsync sync bench: {devices} devices, batches of {BATCH}, sled in a temp dir");
    println!(
        "push: {pushed} records in {batches} flushed batches, {push_secs:.2} s, {:.0} records/s",
        pushed as f64 / push_secs
    );
    println!(
        "pull: {pulled} changes in {pages} pages, {pull_secs:.2} s, {:.0} changes/s",
        pulled as f64 / pull_secs
    );
    server.stop().await?;
    Ok(())
}
