//! `fieldsync admin user ...`: add, list, disable, enable, change areas.

use fieldsync::access::{Role, User};
use fieldsync::validate::check_name;
use fieldsync_client::api::UserChange;
use serde::Serialize;

use super::UserCommand;
use crate::cli::{print_table, Session};

#[derive(Serialize)]
struct UserJson {
    id: String,
    name: String,
    role: String,
    areas: Vec<String>,
    disabled: bool,
}

impl UserJson {
    fn of(user: User) -> UserJson {
        UserJson {
            id: user.id,
            name: user.name,
            role: user.role.as_str().into(),
            areas: user.areas,
            disabled: user.disabled,
        }
    }
}

/// "Xã Phúc Đồng, Huyện Hương Khê (ha-tinh.huong-khe.phuc-dong)".
fn areas_words(s: &Session, areas: &[String]) -> String {
    match areas.is_empty() {
        true => "no area".into(),
        false => {
            areas.iter().map(|a| format!("{} ({a})", s.place(a))).collect::<Vec<_>>().join("; ")
        }
    }
}

pub(super) async fn run(s: &Session, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { id, name, role, areas } => add(s, id, name, &role, areas).await,
        UserCommand::Import { file, codes, codes_valid_days } => {
            super::import::users(s, &file, codes.as_deref(), codes_valid_days).await
        }
        UserCommand::List => list(s).await,
        UserCommand::Disable { id } => set_disabled(s, &id, true).await,
        UserCommand::Enable { id } => set_disabled(s, &id, false).await,
        UserCommand::Areas { id, areas } => {
            let areas = areas.iter().map(|a| a.trim().to_owned()).collect();
            let change = UserChange { areas: Some(areas), ..UserChange::default() };
            let user = s.api.update_user(id.trim(), &change).await.map_err(|e| s.refused(e))?;
            let user = UserJson::of(user);
            if s.json {
                return s.print_json(&user);
            }
            println!("{} ({}) now works over {}", user.id, user.name, areas_words(s, &user.areas));
            Ok(())
        }
    }
}

async fn add(
    s: &Session,
    id: String,
    name: String,
    role: &str,
    areas: Vec<String>,
) -> anyhow::Result<()> {
    let role = Role::parse(role)?;
    check_name(&format!("the name of user {}", id.trim()), name.trim())?;
    let user = User {
        id: id.trim().to_owned(),
        name,
        role,
        areas: areas.iter().map(|a| a.trim().to_owned()).collect(),
        disabled: false,
    };
    let user = UserJson::of(s.api.create_user(&user).await.map_err(|e| s.refused(e))?);
    if s.json {
        return s.print_json(&user);
    }
    println!(
        "created {} ({}), {} over {}; issue a token with `fieldsync admin token issue {}`",
        user.id,
        user.name,
        user.role,
        areas_words(s, &user.areas),
        user.id
    );
    Ok(())
}

async fn list(s: &Session) -> anyhow::Result<()> {
    let users = s.api.users().await.map_err(|e| s.refused(e))?;
    let mut users: Vec<UserJson> = users.into_iter().map(UserJson::of).collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    if s.json {
        return s.print_json(&users);
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.id.clone(),
                u.name.clone(),
                u.role.clone(),
                u.areas.join(", "),
                if u.disabled { "disabled".into() } else { "enabled".into() },
            ]
        })
        .collect();
    print_table(&["id", "name", "role", "areas", "status"], &rows);
    Ok(())
}

async fn set_disabled(s: &Session, id: &str, disabled: bool) -> anyhow::Result<()> {
    let change = UserChange { disabled: Some(disabled), ..UserChange::default() };
    let user = s.api.update_user(id.trim(), &change).await.map_err(|e| s.refused(e))?;
    let user = UserJson::of(user);
    if s.json {
        return s.print_json(&user);
    }
    match disabled {
        true => println!(
            "disabled {} ({}): their tokens sign nobody in until enabled",
            user.id, user.name
        ),
        false => println!("enabled {} ({}): their tokens work again", user.id, user.name),
    }
    Ok(())
}
