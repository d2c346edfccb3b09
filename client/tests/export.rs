//! End-to-end tests of `fieldsync export` and `fieldsync plan`, run through
//! the binary against an in-process server: tablets record and sync, a
//! commune supervisor approves, the province office imports plans and
//! exports. Assertions are on what users see: exit codes, stdout, stderr, and
//! the files written (read back with the csv crate and calamine).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{open_workbook, Data, Reader, Xlsx};
use fieldsync::access::Role;
use fieldsync_server::local::LocalServer;
use tempfile::TempDir;

const PROVINCE: &str = "ha-tinh";
const DISTRICT: &str = "ha-tinh.huong-khe";
const COMMUNE: &str = "ha-tinh.huong-khe.phuc-dong";
const THON_1: &str = "ha-tinh.huong-khe.phuc-dong.thon-1";
const THON_2: &str = "ha-tinh.huong-khe.phuc-dong.thon-2";
const THON_3: &str = "ha-tinh.huong-khe.phuc-dong.thon-3";
/// A village of another district.
const GIA_HANH_1: &str = "ha-tinh.can-loc.gia-hanh.thon-1";
const ROAD: &str = "Đường giao thông nông thôn xây dựng, nâng cấp";
const ROAD_CEMENT: &str = "Trong đó: theo cơ chế hỗ trợ xi măng";
const HOUSE: &str = "Nhà văn hóa thôn";

/// The token of the `admin` user every test server starts with.
const ADMIN_TOKEN: &str = "export-test-admin-token-0123456789";

/// An in-process server.
struct Server(LocalServer);

impl Server {
    async fn start(dir: &Path) -> Server {
        Server(LocalServer::start(dir, "127.0.0.1:0", ADMIN_TOKEN).await.expect("start server"))
    }

    fn url(&self) -> String {
        self.0.url.clone()
    }

    /// Creates a user straight in the store and returns a token for it.
    fn user(&self, id: &str, name: &str, role: Role, areas: &[&str]) -> String {
        self.0.user(id, name, role, areas).expect("create user")
    }

    async fn stop(self) {
        self.0.stop().await.expect("server ran cleanly");
    }
}

/// What one run of the binary showed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A working directory for tablet homes and exported files, and the server.
struct Desk {
    dir: TempDir,
    url: String,
}

impl Desk {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `fieldsync ARGS..` in this directory, off the runtime's workers
    /// so that the in-process server keeps serving.
    async fn run(&self, args: &[&str]) -> Run {
        let cwd = self.dir.path().to_owned();
        let argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
                .args(&argv)
                .current_dir(&cwd)
                .env_remove("FIELDSYNC_HOME")
                .env_remove("FIELDSYNC_SERVER")
                .env_remove("FIELDSYNC_TOKEN")
                .env_remove("RUST_LOG")
                .output()
                .expect("run fieldsync");
            Run {
                code: out.status.code(),
                stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
                stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
            }
        })
        .await
        .expect("run task")
    }

    /// Runs an online command as the holder of `token`.
    async fn run_as(&self, token: &str, args: &[&str]) -> Run {
        let mut argv = args.to_vec();
        argv.extend(["--server", &self.url, "--token", token, "--home", "office"]);
        self.run(&argv).await
    }

    /// [`Desk::run_as`] that must succeed; returns stdout.
    async fn ok_as(&self, token: &str, args: &[&str]) -> String {
        let run = self.run_as(token, args).await;
        assert_eq!(run.code, Some(0), "`fieldsync {}` failed: {run:?}", args.join(" "));
        run.stdout
    }

    /// [`Desk::run_as`] that must fail with one plain `error:`; returns stderr.
    async fn fails_as(&self, token: &str, args: &[&str]) -> String {
        failed(args, self.run_as(token, args).await)
    }

    /// A tablet command (`--home HOME`) that must succeed; returns stdout.
    async fn tablet(&self, home: &str, args: &[&str]) -> String {
        let mut argv = vec!["--home", home];
        argv.extend(args);
        let run = self.run(&argv).await;
        assert_eq!(run.code, Some(0), "`fieldsync {}` failed: {run:?}", argv.join(" "));
        run.stdout
    }
}

fn failed(args: &[&str], run: Run) -> String {
    assert_eq!(run.code, Some(1), "`fieldsync {}` should fail: {run:?}", args.join(" "));
    assert!(run.stderr.starts_with("error: "), "one plain `error:` message: {run:?}");
    assert!(run.stdout.is_empty(), "nothing on stdout after a failure: {run:?}");
    run.stderr
}

/// CSV text as records keyed by the header's column names.
fn records(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("a header row").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

/// The record of `unit` and `indicator`.
fn record<'a>(
    rows: &'a [HashMap<String, String>],
    unit: &str,
    indicator: &str,
) -> &'a HashMap<String, String> {
    let found: Vec<_> =
        rows.iter().filter(|r| r["unit_id"] == unit && r["indicator"] == indicator).collect();
    assert_eq!(found.len(), 1, "one row for {unit} × {indicator}");
    found[0]
}

/// The tokens of the people of a test.
struct People {
    /// Surveyor of Xã Phúc Đồng.
    an: String,
    /// Supervisor of Xã Phúc Đồng.
    giam: String,
    /// Supervisor of Huyện Hương Khê.
    huyen: String,
    /// Surveyor of Huyện Hương Khê.
    son: String,
    /// Surveyor of Huyện Can Lộc.
    loc: String,
    /// The province office.
    tinh: String,
}

/// A server where two villages of Phúc Đồng reported 0.1 and 0.2 km of road
/// (approved by the commune), a third 0.05 km (submitted, not yet approved),
/// and a village of Can Lộc 5 km (submitted).
async fn reported(data: &Path) -> (Server, Desk, People) {
    let server = Server::start(data).await;
    let people = People {
        an: server.user("an.nguyen", "Nguyễn Văn An", Role::Surveyor, &[COMMUNE]),
        giam: server.user("giam.tran", "Trần Văn Giám", Role::Supervisor, &[COMMUNE]),
        huyen: server.user("huyen.le", "Lê Thị Huyền", Role::Supervisor, &[DISTRICT]),
        son: server.user("son.pham", "Phạm Văn Sơn", Role::Surveyor, &[DISTRICT]),
        loc: server.user("loc.vo", "Võ Thị Lộc", Role::Surveyor, &["ha-tinh.can-loc"]),
        tinh: server.user("tinh.ho", "Hồ Văn Tỉnh", Role::Province, &[PROVINCE]),
    };
    let desk = Desk { dir: tempfile::tempdir().expect("tempdir"), url: server.url() };
    let url = desk.url.clone();
    desk.tablet("tablet-a", &["init", "--server", &url, "--token", &people.an]).await;
    desk.tablet("tablet-a", &["record", THON_1, "2022", "road_km=0.1", "village_cultural_house=1"])
        .await;
    desk.tablet("tablet-a", &["record", THON_2, "2022", "road_km=0.2"]).await;
    let out = desk.tablet("tablet-a", &["sync"]).await;
    assert!(out.starts_with("pushed 3 edit(s): 3 applied"), "{out}");
    let out = desk
        .ok_as(&people.giam, &["review", "approve", "--area", COMMUNE, "--period", "2022"])
        .await;
    assert!(out.starts_with("approved 2 report(s)"), "{out}");
    desk.tablet("tablet-a", &["record", THON_3, "2022", "road_km=0.05"]).await;
    desk.tablet("tablet-a", &["sync"]).await;
    desk.tablet("tablet-c", &["init", "--server", &url, "--token", &people.loc]).await;
    desk.tablet("tablet-c", &["record", GIA_HANH_1, "2022", "road_km=5"]).await;
    desk.tablet("tablet-c", &["sync"]).await;
    (server, desk, people)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_are_exact_decimals_and_pending_counts_on_request() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, desk, p) = reported(data.path()).await;

    // 0.1 + 0.2 km is 0.3 km, in CSV as in the totals.
    let args = ["export", "--format", "csv", "--level", "commune", "--period", "2022"];
    let out = desk.ok_as(&p.giam, &args).await;
    assert!(!out.contains("0.30000000000000004"), "{out}");
    assert!(!out.starts_with('\u{feff}'), "no BOM unless asked for");
    let rows = records(&out);
    assert_eq!(rows.len(), 13, "the supervisor's one commune, 13 indicators:\n{out}");
    let road = record(&rows, COMMUNE, "road_km");
    assert_eq!(road["done"], "0.3");
    assert_eq!(road["approved"], "0.3");
    assert_eq!(road["pending"], "0.05", "pending shown apart, not counted");
    assert_eq!(road["approved_count"], "2");
    assert_eq!(road["pending_count"], "1");
    assert_eq!(road["conflict_count"], "0");
    assert_eq!((road["plan"].as_str(), road["percent"].as_str()), ("", ""), "no plan, no percent");
    assert_eq!(road["unit_name"], "Xã Phúc Đồng");
    assert_eq!(road["parent_id"], DISTRICT);
    assert_eq!(road["level"], "commune");
    assert_eq!(road["indicator_name"], ROAD);
    assert_eq!(road["unit"], "km");
    assert_eq!(record(&rows, COMMUNE, "village_cultural_house")["done"], "1");

    // With --include-pending, the submitted village counts too.
    let mut pending = args.to_vec();
    pending.push("--include-pending");
    let rows = records(&desk.ok_as(&p.giam, &pending).await);
    let road = record(&rows, COMMUNE, "road_km");
    assert_eq!(road["done"], "0.35");
    assert_eq!((road["approved"].as_str(), road["pending"].as_str()), ("0.3", "0.05"));
    assert_eq!((road["approved_count"].as_str(), road["pending_count"].as_str()), ("2", "1"));

    // The province, as the province office sees it: approved only, or all.
    let args = ["export", "--format", "csv", "--level", "province", "--period", "2022"];
    let rows = records(&desk.ok_as(&p.tinh, &args).await);
    assert_eq!(record(&rows, PROVINCE, "road_km")["done"], "0.3");
    let rows = records(&desk.ok_as(&p.tinh, &[&args[..], &["--include-pending"]].concat()).await);
    let road = record(&rows, PROVINCE, "road_km");
    assert_eq!(road["done"], "5.35");
    assert_eq!(road["pending_count"], "2");

    // A reader that stops early (`| head`) ends the export quietly.
    let (url, token) = (desk.url.clone(), p.tinh.clone());
    let cwd = desk.path("");
    let run = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
            .args(["export", "--format", "csv", "--level", "village", "--period", "2022"])
            .args(["--server", &url, "--token", &token, "--home", "office"])
            .current_dir(cwd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run fieldsync");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).ok();
        let out = child.wait_with_output().expect("wait");
        (first, out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
    .expect("head task");
    assert!(run.0.starts_with("level,unit_id,unit_name,"), "{run:?}");
    assert_eq!((run.1, run.2.as_str()), (Some(0), ""), "no error for a closed pipe");

    // JSON for programs: the same rows, amounts as decimal strings.
    let args = ["export", "--json", "--level", "village", "--area", COMMUNE, "--period", "2022"];
    let out = desk.ok_as(&p.an, &args).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("export --json");
    let rows = json.as_array().expect("an array");
    assert_eq!(rows.len(), 3 * 13, "{out}");
    let road: Vec<(&str, &serde_json::Value)> = rows
        .iter()
        .filter(|r| r["indicator"] == "road_km")
        .map(|r| (r["unit_name"].as_str().unwrap(), &r["done"]))
        .collect();
    assert_eq!(
        road,
        [("Thôn 1", &"0.1".into()), ("Thôn 2", &"0.2".into()), ("Thôn 3", &"0".into())],
        "{out}"
    );
    let out = desk.ok_as(&p.an, &[&args[..], &["--format", "json"]].concat()).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).expect("json"), json);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_import_all_or_none_and_show_in_the_report() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, desk, p) = reported(data.path()).await;

    // The province office imports a file (with a BOM, as Excel saves it).
    std::fs::write(
        desk.path("plans.csv"),
        format!(
            "\u{feff}unit_id,indicator,period,value\n{COMMUNE},road_km,2022,0.5\n\
             {PROVINCE},road_km,2022,12.5\n{COMMUNE},village_cultural_house,2022,2\n"
        ),
    )
    .expect("write plans");
    let out = desk.ok_as(&p.tinh, &["plan", "import", "plans.csv"]).await;
    assert_eq!(out.trim_end(), "imported 3 plan figure(s) from plans.csv");

    // The report, as the province writes it: Vietnamese numbers by default.
    let args = [
        "export", "--format", "report", "--level", "commune", "--area", COMMUNE, "--period", "2022",
    ];
    let out = desk.ok_as(&p.tinh, &args).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Xã Phúc Đồng, Huyện Hương Khê — năm 2022 ({COMMUNE})"), "{out}");
    assert_eq!(lines.len(), 14, "a heading and 13 indicators:\n{out}");
    let road = lines.iter().position(|l| l.starts_with(&format!("  {ROAD}:"))).expect("road");
    assert_eq!(
        lines[road],
        format!("  {ROAD}: 0,3/0,5 km (đạt 60,0% KH) [1 báo cáo chờ duyệt, chưa tính]"),
        "Thôn 3's 0.05 km waits for the commune:\n{out}"
    );
    assert_eq!(lines[road + 1], format!("  {ROAD_CEMENT}: 0 km"), "the part after its whole");
    assert!(out.contains(&format!("\n  {HOUSE}: 1/2 (đạt 50,0% KH)\n")), "{out}");
    // Plain numbers on request; pending counted and flagged on request.
    let out = desk.ok_as(&p.tinh, &[&args[..], &["--no-vi"]].concat()).await;
    let line = format!("  {ROAD}: 0.3/0.5 km (60.0% of plan) [1 pending, not counted]\n");
    assert!(out.contains(&line), "{out}");
    let out = desk.ok_as(&p.tinh, &[&args[..], &["--include-pending"]].concat()).await;
    let heading = "Xã Phúc Đồng, Huyện Hương Khê — năm 2022, gồm cả số chờ duyệt";
    assert!(out.starts_with(heading), "{out}");
    assert!(
        out.contains(&format!("  {ROAD}: 0,35/0,5 km (đạt 70,0% KH) [gồm 1 báo cáo chờ duyệt]\n")),
        "{out}"
    );
    // The report is the default format, and can go to a file.
    let args = ["export", "--level", "province", "--period", "2022", "--out", "report.txt"];
    let out = desk.ok_as(&p.tinh, &args).await;
    assert_eq!(out.trim_end(), "wrote 13 row(s) to report.txt");
    let text = std::fs::read_to_string(desk.path("report.txt")).expect("report.txt");
    assert!(text.starts_with(&format!("Tỉnh Hà Tĩnh — năm 2022 ({PROVINCE})\n")), "{text}");
    let line = format!("  {ROAD}: 0,3/12,5 km (đạt 2,4% KH) [2 báo cáo chờ duyệt, chưa tính]\n");
    assert!(text.contains(&line), "{text}");
    assert!(!desk.path("report.txt.part").exists());

    // A bad file: an unknown unit on line 2, a bad number on line 3. Nothing
    // is imported, not even the good line 4, and both bad lines are named.
    std::fs::write(
        desk.path("bad.csv"),
        format!(
            "unit_id,indicator,period,value\nha-tinh.nowhere,road_km,2022,1\n\
             {COMMUNE},road_km,2022,\"1.234,5\"\n{COMMUNE},drainage_km,2022,3\n"
        ),
    )
    .expect("write bad plans");
    let err = desk.fails_as(&p.tinh, &["plan", "import", "bad.csv"]).await;
    assert!(err.contains("nothing was imported; fix these lines of bad.csv:"), "{err}");
    assert!(err.contains("\nline 2: unknown org unit \"ha-tinh.nowhere\""), "{err}");
    assert!(err.contains("\nline 3: road_km: \"1.234,5\" is not a valid quantity"), "{err}");
    assert!(!err.contains("line 4"), "{err}");
    let args = ["export", "--format", "csv", "--level", "commune", "--area", COMMUNE];
    let rows = records(&desk.ok_as(&p.tinh, &[&args[..], &["--period", "2022"]].concat()).await);
    assert_eq!(record(&rows, COMMUNE, "road_km")["plan"], "0.5", "unchanged");
    assert_eq!(record(&rows, COMMUNE, "road_km")["percent"], "60.0");
    assert_eq!(record(&rows, COMMUNE, "drainage_km")["plan"], "", "line 4 was not imported");

    // A file the client cannot read is refused before anything is sent.
    std::fs::write(
        desk.path("short.csv"),
        format!(
            "unit_id,indicator,period,value\n{COMMUNE},drainage_km,2022,3\n{COMMUNE},road_km\n\
             {COMMUNE},drainage_km,2022,4\n"
        ),
    )
    .expect("write short plans");
    let err = desk.fails_as(&p.tinh, &["plan", "import", "short.csv"]).await;
    assert!(err.contains("nothing was imported; fix these lines of short.csv:"), "{err}");
    assert!(err.contains("\nline 3: 2 field(s) where the header has 4"), "{err}");
    assert!(err.contains("\nline 4: the same unit, indicator and period as line 2"), "{err}");
    std::fs::write(desk.path("nohead.csv"), format!("{COMMUNE},road_km,2022,1\n")).expect("write");
    let err = desk.fails_as(&p.tinh, &["plan", "import", "nohead.csv"]).await;
    assert!(err.contains("the header row (line 1) has no unit_id column"), "{err}");

    // One figure at a time; an empty value clears it.
    let out = desk.ok_as(&p.tinh, &["plan", "set", COMMUNE, "drainage_km", "2022", "1.25"]).await;
    assert_eq!(
        out.trim_end(),
        "set the plan (KH) of drainage_km for Xã Phúc Đồng, Huyện Hương Khê in 2022 to 1.25 km"
    );
    let out = desk.ok_as(&p.tinh, &["plan", "clear", COMMUNE, "road_km", "2022", "--json"]).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).expect("json")["set"], 1);
    let rows = records(&desk.ok_as(&p.tinh, &[&args[..], &["--period", "2022"]].concat()).await);
    assert_eq!(record(&rows, COMMUNE, "drainage_km")["plan"], "1.25");
    assert_eq!(record(&rows, COMMUNE, "road_km")["plan"], "");
    assert_eq!(record(&rows, COMMUNE, "road_km")["percent"], "");
    let err = desk.fails_as(&p.tinh, &["plan", "set", COMMUNE, "road_km", "2022", "-1"]).await;
    assert!(err.contains("a plan cannot be negative (-1); no plan figure was changed"), "{err}");
    let err = desk.fails_as(&p.tinh, &["plan", "set", COMMUNE, "road_km", "2022", "0.123"]).await;
    assert!(err.contains("at most 2 digit(s) after the decimal point"), "{err}");

    // Plans are the province office's: a supervisor may not set them.
    let err = desk.fails_as(&p.giam, &["plan", "set", COMMUNE, "road_km", "2022", "1"]).await;
    assert!(err.contains("permission denied: a supervisor may not"), "{err}");
    let err = desk.fails_as(&p.giam, &["plan", "import", "plans.csv"]).await;
    assert!(err.contains("permission denied: a supervisor may not set plan figures"), "{err}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stay_within_the_callers_areas() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, desk, p) = reported(data.path()).await;

    for (who, token) in [("huyen.le", &p.huyen), ("son.pham", &p.son)] {
        // The province, or another district, is refused.
        let args = ["export", "--format", "csv", "--level", "province", "--period", "2022"];
        let err = desk.fails_as(token, &[&args[..], &["--area", PROVINCE]].concat()).await;
        assert_eq!(
            err.trim_end(),
            format!(
                "error: permission denied: Tỉnh Hà Tĩnh (ha-tinh) is outside {who}'s areas \
                 ({DISTRICT})"
            )
        );
        let args = ["export", "--format", "csv", "--level", "commune", "--period", "2022"];
        let err = desk.fails_as(token, &[&args[..], &["--area", "ha-tinh.can-loc"]].concat()).await;
        assert!(err.contains("permission denied"), "{who}: {err}");
        assert!(err.contains("is outside"), "{who}: {err}");
        let args = ["export", "--format", "xlsx", "--out", "x.xlsx", "--level", "commune"];
        let err = desk
            .fails_as(token, &[&args[..], &["--period", "2022", "--area", PROVINCE]].concat())
            .await;
        assert!(err.contains("permission denied"), "{who}: {err}");
        assert!(!desk.path("x.xlsx").exists(), "{who}: no file after a refusal");

        // Without --area: their own units only.
        let args = ["export", "--format", "csv", "--level", "commune", "--period", "2022"];
        let rows = records(&desk.ok_as(token, &args).await);
        assert_eq!(rows.len(), 10 * 13, "{who}: Hương Khê's 10 communes × 13 indicators");
        assert!(rows.iter().all(|r| r["unit_id"].starts_with("ha-tinh.huong-khe.")), "{who}");
        assert_eq!(record(&rows, COMMUNE, "road_km")["done"], "0.3");
        let args = ["export", "--format", "csv", "--level", "district", "--period", "2022"];
        let rows = records(&desk.ok_as(token, &[&args[..], &["--include-pending"]].concat()).await);
        assert_eq!(rows.len(), 13, "{who}: one district");
        assert_eq!(record(&rows, DISTRICT, "road_km")["done"], "0.35", "not Can Lộc's 5 km");

        // The province level without --area: nothing of theirs is at that level.
        let run = desk
            .run_as(
                token,
                &["export", "--format", "csv", "--level", "province", "--period", "2022"],
            )
            .await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("is a district: it holds no province-level units"), "{run:?}");
    }

    // The district's workbook starts at the district: the province sheet
    // would be empty for them.
    let args = ["export", "--level", "commune", "--period", "2022", "--out", "hk.xlsx"];
    let out = desk.ok_as(&p.huyen, &args).await;
    assert_eq!(out.trim_end(), "wrote 130 row(s) to hk.xlsx (sheets: Huyện, Xã)");
    let mut book: Xlsx<_> = open_workbook(desk.path("hk.xlsx")).expect("open hk.xlsx");
    assert_eq!(book.sheet_names(), ["Huyện", "Xã"]);
    let title = book.worksheet_range("Huyện").expect("district sheet").get_value((0, 0)).cloned();
    let title = title.expect("a title").to_string();
    assert!(title.starts_with("Tiến độ thực hiện — Huyện Hương Khê — năm 2022 — "), "{title}");

    // A commune supervisor sees the commune, not its neighbours.
    let args = ["export", "--format", "csv", "--level", "commune", "--period", "2022"];
    let err = desk.fails_as(&p.giam, &[&args[..], &["--area", DISTRICT]].concat()).await;
    assert!(err.contains("permission denied"), "{err}");
    let err = desk.fails_as(&p.giam, &[&args[..], &["--area", "ha-tinh.nowhere"]].concat()).await;
    assert_eq!(err.trim_end(), "error: unknown area \"ha-tinh.nowhere\"");
    let args = ["export", "--level", "district", "--period", "2022", "--area", COMMUNE];
    let err = desk.fails_as(&p.giam, &args).await;
    assert_eq!(
        err.trim_end(),
        format!(
            "error: Xã Phúc Đồng ({COMMUNE}) is a commune: it holds no district-level units; \
             choose --level commune or lower"
        )
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_xlsx_keep_vietnamese_names_and_numbers() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, desk, p) = reported(data.path()).await;
    std::fs::write(
        desk.path("plans.csv"),
        format!("unit_id,indicator,period,value\n{COMMUNE},road_km,2022,0.5\n"),
    )
    .expect("write plans");
    desk.ok_as(&p.tinh, &["plan", "import", "plans.csv"]).await;

    // CSV with a BOM for Excel, round-tripped through the csv crate.
    let args = ["export", "--level", "village", "--area", COMMUNE, "--period", "2022"];
    let out = desk.ok_as(&p.tinh, &[&args[..], &["--bom", "--out", "villages.csv"]].concat()).await;
    assert_eq!(out.trim_end(), "wrote 39 row(s) to villages.csv");
    let bytes = std::fs::read(desk.path("villages.csv")).expect("villages.csv");
    assert_eq!(&bytes[..3], [0xEF, 0xBB, 0xBF], "starts with a UTF-8 BOM");
    assert!(!desk.path("villages.csv.part").exists());
    let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
    // For people: Vietnamese headers and levels, the same figures.
    // As Vietnamese Excel saves a CSV: `;` between fields, comma decimals.
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(text.as_bytes());
    let headers = reader.headers().expect("a header").clone();
    assert_eq!(headers.iter().collect::<Vec<_>>(), fieldsync_export::CSV_HEADER_VI);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), 39);
    let thon = rows.iter().find(|r| &r[1] == THON_1 && &r[4] == "road_km").expect("Thôn 1");
    assert_eq!((&thon[0], &thon[2], &thon[5], &thon[7]), ("Thôn", "Thôn 1", ROAD, "0,1"));
    let args = ["export", "--format", "csv", "--bom", "--level", "commune", "--area", COMMUNE];
    let out = desk.ok_as(&p.tinh, &[&args[..], &["--period", "2022"]].concat()).await;
    let text = out.strip_prefix('\u{feff}').expect("a BOM on stdout too");
    assert!(text.starts_with("Cấp;Mã đơn vị;Tên đơn vị;"), "{text}");
    assert!(text.contains(&format!("Xã;{COMMUNE};Xã Phúc Đồng;")), "{text}");

    // XLSX: a sheet per level from the province down, named in Vietnamese,
    // under a title of the area, the period and the day; names intact,
    // numbers as numbers, % as percent cells, a total row.
    let args = ["export", "--level", "commune", "--period", "2022", "--out", "totals.xlsx"];
    let before = fieldsync::Date::in_vietnam(fieldsync_client::now_ms());
    let out = desk.ok_as(&p.tinh, &args).await;
    let after = fieldsync::Date::in_vietnam(fieldsync_client::now_ms());
    assert_eq!(
        out.trim_end(),
        format!("wrote {} row(s) to totals.xlsx (sheets: Tỉnh, Huyện, Xã)", 36 * 13)
    );
    let mut book: Xlsx<_> = open_workbook(desk.path("totals.xlsx")).expect("open totals.xlsx");
    assert_eq!(book.sheet_names(), ["Tỉnh", "Huyện", "Xã"]);
    // The row of unit `id` (or of the total, "Tổng cộng") under `heading`: a
    // unit's column ("Tên", "Trực thuộc"), or an indicator's name and which
    // of its done / plan / % columns.
    let cell = |sheet: &calamine::Range<Data>, id: &str, heading: &str, part: usize| -> Data {
        let names: Vec<String> =
            sheet.rows().nth(1).expect("headings").iter().map(|c| c.to_string()).collect();
        let col = names
            .iter()
            .position(|h| h == heading)
            .unwrap_or_else(|| panic!("{heading:?} in {names:?}"));
        let row = sheet
            .rows()
            .find(|r| r[0] == Data::String(id.to_owned()))
            .unwrap_or_else(|| panic!("no row {id}"));
        row[col + part].clone()
    };
    let (done, plan, percent) = (0, 1, 2);
    let text = |t: &str| Data::String(t.into());
    let province = book.worksheet_range("Tỉnh").expect("province sheet");
    let title = province.get_value((0, 0)).expect("a title").to_string();
    let day = title
        .strip_prefix("Tiến độ thực hiện — Tỉnh Hà Tĩnh — năm 2022 — xuất ngày ")
        .unwrap_or_else(|| panic!("{title}"));
    let day: fieldsync::Date = day.parse().expect("dd/mm/yyyy");
    assert!(day == before || day == after, "{title}: exported today, in Vietnam");
    assert_eq!(province.height(), 3 + 1 + 1, "title, headings, the province, the total");
    assert_eq!(cell(&province, PROVINCE, "Tên", 0), text("Tỉnh Hà Tĩnh"));
    assert_eq!(cell(&province, PROVINCE, "Trực thuộc", 0), Data::Empty, "a province is of none");
    assert_eq!(cell(&province, PROVINCE, ROAD, done), Data::Float(0.3));
    assert_eq!(cell(&province, PROVINCE, ROAD, plan), Data::Empty, "no province plan");
    assert_eq!(cell(&province, PROVINCE, ROAD, percent), Data::Empty, "no plan, no %");
    let district = book.worksheet_range("Huyện").expect("district sheet");
    assert_eq!(district.height(), 3 + 13 + 1);
    assert_eq!(cell(&district, DISTRICT, "Tên", 0), text("Huyện Hương Khê"));
    assert_eq!(cell(&district, DISTRICT, "Trực thuộc", 0), text("Tỉnh Hà Tĩnh"));
    assert_eq!(cell(&district, DISTRICT, ROAD, done), Data::Float(0.3));
    let commune = book.worksheet_range("Xã").expect("commune sheet");
    assert_eq!(commune.height(), 3 + 36 + 1, "the 36 demo communes and their total");
    assert_eq!(cell(&commune, COMMUNE, "Tên", 0), text("Xã Phúc Đồng"));
    assert_eq!(cell(&commune, COMMUNE, "Trực thuộc", 0), text("Huyện Hương Khê"));
    let heads: Vec<String> =
        commune.rows().nth(2).expect("headings").iter().map(|c| c.to_string()).collect();
    let road = commune.rows().nth(1).expect("headings").iter().position(|h| h == &text(ROAD));
    let road = road.expect("road column");
    assert_eq!(heads[road..road + 3], ["Thực hiện (km)", "KH (km)", "% KH"]);
    assert_eq!(cell(&commune, COMMUNE, ROAD, done), Data::Float(0.3));
    assert_eq!(cell(&commune, COMMUNE, ROAD, plan), Data::Float(0.5));
    assert_eq!(cell(&commune, COMMUNE, ROAD, percent), Data::Float(0.6), "60.0% as 0.6");
    assert_eq!(cell(&commune, COMMUNE, HOUSE, done), Data::Float(1.0));
    let styles = book.worksheet_style("Xã").expect("styles");
    let row = commune.rows().position(|r| r[0] == text(COMMUNE)).expect("Phúc Đồng's row");
    let style = styles.get((row as u32, (road + 2) as u32)).expect("a style");
    assert_eq!(style.number_format.as_ref().map(|f| f.format_code.as_str()), Some("0.0%"));
    // The communes' total is the province's.
    assert_eq!(commune.rows().next_back().expect("a total")[0], text("Tổng cộng"));
    assert_eq!(cell(&commune, "Tổng cộng", ROAD, done), Data::Float(0.3));
    assert_eq!(cell(&commune, "Tổng cộng", ROAD, plan), Data::Float(0.5));
    assert_eq!(cell(&commune, "Tổng cộng", ROAD, percent), Data::Float(0.6));
    assert_eq!(cell(&commune, "Tổng cộng", HOUSE, done), Data::Float(1.0));

    // With --area, the workbook starts at the area's level, and is titled with it.
    let args = ["export", "--level", "village", "--period", "2022", "--area", COMMUNE];
    desk.ok_as(&p.tinh, &[&args[..], &["--format", "xlsx", "--out", "pd.xlsx"]].concat()).await;
    let mut book: Xlsx<_> = open_workbook(desk.path("pd.xlsx")).expect("open pd.xlsx");
    assert_eq!(book.sheet_names(), ["Xã", "Thôn"]);
    let village = book.worksheet_range("Thôn").expect("village sheet");
    let title = village.get_value((0, 0)).expect("a title").to_string();
    assert!(title.starts_with("Tiến độ thực hiện — Xã Phúc Đồng — năm 2022 — "), "{title}");
    assert_eq!(cell(&village, THON_2, "Tên", 0), text("Thôn 2"));
    assert_eq!(cell(&village, THON_2, "Trực thuộc", 0), text("Xã Phúc Đồng"));
    assert_eq!(cell(&village, THON_2, ROAD, done), Data::Float(0.2));

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_too_long_for_a_spreadsheet_cell_is_refused_and_xlsx_exports_keep_working() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path()).await;
    let desk = Desk { dir: tempfile::tempdir().expect("tempdir"), url: server.url() };
    let huge = "Thôn ".repeat(8_000); // 40,000 characters: more than a cell holds
    let id = format!("{COMMUNE}.thon-dai");
    let add = ["admin", "org-unit", "add", &id, "--name", &huge, "--level", "village"];
    let args = [&add[..], &["--parent", COMMUNE]].concat();
    let err = desk.fails_as(ADMIN_TOKEN, &args).await;
    assert!(
        err.contains(&format!("the name of org unit {id} is 40000 characters long; at most 200")),
        "{err}"
    );
    // Nor does the server take it from another client.
    let admin = server.0.store.user("admin").expect("users").expect("admin");
    let unit = fieldsync::OrgUnit {
        id: id.clone(),
        name: huge.clone(),
        level: fieldsync::Level::Village,
        parent: Some(COMMUNE.into()),
    };
    let refused = server.0.store.extend_catalogue(&admin, Some(unit), None, 1);
    assert!(refused.unwrap_err().to_string().contains("at most 200"));
    assert!(server.0.store.catalogue().org_unit(&id).is_none(), "nothing was added");
    let args = ["export", "--level", "village", "--area", COMMUNE, "--period", "2022"];
    let out = desk.ok_as(ADMIN_TOKEN, &[&args[..], &["--out", "pd.xlsx"]].concat()).await;
    assert!(out.starts_with("wrote "), "{out}");
    let book: Xlsx<_> = open_workbook(desk.path("pd.xlsx")).expect("open pd.xlsx");
    assert_eq!(book.sheet_names(), ["Xã", "Thôn"]);
    server.stop().await;
}

#[tokio::test]
async fn export_arguments_are_checked_before_connecting() {
    let desk =
        Desk { dir: tempfile::tempdir().expect("tempdir"), url: "http://127.0.0.1:9".into() };
    let base = ["export", "--level", "commune"];
    let cases: [(&[&str], &str); 6] = [
        (&["--period", "2022", "--format", "xlsx"], "--format xlsx writes a file: give --out"),
        (&["--period", "2022", "--format", "json", "--bom"], "--bom is for --format csv"),
        (&["--period", "2022", "--out", "t.csv", "--vi"], "--vi and --no-vi change the numbers"),
        (&["--period", "2022", "--json", "--format", "csv"], "--json asks for --format json"),
        (&["--period", "2022-13", "--format", "csv"], "2022-13"),
        (&["--period", "2022", "--out", "t.xlsx"], "cannot reach the server"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let err = desk.fails_as("some-token", &args).await;
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// `--out FILE` writes `FILE.part` as a new file: a link planted there is
/// never followed, and a file already at FILE is replaced only with --force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_files_are_never_written_through_a_planted_part_or_over_a_file() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, desk, p) = reported(data.path()).await;
    let args = ["export", "--level", "commune", "--area", COMMUNE, "--period", "2022"];

    // Someone planted `totals.csv.part` as a link to a file of the user's.
    std::fs::write(desk.path("precious.txt"), "keep me").expect("write precious");
    for name in ["totals.csv", "totals.xlsx"] {
        let part = desk.path(&format!("{name}.part"));
        std::os::unix::fs::symlink(desk.path("precious.txt"), &part).expect("plant a link");
        let err = desk.fails_as(&p.tinh, &[&args[..], &["--out", name]].concat()).await;
        assert!(err.contains(&format!("{name}.part exists")), "{name}: {err}");
        assert!(err.contains("--force"), "says what to do: {err}");
        assert_eq!(std::fs::read_to_string(desk.path("precious.txt")).unwrap(), "keep me");
        assert!(!desk.path(name).exists(), "{name}");
        std::fs::remove_file(&part).expect("remove the link");
    }

    // An existing file is refused, and kept; --force replaces it.
    std::fs::write(desk.path("totals.csv"), "last month's").expect("write old export");
    let err = desk.fails_as(&p.tinh, &[&args[..], &["--out", "totals.csv"]].concat()).await;
    assert!(err.contains("totals.csv exists: give --force to replace it"), "{err}");
    assert_eq!(std::fs::read_to_string(desk.path("totals.csv")).unwrap(), "last month's");
    let out = desk.ok_as(&p.tinh, &[&args[..], &["--out", "totals.csv", "--force"]].concat()).await;
    assert_eq!(out.trim_end(), "wrote 13 row(s) to totals.csv");
    let rows = records(&std::fs::read_to_string(desk.path("totals.csv")).expect("totals.csv"));
    assert_eq!(record(&rows, COMMUNE, "road_km")["done"], "0.3");

    // --force also clears a planted link instead of writing through it.
    std::os::unix::fs::symlink(desk.path("precious.txt"), desk.path("totals.xlsx.part"))
        .expect("plant a link");
    let out =
        desk.ok_as(&p.tinh, &[&args[..], &["--out", "totals.xlsx", "--force"]].concat()).await;
    assert!(out.starts_with("wrote 13 row(s) to totals.xlsx"), "{out}");
    assert_eq!(std::fs::read_to_string(desk.path("precious.txt")).unwrap(), "keep me");
    let book: Xlsx<_> = open_workbook(desk.path("totals.xlsx")).expect("open totals.xlsx");
    assert!(book.sheet_names().contains(&"Xã".to_owned()));
    assert!(!desk.path("totals.xlsx.part").exists());
    server.stop().await;
}
