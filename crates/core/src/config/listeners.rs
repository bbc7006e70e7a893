//! Every HTTP listener's limits in one shape, whichever section configures it: how many
//! connections it serves, how many of them one client address may hold, and how long a
//! request's headers and body may take. `http_listener` builds each listener from one.

use super::Config;
use super::SectionError;
use std::time::Duration;

/// The daemon's HTTP listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `/healthz` and `/metrics`: `[daemon] http_listen`.
    Metrics,
    /// The token API: `[api] listen`.
    Api,
    /// Browsers and Intuit: `[public] listen`.
    Public,
}

/// One listener's limits, with the settings that set them (named in its refusals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// A request's headers must arrive within this long of the connection going idle, and
    /// its body within this long of the headers' end.
    pub request_timeout: Duration,
    pub max_connections: usize,
    /// Connections one client address may hold at once.
    pub max_per_address: usize,
    pub cap_key: &'static str,
    pub per_address_key: &'static str,
    /// The setting `request_timeout` came from, named when a request is cut off.
    pub timeout_key: &'static str,
}

/// Unless configured, one address may hold a quarter of a listener's connections (at
/// least 4): enough for a browser's or a host's parallel requests, not enough to take the
/// slots every other client needs.
pub fn default_share(max_connections: usize) -> usize {
    (max_connections / 4).max(4).min(max_connections)
}

/// A per-address cap must let one connection through and fit inside the listener's cap.
fn check_share(
    per_address: Option<usize>,
    max_connections: usize,
    key: &str,
    cap_key: &str,
) -> Result<(), SectionError> {
    match per_address {
        Some(0) => Err(SectionError::from(format!(
            "{key} is 0, which would refuse every client; use a number such as 16, or remove it for a quarter of {cap_key}"
        ))),
        Some(n) if n > max_connections => Err(SectionError::from(format!(
            "{key} ({n}) is more than {cap_key} ({max_connections}); one address cannot hold more connections than the listener serves"
        ))),
        _ => Ok(()),
    }
}

impl Listener {
    pub const ALL: [Listener; 3] = [Listener::Metrics, Listener::Api, Listener::Public];
}

impl Config {
    /// The limits `which` is served with.
    pub fn listener_limits(&self, which: Listener) -> ListenerLimits {
        let (limits, _) = self.listener_settings(which);
        limits
    }

    /// `which`'s limits, and the per-address share as configured (`None`: the default).
    fn listener_settings(&self, which: Listener) -> (ListenerLimits, Option<usize>) {
        let own_timeout = |t: Option<Duration>, key: &'static str| match t {
            Some(t) => (t, key),
            None => (self.daemon.request_timeout, "[daemon] request_timeout"),
        };
        let ((timeout, timeout_key), max, share, cap_key, per_address_key) = match which {
            Listener::Metrics => (
                (self.daemon.request_timeout, "[daemon] request_timeout"),
                self.daemon.max_http_connections,
                self.daemon.max_http_connections_per_address,
                "[daemon] max_http_connections",
                "[daemon] max_http_connections_per_address",
            ),
            Listener::Api => (
                own_timeout(self.api.request_timeout, "[api] request_timeout"),
                self.api.max_connections,
                self.api.max_connections_per_address,
                "[api] max_connections",
                "[api] max_connections_per_address",
            ),
            Listener::Public => {
                // Without a cap of its own, the public listener keeps the one it shared
                // with `/healthz` and `/metrics` before it had one.
                let (max, cap_key) = match self.public.max_connections {
                    Some(n) => (n, "[public] max_connections"),
                    None => (
                        self.daemon.max_http_connections,
                        "[daemon] max_http_connections",
                    ),
                };
                (
                    own_timeout(self.public.request_timeout, "[public] request_timeout"),
                    max,
                    self.public.max_connections_per_address,
                    cap_key,
                    "[public] max_connections_per_address",
                )
            }
        };
        let limits = ListenerLimits {
            request_timeout: timeout,
            max_connections: max,
            max_per_address: share.unwrap_or_else(|| default_share(max)),
            cap_key,
            per_address_key,
            timeout_key,
        };
        (limits, share)
    }

    /// Each listener's share fits inside its cap as in force (the public listener's may be
    /// `[daemon]`'s).
    pub(super) fn check_listener_shares(&self) -> Result<(), SectionError> {
        for which in Listener::ALL {
            let (l, configured) = self.listener_settings(which);
            check_share(configured, l.max_connections, l.per_address_key, l.cap_key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_defaults_to_a_quarter_and_must_fit_the_cap() {
        assert_eq!(default_share(256), 64);
        assert_eq!(default_share(8), 4);
        assert_eq!(default_share(2), 2);
        assert!(check_share(Some(0), 10, "k", "c")
            .unwrap_err()
            .0
            .contains("0"));
        assert!(check_share(Some(11), 10, "k", "c")
            .unwrap_err()
            .0
            .contains("more than"));
        assert!(check_share(Some(10), 10, "k", "c").is_ok());
        assert!(check_share(None, 10, "k", "c").is_ok());
    }
}
