//! Counters and gauges for `/metrics` (OpenMetrics text, which Prometheus reads). Counters
//! are fed where things happen (the engine); gauges that describe the database are set at
//! scrape time from queries, so they always match it.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use qbo_store::{CauseLabel, WriteCause, WriteHealth};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub environment: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvLabel {
    pub environment: String,
}

pub struct Metrics {
    registry: Registry,
    pub refreshes: Family<OutcomeLabel, Counter>,
    pub refresh_seconds: Histogram,
    pub audit_write_failures: Counter,
    pub database_write_failures: Family<CauseLabel, Counter>,
    pub connections: Family<StatusLabels, Gauge>,
    pub scheduler_lag_seconds: Gauge<f64, AtomicU64>,
    pub nearest_lapse_seconds: Gauge<f64, AtomicU64>,
    pub environment_paused: Family<EnvLabel, Gauge>,
    /// Intuit webhook requests refused, by reason; webhook events by outcome.
    pub webhook_refusals: Family<ReasonLabel, Counter>,
    pub webhook_events: Family<OutcomeLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// The write-failure counters are the store's own (it counts where writes fail), shown
    /// here.
    pub fn new(health: &WriteHealth) -> Metrics {
        let mut registry = Registry::with_prefix("qbo");
        let refreshes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "refreshes",
            "Refresh attempts by outcome, since this process started",
            refreshes.clone(),
        );
        // 5 ms to ~40 s.
        let refresh_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "refresh_duration_seconds",
            "Time one refresh took, Intuit call and commit included",
            refresh_seconds.clone(),
        );
        let audit_write_failures = health.audit_failures.clone();
        registry.register(
            "audit_write_failures",
            "Audit appends that failed, or whose transaction failed to commit (the change they recorded did not happen)",
            audit_write_failures.clone(),
        );
        let database_write_failures = health.failures.clone();
        // Every cause shows from the start, so a rate over it is defined before the first.
        for cause in WriteCause::ALL {
            let _ = database_write_failures.get_or_create(&CauseLabel {
                cause: cause.as_str().to_string(),
            });
        }
        registry.register(
            "database_write_failures",
            "Database writes refused by the storage, by cause (disk_full, io_error, read_only)",
            database_write_failures.clone(),
        );
        let connections = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "connections",
            "Connections by environment and status as the console counts them (`failing`: active or expiring, its last refreshes failed; not counted as `active`)",
            connections.clone(),
        );
        let scheduler_lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "scheduler_lag_seconds",
            "How far behind schedule the most overdue live connection is",
            scheduler_lag_seconds.clone(),
        );
        let nearest_lapse_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "refresh_token_nearest_lapse_seconds",
            "Seconds until the live refresh token closest to its 100-day lapse expires",
            nearest_lapse_seconds.clone(),
        );
        let environment_paused = Family::<EnvLabel, Gauge>::default();
        registry.register(
            "environment_paused",
            "1 while Intuit rejects our client credentials for the environment",
            environment_paused.clone(),
        );
        let webhook_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "webhook_refusals",
            "Intuit webhook requests refused: unsigned, bad_signature, oversized, malformed, not_configured",
            webhook_refusals.clone(),
        );
        let webhook_events = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "webhook_events",
            "Intuit webhook events: processed, replayed (an event id seen before), failed",
            webhook_events.clone(),
        );
        Metrics {
            webhook_refusals,
            webhook_events,
            registry,
            refreshes,
            refresh_seconds,
            audit_write_failures,
            database_write_failures,
            connections,
            scheduler_lag_seconds,
            nearest_lapse_seconds,
            environment_paused,
        }
    }

    pub fn count_refresh(&self, outcome: &str, seconds: f64) {
        self.refreshes
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.refresh_seconds.observe(seconds);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
