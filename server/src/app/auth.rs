//! Signing a caller in: a bearer token becomes a [`User`] (the store keeps
//! the tokens seen lately in memory, so a known token reads no record),
//! and each user is held to a call rate shared by every adapter. The gRPC
//! interceptor and the web pages' sessions both ask [`App::sign_in`].

use std::collections::HashMap;
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
}
