//! `[scheduler]`: when refreshes are due, how they are spread, and how fast they go.

use super::SectionError;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Refresh an access token this long before it expires; also what `refresh --due` means.
    #[serde(with = "humantime_serde", default = "default_before_expiry")]
    pub refresh_before_expiry: Duration,
    /// Keep every live connection's access token fresh (the token API then answers at once).
    /// When false, the scheduler only keeps refresh tokens from lapsing.
    #[serde(default = "super::yes")]
    pub refresh_access_tokens: bool,
    /// Refresh any live connection whose refresh token has not been used for this long, so
    /// none ever reaches Intuit's 100-day idle limit.
    #[serde(with = "humantime_serde", default = "default_keep_alive")]
    pub keep_alive_after: Duration,
    /// Spread: each next refresh is scheduled between half this and this much earlier than
    /// strictly needed, at random, so an hour's refreshes do not land in the same second.
    #[serde(with = "humantime_serde", default = "default_jitter")]
    pub jitter: Duration,
    /// Flag connections this many days before Intuit's 5-year hard limit as `expiring`.
    #[serde(default = "default_hard_expiry_warning_days")]
    pub hard_expiry_warning_days: u32,
    /// How often the scheduler looks for due work.
    #[serde(with = "humantime_serde", default = "default_tick")]
    pub tick: Duration,
    /// Refreshes in flight at once, across environments.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Calls to Intuit per second, per environment.
    #[serde(default = "default_rate_per_second")]
    pub rate_per_second: u32,
    /// `[scheduler.incidents]`: when many connections fail at Intuit at once.
    #[serde(default)]
    pub incidents: IncidentsConfig,
}

/// `[scheduler.incidents]`: an incident opens when, within `window`, at least
/// `min_connections` connections of one environment failed at Intuit (5xx, 429, timeouts,
/// garbage) and they were at least `min_share` of the refreshes tried there. While it
/// lasts the environment's refreshes stop but for one probe every `probe_every`; it ends
/// after `recovery_probes` probes in a row succeed, and the backlog is caught up most
/// urgent first within `rate_per_second`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    #[serde(with = "humantime_serde", default = "default_incident_window")]
    pub window: Duration,
    #[serde(default = "default_min_connections")]
    pub min_connections: u32,
    #[serde(default = "default_min_share")]
    pub min_share: f64,
    #[serde(with = "humantime_serde", default = "default_probe_every")]
    pub probe_every: Duration,
    #[serde(default = "default_recovery_probes")]
    pub recovery_probes: u32,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            window: default_incident_window(),
            min_connections: default_min_connections(),
            min_share: default_min_share(),
            probe_every: default_probe_every(),
            recovery_probes: default_recovery_probes(),
        }
    }
}

fn default_incident_window() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_min_connections() -> u32 {
    10
}
fn default_min_share() -> f64 {
    0.5
}
fn default_probe_every() -> Duration {
    Duration::from_secs(30)
}
fn default_recovery_probes() -> u32 {
    2
}

impl IncidentsConfig {
    fn check(&self) -> Result<(), SectionError> {
        if self.window.is_zero() || self.probe_every.is_zero() {
            return Err("[scheduler.incidents] window and probe_every must be above zero".into());
        }
        if self.min_connections < 2 {
            return Err(SectionError::from(
                "[scheduler.incidents] min_connections must be at least 2: one connection failing is that connection's problem, not an incident",
            ));
        }
        if !(self.min_share > 0.0 && self.min_share <= 1.0) {
            return Err(SectionError::from(format!(
                "[scheduler.incidents] min_share ({}) is the share of refreshes failing that makes an incident: give a number above 0 and at most 1, such as 0.5",
                self.min_share
            )));
        }
        if self.recovery_probes == 0 {
            return Err("[scheduler.incidents] recovery_probes must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            refresh_before_expiry: default_before_expiry(),
            refresh_access_tokens: true,
            keep_alive_after: default_keep_alive(),
            jitter: default_jitter(),
            hard_expiry_warning_days: default_hard_expiry_warning_days(),
            tick: default_tick(),
            max_concurrency: default_max_concurrency(),
            rate_per_second: default_rate_per_second(),
            incidents: IncidentsConfig::default(),
        }
    }
}

fn default_before_expiry() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_jitter() -> Duration {
    Duration::from_secs(120)
}
fn default_hard_expiry_warning_days() -> u32 {
    30
}
fn default_tick() -> Duration {
    Duration::from_secs(1)
}
/// Intuit allows 10 concurrent requests per app and realm; single flight keeps us at one
/// per realm, and this bounds the app as a whole.
fn default_max_concurrency() -> usize {
    10
}
fn default_rate_per_second() -> u32 {
    50
}

impl SchedulerConfig {
    pub(super) fn check(&self) -> Result<(), SectionError> {
        if self.max_concurrency == 0 || self.rate_per_second == 0 || self.tick.is_zero() {
            return Err(SectionError::from(
                "[scheduler] max_concurrency, rate_per_second and tick must be above zero",
            ));
        }
        if self.keep_alive_after >= Duration::from_secs(90 * 86_400)
            || self.keep_alive_after.is_zero()
        {
            return Err(SectionError::from(format!(
                "[scheduler] keep_alive_after ({}) must be positive and well under Intuit's 100-day idle limit; 30d is a good value",
                humantime::format_duration(self.keep_alive_after)
            )));
        }
        self.incidents.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_settings_out_of_range_are_refused_naming_the_key() {
        let bad = |f: fn(&mut IncidentsConfig)| {
            let mut c = IncidentsConfig::default();
            f(&mut c);
            c.check().unwrap_err().0
        };
        assert!(bad(|c| c.min_share = 1.5).contains("min_share (1.5)"));
        assert!(bad(|c| c.min_share = 0.0).contains("min_share"));
        assert!(bad(|c| c.min_connections = 1).contains("min_connections must be at least 2"));
        assert!(bad(|c| c.probe_every = Duration::ZERO).contains("probe_every"));
        assert!(bad(|c| c.recovery_probes = 0).contains("recovery_probes"));
        assert!(IncidentsConfig::default().check().is_ok());
    }
}
