//! `[daemon]`: the operators' socket, the health and metrics listener, the files the
//! daemon creates, and the limits that keep one client from starving the rest.

use super::SectionError;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The daemon: its operators' socket and its HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// The operators' Unix socket; the CLI connects here unless `--embedded`.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group that owns the socket (mode 0660), so its members can connect.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// Group given read access (mode 0640) to the database and log files this program
    /// creates; without it they are owner-only (0600). Not `socket_group`: operators reach
    /// the data through the socket and their roles, never by reading the files.
    #[serde(default)]
    pub file_group: Option<String>,
    /// Health and metrics listener; loopback by default.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// On SIGTERM, in-flight refreshes get this long to finish before they are abandoned
    /// (safely: an abandoned refresh leaves its lease to expire and its token in place).
    #[serde(with = "humantime_serde", default = "default_shutdown_grace")]
    pub shutdown_grace: Duration,
    /// A request must arrive whole within this long of its first byte (the socket), or its
    /// headers within this long of the connection going idle (HTTP): a client that stops
    /// half-way is disconnected instead of holding a connection forever.
    #[serde(with = "humantime_serde", default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// How long an operators' socket connection may sit between requests.
    #[serde(with = "humantime_serde", default = "default_idle_timeout")]
    pub idle_timeout: Duration,
    /// Connections served at once on the operators' socket; one more is answered with an
    /// error line and closed.
    #[serde(default = "default_max_socket_connections")]
    pub max_socket_connections: usize,
    /// Connections served at once on the HTTP listener; one more gets a 503 and is closed,
    /// so HTTP clients cannot use up the file descriptors the operators' socket needs.
    #[serde(default = "default_max_http_connections")]
    pub max_http_connections: usize,
    /// Connections one client address may hold at once on the HTTP listener; a quarter of
    /// `max_http_connections` (at least 4) unless set.
    #[serde(default)]
    pub max_http_connections_per_address: Option<usize>,
}

impl DaemonConfig {
    /// The limits must let something through: a zero would lock every client out.
    fn check_limits(&self) -> Result<(), SectionError> {
        for (key, d) in [
            ("request_timeout", self.request_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(SectionError::from(format!(
                    "[daemon] {key} is 0, which would disconnect every client at once; use a \
                     duration such as \"10s\""
                )));
            }
        }
        for (key, n) in [
            ("max_socket_connections", self.max_socket_connections),
            ("max_http_connections", self.max_http_connections),
        ] {
            if n == 0 {
                return Err(SectionError::from(format!(
                    "[daemon] {key} is 0, which would refuse every client; use a number such as 64"
                )));
            }
        }
        Ok(())
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: default_socket(),
            socket_group: None,
            file_group: None,
            http_listen: default_http_listen(),
            shutdown_grace: default_shutdown_grace(),
            request_timeout: default_request_timeout(),
            idle_timeout: default_idle_timeout(),
            max_socket_connections: default_max_socket_connections(),
            max_http_connections: default_max_http_connections(),
            max_http_connections_per_address: None,
        }
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from("/run/qbo-console/ops.sock")
}
fn default_http_listen() -> String {
    "127.0.0.1:9187".into()
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(20)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_max_socket_connections() -> usize {
    64
}
fn default_max_http_connections() -> usize {
    128
}

impl DaemonConfig {
    pub(super) fn check(&self) -> Result<(), SectionError> {
        if self.http_listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SectionError::from(format!(
                "[daemon] http_listen {:?} is not an address such as 127.0.0.1:9187",
                self.http_listen
            )));
        }
        self.check_limits()?;

        for (key, group) in [
            ("socket_group", &self.socket_group),
            ("file_group", &self.file_group),
        ] {
            if group.as_deref().is_some_and(|g| g.trim().is_empty()) {
                return Err(SectionError::from(format!(
                    "[daemon] {key} is empty; name a group or remove the key"
                )));
            }
        }
        Ok(())
    }
}
