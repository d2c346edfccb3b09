//! Users, tokens and catalogue changes. Tokens are 256 random bits shown once;
//! the store keeps only their SHA-256, so a copy of the data directory signs
//! nobody in.

use std::ops::Bound;
use std::sync::Arc;

use fieldsync::access::{Action, Role, User};
use fieldsync::model::nfc;
use fieldsync::sync::AuditKind;
use fieldsync::validate::check_name;
use fieldsync::{Catalogue, Date, Indicator, Level, OrgUnit};
use fieldsync_store::Batch;
use sha2::{Digest, Sha256};

use super::schema::{
    decode, encode, Key, TokenInfo, CATALOGUE_KEY, TOKENS, TOKEN_IDS, TREE_KEY, USERS,
};
use super::txn::Work;
use super::{Error, Result, Store};

/// Environment variable that fixes the first admin's token of a new store.
pub const ADMIN_TOKEN_ENV: &str = "FIELDSYNC_ADMIN_TOKEN";

pub(super) fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A fresh token: "fs_" and 64 hex digits (256 random bits).
pub(super) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("fs_{hex}")
}

fn check_user_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "user id {id:?}: use 1-64 lower-case letters, digits, '.', '_' or '-' (e.g. an.nguyen)"
        ))),
    }
}

impl Store {
    pub fn require_admin(&self, caller: &User) -> Result<()> {
        match caller.may(Action::Administer) {
            true => Ok(()),
            false => Err(Error::Denied(format!(
                "permission denied: only an admin manages users, tokens and the catalogue, and {} \
                 is a {}",
                caller.id,
                caller.role.as_str()
            ))),
        }
    }

    /// The user a token belongs to, if the token is known, live and its user
    /// enabled.
    pub fn authenticate(&self, token: &str, now_ms: u64) -> Result<User> {
        let unknown = || Error::Unauthenticated("unknown or revoked token".into());
        let hash = hash(token);
        let (cached, generation) = {
            let sign_ins = self.sign_ins.read().unwrap_or_else(|e| e.into_inner());
            (sign_ins.known.get(&hash).cloned(), sign_ins.generation)
        };
        let (info, user) = match cached {
            Some(known) => known,
            None => {
                let info: TokenInfo = Key::Token(hash.clone())
                    .get(self.engine.as_ref())?
                    .map(|b| decode(TOKENS, &b))
                    .transpose()?
                    .ok_or_else(unknown)?;
                let user = self.user(&info.user_id)?.ok_or_else(unknown)?;
                self.remember_sign_in(generation, hash, (info.clone(), user.clone()));
                (info, user)
            }
        };
        if info.revoked {
            return Err(unknown());
        }
        if info.expires_ms != 0 && info.expires_ms <= now_ms {
            return Err(Error::Unauthenticated(
                "the token has expired: ask an admin for a new one".into(),
            ));
        }
        if user.disabled {
            return Err(Error::Unauthenticated(format!("user {} is disabled", user.id)));
        }
        Ok(user)
    }

    /// Forgets every token seen, after users or tokens changed; called
    /// under the write lock, once the change is written.
    pub(super) fn forget_sign_ins(&self) {
        let mut sign_ins = self.sign_ins.write().unwrap_or_else(|e| e.into_inner());
        sign_ins.known.clear();
        sign_ins.generation += 1;
    }

    pub fn user(&self, id: &str) -> Result<Option<User>> {
        let user = Key::User(id.into()).get(self.engine.as_ref())?;
        user.map(|b| decode(USERS, &b)).transpose()
    }

    pub fn users(&self) -> Result<Vec<User>> {
        self.engine.iter_all(USERS).map(|e| decode(USERS, &e?.1)).collect()
    }

    /// Up to `limit` users in id order after `after`, and the id to
    /// continue after when there are more.
    pub fn users_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<User>, Option<String>)> {
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.as_bytes()));
        let limit = limit.max(1);
        let rows = self.engine.scan(USERS, from, Bound::Unbounded, limit + 1)?;
        let more = rows.len() > limit;
        let users: Vec<User> =
            rows.iter().take(limit).map(|(_, v)| decode(USERS, v)).collect::<Result<_>>()?;
        let next = users.last().filter(|_| more).map(|u| u.id.clone());
        Ok((users, next))
    }

    /// On a store with no users, creates `admin` over every province and a
    /// token for it: `token` if given, else a new one. Returns the token only
    /// when it was created here, to be shown once.
    pub fn ensure_admin(&self, token: Option<&str>, now_ms: u64) -> Result<Option<String>> {
        let guard = self.write_lock();
        if !self.engine.scan(USERS, Bound::Unbounded, Bound::Unbounded, 1)?.is_empty() {
            return Ok(None);
        }
        let catalogue = self.catalogue();
        let provinces = catalogue
            .org_units
            .values()
            .filter(|u| u.level == Level::Province)
            .map(|u| u.id.clone());
        let admin = User {
            id: "admin".into(),
            name: "Administrator".into(),
            role: Role::Admin,
            areas: provinces.collect(),
            disabled: false,
        };
        let token = match token {
            // 24 characters of a random alphabet carry at least 128 bits.
            Some(t) if t.chars().count() < 24 => {
                return Err(Error::Invalid(format!(
                    "{ADMIN_TOKEN_ENV} must be at least 24 random characters"
                )))
            }
            Some(t) => t.to_owned(),
            None => new_token(),
        };
        let mut work = Work::new(guard, &admin, now_ms)?;
        Key::User(admin.id.clone()).put(&mut work.batch, encode(&admin));
        let entry = work.entry(AuditKind::User, "created admin on first start".into());
        work.audit(entry);
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            user_id: admin.id.clone(),
            label: "first start".into(),
            created_ms: now_ms,
            expires_ms: 0,
            revoked: false,
        };
        put_token(&mut work.batch, &token, &info);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok(Some(token))
    }

    /// A new token for the admin `user_id`, issued on the stopped server's
    /// own store (`fieldsync-server admin-token`): the way back in when the
    /// last admin lost, revoked or disabled its access. A disabled admin is
    /// enabled again. Audited like any token.
    pub fn recovery_token(&self, user_id: &str, now_ms: u64) -> Result<(String, TokenInfo)> {
        let guard = self.write_lock();
        let mut user = match self.user(user_id)? {
            Some(u) if u.role == Role::Admin => u,
            found => {
                let admins: Vec<String> = self
                    .users()?
                    .into_iter()
                    .filter(|u| u.role == Role::Admin)
                    .map(|u| u.id)
                    .collect();
                let what = if found.is_some() { "is not an admin" } else { "does not exist" };
                return Err(Error::NotFound(format!(
                    "user {user_id:?} {what}; the admins of this store are: {}",
                    if admins.is_empty() { "none".into() } else { admins.join(", ") }
                )));
            }
        };
        let token = new_token();
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            user_id: user.id.clone(),
            label: "offline recovery".into(),
            created_ms: now_ms,
            expires_ms: 0,
            revoked: false,
        };
        let enable = std::mem::take(&mut user.disabled);
        let mut work = Work::new(guard, &user, now_ms)?;
        let mut detail = format!("issued token {} for {} offline, on the server", info.id, user.id);
        if enable {
            Key::User(user.id.clone()).put(&mut work.batch, encode(&user));
            detail.push_str("; enabled the user again");
        }
        put_token(&mut work.batch, &token, &info);
        let entry = work.entry(AuditKind::Token, detail);
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok((token, info))
    }

    /// Adds a user.
    pub fn create_user(&self, caller: &User, mut user: User, now_ms: u64) -> Result<User> {
        self.require_admin(caller)?;
        check_user_id(&user.id)?;
        user.name = nfc(user.name.trim());
        if user.name.is_empty() {
            return Err(Error::Invalid("a user needs a name".into()));
        }
        check_name(&format!("the name of user {}", user.id), &user.name)?;
        let guard = self.write_lock();
        self.check_areas(&user)?;
        if self.user(&user.id)?.is_some() {
            return Err(Error::Invalid(format!("user {} exists already", user.id)));
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::User(user.id.clone()).put(&mut work.batch, encode(&user));
        let detail = format!(
            "created {} ({}, {}) over {}",
            user.id,
            user.name,
            user.role.as_str(),
            user.areas.join(", ")
        );
        let entry = work.entry(AuditKind::User, detail);
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok(user)
    }

    fn check_areas(&self, user: &User) -> Result<()> {
        check_areas(&self.catalogue(), user)
    }

    /// Changes a user's name, areas or whether they may sign in.
    pub fn update_user(
        &self,
        caller: &User,
        id: &str,
        name: Option<String>,
        disabled: Option<bool>,
        areas: Option<Vec<String>>,
        now_ms: u64,
    ) -> Result<User> {
        self.require_admin(caller)?;
        if let Some(name) = &name {
            check_name(&format!("the name of user {id}"), name.trim())?;
        }
        let guard = self.write_lock();
        let mut user = self.user(id)?.ok_or_else(|| Error::NotFound(format!("no user {id:?}")))?;
        let mut changes = Vec::new();
        if let Some(name) = name {
            user.name = nfc(name.trim());
            changes.push(format!("name {}", user.name));
        }
        if let Some(d) = disabled {
            user.disabled = d;
            changes.push(if d { "disabled".into() } else { "enabled".into() });
        }
        if let Some(areas) = areas {
            user.areas = areas;
            changes.push(format!("areas {}", user.areas.join(", ")));
        }
        self.check_areas(&user)?;
        if user.disabled
            && user.role == Role::Admin
            && !self.admin_remains(Some(id), None, now_ms)?
        {
            return Err(Error::Invalid(format!(
                "{id} is the last enabled admin with a live token: disabling it would lock \
                 administration out; add another admin with a token first"
            )));
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::User(user.id.clone()).put(&mut work.batch, encode(&user));
        let entry = work.entry(AuditKind::User, format!("{}: {}", user.id, changes.join("; ")));
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok(user)
    }

    /// A new token for a user, returned once.
    pub fn issue_token(
        &self,
        caller: &User,
        user_id: &str,
        expires_in_s: u64,
        label: &str,
        now_ms: u64,
    ) -> Result<(String, TokenInfo)> {
        self.require_admin(caller)?;
        check_name("a token's label", label.trim())?;
        let guard = self.write_lock();
        if self.user(user_id)?.is_none() {
            return Err(Error::NotFound(format!("no user {user_id:?}")));
        }
        let token = new_token();
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            user_id: user_id.to_owned(),
            label: label.trim().to_owned(),
            created_ms: now_ms,
            expires_ms: match expires_in_s {
                0 => 0,
                s => now_ms.saturating_add(s.saturating_mul(1000)),
            },
            revoked: false,
        };
        let mut work = Work::new(guard, caller, now_ms)?;
        put_token(&mut work.batch, &token, &info);
        let entry = work.entry(AuditKind::Token, format!("issued token {} for {user_id}", info.id));
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok((token, info))
    }

    /// Up to `limit` tokens of one user (or of everyone) in id order after
    /// `after`, and the id to continue after when there may be more.
    pub fn tokens_page(
        &self,
        caller: &User,
        user_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TokenInfo>, Option<String>)> {
        self.require_admin(caller)?;
        let limit = limit.max(1);
        let from = after.map(|a| Key::TokenId(a.into()).encode());
        let lower = from.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in self.engine.iter(TOKEN_IDS, lower, Bound::Unbounded) {
            let hash = entry?.1;
            let Some(bytes) = Key::Token(hash).get(self.engine.as_ref())? else { continue };
            let info: TokenInfo = decode(TOKENS, &bytes)?;
            if user_id.is_some_and(|u| info.user_id != u) {
                continue;
            }
            if out.len() == limit {
                let next = out.last().map(|t: &TokenInfo| t.id.clone());
                return Ok((out, next));
            }
            out.push(info);
        }
        Ok((out, None))
    }

    /// Tokens of one user, or of everyone, oldest first.
    pub fn tokens(&self, caller: &User, user_id: Option<&str>) -> Result<Vec<TokenInfo>> {
        self.require_admin(caller)?;
        let all = self.engine.iter_all(TOKENS);
        let mut tokens: Vec<TokenInfo> =
            all.map(|e| decode(TOKENS, &e?.1)).collect::<Result<_>>()?;
        tokens.retain(|t| user_id.is_none_or(|u| t.user_id == u));
        tokens.sort_by_key(|t| t.created_ms);
        Ok(tokens)
    }

    /// Revokes a token by id: it signs nobody in from now on.
    pub fn revoke_token(&self, caller: &User, id: &str, now_ms: u64) -> Result<TokenInfo> {
        self.require_admin(caller)?;
        let guard = self.write_lock();
        let hash = Key::TokenId(id.into())
            .get(self.engine.as_ref())?
            .ok_or_else(|| Error::NotFound(format!("no token {id:?}")))?;
        let mut info: TokenInfo = Key::Token(hash.clone())
            .get(self.engine.as_ref())?
            .map(|b| decode(TOKENS, &b))
            .transpose()?
            .ok_or_else(|| Error::NotFound(format!("no token {id:?}")))?;
        let of_admin = self.user(&info.user_id)?.is_some_and(|u| u.role == Role::Admin);
        if of_admin && !info.revoked && !self.admin_remains(None, Some(id), now_ms)? {
            return Err(Error::Invalid(format!(
                "token {id} is the last live token of an enabled admin: revoking it would lock \
                 administration out; issue another admin token first"
            )));
        }
        info.revoked = true;
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Token(hash).put(&mut work.batch, encode(&info));
        let entry = work.entry(AuditKind::Token, format!("revoked token {id} of {}", info.user_id));
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok(info)
    }

    /// Whether an enabled admin with a live token remains once `user` is
    /// disabled or `token` revoked: someone must still be able to administer.
    fn admin_remains(&self, user: Option<&str>, token: Option<&str>, now_ms: u64) -> Result<bool> {
        let admins: Vec<User> = self
            .users()?
            .into_iter()
            .filter(|u| u.role == Role::Admin && !u.disabled && Some(u.id.as_str()) != user)
            .collect();
        if admins.is_empty() {
            return Ok(false);
        }
        for entry in self.engine.iter_all(TOKENS) {
            let t: TokenInfo = decode(TOKENS, &entry?.1)?;
            let live = !t.revoked && (t.expires_ms == 0 || t.expires_ms > now_ms);
            if live && Some(t.id.as_str()) != token && admins.iter().any(|a| a.id == t.user_id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Adds an org unit or an indicator; the whole catalogue is checked again.
    pub fn extend_catalogue(
        &self,
        caller: &User,
        unit: Option<OrgUnit>,
        indicator: Option<Indicator>,
        now_ms: u64,
    ) -> Result<Arc<Catalogue>> {
        self.require_admin(caller)?;
        // New units and indicators follow today's rules; those already in
        // the catalogue are kept as they are.
        if let Some(u) = &unit {
            u.check_new()?;
        }
        if let Some(i) = &indicator {
            i.check_new()?;
        }
        let guard = self.write_lock();
        let current = self.catalogue();
        let mut units: Vec<OrgUnit> = current.org_units.values().cloned().collect();
        let mut indicators: Vec<Indicator> = current.indicators_in_order().cloned().collect();
        let mut detail = Vec::new();
        if let Some(u) = unit {
            detail.push(format!("added {} {} ({})", u.level.as_str(), u.id, u.name));
            units.push(u);
        }
        if let Some(i) = indicator {
            detail.push(format!("added indicator {} ({})", i.code, i.unit));
            indicators.push(i);
        }
        let catalogue =
            Arc::new(Catalogue::new(indicators, units)?.with_history(current.history().clone())?);
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Meta(CATALOGUE_KEY).put(&mut work.batch, encode(catalogue.as_ref()));
        let entry = work.entry(AuditKind::Catalogue, detail.join("; "));
        work.audit(entry);
        work.commit_then(|_| {
            *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&catalogue);
        })?;
        Ok(catalogue)
    }
}

/// A user's areas are org units of `catalogue`, and only an admin has none.
fn check_areas(catalogue: &Catalogue, user: &User) -> Result<()> {
    if user.areas.is_empty() && user.role != Role::Admin {
        return Err(Error::Invalid(format!(
            "{} needs at least one area (an org unit id)",
            user.id
        )));
    }
    for area in &user.areas {
        if catalogue.org_unit(area).is_none() {
            return Err(Error::NotFound(format!("unknown org unit {area:?}")));
        }
    }
    Ok(())
}

/// What an import added, and what it was given that the catalogue already
/// held exactly so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub org_units: usize,
    pub indicators: usize,
    pub unchanged: usize,
}

/// Problems an import names at most, the rest counted: a refusal's message
/// stays within what a status carries.
const MAX_PROBLEMS_NAMED: usize = 8;

impl Store {
    /// Adds many org units and indicators, all or none: any bad one refuses
    /// the whole import, naming every bad one by its place in the request
    /// ("org unit 3: …", "indicator 2: …", numbered from 1). Parents may
    /// come after their children. One given exactly as the catalogue holds
    /// it already is left alone, so the same file can be imported twice;
    /// one that differs is refused (an import adds, it never changes).
    pub fn import_catalogue(
        &self,
        caller: &User,
        units: Vec<(OrgUnit, Option<Date>)>,
        indicators: Vec<Indicator>,
        now_ms: u64,
    ) -> Result<Imported> {
        self.require_admin(caller)?;
        let mut problems = Vec::new();
        let today = Date::in_vietnam(now_ms);
        let (units, valid_from): (Vec<OrgUnit>, Vec<Option<Date>>) = units
            .into_iter()
            .map(|(u, from)| {
                let u = OrgUnit {
                    id: u.id.trim().to_owned(),
                    name: nfc(u.name.trim()),
                    parent: u.parent.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
                    ..u
                };
                (u, from)
            })
            .unzip();
        for (i, (unit, from)) in units.iter().zip(&valid_from).enumerate() {
            if let Some(from) = from.filter(|d| *d > today) {
                problems.push(format!(
                    "org unit {}: {} is valid from {from}, after today ({today}): import it on \
                     that day or later",
                    i + 1,
                    unit.id
                ));
            }
        }
        let indicators: Vec<Indicator> = indicators
            .into_iter()
            .map(|i| Indicator {
                code: i.code.trim().to_owned(),
                name_vi: nfc(i.name_vi.trim()),
                name_en: i.name_en.trim().to_owned(),
                unit: i.unit.trim().to_owned(),
                parent: i.parent.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
                ..i
            })
            .collect();
        let guard = self.write_lock();
        let current = self.catalogue();
        let mut imported = Imported::default();

        let mut given: std::collections::HashMap<&str, (usize, Level)> = Default::default();
        let mut new_units = Vec::new();
        for (i, unit) in units.iter().enumerate() {
            let n = i + 1;
            if let Err(e) = unit.check_new() {
                problems.push(format!("org unit {n}: {e}"));
                continue;
            }
            if let Some((first, _)) = given.insert(&unit.id, (n, unit.level)) {
                problems
                    .push(format!("org unit {n}: {} is also org unit {first}; keep one", unit.id));
                continue;
            }
            let since = current.history().past.get(&unit.id).and_then(|p| p.since);
            match current.org_unit(&unit.id) {
                Some(held) if held == unit && valid_from[i].is_none_or(|d| since == Some(d)) => {
                    imported.unchanged += 1
                }
                Some(held) if held == unit => problems.push(format!(
                    "org unit {n}: {} is already in force {}; an import never changes the day \
                     a unit is valid from",
                    unit.id,
                    since.map_or("since before any change".to_owned(), |d| format!("from {d}"))
                )),
                Some(held) => problems.push(format!(
                    "org unit {n}: {} is already in the catalogue as {} {:?} under {}; an \
                     import adds units and never changes one",
                    unit.id,
                    held.level.as_str(),
                    held.name,
                    held.parent.as_deref().unwrap_or("nothing")
                )),
                None => new_units.push((n, unit, valid_from[i])),
            }
        }
        for (n, unit, _) in &new_units {
            let parents = unit.level.parents();
            let wanted = parents.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(" or ");
            let parent_level = |p: &str| {
                current.org_unit(p).map(|u| u.level).or_else(|| given.get(p).map(|(_, l)| *l))
            };
            let problem = match (&unit.parent, parents.is_empty()) {
                (None, true) => None,
                (None, false) => Some(format!(
                    "{} is a {} and needs a parent {wanted}",
                    unit.id,
                    unit.level.as_str()
                )),
                (Some(p), true) => {
                    Some(format!("{} is a province: it has no parent (given {p})", unit.id))
                }
                (Some(p), false) => match parent_level(p) {
                    None => Some(format!(
                        "the parent {p} of {} is neither in the catalogue nor in this import",
                        unit.id
                    )),
                    Some(level) if !parents.contains(&level) => Some(format!(
                        "{} is a {} and its parent must be a {wanted}, but {p} is a {}",
                        unit.id,
                        unit.level.as_str(),
                        level.as_str()
                    )),
                    Some(_) => None,
                },
            };
            if let Some(why) = problem {
                problems.push(format!("org unit {n}: {why}"));
            }
        }

        let mut codes: std::collections::HashMap<&str, usize> = Default::default();
        let mut new_indicators = Vec::new();
        for (i, ind) in indicators.iter().enumerate() {
            let n = i + 1;
            if let Err(e) = ind.check_new() {
                problems.push(format!("indicator {n}: {e}"));
                continue;
            }
            if let Some(first) = codes.insert(&ind.code, n) {
                problems.push(format!(
                    "indicator {n}: {} is also indicator {first}; keep one",
                    ind.code
                ));
                continue;
            }
            match current.indicator(&ind.code) {
                Some(held) if held == ind => imported.unchanged += 1,
                Some(_) => problems.push(format!(
                    "indicator {n}: {} is already in the catalogue, defined otherwise; an import \
                     adds indicators and never changes one",
                    ind.code
                )),
                None => new_indicators.push(ind),
            }
        }
        if !problems.is_empty() {
            let more = problems.len().saturating_sub(MAX_PROBLEMS_NAMED);
            problems.truncate(MAX_PROBLEMS_NAMED);
            if more > 0 {
                problems.push(format!("… and {more} more"));
            }
            return Err(Error::Invalid(format!(
                "nothing was imported; fix these:\n{}",
                problems.join("\n")
            )));
        }
        if new_units.is_empty() && new_indicators.is_empty() {
            return Ok(imported);
        }
        imported.org_units = new_units.len();
        imported.indicators = new_indicators.len();
        let mut all_units: Vec<OrgUnit> = current.org_units.values().cloned().collect();
        all_units.extend(new_units.iter().map(|(_, u, _)| (*u).clone()));
        let mut all_indicators: Vec<Indicator> = current.indicators_in_order().cloned().collect();
        all_indicators.extend(new_indicators.iter().map(|i| (*i).clone()));
        let catalogue = Catalogue::new(all_indicators, all_units)
            .and_then(|c| c.with_history(current.history().clone()))
            .map_err(|e| Error::Invalid(format!("nothing was imported: {e}")))?;
        let dated: Vec<(String, Date)> =
            new_units.iter().filter_map(|(_, u, from)| Some((u.id.clone(), (*from)?))).collect();
        let catalogue = match dated.is_empty() {
            true => catalogue,
            false => catalogue
                .added_on(&dated)
                .map_err(|e| Error::Invalid(format!("nothing was imported: {e}")))?,
        };
        let mut by_level = [0usize; 4];
        for (_, u, _) in &new_units {
            by_level[u.level as usize] += 1;
        }
        let levels: Vec<String> = Level::ALL
            .iter()
            .zip(by_level)
            .filter(|(_, k)| *k > 0)
            .map(|(l, k)| format!("{k} {}", l.as_str()))
            .collect();
        let mut detail = format!("imported {} org unit(s)", new_units.len());
        if !levels.is_empty() {
            detail += &format!(" ({})", levels.join(", "));
        }
        if !dated.is_empty() {
            let mut days: Vec<Date> = dated.iter().map(|(_, d)| *d).collect();
            days.sort_unstable();
            days.dedup();
            let days: Vec<String> = days.iter().map(Date::to_string).collect();
            detail += &format!(", {} of them valid from {}", dated.len(), days.join(", "));
        }
        detail += &format!(" and {} indicator(s)", new_indicators.len());
        let catalogue = Arc::new(catalogue);
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Meta(CATALOGUE_KEY).put(&mut work.batch, encode(catalogue.as_ref()));
        if !dated.is_empty() {
            Key::Meta(TREE_KEY).put(&mut work.batch, encode(catalogue.history()));
        }
        let entry = work.entry(AuditKind::Catalogue, detail);
        work.audit(entry);
        work.commit_then(|_| {
            *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = catalogue;
        })?;
        Ok(imported)
    }
}

impl Store {
    /// Creates many users, all or none: any bad one refuses the import,
    /// naming every bad one by its place in the request ("user 3: …").
    /// One that exists exactly as given is left alone (so a file can be
    /// imported again); one that exists otherwise is refused. Returns the
    /// ids created, in order, and how many were there already.
    pub fn import_users(
        &self,
        caller: &User,
        users: Vec<User>,
        now_ms: u64,
    ) -> Result<(Vec<String>, usize)> {
        self.require_admin(caller)?;
        let guard = self.write_lock();
        let catalogue = self.catalogue();
        let mut problems = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        let mut new = Vec::new();
        let mut unchanged = 0;
        for (i, mut user) in users.into_iter().enumerate() {
            let n = i + 1;
            user.id = user.id.trim().to_owned();
            user.name = nfc(user.name.trim());
            user.areas = user.areas.iter().map(|a| a.trim().to_owned()).collect();
            let checked = check_user_id(&user.id)
                .and_then(|()| match user.name.is_empty() {
                    true => Err(Error::Invalid(format!("{} needs a name", user.id))),
                    false => check_name(&format!("the name of user {}", user.id), &user.name)
                        .map_err(Error::from),
                })
                .and_then(|()| check_areas(&catalogue, &user));
            if let Err(e) = checked {
                problems.push(format!("user {n}: {e}"));
                continue;
            }
            if let Some(first) = seen.insert(user.id.clone(), n) {
                problems.push(format!("user {n}: {} is also user {first}; keep one", user.id));
                continue;
            }
            match self.user(&user.id)? {
                Some(held) if held == user => unchanged += 1,
                Some(held) => problems.push(format!(
                    "user {n}: {} exists already ({}, {} over {}); change it with `fieldsync \
                     admin user areas`, `disable` or `enable`",
                    user.id,
                    held.name,
                    held.role.as_str(),
                    held.areas.join(", ")
                )),
                None => new.push(user),
            }
        }
        if !problems.is_empty() {
            let more = problems.len().saturating_sub(MAX_PROBLEMS_NAMED);
            problems.truncate(MAX_PROBLEMS_NAMED);
            if more > 0 {
                problems.push(format!("… and {more} more"));
            }
            return Err(Error::Invalid(format!(
                "nothing was imported; fix these:\n{}",
                problems.join("\n")
            )));
        }
        if new.is_empty() {
            return Ok((Vec::new(), unchanged));
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        for user in &new {
            Key::User(user.id.clone()).put(&mut work.batch, encode(user));
            let detail = format!(
                "created {} ({}, {}) over {} (imported)",
                user.id,
                user.name,
                user.role.as_str(),
                user.areas.join(", ")
            );
            let entry = work.entry(AuditKind::User, detail);
            work.audit(entry);
        }
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok((new.into_iter().map(|u| u.id).collect(), unchanged))
    }
}

/// Tokens kept signed in memory at most; the map starts afresh beyond.
const MAX_SIGN_INS: usize = 10_000;

/// Tokens seen lately (by SHA-256) with their user, and how many times the
/// map has been emptied: a sign-in remembers what it read only if no change
/// to users or tokens emptied the map since it began.
#[derive(Default)]
pub(super) struct SignIns {
    pub(super) known: std::collections::HashMap<Vec<u8>, (TokenInfo, User)>,
    pub(super) generation: u64,
}

impl Store {
    /// The generation of the sign-in map, noted before reading a token.
    #[cfg(test)]
    pub(super) fn sign_in_generation(&self) -> u64 {
        self.sign_ins.read().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// Remembers a token read while the map was at `generation`, unless
    /// the map has been emptied since (the read may predate the change).
    pub(super) fn remember_sign_in(
        &self,
        generation: u64,
        hash: Vec<u8>,
        known: (TokenInfo, User),
    ) {
        let mut sign_ins = self.sign_ins.write().unwrap_or_else(|e| e.into_inner());
        if sign_ins.generation != generation {
            return;
        }
        if sign_ins.known.len() >= MAX_SIGN_INS {
            sign_ins.known.clear();
        }
        sign_ins.known.insert(hash, known);
    }
}

pub(super) fn put_token(batch: &mut Batch, token: &str, info: &TokenInfo) {
    let hash = hash(token);
    Key::TokenId(info.id.clone()).put(batch, hash.clone());
    Key::Token(hash).put(batch, encode(info));
}
