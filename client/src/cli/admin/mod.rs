//! `fieldsync admin ...`: users, tokens and the catalogue, online. Admins
//! only, but for enrollment codes (`admin token enroll`), which supervisors
//! and the province office make for the surveyors of their areas. Each
//! command calls `fieldsync_client::api` and prints what it gets: users in
//! [`users`], tokens and enrollment codes in [`tokens`], org units and
//! indicators in [`catalogue`], imports in [`import`], the org tree's dated
//! changes in [`tree`].

mod catalogue;
mod import;
mod tokens;
mod tree;
mod users;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use fieldsync::{OrgUnit, TreeChange};

use super::{Online, Session};

const ROLES: [&str; 4] = ["surveyor", "supervisor", "province", "admin"];
const LEVELS: [&str; 4] = ["province", "district", "commune", "village"];

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users: add, list, disable, enable, change areas.
    #[command(subcommand)]
    User(UserCommand),
    /// Tokens users sign in with: issue, list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Org units (province, district, commune, village).
    #[command(subcommand)]
    OrgUnit(OrgUnitCommand),
    /// Indicators that tablets record.
    #[command(subcommand)]
    Indicator(IndicatorCommand),
    /// Who approves and who accepts every village's reports. By default the
    /// tree says: the commune approves and the unit it hangs from accepts
    /// (the district before 1 July 2025, the province since).
    ReviewChain {
        /// The level that approves (commune or district).
        #[arg(long, value_parser = LEVELS, requires = "accept", conflicts_with = "from_tree")]
        approve: Option<String>,
        /// The level that accepts (district or province).
        #[arg(long, value_parser = LEVELS, requires = "approve")]
        accept: Option<String>,
        /// Back to the chain each village's tree gives.
        #[arg(long)]
        from_tree: bool,
    },
    /// A consistent snapshot of the running server's store, restorable with
    /// `fieldsync-server restore --from FILE --data DIR`.
    Backup {
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; then issue a token with `fieldsync admin token issue ID`.
    Add {
        /// A short login name: lower-case letters, digits, '.', '_' or '-' (e.g. an.nguyen).
        id: String,
        /// The person's name, as surveyors and supervisors see it.
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ROLES)]
        role: String,
        /// An org unit id the user works in (repeat for more); covers what lies below it.
        #[arg(long = "area", value_name = "ID")]
        areas: Vec<String>,
    },
    /// Create every user of a CSV file or Excel workbook, all or nothing.
    ///
    /// Columns: username, name, role (surveyor, supervisor, province,
    /// admin; or điều tra viên, giám sát, văn phòng tỉnh, quản trị) and
    /// areas (org unit ids, several separated by commas or spaces);
    /// Vietnamese headers (Tên đăng nhập, Họ tên, Vai trò, Địa bàn) are read
    /// too. Read as `org-unit import` reads; users already there exactly as
    /// written are skipped.
    Import {
        /// The .csv or .xlsx file (its first sheet).
        file: PathBuf,
        /// Make an enrollment code for every new surveyor and write them,
        /// one line each with the app's link, to this workbook (.xlsx) to
        /// print and hand out.
        #[arg(long, value_name = "SHEET")]
        codes: Option<PathBuf>,
        /// Days the codes stay valid (1-7).
        #[arg(long, default_value_t = 7)]
        codes_valid_days: u64,
    },
    /// Every user.
    List,
    /// Stop a user signing in (their tokens stop working).
    Disable { id: String },
    /// Let a disabled user sign in again.
    Enable { id: String },
    /// Replace a user's areas.
    Areas {
        id: String,
        #[arg(long = "area", value_name = "ID", required = true)]
        areas: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a user. It is printed once, alone on stdout, so that
    /// it can be copied or captured: `T=$(fieldsync admin token issue an.nguyen)`.
    Issue {
        user: String,
        /// Expire after this many days [default: never].
        #[arg(long)]
        expires_in_days: Option<u64>,
        /// What the token is for, e.g. "tablet 3".
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Tokens of one user, or of everyone (never the tokens themselves).
    List { user: Option<String> },
    /// Revoke a token by its id (from `token list`): it signs nobody in from now on.
    Revoke { id: String },
    /// A one-time code that enrolls one device of a surveyor in the
    /// surveyors' app: prints the code, the app's link and its QR code.
    /// Supervisors and the province office too, for surveyors of their areas.
    Enroll {
        user: String,
        /// How long the code works (at most 7d), e.g. 30m, 12h, 2d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
    },
    /// Enrollment codes not used yet (of one user, or of every user you may enroll).
    Enrollments {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an enrollment code by its id (from `token enrollments`).
    Unenroll { id: String },
}

#[derive(Subcommand)]
pub enum OrgUnitCommand {
    /// Add an org unit below an existing one.
    Add {
        /// A stable id, by convention the parent's id and a slug: ha-tinh.huong-khe.phuc-dong.thon-4.
        id: String,
        /// The Vietnamese name, e.g. "Thôn 4".
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = LEVELS)]
        level: String,
        /// The org unit it belongs to: a village's commune; a commune's
        /// district or, in a tree without districts, its province; none for
        /// a province.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Add every org unit of a CSV file or Excel workbook, all or nothing.
    ///
    /// Columns (the header row, in any order): id, name, level (province,
    /// district, commune, village, or tỉnh, huyện, xã, phường, thôn, tổ dân
    /// phố…) and parent (empty for a province); Vietnamese headers (Mã, Tên,
    /// Cấp, Thuộc) are read too. A commune hangs from its district, or from
    /// its province in a tree without districts. Excel's CSV is read as it
    /// saves it (UTF-8 with a BOM, `;` or `,` between cells); a bad row is
    /// named by the number Excel shows, and none is imported then. Rows
    /// already in the catalogue exactly as written are skipped, so a file can
    /// be imported again after more rows are added.
    Import {
        /// The .csv or .xlsx file (its first sheet).
        file: PathBuf,
    },
    /// The org tree, top down (or the part of it below --area), as it
    /// stands now or as it stood on --date.
    List {
        #[arg(long)]
        area: Option<String>,
        /// The tree in force on this day (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
    },
    /// Every dated change of the tree, and the units no longer in force.
    Changes,
    /// Rename a unit from --date on (its earlier name stays on earlier days).
    Rename {
        id: String,
        /// The new Vietnamese name.
        name: String,
        /// The day the change takes effect (YYYY-MM-DD): today or earlier.
        #[arg(long)]
        date: String,
    },
    /// Move a unit, with everything below it, under another parent from
    /// --date on: a village to another commune, a commune to another
    /// district or straight under its province.
    Move {
        id: String,
        /// The new parent.
        #[arg(long)]
        to: String,
        #[arg(long)]
        date: String,
    },
    /// Merge units into one from --date on: their units below move to it,
    /// and they are retired with it as successor (users working in them
    /// follow it). Into an existing unit of their level, a new one (give
    /// --name and --parent), or their own parent, which removes their
    /// level there: `merge DISTRICT... --into PROVINCE` is the 1 July 2025
    /// restructure.
    Merge {
        /// The units to merge.
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        into: String,
        /// The name of a new unit to merge into.
        #[arg(long, requires = "parent")]
        name: Option<String>,
        /// The parent of a new unit to merge into.
        #[arg(long, requires = "name")]
        parent: Option<String>,
        #[arg(long)]
        date: String,
    },
    /// Retire a unit with nothing left below it from --date on.
    Retire {
        id: String,
        #[arg(long)]
        date: String,
    },
}

#[derive(Subcommand)]
pub enum IndicatorCommand {
    /// Add an indicator.
    Add(AddIndicator),
    /// Stop an indicator being recorded from a period on (a new programme
    /// phase drops it); earlier reports and totals keep it.
    Retire {
        code: String,
        /// The first period it is no longer recorded for (2026, 2026-Q1, 2026-01).
        #[arg(long)]
        from: String,
    },
    /// Add every indicator of a CSV file or Excel workbook, all or nothing.
    ///
    /// Columns: code, name_vi, name_en (optional), unit, kind (integer or
    /// decimal; số nguyên, số thập phân), scale (digits after the point,
    /// default 2 for decimals), parent (the indicator it is an "of which"
    /// part of; optional) and max (the largest value per village; "0,5" or
    /// "0.5"), in the report's order. Read as `org-unit import` reads.
    Import {
        /// The .csv or .xlsx file (its first sheet).
        file: PathBuf,
    },
}

/// `admin indicator add`'s arguments.
#[derive(clap::Args)]
pub struct AddIndicator {
    code: String,
    #[arg(long)]
    name_vi: String,
    #[arg(long)]
    name_en: String,
    /// "km", "count", "ha", ...
    #[arg(long)]
    unit: String,
    #[arg(long, value_parser = ["integer", "decimal"])]
    kind: String,
    /// Digits after the decimal point [default: 2 for decimal, 0 for integer].
    #[arg(long)]
    scale: Option<u32>,
    /// The indicator this one is an "of which" part of.
    #[arg(long)]
    parent: Option<String>,
    /// The largest value one village may report in one period.
    #[arg(long)]
    max: String,
}

/// A level as `LEVELS` names it.
fn level(name: &str) -> fieldsync::Level {
    fieldsync::Level::parse(name).unwrap_or(fieldsync::Level::Village)
}

pub async fn run(command: AdminCommand, online: &Online, home: &Path) -> anyhow::Result<()> {
    let s = online.connect(home).await?;
    match command {
        AdminCommand::Backup { out } => backup(&s, &out).await,
        AdminCommand::ReviewChain { approve, accept, from_tree } => {
            let chain = match (approve, accept, from_tree) {
                (Some(a), Some(b), false) => Some((level(&a), level(&b))),
                (None, None, true) => None,
                _ => anyhow::bail!(
                    "give --approve LEVEL --accept LEVEL (e.g. --approve commune --accept \
                     province), or --from-tree"
                ),
            };
            let words = s.api.set_review_chain(chain).await.map_err(|e| s.refused(e))?;
            println!("review chain: {words}");
            Ok(())
        }
        AdminCommand::User(command) => users::run(&s, command).await,
        AdminCommand::Token(command) => tokens::run(&s, command).await,
        AdminCommand::OrgUnit(OrgUnitCommand::Add { id, name, level, parent }) => {
            catalogue::add_org_unit(&s, id, name, &level, parent).await
        }
        AdminCommand::OrgUnit(OrgUnitCommand::Import { file }) => {
            import::org_units(&s, &file).await
        }
        AdminCommand::OrgUnit(OrgUnitCommand::List { area, date }) => {
            tree::list(&s, area.as_deref(), date.as_deref()).await
        }
        AdminCommand::OrgUnit(OrgUnitCommand::Changes) => tree::changes(&s).await,
        AdminCommand::OrgUnit(OrgUnitCommand::Rename { id, name, date }) => {
            let rename = TreeChange::Rename { unit: id.trim().into(), name };
            tree::change(&s, &date, rename).await
        }
        AdminCommand::OrgUnit(OrgUnitCommand::Move { id, to, date }) => {
            let to = TreeChange::Move { unit: id.trim().into(), parent: to.trim().into() };
            tree::change(&s, &date, to).await
        }
        AdminCommand::OrgUnit(OrgUnitCommand::Merge { ids, into, name, parent, date }) => {
            let units: Vec<String> = ids.iter().map(|i| i.trim().to_owned()).collect();
            // A new unit is of the level of the units it takes over.
            let level = units.first().and_then(|u| s.catalogue.org_unit(u)).map(|u| u.level);
            let new = match (name, parent, level) {
                (Some(name), parent, Some(level)) => Some(OrgUnit {
                    id: into.trim().into(),
                    name,
                    level,
                    parent: parent.map(|p| p.trim().to_owned()),
                }),
                _ => None,
            };
            tree::change(&s, &date, TreeChange::Merge { units, into: into.trim().into(), new })
                .await
        }
        AdminCommand::OrgUnit(OrgUnitCommand::Retire { id, date }) => {
            tree::change(&s, &date, TreeChange::Retire { unit: id.trim().into() }).await
        }
        AdminCommand::Indicator(IndicatorCommand::Retire { code, from }) => {
            let retired =
                s.api.retire_indicator(code.trim(), from.trim()).await.map_err(|e| s.refused(e))?;
            if s.json {
                return s.print_json(
                    &serde_json::json!({"code": retired.code, "retired_from": from.trim()}),
                );
            }
            println!(
                "indicator {} ({}) is no longer recorded from {} on; earlier reports and totals \
                 keep it",
                retired.code,
                crate::cli::terminal(&retired.name_vi),
                from.trim()
            );
            Ok(())
        }
        AdminCommand::Indicator(IndicatorCommand::Import { file }) => {
            import::indicators(&s, &file).await
        }
        AdminCommand::Indicator(IndicatorCommand::Add(add)) => {
            catalogue::add_indicator(&s, add).await
        }
    }
}

/// `admin backup`: the snapshot written to `out.part`, synced, then renamed.
async fn backup(s: &Session, out: &Path) -> anyhow::Result<()> {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?,
    );
    let mut chunks = s.api.backup().await.map_err(|e| s.refused(e))?;
    let mut bytes = 0usize;
    while let Some(chunk) = chunks.next().await.map_err(|e| s.refused(e))? {
        file.write_all(&chunk)?;
        bytes += chunk.len();
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote a backup of {bytes} bytes to {}", out.display());
    Ok(())
}
