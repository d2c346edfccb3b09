//! `fieldsync admin ...`: users, tokens and the catalogue, online. Admins
//! only, but for enrollment codes (`admin token enroll`), which supervisors
//! and the province office make for the surveyors of their areas.

use std::path::Path;

use anyhow::{bail, Context};
use clap::Subcommand;
use fieldsync::access::Role;
use fieldsync::validate::{check_id, check_name};
use fieldsync::{Level, OrgUnit};
use fieldsync_client::remote::Authed;
use fieldsync_proto::convert;
use fieldsync_proto::v1::admin_client::AdminClient;
use fieldsync_proto::v1::{
    self, CreateEnrollmentRequest, CreateUserRequest, IssueTokenRequest, ListEnrollmentsRequest,
    ListTokensRequest, ListUsersRequest, RevokeEnrollmentRequest, RevokeTokenRequest,
    UpdateUserRequest,
};
use serde::Serialize;

use super::{print_table, rfc3339, terminal, when_short, Online, Session};

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
        /// The org unit one level up (none for a province).
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum IndicatorCommand {
    /// Add an indicator.
    Add {
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
    },
}

#[derive(Serialize)]
struct UserJson {
    id: String,
    name: String,
    role: String,
    areas: Vec<String>,
    disabled: bool,
}

#[derive(Serialize)]
struct TokenJson {
    id: String,
    user_id: String,
    label: String,
    created_at: String,
    created_ms: u64,
    /// Empty and 0: never expires.
    expires_at: String,
    expires_ms: u64,
    revoked: bool,
    /// live, expired or revoked.
    state: String,
    /// Only when issued, and only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Serialize)]
struct EnrollmentJson {
    id: String,
    user_id: String,
    user_name: String,
    created_by: String,
    created_at: String,
    expires_at: String,
    expires_ms: u64,
    /// Only when made, and only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

fn enrollment_of(e: &v1::EnrollmentInfo, code: Option<(String, String)>) -> EnrollmentJson {
    let (code, link) = code.unzip();
    EnrollmentJson {
        id: e.id.clone(),
        user_id: e.user_id.clone(),
        user_name: e.user_name.clone(),
        created_by: e.created_by.clone(),
        created_at: rfc3339(e.created_ms),
        expires_at: rfc3339(e.expires_ms),
        expires_ms: e.expires_ms,
        code,
        link,
    }
}

fn user_of(user: v1::User) -> anyhow::Result<UserJson> {
    let user = convert::user_from_wire(user)
        .map_err(|e| anyhow::anyhow!("the server sent a user this client cannot read: {e}"))?;
    Ok(UserJson {
        id: user.id,
        name: user.name,
        role: user.role.as_str().into(),
        areas: user.areas,
        disabled: user.disabled,
    })
}

fn token_of(t: &v1::TokenInfo, token: Option<String>) -> TokenJson {
    let state = match (t.revoked, t.expires_ms) {
        (true, _) => "revoked",
        (false, 0) => "live",
        (false, e) if e <= fieldsync_client::now_ms() => "expired",
        _ => "live",
    };
    TokenJson {
        id: t.id.clone(),
        user_id: t.user_id.clone(),
        label: t.label.clone(),
        created_at: rfc3339(t.created_ms),
        created_ms: t.created_ms,
        expires_at: match t.expires_ms {
            0 => String::new(),
            ms => rfc3339(ms),
        },
        expires_ms: t.expires_ms,
        revoked: t.revoked,
        state: state.into(),
        token,
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

async fn set_disabled(
    s: &Session,
    admin: &mut AdminClient<Authed>,
    id: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let request = UpdateUserRequest {
        id: id.trim().to_owned(),
        name: None,
        disabled: Some(disabled),
        areas: Vec::new(),
        set_areas: false,
    };
    let user = admin.update_user(request).await.map_err(|e| s.refused(e))?.into_inner();
    let user = user_of(user)?;
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

pub async fn run(command: AdminCommand, online: &Online, home: &Path) -> anyhow::Result<()> {
    let s = online.connect(home).await?;
    let mut admin = s.grpc.admin();
    match command {
        AdminCommand::Backup { out } => {
            use std::io::Write;
            let mut partial = out.as_os_str().to_owned();
            partial.push(".part");
            let partial = std::path::PathBuf::from(partial);
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?,
            );
            let mut stream =
                admin.backup(v1::BackupRequest {}).await.map_err(|e| s.refused(e))?.into_inner();
            let mut bytes = 0usize;
            while let Some(chunk) = stream.message().await.map_err(|e| s.refused(e))? {
                file.write_all(&chunk.data)?;
                bytes += chunk.data.len();
            }
            let file = file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&partial, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote a backup of {bytes} bytes to {}", out.display());
        }
        AdminCommand::User(UserCommand::Add { id, name, role, areas }) => {
            let role = Role::parse(&role)?;
            check_name(&format!("the name of user {}", id.trim()), name.trim())?;
            let user = v1::User {
                id: id.trim().to_owned(),
                name,
                role: convert::role_to_wire(role) as i32,
                areas: areas.iter().map(|a| a.trim().to_owned()).collect(),
                disabled: false,
            };
            let request = CreateUserRequest { user: Some(user) };
            let user = admin.create_user(request).await.map_err(|e| s.refused(e))?.into_inner();
            let user = user_of(user)?;
            if s.json {
                return s.print_json(&user);
            }
            println!(
                "created {} ({}), {} over {}; issue a token with `fieldsync admin token issue {}`",
                user.id,
                user.name,
                user.role,
                areas_words(&s, &user.areas),
                user.id
            );
        }
        AdminCommand::User(UserCommand::List) => {
            let mut users = Vec::new();
            let mut after = String::new();
            loop {
                let request = ListUsersRequest { limit: 0, after: std::mem::take(&mut after) };
                let reply = admin.list_users(request).await.map_err(|e| s.refused(e))?;
                let reply = reply.into_inner();
                for user in reply.users {
                    users.push(user_of(user)?);
                }
                match reply.next.is_empty() {
                    true => break,
                    false => after = reply.next,
                }
            }
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
        }
        AdminCommand::User(UserCommand::Disable { id }) => {
            set_disabled(&s, &mut admin, &id, true).await?;
        }
        AdminCommand::User(UserCommand::Enable { id }) => {
            set_disabled(&s, &mut admin, &id, false).await?;
        }
        AdminCommand::User(UserCommand::Areas { id, areas }) => {
            let request = UpdateUserRequest {
                id: id.trim().to_owned(),
                name: None,
                disabled: None,
                areas: areas.iter().map(|a| a.trim().to_owned()).collect(),
                set_areas: true,
            };
            let user = admin.update_user(request).await.map_err(|e| s.refused(e))?.into_inner();
            let user = user_of(user)?;
            if s.json {
                return s.print_json(&user);
            }
            println!("{} ({}) now works over {}", user.id, user.name, areas_words(&s, &user.areas));
        }
        AdminCommand::Token(TokenCommand::Issue { user, expires_in_days, label }) => {
            let days = expires_in_days.unwrap_or(0);
            if expires_in_days == Some(0) {
                bail!("--expires-in-days must be at least 1 (leave it out for a token that never expires)");
            }
            check_name("a token's label", label.trim())?;
            let request = IssueTokenRequest {
                user_id: user.trim().to_owned(),
                expires_in_s: days.saturating_mul(86_400),
                label,
            };
            let reply = admin.issue_token(request).await.map_err(|e| s.refused(e))?.into_inner();
            let info = reply.info.context("the server sent a token without its details")?;
            if s.json {
                return s.print_json(&token_of(&info, Some(reply.token)));
            }
            let expires = match info.expires_ms {
                0 => "never expires".to_owned(),
                ms => format!("expires {} UTC", when_short(ms)),
            };
            eprintln!(
                "token {} for {} ({expires}); shown this once, the server keeps only its hash:",
                info.id, info.user_id
            );
            println!("{}", reply.token);
        }
        AdminCommand::Token(TokenCommand::List { user }) => {
            let user_id = user.unwrap_or_default();
            let mut tokens: Vec<TokenJson> = Vec::new();
            let mut after = String::new();
            loop {
                let request = ListTokensRequest {
                    user_id: user_id.clone(),
                    limit: 0,
                    after: std::mem::take(&mut after),
                };
                let reply =
                    admin.list_tokens(request).await.map_err(|e| s.refused(e))?.into_inner();
                tokens.extend(reply.tokens.iter().map(|t| token_of(t, None)));
                match reply.next.is_empty() {
                    true => break,
                    false => after = reply.next,
                }
            }
            tokens.sort_by_key(|t| t.created_ms);
            if s.json {
                return s.print_json(&tokens);
            }
            if tokens.is_empty() {
                println!("no tokens");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.user_id.clone(),
                        t.label.clone(),
                        format!("{} UTC", when_short(t.created_ms)),
                        match t.expires_ms {
                            0 => "never".into(),
                            ms => format!("{} UTC", when_short(ms)),
                        },
                        t.state.clone(),
                    ]
                })
                .collect();
            print_table(&["id", "user", "label", "created", "expires", "state"], &rows);
        }
        AdminCommand::Token(TokenCommand::Enroll { user, expires }) => {
            let seconds = expires.as_secs();
            if seconds == 0 || seconds > 7 * 86_400 {
                bail!("--expires must be between 1s and 7d (e.g. 30m, 24h, 2d)");
            }
            let request =
                CreateEnrollmentRequest { user_id: user.trim().to_owned(), expires_in_s: seconds };
            let reply =
                admin.create_enrollment(request).await.map_err(|e| s.refused(e))?.into_inner();
            let info = reply.info.context("the server sent a code without its details")?;
            let link = match reply.app_url.as_str() {
                "" => None,
                url => Some(format!("{url}#enroll={}", reply.code)),
            };
            if s.json {
                let code = (reply.code.clone(), link.clone().unwrap_or_default());
                return s.print_json(&enrollment_of(&info, Some(code)));
            }
            println!(
                "enrollment code for {} ({}), works once, until {} UTC:\n\n    {}\n",
                terminal(&info.user_name),
                info.user_id,
                when_short(info.expires_ms),
                reply.code
            );
            match &link {
                Some(link) => {
                    println!("open the surveyors' app with this link, or scan the QR code:\n\n    {link}\n");
                    if let Some(qr) = fieldsync_export::text::qr_terminal(link) {
                        println!("{qr}");
                    }
                }
                None => println!(
                    "the server serves no web pages (--http off), so there is no app to open"
                ),
            }
            println!("revoke it with `fieldsync admin token unenroll {}`", info.id);
        }
        AdminCommand::Token(TokenCommand::Enrollments { user }) => {
            let request =
                ListEnrollmentsRequest { user_id: user.unwrap_or_default().trim().to_owned() };
            let reply =
                admin.list_enrollments(request).await.map_err(|e| s.refused(e))?.into_inner();
            let codes: Vec<EnrollmentJson> =
                reply.enrollments.iter().map(|e| enrollment_of(e, None)).collect();
            if s.json {
                return s.print_json(&codes);
            }
            if codes.is_empty() {
                println!("no enrollment code waiting");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = reply
                .enrollments
                .iter()
                .map(|e| {
                    vec![
                        e.id.clone(),
                        e.user_id.clone(),
                        terminal(&e.user_name),
                        e.created_by.clone(),
                        format!("{} UTC", when_short(e.created_ms)),
                        format!("{} UTC", when_short(e.expires_ms)),
                    ]
                })
                .collect();
            print_table(&["id", "user", "name", "made by", "made", "expires"], &rows);
        }
        AdminCommand::Token(TokenCommand::Unenroll { id }) => {
            let request = RevokeEnrollmentRequest { id: id.trim().to_owned() };
            let info =
                admin.revoke_enrollment(request).await.map_err(|e| s.refused(e))?.into_inner();
            if s.json {
                return s.print_json(&enrollment_of(&info, None));
            }
            println!(
                "revoked enrollment code {} of {}: it enrolls no device from now on",
                info.id, info.user_id
            );
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            let request = RevokeTokenRequest { id: id.trim().to_owned() };
            let info = admin.revoke_token(request).await.map_err(|e| s.refused(e))?.into_inner();
            if s.json {
                return s.print_json(&token_of(&info, None));
            }
            println!(
                "revoked token {} of {}: it signs nobody in from now on",
                info.id, info.user_id
            );
        }
        AdminCommand::OrgUnit(OrgUnitCommand::Add { id, name, level, parent }) => {
            let level = match level.as_str() {
                "province" => Level::Province,
                "district" => Level::District,
                "commune" => Level::Commune,
                _ => Level::Village,
            };
            let unit = OrgUnit {
                id: id.trim().to_owned(),
                name,
                level,
                parent: parent.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
            };
            unit.check_new()?;
            let reply = admin
                .add_org_unit(convert::org_unit_to_wire(&unit))
                .await
                .map_err(|e| s.refused(e))?
                .into_inner();
            if s.json {
                return s.print_json(&serde_json::json!({
                    "id": reply.id,
                    "name": reply.name,
                    "level": level.as_str(),
                    "parent_id": reply.parent_id,
                }));
            }
            let under = match reply.parent_id.as_str() {
                "" => String::new(),
                p => format!(" under {} ({p})", s.place(p)),
            };
            println!(
                "added {} {} ({}){under}; tablets set up from now on see it",
                level.as_str(),
                reply.id,
                reply.name
            );
        }
        AdminCommand::Indicator(IndicatorCommand::Add {
            code,
            name_vi,
            name_en,
            unit,
            kind,
            scale,
            parent,
            max,
        }) => {
            let (kind, scale) = match (kind.as_str(), scale) {
                ("integer", None | Some(0)) => (v1::ValueKind::Integer, 0),
                ("integer", Some(_)) => {
                    bail!("an integer indicator has no digits after the point: leave out --scale")
                }
                (_, scale) => (v1::ValueKind::Decimal, scale.unwrap_or(2)),
            };
            check_id("an indicator code", code.trim())?;
            for (what, text) in [("Vietnamese name", &name_vi), ("English name", &name_en)] {
                check_name(&format!("the {what} of indicator {}", code.trim()), text)?;
            }
            check_name(&format!("the unit of indicator {}", code.trim()), unit.trim())?;
            let indicator = v1::Indicator {
                code: code.trim().to_owned(),
                name_vi,
                name_en,
                unit: unit.trim().to_owned(),
                kind: kind as i32,
                scale,
                parent_code: parent.unwrap_or_default().trim().to_owned(),
                max_per_village: max.trim().to_owned(),
            };
            let reply =
                admin.add_indicator(indicator).await.map_err(|e| s.refused(e))?.into_inner();
            if s.json {
                return s.print_json(&serde_json::json!({
                    "code": reply.code,
                    "name_vi": reply.name_vi,
                    "name_en": reply.name_en,
                    "unit": reply.unit,
                    "kind": if reply.kind == v1::ValueKind::Integer as i32 { "integer" } else { "decimal" },
                    "scale": reply.scale,
                    "parent_code": reply.parent_code,
                    "max_per_village": reply.max_per_village,
                }));
            }
            let part = match reply.parent_code.as_str() {
                "" => String::new(),
                p => format!(", part of {p}"),
            };
            println!(
                "added indicator {} ({}, at most {} per village{part}); tablets set up from now on see it",
                reply.code, reply.unit, reply.max_per_village
            );
        }
    }
    Ok(())
}
