//! One-time enrollment codes: a supervisor (or the province office, or an
//! admin) makes a short code for one surveyor; the surveyors' app trades it,
//! once, for a device token of that surveyor and a device id of its own.
//!
//! Trees:
//! - `enrollments`: SHA-256 of the normalised code → [`Stored`] (the code
//!   itself is never kept, as with tokens);
//! - `enrollment_ids`: enrollment id → that hash (lists and revocations name
//!   a code by its id, never by the code);
//! - `enrollments_by_user`: user ‖ 0 ‖ enrollment id → () (a user's codes).
//!
//! Only open codes (not redeemed, not revoked, not expired) are kept for
//! long: every new code prunes the others, so the trees hold at most
//! [`MAX_OPEN`] records and what was closed since the last code.

use std::collections::HashMap;

use fieldsync::access::{Role, User};
use fieldsync::sync::AuditKind;
use fieldsync::validate::check_name;
use fieldsync::DeviceId;
use sha2::{Digest, Sha256};

use super::admin::{new_token, put_token};
use super::schema::{
    decode, encode, DeviceState, Enrollment, Key, Prefix, TokenInfo, ENROLLMENTS,
    ENROLLMENTS_BY_USER, TOKENS,
};
use super::txn::Work;
use super::{Error, Result, Store};

/// The characters of a code: A-Z and 2-9 without the look-alikes I, O, 0
/// and 1, so that a code read aloud or off a screen is typed right.
pub const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters of a code: 50 random bits.
pub const CODE_LEN: usize = 10;
/// How long a code lives when the caller does not say.
pub const DEFAULT_EXPIRY_S: u64 = 24 * 3600;
/// The longest a code may live.
pub const MAX_EXPIRY_S: u64 = 7 * 24 * 3600;
/// Open codes one user may have at once.
pub const MAX_OPEN_PER_USER: usize = 20;
/// Open codes in all.
pub const MAX_OPEN: usize = 10_000;
/// Characters of a device label kept in a token's label.
pub const MAX_DEVICE_LABEL_CHARS: usize = 100;

/// What a redeemer is told about any code that cannot be redeemed, whatever
/// the reason (unknown, used, expired, revoked), so that guessing learns
/// nothing.
pub const NOT_VALID: &str =
    "this code is not valid (used, expired or revoked): ask your supervisor for a new one";

fn put(work: &mut Work<'_>, hash: &[u8], e: &Enrollment) {
    Key::Enrollment(hash.to_vec()).put(&mut work.batch, e.encode());
}

fn read(bytes: &[u8]) -> Result<Enrollment> {
    Enrollment::decode(bytes)
}

/// A new code from the operating system's CSPRNG, without look-alikes.
fn new_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..CODE_LEN).map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char).collect()
}

/// The code as people read it: "ABCDE-FGHJK".
pub fn display_code(code: &str) -> String {
    let code = normalise(code);
    match code.len() {
        CODE_LEN => format!("{}-{}", &code[..5], &code[5..]),
        _ => code,
    }
}

/// Upper case, spaces and dashes dropped: "abcde fghjk" and "ABCDE-FGHJK"
/// are the same code.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '‐' && *c != '–')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether `code` (normalised) could be a code at all.
fn well_formed(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))
}

fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// What a redeemed code gave the device.
#[derive(Clone, Debug)]
pub struct Redeemed {
    /// The bearer token, shown once.
    pub token: String,
    pub info: TokenInfo,
    /// A new tablet id, already owned by the user.
    pub device: DeviceId,
    pub user: User,
}

impl Store {
    /// A new code for `user_id`'s next device, valid `expires_in_s`
    /// seconds (0: [`DEFAULT_EXPIRY_S`]); returns it once with its record.
    pub fn create_enrollment(
        &self,
        caller: &User,
        user_id: &str,
        expires_in_s: u64,
        now_ms: u64,
    ) -> Result<(String, Enrollment)> {
        let expires_in_s = match expires_in_s {
            0 => DEFAULT_EXPIRY_S,
            s if s > MAX_EXPIRY_S => {
                return Err(Error::Invalid(format!(
                    "a code lives at most 7 days ({MAX_EXPIRY_S} s), not {s} s: make a new one \
                     when it runs out"
                )))
            }
            s => s,
        };
        let user_id = user_id.trim();
        if user_id.is_empty() {
            return Err(Error::Invalid("name the surveyor the code is for (a user id)".into()));
        }
        let guard = self.write_lock();
        let user =
            self.user(user_id)?.ok_or_else(|| Error::NotFound(format!("no user {user_id:?}")))?;
        caller.may_enroll(&self.catalogue(), &user)?;
        if user.disabled {
            return Err(Error::Invalid(format!(
                "{} ({}) is disabled: an admin must enable them before their device is enrolled",
                user.id, user.name
            )));
        }
        let mut work = Work::new(guard, caller, now_ms)?;
        // Prune what can no longer be redeemed, and count what is open.
        let (mut open, mut of_user) = (0, 0);
        for (hash, e) in self.all_enrollments()? {
            if e.is_open(now_ms) {
                open += 1;
                of_user += usize::from(e.user_id == user.id);
            } else {
                Key::Enrollment(hash).delete(&mut work.batch);
                Key::EnrollmentId(e.id.clone()).delete(&mut work.batch);
                Key::EnrollmentByUser(e.user_id.clone(), e.id.clone()).delete(&mut work.batch);
            }
        }
        if of_user >= MAX_OPEN_PER_USER {
            return Err(Error::Exhausted(format!(
                "{} has {of_user} open codes already, the most one user may have: revoke some \
                 (or let them expire) first",
                user.id
            )));
        }
        if open >= MAX_OPEN {
            return Err(Error::Exhausted(format!(
                "the server holds {open} open codes, the most it keeps: revoke unused ones first"
            )));
        }
        let code = new_code();
        let hash = code_hash(&code);
        let enrollment = Enrollment {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            created_by: caller.id.clone(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(expires_in_s.saturating_mul(1000)),
            revoked: false,
            token_id: String::new(),
        };
        put(&mut work, &hash, &enrollment);
        Key::EnrollmentId(enrollment.id.clone()).put(&mut work.batch, hash);
        Key::EnrollmentByUser(user.id.clone(), enrollment.id.clone()).put(&mut work.batch, vec![]);
        let detail = format!(
            "created enrollment code {} for {} (expires in {expires_in_s} s)",
            enrollment.id, user.id
        );
        let entry = work.entry(AuditKind::Token, detail);
        work.audit(entry);
        work.commit()?;
        Ok((code, enrollment))
    }

    /// Every enrollment record with its key.
    fn all_enrollments(&self) -> Result<Vec<(Vec<u8>, Enrollment)>> {
        self.engine
            .iter_all(ENROLLMENTS)
            .map(|e| {
                let (k, v) = e?;
                Ok((k, read(&v)?))
            })
            .collect()
    }

    /// The open codes the caller may see (of `user_id`, or of every user the
    /// caller may enroll), newest first.
    pub fn enrollments(
        &self,
        caller: &User,
        user_id: Option<&str>,
        now_ms: u64,
    ) -> Result<Vec<Enrollment>> {
        let catalogue = self.catalogue();
        let mut found: Vec<Enrollment> = match user_id {
            Some(id) => {
                let user =
                    self.user(id)?.ok_or_else(|| Error::NotFound(format!("no user {id:?}")))?;
                caller.may_enroll(&catalogue, &user)?;
                let mut out = Vec::new();
                for entry in Prefix::EnrollmentsOf(id).iter(self.engine.as_ref()) {
                    let key = Key::decode(ENROLLMENTS_BY_USER, &entry?.0)?;
                    let Key::EnrollmentByUser(_, enrollment_id) = key else { continue };
                    let Some(hash) = Key::EnrollmentId(enrollment_id).get(self.engine.as_ref())?
                    else {
                        continue;
                    };
                    if let Some(bytes) = Key::Enrollment(hash).get(self.engine.as_ref())? {
                        out.push(read(&bytes)?);
                    }
                }
                out
            }
            None => {
                if caller.role == Role::Surveyor {
                    return Err(Error::Denied(format!(
                        "permission denied: {} is a surveyor: enrollment codes are made and seen \
                         by supervisors, the province office and admins",
                        caller.id
                    )));
                }
                let mut allowed: HashMap<String, bool> = HashMap::new();
                let mut out = Vec::new();
                for (_, e) in self.all_enrollments()? {
                    let may = match allowed.get(&e.user_id) {
                        Some(may) => *may,
                        None => {
                            let may = self
                                .user(&e.user_id)?
                                .is_some_and(|u| caller.may_enroll(&catalogue, &u).is_ok());
                            allowed.insert(e.user_id.clone(), may);
                            may
                        }
                    };
                    if may {
                        out.push(e);
                    }
                }
                out
            }
        };
        found.retain(|e| e.is_open(now_ms));
        found.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(found)
    }

    /// Revokes a code by id: it can no longer be redeemed.
    pub fn revoke_enrollment(&self, caller: &User, id: &str, now_ms: u64) -> Result<Enrollment> {
        let id = id.trim();
        let guard = self.write_lock();
        let missing = || Error::NotFound(format!("no open enrollment code {id:?}"));
        let hash = Key::EnrollmentId(id.into()).get(self.engine.as_ref())?.ok_or_else(missing)?;
        let mut e =
            read(&Key::Enrollment(hash.clone()).get(self.engine.as_ref())?.ok_or_else(missing)?)?;
        let user = self.user(&e.user_id)?.ok_or_else(missing)?;
        caller.may_enroll(&self.catalogue(), &user)?;
        if !e.token_id.is_empty() {
            return Err(Error::Invalid(format!(
                "code {id} was redeemed already and became token {}: revoke that token instead",
                e.token_id
            )));
        }
        if e.revoked {
            return Ok(e);
        }
        e.revoked = true;
        let mut work = Work::new(guard, caller, now_ms)?;
        put(&mut work, &hash, &e);
        let detail = format!("revoked enrollment code {id} of {}", e.user_id);
        let entry = work.entry(AuditKind::Token, detail);
        work.audit(entry);
        work.commit()?;
        Ok(e)
    }

    /// Trades a code for a token of its user, once: the record is marked
    /// used in the same atomic batch that stores the token, so two devices
    /// racing with one code get one token between them. A code of another
    /// user than `expected_user` is refused and stays usable.
    pub fn redeem(
        &self,
        code: &str,
        device_label: &str,
        expected_user: Option<&str>,
        now_ms: u64,
    ) -> Result<Redeemed> {
        let code = normalise(code);
        if !well_formed(&code) {
            return Err(Error::Unauthenticated(NOT_VALID.into()));
        }
        let hash = code_hash(&code);
        let guard = self.write_lock();
        let mut e = match Key::Enrollment(hash.clone()).get(self.engine.as_ref())? {
            Some(bytes) => read(&bytes)?,
            None => return Err(Error::Unauthenticated(NOT_VALID.into())),
        };
        if !e.is_open(now_ms) {
            return Err(Error::Unauthenticated(NOT_VALID.into()));
        }
        let user =
            self.user(&e.user_id)?.ok_or_else(|| Error::Unauthenticated(NOT_VALID.into()))?;
        if let Some(expected) = expected_user.map(str::trim).filter(|u| !u.is_empty()) {
            if expected != user.id {
                return Err(Error::OutOfSequence(format!(
                    "this code is for {} ({}), but this device holds unsent edits of {expected}: \
                     ask for a code for {expected}, or export the unsent edits first",
                    user.id, user.name
                )));
            }
        }
        if user.disabled {
            return Err(Error::Unauthenticated(format!(
                "user {} is disabled: ask your supervisor",
                user.id
            )));
        }
        let label = clean_label(device_label);
        check_name("a token's label", &label)?;
        let token = new_token();
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            user_id: user.id.clone(),
            label,
            created_ms: now_ms,
            expires_ms: 0,
            revoked: false,
        };
        let device = DeviceId(uuid::Uuid::new_v4());
        e.token_id = info.id.clone();
        let mut work = Work::new(guard, &user, now_ms)?;
        put(&mut work, &hash, &e);
        put_token(&mut work.batch, &token, &info);
        let owned = DeviceState { owner: user.id.clone(), ..DeviceState::default() };
        Key::Device(device).put(&mut work.batch, owned.encode());
        let detail = format!(
            "redeemed enrollment code {} of {}: token {} ({}) for device {device}",
            e.id, user.id, info.id, info.label
        );
        let mut entry = work.entry(AuditKind::Token, detail);
        entry.device = Some(device);
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok(Redeemed { token, info, device, user })
    }

    /// The users the caller may enroll a device of, in id order, at most
    /// `limit`, and whether there were more.
    pub fn enrollable_users(&self, caller: &User, limit: usize) -> Result<(Vec<User>, bool)> {
        let catalogue = self.catalogue();
        let mut out = Vec::new();
        for user in self.users()? {
            if user.disabled || caller.may_enroll(&catalogue, &user).is_err() {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(user);
        }
        Ok((out, false))
    }

    /// The live tokens of the devices the caller may enroll for (app
    /// tokens and others alike), oldest first.
    pub fn device_tokens(&self, caller: &User, now_ms: u64) -> Result<Vec<TokenInfo>> {
        let catalogue = self.catalogue();
        let mut allowed: HashMap<String, bool> = HashMap::new();
        let mut out = Vec::new();
        let rows = self.engine.iter_all(TOKENS).collect::<fieldsync_store::Result<Vec<_>>>()?;
        for (_, bytes) in rows {
            let t: TokenInfo = decode(TOKENS, &bytes)?;
            if t.revoked || (t.expires_ms != 0 && t.expires_ms <= now_ms) {
                continue;
            }
            let may = match allowed.get(&t.user_id) {
                Some(may) => *may,
                None => {
                    let may = self
                        .user(&t.user_id)?
                        .is_some_and(|u| caller.may_enroll(&catalogue, &u).is_ok());
                    allowed.insert(t.user_id.clone(), may);
                    may
                }
            };
            if may {
                out.push(t);
            }
        }
        out.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Revokes a token of a user the caller may enroll for (a lost phone):
    /// what `revoke_token` does for admins, for the surveyor's supervisor.
    pub fn revoke_device_token(&self, caller: &User, id: &str, now_ms: u64) -> Result<TokenInfo> {
        let id = id.trim();
        let guard = self.write_lock();
        let missing = || Error::NotFound(format!("no token {id:?}"));
        let hash = Key::TokenId(id.into()).get(self.engine.as_ref())?.ok_or_else(missing)?;
        let mut info: TokenInfo = decode(
            TOKENS,
            &Key::Token(hash.clone()).get(self.engine.as_ref())?.ok_or_else(missing)?,
        )?;
        let user = self.user(&info.user_id)?.ok_or_else(missing)?;
        caller.may_enroll(&self.catalogue(), &user)?;
        if info.revoked {
            return Ok(info);
        }
        info.revoked = true;
        let mut work = Work::new(guard, caller, now_ms)?;
        Key::Token(hash).put(&mut work.batch, encode(&info));
        let detail = format!("revoked token {id} of {}", info.user_id);
        let entry = work.entry(AuditKind::Token, detail);
        work.audit(entry);
        work.commit_then(|_| self.forget_sign_ins())?;
        Ok(info)
    }

    /// Problems with the enrollment records: each must decode, be named by
    /// its id and filed under its user.
    pub(super) fn enrollment_problems(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for entry in self.engine.iter_all(ENROLLMENTS) {
            let (hash, bytes) = entry?;
            let e = match read(&bytes) {
                Ok(e) => e,
                Err(err) => {
                    problems.push(format!("an enrollment record cannot be read: {err}"));
                    continue;
                }
            };
            let by_id = Key::EnrollmentId(e.id.clone()).get(self.engine.as_ref())?;
            if by_id.as_deref() != Some(&hash[..]) {
                problems.push(format!("enrollment {} is not found by its id", e.id));
            }
            let filed = Key::EnrollmentByUser(e.user_id.clone(), e.id.clone());
            if filed.get(self.engine.as_ref())?.is_none() {
                problems.push(format!("enrollment {} is not filed under {}", e.id, e.user_id));
            }
            if e.expires_ms <= e.created_ms {
                problems.push(format!("enrollment {} expires before it was made", e.id));
            }
        }
        Ok(problems)
    }
}

/// "app: Chrome on Android", with control characters dropped and the
/// device's part cut to [`MAX_DEVICE_LABEL_CHARS`].
fn clean_label(device_label: &str) -> String {
    let device: String = device_label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_DEVICE_LABEL_CHARS)
        .collect();
    match device.is_empty() {
        true => "app".into(),
        false => format!("app: {device}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_read_in_two_groups() {
        for _ in 0..200 {
            let code = new_code();
            assert!(well_formed(&code), "{code}");
            let shown = display_code(&code);
            assert_eq!(shown.len(), CODE_LEN + 1);
            assert_eq!(&shown[5..6], "-");
            assert_eq!(normalise(&shown), code);
        }
        assert_eq!(normalise(" abcde-fghjk "), "ABCDEFGHJK");
        assert_eq!(normalise("ABC DE\tFG-HJK"), "ABCDEFGHJK");
        assert!(!well_formed("ABCDEFGHJ0"), "0 is not in the alphabet");
        assert!(!well_formed("ABCDEFGHJ"), "too short");
    }

    /// A store with `admin` and the surveyor `an` of Phúc Đồng.
    fn store_with_surveyor() -> (Store, User) {
        let store = Store::open(
            std::sync::Arc::new(fieldsync_store::Memory::new()),
            fieldsync::demo::catalogue,
        )
        .unwrap();
        store.ensure_admin(Some("a-test-admin-token-0123456789"), 1).unwrap();
        let admin = store.user("admin").unwrap().unwrap();
        let an = User {
            id: "an".into(),
            name: "An".into(),
            role: Role::Surveyor,
            areas: vec![fieldsync::demo::SAMPLE_COMMUNE.into()],
            disabled: false,
        };
        store.create_user(&admin, an, 1).unwrap();
        (store, admin)
    }

    #[test]
    fn open_codes_are_bounded_per_user_and_closed_ones_pruned() {
        let (store, admin) = store_with_surveyor();
        let t0 = 1_000_000;
        for i in 0..MAX_OPEN_PER_USER as u64 {
            store.create_enrollment(&admin, "an", 60, t0 + i).unwrap();
        }
        let refused = store.create_enrollment(&admin, "an", 60, t0 + 100).unwrap_err();
        assert!(
            matches!(&refused, Error::Exhausted(m) if m.contains("20 open codes")),
            "{refused}"
        );
        // An hour later they have all expired: the next code prunes them.
        let later = t0 + 3_600_000;
        assert!(store.enrollments(&admin, None, later).unwrap().is_empty());
        store.create_enrollment(&admin, "an", 60, later).unwrap();
        assert_eq!(store.all_enrollments().unwrap().len(), 1, "the expired ones are gone");
        assert_eq!(store.enrollments(&admin, Some("an"), later).unwrap().len(), 1);
        assert!(store.check().unwrap().is_empty());
    }

    #[test]
    fn check_finds_an_enrollment_missing_from_its_indexes() {
        let (store, admin) = store_with_surveyor();
        let (_, e) = store.create_enrollment(&admin, "an", 0, 5_000).unwrap();
        let mut batch = fieldsync_store::Batch::default();
        Key::EnrollmentId(e.id.clone()).delete(&mut batch);
        store.engine.commit(batch).unwrap();
        let problems = store.check().unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&format!("enrollment {} is not found by its id", e.id))),
            "{problems:?}"
        );
    }

    #[test]
    fn device_labels_are_cleaned_and_bounded() {
        assert_eq!(clean_label("Chrome on\nAndroid\u{1b}[2J"), "app: Chrome on Android [2J");
        assert_eq!(clean_label("   "), "app");
        assert_eq!(clean_label(&"x".repeat(500)).chars().count(), 5 + MAX_DEVICE_LABEL_CHARS);
    }
}
