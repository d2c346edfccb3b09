//! The tablet's own store: what it last heard from the server, the outbox of
//! edits not yet acknowledged, conflicts and refusals. Every method that
//! changes something commits one atomic, flushed batch before it returns, so
//! an edit the surveyor saw accepted survives a crash or a flat battery.
//!
//! The value a surveyor sees is the latest pending edit of a field if there is
//! one, else the server's value: a pull never hides an edit not yet pushed.
//!
//! Trees (values postcard-encoded):
//! - `meta`: `meta` → [`Meta`]; `catalogue` → the catalogue from bootstrap.
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
use fieldsync::validate::{bounding_indicators, check_parts, validate};
use fieldsync::{Catalogue, DeviceId, FieldKey, Hlc, Period, SubmissionId, Value};
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
        batch.put(META, CATALOGUE_KEY, encode(&catalogue));
        engine.commit(batch)?;
        Ok(Tablet { engine, catalogue, meta: Mutex::new(meta) })
    }

    /// Opens an initialised tablet.
    pub fn open(engine: Arc<dyn Engine>) -> Result<Tablet> {
        let meta = engine.get(META, META_KEY)?.ok_or(Error::NotInitialised)?;
        let meta: Meta = decode(META, &meta)?;
        let catalogue = engine.get(META, CATALOGUE_KEY)?.ok_or(Error::NotInitialised)?;
        let catalogue = decode(META, &catalogue)?;
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

    /// Replaces the catalogue with a newer one from the server.
    pub fn set_catalogue(&mut self, catalogue: Catalogue) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(META, CATALOGUE_KEY, encode(&catalogue));
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
            let mut siblings = HashMap::new();
            for code in bounding_indicators(&self.catalogue, &at.field) {
                let key = FieldKey::Indicator(code.to_owned());
                let value = match overlay.get(&key) {
                    Some(v) => Some(v.clone()),
                    None => self.field(at.submission, &key)?.map(|f| f.value),
                };
                if let Some(Value::Amount(a)) = value {
                    siblings.insert(code, a);
                }
            }
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
