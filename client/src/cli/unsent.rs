//! `fieldsync push-file FILE`: sends the edits a phone exported with the
//! surveyors' app's "Export unsent edits", under the phone's device id, and
//! says what each became. Running it again changes nothing on the server.

use std::path::Path;

use anyhow::bail;
use fieldsync::sync::Outcome;
use fieldsync_client::sync::{Event, Retry};
use fieldsync_client::unsent::{self, UnsentEdits};
use fieldsync_client::{Error, Remote};

use super::{terminal, when, Online, Session};

pub async fn push_file(path: &Path, online: &Online, home: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let (file, device, mutations) = UnsentEdits::read(path)?;
    let who = terminal(&file.user_name);
    let user = terminal(&file.user_id);
    let session = online.connect(home).await?;
    let mut grpc = session.api.grpc().clone();
    let me = grpc.status(device).await?;
    if me.user_id != file.user_id {
        bail!(
            "{shown} holds the edits of {who} ({user}), but the token is {}'s ({}): the device \
             belongs to {user}, so push the file with a token of {user}'s (an admin issues one \
             with `fieldsync admin token issue {user}`); nothing was sent",
            terminal(&me.user_name),
            terminal(&me.user_id)
        );
    }
    if mutations.is_empty() {
        println!("{shown} holds no unsent edits: nothing to send");
        return Ok(());
    }
    let exported = match file.exported_at_ms.as_str().and_then(|ms| ms.parse().ok()) {
        Some(ms) => format!(", exported {} UTC+7", when(ms)),
        None => String::new(),
    };
    println!(
        "pushing {} edit(s) of {who} from device {device}{exported} to {}",
        mutations.len(),
        session.server
    );
    let before = me.last_mutation_id;
    let mut progress = |event: Event| {
        if let Event::Retrying { delay, why } = event {
            eprintln!(
                "cannot reach {} ({why}), retrying in {} s; the file is unchanged",
                session.server,
                delay.as_secs()
            );
        }
    };
    let pushed =
        match unsent::push(&mut grpc, device, &mutations, &Retry::default(), &mut progress).await {
            Ok(pushed) => pushed,
            Err(Error::Unreachable(why)) => bail!(
            "cannot reach the server at {}: {why}; run `fieldsync push-file {shown}` again when \
             the connection is back (edits already sent are not sent twice)",
            session.server
        ),
            Err(e) => return Err(e.into()),
        };
    println!(
        "{} applied, {} unchanged, {} in conflict, {} refused",
        pushed.count(Outcome::Applied) + pushed.count(Outcome::Forgotten),
        pushed.count(Outcome::Unchanged),
        pushed.count(Outcome::Conflict),
        pushed.count(Outcome::Rejected)
    );
    let again = mutations.iter().filter(|m| m.id <= before).count();
    if again > 0 {
        println!(
            "{again} of them had reached the server before: it answered them with what it stored \
             then, and applied nothing twice"
        );
    }
    print_refusals(&session, &pushed);
    Ok(())
}

/// A line per edit refused or in conflict.
fn print_refusals(session: &Session, pushed: &unsent::Pushed) {
    for (m, result) in &pushed.results {
        let what = format!(
            "{} {} {}",
            session.place(&m.village_id),
            terminal(&m.period),
            terminal(&m.field)
        );
        match result.outcome {
            Outcome::Rejected => {
                println!("  refused #{}: {what}: {}", m.id, terminal(&result.reason))
            }
            Outcome::Conflict => println!(
                "  in conflict #{}: {what}: both values are kept for a supervisor to settle",
                m.id
            ),
            _ => {}
        }
    }
}
