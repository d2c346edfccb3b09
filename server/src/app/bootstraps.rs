//! The parts of the catalogue tablets bootstrap from, built once per set
//! of areas and catalogue and kept while that catalogue is the current
//! one: a thousand tablets of the same areas starting together cost one
//! walk of the org tree, not a thousand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fieldsync::access::{Role, User};
use fieldsync::Catalogue;

use super::sync::Bootstrap;

/// Area sets remembered at most; the map starts afresh beyond, so what a
/// caller can make the server hold stays bounded.
pub const MAX_BOOTSTRAPS: usize = 1_024;

/// What decides a caller's part of the catalogue ([`Catalogue::visible_to`]):
/// everything for an admin, else the caller's areas (sorted, each once).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Sight {
    Everything,
    Areas(Vec<String>),
}

impl Sight {
    fn of(user: &User) -> Sight {
        if user.role == Role::Admin {
            return Sight::Everything;
        }
        let mut areas = user.areas.clone();
        areas.sort_unstable();
        areas.dedup();
        Sight::Areas(areas)
    }
}

/// The bootstraps built from one catalogue.
#[derive(Default)]
struct Built {
    /// The catalogue they were built from (held, so it is compared by
    /// identity: a changed catalogue is a new `Arc`).
    from: Option<Arc<Catalogue>>,
    parts: HashMap<Sight, Arc<Bootstrap>>,
}

impl Built {
    fn is_of(&self, catalogue: &Arc<Catalogue>) -> bool {
        self.from.as_ref().is_some_and(|c| Arc::ptr_eq(c, catalogue))
    }
}

/// Bootstraps by the areas they cover, for the current catalogue only.
#[derive(Default)]
pub(super) struct Bootstraps {
    built: Mutex<Built>,
}

impl Bootstraps {
    /// `user`'s part of `catalogue`, built now unless one of the same
    /// areas was built from this very catalogue.
    pub(super) fn of(&self, catalogue: &Arc<Catalogue>, user: &User) -> Arc<Bootstrap> {
        let sight = Sight::of(user);
        {
            let mut built = self.lock();
            if !built.is_of(catalogue) {
                *built = Built { from: Some(Arc::clone(catalogue)), parts: HashMap::new() };
            }
            if let Some(part) = built.parts.get(&sight) {
                return Arc::clone(part);
            }
        }
        // Built outside the lock: other callers are not held up by it.
        let part = Arc::new(Bootstrap::of(catalogue, user));
        let mut built = self.lock();
        // Kept only if the catalogue has not changed meanwhile.
        if built.is_of(catalogue) {
            if built.parts.len() >= MAX_BOOTSTRAPS {
                built.parts.clear();
            }
            built.parts.insert(sight, Arc::clone(&part));
        }
        part
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Built> {
        self.built.lock().unwrap_or_else(|e| e.into_inner())
    }
}
