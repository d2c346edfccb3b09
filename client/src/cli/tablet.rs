//! The tablet's own commands: `init`, `login`, `record`, `delete`, `list`,
//! `show`, `villages` and `indicators`. All but `init` and `login` work
//! offline, on the local store under `--home`.

use std::path::Path;

use anyhow::bail;
use fieldsync::model::search_key;
use fieldsync::sync::{Conflict, RawValue};
use fieldsync::{DeviceId, GeoPoint, Level, Period, SubmissionId, Value};
use fieldsync_client::{init_tablet, now_ms, Grpc, Remote};

use super::status::{print_conflict, settled_words, state};
use super::{open, open_engine, place, print_table, review_words, show_value, terminal};

/// `fieldsync init`: a new tablet, once the server and the token are checked.
pub async fn init(home: &Path, server: &str, token: &str) -> anyhow::Result<()> {
    // Check the server and the token before leaving a store behind.
    let checked = match Grpc::connect(server, token).await {
        Ok(mut grpc) => grpc.status(DeviceId(uuid::Uuid::nil())).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        return Err(super::unless_web_port(server, e).await);
    }
    let tablet = init_tablet(open_engine(home)?, server, token).await?;
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
    Ok(())
}

/// `fieldsync login`: a new token for the same tablet and the same user.
pub async fn login(home: &Path, token: &str) -> anyhow::Result<()> {
    let tablet = open(home)?;
    let meta = tablet.meta();
    let me = Grpc::connect(&meta.server, token).await?.status(meta.device).await?;
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
    tablet.take_token(token, &me.user_id, &me.user_name)?;
    println!(
        "tablet {} now signs in with the new token of {}; {unsent} edit(s) waiting to \
         sync (`fieldsync sync`)",
        meta.device,
        terminal(&me.user_name)
    );
    Ok(())
}

/// `fieldsync record`: indicator=value pairs, a note and a location.
pub fn record(
    home: &Path,
    village: &str,
    period: &str,
    values: &[String],
    note: Option<String>,
    location: Option<String>,
) -> anyhow::Result<()> {
    let tablet = open(home)?;
    super::known_village(tablet.catalogue(), village)?;
    let mut edits = Vec::new();
    for pair in values {
        let Some((field, value)) = pair.split_once('=') else {
            bail!("{pair:?} is not indicator=value (e.g. road_km=1,25 or road_km=1.25)");
        };
        let field = field.trim();
        edits.push((
            field.to_owned(),
            RawValue::Amount(typed_amount(tablet.catalogue(), field, value)?),
        ));
    }
    if let Some(note) = note {
        edits.push(("note".into(), RawValue::Text(note)));
    }
    if let Some(loc) = location {
        edits.push(("location".into(), RawValue::Point(loc.parse::<GeoPoint>()?)));
    }
    let made = tablet.record(village, period, &edits, now_ms())?;
    println!(
        "recorded {} edit(s) for {} ({period}); {} waiting to sync",
        made.len(),
        place(tablet.catalogue(), village),
        tablet.outbox_len()?
    );
    Ok(())
}

/// A number as the surveyor typed it ("1,5" or "1.5"), as the plain decimal
/// the store keeps; refused as the app refuses it. A field that is not an
/// indicator is left for the catalogue's check to name.
fn typed_amount(
    catalogue: &fieldsync::Catalogue,
    field: &str,
    typed: &str,
) -> anyhow::Result<String> {
    let Some(indicator) = catalogue.indicator(field) else { return Ok(typed.trim().to_owned()) };
    match fieldsync::Amount::parse_typed(typed, indicator.kind.scale()) {
        Ok(Some(amount)) => Ok(amount.to_string()),
        Ok(None) => bail!(
            "{field}= has no value: type one (e.g. {field}=1,5), or clear the field with \
             `fieldsync delete VILLAGE PERIOD {field}`"
        ),
        Err(refusal) => bail!("{field}={typed}: {refusal}"),
    }
}

/// `fieldsync delete`: deletions that sync like any edit.
pub fn delete(home: &Path, village: &str, period: &str, fields: Vec<String>) -> anyhow::Result<()> {
    let tablet = open(home)?;
    let edits: Vec<_> = fields.into_iter().map(|f| (f, RawValue::Deleted)).collect();
    let made = tablet.record(village, period, &edits, now_ms())?;
    println!("deleted {} field(s); the deletion syncs like any edit", made.len());
    Ok(())
}

/// `fieldsync list`: the reports on this tablet, one line each.
pub fn list(home: &Path, period: Option<String>) -> anyhow::Result<()> {
    let tablet = open(home)?;
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
        let open =
            conflicts.iter().filter(|c| c.open && c.at.submission == first.at.submission).count();
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
        println!("no reports on this tablet yet: `fieldsync record` one, or `fieldsync sync`");
    } else {
        print_table(&["village", "period", "place", "fields", "pending", "conflicts"], &rows);
    }
    Ok(())
}

/// `fieldsync show`: one village's report, field by field, with its conflicts.
pub fn show(home: &Path, village: &str, period: &str) -> anyhow::Result<()> {
    let tablet = open(home)?;
    let period: Period = period.parse()?;
    let cat = tablet.catalogue();
    super::known_village(cat, village)?;
    let sub = SubmissionId::of(village, period);
    println!("{} — {period}", place(cat, village));
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
            super::field_name(cat, &f.at.field),
        ]);
    }
    print_table(&["field", "value", "state", "last synced author", "name"], &rows);
    let synced = |c: &Conflict| fields.iter().find(|f| f.at == c.at).and_then(|f| f.synced.clone());
    for c in conflicts.iter().filter(|c| c.open && c.at.submission == sub) {
        print_conflict(cat, c, None, synced(c).as_ref());
    }
    for c in conflicts.iter().filter(|c| !c.open && c.at.submission == sub) {
        println!("  {}", settled_words(cat, c, false));
    }
    Ok(())
}

/// `fieldsync villages`: org units whose id or name matches `filter`.
pub fn villages(home: &Path, filter: Option<String>) -> anyhow::Result<()> {
    let tablet = open(home)?;
    let cat = tablet.catalogue();
    let needle = filter.map(|f| search_key(&f));
    let rows: Vec<Vec<String>> = cat
        .org_units
        .values()
        .map(|u| (u, place(cat, &u.id)))
        .filter(|(u, place)| {
            needle.as_ref().is_none_or(|n| {
                search_key(&u.id).contains(n.as_str()) || search_key(place).contains(n.as_str())
            })
        })
        .map(|(u, place)| vec![u.id.clone(), u.level.as_str().into(), place])
        .collect();
    if rows.is_empty() {
        println!("no org unit matches; try part of a name, e.g. `villages \"phuc dong\"`");
    } else {
        print_table(&["id", "level", "name"], &rows);
    }
    Ok(())
}

/// `fieldsync indicators`: what can be recorded, and from when an indicator
/// no longer is.
pub fn indicators(home: &Path) -> anyhow::Result<()> {
    let tablet = open(home)?;
    let cat = tablet.catalogue();
    let rows: Vec<Vec<String>> = cat
        .indicators_in_order()
        .map(|i| {
            vec![
                i.code.clone(),
                i.unit.clone(),
                i.parent.clone().map_or(String::new(), |p| format!("part of {p}")),
                cat.retired_from(&i.code).map_or(String::new(), |p| format!("from {p}")),
                i.name_vi.clone(),
            ]
        })
        .collect();
    // The column appears once the catalogue has a retired indicator.
    if rows.iter().all(|row| row[3].is_empty()) {
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut row| {
                row.remove(3);
                row
            })
            .collect();
        print_table(&["code", "unit", "of which", "name"], &rows);
    } else {
        print_table(&["code", "unit", "of which", "retired", "name"], &rows);
    }
    Ok(())
}
