//! `[refresh]`: the lease a refresher holds and the backoff after a failure.

use super::IntuitConfig;
use super::SectionError;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshConfig {
    /// How long a refresher may hold a connection before others may take it over. Must
    /// outlast an Intuit call, or a slow holder and a taker could both use one token.
    #[serde(with = "humantime_serde", default = "default_lease")]
    pub lease: Duration,
    /// First retry delay after a transient failure; doubles per consecutive failure.
    #[serde(with = "humantime_serde", default = "default_backoff_base")]
    pub backoff_base: Duration,
    /// Upper bound on the retry delay.
    #[serde(with = "humantime_serde", default = "default_backoff_cap")]
    pub backoff_cap: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            lease: default_lease(),
            backoff_base: default_backoff_base(),
            backoff_cap: default_backoff_cap(),
        }
    }
}

fn default_lease() -> Duration {
    Duration::from_secs(60)
}
fn default_backoff_base() -> Duration {
    Duration::from_secs(30)
}
fn default_backoff_cap() -> Duration {
    Duration::from_secs(30 * 60)
}

impl RefreshConfig {
    /// The lease must outlast an Intuit call (twice `[intuit] timeout`), or a slow holder
    /// and a taker could both use one token.
    pub(super) fn check(&self, intuit: &IntuitConfig) -> Result<(), SectionError> {
        if self.lease < intuit.timeout * 2 {
            return Err(SectionError::from(format!(
                "[refresh] lease ({}) must be at least twice [intuit] timeout ({}), so a slow \
                 refresh is never taken over while its answer may still arrive",
                humantime::format_duration(self.lease),
                humantime::format_duration(intuit.timeout)
            )));
        }
        if self.backoff_base.is_zero() || self.backoff_cap < self.backoff_base {
            return Err(SectionError::from(
                "[refresh] backoff_base must be positive and backoff_cap at least backoff_base",
            ));
        }
        Ok(())
    }
}
