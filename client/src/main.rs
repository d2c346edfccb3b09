//! `fieldsync`: the surveyor's command line. Each tablet command opens the
//! tablet's local store under `--home`, does one thing, and says what it did
//! in plain words. Everything but `init` and `sync` works offline.
//!
//! `fieldsync review ...` (supervisors, the province office), `fieldsync
//! export` and `fieldsync plan ...` (totals against plan) and `fieldsync
//! admin ...` (admins) talk to the server directly through
//! `fieldsync_client::api`; see [`cli`]. This file only dispatches.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use cli::{review, status, tablet, terminal};

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
    let home = cli.home.as_path();
    match cli.command {
        Command::Review { online, command } => review::run(command, &online, home).await,
        Command::Admin { online, command } => cli::admin::run(command, &online, home).await,
        Command::Export { online, args } => cli::report::export(args, &online, home).await,
        Command::Plan { online, command } => cli::report::plan(command, &online, home).await,
        Command::PushFile { file, online } => cli::unsent::push_file(&file, &online, home).await,
        Command::Init { server, token } => tablet::init(home, &server, &token).await,
        Command::Login { token } => tablet::login(home, &token).await,
        Command::Record { village, period, values, note, location } => {
            tablet::record(home, &village, &period, &values, note, location)
        }
        Command::Delete { village, period, fields } => {
            tablet::delete(home, &village, &period, fields)
        }
        Command::List { period } => tablet::list(home, period),
        Command::Show { village, period } => tablet::show(home, &village, &period),
        Command::Sync { timeout, give_up_after } => {
            cli::sync::run(home, timeout, give_up_after).await
        }
        Command::Status => status::run(home),
        Command::Villages { filter } => tablet::villages(home, filter),
        Command::Indicators => tablet::indicators(home),
    }
}
