//! `[intuit]`: how long a call to Intuit may take, and what every token call asks for.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntuitConfig {
    /// Whole-request timeout for every call to Intuit.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde", default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Ask for `x_refresh_token_hard_expires_in` (the 5-year limit) on every token call.
    #[serde(default = "super::yes")]
    pub request_hard_expiry: bool,
}

impl Default for IntuitConfig {
    fn default() -> Self {
        IntuitConfig {
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            request_hard_expiry: true,
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
