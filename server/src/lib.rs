//! The fieldsync server: a [`db::Store`] on an embedded engine, its use
//! cases ([`app`]), served over gRPC ([`grpc`]) with health and reflection
//! beside the services, and as web pages ([`web`]).
//!
//! The binary in `main.rs` only parses flags, opens the engine and calls
//! [`serve`]; tests call [`serve`] on `127.0.0.1:0` with a oneshot shutdown.

pub mod app;
pub mod config;
pub mod connect;
pub mod db;
pub mod grpc;
pub mod listen;
pub mod local;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fieldsync_proto::v1::admin_server::AdminServer;
use fieldsync_proto::v1::enroll_server::EnrollServer;
use fieldsync_proto::v1::report_server::ReportServer;
use fieldsync_proto::v1::review_server::ReviewServer;
use fieldsync_proto::v1::sync_server::SyncServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::ServerTlsConfig;

pub use config::{
    Limits, HANDSHAKE_TIMEOUT, LISTEN_BACKLOG, MAX_ADMIN_MESSAGE_BYTES,
    MAX_CONCURRENT_PER_CONNECTION, MAX_MESSAGE_BYTES, MAX_REPLY_BYTES, MAX_STREAMS_PER_CONNECTION,
    REOPEN_FREE_BYTES, REQUEST_TIMEOUT,
};
pub use db::Store;
pub use listen::Tls;

/// Serves the sync, review, report and admin services (and grpc.health.v1 and
/// reflection) on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish and flushes the store. Every fieldsync call needs a
/// bearer token; health and reflection do not.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_with(listener, store, limits, None, shutdown).await
}

/// [`serve`], over TLS when `tls` holds the server's certificate and key.
pub async fn serve_with(
    listener: TcpListener,
    store: Arc<Store>,
    limits: Limits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_all(listener, None, store, limits, tls, shutdown).await
}

/// [`serve_with`], and the web pages ([`web`]) on `http` when given: both
/// stop on `shutdown`, the web pages sign callers in and rate-limit them
/// through the same [`app::App`] as the gRPC interceptor, the app's Connect calls
/// ([`connect`]) run through the very routes and edge layer gRPC calls do,
/// and with `tls` both are served over TLS with the same certificate.
pub async fn serve_all(
    listener: TcpListener,
    http: Option<TcpListener>,
    store: Arc<Store>,
    limits: Limits,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    store.limit_writes(write_limits(&limits));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let web_tls = match (&http, &tls) {
        (Some(_), Some(tls)) => Some(tls.web_config()?),
        _ => None,
    };
    let app_url = app::AppUrl {
        public: limits.public_url.clone(),
        listener: http
            .as_ref()
            .and_then(|h| h.local_addr().ok())
            .map(|a| format!("{}://{a}", if web_tls.is_some() { "https" } else { "http" })),
    };
    let app = Arc::new(app::App::new(Arc::clone(&store), app_settings(&limits, app_url)));
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let address = listener.local_addr()?;
    let incoming = limited(listener, &limits);
    let (health, routes) = routes(&app, &limits).await?;
    let disk = tokio::spawn(watch_disk(
        Arc::clone(&store),
        health,
        limits.disk_check_interval,
        stopped.clone(),
    ));
    let web = http.map(|http| {
        let edge = grpc::Edge::layer(limits.request_timeout);
        let bridge =
            connect::Bridge::new(tower::Layer::layer(&edge, routes.clone()), limits.max_batch);
        let web_config = web::Config::of(&limits, web_tls);
        let web = web::Web::new(Arc::clone(&app), &limits);
        let web = Arc::new(web.over_tls(web_config.tls.is_some()).with_bridge(bridge));
        let mut stopped = stopped.clone();
        tokio::spawn(web::serve(http, web, web_config, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    });
    tracing::info!(address = %address, tls = tls.is_some(), "serving fieldsync.v1");
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .tcp_keepalive(Some(Duration::from_secs(60)));
    if let Some(tls) = &tls {
        builder = builder.tls_config(ServerTlsConfig::new().identity(tls.identity()))?;
    }
    builder
        .concurrency_limit_per_connection(MAX_CONCURRENT_PER_CONNECTION)
        .layer(grpc::Edge::layer(limits.request_timeout))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    drop(stopped);
    disk.await?;
    if let Some(web) = web {
        web.await??;
    }
    tokio::task::spawn_blocking(move || store.flush()).await??;
    tracing::info!("stopped; store flushed");
    Ok(())
}

/// The routes gRPC and the app's Connect calls share: the fieldsync
/// services over `app` (each but enrollment behind the token check, pushes
/// held to `limits.max_batch`), health (every service serving) and
/// reflection; and the health reporter that moves them to NOT_SERVING.
async fn routes(
    app: &Arc<app::App>,
    limits: &Limits,
) -> anyhow::Result<(tonic_health::server::HealthReporter, tonic::service::Routes)> {
    let auth = grpc::authenticate(Arc::clone(app));
    // Answered without a token: a device trades a one-time code for one.
    let enroll = EnrollServer::new(grpc::EnrollService::new(Arc::clone(app)));
    let sync = SyncServer::new(grpc::SyncService::new(Arc::clone(app), limits.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_REPLY_BYTES);
    let review = ReviewServer::new(grpc::ReviewService::new(Arc::clone(app)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_REPLY_BYTES);
    let report = ReportServer::new(grpc::ReportService::new(Arc::clone(app)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let admin = AdminServer::new(grpc::AdminService::new(Arc::clone(app)))
        .max_decoding_message_size(MAX_ADMIN_MESSAGE_BYTES);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<SyncServer<grpc::SyncService>>().await;
    health_reporter.set_serving::<ReviewServer<grpc::ReviewService>>().await;
    health_reporter.set_serving::<AdminServer<grpc::AdminService>>().await;
    health_reporter.set_serving::<ReportServer<grpc::ReportService>>().await;
    health_reporter.set_serving::<EnrollServer<grpc::EnrollService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fieldsync_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = tonic::service::Routes::new(health)
        .add_service(reflection)
        .add_service(InterceptedService::new(
            grpc::Batched::new(sync, limits.max_batch),
            auth.clone(),
        ))
        .add_service(InterceptedService::new(review, auth.clone()))
        .add_service(InterceptedService::new(report, auth.clone()))
        .add_service(InterceptedService::new(admin, auth))
        .add_service(enroll)
        .prepare();
    Ok((health_reporter, routes))
}

/// Keeps grpc health in step with whether the store can write (NOT_SERVING
/// for the server and every fieldsync service while it cannot: a failed
/// disk, or free space below the reserve), and reopens the store in place
/// after a failed write once it can; checks every `every` until `stop`.
async fn watch_disk(
    store: Arc<Store>,
    health: tonic_health::server::HealthReporter,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tonic_health::ServingStatus;
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut serving = true;
    let mut last_problem = String::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let checked = Arc::clone(&store);
        let writable = tokio::task::spawn_blocking(move || {
            if let Err(e) = checked.recover() {
                tracing::debug!(error = %e, "the store cannot be reopened yet");
            }
            checked.can_write()
        })
        .await;
        let problem = match writable {
            Ok(Ok(())) => String::new(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the disk check failed: {e}"),
        };
        if problem != last_problem && !problem.is_empty() {
            tracing::warn!(problem = %problem, "health: NOT_SERVING");
        }
        last_problem = problem;
        if last_problem.is_empty() != serving {
            serving = last_problem.is_empty();
            if serving {
                tracing::info!("health: SERVING (the store can write again)");
            }
            let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
            for service in [
                "",
                <SyncServer<grpc::SyncService> as tonic::server::NamedService>::NAME,
                <ReviewServer<grpc::ReviewService> as tonic::server::NamedService>::NAME,
                <AdminServer<grpc::AdminService> as tonic::server::NamedService>::NAME,
                <ReportServer<grpc::ReportService> as tonic::server::NamedService>::NAME,
                <EnrollServer<grpc::EnrollService> as tonic::server::NamedService>::NAME,
            ] {
                health.set_service_status(service, status).await;
            }
        }
    }
}

/// Binds `addr` (e.g. `127.0.0.1:50051`) with a deep accept queue.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for address in tokio::net::lookup_host(addr).await? {
        let socket = match address {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr} names no address"))
    }))
}

/// An accepted gRPC connection: it holds its place at the listener's
/// [`listen::Gate`], and is closed if no call has begun within the
/// handshake timeout of being accepted (a peer that never sends the HTTP/2
/// preface, or stalls in the TLS handshake or the request head).
struct Permitted {
    stream: tokio::net::TcpStream,
    connection: grpc::Connection,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    _admitted: listen::Admitted,
}

/// Accepted connections, at most `limits.max_connections` open at once and
/// `limits.connections_per_ip` from one address: one beyond that is closed
/// as it arrives, so a flood of connections cannot starve the tablets
/// already connected.
fn limited(
    listener: TcpListener,
    limits: &Limits,
) -> impl tokio_stream::Stream<Item = std::io::Result<Permitted>> {
    use tokio_stream::StreamExt;
    let gate = listen::Gate::new("grpc", limits.max_connections, limits.connections_per_ip);
    let handshake = limits.handshake_timeout;
    TcpListenerStream::new(listener).filter_map(move |accepted| match accepted {
        Ok(stream) => {
            let peer = stream.peer_addr().ok()?;
            let admitted = gate.admit(peer.ip())?;
            // Small replies must not wait for the peer's delayed ACK
            // (tonic's own tcp_nodelay does not reach incoming streams).
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
            let connection =
                grpc::Connection::new(tonic::transport::server::Connected::connect_info(&stream));
            let deadline = Some(Box::pin(tokio::time::sleep(handshake)));
            Some(Ok(Permitted { stream, connection, deadline, _admitted: admitted }))
        }
        Err(e) => Some(Err(e)),
    })
}

impl tonic::transport::server::Connected for Permitted {
    type ConnectInfo = grpc::Connection;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.connection.clone()
    }
}

impl tokio::io::AsyncRead for Permitted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future as _;
        let this = &mut *self;
        if let Some(deadline) = &mut this.deadline {
            if this.connection.began() {
                this.deadline = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                tracing::warn!("closing a connection that began no call in time");
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no call began in time",
                )));
            }
        }
        std::pin::Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}
impl tokio::io::AsyncWrite for Permitted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The limits the store holds every write to.
fn write_limits(limits: &Limits) -> db::WriteLimits {
    db::WriteLimits {
        min_free_bytes: limits.min_free_bytes,
        min_free_percent: limits.min_free_percent,
        user_bytes_per_day: limits.user_bytes_per_day,
    }
}

/// What the use cases are held to; `app_url` is where enrollment codes
/// send devices.
fn app_settings(limits: &Limits, app_url: app::AppUrl) -> app::Settings {
    app::Settings {
        calls_per_second: limits.calls_per_second,
        call_burst: limits.call_burst,
        max_page: limits.max_page,
        app_url,
        enroll_failures_per_minute: limits.enroll_failures_per_minute,
    }
}
