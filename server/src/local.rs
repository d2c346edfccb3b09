//! A server in this process, over sled in a directory: what the demo, the
//! benchmarks and the end-to-end tests start. It serves exactly what the
//! binary serves, on a port of its own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fieldsync::access::{Role, User};
use fieldsync::Catalogue;
use fieldsync_store::{Engine, Sled};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::db::{now_ms, Store};
use crate::{serve_all, Limits};

/// A running in-process server.
pub struct LocalServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `http://127.0.0.1:PORT` of the web pages, when started with them.
    pub web_url: Option<String>,
    pub store: Arc<Store>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl LocalServer {
    /// Opens (or creates, with the demo catalogue and user `admin` signing
    /// in with `admin_token`) the store in `dir` and serves it on `addr`
    /// (`127.0.0.1:0` for any free port).
    pub async fn start(dir: &Path, addr: &str, admin_token: &str) -> anyhow::Result<LocalServer> {
        Self::start_all(dir, addr, None, admin_token, fieldsync::demo::catalogue, Limits::default())
            .await
    }

    /// As [`LocalServer::start`], over `engine` instead of sled in a
    /// directory: a bench wraps the engine to count what the server writes.
    pub async fn start_over(
        engine: Arc<dyn Engine>,
        addr: &str,
        admin_token: &str,
    ) -> anyhow::Result<LocalServer> {
        let store = open_store(engine, admin_token, fieldsync::demo::catalogue).await?;
        Self::serve_store(store, addr, None, Limits::default()).await
    }

    /// As [`LocalServer::start`], with `catalogue` for a new store.
    pub async fn start_with(
        dir: &Path,
        addr: &str,
        admin_token: &str,
        catalogue: impl FnOnce() -> Catalogue + Send + 'static,
    ) -> anyhow::Result<LocalServer> {
        Self::start_all(dir, addr, None, admin_token, catalogue, Limits::default()).await
    }

    /// [`LocalServer::start`], with the web pages on `web_addr` too.
    pub async fn start_with_web(
        dir: &Path,
        addr: &str,
        web_addr: &str,
        admin_token: &str,
    ) -> anyhow::Result<LocalServer> {
        Self::start_web_with_limits(dir, addr, web_addr, admin_token, Limits::default()).await
    }

    /// [`LocalServer::start_with_web`], held to `limits`.
    pub async fn start_web_with_limits(
        dir: &Path,
        addr: &str,
        web_addr: &str,
        admin_token: &str,
        limits: Limits,
    ) -> anyhow::Result<LocalServer> {
        let catalogue = fieldsync::demo::catalogue;
        Self::start_all(dir, addr, Some(web_addr), admin_token, catalogue, limits).await
    }

    async fn start_all(
        dir: &Path,
        addr: &str,
        web_addr: Option<&str>,
        admin_token: &str,
        catalogue: impl FnOnce() -> Catalogue + Send + 'static,
        limits: Limits,
    ) -> anyhow::Result<LocalServer> {
        let dir = dir.to_owned();
        let engine = tokio::task::spawn_blocking(move || {
            Sled::open(&dir).with_context(|| format!("open {}", dir.display()))
        })
        .await??;
        let store = open_store(Arc::new(engine), admin_token, catalogue).await?;
        Self::serve_store(store, addr, web_addr, limits).await
    }

    /// Serves `store` on `addr` (and its web pages on `web_addr`).
    async fn serve_store(
        store: Store,
        addr: &str,
        web_addr: Option<&str>,
        limits: Limits,
    ) -> anyhow::Result<LocalServer> {
        let store = Arc::new(store);
        let listener = crate::bind(addr).await.with_context(|| format!("bind {addr}"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let http = match web_addr {
            Some(a) => Some(crate::bind(a).await.with_context(|| format!("bind {a}"))?),
            None => None,
        };
        let web_url = match &http {
            Some(h) => Some(format!("http://{}", h.local_addr()?)),
            None => None,
        };
        let (tx, rx) = oneshot::channel();
        let stop = async {
            let _ = rx.await;
        };
        let handle =
            tokio::spawn(serve_all(listener, http, Arc::clone(&store), limits, None, stop));
        Ok(LocalServer { url, web_url, store, shutdown: Some(tx), handle })
    }

    /// Shuts down gracefully and waits until the store (and sled's lock on
    /// its directory) is released, so the directory can be opened again.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.handle).await??;
        let store = Arc::clone(&self.store);
        drop(self);
        for _ in 0..500 {
            if Arc::strong_count(&store) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::ensure!(Arc::strong_count(&store) == 1, "the store is still in use after shutdown");
        Ok(())
    }

    /// Creates a user (as `admin`) and returns a new token for it.
    pub fn user(&self, id: &str, name: &str, role: Role, areas: &[&str]) -> anyhow::Result<String> {
        let admin = self.store.user("admin")?.context("the store has no admin")?;
        let user = User {
            id: id.to_owned(),
            name: name.to_owned(),
            role,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            disabled: false,
        };
        self.store.create_user(&admin, user, now_ms())?;
        Ok(self.store.issue_token(&admin, id, 0, "local", now_ms())?.0)
    }
}

/// Opens the store over `engine` (created with `catalogue` if new) with user
/// `admin` signing in with `admin_token`.
async fn open_store(
    engine: Arc<dyn Engine>,
    admin_token: &str,
    catalogue: impl FnOnce() -> Catalogue + Send + 'static,
) -> anyhow::Result<Store> {
    let token = admin_token.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
        let store = Store::open(engine, catalogue)?;
        store.ensure_admin(Some(&token), now_ms())?;
        Ok(store)
    })
    .await?
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
