//! `fieldsync-server demo`: rebuilds the infrastructure table of Hà Tĩnh's
//! 2022 New Rural Development report from simulated field records. A fresh
//! server in a temp dir gets the demo org tree and the 2022 plan figures;
//! one surveyor per district records every village offline on a tablet and
//! syncs; a second surveyor double-records a few villages with a slip, making
//! conflicts that a supervisor settles; communes approve, districts accept;
//! then the province report is read back through the export service.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{ensure, Context};
use fieldsync::access::{Role, User};
use fieldsync::review::Verdict;
use fieldsync::sync::{FieldRef, RawValue};
use fieldsync::{demo, Amount, FieldKey, Level, Period};
use fieldsync_client::export::{self, Query};
use fieldsync_client::sync::{self, Retry};
use fieldsync_client::{init_tablet, Grpc};
use fieldsync_store::Memory;

use crate::db::{now_ms, Choice, PlanRow};
use crate::local::LocalServer;

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

/// What the demo did, and the report it printed.
#[derive(Debug)]
pub struct Summary {
    pub villages: usize,
    pub mutations: usize,
    pub conflicts_settled: usize,
    /// (indicator, done, plan) at province level.
    pub province: Vec<(String, String, String)>,
    pub report: String,
}

/// Splits `total` over `n` villages exactly: the first `total mod n` get one
/// unit more.
fn share(total: Amount, n: usize, i: usize) -> Amount {
    let (q, r) = (total.units() / n as i64, total.units() % n as i64);
    Amount::new(q + i64::from((i as i64) < r), total.scale())
}

/// Runs the demo and returns its summary; `log` hears what happens.
pub async fn run(mut log: impl FnMut(&str)) -> anyhow::Result<Summary> {
    let dir = tempfile::tempdir()?;
    let server = LocalServer::start(dir.path(), "127.0.0.1:0", TOKEN).await?;
    let (url, store) = (server.url.clone(), Arc::clone(&server.store));
    let admin = store.user("admin")?.context("admin")?;
    let catalogue = store.catalogue();
    let period = Period::Year(2022);

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
    log("loaded the Hà Tĩnh org tree and the 2022 plan figures");

    let user = |id: String, name: String, role, areas: Vec<String>| -> anyhow::Result<String> {
        let u = User { id: id.clone(), name, role, areas, disabled: false };
        store.create_user(&admin, u, now_ms())?;
        Ok(store.issue_token(&admin, &id, 0, "demo", now_ms())?.0)
    };
    let districts: Vec<_> =
        catalogue.org_units.values().filter(|u| u.level == Level::District).cloned().collect();
    let communes: Vec<String> = catalogue
        .org_units
        .values()
        .filter(|u| u.level == Level::Commune)
        .map(|u| u.id.clone())
        .collect();
    let villages: Vec<String> = catalogue
        .org_units
        .values()
        .filter(|u| u.level == Level::Village)
        .map(|u| u.id.clone())
        .collect();
    let commune_sup =
        user("xa.giamsat".into(), "Giám sát cấp xã".into(), Role::Supervisor, communes.clone())?;
    let district_sup = user(
        "huyen.giamsat".into(),
        "Giám sát cấp huyện".into(),
        Role::Supervisor,
        districts.iter().map(|d| d.id.clone()).collect(),
    )?;

    // What each village records: the report's totals, split exactly.
    let value = |code: &str, i: usize| -> anyhow::Result<Amount> {
        let (_, total) = REPORT_2022.iter().find(|(c, _)| *c == code).context("indicator")?;
        let scale = catalogue.indicator(code).context("indicator")?.kind.scale();
        Ok(share(Amount::parse(total, scale)?, villages.len(), i))
    };

    let mut mutations = 0;
    let mut slips = Vec::new();
    for (d, district) in districts.iter().enumerate() {
        let token = user(
            format!("surveyor.{}", district.id.rsplit('.').next().unwrap_or("x")),
            format!("Cán bộ khảo sát {}", district.name),
            Role::Surveyor,
            vec![district.id.clone()],
        )?;
        let tablet = init_tablet(Arc::new(Memory::new()), &url, &token).await?;
        // Offline: every village of the district, every indicator.
        for (i, village) in
            villages.iter().enumerate().filter(|(_, v)| catalogue.within(v, &district.id))
        {
            let edits: Vec<(String, RawValue)> = REPORT_2022
                .iter()
                .map(|(code, _)| {
                    Ok(((*code).to_owned(), RawValue::Amount(value(code, i)?.to_string())))
                })
                .collect::<anyhow::Result<_>>()?;
            mutations += tablet.record(village, "2022", &edits, now_ms())?.len();
        }
        // A second tablet double-records the first village of some districts
        // with a slip in its cultural-house count.
        if d % 4 == 0 {
            let (i, village) = villages
                .iter()
                .enumerate()
                .find(|(_, v)| catalogue.within(v, &district.id))
                .context("a village")?;
            let token2 = user(
                format!("surveyor2.{}", district.id.rsplit('.').next().unwrap_or("x")),
                format!("Cán bộ khảo sát 2 {}", district.name),
                Role::Surveyor,
                vec![district.id.clone()],
            )?;
            let second = init_tablet(Arc::new(Memory::new()), &url, &token2).await?;
            let wrong = value("village_cultural_house", i)?.units() + 1;
            second.record(
                village,
                "2022",
                &[("village_cultural_house".into(), RawValue::Amount(wrong.to_string()))],
                now_ms(),
            )?;
            mutations += 1;
            let mut remote = Grpc::connect(&url, &token2).await?;
            sync::sync(&second, &mut remote, &Retry::default(), &mut |_| {}).await?;
            slips.push((village.clone(), value("village_cultural_house", i)?));
        }
        let mut remote = Grpc::connect(&url, &token).await?;
        sync::sync(&tablet, &mut remote, &Retry::default(), &mut |_| {}).await?;
    }
    log(&format!(
        "{} surveyors recorded {} villages offline and synced ({mutations} values)",
        districts.len(),
        villages.len()
    ));

    // Supervisors settle the conflicts by picking the value checked on site.
    let sup = store.authenticate(&commune_sup, now_ms())?;
    let mut settled = 0;
    for (village, right) in &slips {
        let at = FieldRef::new(village, period, FieldKey::parse("village_cultural_house"));
        let conflict =
            store.conflict(at.submission, &at.field)?.context("the slip made a conflict")?;
        let pick = conflict
            .candidates
            .iter()
            .position(|k| k.value == fieldsync::Value::Amount(*right))
            .context("the right value is a candidate")?;
        store.resolve(&sup, &at, Choice::Pick(pick), "đã kiểm tra tại thực địa", now_ms())?;
        settled += 1;
    }
    log(&format!("supervisors settled {settled} conflicting reports"));

    // Communes approve, districts accept: through the review service.
    let decide = |token: String, verdict: Verdict, area: String| {
        let url = url.clone();
        async move {
            let grpc = Grpc::connect(&url, &token).await?;
            let request = fieldsync_proto::v1::DecideRequest {
                verdict: fieldsync_proto::convert::verdict_to_wire(verdict) as i32,
                area,
                period: "2022".into(),
                ..Default::default()
            };
            anyhow::Ok(grpc.review().decide(request).await?.into_inner().changed.len())
        }
    };
    let mut approved = 0;
    for commune in &communes {
        approved += decide(commune_sup.clone(), Verdict::Approve, commune.clone()).await?;
    }
    let mut accepted = 0;
    for district in &districts {
        accepted += decide(district_sup.clone(), Verdict::Accept, district.id.clone()).await?;
    }
    log(&format!("communes approved {approved} reports; districts accepted {accepted}"));
    let mismatches = store.check_rollups()?;
    ensure!(mismatches.is_empty(), "kept totals differ from a recomputation: {mismatches:?}");

    // The province report, read back as the province office would.
    let grpc = Grpc::connect(&url, TOKEN).await?;
    let query =
        Query { level: Level::Province, period: "2022".into(), area: None, include_pending: false };
    let mut rows = Vec::new();
    export::fetch(&grpc, &catalogue, &query, |row| {
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
    let province =
        rows.iter().map(|r| (r.indicator.clone(), r.done.clone(), r.plan.clone())).collect();
    drop(store);
    server.stop().await?;
    Ok(Summary {
        villages: villages.len(),
        mutations,
        conflicts_settled: settled,
        province,
        report,
    })
}
