//! Totals at national scale: loads N values over a synthetic country of
//! ~70,000 villages into a sled store (through `Store::push`, as the sync
//! service does), then times totals for one district, for a whole province,
//! a full national CSV export at village level, and one page of the review
//! queue for one commune (which reads every report header to find its own).
//! At the largest size, then: the whole country's org tree imported into an
//! empty store in one `import_catalogue`; the district level removed (each
//! province's districts merged into it on 2025-07-01, one dated change per
//! province, as on 1 July 2025); province totals of 2022 on its own tree
//! after that; and the national export of 2022 restated on the two-tier
//! tree (every village's report summed into its province).
//!
//! `cargo bench -p fieldsync-tests --bench rollup`
//! (sizes: `FIELDSYNC_BENCH_VALUES`, a comma
//! list, default "10000,100000").

use std::sync::Arc;
use std::time::Instant;

use fieldsync::access::{Role, User};
use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{demo, Catalogue, DeviceId, Hlc, Level, Period};
use fieldsync_client::export::{Csv, Row};
use fieldsync_server::Store;
use fieldsync_store::Sled;

const PROVINCES: usize = 63;
const DISTRICTS: usize = 11;
const COMMUNES: usize = 13;
const VILLAGES: usize = 8;
const BATCH: usize = 1_000;

/// 63 provinces × 11 districts × 13 communes × 8 villages = 72,072 villages.
fn country() -> Catalogue {
    demo::country(PROVINCES, DISTRICTS, COMMUNES, VILLAGES)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("FIELDSYNC_BENCH_VALUES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let catalogue = country();
    let villages: Vec<String> = catalogue
        .org_units
        .values()
        .filter(|u| u.level == Level::Village)
        .map(|u| u.id.clone())
        .collect();
    let codes: Vec<String> =
        catalogue.indicators.keys().filter(|c| !c.contains("cement")).cloned().collect();
    println!(
        "fieldsync rollup bench: {} villages, {} indicators, sled in a temp dir",
        villages.len(),
        codes.len()
    );
    println!("values      load        district   province   national CSV (rows)        commune queue page (reports)");
    let admin = User {
        id: "admin".into(),
        name: "Admin".into(),
        role: Role::Admin,
        areas: vec![],
        disabled: false,
    };
    for &n in &sizes {
        let dir = tempfile::tempdir()?;
        let cat = catalogue.clone();
        let store = Store::open(Arc::new(Sled::open(dir.path())?), move || cat)?;
        let device = DeviceId(uuid::Uuid::new_v4());
        let ((), load_ms) = time(|| {
            let mut id = 0u64;
            while (id as usize) < n {
                let batch: Vec<Mutation> = (0..BATCH.min(n - id as usize))
                    .map(|_| {
                        id += 1;
                        let i = id as usize - 1;
                        Mutation {
                            id,
                            village_id: villages[i % villages.len()].clone(),
                            period: "2022".into(),
                            field: codes[(i / villages.len()) % codes.len()].clone(),
                            value: RawValue::Amount(format!("{}.{}", i % 7 + 1, i % 10)),
                            base_version: 0,
                            hlc: Hlc(id),
                            author: "bench".into(),
                        }
                    })
                    .collect();
                store.push(&admin, device, &batch, 0, 1).expect("push");
            }
        });
        let period = Period::Year(2022);
        let (district, district_ms) =
            time(|| store.totals(&admin, Level::District, Some("p0.d0"), period));
        let (province, province_ms) =
            time(|| store.totals(&admin, Level::Province, Some("p0"), period));
        assert!(!district?.is_empty() && !province?.is_empty());
        let ((), export_ms) = time(|| {
            let units = store.report_units(&admin, Level::Village, None).expect("units");
            let mut csv = Csv::new(std::io::sink(), false).expect("csv");
            let mut rows = 0usize;
            for chunk in units.chunks(500) {
                for t in store.totals_of(chunk, period).expect("totals") {
                    let row = Row {
                        level: "village".into(),
                        unit_id: t.unit,
                        unit_name: String::new(),
                        parent_id: String::new(),
                        indicator: t.indicator,
                        indicator_name: String::new(),
                        unit: String::new(),
                        done: t.cell.done(true).to_string(),
                        plan: t.plan.map(|p| p.to_string()).unwrap_or_default(),
                        percent: String::new(),
                        approved: t.cell.approved.to_string(),
                        pending: t.cell.pending.to_string(),
                        approved_count: t.cell.approved_n,
                        pending_count: t.cell.pending_n,
                        conflict_count: t.cell.conflicts_n,
                        exceeds_whole: false,
                    };
                    csv.row(&row).expect("row");
                    rows += 1;
                }
            }
            csv.finish().expect("finish");
            assert_eq!(rows, units.len() * catalogue.indicators.len());
        });
        let (queue, queue_ms) = time(|| {
            store.list_submissions(&admin, Some("p0.d0.c0"), Some(period), None, None, 100)
        });
        let rows = villages.len() * catalogue.indicators.len();
        if Some(&n) == sizes.last() {
            restructure(&store, &catalogue, &admin)?;
        }
        println!(
            "{n:<11} {:>7.1} s   {district_ms:>7.2} ms {province_ms:>7.3} ms {:>8.2} s ({rows})   \
             {queue_ms:>7.1} ms ({})",
            load_ms / 1000.0,
            export_ms / 1000.0,
            queue?.len()
        );
    }
    Ok(())
}

/// The tree at national scale: imported whole, then restructured, then
/// 2022 read on both trees. Printed as its own lines.
fn restructure(store: &Store, catalogue: &Catalogue, admin: &User) -> anyhow::Result<()> {
    let units: Vec<_> = catalogue.org_units.values().map(|u| (u.clone(), None)).collect();
    let dir = tempfile::tempdir()?;
    let empty = Store::open(Arc::new(Sled::open(dir.path())?), Catalogue::default)?;
    let (imported, import_ms) = time(|| {
        empty.import_catalogue(admin, units, catalogue.indicators_in_order().cloned().collect(), 1)
    });
    let imported = imported?;
    println!(
        "  import of the whole tree into an empty store: {} org units in {:.2} s",
        imported.org_units,
        import_ms / 1000.0
    );
    let july = fieldsync::Date::new(2025, 7, 1)?;
    let now = fieldsync_server::db::now_ms();
    let provinces = catalogue.units_at(Level::Province, None);
    let ((), merge_ms) = time(|| {
        for p in &provinces {
            let districts = catalogue.units_at(Level::District, Some(&p.id));
            let change = fieldsync::TreeChange::Merge {
                units: districts.iter().map(|d| d.id.clone()).collect(),
                into: p.id.clone(),
                new: None,
            };
            store.change_tree(admin, july, &change, now).expect("the districts merge");
        }
    });
    println!(
        "  district level removed: {} dated changes (one per province) in {:.2} s, {:.1} ms each",
        provinces.len(),
        merge_ms / 1000.0,
        merge_ms / provinces.len() as f64
    );
    let period = Period::Year(2022);
    let (own, own_ms) = time(|| store.totals(admin, Level::Province, Some("p0"), period));
    let today = store.catalogue().tree_at(fieldsync::Date::new(2026, 1, 1)?)?;
    let ids: Vec<String> = provinces.iter().map(|p| p.id.clone()).collect();
    let (restated, restated_ms) = time(|| store.restated_totals(&today, &ids, period));
    let (own, restated) = (own?, restated?);
    let road = |totals: &[fieldsync_server::db::Total], unit: &str| {
        totals
            .iter()
            .find(|t| t.unit == unit && t.indicator == "road_km")
            .map(|t| t.cell.done(true))
    };
    assert_eq!(road(&own, "p0"), road(&restated, "p0"), "restated on the new tree, the same sum");
    println!(
        "  after it: province totals of 2022 on 2022's tree {own_ms:.3} ms; the national export \
         of 2022 restated on the two-tier tree ({} provinces, every village summed) {:.2} s",
        ids.len(),
        restated_ms / 1000.0
    );
    Ok(())
}
