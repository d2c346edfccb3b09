//! Shared harness of the end-to-end tests: an in-process server on port 0
//! over a sled store in a temp dir, and tablets with their own temp stores.

#![allow(dead_code)]

pub mod browser;
pub mod http;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fieldsync::access::Role;
use fieldsync::demo;
use fieldsync::DeviceId;
use fieldsync_client::local::Tablet;
use fieldsync_client::sync::{self, Report, Retry};
use fieldsync_client::{init_tablet, Api, Grpc};
use fieldsync_server::local::LocalServer;
use fieldsync_server::Store;
use fieldsync_store::Sled;
use tempfile::TempDir;

/// The sample village of the demo catalogue, and the period used throughout.
pub const VILLAGE: &str = demo::SAMPLE_VILLAGE;
pub const PERIOD: &str = "2022";

/// The token of the `admin` user every test server starts with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The status code and the server's words of a call of `client::api` the
/// server refused; any other error fails the test.
pub fn refusal(e: &fieldsync_client::Error) -> (tonic::Code, &str) {
    match e {
        fieldsync_client::Error::Status { code, message } => (*code, message),
        other => panic!("expected a refusal from the server, got: {other}"),
    }
}

/// A running server.
pub struct TestServer {
    pub url: String,
    pub store: Arc<Store>,
    pub dir: PathBuf,
    local: LocalServer,
}

/// Starts a server on `127.0.0.1:0` over the sled store in `dir` (created
/// with the demo catalogue and user `admin` signing in with [`ADMIN_TOKEN`]
/// if empty).
pub async fn start_server(dir: &Path) -> TestServer {
    let local = LocalServer::start(dir, "127.0.0.1:0", ADMIN_TOKEN).await.expect("start server");
    TestServer {
        url: local.url.clone(),
        store: Arc::clone(&local.store),
        dir: dir.to_owned(),
        local,
    }
}

/// [`start_server`], with the web pages on a port of their own too.
pub async fn start_web_server(dir: &Path) -> TestServer {
    start_web_server_with(dir, fieldsync_server::Limits::default()).await
}

/// [`start_web_server`] on given addresses: `start_web_server_at(dir,
/// &old.url, old.web_url())` after a stop brings a server back where its
/// apps left it (a web app's storage and service worker belong to its
/// origin, host and port).
pub async fn start_web_server_at(dir: &Path, grpc: &str, web: &str) -> TestServer {
    let strip = |url: &str| url.trim_start_matches("http://").to_owned();
    let local = LocalServer::start_web_with_limits(
        dir,
        &strip(grpc),
        &strip(web),
        ADMIN_TOKEN,
        fieldsync_server::Limits::default(),
    )
    .await
    .expect("start server");
    TestServer {
        url: local.url.clone(),
        store: Arc::clone(&local.store),
        dir: dir.to_owned(),
        local,
    }
}

/// [`start_web_server`], held to `limits`.
pub async fn start_web_server_with(dir: &Path, limits: fieldsync_server::Limits) -> TestServer {
    let local =
        LocalServer::start_web_with_limits(dir, "127.0.0.1:0", "127.0.0.1:0", ADMIN_TOKEN, limits)
            .await
            .expect("start server");
    TestServer {
        url: local.url.clone(),
        store: Arc::clone(&local.store),
        dir: dir.to_owned(),
        local,
    }
}

impl TestServer {
    /// `http://127.0.0.1:PORT` of the web pages ([`start_web_server`] only).
    pub fn web_url(&self) -> &str {
        self.local.web_url.as_deref().expect("started with start_web_server")
    }

    /// Shuts down gracefully and releases the store.
    pub async fn stop(self) {
        let TestServer { store, local, .. } = self;
        drop(store);
        local.stop().await.expect("server ran cleanly");
    }

    /// Stops and starts again on the same directory (a new port).
    pub async fn restart(self) -> TestServer {
        let dir = self.dir.clone();
        self.stop().await;
        start_server(&dir).await
    }

    /// A client signed in as the admin.
    pub async fn remote(&self) -> Grpc {
        Grpc::connect(&self.url, ADMIN_TOKEN).await.expect("connect")
    }

    /// The review, admin and report calls of the owner of `token`.
    pub async fn api(&self, token: &str) -> Api {
        Api::connect(&self.url, token).await.expect("connect")
    }

    /// Creates a user and returns a token for it.
    pub fn user(&self, id: &str, name: &str, role: Role, areas: &[&str]) -> String {
        self.local.user(id, name, role, areas).expect("create user")
    }

    /// A tablet of a new surveyor over the whole province.
    pub async fn tablet(&self, name: &str) -> TestTablet {
        let id = format!("s{}", uuid::Uuid::new_v4().simple());
        let token = self.user(&id, name, Role::Surveyor, &[demo::PROVINCE]);
        TestTablet::new(&self.url, &token).await
    }
}

/// A tablet with its own sled store, initialised against `url`.
pub struct TestTablet {
    pub tablet: Tablet,
    pub token: String,
    pub dir: TempDir,
}

impl TestTablet {
    /// A tablet signed in with `token`, set up as `fieldsync init` does.
    pub async fn new(url: &str, token: &str) -> TestTablet {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Arc::new(Sled::open(dir.path()).expect("open tablet store"));
        let tablet = init_tablet(engine, url, token).await.expect("init tablet");
        TestTablet { tablet, token: token.to_owned(), dir }
    }

    /// Records `field=value` pairs for the sample village.
    pub fn record(&self, pairs: &[(&str, &str)]) {
        self.record_at(VILLAGE, PERIOD, pairs);
    }

    pub fn record_at(&self, village: &str, period: &str, pairs: &[(&str, &str)]) {
        let edits: Vec<_> = pairs
            .iter()
            .map(|(f, v)| (f.to_string(), fieldsync::sync::RawValue::Amount(v.to_string())))
            .collect();
        self.tablet.record(village, period, &edits, fieldsync_client::now_ms()).expect("record");
    }

    /// Syncs with the server at `url` (which may have moved after a restart).
    pub async fn sync(&self, url: &str) -> Report {
        let mut remote = self.remote(url).await;
        sync::sync(&self.tablet, &mut remote, &Retry::immediate(0), &mut |_| {})
            .await
            .expect("sync")
    }

    /// A client signed in with this tablet's token.
    pub async fn remote(&self, url: &str) -> Grpc {
        Grpc::connect(url, &self.token).await.expect("connect")
    }

    pub fn device(&self) -> DeviceId {
        self.tablet.meta().device
    }

    /// The value this tablet shows for a field of the sample village.
    pub fn shows(&self, field: &str) -> Option<String> {
        let sub = fieldsync::SubmissionId::of(VILLAGE, PERIOD.parse().expect("period"));
        self.tablet
            .field(sub, &fieldsync::FieldKey::parse(field))
            .expect("read field")
            .map(|f| f.value.to_string())
    }
}
