//! The server as the sync engine sees it: a small trait, implemented over
//! gRPC for real use and in-process for tests that drop replies on purpose.

use std::future::Future;
use std::time::Duration;

use fieldsync::sync::{Mutation, MutationResult, Page};
use fieldsync::tree::TreeHistory;
use fieldsync::{Catalogue, DeviceId, Hlc};
use fieldsync_proto::v1::admin_client::AdminClient;
use fieldsync_proto::v1::report_client::ReportClient;
use fieldsync_proto::v1::review_client::ReviewClient;
use fieldsync_proto::v1::sync_client::SyncClient;
use fieldsync_proto::v1::{BootstrapRequest, PullRequest, PushRequest, StatusRequest};
use fieldsync_proto::{convert, SCHEMA_VERSION};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::error::{Error, Result};

/// The server's answer to a push.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub results: Vec<MutationResult>,
    pub server_hlc: Hlc,
}

/// What the server says about itself and this device.
#[derive(Clone, Debug)]
pub struct ServerStatus {
    pub head_seq: u64,
    pub last_mutation_id: u64,
    pub server_time_ms: u64,
    pub server_version: String,
    /// Who the token belongs to, and the org units they cover.
    pub user_id: String,
    pub user_name: String,
    pub areas: Vec<String>,
}

/// The operations of the sync protocol.
pub trait Remote {
    fn bootstrap(&mut self) -> impl Future<Output = Result<Catalogue>> + Send;

    fn push(
        &mut self,
        device: DeviceId,
        mutations: Vec<Mutation>,
        acknowledged_through: u64,
    ) -> impl Future<Output = Result<Pushed>> + Send;

    /// Streams pages after `cursor` into `on_page` until caught up; stops at
    /// the first error of either side. Pages handed over before an error stay
    /// handed over.
    fn pull(
        &mut self,
        device: DeviceId,
        cursor: u64,
        on_page: &mut (dyn FnMut(Page, Hlc) -> Result<()> + Send),
    ) -> impl Future<Output = Result<()>> + Send;

    fn status(&mut self, device: DeviceId) -> impl Future<Output = Result<ServerStatus>> + Send;
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel that signs every call with the caller's token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The real server, over gRPC.
#[derive(Clone)]
pub struct Grpc {
    client: SyncClient<Authed>,
    channel: Authed,
}

/// Largest message the client sends (the server accepts 4 MiB).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest reply the client accepts.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Longest wait for a connection to the server to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the answer to a call, unless told otherwise
/// ([`Grpc::connect_within`]).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection quiet for this long is pinged, and closed if the ping is not
/// answered within the same time: a dead link is noticed mid-pull too.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Whether `url` answers as a web server does (HTTP/1.1) rather than as
/// gRPC: a tablet pointed at the web pages' port is told so instead of
/// being shown a transport error. One short request, given up on quickly.
pub async fn is_web_port(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = url.split("://").last().unwrap_or(url).split('/').next().unwrap_or_default();
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        let request = format!("HEAD / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 8];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1."))
    };
    matches!(tokio::time::timeout(Duration::from_secs(3), probe).await, Ok(Some(true)))
}

impl Grpc {
    /// Connects to `url` (e.g. `http://127.0.0.1:50051`; `http://` is assumed
    /// when no scheme is given).
    pub async fn connect(url: &str, token: &str) -> Result<Grpc> {
        Grpc::connect_within(url, token, ANSWER_TIMEOUT).await
    }

    /// Connects as [`Grpc::connect`] does; every call that gets no answer
    /// within `answer` fails (and is worth retrying).
    pub async fn connect_within(url: &str, token: &str, answer: Duration) -> Result<Grpc> {
        let bearer: MetadataValue<Ascii> = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| Error::Invalid("the token has characters a token cannot have".into()))?;
        let url = match url.contains("://") {
            true => url.to_owned(),
            false => format!("http://{url}"),
        };
        let url = url.as_str();
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Error::Invalid(format!("{url:?} is not a server address: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(answer)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .keep_alive_while_idle(true);
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(trusted_ca()?))
                .map_err(|e| Error::Invalid(format!("TLS for {url}: {}", causes(&e))))?;
        }
        let channel = tokio::time::timeout(CONNECT_TIMEOUT + answer, endpoint.connect())
            .await
            .map_err(|_| Error::Unreachable(format!("{url}: no answer to the connection")))?
            .map_err(|e| Error::Unreachable(format!("{url}: {}", causes(&e))))?;
        let channel = InterceptedService::new(channel, Bearer(bearer));
        Ok(Grpc {
            channel: channel.clone(),
            client: SyncClient::new(channel)
                .max_decoding_message_size(MAX_REPLY_BYTES)
                .max_encoding_message_size(MAX_REQUEST_BYTES),
        })
    }
}

impl Grpc {
    /// A client of the review service on the same connection and token.
    pub fn review(&self) -> ReviewClient<Authed> {
        ReviewClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// A client of the report service on the same connection and token.
    pub fn report(&self) -> ReportClient<Authed> {
        ReportClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// A client of the admin service on the same connection and token.
    pub fn admin(&self) -> AdminClient<Authed> {
        AdminClient::new(self.channel.clone()).max_decoding_message_size(MAX_REPLY_BYTES)
    }
}

/// Environment variable naming the PEM file of the certificate authority a
/// tablet trusts for `https://` servers.
pub const CA_ENV: &str = "FIELDSYNC_CA";

static CA: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Trusts the certificate authority in this PEM file for `https://` servers,
/// for the rest of the process (the CLI's `--ca`); otherwise [`CA_ENV`] names it.
pub fn trust_ca(path: std::path::PathBuf) {
    let _ = CA.set(path);
}

/// The certificate authority given to [`trust_ca`] or named by [`CA_ENV`].
fn trusted_ca() -> Result<Certificate> {
    let path = CA.get().map(|p| p.clone().into_os_string()).or_else(|| std::env::var_os(CA_ENV));
    let path = path.ok_or_else(|| {
        Error::Invalid(format!(
            "an https:// server needs the certificate of its authority: set {CA_ENV} (or --ca) \
             to its PEM file"
        ))
    })?;
    let pem = std::fs::read(&path).map_err(|e| {
        Error::Invalid(format!("cannot read the CA certificate {}: {e}", path.to_string_lossy()))
    })?;
    Ok(Certificate::from_pem(pem))
}

/// An error and its sources: "transport error: connection refused".
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn bad_reply(e: fieldsync::Error) -> Error {
    Error::Refused(format!("the server sent something this client cannot read: {e}"))
}

impl Remote for Grpc {
    async fn bootstrap(&mut self) -> Result<Catalogue> {
        let reply = self
            .client
            .bootstrap(BootstrapRequest { schema_version: SCHEMA_VERSION })
            .await?
            .into_inner();
        let offered = reply
            .indicators
            .into_iter()
            .map(convert::offered_indicator_from_wire)
            .collect::<fieldsync::Result<Vec<_>>>()
            .map_err(bad_reply)?;
        let retired_indicators =
            offered.iter().filter_map(|(i, from)| Some((i.code.clone(), (*from)?))).collect();
        let indicators = offered.into_iter().map(|(i, _)| i).collect();
        let org_units = reply
            .org_units
            .into_iter()
            .map(convert::org_unit_from_wire)
            .collect::<fieldsync::Result<Vec<_>>>()
            .map_err(bad_reply)?;
        Catalogue::new(indicators, org_units)
            .and_then(|c| c.with_history(TreeHistory { retired_indicators, ..Default::default() }))
            .map_err(bad_reply)
    }

    async fn push(
        &mut self,
        device: DeviceId,
        mutations: Vec<Mutation>,
        acknowledged_through: u64,
    ) -> Result<Pushed> {
        let request = PushRequest {
            schema_version: SCHEMA_VERSION,
            device_id: device.to_string(),
            mutations: mutations.iter().map(convert::mutation_to_wire).collect(),
            acknowledged_through,
        };
        let reply = self.client.push(request).await?.into_inner();
        let results = reply
            .results
            .into_iter()
            .map(convert::result_from_wire)
            .collect::<fieldsync::Result<Vec<_>>>()
            .map_err(bad_reply)?;
        Ok(Pushed { results, server_hlc: Hlc(reply.server_hlc) })
    }

    async fn pull(
        &mut self,
        device: DeviceId,
        cursor: u64,
        on_page: &mut (dyn FnMut(Page, Hlc) -> Result<()> + Send),
    ) -> Result<()> {
        let request = PullRequest {
            schema_version: SCHEMA_VERSION,
            device_id: device.to_string(),
            cursor,
            page_size: 0,
        };
        let mut stream = self.client.pull(request).await?.into_inner();
        while let Some(page) = stream.next().await {
            let page = page?;
            let changes = page
                .changes
                .into_iter()
                .map(convert::change_from_wire)
                .collect::<fieldsync::Result<Vec<_>>>()
                .map_err(bad_reply)?;
            let caught_up = page.caught_up;
            on_page(Page { changes, cursor: page.cursor, caught_up }, Hlc(page.server_hlc))?;
            if caught_up {
                return Ok(());
            }
        }
        Err(Error::Unreachable("the server closed the pull before the last page".into()))
    }

    async fn status(&mut self, device: DeviceId) -> Result<ServerStatus> {
        let reply =
            self.client.status(StatusRequest { device_id: device.to_string() }).await?.into_inner();
        Ok(ServerStatus {
            head_seq: reply.head_seq,
            last_mutation_id: reply.last_mutation_id,
            server_time_ms: reply.server_time_ms,
            server_version: reply.server_version,
            user_id: reply.user_id,
            user_name: reply.user_name,
            areas: reply.areas,
        })
    }
}
