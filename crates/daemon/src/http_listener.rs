//! The network edge: every HTTP listener (the daemon's `/healthz` and `/metrics`, the token
//! API, the public listener with Intuit's webhooks) is served by this one accept loop, so
//! each gets the same protections, configured by one `Limits` per listener:
//!
//! - a deadline on every request's headers (idle time before them and a TLS handshake
//!   included) and a cap on their size;
//! - a deadline on the request body, from the end of the headers to its last byte, and a
//!   cap on its size, enforced before any handler runs (a handler never waits on a client
//!   that stopped sending);
//! - a cap on connections at once, and on the connections one client address may hold, so
//!   one address cannot take the slots another needs.
//!
//! axum's `serve` bounds none of these, so hyper's HTTP/1 server is driven directly.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use qbo_core::config::ListenerLimits;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// What one listener allows a client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the moment a connection waits for a request to the end of its headers.
    pub header_timeout: Duration,
    /// From the end of the headers to the end of the body.
    pub body_timeout: Duration,
    /// The request line and headers together (hyper's read buffer; at least 8 KiB).
    pub max_header_bytes: usize,
    /// Which requests carry a body, and how large it may be: a route's method and path to
    /// its cap, `None` for every request whose route takes none (its body is never read).
    pub bodies: Bodies,
    pub max_connections: usize,
    /// Connections one client address may hold at once.
    pub max_per_address: usize,
    /// The settings that set `max_connections` and `max_per_address`, named in refusals.
    pub cap_key: &'static str,
    pub per_address_key: &'static str,
    /// The setting the deadlines come from.
    pub timeout_key: &'static str,
}

/// Request line and headers: ample for any browser, host application or Intuit.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A listener's body table: the cap on the body of a request by its method and path, or
/// `None` when its route takes no body.
pub type Bodies = fn(&axum::http::Method, &str) -> Option<usize>;

/// For a listener none of whose routes takes a body (`/healthz`, `/metrics`).
pub fn no_bodies(_: &axum::http::Method, _: &str) -> Option<usize> {
    None
}

impl Limits {
    /// A listener's limits from its request timeout (for the headers and again for the
    /// body), its connection cap and its largest body. One address may hold a quarter of
    /// the connections (at least 4, a browser's usual handful).
    /// A listener's limits as configured (`Config::listener_limits`), with its body table.
    pub fn new(configured: ListenerLimits, bodies: Bodies) -> Limits {
        Limits {
            header_timeout: configured.request_timeout,
            body_timeout: configured.request_timeout,
            max_header_bytes: MAX_HEADER_BYTES,
            bodies,
            max_connections: configured.max_connections,
            max_per_address: configured.max_per_address,
            cap_key: configured.cap_key,
            per_address_key: configured.per_address_key,
            timeout_key: configured.timeout_key,
        }
    }

    /// Every address shares the whole cap: behind a reverse proxy every connection comes
    /// from the proxy's address, and the per-address budget is applied to the browser's
    /// address (from `X-Forwarded-For`) by the route guard instead.
    pub fn behind_a_proxy(mut self) -> Limits {
        self.max_per_address = self.max_connections;
        self
    }
}

fn busy(limits: &Limits) -> String {
    format!(
        "too many connections to this listener ({}); try again shortly\n",
        limits.cap_key
    )
}

fn busy_address(limits: &Limits) -> String {
    format!(
        "too many connections from your address to this listener ({} of them, {}); close \
         some, then try again\n",
        limits.max_per_address, limits.per_address_key
    )
}

fn busy_response(why: &str) -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{why}",
        why.len()
    )
}

/// How many connections each address holds; a slot gives its place back when dropped.
#[derive(Default)]
struct PerAddress {
    held: Mutex<HashMap<IpAddr, usize>>,
}

struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut held = table.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.table.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// The body of a request whose route takes one, read whole within the listener's deadline
/// and the route's cap before its handler runs (a route may refuse less itself, as the
/// webhooks do to count it). A client that stops sending is answered 408 and hung up on;
/// one that sends too much, 413. `finish` adds the listener's own headers (the public
/// listener's hardening).
async fn read_body(
    State((limits, finish)): State<(Limits, Finish)>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    // A request whose route takes no body is answered without reading one, so a client
    // cannot make anything wait on it (hyper closes a connection whose body was left
    // unread); its route answers as it would (a 405, a 404, a page).
    let Some(max_body_bytes) = (limits.bodies)(&parts.method, parts.uri.path()) else {
        return next.run(Request::from_parts(parts, Body::empty())).await;
    };
    let read = Limited::new(body, max_body_bytes).collect();
    let refusal = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(collected)) => {
            return next
                .run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} ({}); send it whole, then try again\n",
                qbo_core::present::duration(limits.body_timeout),
                limits.timeout_key
            ),
        ),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than this route takes ({max_body_bytes} bytes)\n"),
        ),
        Ok(Err(_)) => (
            StatusCode::BAD_REQUEST,
            "the request body could not be read\n".to_string(),
        ),
    };
    let mut resp = refusal.into_response();
    // What is left of the body is not read: the connection cannot take another request.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(f) = finish {
        f(&mut resp);
    }
    resp
}

/// Headers a listener adds to the answers the edge gives on its own.
pub type Finish = Option<fn(&mut Response)>;

pub async fn serve(tcp: TcpListener, app: Router, limits: Limits, stop: watch::Receiver<bool>) {
    serve_with(tcp, app, limits, stop, Extras::default()).await
}

/// What a listener adds to the loop: TLS, the peer's address for its handlers
/// (`ConnectInfo<SocketAddr>`), and its own headers on the edge's answers.
#[derive(Clone, Default)]
pub struct Extras {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub connect_info: bool,
    pub finish: Finish,
}

pub async fn serve_with(
    tcp: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    extras: Extras,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let app = app.layer(axum::middleware::from_fn_with_state(
        (limits, extras.finish),
        read_body,
    ));
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
                key = limits.cap_key,
                "HTTP listener at its connection cap; a client was turned away"
            );
            // Best effort and never blocking: a fresh socket's send buffer is empty.
            let _ = stream.try_write(busy_response(&busy(&limits)).as_bytes());
            continue;
        };
        let Some(address_slot) = PerAddress::take(&per_address, peer.ip(), limits.max_per_address)
        else {
            tracing::warn!(
                cap = limits.max_per_address,
                "one address holds its share of the HTTP listener's connections; another from it was turned away"
            );
            let _ = stream.try_write(busy_response(&busy_address(&limits)).as_bytes());
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
                None => serve_connection(stream, service, limits, stop).await,
                Some(acceptor) => {
                    // The handshake counts against the same deadline as the headers.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => serve_connection(tls, service, limits, stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(address_slot);
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
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
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
