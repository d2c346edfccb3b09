//! Taking browser connections: HTTP/1.1 through hyper's own connection
//! builder (so that a request head has a whole-head deadline that trickled
//! bytes do not extend), over TLS when the server has a certificate, with
//! the listener's caps per server and per peer IP, and idle connections
//! closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{router, Web};
use crate::config::WEB_IDLE_TIMEOUT as IDLE_TIMEOUT;

/// How the web listener takes connections: its caps and deadlines (from
/// [`Limits`](crate::Limits)) and, when the server has a certificate, TLS.
#[derive(Clone)]
pub struct Config {
    pub per_ip: usize,
    pub header_read_timeout: Duration,
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Config {
    pub fn of(
        limits: &crate::Limits,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> Config {
        Config {
            per_ip: limits.web_connections_per_ip,
            header_read_timeout: limits.header_read_timeout,
            tls,
        }
    }
}

/// Serves the pages on `listener` until `shutdown` resolves, then lets the
/// requests in progress finish.
///
/// At most [`WEB_MAX_CONNECTIONS`](crate::config::WEB_MAX_CONNECTIONS) connections are open at once, and
/// `config.per_ip` from one address; one beyond is closed as it arrives. A
/// request head (or a TLS handshake) must arrive whole within
/// `config.header_read_timeout` however slowly its bytes come, and a
/// connection silent for [`IDLE_TIMEOUT`] is closed.
pub async fn serve(
    listener: TcpListener,
    web: Arc<Web>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    tracing::info!(address = %listener.local_addr()?, tls = config.tls.is_some(), "serving web pages");
    let gate = crate::listen::Gate::new("web", crate::config::WEB_MAX_CONNECTIONS, config.per_ip);
    let acceptor = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let router = router(web);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "cannot accept a web connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let Some(admitted) = gate.admit(peer.ip()) else { continue };
        // Each request knows its peer, as a gRPC call does.
        let info = tonic::transport::server::TcpConnectInfo {
            local_addr: stream.local_addr().ok(),
            remote_addr: Some(peer),
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: axum::extract::Request<_>| {
            request.extensions_mut().insert(info.clone());
            tower::Service::call(&mut router.clone(), request)
        });
        let io = Permitted::new(stream, admitted);
        let acceptor = acceptor.clone();
        let mut stopped = stopped.clone();
        let stopping = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let head = config.header_read_timeout;
        connections.spawn(async move {
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(io),
                Some(acceptor) => match tokio::time::timeout(head, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!("TLS handshake too slow"),
                },
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(head);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "web connection ended");
                    }
                }
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// What a web connection is read and written through: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// A connection holding its place at the web listener, closed once idle
/// for [`IDLE_TIMEOUT`].
struct Permitted {
    stream: tokio::net::TcpStream,
    _admitted: crate::listen::Admitted,
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Permitted {
    fn new(stream: tokio::net::TcpStream, admitted: crate::listen::Admitted) -> Self {
        Permitted { stream, _admitted: admitted, idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)) }
    }

    fn active(&mut self) {
        self.idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
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
        match std::pin::Pin::new(&mut this.stream).poll_read(cx, buf) {
            std::task::Poll::Pending => match this.idle.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "idle web connection",
                ))),
                std::task::Poll::Pending => std::task::Poll::Pending,
            },
            ready => {
                this.active();
                ready
            }
        }
    }
}

impl tokio::io::AsyncWrite for Permitted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let written = std::pin::Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(written, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.active();
        }
        written
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
