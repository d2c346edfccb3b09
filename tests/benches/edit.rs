//! A single-field edit of a report in a commune whose record already holds
//! many reports: the server (sled in a temp dir) is loaded through
//! `Store::push` with a report of every village of the commune with the
//! most villages, for each of `FIELDSYNC_BENCH_EDIT_PERIODS` months (default
//! 12), each report with five amounts and a note of about 200 bytes; then
//! one village's road_km of the first month is edited again and again, one
//! flushed push of one mutation each (`FIELDSYNC_BENCH_EDITS`, default 200),
//! and the time per edit is printed (median and 95th percentile).
//!
//! `cargo bench -p fieldsync-tests --bench edit`

use std::time::Instant;

use fieldsync::sync::{Mutation, Outcome, RawValue};
use fieldsync::{demo, DeviceId, Hlc, Level};
use fieldsync_server::local::LocalServer;

const TOKEN: &str = "bench-admin-token-0123456789";
const AMOUNTS: [&str; 5] =
    ["road_km", "drainage_km", "canal_km", "playground", "village_sports_area"];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Every report of `villages` for `period`, each with its five amounts and a note.
fn reports(villages: &[String], period: &str, first_id: u64) -> Vec<Mutation> {
    let mut id = first_id;
    let mut out = Vec::new();
    for village in villages {
        let fields = AMOUNTS.iter().map(|f| (f.to_string(), RawValue::Amount("3".into())));
        let note =
            ("note".to_string(), RawValue::Text(format!("{village} {period} {}", "x".repeat(200))));
        for (field, value) in fields.chain([note]) {
            out.push(Mutation {
                id,
                village_id: village.clone(),
                period: period.into(),
                field,
                value,
                base_version: 0,
                hlc: Hlc::from_millis(fieldsync_client::now_ms()),
                author: "Bench".into(),
            });
            id += 1;
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let periods = env("FIELDSYNC_BENCH_EDIT_PERIODS", 12).clamp(1, 12);
    let edits = env("FIELDSYNC_BENCH_EDITS", 200).max(1);
    let dir = tempfile::tempdir()?;
    let server = LocalServer::start(dir.path(), "127.0.0.1:0", TOKEN).await?;
    let store = server.store.clone();
    let line = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let catalogue = demo::catalogue();
        let communes = catalogue.units_at(Level::Commune, None);
        let villages_of = |c: &str| -> Vec<String> {
            let villages = catalogue.units_at(Level::Village, Some(c));
            villages.into_iter().map(|v| v.id.clone()).collect()
        };
        let commune = communes
            .iter()
            .max_by_key(|c| villages_of(&c.id).len())
            .ok_or_else(|| anyhow::anyhow!("no commune"))?;
        let villages = villages_of(&commune.id);
        let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
        let device = DeviceId(uuid::Uuid::new_v4());
        let mut next = 1;
        for month in 1..=periods {
            let batch = reports(&villages, &format!("2022-{month:02}"), next);
            next += batch.len() as u64;
            store.push(&admin, device, &batch, next - 1, fieldsync_client::now_ms())?;
        }
        let mut times = Vec::with_capacity(edits);
        let mut base = 0;
        for k in 0..edits {
            let edit = Mutation {
                id: next,
                village_id: villages[0].clone(),
                period: "2022-01".into(),
                field: "road_km".into(),
                value: RawValue::Amount((k % 9 + 1).to_string()),
                base_version: base,
                hlc: Hlc::from_millis(fieldsync_client::now_ms()),
                author: "Bench".into(),
            };
            let start = Instant::now();
            let result = store.push(&admin, device, &[edit], next, fieldsync_client::now_ms())?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            next += 1;
            anyhow::ensure!(
                matches!(result[0].outcome, Outcome::Applied | Outcome::Unchanged),
                "{result:?}"
            );
            base = result[0].current.as_ref().map_or(base, |c| c.version);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        Ok(format!(
            "| {} reports of {} villages in {} ({} month(s)), {} values | {edits} edits of one field, one flushed push each | median {:.2} ms, p95 {:.2} ms |",
            villages.len() * periods,
            villages.len(),
            commune.id,
            periods,
            (next - 1) as usize - edits,
            at(0.5),
            at(0.95)
        ))
    })
    .await??;
    println!("| commune record | single-field edits | time per edit |");
    println!("|---|---|---|");
    println!("{line}");
    server.stop().await?;
    Ok(())
}
