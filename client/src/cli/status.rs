//! `fieldsync status`: pending edits, the last sync, conflicts, settlements,
//! reviews and refused edits of this tablet; and the conflict lines that
//! `fieldsync show` prints too.

use std::path::Path;

use fieldsync::review::ReviewState;
use fieldsync::sync::{Conflict, FieldState, RawValue};
use fieldsync::{Catalogue, DeviceId};
use fieldsync_client::local::LocalField;
use fieldsync_client::Tablet;

use super::{open, place, show_value, terminal, when};

pub fn run(home: &Path) -> anyhow::Result<()> {
    let tablet = open(home)?;
    let m = tablet.meta();
    println!("tablet    {} ({})", m.device, terminal(&m.author));
    println!("server    {}", m.server);
    println!("pending   {} edit(s) not yet synced", tablet.outbox_len()?);
    println!(
        "synced    {}",
        m.last_sync_ms.map_or("never".into(), |ms| format!("{} UTC+7", when(ms)))
    );
    conflicts(&tablet, m.device)?;
    reviews(&tablet)?;
    refusals(&tablet)
}

/// The open and the settled conflicts touching this tablet.
fn conflicts(tablet: &Tablet, device: DeviceId) -> anyhow::Result<()> {
    let cat = tablet.catalogue();
    let touching = |c: &Conflict| c.candidates.iter().any(|k| k.stamp.device == device);
    let (open, settled): (Vec<Conflict>, Vec<Conflict>) =
        tablet.conflicts()?.into_iter().filter(touching).partition(|c| c.open);
    if open.is_empty() {
        println!("conflicts none touching this tablet");
    } else {
        println!("conflicts {} touching this tablet (a supervisor settles them):", open.len());
        for c in &open {
            let synced = tablet.field(c.at.submission, &c.at.field)?.and_then(|f| f.synced);
            print_conflict(cat, c, Some(device), synced.as_ref());
        }
    }
    if !settled.is_empty() {
        println!("settled   {} conflict(s) touching this tablet, by a supervisor:", settled.len());
        for c in &settled {
            println!("  {}", settled_words(cat, c, true));
        }
    }
    Ok(())
}

/// Supervisors' decisions on this tablet's reports, newest first.
fn reviews(tablet: &Tablet) -> anyhow::Result<()> {
    let cat = tablet.catalogue();
    let mut decisions: Vec<_> =
        tablet.reviews()?.into_iter().filter(|r| r.state != ReviewState::Submitted).collect();
    decisions.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
    if decisions.is_empty() {
        return Ok(());
    }
    println!("reviews   {} decision(s) by supervisors:", decisions.len());
    for r in &decisions {
        let why = match r.reason.as_str() {
            "" => String::new(),
            reason => format!(": {}", terminal(reason)),
        };
        println!(
            "  {} ({}) {}{why} — {} at {} UTC+7",
            place(cat, &r.village_id),
            r.period,
            r.state,
            terminal(&r.user_name),
            when(r.at_ms)
        );
    }
    Ok(())
}

/// The edits the server refused, with its reasons.
fn refusals(tablet: &Tablet) -> anyhow::Result<()> {
    let cat = tablet.catalogue();
    let refused = tablet.refusals()?;
    if refused.is_empty() {
        return Ok(());
    }
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
    Ok(())
}

/// "pending sync", "in conflict" or "synced".
pub fn state(f: &LocalField, conflict: Option<&Conflict>) -> String {
    match (f.pending, conflict) {
        (true, _) => "pending sync".into(),
        (false, Some(_)) => "in conflict".into(),
        (false, None) => "synced".into(),
    }
}

/// "Thôn 1, … (2022) village_cultural_house: settled as 2 by Trần Văn Giám at
/// 2026-11-29 08:00:00 UTC+7 — the second count is right" (`with_place`), or
/// from "village_cultural_house" on.
pub fn settled_words(cat: &Catalogue, c: &Conflict, with_place: bool) -> String {
    let at = match with_place {
        true => format!(
            "{} ({}) {}",
            place(cat, &c.at.village_id),
            c.at.period,
            super::field_words(cat, &c.at.field)
        ),
        false => super::field_words(cat, &c.at.field),
    };
    match &c.resolution {
        Some(r) => {
            let comment = match r.comment.as_str() {
                "" => String::new(),
                text => format!(" — {}", terminal(text)),
            };
            format!(
                "{at}: conflict settled as {} by {} at {} UTC+7{comment}",
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
pub fn print_conflict(
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
        super::field_words(cat, &c.at.field),
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
            "      {:<12} by {} (tablet {}{}) at {} UTC+7{}",
            show_value(cat, &c.at.field, &k.value),
            terminal(&k.stamp.author),
            &device[..8],
            if Some(k.stamp.device) == me { ", this one" } else { "" },
            when(k.stamp.received_at_ms),
            if i == winner { "  ← shown until settled" } else { "" }
        );
    }
}
