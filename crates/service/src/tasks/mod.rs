//! The service's own work, run by the daemon on a timer rather than asked for by a caller:
//! the refresh scheduler and the health checks. They act through the lifecycle engine the
//! service owns, as the daemon's tasks (`Actor::daemon`), and record what they do like any
//! other operation. The daemon starts them; no interface reaches the engine to do so.

pub mod health_checks;
mod incidents;
pub mod scheduler;
mod ticks;

pub use health_checks::HealthChecker;
pub use scheduler::Scheduler;
pub use ticks::Ticks;

use crate::Service;
use qbo_core::config::{HealthConfig, SchedulerConfig};
use qbo_core::identity::Actor;
use std::sync::Arc;

impl Service {
    /// The refresh scheduler over this service's connections, as `actor`.
    pub fn scheduler(&self, cfg: SchedulerConfig, actor: Actor) -> Arc<Scheduler> {
        Arc::new(Scheduler::new(self.engine.clone(), cfg, actor))
    }

    /// The health checks (verify calls on a schedule), as `actor`; they open and probe
    /// incidents of Intuit's accounting API with `scheduler`'s circuit breaker.
    pub fn health_checker(
        &self,
        cfg: HealthConfig,
        actor: Actor,
        scheduler: &Scheduler,
    ) -> Arc<HealthChecker> {
        Arc::new(HealthChecker::new(
            self.engine.clone(),
            cfg,
            actor,
            scheduler.breaker(),
        ))
    }
}
