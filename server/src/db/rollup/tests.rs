//! The totals kept one record per org unit and period: what a push writes,
//! what `check` finds wrong, and the move from one record per cell on open
//! (after a kill at any batch, and from a backup an older version made).

use std::sync::Arc;

use fieldsync::access::{Role, User};
use fieldsync::review::Verdict;
use fieldsync::rollup::Cell;
use fieldsync::sync::{Mutation, RawValue};
use fieldsync::{demo, Amount, DeviceId, Hlc, Level};
use fieldsync_store::{Batch, Engine, Memory};

use super::super::backup::tests::restored_copy;
use super::super::schema::{
    encode, retired, Key, UnitTotals, DERIVED_TOTALS_KEY, TOTALS, TOTALS_KEY, TREES,
};
use super::super::trail::tests::killed_after_each_batch;
use super::super::Store;
use super::Total;

fn user(id: &str, role: Role, area: &str) -> User {
    User { id: id.into(), name: id.into(), role, areas: vec![area.into()], disabled: false }
}

fn value(id: u64, village: &str, period: &str, field: &str, v: &str) -> Mutation {
    Mutation {
        id,
        village_id: village.into(),
        period: period.into(),
        field: field.into(),
        value: RawValue::Amount(v.into()),
        base_version: 0,
        hlc: Hlc(id),
        author: "An".into(),
    }
}

fn villages(store: &Store) -> Vec<String> {
    let catalogue = store.catalogue();
    let all = catalogue.units_at(Level::Village, Some(demo::SAMPLE_COMMUNE));
    all.iter().map(|u| u.id.clone()).collect()
}

/// Three indicators in every village (3) of the sample commune for 2022 and
/// one for 2022-Q3, in one push; a competing value in one village (a
/// conflict) and another village's report approved.
fn busy_store(engine: Arc<dyn Engine>) -> Store {
    let store = Store::open(engine, demo::catalogue).unwrap();
    let villages = villages(&store);
    let mut values = Vec::new();
    for (i, v) in villages.iter().enumerate() {
        for (j, field) in ["road_km", "drainage_km", "canal_km"].into_iter().enumerate() {
            values.push(value(values.len() as u64 + 1, v, "2022", field, &format!("{i}.{j}5")));
        }
        values.push(value(values.len() as u64 + 1, v, "2022-Q3", "road_km", "1.5"));
    }
    let an = user("an", Role::Surveyor, demo::PROVINCE);
    store.push(&an, DeviceId(uuid::Uuid::from_u128(1)), &values, 0, 1).unwrap();
    let bo = user("bo", Role::Surveyor, demo::PROVINCE);
    let competing = value(1, &villages[0], "2022", "road_km", "9");
    store.push(&bo, DeviceId(uuid::Uuid::from_u128(2)), &[competing], 0, 2).unwrap();
    let chi = user("chi", Role::Supervisor, demo::SAMPLE_COMMUNE);
    let approved = [(villages[1].clone(), "2022".parse().unwrap())];
    store.decide(&chi, &approved, Verdict::Approve, "", 3).unwrap();
    store
}

/// Every total a report of the sample commune's area shows, both periods.
fn answers(store: &Store) -> Vec<Total> {
    let catalogue = store.catalogue();
    let mut units: Vec<String> =
        catalogue.lineage(&villages(store)[0]).map(|u| u.id.clone()).collect();
    units.extend(villages(store));
    let mut out = store.totals_of(&units, "2022".parse().unwrap()).unwrap();
    out.extend(store.totals_of(&units, "2022-Q3".parse().unwrap()).unwrap());
    out
}

/// Keeps the totals of every village of `store` and of their commune in
/// `totals`, as stores did before these were read from the reports, and
/// drops the marker.
fn with_derived_totals(store: &Store, engine: &dyn Engine) {
    let mut batch = Batch::default();
    for period in ["2022", "2022-Q3"] {
        let period = period.parse().unwrap();
        let mut cells = UnitTotals::default();
        let units = villages(store).into_iter().chain([demo::SAMPLE_COMMUNE.to_owned()]);
        for unit in units {
            cells.0.clear();
            for t in store.totals_of(std::slice::from_ref(&unit), period).unwrap() {
                if !t.cell.is_empty() {
                    cells.0.insert(t.indicator, t.cell);
                }
            }
            if !cells.0.is_empty() {
                Key::Totals(period, unit).put(&mut batch, cells.encode());
            }
        }
    }
    Key::Meta(DERIVED_TOTALS_KEY).delete(&mut batch);
    engine.commit(batch).unwrap();
}

/// Rewrites the totals as the earlier layout kept them: a record per cell
/// (villages' and communes' too), and no marker.
fn to_old_layout(store: &Store, engine: &dyn Engine) {
    with_derived_totals(store, engine);
    let mut batch = Batch::default();
    for entry in engine.iter_all(TOTALS) {
        let (key, bytes) = entry.unwrap();
        let Key::Totals(period, unit) = Key::decode(TOTALS, &key).unwrap() else { panic!() };
        for (code, cell) in UnitTotals::decode(&bytes).unwrap().0 {
            Key::Rollup(period, unit.clone(), code).put(&mut batch, encode(&cell));
        }
        batch.delete(TOTALS, key);
    }
    Key::Meta(TOTALS_KEY).delete(&mut batch);
    engine.commit(batch).unwrap();
}

fn records_in(engine: &dyn Engine, tree: &'static str) -> usize {
    engine.iter_all(tree).count()
}

fn total(answers: &[Total], unit: &str, code: &str) -> Cell {
    answers.iter().find(|t| t.unit == unit && t.indicator == code).unwrap().cell
}

#[test]
fn a_push_writes_one_record_per_unit_it_moves_with_every_indicator_in_it() {
    let engine = Arc::new(Memory::new());
    let store = busy_store(engine.clone());
    // The district and province of the 3 villages, for two periods: a
    // village's totals are its report's and their commune's those of the
    // reports in its record, read from there.
    let n = villages(&store).len();
    assert_eq!(n, 3);
    assert_eq!(records_in(engine.as_ref(), TOTALS), 2 * 2);
    let answers = answers(&store);
    for (i, village) in villages(&store).iter().enumerate() {
        let drainage = total(&answers, village, "drainage_km");
        assert_eq!(drainage.done(true), Amount::new(100 * i as i64 + 15, 2), "{village}");
        assert_eq!(drainage.approved_n + drainage.pending_n, 1, "{village}: its one report");
    }
    assert_eq!(total(&answers, &villages(&store)[0], "road_km").conflicts_n, 1);
    let province = total(&answers, demo::PROVINCE, "drainage_km");
    let sum: i64 = (0..n as i64).map(|i| 100 * i + 15).sum();
    assert_eq!(province.done(true), Amount::new(sum, 2), "every village counts, once");
    assert_eq!((province.approved_n, province.pending_n), (1, 2));
    let commune = total(&answers, demo::SAMPLE_COMMUNE, "drainage_km");
    assert_eq!(commune, province, "the commune holds every report there is");
    let road = total(&answers, demo::SAMPLE_COMMUNE, "road_km");
    assert_eq!(road.conflicts_n, 1, "the competing value is counted as a conflict");
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

#[test]
fn check_finds_a_kept_total_that_differs_an_empty_record_and_cells_left_behind() {
    let engine = Arc::new(Memory::new());
    let store = busy_store(engine.clone());
    let key = Key::Totals("2022".parse().unwrap(), demo::PROVINCE.into());
    let good = key.get(engine.as_ref()).unwrap().unwrap();
    let mut totals = UnitTotals::decode(&good).unwrap();
    totals.0.get_mut("canal_km").unwrap().approved_n += 1;
    let mut batch = Batch::default();
    key.put(&mut batch, totals.encode());
    let empty = Key::Totals("2023".parse().unwrap(), demo::PROVINCE.into());
    empty.put(&mut batch, UnitTotals::default().encode());
    let old = Key::Rollup("2022".parse().unwrap(), demo::PROVINCE.into(), "canal_km".into());
    old.put(&mut batch, encode(&Cell::default()));
    engine.commit(batch).unwrap();
    let problems = store.check().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("2022 / ha-tinh / canal_km: kept")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("2023 / ha-tinh: a record with no cell")));
    assert!(problems.iter().any(|p| p.contains("earlier layout")), "{problems:?}");
}

#[test]
fn a_store_with_a_record_per_cell_is_migrated_on_open_and_shows_the_same_totals() {
    let engine = Arc::new(Memory::new());
    let store = busy_store(engine.clone());
    let before = answers(&store);
    let records = records_in(engine.as_ref(), TOTALS);
    to_old_layout(&store, engine.as_ref());
    drop(store);
    assert!(records_in(engine.as_ref(), retired::ROLLUPS) > records);
    let store = Store::open(engine.clone(), demo::catalogue).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_eq!(answers(&store), before);
    assert_eq!(records_in(engine.as_ref(), TOTALS), records);
    assert!(engine.last(retired::ROLLUPS).unwrap().is_none(), "the old cells are gone");
    // Writes go on over the migrated totals.
    let an = user("an", Role::Surveyor, demo::PROVINCE);
    let more = value(13, &villages(&store)[2], "2022", "road_km", "2");
    store.push(&an, DeviceId(uuid::Uuid::from_u128(1)), &[more], 12, 4).unwrap();
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
    assert_ne!(answers(&store), before);
}

#[test]
fn a_migration_killed_after_any_batch_finishes_when_opened_again() {
    let source = Arc::new(Memory::new());
    let store = busy_store(source.clone());
    let before = answers(&store);
    to_old_layout(&store, source.as_ref());
    drop(store);
    let trees: Vec<&'static str> = TREES.iter().copied().chain([retired::ROLLUPS]).collect();
    let killed = killed_after_each_batch(&source, &trees, &before, answers);
    assert!(killed >= 5, "the migration writes in several batches ({killed})");
}

/// A store that kept its villages' and communes' totals drops them when
/// opened, even when killed after any batch, and shows the same totals;
/// `check` names such totals kept.
#[test]
fn a_store_keeping_village_and_commune_totals_drops_them_when_opened_and_shows_the_same() {
    let source = Arc::new(Memory::new());
    let store = busy_store(source.clone());
    let before = answers(&store);
    let records = records_in(source.as_ref(), TOTALS);
    with_derived_totals(&store, source.as_ref());
    drop(store);
    let kept = records_in(source.as_ref(), TOTALS);
    assert_eq!(kept, records + 2 * (3 + 1), "3 villages and their commune, 2 periods");
    let killed = killed_after_each_batch(&source, TREES, &before, answers);
    assert!(killed >= 1, "{killed}");
    let store = Store::open(source.clone(), demo::catalogue).unwrap();
    assert_eq!(records_in(source.as_ref(), TOTALS), records);
    assert_eq!(answers(&store), before);
    with_derived_totals(&store, source.as_ref());
    let problems = store.check().unwrap().join("\n");
    assert!(problems.contains(&format!("2022 / {} / road_km: kept", villages(&store)[0])));
}

#[test]
fn a_backup_of_a_store_with_a_record_per_cell_restores_and_is_migrated() {
    let engine = Arc::new(Memory::new());
    let store = busy_store(engine.clone());
    let before = answers(&store);
    to_old_layout(&store, engine.as_ref());
    let copy = restored_copy(&store, &[]);
    assert!(copy.last(retired::ROLLUPS).unwrap().is_some(), "the old cells are restored");
    let restored = Store::open(copy.clone(), demo::catalogue).unwrap();
    assert_eq!(restored.check().unwrap(), Vec::<String>::new());
    assert_eq!(answers(&restored), before);
    assert!(copy.last(retired::ROLLUPS).unwrap().is_none());
}
