//! `fieldsync`: the surveyor's command line. Each tablet command opens the
//! tablet's local store under `--home`, does one thing, and says what it did
//! in plain words. Everything but `init` and `sync` works offline.
//!
//! `fieldsync review ...` (supervisors, the province office), `fieldsync
//! export` and `fieldsync plan ...` (totals against plan) and `fieldsync
//! admin ...` (admins) talk to the server directly; see [`cli`].

mod cli;

use std::path::PathBuf;

use anyhow::bail;
use clap::{Parser, Subcommand};
use cli::admin::AdminCommand;
use cli::report::{ExportArgs, PlanCommand};
use cli::review::ReviewCommand;
use cli::{
    open, open_engine, place, print_table, review_words, show_value, terminal, when, Online,
};
use fieldsync::model::search_key;
use fieldsync::review::ReviewState;
use fieldsync::sync::{Conflict, FieldState, RawValue};
use fieldsync::{Catalogue, DeviceId, GeoPoint, Level, Period, SubmissionId, Value};
use fieldsync_client::local::LocalField;
use fieldsync_client::sync::{self, Event, Retry};
use fieldsync_client::{init_tablet, now_ms, Error, Grpc, Remote, Tablet};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(version, about = "Record New Rural Development counts offline and sync them")]
struct Cli {
    /// Directory of this tablet's local store.
    #[arg(long, global = true, default_value = ".fieldsync", env = "FIELDSYNC_HOME")]
    home: PathBuf,
    /// The certificate authority (PEM) to trust for an https:// server.
    #[arg(long, global = true, env = "FIELDSYNC_CA")]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up this tablet: pick a device id and download the catalogue.
    Init {
        /// Server address.
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "FIELDSYNC_SERVER")]
        server: String,
        /// Your token, from an admin (`fieldsync admin token issue`).
        #[arg(long, env = "FIELDSYNC_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Record values for one village and period, e.g. `road_km=1.25 village_cultural_house=1`.
    Record {
        village: String,
        period: String,
        /// indicator=value pairs.
        values: Vec<String>,
        #[arg(long)]
        note: Option<String>,
        /// Where the survey was taken: latitude,longitude.
        #[arg(long)]
        location: Option<String>,
    },
    /// Delete fields of one village's report (indicator codes, `note`, `location`).
    Delete {
        village: String,
        period: String,
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// The reports on this tablet, one line each.
    List {
        #[arg(long)]
        period: Option<String>,
    },
    /// One village's report for one period, field by field.
    Show { village: String, period: String },
    /// Push pending edits, then pull what others changed.
    Sync {
        /// How long to wait for each answer of the server before trying again.
        #[arg(long, default_value = "30s", env = "FIELDSYNC_TIMEOUT", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// How long to keep trying in all before giving up (the edits stay
        /// on the tablet).
        #[arg(long, default_value = "2m", env = "FIELDSYNC_GIVE_UP_AFTER", value_parser = humantime::parse_duration)]
        give_up_after: std::time::Duration,
    },
    /// Give this tablet a new token (its old one was revoked or expired),
    /// keeping its tablet id, its unsent edits and what it has synced.
    Login {
        /// The new token, from an admin (`fieldsync admin token issue`).
        #[arg(long, env = "FIELDSYNC_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Push the edits a phone exported with the surveyors' app ("Export
    /// unsent edits"), under that phone's device id, with a token of its
    /// user; safe to run again.
    PushFile {
        /// The exported file (fieldsync-unsent-edits/1).
        file: PathBuf,
        #[command(flatten)]
        online: Online,
    },
    /// Pending edits, last sync, conflicts and refused edits.
    Status,
    /// Org units and their ids; FILTER matches id or name.
    Villages { filter: Option<String> },
    /// The indicators that can be recorded.
    Indicators,
    /// Review reports online (supervisors, the province office): list, show,
    /// approve, accept, reject, return, reopen, settle conflicts, history,
    /// close periods.
    Review {
        #[command(flatten)]
        online: Online,
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Users, tokens, org units and indicators, online (admins; supervisors
    /// make enrollment codes for their surveyors with `admin token enroll`).
    Admin {
        #[command(flatten)]
        online: Online,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Totals against plan (KH), online, for your areas: CSV, JSON, XLSX or
    /// the province's report ("440/458 km (đạt 96,1% KH)").
    Export {
        #[command(flatten)]
        online: Online,
        #[command(flatten)]
        args: ExportArgs,
    },
    /// Plan (KH) figures, online (province office, admins): set one, clear
    /// one, or import a CSV file, all or none.
    Plan {
        #[command(flatten)]
        online: Online,
        #[command(subcommand)]
        command: PlanCommand,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        // Errors quote what was given and what the server said: line by
        // line, with control characters escaped.
        let text = format!("{e:#}");
        let lines: Vec<String> = text.split('\n').map(terminal).collect();
        eprintln!("error: {}", lines.join("\n"));
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(ca) = cli.ca {
        fieldsync_client::remote::trust_ca(ca);
    }
    match cli.command {
        Command::Review { online, command } => {
            cli::review::run(command, &online, &cli.home).await?
        }
        Command::Admin { online, command } => cli::admin::run(command, &online, &cli.home).await?,
        Command::Export { online, args } => cli::report::export(args, &online, &cli.home).await?,
        Command::Plan { online, command } => cli::report::plan(command, &online, &cli.home).await?,
        Command::PushFile { file, online } => {
            cli::unsent::push_file(&file, &online, &cli.home).await?
        }
        Command::Init { server, token } => {
            // Check the server and the token before leaving a store behind.
            Grpc::connect(&server, &token).await?.status(DeviceId(uuid::Uuid::nil())).await?;
            let tablet = init_tablet(open_engine(&cli.home)?, &server, &token).await?;
            let m = tablet.meta();
            let villages =
                tablet.catalogue().org_units.values().filter(|u| u.level == Level::Village).count();
            println!(
                "tablet {} ready for {} ({} indicators, {} villages); server {}",
                m.device,
                terminal(&m.author),
                tablet.catalogue().indicators.len(),
                villages,
                m.server
            );
        }
        Command::Login { token } => {
            let tablet = open(&cli.home)?;
            let meta = tablet.meta();
            let me = Grpc::connect(&meta.server, &token).await?.status(meta.device).await?;
            let unsent = tablet.outbox_len()?;
            // The server tells a tablet's last mutation id to its owner only.
            let mine = match (me.last_mutation_id, meta.acknowledged_through) {
                (1.., _) => true,
                (0, 1..) => false,
                (0, 0) => match tablet.user_id()? {
                    Some(id) => id == me.user_id,
                    None => meta.author == me.user_name,
                },
            };
            if !mine {
                let who = terminal(&me.user_name);
                let owner = terminal(&meta.author);
                if unsent > 0 {
                    bail!(
                        "this token is {who}'s ({}), but this tablet records for {owner}: its \
                         {unsent} unsent edit(s) are {owner}'s and go to the server only with a \
                         token of {owner}'s; nothing changed",
                        terminal(&me.user_id)
                    );
                }
                bail!(
                    "this token is {who}'s ({}), but this tablet records for {owner}; nothing \
                     changed: set up a tablet for {who} with `fieldsync --home DIR init --token \
                     TOKEN`",
                    terminal(&me.user_id)
                );
            }
            tablet.take_token(&token, &me.user_id, &me.user_name)?;
            println!(
                "tablet {} now signs in with the new token of {}; {unsent} edit(s) waiting to \
                 sync (`fieldsync sync`)",
                meta.device,
                terminal(&me.user_name)
            );
        }
        Command::Record { village, period, values, note, location } => {
            let tablet = open(&cli.home)?;
            let mut edits = Vec::new();
            for pair in &values {
                let Some((field, value)) = pair.split_once('=') else {
                    bail!("{pair:?} is not indicator=value (e.g. road_km=1.25)");
                };
                edits.push((field.trim().to_owned(), RawValue::Amount(value.trim().to_owned())));
            }
            if let Some(note) = note {
                edits.push(("note".into(), RawValue::Text(note)));
            }
            if let Some(loc) = location {
                edits.push(("location".into(), RawValue::Point(loc.parse::<GeoPoint>()?)));
            }
            let made = tablet.record(&village, &period, &edits, now_ms())?;
            println!(
                "recorded {} edit(s) for {} ({period}); {} waiting to sync",
                made.len(),
                place(tablet.catalogue(), &village),
                tablet.outbox_len()?
            );
        }
        Command::Delete { village, period, fields } => {
            let tablet = open(&cli.home)?;
            let edits: Vec<_> = fields.into_iter().map(|f| (f, RawValue::Deleted)).collect();
            let made = tablet.record(&village, &period, &edits, now_ms())?;
            println!("deleted {} field(s); the deletion syncs like any edit", made.len());
        }
        Command::List { period } => {
            let tablet = open(&cli.home)?;
            let period: Option<Period> = period.map(|p| p.parse()).transpose()?;
            let conflicts = tablet.conflicts()?;
            let mut rows = Vec::new();
            for fields in tablet.fields()?.values() {
                let Some(first) = fields.first() else {
                    continue;
                };
                if period.is_some_and(|p| p != first.at.period) {
                    continue;
                }
                let pending = fields.iter().filter(|f| f.pending).count();
                let open = conflicts
                    .iter()
                    .filter(|c| c.open && c.at.submission == first.at.submission)
                    .count();
                rows.push(vec![
                    first.at.village_id.clone(),
                    first.at.period.to_string(),
                    place(tablet.catalogue(), &first.at.village_id),
                    fields.iter().filter(|f| f.value != Value::Deleted).count().to_string(),
                    pending.to_string(),
                    open.to_string(),
                ]);
            }
            if rows.is_empty() {
                println!(
                    "no reports on this tablet yet: `fieldsync record` one, or `fieldsync sync`"
                );
            } else {
                print_table(
                    &["village", "period", "place", "fields", "pending", "conflicts"],
                    &rows,
                );
            }
        }
        Command::Show { village, period } => {
            let tablet = open(&cli.home)?;
            let period: Period = period.parse()?;
            let cat = tablet.catalogue();
            cat.village(&village)?;
            let sub = SubmissionId::of(&village, period);
            println!("{} — {period}", place(cat, &village));
            let fields = tablet.fields()?.remove(&sub).unwrap_or_default();
            if fields.is_empty() {
                println!("nothing recorded yet");
                return Ok(());
            }
            match tablet.reviews()?.iter().find(|r| r.submission == sub) {
                Some(r) => println!("state: {}", review_words(r)),
                None => println!("state: not yet synced"),
            }
            let conflicts = tablet.conflicts()?;
            let mut rows = Vec::new();
            for f in &fields {
                let conflict = conflicts.iter().find(|c| c.open && c.at == f.at);
                rows.push(vec![
                    f.at.field.to_string(),
                    show_value(cat, &f.at.field, &f.value),
                    state(f, conflict),
                    f.synced.as_ref().map_or(String::new(), |s| s.stamp.author.clone()),
                ]);
            }
            print_table(&["field", "value", "state", "last synced author"], &rows);
            let synced =
                |c: &Conflict| fields.iter().find(|f| f.at == c.at).and_then(|f| f.synced.clone());
            for c in conflicts.iter().filter(|c| c.open && c.at.submission == sub) {
                print_conflict(cat, c, None, synced(c).as_ref());
            }
            for c in conflicts.iter().filter(|c| !c.open && c.at.submission == sub) {
                println!("  {}", settled_words(cat, c, false));
            }
        }
        Command::Sync { timeout, give_up_after } => {
            let mut tablet = open(&cli.home)?;
            let meta = tablet.meta();
            let kept = |tablet: &Tablet| {
                let n = tablet.outbox_len().unwrap_or_default();
                format!("your {n} edit(s) are kept on this tablet")
            };
            let mut remote = match Grpc::connect_within(&meta.server, &meta.token, timeout).await {
                Ok(remote) => remote,
                Err(e @ Error::Unreachable(_)) => bail!("{e}; {}", kept(&tablet)),
                Err(e) => return Err(e.into()),
            };
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let mut progress = |e: Event| match e {
                Event::Pushed { done, total } => {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message("pushing");
                }
                Event::Pulled { changes } => {
                    bar.set_message("pulling");
                    bar.set_length(changes as u64);
                    bar.set_position(changes as u64);
                }
                Event::Retrying { delay, why } => {
                    let what = match why.contains("no answer") {
                        true => format!("no answer from {}", meta.server),
                        false => format!("cannot reach {} ({why})", meta.server),
                    };
                    let line = format!("{what}, retrying in {}; {}", seconds(delay), kept(&tablet));
                    bar.suspend(|| eprintln!("{line}"));
                }
                Event::Renumbered { edits, after } => {
                    let line = format!(
                        "the server already has other edits of this tablet under the ids of its \
                         newest {edits} (was its store put back from a copy?): they now follow \
                         the server's last, {after}, and are sent again"
                    );
                    bar.suspend(|| println!("{line}"));
                }
            };
            let retry = Retry { give_up_after, ..Retry::default() };
            let report = match sync::sync(&tablet, &mut remote, &retry, &mut progress).await {
                Ok(report) => report,
                Err(Error::Unreachable(why)) => {
                    bar.finish_and_clear();
                    bail!(
                        "cannot reach the server at {}: {why}; {}: run `fieldsync sync` again \
                         when the connection is back",
                        meta.server,
                        kept(&tablet)
                    )
                }
                Err(e) => return Err(e.into()),
            };
            bar.finish_and_clear();
            println!(
                "pushed {} edit(s): {} applied, {} unchanged, {} in conflict, {} refused; pulled {} change(s)",
                report.pushed(),
                report.applied,
                report.unchanged,
                report.conflicts,
                report.rejected,
                report.pulled
            );
            if report.conflicts + report.rejected > 0 {
                println!("see `fieldsync status` for the conflicts and refusals");
            }
            if sync::refresh_catalogue(&mut tablet, &mut remote).await? {
                println!("the catalogue or your areas changed on the server: updated");
            }
        }
        Command::Status => {
            let tablet = open(&cli.home)?;
            let m = tablet.meta();
            let cat = tablet.catalogue();
            println!("tablet    {} ({})", m.device, terminal(&m.author));
            println!("server    {}", m.server);
            println!("pending   {} edit(s) not yet synced", tablet.outbox_len()?);
            println!(
                "synced    {}",
                m.last_sync_ms.map_or("never".into(), |ms| format!("{} UTC", when(ms)))
            );
            let mine: Vec<Conflict> = tablet
                .conflicts()?
                .into_iter()
                .filter(|c| c.open && c.candidates.iter().any(|k| k.stamp.device == m.device))
                .collect();
            if mine.is_empty() {
                println!("conflicts none touching this tablet");
            } else {
                println!(
                    "conflicts {} touching this tablet (a supervisor settles them):",
                    mine.len()
                );
                for c in &mine {
                    let synced = tablet.field(c.at.submission, &c.at.field)?.and_then(|f| f.synced);
                    print_conflict(cat, c, Some(m.device), synced.as_ref());
                }
            }
            let settled: Vec<Conflict> = tablet
                .conflicts()?
                .into_iter()
                .filter(|c| !c.open && c.candidates.iter().any(|k| k.stamp.device == m.device))
                .collect();
            if !settled.is_empty() {
                println!(
                    "settled   {} conflict(s) touching this tablet, by a supervisor:",
                    settled.len()
                );
                for c in &settled {
                    println!("  {}", settled_words(cat, c, true));
                }
            }
            let mut decisions: Vec<_> = tablet
                .reviews()?
                .into_iter()
                .filter(|r| r.state != ReviewState::Submitted)
                .collect();
            decisions.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
            if !decisions.is_empty() {
                println!("reviews   {} decision(s) by supervisors:", decisions.len());
                for r in &decisions {
                    let why = match r.reason.as_str() {
                        "" => String::new(),
                        reason => format!(": {}", terminal(reason)),
                    };
                    println!(
                        "  {} ({}) {}{why} — {} at {} UTC",
                        place(cat, &r.village_id),
                        r.period,
                        r.state,
                        terminal(&r.user_name),
                        when(r.at_ms)
                    );
                }
            }
            let refused = tablet.refusals()?;
            if !refused.is_empty() {
                println!("refused   {} edit(s) the server did not accept:", refused.len());
                for r in &refused {
                    let value = match &r.mutation.value {
                        RawValue::Amount(a) => terminal(a),
                        RawValue::Text(t) => format!("{t:?}"),
                        RawValue::Point(p) => p.to_string(),
                        RawValue::Deleted => "(delete)".into(),
                    };
                    println!(
                        "  {} ({}) {}={}: {}",
                        place(cat, &r.mutation.village_id),
                        r.mutation.period,
                        terminal(&r.mutation.field),
                        value,
                        terminal(&r.reason)
                    );
                }
            }
        }
        Command::Villages { filter } => {
            let tablet = open(&cli.home)?;
            let cat = tablet.catalogue();
            let needle = filter.map(|f| search_key(&f));
            let rows: Vec<Vec<String>> = cat
                .org_units
                .values()
                .map(|u| (u, place(cat, &u.id)))
                .filter(|(u, place)| {
                    needle.as_ref().is_none_or(|n| {
                        search_key(&u.id).contains(n.as_str())
                            || search_key(place).contains(n.as_str())
                    })
                })
                .map(|(u, place)| vec![u.id.clone(), u.level.as_str().into(), place])
                .collect();
            if rows.is_empty() {
                println!("no org unit matches; try part of a name, e.g. `villages \"phuc dong\"`");
            } else {
                print_table(&["id", "level", "name"], &rows);
            }
        }
        Command::Indicators => {
            let tablet = open(&cli.home)?;
            let rows: Vec<Vec<String>> = tablet
                .catalogue()
                .indicators_in_order()
                .map(|i| {
                    vec![
                        i.code.clone(),
                        i.unit.clone(),
                        i.parent.clone().map_or(String::new(), |p| format!("part of {p}")),
                        i.name_vi.clone(),
                    ]
                })
                .collect();
            print_table(&["code", "unit", "of which", "name"], &rows);
        }
    }
    Ok(())
}

/// "4 s", "250 ms".
fn seconds(d: std::time::Duration) -> String {
    match d.as_millis() {
        ms @ 0..1000 => format!("{ms} ms"),
        _ => format!("{} s", d.as_secs_f64().round()),
    }
}

fn state(f: &LocalField, conflict: Option<&Conflict>) -> String {
    match (f.pending, conflict) {
        (true, _) => "pending sync".into(),
        (false, Some(_)) => "in conflict".into(),
        (false, None) => "synced".into(),
    }
}

/// "Thôn 1, … (2022) village_cultural_house: settled as 2 by Trần Văn Giám at
/// 2026-11-29 08:00:00 UTC — the second count is right" (`with_place`), or
/// from "village_cultural_house" on.
fn settled_words(cat: &Catalogue, c: &Conflict, with_place: bool) -> String {
    let at = match with_place {
        true => format!("{} ({}) {}", place(cat, &c.at.village_id), c.at.period, c.at.field),
        false => c.at.field.to_string(),
    };
    match &c.resolution {
        Some(r) => {
            let comment = match r.comment.as_str() {
                "" => String::new(),
                text => format!(" — {}", terminal(text)),
            };
            format!(
                "{at}: conflict settled as {} by {} at {} UTC{comment}",
                show_value(cat, &c.at.field, &r.value),
                terminal(&r.user_name),
                when(r.at_ms)
            )
        }
        None => format!("{at}: conflict settled"),
    }
}

/// A conflict's heading and its competing values; `synced` (the server's
/// state of the field) tells which one is shown until it is settled.
fn print_conflict(
    cat: &Catalogue,
    c: &Conflict,
    me: Option<DeviceId>,
    synced: Option<&FieldState>,
) {
    let base = match c.base_version {
        0 => "empty".to_owned(),
        _ => show_value(cat, &c.at.field, &c.base_value),
    };
    println!(
        "  {} ({}) {}: was {base}, now",
        place(cat, &c.at.village_id),
        c.at.period,
        c.at.field,
    );
    let winner = synced
        .and_then(|s| {
            c.candidates.iter().position(|k| {
                k.stamp.device == s.stamp.device && k.stamp.mutation_id == s.stamp.mutation_id
            })
        })
        .unwrap_or(c.candidates.len().saturating_sub(1));
    for (i, k) in c.candidates.iter().enumerate() {
        let device = k.stamp.device.to_string();
        println!(
            "      {:<12} by {} (tablet {}{}) at {} UTC{}",
            show_value(cat, &c.at.field, &k.value),
            terminal(&k.stamp.author),
            &device[..8],
            if Some(k.stamp.device) == me { ", this one" } else { "" },
            when(k.stamp.received_at_ms),
            if i == winner { "  ← shown until settled" } else { "" }
        );
    }
}
