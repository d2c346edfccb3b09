//! Accepting connections, for gRPC and the web pages alike: a server-wide
//! cap and a cap per peer IP address (so that one address cannot take every
//! place), and the server's TLS identity.
//!
//! Connections beyond a cap are closed as they arrive; those already open
//! go on being served. Connections from the machine itself (`127.0.0.1`,
//! `::1`) are held to the server-wide cap only: that is where a reverse
//! proxy in front of the server connects from, for every user behind it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls;

/// The places of one listener: at most `max` connections open at once, at
/// most `per_ip` of them from one address.
#[derive(Clone)]
pub struct Gate {
    what: &'static str,
    permits: Arc<Semaphore>,
    per_ip: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place at a [`Gate`], given back when dropped.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Gate {
    /// `what` names the listener in the server's log.
    pub fn new(what: &'static str, max: usize, per_ip: usize) -> Gate {
        Gate {
            what,
            permits: Arc::new(Semaphore::new(max.max(1))),
            per_ip: per_ip.max(1),
            open: Arc::default(),
        }
    }

    /// A place for a new connection from `ip`, or `None` when the server
    /// or that address already has as many as it may.
    pub fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.get(&ip).copied().unwrap_or(0);
        let local =
            ip == IpAddr::from(Ipv4Addr::LOCALHOST) || ip == IpAddr::from(Ipv6Addr::LOCALHOST);
        if mine >= self.per_ip && !local {
            tracing::warn!(listener = self.what, %ip, per_ip = self.per_ip,
                "too many connections from one address: closing a new one");
            return None;
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            tracing::warn!(listener = self.what, "too many connections: closing a new one");
            return None;
        };
        open.insert(ip, mine + 1);
        Some(Admitted { _permit: permit, ip, open: Arc::clone(&self.open) })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The server's certificate chain and private key (PEM), as given by
/// `--tls-cert` and `--tls-key`: gRPC and the web pages are both served
/// over TLS with them.
#[derive(Clone)]
pub struct Tls {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

impl Tls {
    pub fn from_pem(cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Tls {
        Tls { cert: cert.into(), key: key.into() }
    }

    /// The identity tonic serves gRPC with.
    pub fn identity(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert, &self.key)
    }

    /// A rustls configuration for the web pages (HTTP/1.1).
    pub fn web_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use anyhow::Context;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .context("the TLS certificate (--tls-cert) is not a PEM certificate chain")?;
        anyhow::ensure!(
            !chain.is_empty(),
            "the TLS certificate file (--tls-cert) holds no certificate"
        );
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .context("the TLS key (--tls-key) is not a PEM private key")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the TLS key (--tls-key) does not match the certificate (--tls-cert)")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_place() {
        let gate = Gate::new("test", 3, 2);
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let first = gate.admit(a).expect("a's first");
        let _second = gate.admit(a).expect("a's second");
        assert!(gate.admit(a).is_none(), "a third from a is refused");
        let _other = gate.admit(b).expect("b still gets a place");
        assert!(gate.admit(b).is_none(), "the server is full");
        drop(first);
        assert!(gate.admit(a).is_some(), "a place given back is free again");
    }

    #[test]
    fn the_machine_itself_is_held_to_the_server_wide_cap_only() {
        let gate = Gate::new("test", 3, 1);
        let proxy = IpAddr::from(Ipv4Addr::LOCALHOST);
        let held: Vec<_> = (0..3).map(|_| gate.admit(proxy).expect("a place")).collect();
        assert!(gate.admit(proxy).is_none(), "the server is full");
        drop(held);
        let mapped = IpAddr::from(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let _one = gate.admit(IpAddr::from([127, 0, 0, 2])).expect("another address");
        assert!(gate.admit(IpAddr::from([127, 0, 0, 2])).is_none(), "capped");
        assert!(gate.admit(mapped).is_some() && gate.admit(mapped).is_some());
    }
}
