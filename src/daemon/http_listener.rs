//! The HTTP listener's accept loop. axum's `serve` neither bounds how long a client may
//! take to send its headers nor how many connections it holds, so a slow or idle client
//! could keep a connection (and a file descriptor) forever. Here hyper's HTTP/1 server gets
//! a deadline on every request's headers, idle time before them included, and the listener
//! serves a bounded number of connections at once.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the moment a connection waits for a request to the end of its headers.
    pub header_timeout: Duration,
    pub max_connections: usize,
}

const BUSY: &str =
    "too many connections to this listener ([daemon] max_http_connections); try again shortly\n";

fn busy_response() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{BUSY}",
        BUSY.len()
    )
}

pub async fn serve(tcp: TcpListener, app: Router, limits: Limits, stop: watch::Receiver<bool>) {
    serve_with(tcp, app, limits, stop, Extras::default()).await
}

/// What the public listener adds to the loop: TLS, a bound on request headers, and the
/// peer's address for its handlers (`ConnectInfo<SocketAddr>`).
#[derive(Clone, Default)]
pub struct Extras {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// hyper's read buffer, which bounds the request line and headers (at least 8 KiB).
    pub max_header_bytes: Option<usize>,
    pub connect_info: bool,
}

pub async fn serve_with(
    tcp: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    extras: Extras,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Tracked, so that shutdown lets the requests in hand finish before the daemon closes
    // the database under them.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = tcp.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to be released
                    // rather than spin.
                    tracing::warn!(error = %e, "accept on the HTTP listener failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                cap = limits.max_connections,
                "HTTP listener at its connection cap ([daemon] max_http_connections); a client was turned away"
            );
            // Best effort and never blocking: a fresh socket's send buffer is empty.
            let _ = stream.try_write(busy_response().as_bytes());
            continue;
        };
        let app = if extras.connect_info {
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
        } else {
            app.clone()
        };
        let service = TowerToHyperService::new(app);
        let stop = stop.clone();
        let extras = extras.clone();
        connections.spawn(async move {
            match extras.tls.clone() {
                None => serve_connection(stream, service, limits, &extras, stop).await,
                Some(acceptor) => {
                    // The handshake counts against the same deadline as the headers.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => serve_connection(tls, service, limits, &extras, stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    // Bounded by the daemon's shutdown grace, past which this task and its connections
    // are aborted.
    while connections.join_next().await.is_some() {}
}

async fn serve_connection<IO>(
    io: IO,
    service: TowerToHyperService<Router>,
    limits: Limits,
    extras: &Extras,
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    if let Some(max) = extras.max_header_bytes {
        builder.max_buf_size(max.max(8192));
    }
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stop.changed() => None,
    };
    let result = match ended {
        Some(r) => r,
        // Shutting down: finish the request in hand, take no other.
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}
