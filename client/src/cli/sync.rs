//! `fieldsync sync`: push the outbox, pull what others changed, with a
//! progress bar and a line per retry; the edits stay on the tablet whatever
//! happens.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use fieldsync_client::sync::{self, Event, Retry};
use fieldsync_client::{Error, Grpc, Tablet};
use indicatif::{ProgressBar, ProgressStyle};

use super::open;

pub async fn run(home: &Path, timeout: Duration, give_up_after: Duration) -> anyhow::Result<()> {
    let mut tablet = open(home)?;
    // Ctrl-C stops the sync between two stored steps: what the server
    // acknowledged is stored, the rest waits in the outbox.
    tokio::select! {
        synced = sync_now(&mut tablet, timeout, give_up_after) => synced,
        _ = tokio::signal::ctrl_c() => {
            bail!("sync stopped (Ctrl-C); {}: run `fieldsync sync` again to finish", kept(&tablet))
        }
    }
}

async fn sync_now(
    tablet: &mut Tablet,
    timeout: Duration,
    give_up_after: Duration,
) -> anyhow::Result<()> {
    let meta = tablet.meta();
    let mut remote = match Grpc::connect_within(&meta.server, &meta.token, timeout).await {
        Ok(remote) => remote,
        Err(e @ Error::Unreachable(_)) => {
            let e = super::unless_web_port(&meta.server, e).await;
            bail!("{e}; {}", kept(tablet))
        }
        Err(e) => return Err(e.into()),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = |e: Event| show(&bar, tablet, &meta.server, e);
    let retry = Retry { give_up_after, ..Retry::default() };
    let report = match sync::sync(tablet, &mut remote, &retry, &mut progress).await {
        Ok(report) => report,
        Err(Error::Unreachable(why)) => {
            bar.finish_and_clear();
            if fieldsync_client::remote::is_web_port(&meta.server).await {
                bail!("{}; {}", super::web_port(&meta.server), kept(tablet))
            }
            bail!(
                "cannot reach the server at {}: {why}; {}: run `fieldsync sync` again \
                 when the connection is back",
                meta.server,
                kept(tablet)
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
    if sync::refresh_catalogue(tablet, &mut remote).await? {
        println!("the catalogue or your areas changed on the server: updated");
    }
    Ok(())
}

/// "your 2 edit(s) are kept on this tablet".
fn kept(tablet: &Tablet) -> String {
    let n = tablet.outbox_len().unwrap_or_default();
    format!("your {n} edit(s) are kept on this tablet")
}

/// One step of the sync on the progress bar, or a line beside it.
fn show(bar: &ProgressBar, tablet: &Tablet, server: &str, e: Event) {
    match e {
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
                true => format!("no answer from {server}"),
                false => format!("cannot reach {server} ({why})"),
            };
            let line = format!("{what}, retrying in {}; {}", seconds(delay), kept(tablet));
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
    }
}

/// "4 s", "250 ms".
fn seconds(d: Duration) -> String {
    match d.as_millis() {
        ms @ 0..1000 => format!("{ms} ms"),
        _ => format!("{} s", d.as_secs_f64().round()),
    }
}
