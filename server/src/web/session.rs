//! Signed-in browsers: a random session id in an HttpOnly, SameSite=Strict
//! cookie names an entry of a bounded in-memory map that holds the user's
//! token (never sent back to the browser, never logged) and the session's
//! CSRF token. Sessions end on sign-out, after [`IDLE`] without a request,
//! after [`LIFETIME`] in any case, or when the map is full and they are the
//! least recently used. One user holds at most [`PER_USER`] sessions: a
//! sign-in beyond them ends that user's least recently used one, so no token
//! holder can push everyone else's sessions out by signing in over and over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub use crate::config::{
    MAX_SESSIONS, SESSIONS_PER_USER as PER_USER, SESSION_IDLE as IDLE, SESSION_LIFETIME as LIFETIME,
};

/// A bearer token held for a session. Its `Debug` hides it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(token: &str) -> Secret {
        Secret(token.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a session holds.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user the token signed in.
    pub user: String,
    pub token: Secret,
    /// Sent in a hidden field of every form and checked on every POST.
    pub csrf: String,
    created: Instant,
    seen: Instant,
}

/// 256 random bits as hex: session ids and CSRF tokens.
pub fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The sessions of this server.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    max: usize,
    per_user: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(MAX_SESSIONS, PER_USER)
    }
}

impl Sessions {
    pub fn new(max: usize, per_user: usize) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), max: max.max(1), per_user: per_user.max(1) }
    }

    fn live(s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < LIFETIME
    }

    /// Starts a session of `user` for `token`; returns its id.
    pub fn create(&self, user: &str, token: Secret) -> String {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            map.retain(|_, s| Self::live(s, now));
        }
        // The user's own least recently used sessions make room first.
        loop {
            let theirs = map.iter().filter(|(_, s)| s.user == user);
            if theirs.clone().count() < self.per_user {
                break;
            }
            match theirs.min_by_key(|(_, s)| s.seen).map(|(id, _)| id.clone()) {
                Some(id) => map.remove(&id),
                None => break,
            };
        }
        while map.len() >= self.max {
            let oldest = map.iter().min_by_key(|(_, s)| s.seen).map(|(id, _)| id.clone());
            match oldest {
                Some(id) => map.remove(&id),
                None => break,
            };
        }
        let id = random_id();
        let user = user.to_owned();
        map.insert(id.clone(), Session { user, token, csrf: random_id(), created: now, seen: now });
        id
    }

    /// The live session with this id (and marks it used), if any.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let session = map.get_mut(id)?;
        if !Self::live(session, now) {
            map.remove(id);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_map_is_bounded_and_drops_the_least_recently_used() {
        let sessions = Sessions::new(2, 2);
        let a = sessions.create("an", Secret::new("a"));
        let b = sessions.create("binh", Secret::new("b"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(sessions.get(&a).is_some(), "a is now the most recently used");
        let c = sessions.create("chi", Secret::new("c"));
        assert_eq!(sessions.len(), 2);
        assert!(sessions.get(&b).is_none(), "b was the least recently used");
        assert!(sessions.get(&a).is_some() && sessions.get(&c).is_some());
        sessions.remove(&a);
        assert!(sessions.get(&a).is_none());
    }

    #[test]
    fn signing_in_over_and_over_ends_only_ones_own_sessions() {
        let sessions = Sessions::new(100, 3);
        let giam = sessions.create("giam", Secret::new("giam-token"));
        let mallory: Vec<String> =
            (0..10_000).map(|_| sessions.create("mallory", Secret::new("m"))).collect();
        assert!(sessions.get(&giam).is_some(), "another user's session survives");
        assert_eq!(sessions.len(), 4, "mallory holds 3 sessions, giam 1");
        let live = mallory.iter().filter(|id| sessions.get(id).is_some()).count();
        assert_eq!(live, 3);
    }

    #[test]
    fn ids_are_random_and_tokens_stay_hidden() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 64);
        assert!(!format!("{:?}", Secret::new("fs_secret")).contains("fs_secret"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
