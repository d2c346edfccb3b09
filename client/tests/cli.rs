//! End-to-end tests of the `fieldsync` binary, run as surveyors, supervisors
//! and admins would run it (README walkthrough): an in-process server over a
//! sled store in a temp dir, and tablets that are separate `--home`
//! directories used by the real binary. Assertions are on what a user sees:
//! exit codes, stdout, stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fieldsync::access::Role;
use fieldsync_server::local::LocalServer;
use tempfile::TempDir;

/// Thôn 1 of Xã Phúc Đồng, Huyện Hương Khê.
/// The Vietnamese name of `road_km`, as `show` prints it.
const ROAD_NAME: &str = "Đường giao thông nông thôn xây dựng, nâng cấp";
const V: &str = "ha-tinh.huong-khe.phuc-dong.thon-1";
const PLACE: &str = "Thôn 1, Xã Phúc Đồng, Huyện Hương Khê";
const COMMUNE: &str = "ha-tinh.huong-khe.phuc-dong";
const DISTRICT: &str = "ha-tinh.huong-khe";
const AN: &str = "Nguyễn Văn An";
const BINH: &str = "Trần Thị Bình";
const GIAM: &str = "Trần Văn Giám";
const HUYEN: &str = "Lê Thị Huyền";

/// The token of the `admin` user every test server starts with.
const ADMIN_TOKEN: &str = "cli-test-admin-token-0123456789";

/// An in-process server.
struct Server {
    addr: SocketAddr,
    local: LocalServer,
}

impl Server {
    /// Serves the store in `dir` (demo catalogue and user `admin` with
    /// [`ADMIN_TOKEN`] if empty) on `addr` (`127.0.0.1:0` for any free port).
    async fn start(dir: &Path, addr: &str) -> Server {
        let local = LocalServer::start(dir, addr, ADMIN_TOKEN).await.expect("start server");
        let addr = local.url.trim_start_matches("http://").parse().expect("server address");
        Server { addr, local }
    }

    fn url(&self) -> String {
        self.local.url.clone()
    }

    /// Creates a user straight in the store and returns a token for it.
    fn user(&self, id: &str, name: &str, role: Role, areas: &[&str]) -> String {
        self.local.user(id, name, role, areas).expect("create user")
    }

    /// A surveyor of Xã Phúc Đồng.
    fn surveyor(&self, id: &str, name: &str) -> String {
        self.user(id, name, Role::Surveyor, &[COMMUNE])
    }

    /// Shuts down gracefully and waits until sled's lock on the directory is gone.
    async fn stop(self) {
        self.local.stop().await.expect("server ran cleanly");
    }
}

/// What one run of the binary showed.
#[derive(Debug)]
struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A working directory with tablet homes in it (`--home tablet-a` etc.).
struct Desk {
    dir: TempDir,
}

impl Desk {
    fn new() -> Desk {
        Desk { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Runs `fieldsync --home HOME ARGS..` in this directory, off the runtime's
    /// workers so that the in-process server keeps serving.
    async fn run(&self, home: &str, args: &[&str]) -> Run {
        let cwd = self.path();
        let mut argv = vec!["--home".to_owned(), home.to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
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
                success: out.status.success(),
                code: out.status.code(),
                stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
                stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
            }
        })
        .await
        .expect("run task")
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, home: &str, args: &[&str]) -> String {
        let run = self.run(home, args).await;
        assert!(
            run.success,
            "`fieldsync --home {home} {}` failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// Runs an online command (`review ...`, `admin ...`) with `--server`
    /// and `--token` given; `home` need not be a tablet.
    async fn run_as(&self, home: &str, url: &str, token: &str, args: &[&str]) -> Run {
        let mut argv = args.to_vec();
        argv.extend(["--server", url, "--token", token]);
        self.run(home, &argv).await
    }

    /// [`Desk::run_as`] that must succeed; returns its stdout.
    async fn ok_as(&self, url: &str, token: &str, args: &[&str]) -> String {
        let run = self.run_as("office", url, token, args).await;
        assert!(
            run.success,
            "`fieldsync {}` failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// [`Desk::run_as`] that must fail with one plain `error:`; returns its stderr.
    async fn fails_as(&self, url: &str, token: &str, args: &[&str]) -> String {
        let run = self.run_as("office", url, token, args).await;
        Self::failed(&args.join(" "), run)
    }

    /// Runs a command that must fail with exit code 1 and an `error:` line;
    /// returns its stderr.
    async fn fails(&self, home: &str, args: &[&str]) -> String {
        let run = self.run(home, args).await;
        Self::failed(&format!("--home {home} {}", args.join(" ")), run)
    }

    fn failed(command: &str, run: Run) -> String {
        assert_eq!(
            run.code,
            Some(1),
            "`fieldsync {command}` should fail:\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.starts_with("error: "),
            "the failure should be one plain `error:` message, got {:?}",
            run.stderr
        );
        assert!(
            run.stdout.is_empty(),
            "a failed command should print nothing on stdout, got {:?}",
            run.stdout
        );
        run.stderr
    }
}

/// The lines of `text` that contain every one of `needles`.
fn lines_with<'a>(text: &'a str, needles: &[&str]) -> Vec<&'a str> {
    text.lines().filter(|l| needles.iter().all(|n| l.contains(n))).collect()
}

/// The single line of `text` containing every one of `needles`.
fn line_with<'a>(text: &'a str, needles: &[&str]) -> &'a str {
    let found = lines_with(text, needles);
    assert_eq!(found.len(), 1, "expected exactly one line with {needles:?} in:\n{text}");
    found[0]
}

/// Splits a table line into its cells (columns are separated by two or more
/// spaces; single spaces belong to a cell).
fn cells(line: &str) -> Vec<String> {
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// Checks that every cell of a table starts in the column (counted in
/// characters, as a terminal shows them) of one of the headers. Cells are
/// separated by at least two spaces.
fn assert_aligned(table: &[&str], headers: &[&str]) {
    let header = table[0];
    let starts: Vec<usize> = headers
        .iter()
        .map(|h| {
            let byte = header.find(h).unwrap_or_else(|| panic!("no {h:?} in {header:?}"));
            header[..byte].chars().count()
        })
        .collect();
    for row in table {
        let chars: Vec<char> = row.chars().collect();
        for i in 0..chars.len() {
            let starts_cell = chars[i] != ' '
                && (i == 0 || (i >= 2 && chars[i - 1] == ' ' && chars[i - 2] == ' '));
            assert!(
                !starts_cell || starts.contains(&i),
                "a cell starts at column {i}, under no header, in row {row:?}\n{}",
                table.join("\n")
            );
        }
    }
}

/// The candidate lines of the conflicts printed by `show`/`status`: the
/// value, the author, and whether it is the one shown until settled.
fn candidates(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .filter(|l| l.contains(" by ") && l.contains("(tablet "))
        .map(|l| {
            let (value, rest) = l.trim_start().split_once(" by ").expect("by");
            let author = rest.split(" (tablet ").next().expect("author");
            (value.trim().to_owned(), author.to_owned(), l.contains("← shown until settled"))
        })
        .collect()
}

/// The value cell of `field` in the table printed by `show`.
fn shown_value(show: &str, field: &str) -> String {
    let line = show
        .lines()
        .find(|l| l.split_whitespace().next() == Some(field))
        .unwrap_or_else(|| panic!("no {field} row in:\n{show}"));
    cells(line)[1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_two_tablets_one_conflict() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    let binh = server.surveyor("binh.tran", BINH);

    // Set up both tablets.
    let out = desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    assert!(out.contains(&format!("ready for {AN}")), "{out}");
    assert!(out.contains("13 indicators"), "{out}");
    assert!(out.contains(&format!("server {url}")), "{out}");
    let out = desk.ok("tablet-b", &["init", "--server", &url, "--token", &binh]).await;
    assert!(out.contains(&format!("ready for {BINH}")), "{out}");
    assert!(desk.path().join("tablet-a").is_dir());
    assert!(desk.path().join("tablet-b").is_dir());

    // Initialising twice is refused and keeps the tablet.
    let err = desk.fails("tablet-a", &["init", "--server", &url, "--token", &binh]).await;
    assert!(err.contains("already initialised"), "{err}");
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains(&format!("({AN})")), "still An's tablet:\n{out}");

    // A wrong token is refused in words, and sets nothing up.
    let err =
        desk.fails("tablet-x", &["init", "--server", &url, "--token", "fs_not-a-token"]).await;
    assert!(err.contains("unknown or revoked token") && err.contains("check the token"), "{err}");
    let err = desk.fails("tablet-x", &["status"]).await;
    assert!(err.contains("not set up yet"), "{err}");

    // Find the village ids (by id here: the README's `villages "phúc đồng"`
    // is checked on its own in `villages_filter_of_the_readme_finds_village_ids`).
    let out = desk.ok("tablet-a", &["villages", "phuc-dong"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(cells(lines[0]), ["id", "level", "name"], "{out}");
    let row = line_with(&out, &[V]);
    assert_eq!(cells(row), [V, "village", PLACE], "{out}");
    let commune = line_with(&out, &[&format!("{COMMUNE}  ")]);
    assert_eq!(cells(commune), [COMMUNE, "commune", "Xã Phúc Đồng, Huyện Hương Khê"], "{out}");
    assert_eq!(lines.len(), 5, "the commune and its 3 villages:\n{out}");
    assert_aligned(&lines, &["id", "level", "name"]);

    // What can be recorded.
    let out = desk.ok("tablet-a", &["indicators"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_aligned(&lines, &["code", "unit", "of which", "name"]);
    let row = cells(line_with(&out, &["road_cement_km"]));
    assert_eq!(
        row,
        ["road_cement_km", "km", "part of road_km", "Trong đó: theo cơ chế hỗ trợ xi măng"]
    );
    let row = cells(line_with(&out, &["village_cultural_house"]));
    assert_eq!(row, ["village_cultural_house", "count", "Nhà văn hóa thôn"]);

    // Both tablets offline, both recording Thôn 1 of Phúc Đồng for 2022.
    let out = desk
        .ok(
            "tablet-a",
            &[
                "record",
                V,
                "2022",
                "road_km=1.25",
                "village_cultural_house=1",
                "--note",
                "đường bê tông",
            ],
        )
        .await;
    assert_eq!(out.trim_end(), format!("recorded 3 edit(s) for {PLACE} (2022); 3 waiting to sync"));
    let out = desk
        .ok("tablet-b", &["record", V, "2022", "drainage_km=0.4", "village_cultural_house=2"])
        .await;
    assert_eq!(out.trim_end(), format!("recorded 2 edit(s) for {PLACE} (2022); 2 waiting to sync"));

    // Offline, each tablet shows its own edits as pending.
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   3 edit(s) not yet synced"), "{out}");
    assert!(out.contains("synced    never"), "{out}");
    assert!(out.contains(&format!("({AN})")), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert_eq!(out.lines().next(), Some(&*format!("{PLACE} — 2022")), "{out}");
    assert_eq!(out.lines().nth(1), Some("state: not yet synced"), "{out}");
    assert_eq!(shown_value(&out, "road_km"), "1.25 km", "{out}");
    assert!(line_with(&out, &["road_km"]).contains("pending sync"), "{out}");
    assert!(lines_with(&out, &["drainage_km"]).is_empty(), "{out}");

    // Back at the commune office.
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(
        out.contains("pushed 3 edit(s): 3 applied, 0 unchanged, 0 in conflict, 0 refused; pulled"),
        "{out}"
    );
    let out = desk.ok("tablet-b", &["sync"]).await;
    assert!(
        out.contains("pushed 2 edit(s): 1 applied, 0 unchanged, 1 in conflict, 0 refused"),
        "{out}"
    );
    assert!(out.contains("see `fieldsync status`"), "{out}");
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(out.starts_with("pushed 0 edit(s)"), "{out}");

    // Both tablets now show the same merged report, in conflict on the house count.
    let mut house = Vec::new();
    for tablet in ["tablet-a", "tablet-b"] {
        let out = desk.ok(tablet, &["show", V, "2022"]).await;
        assert_eq!(out.lines().next(), Some(&*format!("{PLACE} — 2022")), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        // Tablet A sent the report first: the server has it as submitted by An.
        assert!(lines[1].starts_with(&format!("state: submitted ({AN}, ")), "{out}");
        assert!(lines[1].ends_with(" UTC+7)"), "{out}");
        let table: Vec<&str> =
            lines[2..].iter().copied().take_while(|l| !l.starts_with("  ")).collect();
        assert_eq!(table.len(), 5, "header and 4 fields:\n{out}");
        assert_aligned(&table, &["field", "value", "state", "last synced author", "name"]);
        assert_eq!(shown_value(&out, "road_km"), "1.25 km", "{tablet}:\n{out}");
        assert_eq!(shown_value(&out, "drainage_km"), "0.4 km", "{tablet}:\n{out}");
        assert_eq!(
            cells(line_with(&out, &["road_km"])),
            ["road_km", "1.25 km", "synced", AN, ROAD_NAME],
            "{tablet}:\n{out}"
        );
        assert_eq!(
            cells(line_with(&out, &["drainage_km"])),
            ["drainage_km", "0.4 km", "synced", BINH, "Rãnh thoát nước"],
            "{tablet}:\n{out}"
        );
        assert!(line_with(&out, &["note"]).contains("đường bê tông"), "{tablet}:\n{out}");
        let row = cells(line_with(&out, &["village_cultural_house  "]));
        assert_eq!(row[2], "in conflict", "{tablet}:\n{out}");
        // The conflict is printed under the table with both values and authors.
        let heading = [PLACE, "(2022) village_cultural_house (Nhà văn hóa thôn): was empty, now"];
        let heading = line_with(&out, &heading);
        assert!(heading.starts_with("  "), "{heading:?}");
        let mut cands = candidates(&out);
        cands.sort();
        assert_eq!(cands.len(), 2, "{tablet}:\n{out}");
        assert_eq!((&*cands[0].0, &*cands[0].1), ("1", AN), "{tablet}:\n{out}");
        assert_eq!((&*cands[1].0, &*cands[1].1), ("2", BINH), "{tablet}:\n{out}");
        // The value shown is the one marked "shown until settled".
        let shown: Vec<_> = cands.iter().filter(|c| c.2).collect();
        assert_eq!(shown.len(), 1, "{tablet}:\n{out}");
        assert_eq!(row[1], shown[0].0, "{tablet}:\n{out}");
        assert_eq!(row[3], shown[0].1, "{tablet}:\n{out}");
        house.push(row[1].clone());
    }
    assert_eq!(house[0], house[1], "both tablets show the same house count");

    // `status` on both: nothing pending, the conflict with both values and authors.
    for (tablet, me) in [("tablet-a", AN), ("tablet-b", BINH)] {
        let out = desk.ok(tablet, &["status"]).await;
        assert!(out.contains("pending   0 edit(s) not yet synced"), "{tablet}:\n{out}");
        assert!(line_with(&out, &["synced    "]).ends_with(" UTC+7"), "{tablet}:\n{out}");
        assert!(!out.contains("never"), "{tablet}:\n{out}");
        assert!(out.contains("conflicts 1 touching this tablet"), "{tablet}:\n{out}");
        assert!(!out.contains("refused"), "{tablet}:\n{out}");
        line_with(&out, &[PLACE, "(2022) village_cultural_house"]);
        let mut cands = candidates(&out);
        cands.sort();
        assert_eq!(cands.len(), 2, "{tablet}:\n{out}");
        assert_eq!((&*cands[0].0, &*cands[0].1), ("1", AN), "{tablet}:\n{out}");
        assert_eq!((&*cands[1].0, &*cands[1].1), ("2", BINH), "{tablet}:\n{out}");
        // "this one" marks this tablet's own candidate, and only that.
        let mine = line_with(&out, &[", this one"]);
        assert!(mine.contains(&format!("by {me} (tablet ")), "{tablet}:\n{out}");
        // The candidate lines line up on the author.
        let at: Vec<usize> = lines_with(&out, &[" by ", "(tablet "])
            .iter()
            .map(|l| l[..l.find(" by ").expect("by")].chars().count())
            .collect();
        assert!(at.windows(2).all(|w| w[0] == w[1]), "{tablet}:\n{out}");
    }

    // `list`: one report row on each tablet.
    for tablet in ["tablet-a", "tablet-b"] {
        let out = desk.ok(tablet, &["list"]).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "a header and one report:\n{out}");
        let headers = ["village", "period", "place", "fields", "pending", "conflicts"];
        assert_eq!(cells(lines[0]), headers, "{out}");
        assert_aligned(&lines, &headers);
        assert_eq!(cells(lines[1]), [V, "2022", PLACE, "4", "0", "1"], "{tablet}:\n{out}");
        let out = desk.ok(tablet, &["list", "--period", "2023"]).await;
        assert!(out.starts_with("no reports on this tablet yet"), "{out}");
    }

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn villages_filter_of_the_readme_finds_village_ids() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    server.stop().await;

    let out = desk.ok("tablet-a", &["villages", "phúc đồng"]).await;
    let row = line_with(&out, &[V]);
    assert_eq!(cells(row), [V, "village", PLACE], "{out}");
    assert_eq!(out.lines().count(), 5, "the commune and its 3 villages:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_offline_and_stores_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    // Everything below is offline.
    server.stop().await;

    let cases: &[(&[&str], &[&str])] = &[
        (&["road_km=-1"], &["road_km=-1: cannot be negative"]),
        (&["village_cultural_house=1.5"], &["counted in whole numbers", "1.5"]),
        (&["road_km=1.234,5"], &["road_km=1.234,5", "without thousands separators"]),
        (&["road_km=1,2,5"], &["at most one decimal mark"]),
        (&["road_km=mười"], &["type a number, e.g. 12 or 1,5"]),
        (&["road_km="], &["road_km= has no value", "fieldsync delete"]),
        (&["road_km=1.255"], &["at most 2 digit(s)"]),
        (&["road_km=500"], &["more than one village can report"]),
        (&["roads_km=1"], &["unknown indicator \"roads_km\""]),
        (&["road_km"], &["not indicator=value"]),
        (
            &["road_km=1", "road_cement_km=2"],
            &["road_cement_km = 2 km is more than its whole road_km = 1 km"],
        ),
        // All or none: the good edit before the bad one is not stored either.
        (
            &["drainage_km=0.4", "village_cultural_house=-2"],
            &["village_cultural_house=-2: cannot be negative"],
        ),
    ];
    for (values, says) in cases {
        let mut args = vec!["record", V, "2022"];
        args.extend_from_slice(values);
        let err = desk.fails("tablet-a", &args).await;
        for s in *says {
            assert!(err.contains(s), "{values:?}: expected {s:?} in {err:?}");
        }
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    }

    // A commune is not a village.
    let err = desk.fails("tablet-a", &["record", COMMUNE, "2022", "road_km=1"]).await;
    assert!(err.contains("is a commune, not a village") && err.contains("Xã Phúc Đồng"), "{err}");
    let err = desk
        .fails("tablet-a", &["record", "ha-tinh.huong-khe.phuc-dong.thon-9", "2022", "road_km=1"])
        .await;
    assert!(err.contains("is not one of the villages this tablet records for"), "{err}");
    assert!(err.contains("did you mean ha-tinh.huong-khe.phuc-dong.thon-"), "{err}");
    assert!(err.contains("`fieldsync villages` lists them"), "{err}");
    // One letter off: the village meant.
    let typo = V.replacen("phuc", "phux", 1);
    let err = desk.fails("tablet-a", &["record", &typo, "2022", "road_km=1"]).await;
    assert!(err.contains(&format!("did you mean {V}")), "{err}");
    let err = desk.fails("tablet-a", &["record", V, "22", "road_km=1"]).await;
    assert!(err.contains("unknown period \"22\""), "{err}");
    let err = desk.fails("tablet-a", &["record", V, "2022"]).await;
    assert!(err.contains("nothing to record"), "{err}");
    let err = desk.fails("tablet-a", &["show", COMMUNE, "2022"]).await;
    assert!(err.contains("not a village"), "{err}");

    // Nothing was stored.
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   0 edit(s) not yet synced"), "{out}");
    let out = desk.ok("tablet-a", &["list"]).await;
    assert!(out.starts_with("no reports on this tablet yet"), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert!(out.contains("nothing recorded yet"), "{out}");

    // A good record still works offline afterwards, with decimals typed
    // either way.
    let out =
        desk.ok("tablet-a", &["record", V, "2022", "road_km=1,25", "road_cement_km=0.5"]).await;
    assert!(out.contains("2 waiting to sync"), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert!(shown_value(&out, "road_km").starts_with("1.25"), "{out}");

    // An uninitialised home says to run `fieldsync init`, whatever the command.
    let commands: &[&[&str]] = &[
        &["status"],
        &["list"],
        &["sync"],
        &["indicators"],
        &["villages"],
        &["show", V, "2022"],
        &["record", V, "2022", "road_km=1"],
        &["delete", V, "2022", "road_km"],
    ];
    for args in commands {
        let err = desk.fails("tablet-typo", args).await;
        assert!(
            err.contains("not set up yet") && err.contains("run `fieldsync init"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_without_server_keeps_edits_until_it_is_back() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let addr = server.addr;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    let binh = server.surveyor("binh.tran", BINH);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    desk.ok("tablet-b", &["init", "--server", &url, "--token", &binh]).await;
    server.stop().await;

    // In the field: record, then try to sync with no server.
    desk.ok("tablet-a", &["record", V, "2022", "road_km=1.25", "playground=3"]).await;
    let started = std::time::Instant::now();
    let err = desk.fails("tablet-a", &["sync"]).await;
    assert!(err.contains("cannot reach the server"), "{err}");
    assert!(err.contains(&url), "names the server: {err}");
    assert_eq!(err.lines().count(), 1, "one plain line: {err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gives up in reasonable time, took {:?}",
        started.elapsed()
    );
    // `init` against a server that is down says so too.
    let err = desk.fails("tablet-c", &["init", "--server", &url, "--token", &binh]).await;
    assert!(err.contains("cannot reach the server"), "{err}");

    // The edits are kept.
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   2 edit(s) not yet synced"), "{out}");
    assert!(out.contains("synced    never"), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert_eq!(shown_value(&out, "road_km"), "1.25 km", "{out}");
    assert!(line_with(&out, &["road_km"]).contains("pending sync"), "{out}");

    // The server comes back on the same address and data.
    let server = Server::start(data.path(), &addr.to_string()).await;
    assert_eq!(server.addr, addr);
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(
        out.contains("pushed 2 edit(s): 2 applied, 0 unchanged, 0 in conflict, 0 refused"),
        "{out}"
    );
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   0 edit(s) not yet synced"), "{out}");
    assert!(!out.contains("never"), "{out}");

    // The edits arrived: another tablet pulls them.
    let out = desk.ok("tablet-b", &["sync"]).await;
    assert!(out.starts_with("pushed 0 edit(s)"), "{out}");
    let out = desk.ok("tablet-b", &["show", V, "2022"]).await;
    let road = ["road_km", "1.25 km", "synced", AN, ROAD_NAME];
    assert_eq!(cells(line_with(&out, &["road_km"])), road, "{out}");
    assert_eq!(shown_value(&out, "playground"), "3", "{out}");

    // ...and survive another restart of the server.
    server.stop().await;
    let server = Server::start(data.path(), &addr.to_string()).await;
    let cuong = server.surveyor("cuong.le", "Lê Văn Cường");
    let out = desk.ok("tablet-c", &["init", "--server", &url, "--token", &cuong]).await;
    assert!(out.contains("ready for Lê Văn Cường"), "{out}");
    desk.ok("tablet-c", &["sync"]).await;
    let out = desk.ok("tablet-c", &["list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(cells(lines[1]), [V, "2022", PLACE, "2", "0", "0"], "{out}");
    server.stop().await;
}

/// The one-line token `admin token issue` printed on stdout.
async fn issue_token(desk: &Desk, url: &str, user: &str) -> String {
    let run = desk
        .run_as("office", url, ADMIN_TOKEN, &["admin", "token", "issue", user, "--label", "cli"])
        .await;
    assert!(run.success, "token issue failed:\n{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "only the token on stdout: {:?}", run.stdout);
    let token = run.stdout.trim().to_owned();
    assert!(token.starts_with("fs_") && token.len() > 40, "{token:?}");
    assert!(run.stderr.contains(&format!("for {user}")), "{}", run.stderr);
    assert!(run.stderr.contains("shown this once"), "{}", run.stderr);
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_cycle_through_the_cli() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();

    // Without a token and without a tablet, online commands say what to do.
    let err = desk.fails("office", &["review", "list", "--server", &url]).await;
    assert!(err.contains("no token") && err.contains("--token"), "{err}");

    // The admin sets up a surveyor and two supervisors, with tokens.
    let out = desk
        .ok_as(
            &url,
            ADMIN_TOKEN,
            &[
                "admin",
                "user",
                "add",
                "an.nguyen",
                "--name",
                AN,
                "--role",
                "surveyor",
                "--area",
                COMMUNE,
            ],
        )
        .await;
    assert_eq!(
        out.trim_end(),
        format!(
            "created an.nguyen ({AN}), surveyor over Xã Phúc Đồng, Huyện Hương Khê ({COMMUNE}); \
             issue a token with `fieldsync admin token issue an.nguyen`"
        )
    );
    let giam_args = [
        "admin",
        "user",
        "add",
        "giam.tran",
        "--name",
        GIAM,
        "--role",
        "supervisor",
        "--area",
        COMMUNE,
    ];
    desk.ok_as(&url, ADMIN_TOKEN, &giam_args).await;
    let err = desk.fails_as(&url, ADMIN_TOKEN, &giam_args).await;
    assert!(err.contains("giam.tran exists already"), "{err}");
    desk.ok_as(
        &url,
        ADMIN_TOKEN,
        &[
            "admin",
            "user",
            "add",
            "huyen.le",
            "--name",
            HUYEN,
            "--role",
            "supervisor",
            "--area",
            DISTRICT,
        ],
    )
    .await;
    let out = desk.ok_as(&url, ADMIN_TOKEN, &["admin", "user", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    let headers = ["id", "name", "role", "areas", "status"];
    assert_eq!(cells(lines[0]), headers, "{out}");
    assert_aligned(&lines, &headers);
    assert_eq!(
        cells(line_with(&out, &["an.nguyen"])),
        ["an.nguyen", AN, "surveyor", COMMUNE, "enabled"]
    );
    assert_eq!(
        cells(line_with(&out, &["huyen.le"])),
        ["huyen.le", HUYEN, "supervisor", DISTRICT, "enabled"]
    );
    assert_eq!(lines.len(), 5, "admin and the three new users:\n{out}");
    let an = issue_token(&desk, &url, "an.nguyen").await;
    let giam = issue_token(&desk, &url, "giam.tran").await;
    let huyen = issue_token(&desk, &url, "huyen.le").await;
    let out = desk.ok_as(&url, ADMIN_TOKEN, &["admin", "token", "list", "an.nguyen"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let row = cells(lines[1]);
    assert_eq!(
        (&*row[1], &*row[2], &*row[4], &*row[5]),
        ("an.nguyen", "cli", "never", "live"),
        "{out}"
    );
    assert!(!out.contains(&an), "the token itself is never listed");
    // Only admins administer.
    let err = desk.fails_as(&url, &giam, &["admin", "user", "list"]).await;
    assert!(err.contains("permission denied") && err.contains("admin"), "{err}");
    assert!(!desk.path().join("office").exists(), "online commands create no tablet");

    // The surveyor records and syncs.
    let out = desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    assert!(out.contains(&format!("ready for {AN}")), "{out}");
    desk.ok("tablet-a", &["record", V, "2022", "road_km=2.5", "village_cultural_house=1"]).await;
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(out.starts_with("pushed 2 edit(s): 2 applied"), "{out}");

    // The commune supervisor lists and rejects it.
    let out = desk.ok_as(&url, &giam, &["review", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    let headers = ["village", "place", "period", "state", "fields", "conflicts", "by", "reason"];
    assert_eq!(cells(lines[0]), headers, "{out}");
    assert_aligned(&lines, &headers);
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(cells(lines[1]), [V, PLACE, "2022", "submitted", "2", "0", AN], "{out}");
    let out = desk.ok_as(&url, &giam, &["review", "list", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("review list --json");
    assert_eq!(json[0]["village_id"], V, "{out}");
    assert_eq!(json[0]["place"], PLACE, "{out}");
    assert_eq!(json[0]["state"], "submitted", "{out}");
    assert_eq!(json[0]["fields"], 2, "{out}");
    assert_eq!(json[0]["open_conflicts"], 0, "{out}");
    let out = desk.ok_as(&url, &giam, &["review", "list", "--state", "approved"]).await;
    assert!(out.starts_with("no reports match"), "{out}");
    // A surveyor may read, not review (the token comes from the tablet).
    let out = desk.ok("tablet-a", &["review", "list"]).await;
    assert!(out.contains("submitted"), "{out}");
    let err = desk.fails("tablet-a", &["review", "approve", V, "2022"]).await;
    assert!(err.contains("permission denied: a surveyor may not review"), "{err}");

    let reason = "road km double-counted in thôn 3";
    let out = desk.ok_as(&url, &giam, &["review", "reject", V, "2022", "--reason", reason]).await;
    assert_eq!(
        out.trim_end(),
        format!("rejected {PLACE} (2022): {reason}; the surveyor sees this at their next sync")
    );
    let err = desk.fails_as(&url, &giam, &["review", "approve", V, "2022"]).await;
    assert!(err.contains("the surveyor must resubmit"), "{err}");
    let err = desk
        .fails_as(&url, &giam, &["review", "approve", "ha-tinh.huong-khe.phuc-dong.thon-2", "2022"])
        .await;
    assert!(
        err.contains("nothing recorded for ha-tinh.huong-khe.phuc-dong.thon-2 in 2022"),
        "{err}"
    );

    // The surveyor learns it at the next sync.
    desk.ok("tablet-a", &["sync"]).await;
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("reviews   1 decision(s) by supervisors:"), "{out}");
    let line = line_with(&out, &[&format!("rejected: {reason}")]);
    assert!(line.contains(&format!("{PLACE} (2022)")) && line.contains(GIAM), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    let state = out.lines().nth(1).expect("state line");
    assert!(state.starts_with(&format!("state: rejected — {reason} ({GIAM}, ")), "{out}");

    // The surveyor corrects it: submitted again.
    desk.ok("tablet-a", &["record", V, "2022", "road_km=1.5"]).await;
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(out.starts_with("pushed 1 edit(s): 1 applied"), "{out}");
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(!out.contains("rejected"), "no decision stands now:\n{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert!(
        out.lines().nth(1).expect("state").starts_with(&format!("state: submitted ({AN}, ")),
        "{out}"
    );
    let out = desk.ok_as(&url, &giam, &["review", "show", V, "2022"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{PLACE} — 2022 ({V})"), "{out}");
    assert!(lines[1].starts_with(&format!("state: submitted ({AN}, ")), "{out}");
    let headers = ["field", "value", "unit", "by", "tablet", "received", "conflict", "name"];
    assert_eq!(cells(lines[2]), headers, "{out}");
    assert_aligned(&lines[2..], &headers);
    let road = cells(line_with(&out, &["road_km"]));
    assert_eq!(&road[..4], ["road_km", "1.5", "km", AN], "{out}");
    assert!(road[5].ends_with(" UTC+7"), "{out}");
    let house = cells(line_with(&out, &["village_cultural_house"]));
    assert_eq!(&house[..4], ["village_cultural_house", "1", "count", AN], "{out}");

    // Each level does its own step: the commune approves, the district accepts.
    let err = desk.fails_as(&url, &huyen, &["review", "approve", V, "2022"]).await;
    assert!(err.contains("approval is the commune's step"), "{err}");
    let err = desk.fails_as(&url, &giam, &["review", "accept", V, "2022"]).await;
    assert!(err.contains("accepting is the district's step"), "{err}");
    let out = desk
        .ok_as(&url, &giam, &["review", "approve", "--area", COMMUNE, "--period", "2022"])
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("approved 1 report(s) in Xã Phúc Đồng, Huyện Hương Khê ({COMMUNE}) for 2022:"),
        "{out}"
    );
    assert_eq!(cells(line_with(&out, &[V])), [V, PLACE], "{out}");
    let out = desk
        .ok_as(&url, &giam, &["review", "approve", "--area", COMMUNE, "--period", "2022"])
        .await;
    assert!(out.starts_with("nothing to approve: no submitted reports"), "{out}");
    let out = desk.ok_as(&url, &huyen, &["review", "accept", V, "2022"]).await;
    assert_eq!(out.trim_end(), format!("accepted {PLACE} (2022); it is final and locked"));

    // A later edit is refused, with the reason, and kept on the tablet.
    desk.ok("tablet-a", &["record", V, "2022", "road_km=1.6"]).await;
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(
        out.starts_with("pushed 1 edit(s): 0 applied, 0 unchanged, 0 in conflict, 1 refused"),
        "{out}"
    );
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("refused   1 edit(s) the server did not accept:"), "{out}");
    let refused = line_with(&out, &["road_km=1.6"]);
    assert!(refused.contains("accepted by the district and locked"), "{out}");
    assert!(refused.contains("reopen"), "says what to do: {out}");
    let accepted = line_with(&out, &[&format!("{PLACE} (2022) accepted")]);
    assert!(accepted.contains(HUYEN), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert!(
        out.lines().nth(1).expect("state").starts_with(&format!("state: accepted ({HUYEN}, ")),
        "{out}"
    );
    let road = ["road_km", "1.5 km", "synced", AN, ROAD_NAME];
    assert_eq!(cells(line_with(&out, &["road_km"])), road, "{out}");

    // The history of the report tells the whole story, oldest first.
    let out = desk.ok_as(&url, &giam, &["review", "history", V, "2022"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{PLACE} — 2022 ({V})"), "{out}");
    let headers = ["time", "user", "tablet", "what", "field", "change", "detail"];
    assert_eq!(cells(lines[1]), headers, "{out}");
    assert_aligned(&lines[1..], &headers);
    let story: Vec<usize> = [
        vec!["an.nguyen", "value", "road_km", "empty → 2.5 km"],
        vec!["giam.tran", "review", &format!("submitted → rejected: {reason}")],
        vec!["an.nguyen", "review", "rejected → submitted"],
        vec!["an.nguyen", "value", "road_km", "2.5 km → 1.5 km"],
        vec!["giam.tran", "review", "submitted → approved"],
        vec!["huyen.le", "review", "approved → accepted"],
        vec!["an.nguyen", "refused", "road_km", "locked"],
    ]
    .iter()
    .map(|needles| {
        let line = line_with(&out, needles);
        lines.iter().position(|l| *l == line).expect("line")
    })
    .collect();
    let mut sorted = story.clone();
    sorted.sort();
    // The resubmission is recorded as its edit is applied, so those two may swap.
    assert_eq!(story[0], sorted[0], "{out}");
    assert_eq!(&story[4..], &sorted[4..], "{out}");
    let out =
        desk.ok_as(&url, &giam, &["review", "history", V, "2022", "--json", "--limit", "2"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("history --json");
    let kinds: Vec<&str> =
        json.as_array().expect("array").iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["review", "refused"], "the two most recent:\n{out}");
    let out = desk.ok_as(&url, &giam, &["review", "history", "--user", "huyen.le"]).await;
    assert_eq!(out.lines().count(), 2, "one decision by the district:\n{out}");
    let out =
        desk.ok_as(&url, &giam, &["review", "history", V, "2022", "--until", "2000-01-01"]).await;
    assert_eq!(out.trim_end(), "no history matches");

    // A revoked token signs nobody in.
    let out =
        desk.ok_as(&url, ADMIN_TOKEN, &["admin", "token", "list", "huyen.le", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("token list --json");
    let id = json[0]["id"].as_str().expect("token id").to_owned();
    let out = desk.ok_as(&url, ADMIN_TOKEN, &["admin", "token", "revoke", &id]).await;
    assert!(out.starts_with(&format!("revoked token {id} of huyen.le")), "{out}");
    let err = desk.fails_as(&url, &huyen, &["review", "list"]).await;
    assert!(err.contains("unknown or revoked token") && err.contains("check the token"), "{err}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_settled_with_review_resolve_shows_on_both_tablets() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    let binh = server.surveyor("binh.tran", BINH);
    let giam = server.user("giam.tran", GIAM, Role::Supervisor, &[COMMUNE]);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    desk.ok("tablet-b", &["init", "--server", &url, "--token", &binh]).await;

    // Both tablets count the cultural houses of Thôn 1, differently.
    desk.ok("tablet-a", &["record", V, "2022", "village_cultural_house=1"]).await;
    desk.ok("tablet-b", &["record", V, "2022", "village_cultural_house=2"]).await;
    desk.ok("tablet-a", &["sync"]).await;
    let out = desk.ok("tablet-b", &["sync"]).await;
    assert!(out.contains("1 in conflict"), "{out}");
    desk.ok("tablet-a", &["sync"]).await;

    // The supervisor sees the conflict, numbered, and cannot approve over it.
    let out = desk.ok_as(&url, &giam, &["review", "conflicts"]).await;
    let heading =
        line_with(&out, &[PLACE, V, "2022, village_cultural_house: open; was empty, then"]);
    assert!(!heading.starts_with(' '), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let table: Vec<&str> = lines[1..4].to_vec();
    assert_eq!(cells(table[0]), ["pick", "value", "by", "tablet", "received"], "{out}");
    assert_aligned(&table, &["pick", "value", "by", "tablet", "received"]);
    let pick = cells(line_with(&out, &[BINH]));
    assert_eq!(pick[1], "2", "{out}");
    assert_eq!(cells(line_with(&out, &[AN]))[1], "1", "{out}");
    assert!(out.contains("fieldsync review resolve"), "says how to settle it:\n{out}");
    let out = desk.ok_as(&url, &giam, &["review", "show", V, "2022"]).await;
    let house = line_with(&out, &["village_cultural_house  "]);
    assert!(
        cells(house).ends_with(&["open".to_owned(), "Nhà văn hóa thôn".to_owned()]),
        "in conflict, named in Vietnamese:\n{out}"
    );
    let heading = ["conflict on village_cultural_house (Nhà văn hóa thôn): open"];
    assert!(line_with(&out, &heading).starts_with("conflict"));
    let current = line_with(&out, &["← current until settled"]);
    let shown =
        shown_value(&desk.ok("tablet-a", &["show", V, "2022"]).await, "village_cultural_house");
    assert_eq!(cells(current)[1], shown, "the server and the tablets agree on the current value");
    let err = desk.fails_as(&url, &giam, &["review", "approve", V, "2022"]).await;
    assert!(err.contains("1 open conflict(s)") && err.contains("settle"), "{err}");

    // It is settled for Bình's count.
    let out = desk
        .ok_as(
            &url,
            &giam,
            &[
                "review",
                "resolve",
                V,
                "2022",
                "village_cultural_house",
                "--pick",
                &pick[0],
                "--comment",
                "Bình counted the new house too",
            ],
        )
        .await;
    assert_eq!(
        out.trim_end(),
        format!(
            "settled village_cultural_house of {PLACE} (2022): 2 ({BINH}'s value); tablets get it \
             at their next sync"
        )
    );
    let err = desk
        .fails_as(
            &url,
            &giam,
            &["review", "resolve", V, "2022", "village_cultural_house", "--pick", "0"],
        )
        .await;
    assert!(err.contains("no open conflict on village_cultural_house"), "{err}");
    let out = desk.ok_as(&url, &giam, &["review", "conflicts"]).await;
    assert_eq!(out.trim_end(), "no open conflicts");
    let out = desk.ok_as(&url, &giam, &["review", "conflicts", "--all"]).await;
    assert!(out.contains(&format!("settled by {GIAM} at ")), "{out}");
    assert!(out.contains(": 2 — Bình counted the new house too"), "{out}");

    // Both tablets learn it at their next sync.
    for tablet in ["tablet-a", "tablet-b"] {
        desk.ok(tablet, &["sync"]).await;
        let out = desk.ok(tablet, &["status"]).await;
        assert!(out.contains("conflicts none touching this tablet"), "{tablet}:\n{out}");
        assert!(
            out.contains("settled   1 conflict(s) touching this tablet, by a supervisor:"),
            "{tablet}:\n{out}"
        );
        let line = line_with(
            &out,
            &[PLACE, "(2022) village_cultural_house (Nhà văn hóa thôn): conflict settled as 2"],
        );
        assert!(line.contains(&format!("by {GIAM} at ")), "{tablet}:\n{out}");
        assert!(line.ends_with(" — Bình counted the new house too"), "{tablet}:\n{out}");
        let out = desk.ok(tablet, &["show", V, "2022"]).await;
        assert_eq!(
            cells(line_with(&out, &["village_cultural_house  "])),
            ["village_cultural_house", "2", "synced", GIAM, "Nhà văn hóa thôn"],
            "{tablet}:\n{out}"
        );
        assert!(candidates(&out).is_empty(), "no open conflict shown:\n{out}");
        let line =
            line_with(&out, &["village_cultural_house (Nhà văn hóa thôn): conflict settled as 2"]);
        assert!(line.contains(GIAM), "{tablet}:\n{out}");
        let out = desk.ok(tablet, &["list"]).await;
        assert_eq!(
            cells(out.lines().nth(1).expect("row")),
            [V, "2022", PLACE, "1", "0", "0"],
            "{out}"
        );
    }

    // Now it can be approved.
    let out = desk.ok_as(&url, &giam, &["review", "approve", V, "2022"]).await;
    assert!(out.starts_with(&format!("approved {PLACE} (2022)")), "{out}");
    server.stop().await;
}

/// Copies a directory tree (a tablet's home, while no command runs on it).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The device id `status` prints ("tablet    ID (name)").
async fn device_of(desk: &Desk, home: &str) -> fieldsync::DeviceId {
    let out = desk.ok(home, &["status"]).await;
    let id = line_with(&out, &["tablet "]).split_whitespace().nth(1).expect("device id");
    id.parse().expect("a device id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_put_back_from_a_copy_of_its_store_loses_no_edit() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    let binh = server.surveyor("binh.tran", BINH);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    desk.ok("tablet-b", &["init", "--server", &url, "--token", &binh]).await;
    let device = device_of(&desk, "tablet-a").await;

    desk.ok("tablet-a", &["record", V, "2022", "road_km=1"]).await; // id 1
    desk.ok("tablet-a", &["sync"]).await;
    desk.ok("tablet-a", &["record", V, "2022", "road_km=2"]).await; // id 2, not sent yet
                                                                    // A copy of the tablet's store, holding edit 2 unsent.
    copy_dir(&desk.path().join("tablet-a"), &desk.path().join("copy"));
    desk.ok("tablet-a", &["sync"]).await;
    desk.ok("tablet-a", &["record", V, "2022", "playground=3"]).await; // id 3
    desk.ok("tablet-a", &["sync"]).await;
    desk.ok("tablet-a", &["record", V, "2022", "drainage_km=0.5"]).await; // id 4
    desk.ok("tablet-a", &["sync"]).await;
    // Every push acknowledged the results before it: the server has
    // released those of ids 1 to 3.

    // The copy is put back, and the surveyor records a new value: it gets
    // id 3 again, which the server committed for another edit.
    std::fs::remove_dir_all(desk.path().join("tablet-a")).expect("remove tablet");
    copy_dir(&desk.path().join("copy"), &desk.path().join("tablet-a"));
    desk.ok("tablet-a", &["record", V, "2022", "village_cultural_house=1"]).await;
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(out.contains("they now follow the server's last, 4, and are sent again"), "{out}");
    assert!(
        out.contains("pushed 2 edit(s): 2 applied, 0 unchanged, 0 in conflict, 0 refused"),
        "edit 2 (sent before) and the new one:\n{out}"
    );
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   0 edit(s) not yet synced"), "{out}");
    let out = desk.ok("tablet-a", &["show", V, "2022"]).await;
    assert_eq!(shown_value(&out, "village_cultural_house"), "1", "{out}");
    assert_eq!(shown_value(&out, "playground"), "3", "pulled back:\n{out}");

    // The new value reached the server, and every edit is there once.
    desk.ok("tablet-b", &["sync"]).await;
    let out = desk.ok("tablet-b", &["show", V, "2022"]).await;
    assert_eq!(shown_value(&out, "village_cultural_house"), "1", "{out}");
    assert_eq!(shown_value(&out, "road_km"), "2 km", "{out}");
    assert_eq!(shown_value(&out, "playground"), "3", "{out}");
    assert_eq!(shown_value(&out, "drainage_km"), "0.5 km", "{out}");
    let mut edits: Vec<(u64, String)> = server
        .local
        .store
        .audit_of(V, "2022".parse().expect("period"))
        .expect("audit")
        .into_iter()
        .filter(|e| e.device == Some(device))
        .map(|e| (e.mutation_id, e.field))
        .collect();
    edits.sort();
    assert_eq!(
        edits,
        [
            (1, "road_km".to_owned()),
            (2, "road_km".to_owned()),
            (3, "playground".to_owned()),
            (4, "drainage_km".to_owned()),
            (5, "village_cultural_house".to_owned()),
        ],
        "each edit applied once"
    );
    assert_eq!(server.local.store.device(device).expect("device").last_mutation_id, 5);
    server.stop().await;
}

/// A server that accepts connections and never answers on them.
fn black_hole(addr: SocketAddr) -> std::thread::JoinHandle<()> {
    let listener = std::net::TcpListener::bind(addr).expect("bind the black hole");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming() {
            match socket {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_sync_says_the_edits_are_kept() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let (addr, url) = (server.addr, server.url());
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    server.stop().await;
    let _hole = black_hole(addr);
    desk.ok("tablet-a", &["record", V, "2022", "road_km=1.25"]).await;

    // A sync waiting on a link that never answers, interrupted as a person would.
    let sync = Command::new(env!("CARGO_BIN_EXE_fieldsync"))
        .args(["--home", "tablet-a", "sync", "--timeout", "30s"])
        .current_dir(desk.path())
        .env_remove("FIELDSYNC_SERVER")
        .env_remove("FIELDSYNC_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start fieldsync sync");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let interrupt = Command::new("kill").args(["-INT", &sync.id().to_string()]).status();
    assert!(interrupt.expect("kill -INT").success());
    let out = tokio::task::spawn_blocking(move || sync.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("sync stopped (Ctrl-C)"), "{stderr}");
    assert!(last.contains("your 1 edit(s) are kept on this tablet"), "{stderr}");
    let status = desk.ok("tablet-a", &["status"]).await;
    assert!(status.contains("pending   1 edit(s) not yet synced"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_on_a_dead_link_says_so_at_each_retry_and_gives_up_in_time() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let (addr, url) = (server.addr, server.url());
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    server.stop().await;
    let _hole = black_hole(addr);

    desk.ok("tablet-a", &["record", V, "2022", "road_km=1.25", "playground=3"]).await;
    let started = std::time::Instant::now();
    let run = desk.run("tablet-a", &["sync", "--timeout", "1s", "--give-up-after", "8s"]).await;
    let took = started.elapsed();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(took < Duration::from_secs(40), "gives up in bounded time, took {took:?}");
    let retries = lines_with(&run.stderr, &["retrying in"]);
    assert!(!retries.is_empty(), "a line per retry:\n{}", run.stderr);
    for line in &retries {
        assert!(
            line.starts_with(&format!("no answer from {url}, retrying in "))
                && line.ends_with("; your 2 edit(s) are kept on this tablet"),
            "{line:?}"
        );
    }
    let last = run.stderr.lines().last().expect("an error line");
    assert!(
        last.starts_with(&format!("error: cannot reach the server at {url}: no answer")),
        "{last}"
    );
    assert!(last.contains("your 2 edit(s) are kept on this tablet"), "{last}");
    assert!(last.contains("run `fieldsync sync` again"), "{last}");
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   2 edit(s) not yet synced"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_with_a_revoked_token_takes_a_new_one_and_keeps_its_edits() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    server.surveyor("an.nguyen", AN);
    let binh = server.surveyor("binh.tran", BINH);
    let an = issue_token(&desk, &url, "an.nguyen").await;
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    let device = device_of(&desk, "tablet-a").await;
    desk.ok("tablet-a", &["record", V, "2022", "road_km=1"]).await;
    desk.ok("tablet-a", &["sync"]).await;
    desk.ok("tablet-a", &["record", V, "2022", "playground=3", "drainage_km=0.4"]).await;

    // The admin revokes An's tokens: the tablet's sync is refused.
    let out =
        desk.ok_as(&url, ADMIN_TOKEN, &["admin", "token", "list", "an.nguyen", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&out).expect("token list --json");
    for token in json.as_array().expect("tokens") {
        let id = token["id"].as_str().expect("token id");
        desk.ok_as(&url, ADMIN_TOKEN, &["admin", "token", "revoke", id]).await;
    }
    let err = desk.fails("tablet-a", &["sync"]).await;
    assert!(err.contains("unknown or revoked token"), "{err}");
    assert!(err.contains("fieldsync login --token"), "says what to do: {err}");

    // A token of another user is refused while An's edits wait, and changes nothing.
    let err = desk.fails("tablet-a", &["login", "--token", &binh]).await;
    assert!(err.contains(&format!("this token is {BINH}'s")), "{err}");
    assert!(err.contains("2 unsent edit(s)"), "{err}");
    // A bad token is refused too.
    let err = desk.fails("tablet-a", &["login", "--token", "fs_not-a-token"]).await;
    assert!(err.contains("unknown or revoked token"), "{err}");

    // An's new token: same tablet, same edits, and they sync.
    let new = issue_token(&desk, &url, "an.nguyen").await;
    let out = desk.ok("tablet-a", &["login", "--token", &new]).await;
    assert!(
        out.contains(&format!("tablet {device} now signs in with the new token of {AN}")),
        "{out}"
    );
    assert!(out.contains("2 edit(s) waiting to sync"), "{out}");
    let out = desk.ok("tablet-a", &["sync"]).await;
    assert!(out.contains("pushed 2 edit(s): 2 applied"), "{out}");
    assert_eq!(device_of(&desk, "tablet-a").await, device, "the same tablet id");
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains("pending   0 edit(s) not yet synced"), "{out}");
    assert!(out.contains(&format!("({AN})")), "{out}");
    assert_eq!(server.local.store.device(device).expect("device").last_mutation_id, 3);
    // With nothing unsent, another user's token is still refused: the tablet
    // id is An's on the server.
    let err = desk.fails("tablet-a", &["login", "--token", &binh]).await;
    assert!(err.contains("set up a tablet for") && err.contains("init --token"), "{err}");
    let out = desk.ok("tablet-a", &["status"]).await;
    assert!(out.contains(&format!("({AN})")), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_stored_text_reach_the_terminal_escaped() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let desk = Desk::new();
    let an = server.surveyor("an.nguyen", AN);
    let giam = server.user("giam.tran", GIAM, Role::Supervisor, &[COMMUNE]);
    desk.ok("tablet-a", &["init", "--server", &url, "--token", &an]).await;
    let note = "đường\u{1b}[2J\u{1b}[31mbê tông\nfake: line";
    desk.ok("tablet-a", &["record", V, "2022", "road_km=1", "--note", note]).await;
    desk.ok("tablet-a", &["sync"]).await;
    let reason = "sai số\u{1b}]0;owned\u{7}\r\nrejected: nothing";
    desk.ok_as(&url, &giam, &["review", "reject", V, "2022", "--reason", reason]).await;
    desk.ok("tablet-a", &["sync"]).await;

    let escaped_note = "đường\\u{1b}[2J\\u{1b}[31mbê tông\\nfake: line";
    let escaped_reason = "sai số\\u{1b}]0;owned\\u{7}\\r\\nrejected: nothing";
    let shown = [
        (
            "show",
            desk.ok("tablet-a", &["show", V, "2022"]).await,
            vec![escaped_note, escaped_reason],
        ),
        ("status", desk.ok("tablet-a", &["status"]).await, vec![escaped_reason]),
        (
            "review show",
            desk.ok_as(&url, &giam, &["review", "show", V, "2022"]).await,
            vec![escaped_note, escaped_reason],
        ),
        ("review list", desk.ok_as(&url, &giam, &["review", "list"]).await, vec![escaped_reason]),
        (
            "review history",
            desk.ok_as(&url, &giam, &["review", "history", V, "2022"]).await,
            vec![escaped_note],
        ),
    ];
    for (command, out, expected) in shown {
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "`{command}` printed a control character:\n{out:?}"
        );
        assert!(!out.contains("\nfake: line") && !out.contains("\nrejected: nothing"), "{out}");
        for text in expected {
            assert!(out.contains(text), "`{command}` shows {text:?}:\n{out}");
        }
    }
    server.stop().await;
}

/// An unsent-edits file as the surveyors' app exports it: `edits` of
/// `field=amount` for Thôn 1 in 2022, ids from 1, under `device`.
fn unsent_edits_file(user: &str, name: &str, device: &str, edits: &[(&str, &str)]) -> String {
    let hlc = fieldsync_client::now_ms() << 16;
    let mutations: Vec<serde_json::Value> = (1..)
        .zip(edits)
        .map(|(id, (field, amount))| {
            let mutation = fieldsync_proto::v1::Mutation {
                id,
                village_id: V.into(),
                period: "2022".into(),
                field: (*field).into(),
                value: Some(fieldsync_proto::v1::Value {
                    kind: Some(fieldsync_proto::v1::value::Kind::Amount((*amount).into())),
                }),
                base_version: 0,
                hlc: hlc + id,
                author: name.into(),
            };
            serde_json::to_value(&mutation).expect("proto3 JSON")
        })
        .collect();
    serde_json::json!({
        "format": "fieldsync-unsent-edits/1",
        "server": "http://127.0.0.1:8080",
        "userId": user,
        "userName": name,
        "deviceId": device,
        "exportedAtMs": fieldsync_client::now_ms().to_string(),
        "mutations": mutations,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_file_sends_a_phones_unsent_edits_once() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0").await;
    let url = server.url();
    let an = server.surveyor("an.nguyen", AN);
    let binh = server.surveyor("binh.tran", BINH);
    let desk = Desk::new();
    let device = uuid::Uuid::new_v4().to_string();
    let edits = [("road_km", "1.5"), ("drainage_km", "-2"), ("village_cultural_house", "2")];
    let file = unsent_edits_file("an.nguyen", AN, &device, &edits);
    std::fs::write(desk.path().join("unsent.json"), &file).unwrap();
    // The JSON is exactly the proto3 mapping: 64-bit numbers as strings.
    assert!(file.contains("\"id\":\"1\"") && file.contains("\"amount\":\"1.5\""), "{file}");

    let refused = desk.fails_as(&url, &binh, &["push-file", "unsent.json"]).await;
    assert!(refused.contains("an.nguyen") && refused.contains("nothing was sent"), "{refused}");

    let first = desk.ok_as(&url, &an, &["push-file", "unsent.json"]).await;
    assert!(first.contains("pushing 3 edit(s) of Nguyễn Văn An"), "{first}");
    assert!(first.contains(&device), "{first}");
    assert!(first.contains("2 applied, 0 unchanged, 0 in conflict, 1 refused"), "{first}");
    let refusal = line_with(&first, &["refused #2"]);
    assert!(refusal.contains("drainage_km") && refusal.contains(PLACE), "{refusal}");
    assert!(refusal.contains("negative"), "the server's reason: {refusal}");

    let store = &server.local.store;
    let value = |field: &str| {
        let key = fieldsync::FieldKey::parse(field);
        let at = fieldsync::sync::FieldRef::new(V, "2022".parse().unwrap(), key);
        let field = store.field(&at).unwrap();
        field.map(|f| (f.value.to_string(), f.stamp.device.to_string()))
    };
    assert_eq!(value("road_km"), Some(("1.5".into(), device.clone())), "under the phone's id");
    assert_eq!(value("village_cultural_house"), Some(("2".into(), device.clone())));
    assert_eq!(value("drainage_km"), None);

    let second = desk.ok_as(&url, &an, &["push-file", "unsent.json"]).await;
    assert!(second.contains("2 applied, 0 unchanged, 0 in conflict, 1 refused"), "{second}");
    assert!(second.contains("3 of them had reached the server before"), "{second}");
    let admin = server.local.store.user("admin").unwrap().unwrap();
    let query = fieldsync_server::db::HistoryQuery {
        user_id: Some("an.nguyen".into()),
        limit: 1000,
        ..Default::default()
    };
    let mut ids: Vec<u64> = store
        .history(&admin, &query)
        .unwrap()
        .into_iter()
        .filter(|e| e.device.is_some_and(|d| d.to_string() == device))
        .map(|e| e.mutation_id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3], "the audit holds each mutation once, the refused one too");
    assert_eq!(value("road_km"), Some(("1.5".into(), device.clone())));

    std::fs::write(desk.path().join("other.json"), r#"{"format":"fieldsync-unsent-edits/9"}"#)
        .unwrap();
    let newer = desk.fails_as(&url, &an, &["push-file", "other.json"]).await;
    assert!(newer.contains("other.json") && newer.contains("newer fieldsync"), "{newer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_enrolls_a_surveyors_phone_from_the_terminal() {
    let data = tempfile::tempdir().expect("tempdir");
    let local = LocalServer::start_with_web(data.path(), "127.0.0.1:0", "127.0.0.1:0", ADMIN_TOKEN)
        .await
        .expect("start server");
    let url = local.url.clone();
    let web = local.web_url.clone().expect("web pages");
    local.user("an.nguyen", AN, Role::Surveyor, &[COMMUNE]).expect("surveyor");
    let giam = local.user("giam.tran", GIAM, Role::Supervisor, &[COMMUNE]).expect("supervisor");
    let desk = Desk::new();

    let out = desk
        .ok_as(&url, &giam, &["admin", "token", "enroll", "an.nguyen", "--expires", "2h"])
        .await;
    let code_line = line_with(&out, &["enrollment code for", AN]);
    assert!(code_line.contains("works once"), "{out}");
    let code = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 11 && l.as_bytes()[5] == b'-')
        .unwrap_or_else(|| panic!("the code on a line of its own: {out}"))
        .to_owned();
    let link = format!("{web}/app/#enroll={code}");
    assert!(out.contains(&link), "the app's link with the code: {out}");
    assert!(out.contains('█') || out.contains('▀') || out.contains('▄'), "a QR code: {out}");
    assert!(out.contains("fieldsync admin token unenroll"), "{out}");

    let listed = desk.ok_as(&url, &giam, &["admin", "token", "enrollments"]).await;
    let row = line_with(&listed, &["an.nguyen", "giam.tran"]);
    let id = cells(row)[0].clone();
    let json = desk.ok_as(&url, &giam, &["admin", "token", "enrollments", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json[0]["id"], id.as_str());
    assert!(json[0].get("code").is_none(), "the code is shown only when made");
    assert!(!listed.contains(&code) && !listed.contains(&code.replace('-', "")));

    let out = desk.ok_as(&url, &giam, &["admin", "token", "unenroll", &id]).await;
    assert!(out.contains(&format!("revoked enrollment code {id} of an.nguyen")), "{out}");
    let listed = desk.ok_as(&url, &giam, &["admin", "token", "enrollments"]).await;
    assert!(listed.contains("no enrollment code waiting"), "{listed}");

    // Refusals say why: another commune's supervisor, a week and more.
    let hai = local.user("hai.le", "Lê Văn Hải", Role::Supervisor, &["ha-tinh.huong-khe.hoa-hai"]);
    let err =
        desk.fails_as(&url, &hai.expect("user"), &["admin", "token", "enroll", "an.nguyen"]).await;
    assert!(err.contains("not all within hai.le's areas"), "{err}");
    let err = desk
        .fails_as(&url, &giam, &["admin", "token", "enroll", "an.nguyen", "--expires", "8d"])
        .await;
    assert!(err.contains("between 1s and 7d"), "{err}");
    local.stop().await.expect("server ran cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_pointed_at_the_web_port_is_told_the_grpc_port() {
    let data = tempfile::tempdir().expect("tempdir");
    let local = LocalServer::start_with_web(data.path(), "127.0.0.1:0", "127.0.0.1:0", ADMIN_TOKEN)
        .await
        .expect("start server");
    let web = local.web_url.clone().expect("web pages");
    let an = local.user("an.nguyen", AN, Role::Surveyor, &[COMMUNE]).unwrap();
    let desk = Desk::new();
    let err = desk.fails("tablet-a", &["init", "--server", &web, "--token", &an]).await;
    assert!(err.contains("web pages' port") && err.contains("50051"), "{err}");
    assert!(!err.contains("compression flag"), "{err}");
    local.stop().await.unwrap();
}
