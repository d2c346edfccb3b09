//! The fieldsync demo (`cargo run -p fieldsync-demo`): rebuilds the
//! infrastructure table of Hà Tĩnh's 2022 New Rural Development report from
//! simulated field records. A fresh server in a temp dir gets the demo org
//! tree and the 2022 plan figures; one surveyor per district records every
//! village offline on a tablet and syncs; a second surveyor double-records a
//! few villages with a slip, making conflicts that a supervisor settles;
//! communes approve, districts accept; then the province report is read back
//! through the export service, with the land consolidated by district (the
//! report's footnote 2). Then the tree of 1 July 2025: three communes of
//! Hương Khê merge into one and the districts go; the new commune's villages
//! report 2026 (the commune approves, the province accepts), and the demo
//! prints 2026 and 2022 restated under the new commune. Tablets are `fieldsync_client`'s, supervisors
//! and the province office call the server through `fieldsync_client::api`.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{ensure, Context};
use fieldsync::access::{Role, User};
use fieldsync::review::Verdict;
use fieldsync::sync::RawValue;
use fieldsync::{demo, Amount, Catalogue, FieldKey, Level, OrgUnit, Period, TreeChange};
use fieldsync_client::api::{Decision, Query, Reports, Settle};
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{init_tablet, Api, Grpc};
use fieldsync_server::db::{now_ms, PlanRow};
use fieldsync_server::local::LocalServer;
use fieldsync_server::Store;
use fieldsync_store::Memory;

/// The report's 2022 totals for the whole province (indicator, done).
pub const REPORT_2022: &[(&str, &str)] = &[
    ("road_km", "760"),
    ("road_cement_km", "440"),
    ("drainage_km", "61.5"),
    ("canal_km", "102.73"),
    ("canal_cement_km", "57.76"),
    ("commune_cultural_house", "21"),
    ("commune_sports_area", "13"),
    ("village_cultural_house", "107"),
    ("village_sports_area", "131"),
    ("playground", "57"),
    ("smart_house_library", "94"),
    ("model_residential_area", "147"),
];

/// The report's 2022 plan (KH) figures for the province.
pub const PLAN_2022: &[(&str, &str)] = &[
    ("road_cement_km", "458"),
    ("drainage_km", "79.8"),
    ("canal_cement_km", "69.37"),
    ("model_residential_area", "100"),
];

const TOKEN: &str = "demo-admin-token-not-for-production";

/// The indicator the second tablets get wrong.
const SLIP: &str = "village_cultural_house";

/// Land consolidated, ha: the report gives it by district (footnote 2).
const LAND: &str = "land_consolidation_ha";

/// The day the district level went and communes merged.
const RESTRUCTURE: &str = "2025-07-01";

/// The communes of Hương Khê the demo merges into one on that day, and
/// the commune they become. (The record does not name the real new
/// communes; the demo names this one after one of the three.)
const MERGED: [&str; 3] =
    ["ha-tinh.huong-khe.phuc-dong", "ha-tinh.huong-khe.hoa-hai", "ha-tinh.huong-khe.huong-binh"];
const NEW_COMMUNE: (&str, &str) = ("ha-tinh.huong-binh", "Xã Hương Bình");

/// A district's land consolidated in 2022, if the report gives it.
fn land_of(district: &OrgUnit) -> anyhow::Result<Option<Amount>> {
    let slug = district.id.rsplit('.').next().unwrap_or("");
    match demo::LAND_2022.iter().find(|(d, _)| *d == slug) {
        Some((_, ha)) => Ok(Some(Amount::parse(ha, 2)?)),
        None => Ok(None),
    }
}

/// What the demo did, and the report it printed.
#[derive(Debug)]
pub struct Summary {
    pub villages: usize,
    pub mutations: usize,
    pub conflicts_settled: usize,
    /// (indicator, done, plan) at province level.
    pub province: Vec<(String, String, String)>,
    /// (district id, ha) of land consolidated in 2022, as exported.
    pub land_by_district: Vec<(String, String)>,
    /// road_km of the new commune: 2026 as recorded under it, and 2022
    /// restated under it (its villages' 2022 reports summed).
    pub new_commune_road_km: (String, String),
    pub report: String,
}

/// Splits `total` over `n` villages exactly: the first `total mod n` get one
/// unit more.
fn share(total: Amount, n: usize, i: usize) -> Amount {
    let (q, r) = (total.units() / n as i64, total.units() % n as i64);
    Amount::new(q + i64::from((i as i64) < r), total.scale())
}

/// The running server, its org tree and the users the demo makes.
struct Demo {
    url: String,
    store: Arc<Store>,
    admin: User,
    catalogue: Arc<Catalogue>,
    districts: Vec<OrgUnit>,
    communes: Vec<String>,
    villages: Vec<String>,
}

/// A village whose second tablet recorded a slip, and the right value.
type Slip = (String, Amount);

impl Demo {
    /// A new user, and a token for them.
    fn user(
        &self,
        id: String,
        name: String,
        role: Role,
        areas: Vec<String>,
    ) -> anyhow::Result<String> {
        let u = User { id: id.clone(), name, role, areas, disabled: false };
        self.store.create_user(&self.admin, u, now_ms())?;
        Ok(self.store.issue_token(&self.admin, &id, 0, "demo", now_ms())?.0)
    }

    /// What village `i` records for `code`: the report's total, split exactly.
    fn value(&self, code: &str, i: usize) -> anyhow::Result<Amount> {
        let (_, total) = REPORT_2022.iter().find(|(c, _)| *c == code).context("indicator")?;
        let scale = self.catalogue.indicator(code).context("indicator")?.kind.scale();
        Ok(share(Amount::parse(total, scale)?, self.villages.len(), i))
    }

    /// The villages of a district, with their index among all villages.
    fn villages_of<'a>(
        &'a self,
        district: &'a OrgUnit,
    ) -> impl Iterator<Item = (usize, &'a String)> + 'a {
        self.villages.iter().enumerate().filter(|(_, v)| self.catalogue.within(v, &district.id))
    }

    /// One surveyor per district records every village offline and syncs;
    /// every fourth district's first village is recorded again, with a slip,
    /// by a second surveyor. The values recorded, and the slips.
    async fn record(&self) -> anyhow::Result<(usize, Vec<Slip>)> {
        let mut mutations = 0;
        let mut slips = Vec::new();
        for (d, district) in self.districts.iter().enumerate() {
            let slug = district.id.rsplit('.').next().unwrap_or("x");
            let token = self.user(
                format!("surveyor.{slug}"),
                format!("Cán bộ khảo sát {}", district.name),
                Role::Surveyor,
                vec![district.id.clone()],
            )?;
            let tablet = init_tablet(Arc::new(Memory::new()), &self.url, &token).await?;
            let land = land_of(district)?;
            let in_district = self.villages_of(district).count();
            for (k, (i, village)) in self.villages_of(district).enumerate() {
                let mut edits: Vec<(String, RawValue)> = REPORT_2022
                    .iter()
                    .map(|(code, _)| Ok(((*code).to_owned(), raw(self.value(code, i)?))))
                    .collect::<anyhow::Result<_>>()?;
                if let Some(total) = land {
                    edits.push((LAND.into(), raw(share(total, in_district, k))));
                }
                mutations += tablet.record(village, "2022", &edits, now_ms())?.len();
            }
            if d % 4 == 0 {
                slips.push(self.slip(district, slug).await?);
                mutations += 1;
            }
            let mut remote = Grpc::connect(&self.url, &token).await?;
            sync::sync(&tablet, &mut remote, &Retry::default(), &mut |_| {}).await?;
        }
        Ok((mutations, slips))
    }

    /// A second tablet double-records the first village of `district` with
    /// a slip in its cultural-house count, and syncs.
    async fn slip(&self, district: &OrgUnit, slug: &str) -> anyhow::Result<Slip> {
        let (i, village) = self.villages_of(district).next().context("a village")?;
        let token = self.user(
            format!("surveyor2.{slug}"),
            format!("Cán bộ khảo sát 2 {}", district.name),
            Role::Surveyor,
            vec![district.id.clone()],
        )?;
        let second = init_tablet(Arc::new(Memory::new()), &self.url, &token).await?;
        let right = self.value(SLIP, i)?;
        let wrong = Amount::new(right.units() + 1, right.scale());
        second.record(village, "2022", &[(SLIP.into(), raw(wrong))], now_ms())?;
        let mut remote = Grpc::connect(&self.url, &token).await?;
        sync::sync(&second, &mut remote, &Retry::default(), &mut |_| {}).await?;
        Ok((village.clone(), right))
    }
}

/// An amount as a tablet records it.
fn raw(amount: Amount) -> RawValue {
    RawValue::Amount(amount.to_string())
}

/// The supervisor settles each slip by picking the value checked on site.
async fn settle(supervisor: &Api, slips: &[Slip]) -> anyhow::Result<usize> {
    let (period, field) = (Period::Year(2022), FieldKey::parse(SLIP));
    let mut settled = 0;
    for (village, right) in slips {
        let report = supervisor.submission(village, period).await?;
        let conflict = report
            .conflicts
            .iter()
            .find(|c| c.open && c.at.field == field)
            .context("the slip made a conflict")?;
        let pick = conflict
            .candidates
            .iter()
            .position(|k| k.value == fieldsync::Value::Amount(*right))
            .context("the right value is a candidate")?;
        let choice = Settle::Pick(pick as u32);
        supervisor.settle(village, period, &field, &choice, "đã kiểm tra tại thực địa").await?;
        settled += 1;
    }
    Ok(settled)
}

/// `verdict` on every report of each area for 2022: the reports changed.
async fn decide(reviewer: &Api, verdict: Verdict, areas: &[String]) -> anyhow::Result<usize> {
    let mut changed = 0;
    for area in areas {
        let reports = Reports::Area { area: area.clone(), period: Period::Year(2022), only: None };
        let decision = Decision { verdict, reason: String::new(), reports };
        changed += reviewer.decide(&decision).await?.changed.len();
    }
    Ok(changed)
}

/// The province report, read back as the province office would.
async fn province_report(
    url: &str,
    catalogue: &Catalogue,
    accepted: usize,
) -> anyhow::Result<(Vec<fieldsync_export::Row>, String)> {
    let office = Api::connect(url, TOKEN).await?;
    let query = Query {
        level: Level::Province,
        period: "2022".into(),
        area: None,
        include_pending: false,
        tree_date: None,
    };
    let mut rows = Vec::new();
    office
        .export_each(catalogue, &query, |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
    let mut report = String::new();
    writeln!(
        report,
        "{} (from {accepted} approved village reports)",
        fieldsync_export::report_title("Tỉnh Hà Tĩnh", "2022")
    )?;
    for (code, _) in REPORT_2022 {
        if let Some(row) = rows.iter().find(|r| r.indicator == *code) {
            writeln!(report, "  {}", fieldsync_export::report_line(row, true))?;
        }
    }
    Ok((rows, report))
}

/// A fresh server with the demo org tree and the 2022 plan figures.
async fn start(dir: &std::path::Path) -> anyhow::Result<(LocalServer, Demo)> {
    let server = LocalServer::start(dir, "127.0.0.1:0", TOKEN).await?;
    let store = Arc::clone(&server.store);
    let admin = store.user("admin")?.context("admin")?;
    let catalogue = store.catalogue();
    let plans: Vec<PlanRow> = PLAN_2022
        .iter()
        .map(|(code, value)| PlanRow {
            unit: demo::PROVINCE.into(),
            indicator: (*code).into(),
            period: "2022".into(),
            value: (*value).into(),
        })
        .collect();
    store.set_plans(&admin, &plans, now_ms())?;
    let ids = |level: Level| -> Vec<String> {
        catalogue.org_units.values().filter(|u| u.level == level).map(|u| u.id.clone()).collect()
    };
    let districts =
        catalogue.org_units.values().filter(|u| u.level == Level::District).cloned().collect();
    let (communes, villages) = (ids(Level::Commune), ids(Level::Village));
    let url = server.url.clone();
    Ok((server, Demo { url, store, admin, catalogue, districts, communes, villages }))
}

/// Runs the demo and returns its summary; `log` hears what happens.
pub async fn run(mut log: impl FnMut(&str)) -> anyhow::Result<Summary> {
    let dir = tempfile::tempdir()?;
    let (server, demo) = start(dir.path()).await?;
    log("loaded the Hà Tĩnh org tree and the 2022 plan figures");
    let commune_sup = demo.user(
        "xa.giamsat".into(),
        "Giám sát cấp xã".into(),
        Role::Supervisor,
        demo.communes.clone(),
    )?;
    let district_ids: Vec<String> = demo.districts.iter().map(|d| d.id.clone()).collect();
    let district_sup = demo.user(
        "huyen.giamsat".into(),
        "Giám sát cấp huyện".into(),
        Role::Supervisor,
        district_ids.clone(),
    )?;

    let (mutations, slips) = demo.record().await?;
    log(&format!(
        "{} surveyors recorded {} villages offline and synced ({mutations} values)",
        demo.districts.len(),
        demo.villages.len()
    ));

    let commune = Api::connect(&demo.url, &commune_sup).await?;
    let settled = settle(&commune, &slips).await?;
    log(&format!("supervisors settled {settled} conflicting reports"));

    // Communes approve, districts accept: through the review service.
    let approved = decide(&commune, Verdict::Approve, &demo.communes).await?;
    let district = Api::connect(&demo.url, &district_sup).await?;
    let accepted = decide(&district, Verdict::Accept, &district_ids).await?;
    log(&format!("communes approved {approved} reports; districts accepted {accepted}"));
    let mismatches = demo.store.check_rollups()?;
    ensure!(mismatches.is_empty(), "kept totals differ from a recomputation: {mismatches:?}");

    let (rows, mut report) = province_report(&demo.url, &demo.catalogue, accepted).await?;
    let province =
        rows.iter().map(|r| (r.indicator.clone(), r.done.clone(), r.plan.clone())).collect();

    let office = Api::connect(&demo.url, TOKEN).await?;
    let land = export(&office, &demo.catalogue, Level::District, "2022", None, None, LAND).await?;
    let land_by_district: Vec<(String, String)> = land
        .iter()
        .filter(|r| r.done != "0")
        .map(|r| (r.unit_id.clone(), r.done.clone()))
        .collect();
    writeln!(report, "\n2022, theo huyện:")?;
    for row in land.iter().filter(|r| r.done != "0") {
        writeln!(report, "  {} — {}", row.unit_name, fieldsync_export::report_line(row, true))?;
    }

    // 1 July 2025: three communes of Hương Khê merge; the districts go.
    let date = RESTRUCTURE;
    let (id, name) = NEW_COMMUNE;
    let new = OrgUnit {
        id: id.into(),
        name: name.into(),
        level: Level::Commune,
        parent: Some("ha-tinh.huong-khe".into()),
    };
    let merged: Vec<String> = MERGED.iter().map(|c| (*c).to_owned()).collect();
    let merge = TreeChange::Merge { units: merged, into: id.into(), new: Some(new) };
    office.change_tree(date, &merge).await?;
    let districts = TreeChange::Merge {
        units: demo.districts.iter().map(|d| d.id.clone()).collect(),
        into: demo::PROVINCE.into(),
        new: None,
    };
    let (_, moved) = office.change_tree(date, &districts).await?;
    log(&format!(
        "on {date} the districts went and {} communes of Hương Khê became {name}; {} \
         supervisor(s) followed their units",
        MERGED.len(),
        moved.len()
    ));

    // 2026 under the two-tier tree: the new commune's surveyor records its
    // villages, the commune approves, the province accepts.
    let today = demo.store.catalogue();
    let villages: Vec<String> =
        today.units_at(Level::Village, Some(id)).iter().map(|u| u.id.clone()).collect();
    let token = demo.user(
        "surveyor.huong-binh".into(),
        format!("Cán bộ khảo sát {name}"),
        Role::Surveyor,
        vec![id.into()],
    )?;
    let tablet = init_tablet(Arc::new(Memory::new()), &demo.url, &token).await?;
    for (k, village) in villages.iter().enumerate() {
        let km = Amount::new(80 + 5 * k as i64, 2);
        tablet.record(village, "2026", &[("road_km".into(), raw(km))], now_ms())?;
    }
    let mut remote = Grpc::connect(&demo.url, &token).await?;
    sync::sync(&tablet, &mut remote, &Retry::default(), &mut |_| {}).await?;
    let year = Period::Year(2026);
    let reports = Reports::Area { area: id.into(), period: year, only: None };
    commune
        .decide(&Decision {
            verdict: Verdict::Approve,
            reason: String::new(),
            reports: reports.clone(),
        })
        .await?;
    district.decide(&Decision { verdict: Verdict::Accept, reason: String::new(), reports }).await?;
    log(&format!(
        "{} villages of {name} reported 2026; the commune approved, the province accepted",
        villages.len()
    ));

    let road = |rows: &[fieldsync_export::Row]| {
        rows.iter().find(|r| r.unit_id == id).map(|r| r.done.clone()).unwrap_or_default()
    };
    let y2026 = export(&office, &today, Level::Commune, "2026", Some(id), None, "road_km").await?;
    let restated =
        export(&office, &today, Level::Commune, "2022", Some(id), Some("2026-01-01"), "road_km")
            .await?;
    let new_commune_road_km = (road(&y2026), road(&restated));
    // Restated is exactly the old communes' 2022 reports summed.
    let mut old = Amount::new(0, 2);
    for commune in MERGED {
        let rows = export(
            &office,
            &demo.catalogue,
            Level::Commune,
            "2022",
            Some(commune),
            None,
            "road_km",
        )
        .await?;
        for row in rows {
            old = old.checked_add(Amount::parse(&row.done, 2)?).context("a sum overflows")?;
        }
    }
    ensure!(
        Amount::parse(&new_commune_road_km.1, 2)? == old,
        "2022 restated under {name} is {}, its old communes' reports sum to {old}",
        new_commune_road_km.1
    );
    writeln!(
        report,
        "\n{name} (từ {date}: {}):",
        MERGED
            .iter()
            .filter_map(|c| demo.catalogue.org_unit(c))
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    for (label, rows) in [("2026", &y2026), ("2022, tính lại theo xã mới", &restated)] {
        if let Some(row) = rows.iter().find(|r| r.unit_id == id) {
            writeln!(report, "  {label}: {}", fieldsync_export::report_line(row, true))?;
        }
    }
    let villages = demo.villages.len();
    drop(demo);
    server.stop().await?;
    Ok(Summary {
        villages,
        mutations,
        conflicts_settled: settled,
        province,
        land_by_district,
        new_commune_road_km,
        report,
    })
}

/// The rows of one indicator of an export, as the province office reads it.
async fn export(
    office: &Api,
    catalogue: &Catalogue,
    level: Level,
    period: &str,
    area: Option<&str>,
    tree_date: Option<&str>,
    indicator: &str,
) -> anyhow::Result<Vec<fieldsync_export::Row>> {
    let query = Query {
        level,
        period: period.into(),
        area: area.map(Into::into),
        include_pending: false,
        tree_date: tree_date.map(Into::into),
    };
    let mut rows = Vec::new();
    office
        .export_each(catalogue, &query, |row| {
            if row.indicator == indicator {
                rows.push(row);
            }
            Ok(())
        })
        .await?;
    Ok(rows)
}
