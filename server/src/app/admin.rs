//! Users, tokens, the catalogue and backups (admins only, the store
//! checking), and surveyors' devices: one-time enrollment codes made,
//! listed and revoked by supervisors and the province office for the
//! surveyors of their areas (`User::may_enroll`, the store deciding), and
//! redeemed by a new device without a token.

use std::net::IpAddr;
use std::sync::Arc;

use fieldsync::access::{Action, User};
use fieldsync::{Catalogue, Indicator, OrgUnit};

use super::{
    display_code, now_ms, App, Enrollment, Error, Kind, Redeemed, Result, TokenInfo, NOT_VALID,
};

/// Most surveyors listed for enrollment.
pub const MAX_SURVEYORS: usize = 500;

/// Users or tokens per page of a list: a page of either stays far below the
/// 4 MiB message limit however many there are.
pub const LIST_PAGE: usize = 1_000;

/// Longest code or device label accepted in a redeem, in bytes (a label is
/// cut shorter when stored).
pub const MAX_LABEL_BYTES: usize = 1_000;

fn page_size(requested: u32) -> usize {
    match requested as usize {
        0 => LIST_PAGE,
        n => n.min(LIST_PAGE),
    }
}

/// The surveyors' app's address that enrollment codes carry: the public
/// URL the server was given, else the web address the caller used (the web
/// pages pass it), else the web listener's own address; empty when the
/// server serves no web pages.
#[derive(Clone, Debug, Default)]
pub struct AppUrl {
    /// `--public-url`, e.g. `https://ntm.example.vn`.
    pub public: Option<String>,
    /// `http://127.0.0.1:8080`: the web listener.
    pub listener: Option<String>,
}

impl AppUrl {
    /// The app's address for a caller who reached the server at `origin`
    /// (`http://host:port`), if known.
    pub fn for_origin(&self, origin: Option<&str>) -> String {
        let base = self
            .public
            .clone()
            .or_else(|| origin.map(str::to_owned))
            .or_else(|| self.listener.clone());
        match base {
            None => String::new(),
            Some(base) if base.trim_end_matches('/').ends_with("/app") => {
                format!("{}/", base.trim_end_matches('/'))
            }
            Some(base) => format!("{}/app/", base.trim_end_matches('/')),
        }
    }
}

/// A one-time code as a new device sends it.
#[derive(Clone, Debug)]
pub struct Redeem<'a> {
    /// The address it came from (IPv6 cut to its /64), if known; callers
    /// that pass none share one budget.
    pub peer: Option<IpAddr>,
    pub code: &'a str,
    pub label: &'a str,
    /// The user the device expects the code to be for (empty: any).
    pub expected_user: &'a str,
}

/// A code just made: shown this once.
#[derive(Clone, Debug)]
pub struct NewEnrollment {
    /// The code as people type it (`ABCDE-FGHJK`).
    pub code: String,
    pub info: Enrollment,
    /// Where the code sends the device.
    pub app_url: String,
}

impl App {
    /// A one-time code for `user_id`'s next device; `origin` is where the
    /// caller reached the server (for the app's address), when known.
    pub fn create_enrollment(
        &self,
        caller: &User,
        user_id: &str,
        expires_in_s: u64,
        origin: Option<&str>,
    ) -> Result<NewEnrollment> {
        let app_url = self.app_url.for_origin(origin);
        let (code, info) = self.store.create_enrollment(caller, user_id, expires_in_s, now_ms())?;
        Ok(NewEnrollment { code: display_code(&code), info, app_url })
    }

    /// The open codes the caller may see (of `user_id`; empty: all).
    pub fn enrollments(&self, caller: &User, user_id: &str) -> Result<Vec<Enrollment>> {
        let user = Some(user_id.trim()).filter(|u| !u.is_empty());
        let found = self.store.enrollments(caller, user, now_ms())?;
        self.settled(found)
    }

    pub fn revoke_enrollment(&self, caller: &User, id: &str) -> Result<Enrollment> {
        Ok(self.store.revoke_enrollment(caller, id, now_ms())?)
    }

    /// The surveyors the caller may enroll (at most [`MAX_SURVEYORS`];
    /// `true` when there are more).
    pub fn enrollable(&self, caller: &User) -> Result<(Vec<User>, bool)> {
        let found = self.store.enrollable_users(caller, MAX_SURVEYORS)?;
        self.settled(found)
    }

    /// The live device tokens of the surveyors the caller may enroll.
    pub fn device_tokens(&self, caller: &User) -> Result<Vec<TokenInfo>> {
        let tokens = self.store.device_tokens(caller, now_ms())?;
        self.settled(tokens)
    }

    pub fn revoke_device_token(&self, caller: &User, id: &str) -> Result<TokenInfo> {
        Ok(self.store.revoke_device_token(caller, id, now_ms())?)
    }

    /// Trades a one-time code for a token and a device id (no caller: the
    /// code is the credential). Each address is held to its budget of
    /// wrong codes: an address whose budget is spent is refused
    /// RESOURCE_EXHAUSTED before its code is even looked up, a right code
    /// included, so guessing gains nothing from being fast; other addresses
    /// are not affected. With 32¹⁰ codes and ten guesses a minute, a guess
    /// hits an open code about once in ten thousand years per hundred
    /// thousand open codes. `refusal` is what the adapter found wrong with
    /// the request itself, answered once the address may try.
    pub fn redeem(&self, r: &Redeem<'_>, refusal: Option<Error>) -> Result<Redeemed> {
        if !self.guesses.take(r.peer) {
            return Err(Error::exhausted(
                "too many wrong codes from this address: wait a minute, then type the code again \
                 carefully",
            ));
        }
        let redeemed = match refusal {
            Some(refused) => Err(refused),
            None => self.redeem_code(r),
        };
        // Only a wrong code counts against the address.
        let wrong = matches!(&redeemed,
            Err(e) if e.kind == Kind::Unauthenticated && e.message == NOT_VALID);
        if !wrong {
            self.guesses.give_back(r.peer);
        }
        redeemed
    }

    fn redeem_code(&self, r: &Redeem<'_>) -> Result<Redeemed> {
        if r.label.len() > MAX_LABEL_BYTES || r.code.len() > MAX_LABEL_BYTES {
            return Err(Error::invalid(format!(
                "the code and the device label are at most {MAX_LABEL_BYTES} bytes each"
            )));
        }
        let expected = Some(r.expected_user).filter(|u| !u.trim().is_empty());
        Ok(self.store.redeem(r.code, r.label, expected, now_ms())?)
    }

    /// A snapshot of the whole store in a temporary file (admins only).
    pub fn backup(&self, admin: &User) -> Result<std::fs::File> {
        self.store.require_admin(admin)?;
        let mut file = tempfile::tempfile()
            .map_err(|e| Error::invalid(format!("cannot make a temporary file: {e}")))?;
        self.store.backup(&mut file)?;
        Ok(file)
    }

    pub fn create_user(&self, admin: &User, user: User) -> Result<User> {
        Ok(self.store.create_user(admin, user, now_ms())?)
    }

    /// Creates many users, all or none (see [`Store::import_users`]).
    pub fn import_users(&self, admin: &User, users: Vec<User>) -> Result<(Vec<String>, usize)> {
        Ok(self.store.import_users(admin, users, now_ms())?)
    }

    /// A page of users after `after` (empty: from the first), and the id to
    /// ask the next after.
    pub fn users_page(
        &self,
        admin: &User,
        after: &str,
        limit: u32,
    ) -> Result<(Vec<User>, Option<String>)> {
        if !admin.may(Action::Administer) {
            return Err(Error::denied("permission denied: only an admin lists users"));
        }
        let after = Some(after).filter(|a| !a.is_empty());
        let page = self.store.users_page(after, page_size(limit))?;
        self.settled(page)
    }

    pub fn update_user(
        &self,
        admin: &User,
        id: &str,
        name: Option<String>,
        disabled: Option<bool>,
        areas: Option<Vec<String>>,
    ) -> Result<User> {
        Ok(self.store.update_user(admin, id, name, disabled, areas, now_ms())?)
    }

    pub fn issue_token(
        &self,
        admin: &User,
        user_id: &str,
        expires_in_s: u64,
        label: &str,
    ) -> Result<(String, TokenInfo)> {
        Ok(self.store.issue_token(admin, user_id, expires_in_s, label, now_ms())?)
    }

    /// A page of tokens (of `user_id`; empty: everyone's).
    pub fn tokens_page(
        &self,
        admin: &User,
        user_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<(Vec<TokenInfo>, Option<String>)> {
        let user = Some(user_id).filter(|u| !u.trim().is_empty());
        let after = Some(after).filter(|a| !a.is_empty());
        let page = self.store.tokens_page(admin, user, after, page_size(limit))?;
        self.settled(page)
    }

    pub fn revoke_token(&self, admin: &User, id: &str) -> Result<TokenInfo> {
        Ok(self.store.revoke_token(admin, id, now_ms())?)
    }

    /// Adds an org unit; the unit as the catalogue now holds it.
    pub fn add_org_unit(&self, admin: &User, unit: OrgUnit) -> Result<OrgUnit> {
        let id = unit.id.clone();
        let catalogue = self.store.extend_catalogue(admin, Some(unit), None, now_ms())?;
        catalogue.org_unit(&id).cloned().ok_or_else(|| Error::internal("added unit missing"))
    }

    /// Adds many org units and indicators, all or none (see
    /// [`Store::import_catalogue`]).
    pub fn import_catalogue(
        &self,
        admin: &User,
        units: Vec<(OrgUnit, Option<fieldsync::Date>)>,
        indicators: Vec<Indicator>,
    ) -> Result<crate::db::Imported> {
        Ok(self.store.import_catalogue(admin, units, indicators, now_ms())?)
    }

    /// Applies a dated change of the org tree (see [`Store::change_tree`]).
    pub fn change_tree(
        &self,
        admin: &User,
        date: &str,
        change: fieldsync::TreeChange,
    ) -> Result<(String, crate::db::TreeChanged)> {
        let date: fieldsync::Date = date.parse().map_err(Error::from_core)?;
        let changed = self.store.change_tree(admin, date, &change, now_ms())?;
        Ok((change.describe(date), changed))
    }

    /// Sets (or, with `None`, clears) the deployment's review chain.
    pub fn set_review_chain(
        &self,
        admin: &User,
        chain: Option<(fieldsync::Level, fieldsync::Level)>,
    ) -> Result<()> {
        let chain = chain
            .map(|(approves, accepts)| fieldsync::review::Chain::new(approves, accepts))
            .transpose()
            .map_err(Error::from_core)?;
        self.store.set_review_chain(admin, chain, now_ms())?;
        Ok(())
    }

    /// Retires an indicator from a period on; the indicator.
    pub fn retire_indicator(&self, admin: &User, code: &str, from: &str) -> Result<Indicator> {
        let from: fieldsync::Period = from.trim().parse().map_err(Error::from_core)?;
        let catalogue = self.store.retire_indicator(admin, code.trim(), from, now_ms())?;
        catalogue
            .indicator(code.trim())
            .cloned()
            .ok_or_else(|| Error::internal("retired indicator missing"))
    }

    /// The tree in force on `date` (empty: today in Vietnam), with the
    /// catalogue that holds its past.
    pub fn tree(&self, admin: &User, date: &str) -> Result<(Catalogue, Arc<Catalogue>)> {
        self.store.require_admin(admin)?;
        let date = match date.trim() {
            "" => fieldsync::Date::in_vietnam(now_ms()),
            d => d.parse().map_err(Error::from_core)?,
        };
        let catalogue = self.store.catalogue();
        let tree = catalogue.tree_at(date).map_err(Error::from_core)?;
        Ok((tree, catalogue))
    }

    /// Adds an indicator; the indicator as the catalogue now holds it.
    pub fn add_indicator(&self, admin: &User, indicator: Indicator) -> Result<Indicator> {
        let code = indicator.code.clone();
        let catalogue = self.store.extend_catalogue(admin, None, Some(indicator), now_ms())?;
        catalogue
            .indicator(&code)
            .cloned()
            .ok_or_else(|| Error::internal("added indicator missing"))
    }
}
