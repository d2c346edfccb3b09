//! The tablet's own store: what it last heard from the server, the outbox of
//! edits not yet acknowledged, conflicts and refusals. Every method that
//! changes something commits one atomic, flushed batch before it returns, so
//! an edit the surveyor saw accepted survives a crash or a flat battery.
//!
//! The value a surveyor sees is the latest pending edit of a field if there is
//! one, else the server's value: a pull never hides an edit not yet pushed.
//!
//! Trees (values postcard-encoded):
//! - `meta`: `meta` → [`Meta`]; `catalogue` → the catalogue from bootstrap;
//!   `user` → the id of the user the tablet records for (tablets set up
//!   before it was kept lack it); `retired` → indicator code → the period
//!   it is retired from (absent: none retired).
//! - `synced`: submission ‖ field → [`FieldState`] as the server last said.
//! - `outbox`: mutation id → [`Mutation`], in the order they were made.
//! - `pending`: submission ‖ field → [`Pending`], the latest edit not yet acknowledged.
//! - `conflicts`: submission ‖ field → [`Conflict`].
//! - `rejected`: mutation id → [`Refusal`].
//! - `reviews`: submission → [`SubmissionReview`], the supervisors' decisions.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use fieldsync::sync::{
    Change, Conflict, FieldRef, FieldState, Mutation, MutationResult, Outcome, Page, RawValue,
    SubmissionReview,
};
use fieldsync::validate::{check_parts, part_siblings, validate};
use fieldsync::{Catalogue, DeviceId, FieldKey, Hlc, Period, SubmissionId, TreeHistory, Value};
use fieldsync_store::{Batch, Engine};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};

const META: &str = "meta";
const SYNCED: &str = "synced";
const OUTBOX: &str = "outbox";
const PENDING: &str = "pending";
const CONFLICTS: &str = "conflicts";
const REJECTED: &str = "rejected";
const REVIEWS: &str = "reviews";

const META_KEY: &[u8] = b"meta";
const CATALOGUE_KEY: &[u8] = b"catalogue";
const USER_KEY: &[u8] = b"user";
const RETIRED_KEY: &[u8] = b"retired";

/// Writes `catalogue` into `batch`: the catalogue as it always was, and
/// its retired indicators beside it (so older tablets' records still read).
fn put_catalogue(batch: &mut Batch, catalogue: &Catalogue) {
    batch.put(META, CATALOGUE_KEY, encode(catalogue));
    batch.put(META, RETIRED_KEY, encode(&catalogue.history().retired_indicators));
}

/// Who this tablet is and where it stands with the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub device: DeviceId,
    pub server: String,
    /// The bearer token the tablet signs in with.
    pub token: String,
    pub author: String,
    /// The cursor of the last pull page stored.
    pub cursor: u64,
    /// The id the next edit gets.
    pub next_mutation_id: u64,
    /// The highest mutation id whose result is stored here.
    pub acknowledged_through: u64,
    pub hlc: Hlc,
    pub last_sync_ms: Option<u64>,
}

/// The latest edit of a field that the server has not acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub mutation_id: u64,
    pub value: Value,
}

/// An edit the server refused, kept so the surveyor can see why and fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub mutation: Mutation,
    pub reason: String,
}

/// A field as the surveyor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalField {
    pub at: FieldRef,
    pub value: Value,
    /// Not yet acknowledged by the server.
    pub pending: bool,
    /// The server's value and version, if it has one.
    pub synced: Option<FieldState>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("in-memory serialization of plain data cannot fail")
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes)
        .map_err(|e| Error::Corrupt(format!("unreadable record in {tree}: {e}")))
}

fn field_key(sub: SubmissionId, field: &FieldKey) -> Vec<u8> {
    let mut key = sub.0.as_bytes().to_vec();
    key.extend_from_slice(field.as_str().as_bytes());
    key
}

/// A tablet's local store.
pub struct Tablet {
    engine: Arc<dyn Engine>,
    catalogue: Catalogue,
    meta: Mutex<Meta>,
}

impl Tablet {
    /// Sets up a new tablet with its identity and the catalogue from bootstrap.
    pub fn init(engine: Arc<dyn Engine>, meta: Meta, catalogue: Catalogue) -> Result<Tablet> {
        if engine.get(META, META_KEY)?.is_some() {
            return Err(Error::Invalid(
                "this tablet is already initialised; use a new --home to start another".into(),
            ));
        }
        let mut batch = Batch::default();
        batch.put(META, META_KEY, encode(&meta));
        put_catalogue(&mut batch, &catalogue);
        engine.commit(batch)?;
        Ok(Tablet { engine, catalogue, meta: Mutex::new(meta) })
    }

    /// Opens an initialised tablet.
    pub fn open(engine: Arc<dyn Engine>) -> Result<Tablet> {
        let meta = engine.get(META, META_KEY)?.ok_or(Error::NotInitialised)?;
        let meta: Meta = decode(META, &meta)?;
        let catalogue = engine.get(META, CATALOGUE_KEY)?.ok_or(Error::NotInitialised)?;
        let catalogue: Catalogue = decode(META, &catalogue)?;
        let catalogue = match engine.get(META, RETIRED_KEY)? {
            None => catalogue,
            Some(bytes) => {
                let retired_indicators: BTreeMap<String, Period> = decode(META, &bytes)?;
                catalogue
                    .with_history(TreeHistory { retired_indicators, ..Default::default() })
                    .map_err(|e| Error::Corrupt(format!("the stored catalogue: {e}")))?
            }
        };
        Ok(Tablet { engine, catalogue, meta: Mutex::new(meta) })
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn meta(&self) -> Meta {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of the user this tablet records for, if it is known (tablets
    /// set up by older versions know only the name, [`Meta::author`]).
    pub fn user_id(&self) -> Result<Option<String>> {
        self.get(META, USER_KEY)
    }

    /// Signs the tablet in with `token` of `user_id` from now on, keeping its
    /// device id, outbox, cursor and everything synced. The caller checks
    /// that the token is the same user's: a tablet id belongs to one user.
    pub fn take_token(&self, token: &str, user_id: &str, user_name: &str) -> Result<()> {
        let mut meta = self.lock();
        let next = Meta { token: token.to_owned(), author: user_name.to_owned(), ..meta.clone() };
        let mut batch = Batch::default();
        batch.put(META, META_KEY, encode(&next));
        batch.put(META, USER_KEY, encode(&user_id.to_owned()));
        self.engine.commit(batch)?;
        *meta = next;
        Ok(())
    }

    /// Replaces the catalogue with a newer one from the server.
    pub fn set_catalogue(&mut self, catalogue: Catalogue) -> Result<()> {
        let mut batch = Batch::default();
        put_catalogue(&mut batch, &catalogue);
        self.engine.commit(batch)?;
        self.catalogue = catalogue;
        Ok(())
    }

    fn get<T: DeserializeOwned>(&self, tree: &'static str, key: &[u8]) -> Result<Option<T>> {
        self.engine.get(tree, key)?.map(|b| decode(tree, &b)).transpose()
    }

    fn all<T: DeserializeOwned>(&self, tree: &'static str) -> Result<Vec<T>> {
        self.engine
            .scan(tree, Bound::Unbounded, Bound::Unbounded, usize::MAX)?
            .iter()
            .map(|(_, v)| decode(tree, v))
            .collect()
    }

    /// Records edits of one submission, all or none: each is checked against
    /// the catalogue first, so a typing mistake is caught on the tablet, offline.
    /// Durable when this returns.
    pub fn record(
        &self,
        village_id: &str,
        period: &str,
        edits: &[(String, RawValue)],
        now_ms: u64,
    ) -> Result<Vec<Mutation>> {
        if edits.is_empty() {
            return Err(Error::Invalid("nothing to record: give at least one field=value".into()));
        }
        let mut meta = self.lock();
        let mut next = meta.clone();
        let mut batch = Batch::default();
        let mut overlay: HashMap<FieldKey, Value> = HashMap::new();
        let mut made = Vec::new();
        for (field, value) in edits {
            let village = self.catalogue.village(village_id)?;
            let period_parsed: Period = period.parse()?;
            let at = FieldRef::new(&village.id, period_parsed, FieldKey::parse(field));
            let synced: Option<FieldState> =
                self.get(SYNCED, &field_key(at.submission, &at.field))?;
            next.hlc = next.hlc.tick(now_ms);
            let mutation = Mutation {
                id: next.next_mutation_id,
                village_id: village.id.clone(),
                period: period_parsed.to_string(),
                field: at.field.to_string(),
                value: value.clone(),
                base_version: synced.as_ref().map_or(0, |s| s.version),
                hlc: next.hlc,
                author: next.author.clone(),
            };
            let target = validate(&self.catalogue, &mutation)?;
            let read = |key: &FieldKey| -> Result<Option<Value>> {
                match overlay.get(key) {
                    Some(v) => Ok(Some(v.clone())),
                    None => Ok(self.field(at.submission, key)?.map(|f| f.value)),
                }
            };
            let siblings = part_siblings(&self.catalogue, &at.field, read)?;
            check_parts(&self.catalogue, &at.field, &target.value, |c| siblings.get(c).copied())?;
            overlay.insert(at.field.clone(), target.value.clone());
            let pending = Pending { mutation_id: mutation.id, value: target.value };
            batch.put(OUTBOX, mutation.id.to_be_bytes().to_vec(), encode(&mutation));
            batch.put(PENDING, field_key(at.submission, &at.field), encode(&pending));
            next.next_mutation_id += 1;
            made.push(mutation);
        }
        batch.put(META, META_KEY, encode(&next));
        self.engine.commit(batch)?;
        *meta = next;
        Ok(made)
    }

    /// The oldest `limit` edits not yet acknowledged.
    pub fn outbox(&self, limit: usize) -> Result<Vec<Mutation>> {
        self.engine
            .scan(OUTBOX, Bound::Unbounded, Bound::Unbounded, limit)?
            .iter()
            .map(|(_, v)| decode(OUTBOX, v))
            .collect()
    }

    /// How many edits wait to be pushed.
    pub fn outbox_len(&self) -> Result<usize> {
        Ok(self.engine.scan(OUTBOX, Bound::Unbounded, Bound::Unbounded, usize::MAX)?.len())
    }

    /// Stores the server's answers to a push: acknowledged edits leave the
    /// outbox (and only those), refusals are kept with their reasons until a
    /// later edit of the same field is accepted.
    pub fn apply_push(&self, results: &[MutationResult], server_hlc: Hlc) -> Result<()> {
        let mut meta = self.lock();
        let mut next = meta.clone();
        let mut batch = Batch::default();
        let mut synced_now: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut refusals = self.refusals()?;
        for r in results {
            let key = r.id.to_be_bytes().to_vec();
            let Some(mutation) = self.get::<Mutation>(OUTBOX, &key)? else {
                continue; // acknowledged before
            };
            batch.delete(OUTBOX, key.clone());
            if r.outcome == Outcome::Rejected {
                let refusal = Refusal { mutation: mutation.clone(), reason: r.reason.clone() };
                batch.put(REJECTED, key, encode(&refusal));
                refusals.push(refusal);
            } else {
                // An accepted later edit of the same field settles its earlier refusals.
                let same_field = |m: &Mutation| {
                    (&m.village_id, &m.period, &m.field)
                        == (&mutation.village_id, &mutation.period, &mutation.field)
                };
                refusals.retain(|old| {
                    let settled = old.mutation.id < r.id && same_field(&old.mutation);
                    if settled {
                        batch.delete(REJECTED, old.mutation.id.to_be_bytes().to_vec());
                    }
                    !settled
                });
            }
            if let Ok(period) = mutation.period.parse::<Period>() {
                let at =
                    FieldRef::new(&mutation.village_id, period, FieldKey::parse(&mutation.field));
                let fkey = field_key(at.submission, &at.field);
                if self.get::<Pending>(PENDING, &fkey)?.is_some_and(|p| p.mutation_id == r.id) {
                    batch.delete(PENDING, fkey.clone());
                }
                if let Some(current) = &r.current {
                    next.hlc = next.hlc.observe(current.stamp.hlc);
                    let known = match synced_now.get(&fkey) {
                        Some(v) => Some(*v),
                        None => self.get::<FieldState>(SYNCED, &fkey)?.map(|s| s.version),
                    };
                    if known.is_none_or(|v| current.version >= v) {
                        batch.put(SYNCED, fkey.clone(), encode(current));
                        synced_now.insert(fkey, current.version);
                    }
                }
            }
            next.acknowledged_through = next.acknowledged_through.max(r.id);
        }
        next.hlc = next.hlc.observe(server_hlc);
        batch.put(META, META_KEY, encode(&next));
        self.engine.commit(batch)?;
        *meta = next;
        Ok(())
    }

    /// Gives the unsent edits from id `from` on the ids after `last`, the
    /// server's last mutation id for this tablet, keeping everything else
    /// about them. The server committed other mutations under those ids:
    /// this store was restored from an older copy of itself, and the edits
    /// made since are new. Edits below `from` were sent before (replays) and
    /// keep their ids. One flushed batch; returns how many edits moved.
    pub fn renumber(&self, from: u64, last: u64) -> Result<usize> {
        let mut meta = self.lock();
        let mut next = meta.clone();
        let start = from.to_be_bytes();
        let moved: Vec<Mutation> = self
            .engine
            .scan(OUTBOX, Bound::Included(start.as_slice()), Bound::Unbounded, usize::MAX)?
            .iter()
            .map(|(_, v)| decode(OUTBOX, v))
            .collect::<Result<_>>()?;
        let first = last
            .checked_add(1)
            .ok_or_else(|| Error::Refused(format!("mutation id {last} leaves no id after it")))?;
        let mut batch = Batch::default();
        // Every old key goes before any new one is written: the ranges overlap.
        for m in &moved {
            batch.delete(OUTBOX, m.id.to_be_bytes().to_vec());
        }
        let mut ids = HashMap::new();
        for (id, m) in (first..).zip(&moved) {
            ids.insert(m.id, id);
            batch.put(OUTBOX, id.to_be_bytes().to_vec(), encode(&Mutation { id, ..m.clone() }));
        }
        for (key, bytes) in
            self.engine.scan(PENDING, Bound::Unbounded, Bound::Unbounded, usize::MAX)?
        {
            let pending: Pending = decode(PENDING, &bytes)?;
            if let Some(&mutation_id) = ids.get(&pending.mutation_id) {
                batch.put(PENDING, key, encode(&Pending { mutation_id, ..pending }));
            }
        }
        next.next_mutation_id = next.next_mutation_id.max(first + moved.len() as u64);
        batch.put(META, META_KEY, encode(&next));
        self.engine.commit(batch)?;
        *meta = next;
        Ok(moved.len())
    }

    /// Stores one pull page and its cursor together.
    pub fn apply_page(&self, page: &Page, server_hlc: Hlc, now_ms: u64) -> Result<()> {
        let mut meta = self.lock();
        let mut next = meta.clone();
        let mut batch = Batch::default();
        let mut synced_now: HashMap<Vec<u8>, u64> = HashMap::new();
        for (_, change) in &page.changes {
            match change {
                Change::Field(state) => {
                    let fkey = field_key(state.at.submission, &state.at.field);
                    let known = match synced_now.get(&fkey) {
                        Some(v) => Some(*v),
                        None => self.get::<FieldState>(SYNCED, &fkey)?.map(|s| s.version),
                    };
                    if known.is_none_or(|v| state.version >= v) {
                        batch.put(SYNCED, fkey.clone(), encode(state));
                        synced_now.insert(fkey, state.version);
                    }
                    next.hlc = next.hlc.observe(state.stamp.hlc);
                }
                Change::Conflict(conflict) => {
                    let fkey = field_key(conflict.at.submission, &conflict.at.field);
                    batch.put(CONFLICTS, fkey, encode(conflict));
                }
                Change::Review(review) => {
                    batch.put(REVIEWS, review.submission.0.as_bytes().to_vec(), encode(review));
                }
            }
        }
        next.cursor = next.cursor.max(page.cursor);
        next.hlc = next.hlc.observe(server_hlc);
        if page.caught_up {
            next.last_sync_ms = Some(now_ms);
        }
        batch.put(META, META_KEY, encode(&next));
        self.engine.commit(batch)?;
        *meta = next;
        Ok(())
    }

    /// One field as the surveyor sees it.
    pub fn field(&self, sub: SubmissionId, field: &FieldKey) -> Result<Option<LocalField>> {
        let key = field_key(sub, field);
        let synced: Option<FieldState> = self.get(SYNCED, &key)?;
        let pending: Option<Pending> = self.get(PENDING, &key)?;
        Ok(match (pending, synced) {
            (Some(p), synced) => {
                let at = match &synced {
                    Some(s) => s.at.clone(),
                    None => self.pending_ref(sub, field, p.mutation_id)?,
                };
                Some(LocalField { at, value: p.value, pending: true, synced })
            }
            (None, Some(s)) => Some(LocalField {
                at: s.at.clone(),
                value: s.value.clone(),
                pending: false,
                synced: Some(s),
            }),
            (None, None) => None,
        })
    }

    fn pending_ref(&self, sub: SubmissionId, field: &FieldKey, id: u64) -> Result<FieldRef> {
        let m: Mutation = self.get(OUTBOX, &id.to_be_bytes())?.ok_or_else(|| {
            Error::Corrupt(format!("pending edit {id} of {sub} is not in the outbox"))
        })?;
        let period = m.period.parse()?;
        Ok(FieldRef::new(&m.village_id, period, field.clone()))
    }

    /// Every field on this tablet as the surveyor sees it, by submission.
    pub fn fields(&self) -> Result<BTreeMap<SubmissionId, Vec<LocalField>>> {
        let mut keys: Vec<(SubmissionId, FieldKey)> = Vec::new();
        for tree in [SYNCED, PENDING] {
            for (key, _) in
                self.engine.scan(tree, Bound::Unbounded, Bound::Unbounded, usize::MAX)?
            {
                keys.push(split_field_key(&key)?);
            }
        }
        keys.sort();
        keys.dedup();
        let mut out: BTreeMap<SubmissionId, Vec<LocalField>> = BTreeMap::new();
        for (sub, field) in keys {
            if let Some(f) = self.field(sub, &field)? {
                out.entry(sub).or_default().push(f);
            }
        }
        Ok(out)
    }

    /// The server's state of every field this tablet has heard of.
    pub fn synced(&self) -> Result<Vec<FieldState>> {
        self.all(SYNCED)
    }

    /// Every conflict this tablet has heard of.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.all(CONFLICTS)
    }

    /// The supervisors' latest decision on each submission this tablet holds.
    pub fn reviews(&self) -> Result<Vec<SubmissionReview>> {
        self.all(REVIEWS)
    }

    /// Edits the server refused, with its reasons.
    pub fn refusals(&self) -> Result<Vec<Refusal>> {
        self.all(REJECTED)
    }
}

fn split_field_key(key: &[u8]) -> Result<(SubmissionId, FieldKey)> {
    if key.len() < 16 {
        return Err(Error::Corrupt("short field key".into()));
    }
    let (sub, field) = key.split_at(16);
    let sub = uuid::Uuid::from_slice(sub).map_err(|e| Error::Corrupt(e.to_string()))?;
    let field = std::str::from_utf8(field).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok((SubmissionId(sub), FieldKey::parse(field)))
}

#[cfg(test)]
mod tests {
    use fieldsync::demo;
    use fieldsync_store::Memory;

    use super::*;

    fn tablet() -> Tablet {
        let meta = Meta {
            device: DeviceId(uuid::Uuid::from_u128(7)),
            server: "http://127.0.0.1:1".into(),
            token: "t".into(),
            author: "An".into(),
            cursor: 0,
            next_mutation_id: 1,
            acknowledged_through: 0,
            hlc: Hlc::default(),
            last_sync_ms: None,
        };
        Tablet::init(Arc::new(Memory::new()), meta, demo::catalogue()).unwrap()
    }

    fn record(t: &Tablet, field: &str, value: &str) {
        let edit = (field.to_owned(), RawValue::Amount(value.into()));
        t.record(demo::SAMPLE_VILLAGE, "2022", &[edit], 1).unwrap();
    }

    fn shows(t: &Tablet, field: &str) -> Option<(Value, bool)> {
        let sub = SubmissionId::of(demo::SAMPLE_VILLAGE, "2022".parse().unwrap());
        t.field(sub, &FieldKey::parse(field)).unwrap().map(|f| (f.value, f.pending))
    }

    /// The server holds ids 2..=4 of this tablet (sent from a store this
    /// one is an older copy of); the edits made here since (2 and 3) move
    /// after 4, overlapping ids included, and still show as pending.
    #[test]
    fn renumbering_moves_the_unsent_edits_after_the_servers_last_id() {
        let t = tablet();
        for (field, value) in [("road_km", "1"), ("drainage_km", "0.4"), ("playground", "3")] {
            record(&t, field, value);
        }
        let before: Vec<Mutation> = t.outbox(10).unwrap();
        assert_eq!(t.renumber(2, 4).unwrap(), 2);
        let after = t.outbox(10).unwrap();
        assert_eq!(after.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 5, 6]);
        for (old, new) in before.iter().zip(&after) {
            assert_eq!(Mutation { id: old.id, ..new.clone() }, *old, "only the id changed");
        }
        assert_eq!(t.meta().next_mutation_id, 7);
        assert_eq!(t.outbox_len().unwrap(), 3);
        let pending = |field: &str| {
            let sub = SubmissionId::of(demo::SAMPLE_VILLAGE, "2022".parse().unwrap());
            let key = field_key(sub, &FieldKey::parse(field));
            t.get::<Pending>(PENDING, &key).unwrap().map(|p| p.mutation_id)
        };
        assert_eq!(
            [pending("road_km"), pending("drainage_km"), pending("playground")],
            [Some(1), Some(5), Some(6)]
        );
        assert!(shows(&t, "playground").is_some_and(|(v, pending)| v.to_string() == "3" && pending));
        // The next edit follows them; reopened, the tablet holds the same.
        record(&t, "road_km", "2");
        assert_eq!(t.outbox(10).unwrap().last().map(|m| m.id), Some(7));
        let reopened = Tablet::open(Arc::clone(&t.engine)).unwrap();
        assert_eq!(reopened.meta().next_mutation_id, 8);
        assert_eq!(reopened.outbox_len().unwrap(), 4);
    }
}
