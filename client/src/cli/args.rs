//! The `fieldsync` command line as clap reads it: global flags and one
//! subcommand each for the tablet and the online commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::admin::AdminCommand;
use super::report::{ExportArgs, PlanCommand};
use super::review::ReviewCommand;
use super::Online;

#[derive(Parser)]
#[command(version, about = "Record New Rural Development counts offline and sync them")]
pub struct Cli {
    /// Directory of this tablet's local store.
    #[arg(long, global = true, default_value = ".fieldsync", env = "FIELDSYNC_HOME")]
    pub home: PathBuf,
    /// The certificate authority (PEM) to trust for an https:// server.
    #[arg(long, global = true, env = "FIELDSYNC_CA")]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Set up this tablet: pick a device id and download the catalogue.
    Init {
        /// Server address.
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "FIELDSYNC_SERVER")]
        server: String,
        /// Your token, from an admin (`fieldsync admin token issue`).
        #[arg(long, env = "FIELDSYNC_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Record values for one village and period, e.g.
    /// `fieldsync record ha-tinh.huong-khe.phuc-dong.thon-1 2026 road_km=1,25 village_cultural_house=1`.
    Record {
        /// The village's id, as `fieldsync villages` lists it
        /// (e.g. ha-tinh.huong-khe.phuc-dong.thon-1).
        village: String,
        /// The period reported: a year (2026), a quarter (2026-Q3) or a month (2026-07).
        period: String,
        /// indicator=value pairs (codes as `fieldsync indicators` lists them); decimals with a
        /// comma or a dot: road_km=1,25 or road_km=1.25.
        values: Vec<String>,
        /// A note for the supervisor, e.g. --note "đo bằng GPS, thiếu đoạn cuối".
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
