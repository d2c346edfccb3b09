//! The `fieldsync.v1.Enroll` service: the one call answered without a
//! token. A new device of a surveyor trades a one-time code for a token and
//! a device id of its own.
//!
//! Wrong codes are counted per peer address (IPv6 by its /64, which one
//! household or phone holds whole) in a token bucket: at most
//! `Limits::enroll_failures_per_minute` a minute, refilled evenly. An
//! address whose bucket is empty is refused RESOURCE_EXHAUSTED before its
//! code is even looked up, a right code included, so that guessing gains
//! nothing from being fast; other addresses are not affected. With 32¹⁰
//! codes and ten guesses a minute, a guess hits an open code about once in
//! ten thousand years per hundred thousand open codes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldsync_proto::convert;
use fieldsync_proto::v1::enroll_server::Enroll;
use fieldsync_proto::v1::{RedeemReply, RedeemRequest};
use fieldsync_proto::SCHEMA_VERSION;
use tonic::transport::server::TlsConnectInfo;
use tonic::{Request, Response, Status};

use super::admin::token_to_wire;
use super::{blocking, Connection, Limits};
use crate::app::{App, NOT_VALID};

/// Addresses whose failures are remembered at most; beyond, addresses not
/// yet seen share one bucket (so a flood of addresses cannot reset theirs).
pub const MAX_PEERS: usize = 10_000;

pub struct EnrollService {
    app: Arc<App>,
    guard: Arc<Failures>,
}

impl EnrollService {
    pub fn new(app: Arc<App>, limits: &Limits) -> Self {
        let per_minute = f64::from(limits.enroll_failures_per_minute.max(1));
        let guard = Failures {
            rate: per_minute / 60.0,
            burst: per_minute,
            peers: Mutex::new(HashMap::new()),
        };
        EnrollService { app, guard: Arc::new(guard) }
    }
}

/// Wrong codes per address, as token buckets.
struct Failures {
    rate: f64,
    burst: f64,
    peers: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

impl Failures {
    /// Takes one try from `peer`'s bucket, if it has one left: taken before
    /// the code is looked up, so that many tries at once cannot all slip
    /// through, and given back ([`Failures::give_back`]) unless the code
    /// turns out wrong.
    fn take(&self, peer: Option<IpAddr>) -> bool {
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

    /// Returns the try [`Failures::take`] took, when the code was not wrong.
    fn give_back(&self, peer: Option<IpAddr>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let key = if peers.contains_key(&peer) { peer } else { None };
        if let Some((tokens, _)) = peers.get_mut(&key) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }
}

/// The address a request came from, IPv6 cut to its /64; none when the
/// transport does not say (an in-process call that did not pass it on).
fn peer<T>(request: &Request<T>) -> Option<IpAddr> {
    let extensions = request.extensions();
    let address = extensions
        .get::<Connection>()
        .or_else(|| extensions.get::<TlsConnectInfo<Connection>>().map(|c| c.get_ref()))
        .and_then(|c| c.tcp.remote_addr)
        .or_else(|| request.remote_addr())?;
    Some(match address.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    })
}

/// Refuses a request from a device of a later schema (the use case
/// refuses codes and labels longer than any).
fn well_formed(req: &RedeemRequest) -> Result<(), Status> {
    if req.schema_version > SCHEMA_VERSION {
        return Err(Status::failed_precondition(format!(
            "this server speaks schema version {SCHEMA_VERSION}, the device {}: update the server",
            req.schema_version
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl Enroll for EnrollService {
    async fn redeem(
        &self,
        request: Request<RedeemRequest>,
    ) -> Result<Response<RedeemReply>, Status> {
        let peer = peer(&request);
        if !self.guard.take(peer) {
            return Err(Status::resource_exhausted(
                "too many wrong codes from this address: wait a minute, then type the code again \
                 carefully",
            ));
        }
        let req = request.into_inner();
        if let Err(refused) = well_formed(&req) {
            self.guard.give_back(peer);
            return Err(refused);
        }
        let redeemed = blocking(&self.app, move |app| {
            app.redeem(&req.code, &req.device_label, &req.expected_user_id)
        })
        .await;
        let wrong = matches!(&redeemed,
            Err(s) if s.code() == tonic::Code::Unauthenticated && s.message() == NOT_VALID);
        if !wrong {
            self.guard.give_back(peer);
        }
        match redeemed {
            Ok(r) => {
                tracing::info!(user = %r.user.id, token = %r.info.id, "enrolled a device");
                Ok(Response::new(RedeemReply {
                    token: r.token,
                    token_info: Some(token_to_wire(&r.info)),
                    device_id: r.device.0.to_string(),
                    user: Some(convert::user_to_wire(&r.user)),
                }))
            }
            Err(status) => Err(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(per_second: f64, burst: f64) -> Failures {
        Failures { rate: per_second, burst, peers: Mutex::new(HashMap::new()) }
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
