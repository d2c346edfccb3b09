//! Loading a real province into a store that starts empty (as
//! `fieldsync-server serve --no-demo` starts one), through the binary: the
//! org tree from a CSV file as Excel saves it under Vietnamese settings, the
//! indicators from a workbook, every bad row named by the number Excel shows
//! and nothing imported then; then a surveyor of the new tree records and
//! syncs from a tablet.

use std::path::{Path, PathBuf};
use std::process::Command;

use fieldsync::Catalogue;
use fieldsync_server::local::LocalServer;
use tempfile::TempDir;

const ADMIN_TOKEN: &str = "import-test-admin-token-0123456789";

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

struct Desk {
    dir: TempDir,
    url: String,
}

impl Desk {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

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

    /// An admin command that must succeed; its stdout.
    async fn admin(&self, args: &[&str]) -> String {
        let run = self.as_admin(args).await;
        assert_eq!(run.code, Some(0), "`fieldsync {}` failed: {run:?}", args.join(" "));
        run.stdout
    }

    /// An admin command that must fail with one plain error; its stderr.
    async fn admin_fails(&self, args: &[&str]) -> String {
        let run = self.as_admin(args).await;
        assert_eq!(run.code, Some(1), "`fieldsync {}` should fail: {run:?}", args.join(" "));
        assert!(run.stderr.starts_with("error: "), "{run:?}");
        run.stderr
    }

    async fn as_admin(&self, args: &[&str]) -> Run {
        let mut argv = args.to_vec();
        argv.extend(["--server", &self.url, "--token", ADMIN_TOKEN, "--home", "office"]);
        self.run(&argv).await
    }

    async fn tablet(&self, args: &[&str]) -> String {
        let mut argv = vec!["--home", "tablet"];
        argv.extend(args);
        let run = self.run(&argv).await;
        assert_eq!(run.code, Some(0), "`fieldsync {}` failed: {run:?}", argv.join(" "));
        run.stdout
    }
}

/// `lines` as Excel writes a CSV under Vietnamese regional settings: UTF-8
/// with a byte-order mark, `;` between cells, CRLF.
fn excel_csv(path: &Path, lines: &[&str]) {
    let mut text = String::from("\u{feff}");
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    std::fs::write(path, text).unwrap();
}

/// Part of Hà Tĩnh after 1 July 2025: communes and a ward straight under
/// the province.
const TREE: [&str; 8] = [
    "Mã;Tên;Cấp;Thuộc",
    "ht;Tỉnh Hà Tĩnh;Tỉnh;",
    "ht.thach-ha;Xã Thạch Hà;Xã;ht",
    "ht.thach-ha.thon-1;Thôn 1;Thôn;ht.thach-ha",
    "ht.thach-ha.thon-2;Thôn 2;thôn;ht.thach-ha",
    "ht.thanh-sen;Phường Thành Sen;Phường;ht",
    "ht.thanh-sen.to-1;Tổ dân phố 1;Tổ dân phố;ht.thanh-sen",
    "ht.thanh-sen.to-2;Tổ dân phố 2;Tổ dân phố;ht.thanh-sen",
];

async fn units_listed(desk: &Desk) -> Vec<serde_json::Value> {
    let out = desk.admin(&["admin", "org-unit", "list", "--json"]).await;
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_takes_a_provinces_files_and_serves_its_surveyors() {
    let data = tempfile::tempdir().unwrap();
    let server =
        LocalServer::start_with(data.path(), "127.0.0.1:0", ADMIN_TOKEN, Catalogue::default)
            .await
            .unwrap();
    let desk = Desk { dir: tempfile::tempdir().unwrap(), url: server.url.clone() };
    assert!(units_listed(&desk).await.is_empty(), "the store starts without the demo");

    // Rows the file itself gets wrong: named by Excel's row numbers, the
    // empty row 4 counted; nothing imported.
    let units = desk.path("don-vi.csv");
    let mut bad = TREE.to_vec();
    bad.insert(3, ";;;");
    bad[5] = "ht.thach-ha.thon-2;Thôn 2;huyện cũ;ht.thach-ha";
    bad.push("ht.thach-ha;Xã Thạch Hà (trùng);Xã;ht");
    excel_csv(&units, &bad);
    let err = desk.admin_fails(&["admin", "org-unit", "import", units.to_str().unwrap()]).await;
    assert!(err.contains("row 6: unknown level \"huyện cũ\""), "{err}");
    assert!(err.contains("row 10: the same id ht.thach-ha as row 3; keep one"), "{err}");
    assert!(units_listed(&desk).await.is_empty(), "nothing imported: {err}");

    // Rows only the tree can refuse (a parent that is nowhere, a village
    // hung from the province): the server's refusal, by the file's rows.
    let mut bad = TREE.to_vec();
    bad[3] = "ht.thach-ha.thon-1;Thôn 1;Thôn;ht.thach-ha-cu";
    bad[6] = "ht.thanh-sen.to-1;Tổ dân phố 1;Tổ dân phố;ht";
    excel_csv(&units, &bad);
    let err = desk.admin_fails(&["admin", "org-unit", "import", units.to_str().unwrap()]).await;
    assert!(
        err.contains("row 4: the parent ht.thach-ha-cu of ht.thach-ha.thon-1 is neither in the catalogue nor in this import"),
        "{err}"
    );
    assert!(
        err.contains("row 7: ht.thanh-sen.to-1 is a village and its parent must be a commune, but ht is a province"),
        "{err}"
    );
    assert!(units_listed(&desk).await.is_empty(), "nothing imported: {err}");

    // The file as it should be, parents after their children too.
    let mut good = TREE.to_vec();
    good.swap(1, 7);
    excel_csv(&units, &good);
    let out = desk.admin(&["admin", "org-unit", "import", units.to_str().unwrap()]).await;
    assert!(out.contains("imported 7 org unit(s)"), "{out}");
    assert!(out.contains("(1 province, 2 commune, 4 village)"), "{out}");
    let listed = units_listed(&desk).await;
    assert_eq!(listed.len(), 7);
    let ward = listed.iter().find(|u| u["id"] == "ht.thanh-sen").unwrap();
    assert_eq!((ward["level"].as_str(), ward["parent_id"].as_str()), (Some("commune"), Some("ht")));
    assert_eq!(listed[0]["name"], "Tỉnh Hà Tĩnh");
    // The same file again adds nothing and says so.
    let out = desk.admin(&["admin", "org-unit", "import", units.to_str().unwrap()]).await;
    assert!(
        out.contains("imported nothing new") && out.contains("7 of its rows were already"),
        "{out}"
    );
    let out = desk.admin(&["admin", "org-unit", "list"]).await;
    assert!(out.contains("7 org unit(s): 1 province, 2 commune, 4 village"), "{out}");

    // The indicators from a workbook, a comma decimal among them.
    let indicators = desk.path("chi-tieu.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows: [[&str; 6]; 3] = [
        ["Mã chỉ tiêu", "Tên chỉ tiêu", "Đơn vị tính", "Kiểu", "Thuộc", "Tối đa mỗi thôn"],
        ["road_km", "Đường giao thông nông thôn", "km", "số thập phân", "", "50"],
        ["road_cement_km", "Trong đó: xi măng", "km", "thập phân", "road_km", "50,5"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).unwrap();
        }
    }
    sheet.write_string(3, 0, "playground").unwrap();
    sheet.write_string(3, 1, "Khu vui chơi").unwrap();
    sheet.write_string(3, 2, "khu").unwrap();
    sheet.write_string(3, 3, "integer").unwrap();
    sheet.write_number(3, 5, 5.0).unwrap();
    book.save(&indicators).unwrap();
    let out = desk.admin(&["admin", "indicator", "import", indicators.to_str().unwrap()]).await;
    assert!(out.contains("imported 3 indicator(s)"), "{out}");

    // The people, with a sheet of enrollment codes for the new surveyors.
    let people = desk.path("nguoi-dung.csv");
    let mut rows = vec![
        "Tên đăng nhập;Họ tên;Vai trò;Địa bàn",
        "an;Nguyễn Văn An;Điều tra viên;ht.thach-ha",
        "binh;Trần Thị Bình;điều tra viên;ht.thanh-sen.to-1 ht.thanh-sen.to-2",
        "xa.thach-ha;Lê Văn Xã;trưởng thôn;ht.thach-ha",
        "tinh;Phạm Thị Tỉnh;giam sat;ht",
    ];
    excel_csv(&people, &rows);
    let err = desk.admin_fails(&["admin", "user", "import", people.to_str().unwrap()]).await;
    assert!(err.contains("row 4: unknown role \"trưởng thôn\""), "{err}");
    rows[3] = "xa.thach-ha;Lê Văn Xã;Giám sát;ht.thach-ha-cu";
    excel_csv(&people, &rows);
    let err = desk.admin_fails(&["admin", "user", "import", people.to_str().unwrap()]).await;
    assert!(err.contains("row 4: unknown org unit \"ht.thach-ha-cu\""), "{err}");
    assert!(server.store.user("an").unwrap().is_none(), "nothing imported: {err}");
    rows[3] = "xa.thach-ha;Lê Văn Xã;Giám sát;ht.thach-ha";
    excel_csv(&people, &rows);
    let codes = desk.path("ma-dang-ky.xlsx");
    let (people_arg, codes_arg) = (people.to_str().unwrap(), codes.to_str().unwrap());
    let out = desk.admin(&["admin", "user", "import", people_arg, "--codes", codes_arg]).await;
    assert!(out.contains("imported 4 user(s)"), "{out}");
    assert!(out.contains("wrote 2 enrollment code(s)"), "{out}");
    let out = desk.admin(&["admin", "user", "import", people_arg]).await;
    assert!(out.contains("imported 0 user(s)") && out.contains("4 were already there"), "{out}");
    let binh = server.store.user("binh").unwrap().unwrap();
    assert_eq!(binh.areas, ["ht.thanh-sen.to-1", "ht.thanh-sen.to-2"]);
    {
        use calamine::{Reader, Xlsx};
        let mut book: Xlsx<_> = calamine::open_workbook(&codes).unwrap();
        assert_eq!(book.sheet_names(), ["Mã đăng ký"]);
        let sheet = book.worksheet_range("Mã đăng ký").unwrap();
        let cells: Vec<Vec<String>> =
            sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
        assert_eq!(cells.len(), 3, "a header and one line per new surveyor: {cells:?}");
        assert_eq!(cells[0][..4], ["Tên đăng nhập", "Họ tên", "Địa bàn", "Mã đăng ký"]);
        assert_eq!(cells[1][..2], ["an", "Nguyễn Văn An"]);
        assert_eq!(cells[2][2], "Tổ dân phố 1, Phường Thành Sen; Tổ dân phố 2, Phường Thành Sen");
        // The printed code enrolls a device of that surveyor.
        let now = fieldsync_server::db::now_ms();
        let redeemed = server.store.redeem(&cells[1][3], "phone", Some("an"), now);
        assert!(redeemed.is_ok(), "{:?}", redeemed.err());
    }

    // A surveyor of the new commune records on a tablet and syncs.
    let token = desk.admin(&["admin", "token", "issue", "an"]).await;
    desk.tablet(&["init", "--server", &desk.url, "--token", token.trim()]).await;
    desk.tablet(&[
        "record",
        "ht.thach-ha.thon-1",
        "2026",
        "road_km=1.5",
        "road_cement_km=0.5",
        "playground=1",
    ])
    .await;
    let out = desk.tablet(&["sync"]).await;
    assert!(out.contains("3 applied") || out.contains("applied 3"), "{out}");
    // A new programme phase drops an indicator: a tablet's value for it is
    // refused from then on, with the reason.
    let out = desk.admin(&["admin", "indicator", "retire", "playground", "--from", "2027"]).await;
    assert!(out.contains("no longer recorded from 2027 on"), "{out}");
    desk.tablet(&["record", "ht.thach-ha.thon-2", "2027", "playground=1"]).await;
    let out = desk.tablet(&["sync"]).await;
    assert!(out.contains("1 refused"), "{out}");
    let report = server.store.submissions().unwrap();
    assert_eq!(report.len(), 1, "the refused 2027 value made no report");
    assert_eq!(report[0].village_id, "ht.thach-ha.thon-1");

    // A commune founded on 1 July 2025, from a workbook with a "valid from"
    // column: a date cell, a day typed as text, and one that is no day.
    let founded = desk.path("don-vi-moi.xlsx");
    let write = |third: &str| {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in ["Mã", "Tên", "Cấp", "Thuộc", "Hiệu lực từ"].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        let rows = [
            ["ht.moi", "Xã Mới", "Xã", "ht"],
            ["ht.moi.1", "Thôn 1", "Thôn", "ht.moi"],
            ["ht.moi.2", "Thôn 2", "Thôn", "ht.moi"],
        ];
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                sheet.write_string(r as u32 + 1, c as u16, *cell).unwrap();
            }
        }
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2025, 7, 1).unwrap();
        let shown = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
        sheet.write_datetime_with_format(1, 4, &date, &shown).unwrap();
        sheet.write_string(2, 4, "01/07/2025").unwrap();
        sheet.write_string(3, 4, third).unwrap();
        book.save(&founded).unwrap();
    };
    write("31/06/2025");
    let err = desk.admin_fails(&["admin", "org-unit", "import", founded.to_str().unwrap()]).await;
    assert!(err.contains("row 4: valid from: \"31/06/2025\" is not a day"), "{err}");
    write("2025-08-15");
    let out = desk.admin(&["admin", "org-unit", "import", founded.to_str().unwrap()]).await;
    assert!(out.contains("imported 3 org unit(s)"), "{out}");
    assert!(out.contains("in force from 2025-07-01, 2025-08-15"), "{out}");
    let office = &desk;
    let on = |day: &'static str| async move {
        let out = office.admin(&["admin", "org-unit", "list", "--date", day, "--json"]).await;
        let units: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        units.iter().filter_map(|u| u["id"].as_str().map(str::to_owned)).collect::<Vec<_>>()
    };
    let june = on("2025-06-30").await;
    assert!(!june.iter().any(|id| id.starts_with("ht.moi")), "{june:?}");
    let july = on("2025-07-01").await;
    assert!(july.contains(&"ht.moi.1".to_owned()) && !july.contains(&"ht.moi.2".to_owned()));
    let changes = desk.admin(&["admin", "org-unit", "changes"]).await;
    assert!(changes.contains("added 2 unit(s) (ht.moi, ht.moi.1) on 2025-07-01"), "{changes}");
    assert_eq!(server.store.check().unwrap(), Vec::<String>::new());
    server.stop().await.unwrap();
}

/// CSV text as (unit_id, indicator) → done.
fn done_by_unit(csv_text: &str, indicator: &str) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (unit, ind, done) = (col("unit_id"), col("indicator"), col("done"));
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[ind] == indicator)
        .map(|r| (r[unit].to_owned(), r[done].to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restructure_of_1_july_2025_keeps_2022_as_published_and_restates_it() {
    let data = tempfile::tempdir().unwrap();
    let server = LocalServer::start_with(
        data.path(),
        "127.0.0.1:0",
        ADMIN_TOKEN,
        fieldsync::demo::catalogue,
    )
    .await
    .unwrap();
    let desk = Desk { dir: tempfile::tempdir().unwrap(), url: server.url.clone() };
    // Beside the demo's province (for its indicators), the old four-level
    // tree of another, with 2022 reports in two communes of one district
    // and one of another.
    let tree = desk.path("cu.csv");
    excel_csv(
        &tree,
        &[
            "id;name;level;parent",
            "t;Tỉnh T;tỉnh;",
            "t.h1;Huyện Một;huyện;t",
            "t.h2;Huyện Hai;huyện;t",
            "t.h1.a;Xã A;xã;t.h1",
            "t.h1.b;Xã B;xã;t.h1",
            "t.h2.c;Xã C;xã;t.h2",
            "t.h1.a.1;Thôn 1;thôn;t.h1.a",
            "t.h1.b.1;Thôn 1;thôn;t.h1.b",
            "t.h2.c.1;Thôn 1;thôn;t.h2.c",
        ],
    );
    desk.admin(&["admin", "org-unit", "import", tree.to_str().unwrap()]).await;
    desk.admin(&[
        "admin", "user", "add", "an", "--name", "An", "--role", "surveyor", "--area", "t",
    ])
    .await;
    desk.admin(&[
        "admin",
        "user",
        "add",
        "xa.a",
        "--name",
        "Xã A",
        "--role",
        "supervisor",
        "--area",
        "t.h1.a",
    ])
    .await;
    let token = desk.admin(&["admin", "token", "issue", "an"]).await;
    desk.tablet(&["init", "--server", &desk.url, "--token", token.trim()]).await;
    for (village, km) in [("t.h1.a.1", "1.5"), ("t.h1.b.1", "2"), ("t.h2.c.1", "4")] {
        desk.tablet(&["record", village, "2022", &format!("road_km={km}")]).await;
    }
    desk.tablet(&["sync"]).await;

    // 1 July 2025: A and B merge into the new commune AB; the districts go.
    let out = desk
        .admin(&[
            "admin",
            "org-unit",
            "merge",
            "t.h1.a",
            "t.h1.b",
            "--into",
            "t.ab",
            "--name",
            "Xã AB",
            "--parent",
            "t.h1",
            "--date",
            "2025-07-01",
        ])
        .await;
    assert!(out.contains("merged t.h1.a, t.h1.b into t.ab (new) on 2025-07-01"), "{out}");
    assert!(out.contains("xa.a now works in t.ab (was t.h1.a)"), "{out}");
    desk.admin(&[
        "admin",
        "org-unit",
        "merge",
        "t.h1",
        "t.h2",
        "--into",
        "t",
        "--date",
        "01/07/2025",
    ])
    .await;
    // A change dated before the last one is refused.
    let err = desk
        .admin_fails(&["admin", "org-unit", "rename", "t.ab", "Xã Mới", "--date", "2025-06-01"])
        .await;
    assert!(err.contains("date this one 2025-07-01 or later"), "{err}");

    let now = desk.admin(&["admin", "org-unit", "list", "--area", "t"]).await;
    let summary = now.lines().find(|l| l.contains("org unit(s)")).expect("a summary line");
    assert!(summary.starts_with("6 org unit(s)"), "province, 2 communes, 3 villages: {now}");
    assert!(!now.contains("t.h1.a ") && now.contains("t.ab"), "{now}");
    let before = desk.admin(&["admin", "org-unit", "list", "--date", "2025-06-30", "--json"]).await;
    let before: Vec<serde_json::Value> = serde_json::from_str(&before).unwrap();
    assert!(before.iter().any(|u| u["id"] == "t.h1" && u["level"] == "district"), "{before:?}");
    assert!(!before.iter().any(|u| u["id"] == "t.ab"), "{before:?}");
    let changes = desk.admin(&["admin", "org-unit", "changes"]).await;
    assert!(changes.contains("2025-07-01  merged t.h1, t.h2 into t on 2025-07-01"), "{changes}");

    // 2022 by its districts, as published; and restated under today's communes.
    let export = |args: &'static [&'static str]| {
        let mut argv = vec![
            "export",
            "--format",
            "csv",
            "--period",
            "2022",
            "--include-pending",
            "--area",
            "t",
        ];
        argv.extend(args);
        argv
    };
    let by_district = desk.admin(&export(&["--level", "district"])).await;
    assert_eq!(
        done_by_unit(&by_district, "road_km"),
        [("t.h1".to_owned(), "3.5".to_owned()), ("t.h2".to_owned(), "4".to_owned())]
    );
    let by_commune = desk.admin(&export(&["--level", "commune"])).await;
    assert_eq!(
        done_by_unit(&by_commune, "road_km").len(),
        3,
        "the three old communes: {by_commune}"
    );
    let restated = desk.admin(&export(&["--level", "commune", "--tree-date", "2026-01-01"])).await;
    assert_eq!(
        done_by_unit(&restated, "road_km"),
        [("t.ab".to_owned(), "3.5".to_owned()), ("t.h2.c".to_owned(), "4".to_owned())]
    );

    // The tablet gets the two-tier tree at its next sync and records under it.
    desk.tablet(&["sync"]).await;
    desk.tablet(&["record", "t.h1.a.1", "2026", "road_km=0.5"]).await;
    let out = desk.tablet(&["sync"]).await;
    assert!(out.contains("1 applied") && out.contains("0 refused"), "{out}");

    // The programme's 2026 phase drops drainage: the tablet stops offering
    // it at its next sync and refuses it offline; 2022 keeps its values.
    desk.tablet(&["record", "t.h2.c.1", "2022", "drainage_km=0.25"]).await;
    desk.admin(&["admin", "indicator", "retire", "drainage_km", "--from", "2026"]).await;
    desk.tablet(&["sync"]).await;
    let list = desk.tablet(&["indicators"]).await;
    let drainage = list.lines().find(|l| l.starts_with("drainage_km")).expect("drainage listed");
    assert!(drainage.contains("from 2026"), "{list}");
    let road = list.lines().find(|l| l.starts_with("road_km ")).expect("road listed");
    assert!(!road.contains("from 20"), "{list}");
    let mut argv = vec!["--home", "tablet", "record", "t.h1.a.1", "2026-Q3", "drainage_km=1"];
    let refused = desk.run(&argv).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("retired from 2026 on"), "{refused:?}");
    argv[4] = "2025";
    assert_eq!(desk.run(&argv).await.code, Some(0), "2025 still takes drainage");
    let out = desk.tablet(&["sync"]).await;
    assert!(out.contains("1 applied") && out.contains("0 refused"), "{out}");

    let place = server.store.catalogue().org_unit("t.h1.a.1").unwrap().parent.clone();
    assert_eq!(place.as_deref(), Some("t.ab"));
    assert_eq!(server.store.check().unwrap(), Vec::<String>::new());
    server.stop().await.unwrap();
}
