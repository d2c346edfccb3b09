//! The web pages in a real headless browser (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): a supervisor signs in,
//! approves what a tablet pushed and settles a conflict, and the tablets
//! learn it on their next sync; the progress page agrees with the export;
//! areas and CSRF tokens hold; signing out works.
//!
//! The tests share nothing but take turns (one browser at a time). Without
//! chromium and chromedriver they fail and say how to install them.
//! `cargo test -p fieldsync-tests --test browser -- --ignored web::screenshots`
//! regenerates `docs/screenshots/`.

use crate::util;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use fieldsync::access::Role;
use fieldsync::review::{ReviewState, Verdict};
use fieldsync::rollup::vietnamese;
use fieldsync::{demo, Amount, Level, Period};
use fieldsync_client::export::{self, Query};
use fieldsync_client::Grpc;
use fieldsync_server::db::{now_ms, PlanRow};
use util::browser::{click, wait_text, Browser, PATIENCE, TURN};
use util::{start_web_server, TestServer, PERIOD, VILLAGE};

/// Runs `scenario` in a fresh headless chromium, then closes the browser and
/// stops chromedriver whether or not the scenario passed.
async fn in_browser<F, Fut, T>(scenario: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    in_window(None, scenario).await
}

/// [`in_browser`] on a phone's screen of `size` (width, height).
async fn in_phone<F, Fut, T>(size: (u32, u32), scenario: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    in_window(Some(size), scenario).await
}

/// [`in_browser`] in a desktop window, or on an emulated phone of `phone`.
async fn in_window<F, Fut, T>(phone: Option<(u32, u32)>, scenario: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let _turn = TURN.lock().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = match phone {
        Some(size) => Browser::open_phone(profile.path(), size).await,
        None => Browser::open(profile.path(), (1280, 1000)).await,
    };
    let client = browser.client.clone();
    let outcome = tokio::spawn(scenario(client.clone())).await;
    browser.close().await;
    match outcome {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Waits until the browser is at a URL whose path and query is `path`.
async fn wait_path(client: &Client, path: &str) {
    let start = Instant::now();
    loop {
        let url = client.current_url().await.expect("current url");
        let here = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if here == path {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "expected to be at {path}, still at {here}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(client: &Client, web: &str, token: &str) {
    client.goto(&format!("{web}/signin")).await.unwrap();
    let field = client.wait().at_most(PATIENCE).for_element(Locator::Id("token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    click(client, "#signin").await;
    wait_path(client, "/queue").await;
}

fn state_of(server: &TestServer, village: &str) -> ReviewState {
    let period = PERIOD.parse::<Period>().unwrap();
    server.store.submission(village, period).unwrap().expect("a report").review.state
}

#[tokio::test]
async fn a_supervisor_approves_in_the_browser_and_the_tablet_learns_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let tablet = server.tablet("Nguyễn Văn An").await;
    tablet.record(&[("road_km", "1.25"), ("drainage_km", "0.4")]);
    tablet.sync(&server.url).await;
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url().to_owned();
    in_browser(move |client| async move {
        sign_in(&client, &web, &token).await;
        wait_text(&client, "#who", |t| t.contains("Trần Văn Giám")).await;
        wait_text(&client, "[data-count=submitted]", |t| t == "1").await;
        click(&client, &format!("tr[data-village=\"{VILLAGE}\"] a")).await;
        wait_text(&client, "#state", |t| t == "Chờ duyệt").await;
        wait_text(&client, "tr[data-field=road_km] .value", |t| t == "1,25").await;
        wait_text(&client, "#history", |t| t.contains("Nguyễn Văn An") && t.contains("1,25")).await;
        click(&client, "#approve").await;
        wait_text(&client, "#state", |t| t == "Xã đã duyệt").await;
    })
    .await;
    assert_eq!(state_of(&server, VILLAGE), ReviewState::Approved);
    tablet.sync(&server.url).await;
    let reviews = tablet.tablet.reviews().unwrap();
    let review =
        reviews.iter().find(|r| r.village_id == VILLAGE).expect("the tablet has the decision");
    assert_eq!(review.state, ReviewState::Approved);
    assert_eq!(review.user_id, "giam.tran");
    server.stop().await;
}

#[tokio::test]
async fn a_conflict_settled_in_the_browser_reaches_both_tablets() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;
    a.record(&[("village_cultural_house", "1")]);
    b.record(&[("village_cultural_house", "2")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    a.sync(&server.url).await;
    assert!(a.tablet.conflicts().unwrap().iter().any(|c| c.open), "the tablets disagree");
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url().to_owned();
    in_browser(move |client| async move {
        sign_in(&client, &web, &token).await;
        click(&client, "nav a[href='/conflicts']").await;
        let row = format!("tr[data-conflict=\"{VILLAGE}/{PERIOD}/village_cultural_house\"]");
        wait_text(&client, &row, |t| t.contains("Nguyễn Văn An") && t.contains("Trần Thị Bình"))
            .await;
        click(&client, &format!("{row} a")).await;
        wait_text(&client, "#candidates", |t| t.contains("Nguyễn Văn An")).await;
        // Side by side: each competing value with its author.
        let cells = client.find_all(Locator::Css("td[data-candidate]")).await.unwrap();
        let mut values = Vec::new();
        for c in &cells {
            values.push(c.text().await.unwrap());
        }
        values.sort();
        assert_eq!(values, ["1", "2"]);
        let mut two = None;
        for c in &cells {
            if c.text().await.unwrap() == "2" {
                two = c.attr("data-candidate").await.unwrap();
            }
        }
        click(&client, &format!("#pick-{}", two.expect("the value 2"))).await;
        client.find(Locator::Id("comment")).await.unwrap().send_keys("hai nhà").await.unwrap();
        click(&client, "#resolve").await;
        wait_text(&client, "#notice", |t| !t.is_empty()).await;
        wait_text(&client, "#no-conflicts", |t| !t.is_empty()).await;
    })
    .await;
    for tablet in [&a, &b] {
        tablet.sync(&server.url).await;
        assert_eq!(tablet.shows("village_cultural_house").as_deref(), Some("2"));
        assert!(tablet.tablet.conflicts().unwrap().iter().all(|c| !c.open), "settled everywhere");
    }
    server.stop().await;
}

/// The text of the entry box `id`, as the browser holds it.
async fn typed(client: &Client, id: &str) -> String {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.prop("value").await.unwrap().unwrap_or_default()
}

/// Types `text` into the conflict's entry box (after clearing it) and
/// sends the settlement.
async fn settle_with(client: &Client, text: &str) {
    let field = client.find(Locator::Id("value")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
    click(client, "#resolve").await;
}

#[tokio::test]
async fn refusals_are_vietnamese_with_a_link_and_keep_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;
    a.record(&[("road_km", "1.25"), ("road_cement_km", "0.5")]);
    b.record(&[("road_km", "1.5")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    let token =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url().to_owned();
    let conflict = format!("/conflicts/{VILLAGE}/{PERIOD}/road_km");
    in_browser(move |client| async move {
        sign_in(&client, &web, &token).await;
        // Approving is not offered while the conflict is open: the page says
        // why and links to it.
        client.goto(&format!("{web}/submissions/{VILLAGE}/{PERIOD}")).await.unwrap();
        let blocked = wait_text(&client, "#blocked", |t| t.contains("Chưa thể duyệt")).await;
        assert!(blocked.contains("1 xung đột"), "{blocked}");
        assert!(client.find(Locator::Id("approve")).await.is_err(), "no Approve button");
        click(&client, &format!("#blocked a[href='{conflict}']")).await;
        wait_text(&client, "#candidates", |t| t.contains("Trần Thị Bình")).await;

        // Nothing chosen.
        click(&client, "#resolve").await;
        wait_text(&client, "#refused", |t| t.contains("Hãy chọn giữ một")).await;
        // A value kept and one typed at once: refused, both kept on the page.
        click(&client, "#pick-0").await;
        settle_with(&client, "1,75").await;
        wait_text(&client, "#refused", |t| t.contains("vừa chọn giữ một giá trị")).await;
        assert_eq!(typed(&client, "value").await, "1,75");
        let pick = client.find(Locator::Id("pick-0")).await.unwrap();
        assert!(pick.prop("checked").await.unwrap().as_deref() == Some("true"));
        client.execute("document.getElementById('pick-0').checked = false", vec![]).await.unwrap();
        // Read two ways: refused in Vietnamese, what was typed kept.
        settle_with(&client, "1.234,5").await;
        let refused =
            wait_text(&client, "#refused", |t| t.contains("dấu phân cách hàng nghìn")).await;
        assert!(refused.contains("«1.234,5»") && refused.contains("Đường giao thông"), "{refused}");
        assert_eq!(typed(&client, "value").await, "1.234,5");
        // Below its part road_cement_km = 0.5: said with the part's name.
        settle_with(&client, "0,25").await;
        let refused = wait_text(&client, "#refused", |t| t.contains("nhỏ hơn phần")).await;
        assert!(refused.contains("0,5 km"), "{refused}");
        // A comma decimal, as the page shows numbers, is accepted.
        settle_with(&client, "1,75").await;
        wait_text(&client, "#notice", |t| t.contains("Đã giải quyết xung đột")).await;
        click(&client, &format!("#notice a[href='{conflict}']")).await;
        let settled = wait_text(&client, "#settled", |t| t.contains("1,75")).await;
        assert!(!settled.contains('“') && !settled.ends_with(':'), "no empty quotes: {settled}");
        assert!(client.find(Locator::Css("#settled q")).await.is_err());

        // Now it can be approved, and the page confirms it.
        client.goto(&format!("{web}/submissions/{VILLAGE}/{PERIOD}")).await.unwrap();
        click(&client, "#approve").await;
        wait_text(&client, "#notice", |t| t == "Đã duyệt báo cáo.").await;
        wait_text(&client, "#state", |t| t == "Xã đã duyệt").await;
        // The history in Vietnamese too: the states by name, the conflict in words.
        let history =
            wait_text(&client, "#history", |t| t.contains("Chờ duyệt → Xã đã duyệt")).await;
        assert!(history.contains("cũng được sửa trên máy khác"), "{history}");
        assert!(
            !history.contains("submitted →") && !history.contains("another device"),
            "{history}"
        );

        // A bad period and a page that is not there, in Vietnamese.
        client.goto(&format!("{web}/queue?period=2022-13")).await.unwrap();
        wait_text(&client, "#problem", |t| t.contains("không phải là kỳ báo cáo")).await;
        client.goto(&format!("{web}/conflicts/{VILLAGE}/{PERIOD}/drainage_km")).await.unwrap();
        wait_text(&client, "h1", |t| t.contains("Không tìm thấy") && t.contains("404")).await;
        wait_text(&client, "#problem", |t| t.contains("Không tìm thấy mục này")).await;
    })
    .await;
    assert_eq!(state_of(&server, VILLAGE), ReviewState::Approved);
    let period = PERIOD.parse::<Period>().unwrap();
    let fields = server.store.fields_of(VILLAGE, period).unwrap();
    let road = fields.iter().find(|f| f.at.field.as_str() == "road_km").unwrap();
    assert_eq!(road.value, fieldsync::Value::Amount("1.75".parse().unwrap()));
    server.stop().await;
}

/// Two reports of Phúc Đồng and one of another commune, approved, with
/// plan figures; returns a province officer's token.
async fn with_totals(server: &TestServer) -> String {
    let tablet = server.tablet("Nguyễn Văn An").await;
    let second = VILLAGE.replace("thon-1", "thon-2");
    let catalogue = server.store.catalogue();
    assert!(catalogue.org_unit(&second).is_some(), "{second} is in the demo tree");
    tablet.record_at(VILLAGE, PERIOD, &[("road_km", "1.25"), ("road_cement_km", "1")]);
    tablet.record_at(&second, PERIOD, &[("road_km", "2.5"), ("road_cement_km", "0.75")]);
    tablet.sync(&server.url).await;
    let admin = server.store.user("admin").unwrap().unwrap();
    let plans = [
        (demo::SAMPLE_COMMUNE, "road_cement_km", "2"),
        ("ha-tinh.huong-khe", "road_cement_km", "4.5"),
    ];
    let rows: Vec<PlanRow> = plans
        .iter()
        .map(|(unit, indicator, value)| PlanRow {
            unit: (*unit).into(),
            indicator: (*indicator).into(),
            period: PERIOD.into(),
            value: (*value).into(),
        })
        .collect();
    server.store.set_plans(&admin, &rows, now_ms()).unwrap();
    server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let commune = server.store.user("giam.tran").unwrap().unwrap();
    let period: Period = PERIOD.parse().unwrap();
    server
        .store
        .decide(
            &commune,
            &[(VILLAGE.to_owned(), period), (second, period)],
            Verdict::Approve,
            "",
            now_ms(),
        )
        .unwrap();
    server.user("tinh.ho", "Hồ Văn Tỉnh", Role::Province, &[demo::PROVINCE])
}

#[tokio::test]
async fn the_progress_page_shows_the_totals_of_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let token = with_totals(&server).await;
    // What the export (the `fieldsync export` command's code) says.
    let grpc = Grpc::connect(&server.url, &token).await.unwrap();
    let catalogue = server.store.catalogue();
    let query = Query {
        level: Level::Commune,
        period: PERIOD.into(),
        area: Some("ha-tinh.huong-khe".into()),
        include_pending: false,
        tree_date: None,
    };
    let mut exported = Vec::new();
    export::fetch(&grpc, &catalogue, &query, |row| {
        exported.push(row);
        Ok(())
    })
    .await
    .unwrap();
    let cement = exported
        .iter()
        .find(|r| r.unit_id == demo::SAMPLE_COMMUNE && r.indicator == "road_cement_km")
        .unwrap()
        .clone();
    assert_eq!(
        (cement.done.as_str(), cement.plan.as_str(), cement.percent.as_str()),
        ("1.75", "2", "87.5")
    );
    let web = server.web_url().to_owned();
    let indicators = catalogue.indicators.len();
    let shown = in_browser(move |client| async move {
        sign_in(&client, &web, &token).await;
        click(&client, "nav a[href='/progress']").await;
        wait_text(&client, "#crumbs", |t| t.contains("Hà Tĩnh")).await;
        // The year of the report, in the page's own form.
        let period = client.find(Locator::Css("input[name=period]")).await.unwrap();
        period.clear().await.unwrap();
        period.send_keys(PERIOD).await.unwrap();
        click(&client, ".filter button").await;
        wait_text(&client, "h1", |t| t.contains(PERIOD)).await;
        // First a short summary of every indicator; one is picked to see it unit by unit.
        let rows = client.find_all(Locator::Css("#summary tbody tr")).await.unwrap();
        assert_eq!(rows.len(), indicators, "one line per indicator");
        let tall = client.execute("return document.documentElement.scrollHeight", vec![]).await;
        assert!(tall.unwrap().as_f64().unwrap() < 2_000.0, "the summary is short");
        click(&client, "#summary a[data-indicator=road_cement_km]").await;
        wait_text(&client, "#legend", |t| t.contains("kế hoạch")).await;
        // Province → district → its communes.
        let district = "section[data-indicator=road_cement_km] tr[data-unit='ha-tinh.huong-khe'] a";
        click(&client, district).await;
        let base = "section[data-indicator=road_cement_km]";
        let total =
            wait_text(&client, &format!("{base} [data-total]"), |t| t.contains("4,5")).await;
        assert_eq!(total, "1,75/4,5 km — 38,9%", "the district's line reads as the report's");
        let row = format!("{base} tr[data-unit='{}']", demo::SAMPLE_COMMUNE);
        let done = wait_text(&client, &format!("{row} .done"), |t| !t.is_empty()).await;
        let plan =
            client.find(Locator::Css(&format!("{row} .plan"))).await.unwrap().text().await.unwrap();
        let pct =
            client.find(Locator::Css(&format!("{row} .pct"))).await.unwrap().text().await.unwrap();
        assert!(
            client.find(Locator::Css(&format!("{base} svg.bars"))).await.is_ok(),
            "bars are drawn"
        );
        // The download of what is on screen, with this browser's session.
        let href =
            client.find(Locator::Id("csv")).await.unwrap().attr("href").await.unwrap().unwrap();
        let session = client.get_named_cookie("fs_session").await.unwrap();
        let csv = util::http::get(&web, &href, &format!("fs_session={}", session.value())).await;
        // The same rows for people: Vietnamese headers and levels.
        let people_href =
            client.find(Locator::Id("csv-people")).await.unwrap().attr("href").await.unwrap();
        let people = util::http::get(
            &web,
            &people_href.unwrap(),
            &format!("fs_session={}", session.value()),
        )
        .await;
        let people = people.text();
        assert!(people.starts_with("\u{feff}Cấp;Mã đơn vị;Tên đơn vị;"), "{people}");
        assert_eq!(people.lines().count(), csv.text().lines().count(), "the same rows");
        assert!(people.contains(&format!("Xã;{};", demo::SAMPLE_COMMUNE)), "{people}");
        let xlsx_href =
            client.find(Locator::Id("xlsx")).await.unwrap().attr("href").await.unwrap().unwrap();
        let xlsx =
            util::http::get(&web, &xlsx_href, &format!("fs_session={}", session.value())).await;
        assert_eq!(xlsx.status, 200);
        assert!(xlsx.body.starts_with(b"PK"), "an XLSX file is a zip");
        // Named as the province files it: what, where, when, which level.
        let named = xlsx.header("content-disposition").unwrap_or_default().to_owned();
        assert!(
            named.contains(&format!("\"tien-do-huyen-huong-khe-{PERIOD}-xa.xlsx\"")),
            "{named}"
        );
        let named = csv.header("content-disposition").unwrap_or_default().to_owned();
        assert!(named.contains(&format!("\"tien-do-huyen-huong-khe-{PERIOD}-xa.csv\"")), "{named}");
        (done, plan, pct, csv)
    })
    .await;
    let (done, plan, pct, csv) = shown;
    let vi = |t: &str| vietnamese(t.parse::<Amount>().unwrap());
    assert_eq!((done, plan), (vi(&cement.done), vi(&cement.plan)));
    assert_eq!(pct, cement.percent.replace('.', ","));
    // Every row of the page's CSV is the export's row.
    assert_eq!(csv.status, 200);
    let text = csv.text();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), exported.len());
    for (r, e) in rows.iter().zip(&exported) {
        assert_eq!(
            (
                &r[col("unit_id")],
                &r[col("indicator")],
                &r[col("done")],
                &r[col("plan")],
                &r[col("percent")]
            ),
            (
                e.unit_id.as_str(),
                e.indicator.as_str(),
                e.done.as_str(),
                e.plan.as_str(),
                e.percent.as_str()
            )
        );
    }
    server.stop().await;
}

/// How far the page at the browser's URL reaches past a phone `width` CSS
/// pixels wide (0 or less: it fits). A page wider than the phone either
/// scrolls sideways or makes the phone zoom out (a wider viewport).
async fn past(client: &Client, width: f64) -> f64 {
    let reach = client
        .execute("return Math.max(document.documentElement.scrollWidth, window.innerWidth)", vec![])
        .await
        .unwrap();
    reach.as_f64().unwrap() - width
}

#[tokio::test]
async fn the_pages_fit_a_phone_without_sideways_scrolling() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let token = with_totals(&server).await;
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;
    a.record_at(VILLAGE, "2023", &[("road_km", "1.25"), ("village_cultural_house", "1")]);
    b.record_at(VILLAGE, "2023", &[("road_km", "1.5")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    let web = server.web_url().to_owned();
    let pages = [
        format!("/queue?period={PERIOD}"),
        "/queue?period=2023".to_owned(),
        format!("/submissions/{VILLAGE}/2023"),
        "/conflicts?period=2023".to_owned(),
        format!("/conflicts/{VILLAGE}/2023/road_km"),
        format!("/progress?period={PERIOD}"),
        format!("/progress?period={PERIOD}&area=ha-tinh.huong-khe"),
        format!("/progress?period={PERIOD}&area=ha-tinh.huong-khe&indicator=road_km"),
        format!("/progress/report?period={PERIOD}&area=ha-tinh.huong-khe&level=commune"),
        "/devices".to_owned(),
    ];
    let reached = in_phone((390, 844), move |client| async move {
        sign_in(&client, &web, &token).await;
        let mut reached = Vec::new();
        for page in pages {
            client.goto(&format!("{web}{page}")).await.unwrap();
            wait_text(&client, "h1", |t| !t.is_empty()).await;
            reached.push((page.clone(), past(&client, 390.0).await));
            // No figure of a chart runs past its edge ("89,0%" keeps its "%").
            let clipped = client
                .execute(
                    "return [...document.querySelectorAll('svg.bars')].flatMap(svg => \
                     [...svg.querySelectorAll('text')].filter(t => { const b = t.getBBox(); \
                     return b.x + b.width > svg.viewBox.baseVal.width + 0.5; }) \
                     .map(t => t.textContent))",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(clipped, serde_json::json!([]), "{page}: labels cut off at the edge");
        }
        reached
    })
    .await;
    for (page, past) in &reached {
        assert!(*past <= 0.0, "{page} reaches {past} px past a 390-px phone: {reached:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn other_districts_and_forged_forms_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let catalogue = server.store.catalogue();
    let elsewhere = catalogue
        .units_at(Level::Village, Some(demo::PROVINCE))
        .into_iter()
        .find(|v| !v.id.starts_with("ha-tinh.huong-khe."))
        .map(|v| v.id.clone())
        .unwrap();
    let tablet = server.tablet("Lê Văn Cường").await;
    tablet.record_at(&elsewhere, PERIOD, &[("road_km", "2")]);
    tablet.record(&[("road_km", "1.25")]);
    tablet.sync(&server.url).await;
    let surveyor =
        server.user("an.nguyen", "Nguyễn Văn An", Role::Surveyor, &["ha-tinh.huong-khe"]);
    let supervisor =
        server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
    let web = server.web_url().to_owned();
    let other = elsewhere.clone();
    in_browser(move |client| async move {
        sign_in(&client, &web, &surveyor).await;
        client.goto(&format!("{web}/submissions/{other}/{PERIOD}")).await.unwrap();
        wait_text(&client, "h1", |t| t.contains("403") && t.contains("Không có quyền")).await;
        // In Vietnamese, with the store's English folded away for support.
        wait_text(&client, "#problem", |t| t.contains("không có quyền")).await;
        let detail = client.find(Locator::Css(".problem details")).await.unwrap();
        assert!(detail.html(false).await.unwrap().contains("an.nguyen"));
        click(&client, "#signout").await;
        wait_path(&client, "/signin").await;

        // A form posted without the session's CSRF token, as a forger would.
        sign_in(&client, &web, &supervisor).await;
        client.goto(&format!("{web}/submissions/{VILLAGE}/{PERIOD}")).await.unwrap();
        wait_text(&client, "#state", |t| t == "Chờ duyệt").await;
        let forge = format!(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/submissions/{VILLAGE}/{PERIOD}/decide'; \
             const v = document.createElement('input'); v.name = 'verdict'; v.value = 'approve'; \
             f.appendChild(v); document.body.appendChild(f); f.submit();"
        );
        client.execute(&forge, vec![]).await.unwrap();
        wait_text(&client, "h1", |t| t.contains("403")).await;
    })
    .await;
    assert_eq!(
        state_of(&server, VILLAGE),
        ReviewState::Submitted,
        "the forged post changed nothing"
    );
    assert_eq!(state_of(&server, &elsewhere), ReviewState::Submitted);
    server.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let token = server.user("tinh.ho", "Hồ Văn Tỉnh", Role::Province, &[demo::PROVINCE]);
    let web = server.web_url().to_owned();
    in_browser(move |client| async move {
        sign_in(&client, &web, &token).await;
        wait_text(&client, "#who", |t| t.contains("Hồ Văn Tỉnh")).await;
        click(&client, "#signout").await;
        wait_path(&client, "/signin").await;
        client.goto(&format!("{web}/progress")).await.unwrap();
        wait_path(&client, "/signin").await;
        assert!(client.find(Locator::Id("who")).await.is_err(), "nobody is signed in");
    })
    .await;
    server.stop().await;
}

/// Regenerates the pictures in `docs/screenshots/` from a small Phúc Đồng
/// data set: `cargo test -p fieldsync-tests --test browser -- --ignored web::screenshots`.
#[tokio::test]
#[ignore = "writes docs/screenshots/; run on purpose"]
async fn screenshots() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_web_server(dir.path()).await;
    let province = with_totals(&server).await;
    let catalogue = server.store.catalogue();
    let villages: Vec<String> = catalogue
        .units_at(Level::Village, Some(demo::SAMPLE_COMMUNE))
        .iter()
        .map(|v| v.id.clone())
        .collect();
    let a = server.tablet("Nguyễn Văn An").await;
    let b = server.tablet("Trần Thị Bình").await;
    for (i, v) in villages.iter().enumerate().skip(2) {
        let road = format!("{}.{}", 1 + i % 3, (i * 7) % 10);
        a.record_at(
            v,
            PERIOD,
            &[("road_km", &road), ("drainage_km", "0.3"), ("village_sports_area", "1")],
        );
    }
    let disputed = villages[2].clone();
    a.record_at(&disputed, PERIOD, &[("village_cultural_house", "1")]);
    b.record_at(&disputed, PERIOD, &[("village_cultural_house", "2")]);
    a.sync(&server.url).await;
    b.sync(&server.url).await;
    let commune = server.store.user("giam.tran").unwrap().unwrap();
    if let Some(v) = villages.get(3) {
        let period: Period = PERIOD.parse().unwrap();
        server
            .store
            .decide(&commune, &[(v.clone(), period)], Verdict::Return, "thiếu vị trí GPS", now_ms())
            .unwrap();
    }
    let supervisor = server.store.issue_token(
        &server.store.user("admin").unwrap().unwrap(),
        "giam.tran",
        0,
        "screenshots",
        now_ms(),
    );
    let supervisor = supervisor.unwrap().0;
    let web = server.web_url().to_owned();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    in_browser(move |client| async move {
        let shot = |name: &'static str| {
            let client = client.clone();
            let path = out.join(name);
            async move {
                let png = client.screenshot().await.unwrap();
                std::fs::write(&path, png).unwrap();
            }
        };
        client.goto(&format!("{web}/signin")).await.unwrap();
        wait_text(&client, "h1", |t| !t.is_empty()).await;
        shot("signin.png").await;
        sign_in(&client, &web, &supervisor).await;
        client.goto(&format!("{web}/queue?period={PERIOD}")).await.unwrap();
        wait_text(&client, "#queue", |t| !t.is_empty()).await;
        shot("queue.png").await;
        client.goto(&format!("{web}/submissions/{disputed}/{PERIOD}")).await.unwrap();
        wait_text(&client, "#state", |t| !t.is_empty()).await;
        shot("submission.png").await;
        client.goto(&format!("{web}/conflicts")).await.unwrap();
        wait_text(&client, "#conflicts", |t| !t.is_empty()).await;
        shot("conflicts.png").await;
        click(&client, "#conflicts a").await;
        wait_text(&client, "#candidates", |t| !t.is_empty()).await;
        shot("conflict.png").await;
        click(&client, "#signout").await;
        sign_in(&client, &web, &province).await;
        client
            .goto(&format!(
                "{web}/progress?period={PERIOD}&area=ha-tinh.huong-khe&level=commune&pending=1&indicator=road_km"
            ))
            .await
            .unwrap();
        wait_text(&client, "[data-total]", |t| !t.is_empty()).await;
        shot("progress.png").await;
    })
    .await;
    drop((a, b));
    server.stop().await;
}
