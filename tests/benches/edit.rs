//! A single-field edit of a report in a commune whose record already holds
//! many reports: the store (sled in a temp dir, the demo catalogue with
//! `FIELDSYNC_BENCH_EDIT_VILLAGES` more villages, default 60, in its commune
//! with the most) is loaded through `Store::push` with a report of every
//! village of that commune for each of `FIELDSYNC_BENCH_EDIT_PERIODS`
//! months (default 12), each with five amounts and a note of about 200
//! bytes; then
//! one village's road_km of the first month is edited again and again, one
//! flushed push of one mutation each (`FIELDSYNC_BENCH_EDITS`, default 200),
//! and the time per edit is printed (median and 95th percentile).
//!
//! `cargo bench -p fieldsync-tests --bench edit`

use std::sync::Arc;
use std::time::Instant;

use fieldsync::sync::{Mutation, Outcome, RawValue};
use fieldsync::{demo, Catalogue, DeviceId, Hlc, Level, OrgUnit};
use fieldsync_server::Store;
use fieldsync_store::Sled;

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

/// The demo catalogue with `extra` more villages in its commune with the
/// most, and that commune's id.
fn catalogue(extra: usize) -> anyhow::Result<(Catalogue, String)> {
    let demo = demo::catalogue();
    let communes = demo.units_at(Level::Commune, None);
    let commune = communes
        .iter()
        .max_by_key(|c| demo.units_at(Level::Village, Some(&c.id)).len())
        .ok_or_else(|| anyhow::anyhow!("no commune"))?
        .id
        .clone();
    let mut units: Vec<OrgUnit> = demo.org_units.values().cloned().collect();
    units.extend((0..extra).map(|i| OrgUnit {
        id: format!("{commune}.bench-{i}"),
        name: format!("Bench {i}"),
        level: Level::Village,
        parent: Some(commune.clone()),
    }));
    let catalogue = Catalogue::new(demo.indicators.values().cloned().collect(), units)?;
    Ok((catalogue, commune))
}

fn main() -> anyhow::Result<()> {
    let periods = env("FIELDSYNC_BENCH_EDIT_PERIODS", 12).clamp(1, 12);
    let edits = env("FIELDSYNC_BENCH_EDITS", 200).max(1);
    let extra = env("FIELDSYNC_BENCH_EDIT_VILLAGES", 60);
    let dir = tempfile::tempdir()?;
    let (catalogue, commune) = catalogue(extra)?;
    let villages: Vec<String> =
        catalogue.units_at(Level::Village, Some(&commune)).iter().map(|v| v.id.clone()).collect();
    let store = Store::open(Arc::new(Sled::open(dir.path())?), move || catalogue)?;
    store.ensure_admin(Some(TOKEN), fieldsync_client::now_ms())?;
    let admin = store.user("admin")?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
    let device = DeviceId(uuid::Uuid::new_v4());
    let mut next = 1;
    for month in 1..=periods {
        let batch = reports(&villages, &format!("2022-{month:02}"), next);
        next += batch.len() as u64;
        store.push(&admin, device, &batch, next - 1, fieldsync_client::now_ms())?;
    }
    let loaded = next - 1;
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
        anyhow::ensure!(matches!(result[0].outcome, Outcome::Applied), "{result:?}");
        base = result[0].current.as_ref().map_or(base, |c| c.version);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!("| commune | reports per commune record | values loaded | single-field edits | time per edit |");
    println!("|---|---|---|---|---|");
    println!(
        "| {commune}, {} villages, {periods} month(s) | {} | {loaded} | {edits}, one flushed push each | median {:.2} ms, p95 {:.2} ms |",
        villages.len(),
        villages.len(),
        at(0.5),
        at(0.95)
    );
    Ok(())
}
