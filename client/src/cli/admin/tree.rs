//! `fieldsync admin org-unit list|changes|rename|move|merge|retire`: the
//! org tree as it stands or stood on a day, and its dated changes.

use anyhow::bail;
use fieldsync::TreeChange;
use fieldsync::{Catalogue, Level, OrgUnit};

use crate::cli::{print_table, terminal, Session};

/// `admin org-unit list`: the tree, or the part below `area`, top down.
pub(super) async fn list(
    s: &Session,
    area: Option<&str>,
    date: Option<&str>,
) -> anyhow::Result<()> {
    let fetched;
    let cat: &Catalogue = match date {
        None => &s.catalogue,
        Some(d) => {
            let tree = s.api.tree(d.trim()).await.map_err(|e| s.refused(e))?;
            fetched = Catalogue::new(vec![], tree.units)?;
            &fetched
        }
    };
    let roots: Vec<&OrgUnit> = match area {
        Some(a) => match cat.org_unit(a) {
            Some(u) => vec![u],
            None => {
                bail!("unknown org unit {a:?}: see the ids with `fieldsync admin org-unit list`")
            }
        },
        None => cat.units_at(Level::Province, None),
    };
    let mut rows = Vec::new();
    for root in roots {
        let mut below = cat.subtree(&root.id);
        below.sort_by(|a, b| (a.level, &a.id).cmp(&(b.level, &b.id)));
        rows.extend(below);
    }
    if s.json {
        let units: Vec<_> = rows
            .iter()
            .map(|u| {
                serde_json::json!({
                    "id": u.id,
                    "name": u.name,
                    "level": u.level.as_str(),
                    "parent_id": u.parent.clone().unwrap_or_default(),
                })
            })
            .collect();
        return s.print_json(&units);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|u| {
            vec![
                u.id.clone(),
                terminal(&u.name),
                u.level.as_str().to_owned(),
                u.parent.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["id", "name", "level", "parent"], &table);
    let counts: Vec<String> = cat
        .levels()
        .into_iter()
        .map(|l| format!("{} {}", rows.iter().filter(|u| u.level == l).count(), l.as_str()))
        .collect();
    let on = date.map_or(String::new(), |d| format!(" on {}", d.trim()));
    println!("{} org unit(s){on}: {}", rows.len(), counts.join(", "));
    Ok(())
}

/// `admin org-unit changes`.
pub(super) async fn changes(s: &Session) -> anyhow::Result<()> {
    let tree = s.api.tree("").await.map_err(|e| s.refused(e))?;
    if s.json {
        return s.print_json(&serde_json::json!({
            "changes": tree.changes.iter().map(|(date, what)| serde_json::json!({
                "date": date, "description": what,
            })).collect::<Vec<_>>(),
            "retired": tree.retired.iter().map(|(u, on, successor)| serde_json::json!({
                "id": u.id, "name": u.name, "level": u.level.as_str(),
                "retired_on": on, "successor_id": successor,
            })).collect::<Vec<_>>(),
        }));
    }
    if tree.changes.is_empty() {
        println!("the tree has not changed since it was loaded");
        return Ok(());
    }
    for (date, what) in &tree.changes {
        println!("{date}  {}", terminal(what));
    }
    if !tree.retired.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = tree
            .retired
            .iter()
            .map(|(u, on, successor)| {
                vec![
                    u.id.clone(),
                    terminal(&u.name),
                    u.level.as_str().into(),
                    on.clone(),
                    successor.clone(),
                ]
            })
            .collect();
        print_table(&["no longer in force", "name", "level", "since", "successor"], &rows);
    }
    Ok(())
}

/// `admin org-unit rename|move|merge|retire`: `change` from `date` on.
pub(super) async fn change(s: &Session, date: &str, change: TreeChange) -> anyhow::Result<()> {
    let (what, moved) = s.api.change_tree(date.trim(), &change).await.map_err(|e| s.refused(e))?;
    if s.json {
        return s.print_json(&serde_json::json!({
            "description": what,
            "users_moved": moved.iter().map(|(id, before, now)| serde_json::json!({
                "user_id": id, "areas_before": before, "areas": now,
            })).collect::<Vec<_>>(),
        }));
    }
    println!("{}; tablets get the new tree at their next sync", terminal(&what));
    for (id, before, now) in &moved {
        println!("  {id} now works in {} (was {})", now.join(", "), before.join(", "));
    }
    Ok(())
}
