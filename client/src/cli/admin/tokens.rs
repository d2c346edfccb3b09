//! `fieldsync admin token ...`: tokens (issue, list, revoke) and one-time
//! enrollment codes for surveyors' devices (enroll, enrollments, unenroll).

use anyhow::bail;
use fieldsync::validate::check_name;
use fieldsync_client::api::{Enrollment, TokenInfo};
use serde::Serialize;

use super::TokenCommand;
use crate::cli::{print_table, rfc3339, terminal, when_short, Session};

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

fn enrollment_of(e: &Enrollment, code: Option<(String, String)>) -> EnrollmentJson {
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

fn token_of(t: &TokenInfo, token: Option<String>) -> TokenJson {
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

pub(super) async fn run(s: &Session, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue { user, expires_in_days, label } => {
            issue(s, &user, expires_in_days, &label).await
        }
        TokenCommand::List { user } => list(s, &user.unwrap_or_default()).await,
        TokenCommand::Revoke { id } => {
            let info = s.api.revoke_token(id.trim()).await.map_err(|e| s.refused(e))?;
            if s.json {
                return s.print_json(&token_of(&info, None));
            }
            println!(
                "revoked token {} of {}: it signs nobody in from now on",
                info.id, info.user_id
            );
            Ok(())
        }
        TokenCommand::Enroll { user, expires } => enroll(s, &user, expires).await,
        TokenCommand::Enrollments { user } => enrollments(s, &user.unwrap_or_default()).await,
        TokenCommand::Unenroll { id } => {
            let info = s.api.revoke_enrollment(id.trim()).await.map_err(|e| s.refused(e))?;
            if s.json {
                return s.print_json(&enrollment_of(&info, None));
            }
            println!(
                "revoked enrollment code {} of {}: it enrolls no device from now on",
                info.id, info.user_id
            );
            Ok(())
        }
    }
}

async fn issue(
    s: &Session,
    user: &str,
    expires_in_days: Option<u64>,
    label: &str,
) -> anyhow::Result<()> {
    let days = expires_in_days.unwrap_or(0);
    if expires_in_days == Some(0) {
        bail!("--expires-in-days must be at least 1 (leave it out for a token that never expires)");
    }
    check_name("a token's label", label.trim())?;
    let issued = s.api.issue_token(user.trim(), days.saturating_mul(86_400), label).await;
    let issued = issued.map_err(|e| s.refused(e))?;
    let info = &issued.info;
    if s.json {
        return s.print_json(&token_of(info, Some(issued.token.clone())));
    }
    let expires = match info.expires_ms {
        0 => "never expires".to_owned(),
        ms => format!("expires {} UTC+7", when_short(ms)),
    };
    eprintln!(
        "token {} for {} ({expires}); shown this once, the server keeps only its hash:",
        info.id, info.user_id
    );
    println!("{}", issued.token);
    Ok(())
}

async fn list(s: &Session, user_id: &str) -> anyhow::Result<()> {
    let tokens = s.api.tokens(user_id).await.map_err(|e| s.refused(e))?;
    let mut tokens: Vec<TokenJson> = tokens.iter().map(|t| token_of(t, None)).collect();
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
                format!("{} UTC+7", when_short(t.created_ms)),
                match t.expires_ms {
                    0 => "never".into(),
                    ms => format!("{} UTC+7", when_short(ms)),
                },
                t.state.clone(),
            ]
        })
        .collect();
    print_table(&["id", "user", "label", "created", "expires", "state"], &rows);
    Ok(())
}

async fn enroll(s: &Session, user: &str, expires: std::time::Duration) -> anyhow::Result<()> {
    let seconds = expires.as_secs();
    if seconds == 0 || seconds > 7 * 86_400 {
        bail!("--expires must be between 1s and 7d (e.g. 30m, 24h, 2d)");
    }
    let made = s.api.create_enrollment(user.trim(), seconds).await.map_err(|e| s.refused(e))?;
    let info = &made.info;
    let link = match made.app_url.as_str() {
        "" => None,
        url => Some(format!("{url}#enroll={}", made.code)),
    };
    if s.json {
        let code = (made.code.clone(), link.clone().unwrap_or_default());
        return s.print_json(&enrollment_of(info, Some(code)));
    }
    println!(
        "enrollment code for {} ({}), works once, until {} UTC:\n\n    {}\n",
        terminal(&info.user_name),
        info.user_id,
        when_short(info.expires_ms),
        made.code
    );
    match &link {
        Some(link) => {
            println!(
                "open the surveyors' app with this link, or scan the QR code:\n\n    {link}\n"
            );
            if let Some(qr) = fieldsync_export::text::qr_terminal(link) {
                println!("{qr}");
            }
        }
        None => {
            println!("the server serves no web pages (--http off), so there is no app to open")
        }
    }
    println!("revoke it with `fieldsync admin token unenroll {}`", info.id);
    Ok(())
}

async fn enrollments(s: &Session, user_id: &str) -> anyhow::Result<()> {
    let list = s.api.enrollments(user_id.trim()).await.map_err(|e| s.refused(e))?;
    let codes: Vec<EnrollmentJson> = list.iter().map(|e| enrollment_of(e, None)).collect();
    if s.json {
        return s.print_json(&codes);
    }
    if codes.is_empty() {
        println!("no enrollment code waiting");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.user_id.clone(),
                terminal(&e.user_name),
                e.created_by.clone(),
                format!("{} UTC+7", when_short(e.created_ms)),
                format!("{} UTC+7", when_short(e.expires_ms)),
            ]
        })
        .collect();
    print_table(&["id", "user", "name", "made by", "made", "expires"], &rows);
    Ok(())
}
