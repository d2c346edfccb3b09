//! Signing a caller in: a bearer token becomes a [`User`] (the store keeps
//! the tokens seen lately in memory, so a known token reads no record),
//! and each user is held to a call rate shared by every adapter. The gRPC
//! interceptor and the web pages' sessions both ask [`App::sign_in`].
//! Beside them, the budget of wrong enrollment codes per address that
//! [`App::redeem`] holds a new device's address to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fieldsync::access::User;

use super::{now_ms, App, Error, Result};

/// The authenticated caller of a request, as the gRPC interceptor leaves it
/// on the request.
#[derive(Clone, Debug)]
pub struct Caller(pub User);

/// Per-user token buckets: each call takes a token; tokens come back at
/// `rate` per second up to `burst`.
pub(super) struct Rate {
    per_second: u32,
    rate: f64,
    burst: f64,
    users: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Rate {
    pub(super) fn new(per_second: u32, burst: u32) -> Rate {
        Rate {
            per_second,
            rate: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            users: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, user: &str) -> bool {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        // Forget users whose bucket has long been full again (bounded memory).
        if users.len() > 10_000 {
            let full = Duration::from_secs_f64(self.burst / self.rate.max(f64::MIN_POSITIVE));
            users.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = users.entry(user.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// Addresses whose failures are remembered at most; beyond, addresses not
/// yet seen share one bucket (so a flood of addresses cannot reset theirs).
pub const MAX_PEERS: usize = 10_000;

/// Wrong enrollment codes per address, as token buckets: at most
/// `Limits::enroll_failures_per_minute` a minute, refilled evenly.
pub(super) struct Guesses {
    rate: f64,
    burst: f64,
    peers: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

impl Guesses {
    pub(super) fn per_minute(per_minute: u32) -> Guesses {
        let per_minute = f64::from(per_minute.max(1));
        Guesses { rate: per_minute / 60.0, burst: per_minute, peers: Mutex::new(HashMap::new()) }
    }

    /// Takes one try from `peer`'s bucket, if it has one left: taken before
    /// the code is looked up, so that many tries at once cannot all slip
    /// through, and given back ([`Guesses::give_back`]) unless the code
    /// turns out wrong.
    pub(super) fn take(&self, peer: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
            // Forget the buckets that are full again; if none, share one.
            let full = Duration::from_secs_f64(self.burst / self.rate);
            peers.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let key = match peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
            true => None,
            false => peer,
        };
        let (tokens, at) = peers.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    /// Returns the try [`Guesses::take`] took, when the code was not wrong.
    pub(super) fn give_back(&self, peer: Option<IpAddr>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let key = if peers.contains_key(&peer) { peer } else { None };
        if let Some((tokens, _)) = peers.get_mut(&key) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }
}

/// The token of an `authorization` header's value (`None`: no header):
/// `Bearer <token>`, the scheme name in any case (RFC 7235).
pub fn bearer(header: Option<&str>) -> Result<&str> {
    let header = header.ok_or_else(|| {
        Error::unauthenticated(
            "no token: send `authorization: Bearer <token>` (ask an admin for a token)",
        )
    })?;
    header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| Error::unauthenticated("the authorization header must be `Bearer <token>`"))
}

impl App {
    /// The user `token` signs in, once the call is within the user's rate:
    /// unknown, expired or revoked tokens and disabled users are refused
    /// UNAUTHENTICATED, a call beyond the rate RESOURCE_EXHAUSTED.
    pub fn sign_in(&self, token: &str) -> Result<User> {
        let user = self.store.authenticate(token, now_ms())?;
        if !self.rate.take(&user.id) {
            return Err(Error::exhausted(format!(
                "too many calls from {}: at most {} a second on average; slow down and retry",
                user.id, self.rate.per_second
            )));
        }
        Ok(user)
    }

    /// [`App::sign_in`] with an `authorization` header's value.
    pub fn sign_in_bearer(&self, header: Option<&str>) -> Result<User> {
        self.sign_in(bearer(header)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_token_is_taken() {
        assert_eq!(bearer(Some("Bearer fs_abc ")).unwrap(), "fs_abc");
        assert_eq!(bearer(Some("bearer fs_abc")).unwrap(), "fs_abc");
        assert!(bearer(Some("Basic fs_abc")).is_err());
        assert!(bearer(Some("fs_abc")).is_err());
        assert_eq!(bearer(None).unwrap_err().kind, super::super::Kind::Unauthenticated);
    }

    #[test]
    fn calls_beyond_the_burst_are_refused_per_user() {
        let rate = Rate::new(1, 2);
        assert!(rate.take("a") && rate.take("a"));
        assert!(!rate.take("a"));
        assert!(rate.take("b"));
    }

    fn failures(per_second: f64, burst: f64) -> Guesses {
        Guesses { rate: per_second, burst, peers: Mutex::new(HashMap::new()) }
    }

    #[test]
    fn tries_run_out_per_address_come_back_with_time_and_when_not_wrong() {
        let (a, b) = (Some(IpAddr::from([10, 0, 0, 1])), Some(IpAddr::from([10, 0, 0, 2])));
        let slow = failures(1e-9, 3.0);
        for _ in 0..3 {
            assert!(slow.take(a));
        }
        assert!(!slow.take(a), "the fourth try at once is refused");
        assert!(slow.take(b), "another address is not affected");
        slow.give_back(a);
        assert!(slow.take(a), "a try that was not a wrong code is given back");
        let fast = failures(1000.0, 3.0);
        for _ in 0..3 {
            assert!(fast.take(a));
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(fast.take(a), "tries come back with time");
    }

    #[test]
    fn the_peer_map_stays_bounded() {
        let slow = failures(1e-9, 1.0);
        for i in 0..(MAX_PEERS as u32 + 50) {
            assert!(slow.take(Some(IpAddr::from(i.to_be_bytes()))) || i >= MAX_PEERS as u32);
        }
        assert!(slow.peers.lock().unwrap().len() <= MAX_PEERS + 1, "one shared bucket beyond");
        // Addresses beyond share one bucket: a new one finds it empty.
        assert!(!slow.take(Some(IpAddr::from([250, 1, 2, 3]))));
    }
}
